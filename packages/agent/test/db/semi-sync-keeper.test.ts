/** SemiSyncKeeper over an in-memory server: what a restart forgot is turned back on, once; failures said once and retried later. */
import { describe, expect, it } from "vitest";
import { SemiSyncKeeper, semiSyncRepair } from "../../src/db/semi-sync-keeper.js";
import type { DatabaseHealth, ThreadState } from "../../src/db/types.js";
import { replicatingHealth } from "./health-fixture.js";

function health(options: { master?: boolean; replica?: boolean; io?: ThreadState; configured?: boolean; alive?: boolean; uptime?: number } = {}): DatabaseHealth {
  return replicatingHealth({
    alive: options.alive ?? true,
    uptimeSeconds: options.uptime ?? null,
    replicaConfigured: options.configured ?? true,
    slaveIoRunning: options.io ?? "Yes",
    semiSync: { masterEnabled: options.master ?? true, masterActive: options.master ?? true, slaveEnabled: options.replica ?? true, slaveActive: options.replica ?? true, masterClients: 1, yesTx: 0, noTx: 0 },
  });
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
    wallNow: () => clock.ms,
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

  it("restores what a restart undid, never what someone did on a running server: off with no restart since it was on is left off, said once", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    // On, in a server run that started 100 s ago.
    clock.ms = 1_000_000;
    await k.keep(health({ uptime: 100 }));
    // 5 s later, the same run (Uptime 105): turned off on the running server.
    clock.ms += 5_000;
    await expect(k.keep(health({ master: false, replica: false, uptime: 105 }))).resolves.toBeNull();
    clock.ms += 1_000;
    await k.keep(health({ master: false, replica: false, uptime: 106 }));
    expect(server.calls).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-left-off"]);
    expect(events[0]?.message).toMatch(/turned off on the running server .*left off, commits are asynchronous.*restart it \(systemctl restart mnha\) after changing the setting/);
    // The server restarts (Uptime back to 2): what the restart undid is restored.
    clock.ms += 10_000;
    await expect(k.keep(health({ master: false, replica: false, uptime: 2 }))).resolves.toEqual({ master: true, replica: true, restartIo: true });
    expect(server.calls).toEqual(["semi-sync on 1000", "restart IO"]);
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-left-off", "db.semi-sync-restored"]);
    expect(events[1]?.message).toMatch(/the server restarted: a restart forgets SET GLOBAL/);
    // Seen on in the new run once it is 30 s old, then turned off by hand: left off, and said again (a new occurrence).
    clock.ms += 28_000;
    await k.keep(health({ uptime: 30 }));
    clock.ms += 32_000;
    await k.keep(health({ master: false, uptime: 62 }));
    expect(server.calls).toHaveLength(2);
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-left-off", "db.semi-sync-restored", "db.semi-sync-left-off"]);
  });

  it("at the agent's first look (nothing seen on before), an off server is turned on: the config is the intent", async () => {
    const server = new MemoryServer();
    const { keeper: k, events } = keeper(server);
    await k.keep(health({ master: false, replica: false, uptime: 86_400 }));
    expect(server.calls).toEqual(["semi-sync on 1000", "restart IO"]);
    expect(events[0]?.message).toMatch(/found so at this agent's first look/);
  });

  it("a run seen on only in its first seconds is never judged the same run: a quick restart gets semi-sync back, not left off", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    clock.ms = 500_000;
    // Turned on 1 s into a run; the server restarts at once and the next poll sees Uptime 1 again, its start 1 s later.
    await k.keep(health({ master: false, replica: false, uptime: 1 }));
    await k.keep(health({ uptime: 1 }));
    clock.ms += 1_000;
    await k.keep(health({ master: false, replica: false, uptime: 1 }));
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-restored", "db.semi-sync-restored"]);
    expect(server.calls).toHaveLength(4);
  });

  it("no Uptime to judge by (an older server, a failed read): any off server is given semi-sync back", async () => {
    const server = new MemoryServer();
    const { keeper: k, events } = keeper(server);
    await k.keep(health());
    await k.keep(health({ master: false }));
    expect(events.map((e) => e.type)).toEqual(["db.semi-sync-restored"]);
  });
});
