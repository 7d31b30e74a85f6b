import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionEffect } from "../../src/core/election.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * A claim after the holder is lost runs its waits side by side: the ARP probe and Keepalived's
 * master-down timer during the last part of the holder's lease. The VIP still cannot appear
 * on the claimer before the lease (as this node's clock bounds it) plus the margin has run
 * out: the gate opens exactly one VRRP timer before that instant, never earlier.
 */
const DOWN_TIMER = SIM_SETTINGS.keepalivedDownTimerMs;
const PROBE = SIM_SETTINGS.probeTimeoutMs;
const e = SIM_SETTINGS.election;

function standbyHearingHolder(settings: { keepalivedDownTimerMs?: number; arpProbeTimeoutMs?: number }) {
  const core = new ElectionCore({ ...e, ...settings, self: "mn2", peer: "mn1", initialEpoch: 5 }, 0);
  core.step(0, { kind: "services", healthy: true, reasons: [] });
  core.step(0, { kind: "gateway", reachable: true });
  core.step(0, { kind: "peer-up" });
  const lastHeard = 1_000;
  core.step(lastHeard, {
    kind: "peer-message",
    message: { type: "heartbeat", seq: 1, node: "mn1", epoch: 5, holder: "mn1", role: "holder", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: e.leaseMs, vipPresent: true, keepalived: "master", services: [] },
  });
  // The holder's machine dies: its socket is never closed, heartbeats just stop.
  const deadline = lastHeard + e.leaseMs * (1 + e.maxClockDrift) + e.takeoverMarginMs;
  return { core, deadline };
}

/** Steps the core every 5 ms (plus its own wake-ups); answers its probe "nobody" after PROBE ms. */
function runClaim(core: ElectionCore, until: number) {
  let probeAt: number | null = null;
  let gateAt: number | null = null;
  let pending: { id: number; at: number } | null = null;
  const see = (now: number, effects: ElectionEffect[]) => {
    for (const effect of effects) {
      if (effect.kind === "arp-probe") {
        probeAt ??= now;
        pending = { id: effect.probeId, at: now + PROBE };
      }
      if (effect.kind === "set-gate" && effect.open) gateAt ??= now;
    }
  };
  for (let now = 1_005; now <= until && gateAt === null; now += 5) {
    if (pending !== null && now >= (pending as { at: number }).at) {
      const id = (pending as { id: number }).id;
      pending = null;
      see(now, core.step(now, { kind: "arp-result", probeId: id, occupied: false, detail: "nobody" }));
    }
    see(now, core.step(now, { kind: now % 100 === 0 ? "tick" : "wake" }));
  }
  return { probeAt, gateAt };
}

describe("claim timing after the holder is lost", () => {
  it("probes during the lease's last part and opens the gate one VRRP timer before the deadline, not earlier", () => {
    const { core, deadline } = standbyHearingHolder({ keepalivedDownTimerMs: DOWN_TIMER, arpProbeTimeoutMs: PROBE });
    const { probeAt, gateAt } = runClaim(core, 3_000);
    expect(probeAt).not.toBeNull();
    expect(gateAt).not.toBeNull();
    expect(probeAt!).toBeGreaterThanOrEqual(deadline - DOWN_TIMER - PROBE);
    expect(gateAt!, "the gate opens no earlier than one VRRP timer before the deadline").toBeGreaterThanOrEqual(deadline - DOWN_TIMER);
    // ...so Keepalived, which waits its timer after the gate opens, takes the VIP after the deadline.
    expect(gateAt! + DOWN_TIMER).toBeGreaterThanOrEqual(deadline);
    // And well before the old order (deadline, then the probe, then the timer) would have.
    expect(gateAt! + DOWN_TIMER).toBeLessThan(deadline + PROBE);
    expect(core.snapshot(gateAt!)).toMatchObject({ role: "holder", epoch: 6 });
  });

  it("without the VRRP timer given (0), the gate waits for the deadline itself (the old order)", () => {
    const { core, deadline } = standbyHearingHolder({});
    const { probeAt, gateAt } = runClaim(core, 3_000);
    expect(probeAt!).toBeGreaterThanOrEqual(deadline);
    expect(gateAt!).toBeGreaterThanOrEqual(deadline + PROBE);
  });

  it("a probe that finds someone keeps the gate closed, even inside the early window", () => {
    const { core, deadline } = standbyHearingHolder({ keepalivedDownTimerMs: DOWN_TIMER, arpProbeTimeoutMs: PROBE });
    let probe: number | null = null;
    let now = 1_005;
    for (; now < deadline && probe === null; now += 5) {
      const out = core.step(now, { kind: "wake" });
      const p = out.find((x) => x.kind === "arp-probe");
      if (p && p.kind === "arp-probe") probe = p.probeId;
    }
    expect(probe).not.toBeNull();
    const effects = core.step(now + 10, { kind: "arp-result", probeId: probe!, occupied: true, detail: "answered by 02:00:00:00:00:0b" });
    expect(effects.some((x) => x.kind === "set-gate")).toBe(false);
    expect(core.snapshot(now + 10)).toMatchObject({ role: "standby", gateOpen: false });
  });
});
