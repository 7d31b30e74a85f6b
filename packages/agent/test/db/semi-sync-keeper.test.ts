/** SemiSyncKeeper over an in-memory server: what a restart forgot is turned back on, once; failures said once and retried later. */
import { describe, expect, it } from "vitest";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import { SemiSyncKeeper, semiSyncRepair } from "../../src/db/semi-sync-keeper.js";
import type { DatabaseHealth, ThreadState } from "../../src/db/types.js";

function health(options: { master?: boolean; replica?: boolean; io?: ThreadState; configured?: boolean; alive?: boolean } = {}): DatabaseHealth {
  return {
    ...DEAD_HEALTH,
    alive: options.alive ?? true,
    replicaConfigured: options.configured ?? true,
    slaveIoRunning: options.io ?? "Yes",
    slaveSqlRunning: "Yes",
    semiSync: { masterEnabled: options.master ?? true, masterActive: options.master ?? true, slaveEnabled: options.replica ?? true, slaveActive: options.replica ?? true, masterClients: 1, yesTx: 0, noTx: 0 },
  };
}

class MemoryServer {
  calls: string[] = [];
  failWith: string | null = null;
  async configureSemiSync(options: { enabled: boolean; timeoutMs: number }): Promise<void> {
    if (this.failWith !== null) throw new Error(this.failWith);
    this.calls.push(`semi-sync ${options.enabled ? "on" : "off"} ${options.timeoutMs}`);
  }
  async restartReplicaIo(): Promise<void> {
    this.calls.push("restart IO");
  }
}

function keeper(server: MemoryServer, options: { enabled?: boolean; clock?: { ms: number } } = {}) {
  const events: { type: string; message: string; fields: Record<string, unknown> }[] = [];
  const clock = options.clock ?? { ms: 0 };
  const k = new SemiSyncKeeper({
    settings: { enabled: options.enabled ?? true, timeoutMs: 1_000 },
    target: server,
    boundMs: 500,
    retryAfterFailureMs: 30_000,
    now: () => clock.ms,
    record: (type, message, fields) => events.push({ type, message, fields }),
  });
  return { keeper: k, events, clock };
}

describe("semiSyncRepair", () => {
  it("nothing when semi-sync is on both sides, unwanted, or there is nothing to judge by", () => {
    expect(semiSyncRepair(health(), true)).toBeNull();
    expect(semiSyncRepair(health({ master: false, replica: false }), false)).toBeNull();
    expect(semiSyncRepair(health({ master: false, replica: false, alive: false }), true)).toBeNull();
    expect(semiSyncRepair({ ...health(), semiSync: null }, true)).toBeNull();
    // Replication not set up yet: setup-replication turns it on then (a master with no replica would stall commits).
    expect(semiSyncRepair(health({ master: false, replica: false, configured: false }), true)).toBeNull();
  });

  it("a restarted server (both sides off): both back, and a connected IO thread reconnects", () => {
    expect(semiSyncRepair(health({ master: false, replica: false }), true)).toEqual({ master: true, replica: true, restartIo: true });
    expect(semiSyncRepair(health({ master: false, replica: false, io: "Connecting" }), true)).toEqual({ master: true, replica: true, restartIo: false });
    expect(semiSyncRepair(health({ master: false }), true)).toEqual({ master: true, replica: false, restartIo: false });
    expect(semiSyncRepair(health({ replica: false }), true)).toEqual({ master: false, replica: true, restartIo: true });
  });
});

describe("SemiSyncKeeper", () => {
  it("turns semi-sync back on and restarts the IO thread, says so once, and then leaves a sound server alone", async () => {
    const server = new MemoryServer();
    const { keeper: k, events } = keeper(server);
    await expect(k.keep(health({ master: false, replica: false }))).resolves.toEqual({ master: true, replica: true, restartIo: true });
    expect(server.calls).toEqual(["semi-sync on 1000", "restart IO"]);
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-restored"]);
    expect(events[0]?.message).toMatch(/semi-sync off on the master and replica side .*turned it back on \(AFTER_SYNC, 1000 ms\) and restarted the replica's IO thread.*my\.cnf/);
    await k.keep(health());
    await k.keep(health());
    expect(server.calls).toHaveLength(2);
    expect(events).toHaveLength(1);
  });

  it("never touches a server when db.semiSync.enabled is false", async () => {
    const server = new MemoryServer();
    const { keeper: k, events } = keeper(server, { enabled: false });
    await expect(k.keep(health({ master: false, replica: false }))).resolves.toBeNull();
    expect(server.calls).toEqual([]);
    expect(events).toEqual([]);
  });

  it("a failed repair is said once, retried only after the pause, and a later success is said", async () => {
    const server = new MemoryServer();
    server.failWith = "Access denied; you need (at least one of) the SUPER privilege(s)";
    const { keeper: k, events, clock } = keeper(server);
    const forgot = health({ master: false, replica: false });
    await expect(k.keep(forgot)).resolves.toBeNull();
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-failed"]);
    expect(events[0]?.message).toMatch(/turning it back on failed: .*SUPER.*commits are asynchronous until it is on/);
    clock.ms = 10_000;
    await k.keep(forgot);
    expect(events).toHaveLength(1);
    clock.ms = 30_000;
    await k.keep(forgot);
    // Retried (and failed again): not said twice.
    expect(events).toHaveLength(1);
    server.failWith = null;
    clock.ms = 60_000;
    await k.keep(forgot);
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-failed", "db.semi-sync-restored"]);
  });
});
