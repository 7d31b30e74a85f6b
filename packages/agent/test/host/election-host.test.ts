import type { LinkMessage } from "@mnha/protocol";
import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionEffect, type ElectionInput, type ElectionSettings } from "../../src/core/election.js";
import { ElectionHost, type HostAdapters } from "../../src/host/election-host.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/** In-memory adapters that write down, in order, everything the host does. */
function harness(options: { asyncGate?: boolean; settings?: Partial<ElectionSettings> } = {}) {
  let now = 0;
  const calls: string[] = [];
  const gateWrites: (() => void)[] = [];
  const timers: { at: number; fire: () => void; cancelled: boolean }[] = [];
  const probes: ((result: { occupied: boolean; detail: string }) => void)[] = [];
  const repairs: ((outcome: { actions: string[] } | { error: string }) => void)[] = [];
  const sent: LinkMessage[] = [];
  const errors: string[] = [];
  let connected = false;
  const adapters: HostAdapters = {
    now: () => now,
    keepalived: {
      setGate: (open) => {
        calls.push(`gate:${open ? "open" : "closed"}`);
        if (!options.asyncGate) return;
        return new Promise<void>((resolve) =>
          gateWrites.push(() => {
            calls.push(`gate-written:${open ? "open" : "closed"}`);
            resolve();
          }),
        );
      },
      renewLease: () => calls.push("renew"),
      repair: (reason, done) => {
        calls.push(`repair:${reason.slice(0, 20)}`);
        repairs.push(done);
      },
      state: () => "backup",
    },
    link: {
      send: (message) => {
        if (!connected) return false;
        sent.push(message);
        calls.push(`send:${message.type}`);
        return true;
      },
      connected: () => connected,
    },
    arp: { probe: (done) => probes.push(done), announce: () => undefined },
    persistEpoch: (epoch) => calls.push(`epoch:${epoch}`),
    recordEvent: (type) => calls.push(`event:${type}`),
    requestDone: (result) => calls.push(`done:${result.requestId}:${result.ok}`),
    heartbeatFacts: () => ({ vipPresent: false, keepalived: "backup", services: [] }),
    setTimer: (delayMs, fire) => {
      const timer = { at: now + delayMs, fire, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
    onError: (error, what) => errors.push(`${what}: ${String(error)}`),
  };
  const settings: ElectionSettings = { ...SIM_SETTINGS.election, self: "mn1", peer: "mn2", initialEpoch: 2, startupGraceMs: 0, ...options.settings };
  const core = new ElectionCore(settings, 0);
  const host = new ElectionHost(core, adapters, { self: "mn1", heartbeatIntervalMs: settings.heartbeatIntervalMs });
  return {
    host,
    core,
    calls,
    gateWrites,
    timers,
    probes,
    repairs,
    sent,
    errors,
    setNow: (t: number) => (now = t),
    connect: () => (connected = true),
    healthy: () => {
      host.input({ kind: "services", healthy: true, reasons: [] });
      host.input({ kind: "gateway", reachable: true });
    },
  };
}

describe("the election host", () => {
  it("carries out a step's effects in order; a tick ends with the lease renewal", () => {
    const h = harness({ settings: { arpGuard: false } });
    h.healthy();
    h.setNow(200);
    h.calls.length = 0;
    h.host.input({ kind: "tick" });
    // Claimed alone: epoch on disk, gate open, events, and only then the lease renewed.
    expect(h.calls.filter((c) => !c.startsWith("event:"))).toEqual(["epoch:3", "gate:open", "renew"]);
    expect(h.core.snapshot(200)).toMatchObject({ role: "holder", epoch: 3 });
  });

  it("waits for an asynchronous gate write before the next effect and the next input", async () => {
    const h = harness({ asyncGate: true, settings: { arpGuard: false } });
    h.healthy();
    h.setNow(200);
    h.calls.length = 0;
    h.host.input({ kind: "tick" });
    h.host.input({ kind: "wake" });
    expect(h.calls.filter((c) => !c.startsWith("event:"))).toEqual(["epoch:3", "gate:open"]);
    const idle = h.host.idle();
    h.gateWrites.shift()?.();
    await idle;
    expect(h.calls.filter((c) => !c.startsWith("event:"))).toEqual(["epoch:3", "gate:open", "gate-written:open", "renew"]);
  });

  it("sends heartbeats with the core's fields and the adapters' facts, only while connected", () => {
    const h = harness();
    h.host.heartbeatNow();
    expect(h.sent).toEqual([]);
    h.connect();
    h.host.heartbeatNow();
    h.host.heartbeatNow();
    expect(h.sent).toHaveLength(2);
    expect(h.sent[0]).toMatchObject({ type: "heartbeat", seq: 1, node: "mn1", epoch: 2, role: "starting", vipPresent: false, keepalived: "backup" });
    expect(h.sent[1]).toMatchObject({ seq: 2 });
  });

  it("feeds an ARP probe's answer back to the core as arp-result", () => {
    const h = harness();
    h.healthy();
    h.setNow(200);
    h.host.input({ kind: "tick" });
    expect(h.core.snapshot(200).role).toBe("claiming");
    expect(h.probes).toHaveLength(1);
    h.setNow(400);
    h.probes[0]!({ occupied: false, detail: "no answer" });
    expect(h.core.snapshot(400)).toMatchObject({ role: "holder", epoch: 3 });
  });

  it("runs a requested repair beside the queue, records its outcome and re-asserts the gate", () => {
    const h = harness({ settings: { arpGuard: false, vipRepairAfterMs: 1_000, vipGiveUpAfterMs: 5_000 } });
    h.healthy();
    h.setNow(200);
    h.host.input({ kind: "tick" });
    h.host.input({ kind: "vip-observed", present: false });
    for (let t = 300; t <= 1_300; t += 100) {
      h.setNow(t);
      h.host.input({ kind: "tick" });
    }
    expect(h.calls.filter((c) => c.startsWith("repair:"))).toHaveLength(1);
    // A second request while one runs is not started twice.
    h.calls.length = 0;
    h.repairs[0]!({ actions: ["restarted keepalived"] });
    expect(h.calls).toEqual(["event:watchdog-repaired", "gate:open"]);
    h.calls.length = 0;
    h.repairs.length = 0;
    // A failed repair is recorded as such.
    h.setNow(1_350);
    h.host.input({ kind: "vip-observed", present: true });
    h.host.input({ kind: "vip-observed", present: false });
    for (let t = 1_400; t <= 2_500; t += 100) {
      h.setNow(t);
      h.host.input({ kind: "tick" });
    }
    expect(h.repairs).toHaveLength(1);
    h.repairs[0]!({ error: "keepalived does not start" });
    expect(h.calls.filter((c) => c.startsWith("event:watchdog"))).toEqual(["event:watchdog-repair-failed"]);
  });

  it("arms a wake timer only for a deadline nearer than the next tick, and replaces it at each step", () => {
    const h = harness();
    h.healthy();
    h.setNow(200);
    h.host.input({ kind: "tick" }); // claiming: nothing due before the next tick
    const armed = h.timers.filter((t) => !t.cancelled);
    expect(armed.length).toBeLessThanOrEqual(1);
    for (const timer of armed) expect(timer.at - 200).toBeLessThan(SIM_SETTINGS.election.heartbeatIntervalMs);
    h.host.input({ kind: "wake" });
    expect(h.timers.filter((t) => !t.cancelled).length).toBeLessThanOrEqual(1);
  });

  it("a step that throws is reported and the next input is still stepped", () => {
    const h = harness({ settings: { arpGuard: false } });
    class Throwing extends ElectionCore {
      override step(now: number, input: ElectionInput): ElectionEffect[] {
        if (input.kind === "maintenance") throw new Error("boom");
        return super.step(now, input);
      }
    }
    const core = new Throwing({ ...SIM_SETTINGS.election, self: "mn1", peer: "mn2", initialEpoch: 0, startupGraceMs: 0, arpGuard: false }, 0);
    const errors: string[] = [];
    const renewed: number[] = [];
    const host = new ElectionHost(core, { ...harnessAdapters(h), onError: (e, what) => errors.push(`${what}: ${String(e)}`), keepalived: { ...harnessAdapters(h).keepalived, renewLease: () => renewed.push(1) } }, { self: "mn1", heartbeatIntervalMs: 100 });
    host.input({ kind: "maintenance", on: true });
    host.input({ kind: "tick" });
    expect(errors).toEqual(["step maintenance: Error: boom"]);
    expect(renewed).toEqual([1]);
  });

  it("after close() nothing more is stepped or carried out", () => {
    const h = harness({ settings: { arpGuard: false } });
    h.healthy();
    h.host.close();
    h.calls.length = 0;
    h.setNow(200);
    h.host.input({ kind: "tick" });
    h.host.heartbeatNow();
    expect(h.calls).toEqual([]);
    // Still where it was before close(): no claim, no new epoch.
    expect(h.core.snapshot(200)).toMatchObject({ role: "standby", epoch: 2, gateOpen: false });
  });
});

/** The adapters of a harness, for a host around another core. */
function harnessAdapters(h: ReturnType<typeof harness>): HostAdapters {
  return (h.host as unknown as { adapters: HostAdapters }).adapters;
}
