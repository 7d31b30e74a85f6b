import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DbSummary } from "../../src/core/election.js";
import { composeDatabase } from "../../src/daemon/compose.js";
import type { AgentDatabase } from "../../src/daemon/components.js";
import { DbHealthPoll } from "../../src/daemon/db-health-poll.js";
import { ReplicaKeeper } from "../../src/db/replica-keeper.js";
import { SemiSyncKeeper } from "../../src/db/semi-sync-keeper.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";
import { waitFor } from "../checks/helpers.js";
import { ThrowawayMariaDb } from "../db/throwaway-mariadb.js";
import { loadedConfig } from "./in-memory.js";

/**
 * The agent's database health poll over the database the daemon composes (db.enabled), on a
 * real throwaway MariaDB server: one connection kept across polls.
 */
let server: ThrowawayMariaDb;

beforeAll(async () => {
  server = await ThrowawayMariaDb.create("mnha-db-poll-");
}, 180_000);

afterAll(async () => {
  await server.destroy();
});

/** A poll as the agent wires it (every second, bounded by twice the connect timeout), driven by hand here. */
function composedPoll(timeoutMs = 4_000): { poll: DbHealthPoll; summaries: DbSummary[] } {
  const database = composeDatabase(loadedConfig({ db: { enabled: true, socket: server.socket, connectTimeoutMs: 2_000 } }));
  const summaries: DbSummary[] = [];
  return { poll: new DbHealthPoll({ database, intervalMs: 60_000, timeoutMs, onSummary: (s) => summaries.push(s) }), summaries };
}

const connectionsOpened = async (): Promise<number> => (await server.statusCounters(["Connections"]))["Connections"] ?? 0;
const threadsConnected = async (): Promise<number> => (await server.statusCounters(["Threads_connected"]))["Threads_connected"] ?? 0;

describe("the database health poll", () => {
  it("keeps one connection across polls and closes it when it stops", async () => {
    const { poll } = composedPoll();
    const before = await connectionsOpened();
    await poll.start();
    for (let i = 0; i < 5; i++) {
      await poll.poll();
      expect(poll.last?.alive).toBe(true);
      expect(poll.last?.readOnly).toBe(false);
    }
    // One for the polls, one for this observer's second count.
    expect((await connectionsOpened()) - before).toBe(2);
    // The observer's own connection is open while it counts: the poll's is the other one.
    expect(await threadsConnected()).toBe(2);
    await poll.stop();
    expect(await waitFor(async () => (await threadsConnected()) === 1, 10_000, 50)).toBe(true);
  });

  it("sees a restarted server at the very next poll, and a server that is gone at once", async () => {
    const { poll, summaries } = composedPoll();
    try {
      await poll.start();
      expect(poll.last?.alive).toBe(true);
      // Restarted between two polls: the kept connection died, the poll answers as a new connection would.
      await server.stop();
      await server.start();
      await poll.poll();
      expect(poll.last?.alive).toBe(true);
      await server.stop();
      await poll.poll();
      expect(poll.last?.alive).toBe(false);
      expect(poll.last?.error).toMatch(/not reachable/);
      await server.start();
      await poll.poll();
      expect(poll.last?.alive).toBe(true);
      expect(summaries.map((s) => s.alive)).toEqual([true, false, true]);
    } finally {
      await poll.stop();
    }
  }, 90_000);

  it("drops the kept connection when a poll gets no answer within its timeout, and reconnects at the next", async () => {
    const { poll } = composedPoll(500);
    try {
      await poll.start();
      expect(poll.last?.alive).toBe(true);
      await server.pause();
      try {
        const started = performance.now();
        await poll.poll();
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(poll.last).toMatchObject({ alive: false, error: "no answer within 500 ms" });
      } finally {
        server.signal("SIGCONT");
      }
      await poll.poll();
      expect(poll.last?.alive).toBe(true);
      // The stuck connection is gone: the server holds the poll's new one and the observer's.
      expect(await waitFor(async () => (await threadsConnected()) === 2, 10_000, 50)).toBe(true);
      // And the new one is kept: only the observer's second count opens one.
      const reconnected = await connectionsOpened();
      for (let i = 0; i < 3; i++) await poll.poll();
      expect(poll.last?.alive).toBe(true);
      expect((await connectionsOpened()) - reconnected).toBe(1);
    } finally {
      await poll.stop();
    }
  }, 60_000);

  it("gives semi-sync back to a server that forgot it (a restart), before the summary goes out; a connected IO thread is restarted; one turned off on the running server is left off", async () => {
    const database = composeDatabase(loadedConfig({ db: { enabled: true, socket: server.socket, connectTimeoutMs: 2_000 } }));
    const control = database.repairControl;
    expect(control).toBeDefined();
    const events: string[] = [];
    const order: string[] = [];
    const keeper = new SemiSyncKeeper({ settings: { enabled: true, timeoutMs: 1_500 }, target: control!, boundMs: 4_000, minRunSecondsToJudge: 0, now: () => performance.now(), wallNow: () => Date.now(), record: (type) => events.push(type) });
    const poll = new DbHealthPoll({
      database,
      intervalMs: 60_000,
      timeoutMs: 4_000,
      onSummary: () => order.push("summary"),
      repair: async (health) => order.push((await keeper.keep(health)) ? "repaired" : "nothing to repair"),
    });
    const semiSyncVariables = async () => server.observer().withConnection(async (c) => Object.fromEntries(((await c.query("SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_%'")) as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name, r.Value])));
    // A replica that cannot connect (nothing listens on port 1 of loopback): configured, as after setup-replication.
    await server.run("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 1, MASTER_USER = 'nobody', MASTER_CONNECT_RETRY = 1");
    try {
      expect(await semiSyncVariables()).toMatchObject({ rpl_semi_sync_master_enabled: "OFF", rpl_semi_sync_slave_enabled: "OFF" });
      await poll.poll();
      expect(order).toEqual(["repaired", "summary"]);
      expect(events).toEqual(["db.semi-sync-restored"]);
      expect(await semiSyncVariables()).toMatchObject({ rpl_semi_sync_master_enabled: "ON", rpl_semi_sync_slave_enabled: "ON", rpl_semi_sync_master_wait_point: "AFTER_SYNC", rpl_semi_sync_master_timeout: "1500" });
      // The next poll finds it on (its summary goes out again only because semi-sync changed).
      await poll.poll();
      expect(order[2]).toBe("nothing to repair");
      expect(events).toEqual(["db.semi-sync-restored"]);
      // The IO thread restart itself, on the real server: it keeps trying to connect afterwards.
      await server.run("START SLAVE IO_THREAD");
      await control!.restartReplicaIo();
      await poll.poll();
      expect(["Connecting", "Yes"]).toContain(poll.last?.slaveIoRunning);
      // Turned off by hand on the running server (its Uptime goes on): left off, said once. (This
      // server started a moment ago, hence minRunSecondsToJudge 0; a restart given back is the lab's case.)
      expect(poll.last?.uptimeSeconds).toBeGreaterThanOrEqual(0);
      await server.run("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
      await poll.poll();
      await poll.poll();
      expect(events).toEqual(["db.semi-sync-restored", "db.semi-sync-left-off"]);
      expect(await semiSyncVariables()).toMatchObject({ rpl_semi_sync_master_enabled: "OFF", rpl_semi_sync_slave_enabled: "ON" });

    } finally {
      await poll.stop();
      await server.run("STOP SLAVE");
      await server.run("RESET SLAVE ALL");
      await server.run("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
      await server.run("SET GLOBAL rpl_semi_sync_slave_enabled = OFF");
    }
  }, 60_000);

  it("starts a replica a restart left stopped (configured, never started: as skip-slave-start leaves it), read from the real server's SHOW SLAVE STATUS; one stopped by hand is left", async () => {
    const database = composeDatabase(loadedConfig({ db: { enabled: true, socket: server.socket, connectTimeoutMs: 2_000 } }));
    const events: string[] = [];
    // minRunSecondsToJudge 0: this server started a moment ago (the restart itself is the lab's case).
    const keeper = new ReplicaKeeper({ target: database.repairControl!, startAfterRestart: true, boundMs: 4_000, minRunSecondsToJudge: 0, now: () => performance.now(), wallNow: () => Date.now(), record: (type) => events.push(type) });
    const outcomes: unknown[] = [];
    const poll = new DbHealthPoll({ database, intervalMs: 60_000, timeoutMs: 4_000, onSummary: () => undefined, repair: async (health) => outcomes.push(await keeper.keep(health)) });
    // Nothing listens on port 1 of loopback: the started IO thread keeps trying (Connecting), without data.
    await server.run("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 1, MASTER_USER = 'nobody', MASTER_CONNECT_RETRY = 1");
    try {
      await poll.poll();
      expect(poll.last).toMatchObject({ replicaConfigured: true, slaveIoRunning: "No", slaveSqlRunning: "No", lastIoError: null, lastSqlError: null });
      await poll.poll();
      expect(outcomes).toEqual([null, "started"]);
      expect(events).toEqual(["db.replica-started"]);
      await poll.poll();
      expect(["Connecting", "Yes"]).toContain(poll.last?.slaveIoRunning);
      expect(poll.last?.slaveSqlRunning).toBe("Yes");
      // Stopped on the running server (STOP SLAVE by hand): left stopped, said once.
      await server.run("STOP SLAVE");
      // The refused connection left an IO error, which STOP SLAVE keeps (a replica stopped with an
      // error is the DBA's, never started here): RESET SLAVE clears it and keeps the replica configured.
      await server.run("RESET SLAVE");
      const leftAt = events.length;
      await poll.poll();
      await poll.poll();
      await poll.poll();
      expect(poll.last).toMatchObject({ slaveIoRunning: "No", slaveSqlRunning: "No", lastIoError: null, lastSqlError: null });
      expect(outcomes.slice(-2)).toEqual(["left-stopped", "left-stopped"]);
      expect(events.slice(leftAt)).toEqual(["db.replica-left-stopped"]);
    } finally {
      await poll.stop();
      await server.run("STOP SLAVE");
      await server.run("RESET SLAVE ALL");
    }
  }, 60_000);

  it("repairs nothing while a seed is incomplete (the seed stops the replica and sets replication up itself)", async () => {
    const forgot: DatabaseHealth = { ...DEAD_HEALTH, alive: true, replicaConfigured: true, slaveIoRunning: "Yes", semiSync: { masterEnabled: false, masterActive: false, slaveEnabled: false, slaveActive: false, masterClients: 0, yesTx: 0, noTx: 0 } };
    let seeding = true;
    const seen: string[] = [];
    const database: AgentDatabase = { roleSwitch: {} as AgentDatabase["roleSwitch"], health: async () => forgot, seedIncomplete: () => seeding, close: async () => undefined };
    const poll = new DbHealthPoll({ database, intervalMs: 60_000, timeoutMs: 1_000, onSummary: () => undefined, repair: async () => seen.push("repair") });
    await poll.poll();
    expect(seen).toEqual([]);
    seeding = false;
    await poll.poll();
    expect(seen).toEqual(["repair"]);
  });

  it("tells the database it gave up on a read that passed its timeout", async () => {
    let seen: AbortSignal | undefined;
    const stuck: AgentDatabase = {
      roleSwitch: {} as AgentDatabase["roleSwitch"],
      health: (signal) => {
        seen = signal;
        return new Promise<DatabaseHealth>(() => undefined);
      },
      seedIncomplete: () => false,
      close: async () => undefined,
    };
    const poll = new DbHealthPoll({ database: stuck, intervalMs: 60_000, timeoutMs: 50, onSummary: () => undefined });
    await poll.poll();
    expect(poll.last).toMatchObject({ alive: false, error: "no answer within 50 ms" });
    expect(seen?.aborted).toBe(true);
  });
});
