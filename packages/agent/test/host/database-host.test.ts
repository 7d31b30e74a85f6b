import type { LinkMessage } from "@mnha/protocol";
import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionSettings } from "../../src/core/election.js";
import { ElectionHost, type DbAfterClaim, type HostAdapters, type HostDatabase } from "../../src/host/election-host.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * The host carries out the database effects: read-only awaited before the gate closes or an
 * offer leaves (a failure is loud and does not block), writable beside the queue and void
 * when a later read-only was asked, the taker's GTID wait fed back as an input.
 */

/** An in-memory database whose answers the test releases by hand. */
class ManualDatabase implements HostDatabase {
  readOnly = false;
  binlogPos = "1-1-10";
  failReadOnly = false;
  readonly pending: { what: string; release: () => void }[] = [];
  readonly waits: { gtid: string; timeoutMs: number; answer: (r: { reached: boolean; detail: string }) => void }[] = [];
  constructor(private readonly calls: string[]) {}

  goReadOnly(): Promise<{ gtidBinlogPos: string | null }> {
    this.calls.push("db:read-only?");
    return new Promise((resolve, reject) =>
      this.pending.push({
        what: "read-only",
        release: () => {
          if (this.failReadOnly) return reject(new Error("connect ECONNREFUSED /run/mysqld/mysqld.sock"));
          this.readOnly = true;
          this.calls.push("db:read-only!");
          resolve({ gtidBinlogPos: this.binlogPos });
        },
      }),
    );
  }

  goWritable(afterClaim: DbAfterClaim, stillWanted: () => boolean): Promise<{ writable: boolean; notes: [] }> {
    this.calls.push(`db:writable?${afterClaim ? "(after claim)" : ""}`);
    return new Promise((resolve) =>
      this.pending.push({
        what: "writable",
        release: () => {
          if (!stillWanted()) return resolve({ writable: false, notes: [] });
          this.readOnly = false;
          this.calls.push("db:writable!");
          resolve({ writable: true, notes: [] });
        },
      }),
    );
  }

  waitForGtid(gtid: string, timeoutMs: number): Promise<{ reached: boolean; detail: string }> {
    return new Promise((answer) => this.waits.push({ gtid, timeoutMs, answer }));
  }

  readOnlyNow(): Promise<boolean> {
    return Promise.resolve(this.readOnly);
  }

  async releaseNext(): Promise<void> {
    this.pending.shift()?.release();
    await new Promise((r) => setImmediate(r));
  }
}

function harness(self = "mn1", peer = "mn2") {
  let now = 0;
  const calls: string[] = [];
  const events: { type: string; message: string }[] = [];
  const sent: LinkMessage[] = [];
  const db = new ManualDatabase(calls);
  const adapters: HostAdapters = {
    now: () => now,
    keepalived: { setGate: (open) => void calls.push(`gate:${open ? "open" : "closed"}`), renewLease: () => undefined, repair: () => undefined, state: () => "backup" },
    link: {
      send: (message) => {
        sent.push(message);
        calls.push(`send:${message.type}`);
        return true;
      },
      connected: () => true,
    },
    arp: { probe: () => undefined, announce: () => undefined },
    persistEpoch: () => undefined,
    recordEvent: (type, message) => events.push({ type, message }),
    requestDone: (result) => calls.push(`done:${result.ok}`),
    heartbeatFacts: () => ({ vipPresent: false, keepalived: "backup", services: [] }),
    setTimer: () => () => undefined,
    onError: (error) => calls.push(`error:${String(error)}`),
    db,
  };
  const settings: ElectionSettings = { ...SIM_SETTINGS.election, self, peer, initialEpoch: 2, startupGraceMs: 0, arpGuard: false, db: { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true } };
  const core = new ElectionCore(settings, 0);
  const host = new ElectionHost(core, adapters, { self, heartbeatIntervalMs: settings.heartbeatIntervalMs });
  const summary = { alive: true, readOnly: true, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: "1-1-10", gtidCurrentPos: "1-1-10", semiSyncMasterActive: true };
  return {
    host,
    core,
    db,
    calls,
    events,
    sent,
    setNow: (t: number) => (now = t),
    healthy: async () => {
      host.input({ kind: "services", healthy: true, reasons: [] });
      // The first step asked for read-only: confirm it.
      await db.releaseNext();
      host.input({ kind: "gateway", reachable: true });
      host.input({ kind: "db-health", summary });
      await host.idle();
    },
  };
}

/** mn1 alone: holder with its VIP seen and its database writable. */
async function writableHolder() {
  const h = harness();
  await h.healthy();
  h.setNow(200);
  h.host.input({ kind: "tick" });
  h.host.input({ kind: "vip-observed", present: true });
  await h.host.idle();
  await h.db.releaseNext();
  expect(h.db.readOnly).toBe(false);
  expect(h.calls).toContain("db:writable?(after claim)");
  return h;
}

describe("the host and the database", () => {
  it("a step that closes the gate waits until read-only is confirmed", async () => {
    const h = await writableHolder();
    h.calls.length = 0;
    h.host.input({ kind: "gateway", reachable: false });
    // Lost the gateway with no peer: steps down. The gate has not been touched yet.
    expect(h.calls).toEqual(["db:read-only?"]);
    const idle = h.host.idle();
    await h.db.releaseNext();
    await idle;
    expect(h.calls.slice(0, 3)).toEqual(["db:read-only?", "db:read-only!", "gate:closed"]);
    expect(h.db.readOnly).toBe(true);
  });

  it("read-only failing is recorded loudly and the gate still closes", async () => {
    const h = await writableHolder();
    h.db.failReadOnly = true;
    h.calls.length = 0;
    h.host.input({ kind: "gateway", reachable: false });
    const idle = h.host.idle();
    await h.db.releaseNext();
    await idle;
    expect(h.calls).toContain("gate:closed");
    expect(h.events.find((e) => e.type === "db-read-only-failed")?.message).toMatch(/COULD NOT MAKE THE DATABASE READ-ONLY: connect ECONNREFUSED/);
  });

  it("the handoff offer leaves only after read-only, carrying the position read then", async () => {
    const h = await writableHolder();
    h.host.input({ kind: "peer-up" });
    h.host.input({ kind: "peer-message", message: { type: "heartbeat", seq: 1, node: "mn2", epoch: 3, holder: "mn1", role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [] } });
    await h.host.idle();
    h.calls.length = 0;
    h.db.binlogPos = "1-1-77";
    h.host.input({ kind: "demote", requestId: "r" });
    // (A heartbeat saying "handing-off" may go first: it hands nothing over.)
    expect(h.calls.filter((c) => c !== "send:heartbeat")).toEqual(["db:read-only?"]);
    const idle = h.host.idle();
    await h.db.releaseNext();
    await idle;
    expect(h.calls.indexOf("db:read-only!")).toBeLessThan(h.calls.indexOf("send:handoff-offer"));
    expect(h.sent.find((m) => m.type === "handoff-offer")).toMatchObject({ gtidBinlogPos: "1-1-77" });
  });

  it("a writable switch still pending when read-only is asked never takes effect", async () => {
    const h = harness();
    await h.healthy();
    h.setNow(200);
    h.host.input({ kind: "tick" });
    h.host.input({ kind: "vip-observed", present: true });
    await h.host.idle();
    // Writable asked (pending: applying the relay log), then the VIP goes: read-only asked.
    h.host.input({ kind: "vip-observed", present: false });
    expect(h.db.pending.map((p) => p.what)).toEqual(["writable", "read-only"]);
    await h.db.releaseNext();
    await h.db.releaseNext();
    await h.host.idle();
    expect(h.calls).not.toContain("db:writable!");
    expect(h.db.readOnly).toBe(true);
  });

  it("the taker's GTID wait runs beside the queue and its answer comes back as an input", async () => {
    const h = harness("mn2", "mn1");
    await h.healthy();
    h.host.input({ kind: "peer-up" });
    h.host.input({ kind: "peer-message", message: { type: "heartbeat", seq: 1, node: "mn1", epoch: 2, holder: "mn1", role: "holder", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 600, vipPresent: true, keepalived: "master", services: [] } });
    h.host.input({ kind: "peer-message", message: { type: "handoff-offer", id: "h1", epoch: 3, from: "mn1", to: "mn2", reason: "demote", gtidBinlogPos: "1-1-50" } });
    await h.host.idle();
    expect(h.db.waits).toMatchObject([{ gtid: "1-1-50", timeoutMs: 10_000 }]);
    // The queue is not blocked meanwhile.
    h.host.input({ kind: "tick" });
    await h.host.idle();
    expect(h.calls).not.toContain("send:handoff-ready");
    h.db.waits[0]!.answer({ reached: true, detail: "applied" });
    await new Promise((r) => setImmediate(r));
    await h.host.idle();
    expect(h.calls.indexOf("gate:open")).toBeLessThan(h.calls.indexOf("send:handoff-ready"));
  });
});
