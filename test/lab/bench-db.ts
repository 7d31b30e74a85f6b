/**
 * The database benchmark (issue 8): a writer in the client namespace inserts numbered rows
 * through the VIP into a real MariaDB pair and counts a row only once its COMMIT returned.
 * Per fault and trial: the longest time without a successful COMMIT, acknowledged rows
 * missing on the holder, rows written on a read-only server, instants with both servers
 * writable (50 ms sampler), whether both CHECKSUM TABLE values match after the old holder
 * rejoined. Side by side in the same run: mnha (semi-sync, read_only managed) and a
 * vendor-like set-up (plain Keepalived, unmanaged asynchronous master–master replication,
 * both servers writable). Then `mnha db seed` speed and the standby's catch-up time.
 *
 * Run through bench/db-failover.ts (see docs/benchmarks.md).
 */
import { createLogger, MnhaError } from "@mnha/shared";
import {
  caughtUp,
  checksum,
  db,
  longestAckGap,
  mnhaCli,
  ReadOnlySampler,
  replicatingBothWays,
  rowsOn,
  semiSyncActive,
  setSemiSync,
  setUpPair,
  sql,
  VipWriter,
  writable,
} from "./bench-db-parts.js";
import { csv, dateStamp, describeMachine, RESULTS_DIR, intFlag, labelFlag, machineLines, markdownTable, ms, parseFlags, summarize, writeResults, type MachineDescription } from "./bench-report.js";
import { MnhaSystem, PlainKeepalivedSystem, type SystemUnderTest } from "./bench-systems.js";
import { LAB_NAME, LAB_PREFIX, MN_NODES, REPO_ROOT, nodePaths, type MnNode } from "./constants.js";
import { monoNow, sleep, waitFor } from "./exec.js";
import { Lab } from "./lab.js";
import { serverIdOf } from "./mariadb.js";
import { PLAIN_KEEPALIVED_COMMON, PLAIN_KEEPALIVED_FAST } from "./plain-keepalived.js";
import { readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";

export type DbFault = "service-kill" | "demote" | "db-kill" | "crash";
const FAULTS: readonly DbFault[] = ["service-kill", "demote", "db-kill", "crash"];
export type DbSystemName = "mnha" | "vendor-like";
const SYSTEMS: readonly DbSystemName[] = ["mnha", "vendor-like"];
const FAULT_TITLES: Record<DbFault, string> = {
  "service-kill": "holder's MN service killed",
  demote: "planned demote",
  "db-kill": "holder's MariaDB killed",
  crash: "holder crashed (wire cut, processes killed)",
};
/** Rows acknowledged before the fault, and after writes resumed, before the trial ends. */
const ROWS_BEFORE = 30;
const ROWS_AFTER = 30;
/** Writes must resume within this (else the trial is an error with what was seen). */
const RESUME_TIMEOUT_MS = 30_000;
/** Sampling after writes resumed (a late flap shows in the gap). */
const OBSERVE_MS = 1_000;
/** Debian's mariadb.service: Restart=on-abnormal, RestartSec=5s (what restarts the vendor's killed server). */
const SYSTEMD_RESTART_SEC_MS = 5_000;
const USAGE =
  "MNHA_LAB=bench node --import tsx bench/db-failover.ts [--trials 10] [--seed-mb 1024] [--lag-seconds 5,15,30] [--systems mnha,vendor-like] [--faults service-kill,demote,db-kill,crash] [--vendor-profile common|fast] [--skip-seed] [--skip-catch-up] [--max-minutes N] [--keep-up] [--label NAME]";

/** The issue's targets. */
const TARGETS = { serviceKillMedianMs: 1_500, demoteMedianMs: 1_500, crashMedianMs: 2_000 };

// ---------------------------------------------------------------------------- the two systems

interface DbSystem {
  readonly name: DbSystemName;
  readonly description: string;
  readonly keepalived: SystemUnderTest;
  /** Puts the pair in this system's mode: agents or plain keepalived, read_only, semi-sync. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A stable pair whose holder's server is writable and both replicas run. */
  ready(): Promise<{ holder: MnNode; standby: MnNode }>;
  /** Heals, boots, restarts what systemd / the operator would; the pair back to ready. */
  recover(): Promise<void>;
  /** After a MariaDB kill: what restarts the server when the system does not. */
  afterDbKill(holder: MnNode): Promise<void>;
}

class MnhaDb implements DbSystem {
  readonly name = "mnha" as const;
  readonly description = "mnha agents (read_only managed, semi-sync AFTER_SYNC, 1 s timeout); planned switchover `mnha demote --yes`; the killed MariaDB restarted by the agent's restore command (read-only)";
  readonly keepalived: MnhaSystem;

  constructor(private readonly lab: Lab) {
    this.keepalived = new MnhaSystem(lab);
  }

  async start(): Promise<void> {
    // Read-only on both before the agents: the agent makes its holder's writable.
    for (const node of MN_NODES) await db(node).setReadOnly(true);
    await setSemiSync(true);
    await this.keepalived.start();
  }

  stop(): Promise<void> {
    return this.keepalived.stop();
  }

  async ready(): Promise<{ holder: MnNode; standby: MnNode }> {
    const stable = await this.keepalived.waitStable(60_000);
    await waitFor(`${stable.holder}'s server writable`, async () => ((await writable(stable.holder).catch(() => false)) ? true : undefined), { timeoutMs: 30_000 });
    return stable;
  }

  async recover(): Promise<void> {
    try {
      await this.keepalived.recover();
    } catch {
      // Once more: an agent that exited meanwhile is started again (as systemd's Restart= would).
      await this.keepalived.recover();
    }
    // A restarted server forgets SET GLOBAL semi-sync: its agent gives it back (docs/database.md).
    await semiSyncGivenBack();
  }

  async afterDbKill(): Promise<void> {
    // The agent's restore command restarts it.
  }
}

class VendorDb implements DbSystem {
  readonly name = "vendor-like" as const;
  readonly description: string;
  readonly keepalived: PlainKeepalivedSystem;

  constructor(private readonly lab: Lab, profile: "common" | "fast") {
    const p = profile === "common" ? PLAIN_KEEPALIVED_COMMON : PLAIN_KEEPALIVED_FAST;
    this.keepalived = new PlainKeepalivedSystem(lab, { ...p, name: profile === "common" ? "keepalived-common" : "keepalived-fast" });
    this.description = `plain Keepalived (${this.keepalived.name}: VRRPv${p.vrrpVersion}, advert ${p.advertIntS} s, MN service checked every ${p.serviceCheck?.intervalS} s, fall ${p.serviceCheck?.fall}), master–master asynchronous replication, both servers writable, nothing manages read_only; planned switchover = keepalived stopped on the master; a killed MariaDB restarted after 5 s (systemd Restart=on-abnormal, RestartSec=5s)`;
  }

  async start(): Promise<void> {
    await this.keepalived.start();
    await setSemiSync(false);
    for (const node of MN_NODES) await db(node).setReadOnly(false);
  }

  stop(): Promise<void> {
    return this.keepalived.stop();
  }

  async ready(): Promise<{ holder: MnNode; standby: MnNode }> {
    const stable = await this.keepalived.waitStable(60_000);
    for (const node of MN_NODES) await db(node).setReadOnly(false);
    return stable;
  }

  async recover(): Promise<void> {
    await this.keepalived.recover();
    for (const node of MN_NODES) await db(node).setReadOnly(false);
  }

  async afterDbKill(holder: MnNode): Promise<void> {
    await sleep(SYSTEMD_RESTART_SEC_MS);
    await this.lab.startService(holder, "db");
  }
}

/** Waits until the agents gave semi-sync back where a restart turned it off (both sides, the replica reconnected). */
async function semiSyncGivenBack(): Promise<void> {
  let last = "";
  await waitFor(
    "semi-sync on again on both servers (the agents' semi-sync keeper)",
    async () => {
      const all = await Promise.all(MN_NODES.map(async (node) => ({ node, h: await db(node).health() })));
      last = all.map(({ node, h }) => `${node}: ${h.alive ? JSON.stringify(h.semiSync) : "down"}`).join("; ");
      return all.every(({ h }) => !h.alive || (h.semiSync?.masterEnabled === true && h.semiSync.slaveEnabled && h.semiSync.slaveActive)) ? true : undefined;
    },
    { timeoutMs: 30_000, describeLast: () => last },
  );
}

// ---------------------------------------------------------------------------- one trial

export interface DbTrial {
  round: number;
  system: DbSystemName;
  fault: DbFault;
  faultWall: string;
  load1: number;
  holderBefore: MnNode;
  holderAfter: MnNode | null;
  semiSyncAtFault: boolean | null;
  /** Longest time without an acknowledged COMMIT through the VIP. */
  unavailabilityMs: number | null;
  acked: number;
  failedAttempts: number;
  /** Acknowledged rows missing on the holder when the writer stopped (before the old holder rejoined). */
  lostAtTakeover: number | null;
  /** Acknowledged rows missing on the holder once the pair is back together. */
  lostFinal: number | null;
  /** Acknowledged rows whose server was read-only from before the INSERT was sent until after its acknowledgement. */
  rowsOnReadOnly: number;
  /** Times the acknowledged rows' server changed (1 for a move; more: back and forth). */
  writerSwitches: number;
  bothWritableSamples: number;
  samples: number;
  /** Rows of this trial on one server but not the other (or with another server_id) after rejoin. */
  divergentRows: number | null;
  checksumMatch: boolean | null;
  replicationAfter: string;
  recoverMs: number;
  /** mnha agents that died of an uncaught error during the trial or its recovery (always 0 for the vendor-like set-up). */
  agentCrashes: number;
  error: string | null;
}

let nextId = 1;

/** Agent processes that died of an uncaught error so far: Node's crash trailer ("Node.js v20…") in the agents' logs (appended across restarts). */
function agentCrashTrailers(): number {
  let n = 0;
  for (const node of MN_NODES) {
    try {
      n += (readFileSync(nodePaths(node).agentLog, "utf8").match(/^Node\.js v\d+/gm) ?? []).length;
    } catch {
      // no log yet
    }
  }
  return n;
}

/** A stable, ready pair; when there is none, the system is recovered, and if need be started afresh. */
async function readyOrRestart(system: DbSystem, log: (line: string) => void): Promise<{ holder: MnNode; standby: MnNode }> {
  try {
    return await system.ready();
  } catch (first) {
    log(`    ${system.name} not ready (${(first as Error).message.split("\n")[0]}); recovering`);
  }
  try {
    await system.recover();
    return await system.ready();
  } catch (second) {
    log(`    ${system.name} still not ready (${(second as Error).message.split("\n")[0]}); restarting it`);
  }
  await system.stop();
  await system.start();
  return system.ready();
}

/** Injects the fault; a MariaDB kill also returns what restarts the server (wrapped: awaiting it here would wait for the restart). */
async function inject(system: DbSystem, lab: Lab, fault: DbFault, holder: MnNode): Promise<{ restart: Promise<void> } | null> {
  if (fault === "service-kill") await lab.killService(holder, "mn");
  else if (fault === "demote") await system.keepalived.plannedSwitchover(holder);
  else if (fault === "crash") await lab.crash(holder);
  else {
    await lab.killService(holder, "db");
    const restart = system.afterDbKill(holder);
    restart.catch(() => undefined);
    return { restart };
  }
  return null;
}

async function runTrial(lab: Lab, system: DbSystem, fault: DbFault, round: number, log: (line: string) => void): Promise<DbTrial> {
  const { holder, standby } = await readyOrRestart(system, log);
  const crashesBefore = agentCrashTrailers();
  let semiSyncAtFault: boolean | null = null;
  const sampler = new ReadOnlySampler();
  const writer = new VipWriter();
  const firstId = nextId;
  let error: string | null = null;
  let faultAt = Date.now();
  let faultWall = new Date().toISOString();
  let end = Date.now();
  const load1 = loadavg()[0] ?? 0;
  let pendingRestart: { restart: Promise<void> } | null = null;
  sampler.start();
  writer.start(firstId);
  try {
    await waitFor("rows acknowledged before the fault", async () => (writer.acked().length >= ROWS_BEFORE ? true : undefined), { timeoutMs: 20_000, describeLast: () => writer.describe() });
    // After the first acknowledged rows: a master that had fallen back switches semi-sync on again at its first acknowledged transaction.
    semiSyncAtFault = await semiSyncActive(holder).catch(() => null);
    faultAt = Date.now();
    faultWall = new Date(faultAt).toISOString();
    pendingRestart = await inject(system, lab, fault, holder);
    // Writes count as resumed once the VIP moved (or, after a MariaDB kill, an attempt failed) and ROWS_AFTER more were acknowledged.
    let from: number;
    if (fault === "db-kill") {
      await waitFor("a failed write after the MariaDB kill", async () => (writer.records.some((r) => !r.ok && r.at >= faultAt) ? true : undefined), { timeoutMs: 10_000, describeLast: () => writer.describe() });
      from = Date.now();
    } else {
      await lab.waitForHolder(standby, { timeoutMs: RESUME_TIMEOUT_MS });
      from = Date.now();
    }
    await waitFor("rows acknowledged after the fault", async () => (writer.ackedSince(from) >= ROWS_AFTER ? true : undefined), { timeoutMs: RESUME_TIMEOUT_MS, describeLast: () => writer.describe() });
    await sleep(OBSERVE_MS);
  } catch (caught) {
    error = (caught as Error).message.split("\n")[0] ?? "error";
  } finally {
    end = Date.now();
    await writer.stop();
    await sampler.stop();
  }
  if (pendingRestart !== null) await pendingRestart.restart.catch(() => undefined);
  nextId = Math.max(writer.lastId(), firstId) + 1;
  const acked = writer.acked();
  const ackedIds = acked.map((r) => r.id);
  const holderAfter = await lab.holder().catch(() => null);
  const low = firstId;
  const high = nextId - 1;

  // Missing on the holder right when the writer stopped, before the old holder rejoins.
  let lostAtTakeover: number | null = null;
  if (holderAfter !== null) {
    const rows = await rowsOn(holderAfter, low, high);
    if (rows !== null) lostAtTakeover = ackedIds.filter((id) => !rows.has(id)).length;
  }

  // Back together: heal, boot, restart; replication both ways; both caught up.
  const recoverStarted = monoNow();
  let replicationAfter = "running both ways";
  try {
    await system.recover();
    const broken = await replicatingBothWays(60_000);
    if (broken !== null) replicationAfter = `not running after 60 s: ${broken}`;
    else {
      const [a, b] = [await caughtUp("mn1", "mn2", 60_000), await caughtUp("mn2", "mn1", 60_000)];
      if (!a || !b) replicationAfter = `running, not caught up within 60 s (mn1 ${a ? "yes" : "no"}, mn2 ${b ? "yes" : "no"})`;
    }
  } catch (caught) {
    replicationAfter = `recover failed: ${(caught as Error).message.split("\n")[0]}`;
  }
  const recoverMs = monoNow() - recoverStarted;
  const agentCrashes = agentCrashTrailers() - crashesBefore;

  const finalHolder = await lab.holder().catch(() => null);
  const [rows1, rows2] = [await rowsOn("mn1", low, high), await rowsOn("mn2", low, high)];
  const finalRows = finalHolder === "mn1" ? rows1 : finalHolder === "mn2" ? rows2 : null;
  const lostFinal = finalRows === null ? null : ackedIds.filter((id) => !finalRows.has(id)).length;
  let divergentRows: number | null = null;
  if (rows1 !== null && rows2 !== null) {
    divergentRows = 0;
    for (const [id, server] of rows1) if (rows2.get(id) !== server) divergentRows++;
    for (const id of rows2.keys()) if (!rows1.has(id)) divergentRows++;
  }
  const [c1, c2] = [await checksum("mn1"), await checksum("mn2")];
  const checksumMatch = c1 === null || c2 === null ? null : c1 === c2;

  // Which server wrote each acknowledged row (from whichever node has it).
  const writerOf = (id: number) => rows1?.get(id) ?? rows2?.get(id);
  const nodeOfServer = (serverId: number | undefined): MnNode | null => (serverId === serverIdOf("mn1") ? "mn1" : serverId === serverIdOf("mn2") ? "mn2" : null);
  let rowsOnReadOnly = 0;
  let writerSwitches = 0;
  let previous: number | undefined;
  for (const r of acked) {
    const server = writerOf(r.id);
    const node = nodeOfServer(server);
    if (node !== null && sampler.readOnlyThroughout(node, r.sent ?? r.at, r.at)) rowsOnReadOnly++;
    if (server !== undefined) {
      if (previous !== undefined && server !== previous) writerSwitches++;
      previous = server;
    }
  }
  return {
    round,
    system: system.name,
    fault,
    faultWall,
    load1,
    holderBefore: holder,
    holderAfter,
    semiSyncAtFault,
    unavailabilityMs: error === null ? longestAckGap(writer.records, faultAt, end) : null,
    acked: acked.length,
    failedAttempts: writer.records.length - acked.length,
    lostAtTakeover,
    lostFinal,
    rowsOnReadOnly,
    writerSwitches,
    bothWritableSamples: sampler.bothWritable(),
    samples: sampler.samples.length,
    divergentRows,
    checksumMatch,
    replicationAfter,
    recoverMs,
    agentCrashes,
    error,
  };
}

// ---------------------------------------------------------------------------- seeding and catch-up

export interface SeedResult {
  requestedMb: number;
  sourceBytes: number;
  rows: number;
  fillS: number;
  streamedBytes: number | null;
  seedS: number;
  exitCode: number;
  rowsOnStandby: number | null;
  replicationAfter: string;
  error: string | null;
}

/** Fills the holder with `mb` of rows (unlogged: only the seed copies them), seeds the standby with `mnha db seed --yes`. */
async function measureSeed(system: MnhaDb, mb: number, log: (line: string) => void): Promise<SeedResult> {
  const { holder, standby } = await system.ready();
  const rowBytes = 1_000;
  const rows = Math.max(1, Math.round((mb * 1024 * 1024) / rowBytes));
  const fillStarted = monoNow();
  await db(holder).withConnection(
    async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("DROP DATABASE IF EXISTS seedfill");
      await c.query("CREATE DATABASE seedfill");
      await c.query("CREATE TABLE seedfill.blobs (id INT PRIMARY KEY, payload VARBINARY(1000) NOT NULL) ENGINE=InnoDB");
      const batch = 50_000;
      for (let first = 1; first <= rows; first += batch) {
        const last = Math.min(rows, first + batch - 1);
        // 960 bytes per row from SHA2 (not compressible, not a run of one byte).
        await c.query(`INSERT INTO seedfill.blobs (id, payload) SELECT seq, REPEAT(SHA2(seq, 256), 15) FROM seedfill.seq_${first}_to_${last}`);
      }
    },
    { queryTimeoutMs: 3_600_000 },
  );
  const fillS = (monoNow() - fillStarted) / 1000;
  // InnoDB's table statistics lag behind a bulk insert.
  await sql(holder, "ANALYZE TABLE seedfill.blobs");
  const size = await sql(holder, "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS bytes FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('appdb', 'seedfill')");
  const sourceBytes = Number(size[0]?.["bytes"] ?? 0);
  log(`  seed: ${rows} rows (${(sourceBytes / 1048576).toFixed(0)} MiB on ${holder}) written in ${fillS.toFixed(1)} s; seeding ${standby}`);
  const started = monoNow();
  const result = await mnhaCli(standby, ["db", "seed", "--yes", "--json"], 3_600_000);
  const seedS = (monoNow() - started) / 1000;
  let streamedBytes: number | null = null;
  let error: string | null = null;
  try {
    // The result is the last JSON object printed (maybe pretty, over several lines).
    const text = result.stdout;
    for (let at = text.lastIndexOf("{"); at >= 0; at = text.lastIndexOf("{", at - 1)) {
      if (at > 0 && text[at - 1] !== "\n") continue;
      try {
        streamedBytes = findNumber(JSON.parse(text.slice(at)) as unknown, "bytes");
        break;
      } catch {
        // not the start of the object: look further back
      }
    }
  } catch {
    // keep null: the table says so
  }
  if (result.code !== 0) error = (result.stderr || result.stdout).trim().split("\n").slice(-2).join(" | ");
  let rowsOnStandby: number | null = null;
  try {
    rowsOnStandby = Number((await sql(standby, "SELECT COUNT(*) AS n FROM seedfill.blobs"))[0]?.["n"]);
  } catch {
    rowsOnStandby = null;
  }
  const broken = await replicatingBothWays(60_000);
  // Leave the trials a small database again (unlogged on each side).
  for (const node of MN_NODES) {
    await db(node)
      .withConnection(async (c) => {
        await c.query("SET SESSION sql_log_bin = 0");
        await c.query("DROP DATABASE IF EXISTS seedfill");
      })
      .catch(() => undefined);
  }
  return { requestedMb: mb, sourceBytes, rows, fillS, streamedBytes, seedS, exitCode: result.code, rowsOnStandby, replicationAfter: broken ?? "running both ways", error };
}

function findNumber(value: unknown, key: string): number | null {
  if (value === null || typeof value !== "object") return null;
  const record = value as Record<string, unknown>;
  if (typeof record[key] === "number") return record[key];
  for (const inner of Object.values(record)) {
    const found = findNumber(inner, key);
    if (found !== null) return found;
  }
  return null;
}

export interface CatchUpResult {
  lagSeconds: number;
  transactionsBehind: number | null;
  secondsBehindMaster: number | null;
  catchUpMs: number | null;
  rowsPerSecondApplied: number | null;
  error: string | null;
}

/** The standby's SQL thread stopped for `seconds` of writes through the VIP, then started: time until it applied everything. */
async function measureCatchUp(system: MnhaDb, seconds: number): Promise<CatchUpResult> {
  const { holder, standby } = await system.ready();
  await caughtUp(standby, holder, 30_000);
  await sql(standby, "STOP SLAVE SQL_THREAD");
  const writer = new VipWriter();
  const firstId = nextId;
  let error: string | null = null;
  let transactionsBehind: number | null = null;
  let secondsBehindMaster: number | null = null;
  let catchUpMs: number | null = null;
  try {
    writer.start(firstId);
    await sleep(seconds * 1000);
    await writer.stop();
    nextId = Math.max(writer.lastId(), firstId) + 1;
    const target = await db(holder).gtidBinlogPos();
    const domain = serverIdOf(holder);
    const h = await db(standby).health();
    const applied = parseDomainSeq(h.gtidSlavePos, domain);
    const wanted = Number(target.get(domain)?.seq ?? 0);
    transactionsBehind = wanted - applied;
    const started = monoNow();
    await sql(standby, "START SLAVE SQL_THREAD");
    await sleep(200);
    secondsBehindMaster = (await db(standby).health()).secondsBehindMaster;
    const reached = await db(standby).waitForGtid(target, 600_000);
    catchUpMs = monoNow() - started;
    if (!reached.reached) error = `not caught up: ${reached.impossible ?? reached.position}`;
  } catch (caught) {
    error = (caught as Error).message.split("\n")[0] ?? "error";
    await sql(standby, "START SLAVE SQL_THREAD").catch(() => undefined);
  } finally {
    await writer.stop();
  }
  return {
    lagSeconds: seconds,
    transactionsBehind,
    secondsBehindMaster,
    catchUpMs,
    rowsPerSecondApplied: catchUpMs !== null && transactionsBehind !== null && catchUpMs > 0 ? transactionsBehind / (catchUpMs / 1000) : null,
    error,
  };
}

function parseDomainSeq(position: string | null, domain: number): number {
  for (const part of (position ?? "").split(",")) {
    const [d, , seq] = part.trim().split("-");
    if (Number(d) === domain) return Number(seq);
  }
  return 0;
}

// ---------------------------------------------------------------------------- report

function passMiss(ok: boolean): string {
  return ok ? "**pass**" : "**miss**";
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "–";
}

function sum(values: readonly (number | null)[]): string {
  const known = values.filter((v): v is number => v !== null);
  return known.length === values.length ? String(known.reduce((a, b) => a + b, 0)) : `${known.reduce((a, b) => a + b, 0)} (+${values.length - known.length} unknown)`;
}

interface ReportInput {
  trials: readonly DbTrial[];
  seed: SeedResult | null;
  catchUp: readonly CatchUpResult[];
  systems: readonly DbSystem[];
  faults: readonly DbFault[];
  machine: MachineDescription;
  loadDuring: string;
  tookS: number;
  rounds: number;
  complete: boolean;
}

function buildReport(input: ReportInput): { markdown: string; trialsCsv: string } {
  const { trials, seed, catchUp, systems, faults, machine } = input;
  const ofCell = (system: DbSystemName, fault: DbFault) => trials.filter((t) => t.system === system && t.fault === fault);
  const unavailability = (system: DbSystemName, fault: DbFault) => summarize(ofCell(system, fault).map((t) => t.unavailabilityMs).filter((v): v is number => v !== null));
  const lines: string[] = [];
  lines.push(`#### Database benchmark: mnha vs vendor-like, ${input.rounds} trials per fault (${input.machine.date.slice(0, 10)})${input.complete ? "" : " — PARTIAL"}`, "");
  lines.push(...machineLines(machine));
  lines.push(`- load average (1/5/15 min) during the run, sampled per trial: ${input.loadDuring}`);
  lines.push(`- took ${(input.tookS / 60).toFixed(1)} min; lab ${LAB_PREFIX}`);
  for (const s of systems) lines.push(`- **${s.name}**: ${s.description}`);
  lines.push("");
  lines.push("Write unavailability: the longest time without an acknowledged COMMIT through the VIP, from the last acknowledgement before the fault until writes resumed (30 rows) plus 1 s. A row counts as acknowledged only when its COMMIT returned.", "");
  const rows: string[][] = [];
  for (const fault of faults) {
    const m = unavailability("mnha", fault);
    for (const system of systems) {
      const cell = ofCell(system.name, fault);
      const s = unavailability(system.name, fault);
      rows.push([
        FAULT_TITLES[fault],
        system.name,
        `${s.n}/${cell.length}`,
        ms(s.median),
        ms(s.p90),
        ms(s.max),
        system.name === "mnha" ? "1" : `${ratio(m.median, s.median)} / ${ratio(m.p90, s.p90)} / ${ratio(m.max, s.max)}`,
        sum(cell.map((t) => t.lostAtTakeover)),
        sum(cell.map((t) => t.lostFinal)),
        String(cell.reduce((n, t) => n + t.rowsOnReadOnly, 0)),
        `${cell.reduce((n, t) => n + t.bothWritableSamples, 0)} / ${cell.reduce((n, t) => n + t.samples, 0)}`,
        sum(cell.map((t) => t.divergentRows)),
        `${cell.filter((t) => t.checksumMatch === true).length}/${cell.length}`,
        `${cell.filter((t) => t.replicationAfter === "running both ways").length}/${cell.length}`,
        String(cell.filter((t) => t.writerSwitches > 1).length),
        String(cell.reduce((n, t) => n + t.agentCrashes, 0)),
      ]);
    }
  }
  lines.push(
    ...markdownTable(
      ["fault", "system", "ok trials", "unavail. median ms", "p90 ms", "max ms", "mnha / system (median / p90 / max)", "acked rows lost at takeover", "acked rows lost after rejoin", "rows on a read-only server", "both-writable samples / samples", "divergent rows after rejoin", "CHECKSUM match", "replication both ways after", "trials writing back and forth", "agent crashes"],
      rows,
    ),
  );
  lines.push("");
  // Targets.
  const mnha = trials.filter((t) => t.system === "mnha");
  if (mnha.length > 0) {
    const med = (fault: DbFault) => unavailability("mnha", fault).median;
    const targetRows: string[][] = [
      ["0 acknowledged rows lost (semi-sync), every fault", `${sum(mnha.map((t) => t.lostAtTakeover))} at takeover, ${sum(mnha.map((t) => t.lostFinal))} after rejoin`, passMiss(mnha.every((t) => t.lostAtTakeover === 0 && t.lostFinal === 0))],
      ["never both writable", `${mnha.reduce((n, t) => n + t.bothWritableSamples, 0)} of ${mnha.reduce((n, t) => n + t.samples, 0)} samples`, passMiss(mnha.every((t) => t.bothWritableSamples === 0))],
      ["no row written on a read-only server", String(mnha.reduce((n, t) => n + t.rowsOnReadOnly, 0)), passMiss(mnha.every((t) => t.rowsOnReadOnly === 0))],
      ["unavailability median ≤ 1.5 s, MN service killed", `${ms(med("service-kill"))} ms`, passMiss(med("service-kill") <= TARGETS.serviceKillMedianMs)],
      ["unavailability median ≤ 1.5 s, planned demote", `${ms(med("demote"))} ms`, passMiss(med("demote") <= TARGETS.demoteMedianMs)],
      ["unavailability median ≤ 2 s, holder crash", `${ms(med("crash"))} ms`, passMiss(med("crash") <= TARGETS.crashMedianMs)],
      ["no agent died", String(mnha.reduce((n, t) => n + t.agentCrashes, 0)), passMiss(mnha.every((t) => t.agentCrashes === 0))],
      ["every trial completed (writes resumed within 30 s)", `${mnha.filter((t) => t.error === null).length}/${mnha.length}`, passMiss(mnha.every((t) => t.error === null))],
    ];
    lines.push("mnha against the issue's targets:", "", ...markdownTable(["target", "measured", ""], targetRows), "");
  }
  const errors = trials.filter((t) => t.error !== null || t.replicationAfter !== "running both ways" || t.checksumMatch === false || t.agentCrashes > 0);
  if (errors.length > 0) {
    lines.push("Trials with an error, replication not back, or different checksums:", "");
    for (const t of errors) lines.push(`- round ${t.round} ${t.system} ${t.fault} (${t.faultWall}, ${t.holderBefore} held): ${t.error ?? "writes resumed"}; replication: ${t.replicationAfter}; checksums ${t.checksumMatch === null ? "unknown" : t.checksumMatch ? "match" : "differ"}${t.agentCrashes > 0 ? `; ${t.agentCrashes} agent crash(es)` : ""}`);
    lines.push("");
  }
  if (seed !== null) {
    const mib = seed.sourceBytes / 1048576;
    lines.push(`Seeding (\`mnha db seed --yes\` on the standby, \`mariadb-dump\` streamed from the holder into the standby's \`mariadb\`):`, "");
    lines.push(
      ...markdownTable(
        ["database", "rows", "streamed", "seed time", "rate (database size / time)", "rate (streamed bytes / time)", "rows on the standby after", "replication after", "exit"],
        [[
          `${mib.toFixed(0)} MiB (InnoDB data + index; ${seed.requestedMb} MB requested)`,
          String(seed.rows),
          seed.streamedBytes === null ? "–" : `${(seed.streamedBytes / 1048576).toFixed(0)} MiB`,
          `${seed.seedS.toFixed(1)} s`,
          `${(mib / seed.seedS).toFixed(1)} MiB/s`,
          seed.streamedBytes === null ? "–" : `${(seed.streamedBytes / 1048576 / seed.seedS).toFixed(1)} MiB/s`,
          String(seed.rowsOnStandby ?? "–"),
          seed.replicationAfter,
          seed.error === null ? String(seed.exitCode) : `${seed.exitCode}: ${seed.error}`,
        ]],
      ),
      "",
      `(Filling the holder took ${seed.fillS.toFixed(1)} s, unlogged.)`,
      "",
    );
  }
  if (catchUp.length > 0) {
    lines.push("Catch-up: the standby's SQL thread stopped during N seconds of writes through the VIP (one row per transaction), then started; time until it applied everything the holder had:", "");
    lines.push(
      ...markdownTable(
        ["writes while stopped", "transactions behind", "Seconds_Behind_Master at start", "catch-up time", "applied / s", "error"],
        catchUp.map((c) => [`${c.lagSeconds} s`, String(c.transactionsBehind ?? "–"), String(c.secondsBehindMaster ?? "–"), c.catchUpMs === null ? "–" : `${ms(c.catchUpMs)} ms`, c.rowsPerSecondApplied === null ? "–" : c.rowsPerSecondApplied.toFixed(0), c.error ?? ""]),
      ),
      "",
    );
  }
  const trialsCsv = csv(
    ["round", "system", "fault", "fault_at", "load1", "holder_before", "holder_after", "semi_sync_at_fault", "unavailability_ms", "acked", "failed_attempts", "lost_at_takeover", "lost_after_rejoin", "rows_on_read_only", "writer_switches", "both_writable_samples", "samples", "divergent_rows", "checksum_match", "replication_after", "recover_ms", "agent_crashes", "error"],
    trials.map((t) => [t.round, t.system, t.fault, t.faultWall, t.load1, t.holderBefore, t.holderAfter, t.semiSyncAtFault, t.unavailabilityMs, t.acked, t.failedAttempts, t.lostAtTakeover, t.lostFinal, t.rowsOnReadOnly, t.writerSwitches, t.bothWritableSamples, t.samples, t.divergentRows, t.checksumMatch, t.replicationAfter, t.recoverMs, t.agentCrashes, t.error]),
  );
  return { markdown: lines.join("\n"), trialsCsv };
}

// ---------------------------------------------------------------------------- main

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % Math.max(items.length, 1);
  return [...items.slice(k), ...items.slice(0, k)];
}

function listFlag<T extends string>(flags: Record<string, string | boolean>, name: string, all: readonly T[]): T[] {
  const raw = flags[name];
  if (typeof raw !== "string") return [...all];
  const chosen = raw.split(",").map((s) => s.trim());
  const bad = chosen.filter((c) => !(all as readonly string[]).includes(c));
  if (bad.length > 0) throw new MnhaError("USAGE", `--${name}: unknown ${bad.join(", ")}`, { hint: `choose from ${all.join(", ")}` });
  return all.filter((a) => chosen.includes(a));
}

/** `onWritten`: told the final report's files (the failover runner's `--db-trials` embeds them). */
export async function runDbBenchmark(argv: readonly string[], onWritten?: (files: { md: string; csv: string; markdown: string }) => void): Promise<number> {
  const flags = parseFlags(
    argv,
    { trials: "string", "seed-mb": "string", "lag-seconds": "string", systems: "string", faults: "string", "vendor-profile": "string", "skip-seed": "boolean", "skip-catch-up": "boolean", "max-minutes": "string", "keep-up": "boolean", label: "string" },
    USAGE,
  );
  const rounds = intFlag(flags, "trials", 10, 200);
  const label = labelFlag(flags);
  const seedMb = intFlag(flags, "seed-mb", 1024, 20_480);
  const maxMinutes = intFlag(flags, "max-minutes", 600, 6_000);
  const lagRaw = typeof flags["lag-seconds"] === "string" ? flags["lag-seconds"] : "5,15,30";
  const lags = lagRaw.split(",").map((s) => Number(s.trim()));
  if (lags.some((l) => !Number.isInteger(l) || l < 1 || l > 600)) throw new MnhaError("USAGE", `--lag-seconds: whole seconds from 1 to 600, not ${JSON.stringify(lagRaw)}`, { hint: "for example --lag-seconds 5,15,30" });
  const vendorProfile = flags["vendor-profile"] ?? "common";
  if (vendorProfile !== "common" && vendorProfile !== "fast") throw new MnhaError("USAGE", `--vendor-profile: common or fast, not ${JSON.stringify(vendorProfile)}`, { hint: "--vendor-profile common" });
  const systemNames = listFlag(flags, "systems", SYSTEMS);
  const faults = listFlag(flags, "faults", FAULTS);
  const logger = createLogger({ level: "warn", pretty: true, destination: process.stderr });
  const machine = describeMachine();
  const lab = new Lab({
    logger,
    config: {
      customize: (_node, config) => ({
        ...config,
        // As a DBA would set in my.cnf (docs/database.md): a restarted server comes up read-only; the agent makes the holder's writable.
        services: config.services?.map((s) => (s.name === "db" && s.restore ? { ...s, restore: { ...s.restore, command: [...s.restore.command, "--read-only"] } } : s)),
        db: { ...config.db, enabled: true, catchUpTimeoutMs: 10_000 },
      }),
    },
  });
  const mnhaDb = new MnhaDb(lab);
  const all: DbSystem[] = [mnhaDb, new VendorDb(lab, vendorProfile)];
  const systems = all.filter((s) => systemNames.includes(s.name));
  const started = monoNow();
  const deadline = started + maxMinutes * 60_000;
  const trials: DbTrial[] = [];
  const catchUp: CatchUpResult[] = [];
  const loads: number[][] = [];
  let seed: SeedResult | null = null;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const log = (line: string) => console.log(line);
  const stamp = `${dateStamp()}${label === null ? "" : `-${label}`}`;
  const complete = () => !interrupted && monoNow() < deadline && systems.length === SYSTEMS.length && faults.length === FAULTS.length && trials.length === rounds * SYSTEMS.length * FAULTS.length;
  const save = (final: boolean) => {
    const loadDuring = loads.length === 0 ? "–" : `1-min min ${Math.min(...loads.map((l) => l[0] ?? 0)).toFixed(1)}, median ${[...loads.map((l) => l[0] ?? 0)].sort((a, b) => a - b)[Math.floor(loads.length / 2)]?.toFixed(1)}, max ${Math.max(...loads.map((l) => l[0] ?? 0)).toFixed(1)} (on 2 CPUs)`;
    const report = buildReport({ trials, seed, catchUp, systems, faults, machine, loadDuring, tookS: (monoNow() - started) / 1000, rounds, complete: final && complete() });
    const base = `db-failover-${stamp}${final && complete() ? "" : "-partial"}`;
    const files = writeResults(base, report.markdown, report.trialsCsv);
    // A complete run replaces the partial files its progress wrote.
    if (final && complete()) for (const ext of ["md", "csv"]) rmSync(`${RESULTS_DIR}/db-failover-${stamp}-partial.${ext}`, { force: true });
    if (final) {
      console.log(`\n${report.markdown}`);
      console.log(`written: ${files.md}, ${files.csv}`);
      onWritten?.({ ...files, markdown: report.markdown });
    }
  };
  log(`db benchmark: ${systems.map((s) => s.name).join(", ")} x ${faults.join(", ")} x ${rounds} rounds in lab ${LAB_PREFIX}; seed ${flags["skip-seed"] === true ? "skipped" : `${seedMb} MB`}; catch-up ${flags["skip-catch-up"] === true ? "skipped" : lags.join(", ")} s`);
  let current: DbSystem | null = null;
  const switchTo = async (system: DbSystem) => {
    if (current === system) return;
    if (current !== null) await current.stop();
    current = system;
    await system.start();
  };
  try {
    await lab.up({ fresh: true, agents: false });
    await setUpPair();
    // Seeding and catch-up first (mnha running), so a run cut short by its time budget still has them.
    if (flags["skip-seed"] !== true && !interrupted) {
      await switchTo(mnhaDb);
      log(`  seeding a ${seedMb} MB database`);
      try {
        seed = await measureSeed(mnhaDb, seedMb, log);
        log(`  seed: ${seed.seedS.toFixed(1)} s, ${(seed.sourceBytes / 1048576 / seed.seedS).toFixed(1)} MiB/s, exit ${seed.exitCode}${seed.error ? ` ${seed.error}` : ""}`);
      } catch (caught) {
        log(`  seed failed: ${(caught as Error).message}`);
      }
      save(false);
    }
    if (flags["skip-catch-up"] !== true) {
      await switchTo(mnhaDb);
      for (const seconds of lags) {
        if (interrupted) break;
        const result = await measureCatchUp(mnhaDb, seconds);
        catchUp.push(result);
        log(`  catch-up after ${seconds} s of writes: ${result.transactionsBehind ?? "?"} transactions behind, ${ms(result.catchUpMs)} ms${result.error ? ` ERROR ${result.error}` : ""}`);
      }
      save(false);
    }
    for (let round = 1; round <= rounds && !interrupted && monoNow() < deadline; round++) {
      for (const system of rotate(systems, round - 1)) {
        if (interrupted || monoNow() >= deadline) break;
        await switchTo(system);
        for (const fault of rotate(faults, round - 1)) {
          if (interrupted || monoNow() >= deadline) break;
          loads.push(loadavg());
          let t: DbTrial;
          try {
            t = await runTrial(lab, system, fault, round, log);
          } catch (caught) {
            // No pair to run the trial on even after a restart: keep the evidence, start the system afresh, go on.
            log(`  round ${round} ${system.name} ${fault}: no trial (${(caught as Error).message.split("\n")[0]})`);
            lab.archiveState(`${REPO_ROOT}/.lab/${LAB_NAME}/db-failover/${system.name}-${fault}-round-${round}-no-trial`);
            await system.stop().catch(() => undefined);
            await system.start().catch(() => undefined);
            continue;
          }
          trials.push(t);
          log(
            `  round ${round} ${system.name} ${fault} (${t.holderBefore}->${t.holderAfter ?? "none"}): unavailable ${ms(t.unavailabilityMs)} ms, acked ${t.acked}, lost ${t.lostAtTakeover ?? "?"}/${t.lostFinal ?? "?"}, on read-only ${t.rowsOnReadOnly}, both writable ${t.bothWritableSamples}/${t.samples}, divergent ${t.divergentRows ?? "?"}, checksum ${t.checksumMatch}, semi-sync ${t.semiSyncAtFault}, replication ${t.replicationAfter}, agent crashes ${t.agentCrashes}, load ${t.load1.toFixed(1)}${t.error ? `, ERROR ${t.error}` : ""}`,
          );
          if (t.error !== null || t.replicationAfter !== "running both ways" || t.agentCrashes > 0) {
            lab.archiveState(`${REPO_ROOT}/.lab/${LAB_NAME}/db-failover/${system.name}-${fault}-round-${round}`);
            log(`    lab state archived to .lab/${LAB_NAME}/db-failover/${system.name}-${fault}-round-${round}`);
          }
          save(false);
        }
      }
    }
  } finally {
    const active = current as DbSystem | null;
    if (active !== null) await active.stop().catch(() => undefined);
    if (flags["keep-up"] !== true) await lab.down({ archiveTo: `${REPO_ROOT}/.lab/${LAB_NAME}/db-failover/last-lab` });
  }
  save(true);
  return 0;
}


