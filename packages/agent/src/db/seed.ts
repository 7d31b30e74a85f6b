/**
 * `mnha db seed` / `db resync`: make this node's database a copy of the peer's, streamed
 * (mariadb-dump on the peer's consistent snapshot piped into the local server, unlogged),
 * then replicate from the copied GTID position. A marker file makes a partial copy visible
 * (not eligible) until a seed completes.
 */
import { spawn } from "node:child_process";
import { Transform } from "node:stream";
import { MnhaError } from "@mnha/shared";
import { processAlive } from "../util/process-alive.js";
import { clientOptionFiles } from "./client-files.js";
import { formatGtidPosition, parseGtidPosition, type GtidPosition } from "./gtid.js";
import type { MariaDbDatabase } from "./mariadb.js";
import { clearErrantMark } from "./errant-watch.js";
import { clearSeedMarker, readSeedMarker, writeSeedMarker } from "./seed-marker.js";
import { assertSettings, pairProblems, settingsError } from "./settings.js";
import type { ReplicationSetup } from "./types.js";

/** Schemas that are the server's own, never copied or dropped. */
export const SYSTEM_SCHEMAS = ["mysql", "information_schema", "performance_schema", "sys"];

export interface SchemaSummary {
  name: string;
  tables: number;
  /** Estimated by InnoDB (information_schema.TABLES.TABLE_ROWS). */
  approxRows: number;
  bytes: number;
}

export interface DatabaseSummary {
  schemas: SchemaSummary[];
  tables: number;
  approxRows: number;
  bytes: number;
}

export async function summarize(db: MariaDbDatabase): Promise<DatabaseSummary> {
  const rows = await db.withConnection(
    (c) =>
      c.query(
        `SELECT s.SCHEMA_NAME AS name, COUNT(t.TABLE_NAME) AS tables, COALESCE(SUM(t.TABLE_ROWS), 0) AS approxRows, COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS bytes
         FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
         WHERE s.SCHEMA_NAME NOT IN (?) GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME`,
        [SYSTEM_SCHEMAS],
      ) as Promise<Record<string, unknown>[]>,
  );
  const schemas = rows.map((r) => ({ name: String(r["name"]), tables: Number(r["tables"]), approxRows: Number(r["approxRows"]), bytes: Number(r["bytes"]) }));
  return {
    schemas,
    tables: schemas.reduce((n, s) => n + s.tables, 0),
    approxRows: schemas.reduce((n, s) => n + s.approxRows, 0),
    bytes: schemas.reduce((n, s) => n + s.bytes, 0),
  };
}

export interface SeedPlan {
  local: MariaDbDatabase;
  peer: MariaDbDatabase;
  localSocket: string;
  rootUser: string;
  rootPassword: string | null;
  replication: ReplicationSetup;
  dataDir: string;
  clientBinary: string;
  dumpBinary: string;
  operation: "seed" | "resync";
  peerName: string;
}

export interface SeedPreflight {
  local: DatabaseSummary;
  peer: DatabaseSummary;
}

/** Everything checked before anything changes: both servers reachable and set up, the pair consistent. */
export async function seedPreflight(plan: SeedPlan): Promise<SeedPreflight> {
  const localSettings = await plan.local.settings();
  assertSettings(plan.local.label, localSettings);
  const peerSettings = await plan.peer.settings();
  assertSettings(plan.peer.label, peerSettings);
  const pair = pairProblems(localSettings, peerSettings);
  if (pair.length > 0) throw settingsError("the pair", pair);
  const marker = readSeedMarker(plan.dataDir);
  if (marker !== null && marker.pid !== process.pid && processAlive(marker.pid)) {
    throw new MnhaError("DB_SEED_REFUSED", `a ${marker.operation} is already running on this node (pid ${marker.pid}, started ${marker.startedAt})`, { hint: "wait for it to finish, or stop that process and run this again" });
  }
  return { local: await summarize(plan.local), peer: await summarize(plan.peer) };
}

export interface SeedProgress {
  bytes: number;
  elapsedMs: number;
  bytesPerSecond: number;
  /** From the peer's on-disk size: an estimate (a dump is not the same size as the tables). */
  etaMs: number | null;
}

export interface SeedResult {
  gtid: string;
  bytes: number;
  tookMs: number;
}

/** Runs the copy. The caller has confirmed and checked that this node does not hold the VIP. */
export async function runSeed(plan: SeedPlan, preflight: SeedPreflight, onProgress: (p: SeedProgress) => void): Promise<SeedResult> {
  const started = performance.now();
  writeSeedMarker(plan.dataDir, { startedAt: new Date().toISOString(), from: plan.peerName, operation: plan.operation, pid: process.pid });
  // No one writes into a copy in progress; replication from the peer restarts from the copy's position.
  await plan.local.setReadOnly(true);
  await plan.local.withConnection(async (c) => {
    await c.query("STOP SLAVE");
    await c.query("SET SESSION sql_log_bin = 0");
    const peerNames = new Set(preflight.peer.schemas.map((s) => s.name));
    for (const schema of preflight.local.schemas) if (!peerNames.has(schema.name)) await c.query(`DROP DATABASE ${quoteIdentifier(schema.name)}`);
  });
  let gtid: GtidPosition;
  let bytes = 0;
  const names = preflight.peer.schemas.map((s) => s.name);
  if (names.length === 0) {
    gtid = await plan.peer.gtidBinlogPos();
  } else {
    const streamed = await streamDump(plan, names, preflight.peer.bytes, started, onProgress);
    gtid = streamed.gtid;
    bytes = streamed.bytes;
  }
  // The copy is the peer's state at `gtid`: this node's binary log restarts there too, so
  // the peer never fetches this node's old transactions again.
  const binlogState = await binlogStateForPeer(plan, gtid);
  await plan.local.withConnection(async (c) => {
    await c.query("SET SESSION sql_log_bin = 0");
    await c.query("RESET MASTER");
    await c.query("SET GLOBAL gtid_binlog_state = ?", [formatGtidPosition(binlogState)]);
    await c.query("SET GLOBAL gtid_slave_pos = ?", [formatGtidPosition(gtid)]);
    // The peer's replica of this node may still be attached to the binary log just reset:
    // connected, threads "Yes", fetching nothing. Ending its dump thread makes it reconnect
    // (MASTER_CONNECT_RETRY) and ask by GTID from the new binary log.
    const dumps = (await c.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'")) as Record<string, unknown>[];
    for (const { id } of dumps) await c.query("KILL CONNECTION ?", [Number(id)]).catch(() => undefined);
  });
  await plan.local.setupReplication(plan.replication);
  clearSeedMarker(plan.dataDir);
  // A fresh copy of the peer: an errant-transactions finding on this node no longer holds.
  clearErrantMark(plan.dataDir);
  return { gtid: formatGtidPosition(gtid), bytes, tookMs: Math.round(performance.now() - started) };
}

/**
 * The binary-log state this node restarts with. The peer's replica asks for the peer's own
 * domain from where its gtid_slave_pos stands (it sees its own transactions come back and
 * skips them); a binary log that starts later in that domain would make it stop with
 * error 1236. So that domain starts where the peer's replica stands.
 */
export async function binlogStateForPeer(plan: SeedPlan, gtid: GtidPosition): Promise<GtidPosition> {
  const row = await plan.peer.withConnection(async (c) => ((await c.query("SELECT @@GLOBAL.gtid_domain_id AS domain, @@GLOBAL.gtid_slave_pos AS slavePos")) as Record<string, unknown>[])[0]);
  return adjustForPeerReplica(gtid, Number(row?.["domain"]), parseGtidPosition(String(row?.["slavePos"] ?? "")));
}

export function adjustForPeerReplica(gtid: GtidPosition, peerDomain: number, peerSlavePos: GtidPosition): GtidPosition {
  const state = new Map(gtid);
  const asked = peerSlavePos.get(peerDomain);
  const copied = gtid.get(peerDomain);
  if (asked !== undefined && copied !== undefined && asked.seq < copied.seq) state.set(peerDomain, asked);
  // A peer whose replica never stood anywhere in its own domain (install-ha seeds before the
  // peer replicates) asks for that domain from its beginning: a binary log that claims the
  // domain's history would make it stop with error 1236, so the domain is left out.
  if (asked === undefined) state.delete(peerDomain);
  return state;
}

const GTID_IN_DUMP = /SET GLOBAL gtid_slave_pos\s*=\s*'([0-9,\- ]*)'/g;

async function streamDump(plan: SeedPlan, names: string[], expectedBytes: number, started: number, onProgress: (p: SeedProgress) => void): Promise<{ gtid: GtidPosition; bytes: number }> {
  const files = clientOptionFiles();
  try {
    const peerCnf = files.write("peer", plan.replication.user, plan.replication.password);
    const localCnf = files.write("local", plan.rootUser, plan.rootPassword);
    const dumpArgs = [
      `--defaults-extra-file=${peerCnf}`,
      `--host=${plan.replication.peer.host}`,
      `--port=${plan.replication.peer.port}`,
      "--single-transaction", "--gtid", "--master-data=2", "--add-drop-database", "--routines", "--events", "--triggers", "--hex-blob", "--quick",
      "--databases", ...names,
    ];
    const clientArgs = [`--defaults-extra-file=${localCnf}`, `--socket=${plan.localSocket}`, "--init-command=SET SESSION sql_log_bin = 0", "--binary-mode"];
    const dump = spawn(plan.dumpBinary, dumpArgs, { stdio: ["ignore", "pipe", "pipe"] });
    const load = spawn(plan.clientBinary, clientArgs, { stdio: ["pipe", "ignore", "pipe"] });
    let dumpErr = "";
    let loadErr = "";
    dump.stderr.setEncoding("utf8").on("data", (t: string) => (dumpErr += t.slice(0, 4000)));
    load.stderr.setEncoding("utf8").on("data", (t: string) => (loadErr += t.slice(0, 4000)));
    let bytes = 0;
    // mariadb-dump prints the snapshot's GTID position near the end (the "deferred" setting):
    // scan each chunk with the tail of the previous one, keep the last match.
    let tail = "";
    let gtidText: string | null = null;
    let lastReport = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        const text = tail + chunk.toString("latin1");
        for (const match of text.matchAll(GTID_IN_DUMP)) gtidText = match[1] ?? "";
        tail = text.slice(-4096);
        const now = performance.now();
        if (now - lastReport >= 1_000) {
          lastReport = now;
          const elapsedMs = now - started;
          const rate = bytes / Math.max(elapsedMs / 1000, 0.001);
          onProgress({ bytes, elapsedMs, bytesPerSecond: rate, etaMs: expectedBytes > bytes && rate > 0 ? ((expectedBytes - bytes) / rate) * 1000 : null });
        }
        callback(null, chunk);
      },
    });
    const exited = (child: ReturnType<typeof spawn>) => new Promise<number>((resolve) => child.once("close", (code, sig) => resolve(code ?? (sig ? 128 : 1))));
    load.stdin.on("error", () => undefined); // a failed load is reported by its exit code
    dump.stdout.pipe(counter).pipe(load.stdin);
    // Either side failing ends the other: a load fed half a dump would only mislead.
    const stopOnFailure = (other: ReturnType<typeof spawn>) => (code: number) => {
      if (code !== 0 && other.exitCode === null) other.kill("SIGKILL");
      return code;
    };
    const [dumpCode, loadCode] = await Promise.all([exited(dump).then(stopOnFailure(load)), exited(load).then(stopOnFailure(dump))]);
    if (dumpCode !== 0) throw new MnhaError("DB_SEED_FAILED", `mariadb-dump on the peer failed (exit ${dumpCode}): ${firstLine(dumpErr)}`, { hint: "the node stays marked as not eligible; fix the cause and run the command again" });
    if (loadCode !== 0) throw new MnhaError("DB_SEED_FAILED", `loading the copy into the local MariaDB failed (exit ${loadCode}): ${firstLine(loadErr)}`, { hint: "the node stays marked as not eligible; fix the cause and run the command again" });
    if (gtidText === null) throw new MnhaError("DB_SEED_FAILED", "the dump carried no GTID position (is the peer's binary log on?)", { hint: "check log_bin on the peer, then run the command again" });
    const elapsedMs = performance.now() - started;
    onProgress({ bytes, elapsedMs, bytesPerSecond: bytes / Math.max(elapsedMs / 1000, 0.001), etaMs: 0 });
    return { gtid: parseGtidPosition(gtidText), bytes };
  } finally {
    files.remove();
  }
}

export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

function firstLine(text: string): string {
  return text.trim().split("\n").filter((l) => !l.startsWith("WARNING") && !/^mariadb(-dump)?: Deprecated/.test(l))[0] ?? "(no message)";
}

