import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderStatus } from "../../src/cli/render-status.js";
import { Agent } from "../../src/daemon/agent.js";
import type { AgentDatabase } from "../../src/daemon/components.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";
import type { DbWritableOutcome } from "../../src/host/election-host.js";
import { loadedConfig, memoryParts, silentLogger } from "./in-memory.js";

/**
 * The daemon with db.enabled and an in-memory database: read-only at start, writable once the
 * holder's VIP is on its interface, read-only before the gate closes; status and metrics carry
 * the database (and zsha2's keys).
 */
const agents: Agent[] = [];
const dataDirs: string[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop("test over").catch(() => undefined);
  for (const dir of dataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A started agent with `database` and these db settings, on in-memory parts and its own data dir (removed once it has stopped). */
async function startDbAgent(database: AgentDatabase, db: Record<string, unknown> = {}): Promise<{ agent: Agent; parts: ReturnType<typeof memoryParts> }> {
  const parts = memoryParts();
  const dataDir = mkdtempSync(join(tmpdir(), "mnha-agent-db-"));
  dataDirs.push(dataDir);
  const agent = new Agent({ loaded: loadedConfig({ dataDir, timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 }, db: { enabled: true, ...db } }), logger: silentLogger, components: { ...parts.components, database }, vipPollMs: 20 });
  agents.push(agent);
  await agent.start();
  return { agent, parts };
}

function memoryDatabase(journal: string[]): AgentDatabase & { readOnly: boolean; health: () => Promise<DatabaseHealth> } {
  const db = {
    readOnly: false,
    roleSwitch: {
      goReadOnly: async () => {
        db.readOnly = true;
        journal.push("db read-only");
        return { gtidBinlogPos: "1-1-5" };
      },
      goWritable: async (_afterClaim: unknown, stillWanted: () => boolean): Promise<DbWritableOutcome> => {
        if (!stillWanted()) return { writable: false, notes: [] };
        db.readOnly = false;
        journal.push("db writable");
        return { writable: true, notes: [] };
      },
      waitForGtid: async () => ({ reached: true, detail: "applied" }),
      readOnlyNow: async () => db.readOnly,
    },
    health: async (): Promise<DatabaseHealth> => ({
      ...DEAD_HEALTH,
      alive: true,
      readOnly: db.readOnly,
      replicaConfigured: true,
      slaveIoRunning: "Yes",
      slaveSqlRunning: "No",
      lastSqlError: "Duplicate entry '7' for key 'PRIMARY'",
      secondsBehindMaster: null,
      gtidBinlogPos: "1-1-5",
      gtidCurrentPos: "1-1-5,2-2-3",
      semiSync: { masterEnabled: true, masterActive: false, slaveEnabled: true, slaveActive: true, masterClients: 0, yesTx: 4, noTx: 1 },
    }),
    seedIncomplete: () => false,
    close: async () => undefined,
  };
  return db;
}

describe("the agent with db.enabled (in-memory database)", () => {
  it("gives semi-sync back to a server that forgot it, but not in maintenance mode (which acts on nothing): once maintenance ends", async () => {
    const calls: string[] = [];
    const db = memoryDatabase([]);
    const sound = await db.health();
    let semiSyncOn = false;
    const forgetful: AgentDatabase = {
      ...db,
      health: async () => ({ ...sound, semiSync: { ...sound.semiSync!, masterEnabled: semiSyncOn, slaveEnabled: semiSyncOn } }),
      repairControl: {
        configureSemiSync: async (options) => {
          calls.push(`semi-sync ${String(options.enabled)} ${options.timeoutMs}`);
          semiSyncOn = options.enabled;
        },
        restartReplicaIo: async () => void calls.push("restart IO"),
        startReplica: async () => void calls.push("start replica"),
      },
    };
    const { parts } = await startDbAgent(forgetful, { semiSync: { timeoutMs: 2_500 } });
    await vi.waitFor(() => expect(calls).toEqual(["semi-sync true 2500", "restart IO"]), { timeout: 3_000, interval: 20 });
    expect(parts.store.events.filter((e) => e.type === "db.semi-sync-restored")).toHaveLength(1);
    const on = await parts.handlers!.maintenance!({ on: true, node: "this", reason: "MariaDB upgrade", by: "root" });
    expect(on).toMatchObject({ on: true, changed: true });
    // Restarted again (forgot it again) during maintenance: left alone, polls going on.
    semiSyncOn = false;
    calls.length = 0;
    await new Promise((r) => setTimeout(r, 2_500));
    expect(calls).toEqual([]);
    await parts.handlers!.maintenance!({ on: false, node: "this", reason: "", by: "root" });
    await vi.waitFor(() => expect(calls).toEqual(["semi-sync true 2500", "restart IO"]), { timeout: 3_000, interval: 20 });
    expect(parts.store.events.filter((e) => e.type === "db.semi-sync-restored")).toHaveLength(2);
  });

  it("starts a replica a restart left stopped (skip-slave-start), after semi-sync is back so it connects as a semi-sync replica; not in maintenance mode", async () => {
    const calls: string[] = [];
    const db = memoryDatabase([]);
    const sound = await db.health();
    let replicaRunning = false;
    let semiSyncOn = false;
    let semiSyncCalls = 0;
    const restarted: AgentDatabase = {
      ...db,
      health: async () => ({
        ...sound,
        slaveIoRunning: replicaRunning ? "Yes" : "No",
        slaveSqlRunning: replicaRunning ? "Yes" : "No",
        lastSqlError: null,
        lastIoError: null,
        semiSync: { ...sound.semiSync!, masterEnabled: semiSyncOn, slaveEnabled: semiSyncOn },
      }),
      repairControl: {
        // The first call does not take (a server that refused it): the second look then has both
        // to put right, and shows their order.
        configureSemiSync: async (options) => {
          calls.push("semi-sync on");
          semiSyncCalls += 1;
          semiSyncOn = options.enabled && semiSyncCalls >= 2;
        },
        restartReplicaIo: async () => void calls.push("restart IO"),
        startReplica: async () => {
          calls.push("start replica");
          replicaRunning = true;
        },
      },
    };
    const { agent, parts } = await startDbAgent(restarted);
    // Threads stopped: no IO thread to restart; the replica is started on the poll after (a stop
    // seen twice), after semi-sync on that same poll, so that it connects as a semi-sync replica.
    await vi.waitFor(() => expect(calls).toEqual(["semi-sync on", "semi-sync on", "start replica"]), { timeout: 4_000, interval: 20 });
    expect(parts.store.events.filter((e) => e.type === "db.replica-started")).toHaveLength(1);
    await vi.waitFor(async () => expect((await agent.status()).db?.self).toMatchObject({ slaveIoRunning: "Yes", slaveSqlRunning: "Yes" }), { timeout: 3_000, interval: 20 });
    // In maintenance, a restart that leaves it stopped again is left alone.
    await parts.handlers!.maintenance!({ on: true, node: "this", reason: "MariaDB upgrade", by: "root" });
    replicaRunning = false;
    calls.length = 0;
    await new Promise((r) => setTimeout(r, 2_500));
    expect(calls).toEqual([]);
    expect((await agent.status()).db?.self).toMatchObject({ slaveIoRunning: "No", slaveSqlRunning: "No" });
    // Maintenance over: given back (no Uptime to tell a restart from a hand: in doubt, a restart).
    await parts.handlers!.maintenance!({ on: false, node: "this", reason: "", by: "root" });
    await vi.waitFor(() => expect(calls).toEqual(["start replica"]), { timeout: 4_000, interval: 20 });
  });

  it("db.replication.startAfterRestart false: a replica a restart left stopped is left for a person, said once", async () => {
    const db = memoryDatabase([]);
    const sound = await db.health();
    const starts: string[] = [];
    const stopped: AgentDatabase = {
      ...db,
      health: async () => ({ ...sound, slaveIoRunning: "No", slaveSqlRunning: "No", lastSqlError: null, lastIoError: null }),
      repairControl: { configureSemiSync: async () => undefined, restartReplicaIo: async () => undefined, startReplica: async () => void starts.push("start replica") },
    };
    const { parts } = await startDbAgent(stopped, { replication: { startAfterRestart: false } });
    await vi.waitFor(() => expect(parts.store.events.filter((e) => e.type === "db.replica-left-stopped")).toHaveLength(1), { timeout: 4_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(starts).toEqual([]);
    expect(parts.store.events.filter((e) => e.type === "db.replica-left-stopped")).toHaveLength(1);
  });

  it("read-only at start; writable only once the VIP is on its interface; read-only again before the gate closes", async () => {
    const parts = memoryParts();
    const journal: string[] = [];
    const setGate = parts.keepalived.setGate.bind(parts.keepalived);
    parts.keepalived.setGate = async (open) => {
      journal.push(`gate ${open ? "open" : "closed"}`);
      await setGate(open);
    };
    const db = memoryDatabase(journal);
    const agent = new Agent({ loaded: loadedConfig({ timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 }, db: { enabled: true } }), logger: silentLogger, components: { ...parts.components, database: db }, vipPollMs: 20 });
    agents.push(agent);
    await agent.start();
    // The replica is broken (SQL thread stopped) but the peer is gone: availability wins.
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    expect(journal[0]).toBe("db read-only");
    await new Promise((r) => setTimeout(r, 100));
    expect(journal).not.toContain("db writable");
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await vi.waitFor(() => expect(journal).toContain("db writable"), { timeout: 2_000, interval: 20 });
    expect(journal.indexOf("gate open")).toBeLessThan(journal.indexOf("db writable"));
    expect(parts.store.events.map((e) => e.type)).toEqual(expect.arrayContaining(["db.read-only", "db.writable", "db.takeover-behind"]));

    const status = await agent.status();
    expect(status).toMatchObject({ ownsVip: true, gwReachable: true, peerReachable: false, vipReachable: true, slaveIoRunning: "Yes", slaveSqlRuning: "No", dbStatus: "running", mnStatus: "running" });
    expect(status.db?.self).toMatchObject({ alive: true, readOnly: false, slaveSqlRunning: "No", broken: "SQL thread error: Duplicate entry '7' for key 'PRIMARY'", semiSync: { masterActive: false } });
    const text = renderStatus(status);
    expect(text).toMatch(/Slave_SQL_Running\s+No/);
    expect(text).toMatch(/last SQL error\s+Duplicate entry '7'/);
    expect(text).toMatch(/semi-sync\s+OFF \(asynchronous\)/);
    expect(text).toMatch(/read-only\s+no \(writable\)/);

    journal.length = 0;
    await agent.stop("test");
    expect(journal.slice(0, 2)).toEqual(["db read-only", "gate closed"]);
  });
});
