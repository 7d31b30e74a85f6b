/**
 * NodeOps against a fake daemon: maintenance is persisted and re-applied after a restart,
 * audited with who and why, its hook's result recorded; --node peer travels over the (here:
 * in-memory) peer link and is refused plainly without one; stop-node refuses without a
 * healthy peer unless -stopvip, and stops nothing when it refuses. And the real ServiceMonitor
 * holds restores while asked to and restores calmly after.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deriveTimings, MnhaError, parseConfig, ServiceSchema, silentLogger, type LoadedConfig } from "@mnha/shared";
import type { LinkMessage, Role } from "@mnha/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ServiceMonitor } from "../../src/checks/service-monitor.js";
import type { DemoteResult, HealthEvent, ServiceStatus } from "../../src/contracts.js";
import type { CatchUpState } from "../../src/db/catch-up.js";
import { NodeOps, type NodeOpsHost } from "../../src/ops/node-ops.js";
import { closedPort, sleep, waitFor } from "../checks/helpers.js";
import { tempDir } from "../control/fake-control.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function loadedFor(dataDir: string, node = "mn1", extra: Record<string, unknown> = {}): LoadedConfig {
  const peer = node === "mn1" ? "mn2" : "mn1";
  const config = parseConfig({
    node: { name: node, address: node === "mn1" ? "10.0.0.11" : "10.0.0.12" },
    peers: [{ name: peer, address: node === "mn1" ? "10.0.0.12" : "10.0.0.11" }],
    vip: { address: "10.0.0.100", interface: "eth0" },
    gateway: { address: "10.0.0.1" },
    auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
    timings: {},
    arpGuard: {},
    keepalived: {},
    dataDir,
    services: [
      { name: "mn", check: { kind: "tcp", port: 1 }, stop: [process.execPath, "-e", `require('fs').appendFileSync(${JSON.stringify(join(dataDir, "stopped.log"))}, 'mn\\n')`] },
      { name: "ui", check: { kind: "tcp", port: 2 }, stop: [process.execPath, "-e", `require('fs').appendFileSync(${JSON.stringify(join(dataDir, "stopped.log"))}, 'ui\\n')`] },
    ],
    ...extra,
  });
  return { file: join(dataDir, "mnha.yaml"), config, secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=", derived: { ...deriveTimings(config), keepalivedConfigPath: join(dataDir, "keepalived.conf") } };
}

interface FakeHost extends NodeOpsHost {
  fed: { kind: string; on: boolean }[];
  holds: Map<string, readonly string[] | null>;
  records: { type: string; message: string; fields: Record<string, unknown> }[];
  sent: LinkMessage[];
  role: Role;
  peerProblem: string | null;
  connected: boolean;
  demoteResult: DemoteResult;
  onSend?: (message: LinkMessage) => void;
}

function fakeHost(loaded: LoadedConfig): FakeHost {
  const host: FakeHost = {
    self: loaded.config.node.name,
    peer: loaded.config.peers[0]!.name,
    loaded,
    logger: silentLogger(),
    wallNow: () => Date.now(),
    fed: [],
    holds: new Map(),
    records: [],
    sent: [],
    role: "standby",
    peerProblem: null,
    connected: true,
    demoteResult: { ok: true, from: "mn1", to: "mn2", epoch: 3, message: "VIP handed to mn2", tookMs: 100 },
    record: (type, message, fields) => void host.records.push({ type, message, fields }),
    feedCore: (input) => void host.fed.push(input),
    services: {
      holdRestores: (key, services) => void host.holds.set(key, services),
      releaseRestores: (key) => void host.holds.delete(key),
      statuses: (): ServiceStatus[] => [],
      checkNow: async () => undefined,
    },
    election: () => ({ role: host.role, peerProblem: host.peerProblem }),
    demote: async () => {
      host.role = "standby";
      return host.demoteResult;
    },
    send: (message) => {
      if (!host.connected) return false;
      host.sent.push(message);
      host.onSend?.(message);
      return true;
    },
    peerConnected: () => host.connected,
    statusJson: async () => "{}",
  };
  return host;
}

function scratch(): string {
  const dir = tempDir("mnha-ops-");
  cleanups.push(dir.remove);
  return dir.path;
}

describe("maintenance mode", () => {
  it("is persisted, re-applied by a restarted agent, and audited with who and why", async () => {
    const dataDir = scratch();
    const host = fakeHost(loadedFor(dataDir));
    const ops = new NodeOps(host);
    ops.start();
    const on = await ops.maintenance({ on: true, node: "this", reason: "kernel update", by: "alice (uid 0)" });
    expect(on).toMatchObject({ node: "mn1", on: true, changed: true, reminder: expect.stringMatching(/VM HA/) });
    expect(host.fed).toEqual([{ kind: "maintenance", on: true }]);
    expect(host.holds.get("maintenance")).toBeNull();
    expect(host.records.find((r) => r.type === "maintenance.on")).toMatchObject({ fields: { by: "alice (uid 0)", reason: "kernel update" } });
    expect(host.sent.at(-1)).toMatchObject({ type: "ops-state", maintenance: { by: "alice (uid 0)", reason: "kernel update" } });
    expect((await ops.maintenance({ on: true, node: "this", reason: "again", by: "bob" })).changed).toBe(false);

    const restarted = fakeHost(loadedFor(dataDir));
    new NodeOps(restarted).start();
    expect(restarted.fed).toEqual([{ kind: "maintenance", on: true }]);
    expect(restarted.holds.get("maintenance")).toBeNull();
    expect(restarted.records.map((r) => r.type)).toContain("maintenance.resumed");

    const off = await ops.maintenance({ on: false, node: "this", reason: "", by: "alice (uid 0)" });
    expect(off.changed).toBe(true);
    expect(host.holds.has("maintenance")).toBe(false);
    expect(JSON.parse(readFileSync(join(dataDir, "ops-state.json"), "utf8"))).toMatchObject({ maintenance: null });
  });

  it("a corrupt state file means maintenance ON (when in doubt, act on nothing), said loudly", () => {
    const dataDir = scratch();
    writeFileSync(join(dataDir, "ops-state.json"), "{not json");
    const host = fakeHost(loadedFor(dataDir));
    new NodeOps(host).start();
    expect(host.fed).toEqual([{ kind: "maintenance", on: true }]);
    expect(host.records.map((r) => r.type)).toContain("ops.state-unreadable");
  });

  it("runs the onEnter / onExit hooks and audits their result, failures included", async () => {
    const dataDir = scratch();
    const marker = join(dataDir, "vm-ha");
    const host = fakeHost(
      loadedFor(dataDir, "mn1", {
        maintenance: { onEnter: [process.execPath, "-e", `require('fs').writeFileSync(${JSON.stringify(marker)}, 'off')`], onExit: [process.execPath, "-e", "process.exit(3)"] },
      }),
    );
    const ops = new NodeOps(host);
    ops.start();
    const on = await ops.maintenance({ on: true, node: "this", reason: "", by: "root" });
    expect(on.hook).toMatchObject({ name: "maintenance.onEnter", ok: true });
    expect(readFileSync(marker, "utf8")).toBe("off");
    const off = await ops.maintenance({ on: false, node: "this", reason: "", by: "root" });
    expect(off.hook).toMatchObject({ name: "maintenance.onExit", ok: false, detail: expect.stringMatching(/exit 3/) });
    expect(host.records.filter((r) => r.type === "maintenance.hook").map((r) => r.fields["ok"])).toEqual([true, false]);
  });

  it("--node peer goes over the peer link and comes back with the peer's answer; without a link it is refused and nothing changes", async () => {
    const hostA = fakeHost(loadedFor(scratch(), "mn1"));
    const hostB = fakeHost(loadedFor(scratch(), "mn2"));
    const a = new NodeOps(hostA);
    const b = new NodeOps(hostB);
    a.start();
    b.start();
    hostA.onSend = (message) => setImmediate(() => b.handleMessage(message));
    hostB.onSend = (message) => setImmediate(() => a.handleMessage(message));
    const result = await a.maintenance({ on: true, node: "peer", reason: "db work", by: "carol" });
    expect(result.peer).toMatchObject({ node: "mn2", ok: true });
    expect(b.status().self.maintenance).toMatchObject({ by: "carol via mn1", reason: "db work" });
    expect(a.status().self.maintenance).toBeNull();
    await sleep(10);
    expect(a.status().peer?.maintenance).toMatchObject({ reason: "db work" });

    hostA.connected = false;
    const refused = a.maintenance({ on: true, node: "both", reason: "", by: "carol" });
    await expect(refused).rejects.toMatchObject({ code: "PEER_NOT_CONNECTED", message: expect.stringMatching(/nothing was changed/) });
    expect(a.status().self.maintenance).toBeNull();
  });
});

describe("stop-node", () => {
  it("on the holder with no healthy peer: refused, nothing stopped, nothing persisted", async () => {
    const dataDir = scratch();
    const host = fakeHost(loadedFor(dataDir));
    host.role = "holder";
    host.peerProblem = "mn2 is not connected";
    const ops = new NodeOps(host);
    ops.start();
    const attempt = ops.stopNode({ keepUi: false, stopVip: false, by: "root" });
    await expect(attempt).rejects.toBeInstanceOf(MnhaError);
    await expect(attempt).rejects.toMatchObject({ code: "OPERATION_REFUSED", message: expect.stringMatching(/mn2 cannot take it .*nothing was stopped/), hint: expect.stringMatching(/-stopvip/) });
    expect(existsSync(join(dataDir, "stopped.log"))).toBe(false);
    expect(host.fed).toEqual([]);
    expect(ops.status().self.stopped).toBeNull();
  });

  it("on the holder with a healthy peer: hands over first, then stops (the UI kept with -keepui) and persists the stopped state", async () => {
    const dataDir = scratch();
    const host = fakeHost(loadedFor(dataDir));
    host.role = "holder";
    const ops = new NodeOps(host);
    ops.start();
    const result = await ops.stopNode({ keepUi: true, stopVip: false, by: "root" });
    expect(result).toMatchObject({ ok: true, handedTo: "mn2", vipReleased: false });
    expect(readFileSync(join(dataDir, "stopped.log"), "utf8")).toBe("mn\n");
    expect(host.fed).toEqual([{ kind: "node-stopped", on: true }]);
    expect(host.holds.get("stopped")).toEqual(["mn"]);
    const restarted = fakeHost(loadedFor(dataDir));
    new NodeOps(restarted).start();
    expect(restarted.fed).toEqual([{ kind: "node-stopped", on: true }]);

    const started = await ops.startNode({ by: "root" });
    expect(started.ok).toBe(true);
    expect(host.fed.at(-1)).toEqual({ kind: "node-stopped", on: false });
    expect(host.holds.has("stopped")).toBe(false);
  });

  it("-stopvip on a holder with no healthy peer gives the VIP up and stops", async () => {
    const dataDir = scratch();
    const host = fakeHost(loadedFor(dataDir));
    host.role = "holder";
    host.peerProblem = "mn2 is not eligible";
    const ops = new NodeOps(host);
    ops.start();
    const result = await ops.stopNode({ keepUi: false, stopVip: true, by: "root" });
    expect(result).toMatchObject({ ok: true, handedTo: null, vipReleased: true });
    expect(readFileSync(join(dataDir, "stopped.log"), "utf8")).toBe("mn\nui\n");
  });

  it("is refused in maintenance mode", async () => {
    const host = fakeHost(loadedFor(scratch()));
    const ops = new NodeOps(host);
    ops.start();
    await ops.maintenance({ on: true, node: "this", reason: "", by: "root" });
    await expect(ops.stopNode({ keepUi: false, stopVip: false, by: "root" })).rejects.toMatchObject({ code: "OPERATION_REFUSED", message: expect.stringMatching(/maintenance mode/) });
  });
});

describe("ServiceMonitor restore holds", () => {
  it("holds restores while asked, and after release restores once, after the normal first backoff", async () => {
    const dataDir = scratch();
    const marker = join(dataDir, "restores.log");
    const monitor = new ServiceMonitor({
      services: [
        ServiceSchema.parse({
          name: "mn",
          check: { kind: "tcp", port: await closedPort(), intervalMs: 50, timeoutMs: 200, rise: 1, fall: 1 },
          restore: { command: [process.execPath, "-e", `require('fs').appendFileSync(${JSON.stringify(marker)}, Date.now() + '\\n')`], timeoutMs: 2_000, maxAttempts: 1, backoffInitialMs: 300, backoffMaxMs: 300 },
        }),
      ],
      logger: silentLogger(),
    });
    const events: HealthEvent[] = [];
    monitor.onEvent((e) => void events.push(e));
    monitor.holdRestores("maintenance", null);
    cleanups.push(() => monitor.stop());
    await monitor.start();
    expect(await waitFor(() => events.some((e) => e.kind === "service-changed" && !e.healthy), 2_000)).toBe(true);
    await sleep(800);
    expect(existsSync(marker)).toBe(false);
    expect(monitor.statuses()[0]).toMatchObject({ healthy: false, restoreState: "held" });
    const releasedAt = Date.now();
    monitor.releaseRestores("maintenance");
    // The restore command's appendFileSync creates the file before it writes the line: wait for the line.
    const restoreLine = (): string => (existsSync(marker) ? readFileSync(marker, "utf8").trim().split("\n")[0] ?? "" : "");
    expect(await waitFor(() => restoreLine() !== "", 3_000)).toBe(true);
    const restoredAt = Number(restoreLine());
    expect(restoredAt - releasedAt).toBeGreaterThanOrEqual(250);
    await sleep(400);
    expect(events.filter((e) => e.kind === "restore-started")).toHaveLength(1);
  });
});

describe("start-node waits for the database to catch up", () => {
  const behind = (lag: number, tx: number): CatchUpState => ({ caughtUp: false, detail: `catching up with mn2: ${lag} s behind, ${tx} transactions to apply`, lagSeconds: lag, transactionsBehind: tx });
  const caughtUp: CatchUpState = { caughtUp: true, detail: "caught up with mn2 (at 1-1-5,2-2-90)", lagSeconds: 0, transactionsBehind: 0 };

  async function stoppedNode(answers: CatchUpState[] | null, peerAlive = true) {
    const host = fakeHost(loadedFor(scratch()));
    const asked: CatchUpState[] = [];
    if (answers !== null) {
      host.dbCatchUp = async () => {
        const state = answers.length > 1 ? answers.shift()! : answers[0]!;
        asked.push(state);
        return { configured: true, peerAlive, state };
      };
    }
    const ops = new NodeOps(host);
    ops.start();
    await ops.stopNode({ keepUi: false, stopVip: false, by: "root" });
    host.fed.length = 0;
    return { host, ops, asked };
  }

  it("the node stays stopped until its database has caught up, then becomes eligible", async () => {
    const { host, ops, asked } = await stoppedNode([behind(12, 340), behind(3, 40), caughtUp]);
    const pending = ops.startNode({ by: "root", dbCatchUpTimeoutMs: 30_000 });
    await sleep(200);
    // Still waiting: the node-stopped mode has not been lifted.
    expect(host.fed).toEqual([]);
    expect(ops.status().self.stopped).not.toBeNull();
    const result = await pending;
    expect(asked).toHaveLength(3);
    expect(result).toMatchObject({ ok: true, db: { outcome: "caught-up", lagSeconds: 0, transactionsBehind: 0 } });
    expect(result.message).toMatch(/caught up with mn2/);
    expect(host.fed).toEqual([{ kind: "node-stopped", on: false }]);
    expect(ops.status().self.stopped).toBeNull();
  });

  it("past the bound: refused with the lag and what to do; the node stays stopped", async () => {
    const { host, ops } = await stoppedNode([behind(40, 9000)]);
    const result = await ops.startNode({ by: "root", dbCatchUpTimeoutMs: 1_000 });
    expect(result.ok).toBe(false);
    expect(result.db).toMatchObject({ outcome: "behind", lagSeconds: 40, transactionsBehind: 9000 });
    // The message gives the time actually waited: the bound (1 s) plus up to a poll, more on a loaded machine.
    expect(result.message).toMatch(/did NOT catch up within \d+ s: catching up with mn2: 40 s behind, 9000 transactions/);
    expect(result.db?.waitedMs).toBeGreaterThanOrEqual(1_000);
    expect(result.message).toMatch(/stays stopped.*mnha db status.*mnha db resync.*mnha start-node again/);
    expect(host.fed).toEqual([]);
    expect(ops.status().self.stopped).not.toBeNull();
    expect(host.records.find((r) => r.type === "node.start-db-behind")).toBeDefined();
  });

  it("the wait is timed on the monotonic clock: a wall-clock step (NTP, an operator's date -s) neither cuts it short nor stretches it", async () => {
    // Date.now() jumps an hour forward after the first answer, then an hour back after the second.
    let answered = 0;
    let wallOffsetMs = 0;
    const realNow = Date.now.bind(Date);
    const wall = vi.spyOn(Date, "now").mockImplementation(() => realNow() + wallOffsetMs);
    try {
      const { host, ops } = await stoppedNode([behind(12, 340), behind(3, 40), caughtUp]);
      const ask = host.dbCatchUp!;
      host.dbCatchUp = async () => {
        answered += 1;
        if (answered === 2) wallOffsetMs = 3_600_000;
        if (answered === 3) wallOffsetMs = -3_600_000;
        return ask.call(host);
      };
      const result = await ops.startNode({ by: "root", dbCatchUpTimeoutMs: 30_000 });
      expect(result).toMatchObject({ ok: true, db: { outcome: "caught-up" } });
      expect(answered).toBe(3);
      expect(result.db?.waitedMs).toBeGreaterThanOrEqual(0);
      expect(result.db?.waitedMs).toBeLessThan(30_000);
    } finally {
      wall.mockRestore();
    }
  });

  it("without a db section it says so and does not wait", async () => {
    const { host, ops } = await stoppedNode(null);
    const result = await ops.startNode({ by: "root", dbCatchUpTimeoutMs: 60_000 });
    expect(result).toMatchObject({ ok: true, db: { outcome: "not-configured" } });
    expect(result.message).toMatch(/no database configured \(db.enabled is false\): not waiting/);
    expect(host.fed).toEqual([{ kind: "node-stopped", on: false }]);
  });

  it("with the peer unreachable there is nothing to catch up with: it says so and does not wait", async () => {
    const { host, ops, asked } = await stoppedNode([behind(0, 0)], false);
    const result = await ops.startNode({ by: "root", dbCatchUpTimeoutMs: 60_000 });
    expect(asked).toHaveLength(1);
    expect(result).toMatchObject({ ok: true, db: { outcome: "peer-unreachable" } });
    expect(host.fed).toEqual([{ kind: "node-stopped", on: false }]);
  });
});

describe("services stopped and started in maintenance (mnha restore)", () => {
  function withDb(dataDir: string): LoadedConfig {
    const log = JSON.stringify(join(dataDir, "stopped.log"));
    const append = (name: string) => [process.execPath, "-e", `require('fs').appendFileSync(${log}, '${name}\\n')`];
    return loadedFor(dataDir, "mn1", {
      services: [
        { name: "mn", check: { kind: "tcp", port: 1 }, stop: append("mn"), start: append("start mn") },
        { name: "ui", check: { kind: "tcp", port: 2 }, stop: append("ui") },
        { name: "db", check: { kind: "tcp", port: 3 }, stop: append("db") },
      ],
    });
  }

  it("is refused outside maintenance, and refused with maintenance off, changing nothing", async () => {
    const dataDir = scratch();
    const ops = new NodeOps(fakeHost(withDb(dataDir)));
    ops.start();
    await expect(ops.maintenance({ on: false, node: "this", reason: "", by: "alice", services: "stop" })).rejects.toThrow(/only together with maintenance on/);
    expect(existsSync(join(dataDir, "stopped.log"))).toBe(false);
  });

  it("stops the MN services but keeps the UI and the database, the VIP untouched; start starts only what is down", async () => {
    const dataDir = scratch();
    const host = fakeHost(withDb(dataDir));
    host.role = "holder";
    let down: string[] = [];
    const startedByCommand = (name: string) => existsSync(join(dataDir, "stopped.log")) && readFileSync(join(dataDir, "stopped.log"), "utf8").includes(`start ${name}`);
    host.services.statuses = () => ["mn", "ui", "db"].map((name) => ({ name, healthy: !down.includes(name) || startedByCommand(name) }) as ServiceStatus);
    const ops = new NodeOps(host);
    ops.start();
    const stopped = await ops.maintenance({ on: true, node: "this", reason: "restore", by: "alice", services: "stop" });
    expect(stopped.services).toMatchObject({ ok: true, message: "mn1: stopped mn; kept running: ui, db" });
    expect(readFileSync(join(dataDir, "stopped.log"), "utf8")).toBe("mn\n");
    expect(host.holds.get("maintenance")).toBeNull(); // the monitor restores nothing meanwhile
    expect(host.fed).toEqual([{ kind: "maintenance", on: true }]); // no node-stopped: the VIP stays
    down = ["mn"];
    const started = await ops.maintenance({ on: true, node: "this", reason: "restore", by: "alice", services: "start" });
    expect(started.changed).toBe(false); // already in maintenance
    expect(started.services?.ok).toBe(true);
    expect(started.services?.commands.map((c) => c.name)).toEqual(["mn"]);
    expect(host.records.map((r) => r.type)).toEqual(expect.arrayContaining(["maintenance.services-stop", "maintenance.services-start"]));
  });

  it("a service that does not come back is a failure, named", async () => {
    const dataDir = scratch();
    const host = fakeHost(withDb(dataDir));
    host.services.statuses = () => [{ name: "mn", healthy: false } as ServiceStatus];
    const ops = new NodeOps(host);
    ops.start();
    await ops.maintenance({ on: true, node: "this", reason: "restore", by: "alice" });
    const realNow = performance.now.bind(performance);
    let offset = 0;
    // The 60 s wait (timed on the monotonic clock) passes at once.
    const monotonic = vi.spyOn(performance, "now").mockImplementation(() => realNow() + (offset += 30_000));
    try {
      const started = await ops.maintenance({ on: true, node: "this", reason: "restore", by: "alice", services: "start" });
      expect(started.services?.ok).toBe(false);
      expect(started.services?.message).toMatch(/FAILED to start mn \(.*not healthy 60 s after the start\)/);
    } finally {
      monotonic.mockRestore();
    }
  });

  it("--node both asks the peer to do the same over the link", async () => {
    const dataDir = scratch();
    const host = fakeHost(withDb(dataDir));
    host.onSend = (message) => {
      if (message.type === "ops-request") queueMicrotask(() => ops.handleMessage({ type: "ops-reply", id: message.id, ok: true, message: `mn2 is in maintenance mode; mn2: stopped mn (${message.services})` }));
    };
    const ops = new NodeOps(host);
    ops.start();
    const result = await ops.maintenance({ on: true, node: "both", reason: "restore", by: "alice", services: "stop" });
    expect(host.sent.find((m) => m.type === "ops-request")).toMatchObject({ action: "maintenance-on", services: "stop" });
    expect(result.peer).toMatchObject({ ok: true, message: expect.stringContaining("stopped mn (stop)") });
  });
});

describe("db-reseed (mnha restore: the standby copies the holder's database)", () => {
  function pair(options: { protocol?: number; ownerSeenByPeer?: string | null; seedFails?: boolean } = {}) {
    const hostA = fakeHost(loadedFor(scratch(), "mn1"));
    const hostB = fakeHost(loadedFor(scratch(), "mn2"));
    const seeds: string[] = [];
    hostA.role = "holder";
    hostA.vipOwner = async () => "mn1";
    hostB.vipOwner = async () => (options.ownerSeenByPeer === undefined ? "mn1" : options.ownerSeenByPeer);
    hostA.peerProtocolVersion = () => options.protocol ?? 3;
    hostB.reseedFromPeer = async (progress) => {
      seeds.push("seed");
      progress("copied 1.0 MiB in 1.0 s");
      if (options.seedFails === true) throw new MnhaError("DB_SEED_FAILED", "mariadb-dump on the peer failed (exit 2): Access denied", { hint: "fix the cause" });
      return "mn2 is a copy of mn1's database at GTID 1-1-40";
    };
    const a = new NodeOps(hostA);
    const b = new NodeOps(hostB);
    a.start();
    b.start();
    hostA.onSend = (message) => setImmediate(() => b.handleMessage(message));
    hostB.onSend = (message) => setImmediate(() => a.handleMessage(message));
    return { a, b, hostA, hostB, seeds };
  }
  const reseedRequests = (host: FakeHost) => host.sent.filter((m) => m.type === "ops-request" && m.action === "db-reseed");

  it("from the holder with the pair in maintenance: the peer copies, records start and finish, and the answer comes back", async () => {
    const { a, hostA, hostB, seeds } = pair();
    await a.maintenance({ on: true, node: "both", reason: "restore", by: "carol" });
    await sleep(10);
    const result = await a.reseedPeer({ by: "carol" });
    expect(result).toEqual({ node: "mn2", ok: true, message: "mn2 is a copy of mn1's database at GTID 1-1-40" });
    expect(seeds).toEqual(["seed"]);
    expect(hostB.records.map((r) => r.type)).toEqual(expect.arrayContaining(["db.reseed.started", "db.reseed.progress", "db.reseed.finished"]));
    expect(hostB.records.find((r) => r.type === "db.reseed.started")?.fields).toMatchObject({ by: "carol via mn1", node: "mn2", from: "mn1" });
    expect(hostA.records.map((r) => r.type)).toEqual(expect.arrayContaining(["operator.db-reseed.peer", "operator.db-reseed.peer-done"]));
  });

  it("a peer on protocol v2 (an older suite) is never sent the request: PEER_TOO_OLD, telling to run upgrade-ha first", async () => {
    const { a, hostA, seeds } = pair({ protocol: 2 });
    await a.maintenance({ on: true, node: "both", reason: "restore", by: "carol" });
    await sleep(10);
    await expect(a.reseedPeer({ by: "carol" })).rejects.toMatchObject({ code: "PEER_TOO_OLD", message: expect.stringMatching(/mn2's agent speaks peer protocol v2.*nothing was sent/), hint: expect.stringMatching(/mnha upgrade-ha/) });
    expect(reseedRequests(hostA)).toEqual([]);
    expect(seeds).toEqual([]);
  });

  it("outside maintenance, or not on the VIP holder: refused before anything is sent", async () => {
    const { a, hostA, seeds } = pair();
    await expect(a.reseedPeer({ by: "carol" })).rejects.toMatchObject({ code: "OPERATION_REFUSED", message: expect.stringMatching(/not in maintenance.*nothing was sent/) });
    await a.maintenance({ on: true, node: "both", reason: "restore", by: "carol" });
    await sleep(10);
    hostA.vipOwner = async () => "mn2";
    await expect(a.reseedPeer({ by: "carol" })).rejects.toMatchObject({ code: "OPERATION_REFUSED", message: expect.stringMatching(/mn1 does not hold the VIP \(mn2 does\)/) });
    expect(reseedRequests(hostA)).toEqual([]);
    expect(seeds).toEqual([]);
  });

  it("the peer refuses a request from a node it does not see holding the VIP, and copies nothing", async () => {
    const { a, seeds } = pair({ ownerSeenByPeer: null });
    await a.maintenance({ on: true, node: "both", reason: "restore", by: "carol" });
    await sleep(10);
    const result = await a.reseedPeer({ by: "carol" });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/mn2 refuses the re-seed: mn1 does not hold the VIP \(nobody does\); nothing was changed/);
    expect(seeds).toEqual([]);
  });

  it("a failed copy on the peer comes back as ok: false with its reason and is recorded there", async () => {
    const { a, hostB } = pair({ seedFails: true });
    await a.maintenance({ on: true, node: "both", reason: "restore", by: "carol" });
    await sleep(10);
    const result = await a.reseedPeer({ by: "carol" });
    expect(result).toMatchObject({ node: "mn2", ok: false, message: expect.stringMatching(/mn2 could not copy mn1's database: mariadb-dump on the peer failed \(exit 2\): Access denied \(fix the cause\)/) });
    expect(hostB.records.find((r) => r.type === "db.reseed.failed")).toBeDefined();
  });
});
