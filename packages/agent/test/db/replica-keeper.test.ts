/** ReplicaKeeper over an in-memory server: a replica a restart left stopped is started; one stopped by hand, or on an error, is not. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPLICA_RUN_FILE_NAME, ReplicaKeeper, replicaRunFile } from "../../src/db/replica-keeper.js";
import { replicaStoppedCleanly } from "../../src/db/replica-state.js";
import type { ServerRun, ServerRunMemory } from "../../src/db/server-run.js";
import type { DatabaseHealth, ThreadState } from "../../src/db/types.js";
import { replicatingHealth } from "./health-fixture.js";

function health(options: { io?: ThreadState; sql?: ThreadState; ioError?: string; sqlError?: string; configured?: boolean; alive?: boolean; uptime?: number } = {}): DatabaseHealth {
  return replicatingHealth({
    alive: options.alive ?? true,
    uptimeSeconds: options.uptime ?? null,
    replicaConfigured: options.configured ?? true,
    slaveIoRunning: options.io ?? "Yes",
    slaveSqlRunning: options.sql ?? "Yes",
    lastIoError: options.ioError ?? null,
    lastSqlError: options.sqlError ?? null,
  });
}
const stopped = (uptime?: number) => health({ io: "No", sql: "No", ...(uptime === undefined ? {} : { uptime }) });

class MemoryServer {
  starts = 0;
  failWith: string | null = null;
  async startReplica(): Promise<void> {
    if (this.failWith !== null) throw new Error(this.failWith);
    this.starts += 1;
  }
}

function keeper(server: MemoryServer, startAfterRestart = true, options: { memory?: ServerRunMemory; clock?: { ms: number; wallStep: number } } = {}) {
  const events: { type: string; message: string; fields: Record<string, unknown> }[] = [];
  // The wall clock apart from the monotonic one: a step of it must not change a judgement.
  const clock = options.clock ?? { ms: 1_000_000, wallStep: 0 };
  const k = new ReplicaKeeper({
    target: server,
    startAfterRestart,
    boundMs: 500,
    retryAfterFailureMs: 30_000,
    now: () => clock.ms,
    wallNow: () => 1_700_000_000_000 + clock.ms + clock.wallStep,
    record: (type, message, fields) => events.push({ type, message, fields }),
    ...(options.memory ? { memory: options.memory } : {}),
  });
  return { keeper: k, events, clock };
}

class MemoryOfRuns implements ServerRunMemory {
  saved: ServerRun | null = null;
  saves = 0;
  load(): ServerRun | null {
    return this.saved;
  }
  save(run: ServerRun): void {
    this.saves += 1;
    this.saved = run;
  }
}

describe("replicaStoppedCleanly", () => {
  it("both threads stopped with no error on a live server with a replica configured, nothing else", () => {
    expect(replicaStoppedCleanly(stopped())).toBe(true);
    expect(replicaStoppedCleanly(health())).toBe(false);
    expect(replicaStoppedCleanly(health({ io: "No" }))).toBe(false);
    expect(replicaStoppedCleanly(health({ io: "Connecting", sql: "No" }))).toBe(false);
    // Stopped on an error: the DBA's to read (setup-replication or resync repairs it).
    expect(replicaStoppedCleanly(health({ io: "No", sql: "No", sqlError: "Duplicate entry '7' for key 'PRIMARY'" }))).toBe(false);
    expect(replicaStoppedCleanly(health({ io: "No", sql: "No", ioError: "Got fatal error 1236 from master" }))).toBe(false);
    // No replica at all (replication not set up yet), or no server.
    expect(replicaStoppedCleanly(health({ io: "No", sql: "No", configured: false }))).toBe(false);
    expect(replicaStoppedCleanly({ ...stopped(), alive: false })).toBe(false);
  });
});

describe("ReplicaKeeper", () => {
  it("a server restarted with the replica stopped (skip-slave-start): started on the second look, said once", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    // Running in a run that started 100 s ago.
    await expect(k.keep(health({ uptime: 100 }))).resolves.toBeNull();
    // The server restarts (Uptime 1) and comes back with the replica stopped.
    clock.ms += 5_000;
    await expect(k.keep(stopped(1))).resolves.toBeNull();
    expect(server.starts).toBe(0);
    clock.ms += 1_000;
    await expect(k.keep(stopped(2))).resolves.toBe("started");
    expect(server.starts).toBe(1);
    expect(events.map((e) => e.type)).toEqual(["db.replica-started"]);
    expect(events[0]?.message).toMatch(/stopped with no error \(the server restarted: skip-slave-start in my\.cnf\?\): started it \(START SLAVE\)/);
    // Running again: nothing more.
    clock.ms += 1_000;
    await k.keep(health({ io: "Connecting", uptime: 3 }));
    await k.keep(health({ uptime: 4 }));
    expect(server.starts).toBe(1);
    expect(events).toHaveLength(1);
  });

  it("stopped on the running server (STOP SLAVE by hand): left stopped, said once; a later restart is given back", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    await k.keep(health({ uptime: 100 }));
    clock.ms += 5_000;
    await k.keep(stopped(105));
    clock.ms += 1_000;
    await expect(k.keep(stopped(106))).resolves.toBe("left-stopped");
    clock.ms += 1_000;
    await expect(k.keep(stopped(107))).resolves.toBe("left-stopped");
    expect(server.starts).toBe(0);
    expect(events.map((e) => e.type)).toEqual(["db.replica-left-stopped"]);
    expect(events[0]?.message).toMatch(/stopped on the running server .*left stopped.*not eligible to take over.*START SLAVE.*mnha maintenance on/);
    // The server restarts: the restart's stop is given back (it has been seen stopped for long enough).
    clock.ms += 10_000;
    await expect(k.keep(stopped(1))).resolves.toBe("started");
    expect(server.starts).toBe(1);
    // A replica never seen running after its start (no error either) is not started every other poll: the retry pause applies.
    for (let i = 0; i < 10; i++) {
      clock.ms += 1_000;
      await k.keep(stopped(2 + i));
    }
    expect(server.starts).toBe(1);
    clock.ms += 25_000;
    await k.keep(stopped(40));
    await k.keep(stopped(41));
    expect(server.starts).toBe(2);
  });

  it("a step of the wall clock (NTP after a VM pause) does not make a hand's stop look like a restart: MariaDB's Uptime moves with it", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    await k.keep(health({ uptime: 100 }));
    clock.ms += 1_000;
    await k.keep(stopped(101));
    clock.ms += 1_000;
    await expect(k.keep(stopped(102))).resolves.toBe("left-stopped");
    // The wall clock steps 1 h forward: the server's Uptime (wall-clock based) jumps with it.
    clock.wallStep = 3_600_000;
    clock.ms += 1_000;
    await expect(k.keep(stopped(103 + 3_600))).resolves.toBe("left-stopped");
    clock.ms += 1_000;
    await expect(k.keep(stopped(104 + 3_600))).resolves.toBe("left-stopped");
    expect(server.starts).toBe(0);
    expect(events.map((e) => e.type)).toEqual(["db.replica-left-stopped"]);
  });

  it("a replica that stays stopped after its start (an old server at the agent's first look) is started again after the pause, never taken for a hand's stop", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    await k.keep(stopped(86_400));
    await expect(k.keep(stopped(86_400))).resolves.toBe("started");
    for (let i = 1; i <= 29; i++) {
      clock.ms += 1_000;
      await expect(k.keep(stopped(86_400 + i))).resolves.toBeNull();
    }
    clock.ms += 2_000;
    await expect(k.keep(stopped(86_431))).resolves.toBe("started");
    expect(server.starts).toBe(2);
    expect(events.map((e) => e.type)).toEqual(["db.replica-started", "db.replica-started"]);
  });

  it("a command's own STOP SLAVE ... START SLAVE (one look stopped) passes unnoticed", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server);
    await k.keep(health({ uptime: 100 }));
    clock.ms += 1_000;
    await k.keep(stopped(101));
    clock.ms += 1_000;
    await k.keep(health({ io: "Connecting", uptime: 102 }));
    clock.ms += 1_000;
    await k.keep(stopped(103));
    clock.ms += 1_000;
    await k.keep(health({ uptime: 104 }));
    expect(server.starts).toBe(0);
    expect(events).toEqual([]);
  });

  it("at the agent's first look a stopped replica is started; in doubt (no Uptime, a young run) too", async () => {
    for (const [first, second] of [
      [stopped(86_400), stopped(86_401)],
      [stopped(), stopped()],
    ] as const) {
      const server = new MemoryServer();
      const { keeper: k, events } = keeper(server);
      await k.keep(first);
      await expect(k.keep(second)).resolves.toBe("started");
      expect(events[0]?.message).toMatch(/found so at this agent's first look/);
    }
    // Seen running only in its first seconds, then stopped: cannot tell a restart from a hand, so started.
    const server = new MemoryServer();
    const { keeper: k, clock } = keeper(server);
    await k.keep(health({ uptime: 3 }));
    clock.ms += 5_000;
    await k.keep(stopped(8));
    await expect(k.keep(stopped(9))).resolves.toBe("started");
  });

  it("db.replication.startAfterRestart false: a restart's stop is left for a person too, said once", async () => {
    const server = new MemoryServer();
    const { keeper: k, events, clock } = keeper(server, false);
    await k.keep(health({ uptime: 100 }));
    clock.ms += 10_000;
    await k.keep(stopped(1));
    await expect(k.keep(stopped(2))).resolves.toBe("left-stopped");
    await k.keep(stopped(3));
    expect(server.starts).toBe(0);
    expect(events.map((e) => e.type)).toEqual(["db.replica-left-stopped"]);
    expect(events[0]?.message).toMatch(/stopped with no error \(a restart with skip-slave-start\?\) and db\.replication\.startAfterRestart is false: left stopped.*run START SLAVE to resume$/);
  });

  it("never starts a replica stopped on an error, nor one not configured", async () => {
    const server = new MemoryServer();
    const { keeper: k, events } = keeper(server);
    for (let i = 0; i < 3; i++) {
      await k.keep(health({ io: "No", sql: "No", sqlError: "Duplicate entry '7' for key 'PRIMARY'" }));
      await k.keep(health({ io: "No", sql: "No", configured: false }));
    }
    expect(server.starts).toBe(0);
    expect(events).toEqual([]);
  });

  it("a failed start is said once, retried only after the pause, and a later success is said", async () => {
    const server = new MemoryServer();
    server.failWith = "Access denied; you need (at least one of) the SUPER, SLAVE ADMIN privilege(s)";
    const { keeper: k, events, clock } = keeper(server);
    await k.keep(stopped());
    await expect(k.keep(stopped())).resolves.toBeNull();
    expect(events.map((e) => e.type)).toEqual(["db.replica-start-failed"]);
    expect(events[0]?.message).toMatch(/starting it failed: .*SLAVE ADMIN.*not eligible to take over until it runs \(retried every 30 s/);
    clock.ms += 10_000;
    await k.keep(stopped());
    clock.ms += 25_000;
    await k.keep(stopped());
    expect(events).toHaveLength(1);
    server.failWith = null;
    clock.ms += 31_000;
    await expect(k.keep(stopped())).resolves.toBe("started");
    expect(events.map((e) => e.type)).toEqual(["db.replica-start-failed", "db.replica-started"]);
  });

  it("across an agent restart (its memory in the data dir): a replica stopped by hand on the running server is left; one a restart stopped is started", async () => {
    const memory = new MemoryOfRuns();
    const clock = { ms: 1_000_000, wallStep: 0 };
    const first = keeper(new MemoryServer(), true, { memory, clock });
    for (let i = 0; i < 30; i++) {
      await first.keeper.keep(health({ uptime: 5 + i }));
      clock.ms += 1_000;
    }
    // Saved once when first seen, once more when the run passed the judging age: not every poll.
    expect(memory.saves).toBe(2);
    // The agent stops; a DBA runs STOP SLAVE; the agent is restarted (a config change).
    clock.ms += 60_000;
    const server = new MemoryServer();
    const second = keeper(server, true, { memory, clock });
    await second.keeper.keep(stopped(95));
    await expect(second.keeper.keep(stopped(96))).resolves.toBe("left-stopped");
    expect(server.starts).toBe(0);
    expect(second.events.map((e) => e.type)).toEqual(["db.replica-left-stopped"]);
    // Had the server restarted meanwhile (with skip-slave-start), the stop is a restart's.
    const third = keeper(server, true, { memory, clock });
    await third.keeper.keep(stopped(20));
    await expect(third.keeper.keep(stopped(21))).resolves.toBe("started");
    expect(third.events[0]?.message).toMatch(/\(the server restarted: skip-slave-start/);
  });

  it("the memory file: written atomically and read back; missing, unreadable or edited into nonsense reads as no memory", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-replica-run-"));
    try {
      const file = replicaRunFile(dir);
      expect(file.load()).toBeNull();
      file.save({ startedAt: 1_700_000_000_000, uptimeSeconds: 42 });
      expect(file.load()).toEqual({ startedAt: 1_700_000_000_000, uptimeSeconds: 42 });
      for (const text of ["", "{", "[]", '{"startedAt": "yesterday", "uptimeSeconds": 3}', "null"]) {
        writeFileSync(join(dir, REPLICA_RUN_FILE_NAME), text);
        expect(file.load(), text).toBeNull();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a memory that cannot be written (a read-only data dir) leaves the keeper working from what it saw", async () => {
    const server = new MemoryServer();
    const failing: ServerRunMemory = { load: () => null, save: () => { throw new Error("EROFS: read-only file system"); } };
    const { keeper: k, events, clock } = keeper(server, true, { memory: failing });
    await k.keep(health({ uptime: 100 }));
    clock.ms += 1_000;
    await k.keep(stopped(101));
    clock.ms += 1_000;
    await expect(k.keep(stopped(102))).resolves.toBe("left-stopped");
    expect(events.map((e) => e.type)).toEqual(["db.replica-left-stopped"]);
  });
});
