/** RestoreActions on real servers: the local MariaDB as root (socket), the peer's as the replication user. */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { MnhaError } from "@mnha/shared";
import { clientOptionFiles } from "../db/client-files.js";
import type { MariaDbDatabase } from "../db/mariadb.js";
import { quoteIdentifier, summarize } from "../db/seed.js";
import { takeBackup, verifyBackup, type DumpSource } from "./backup-files.js";
import type { BackupManifest } from "./manifest.js";
import type { RestoreActions } from "./restore-plan.js";

export interface MariaDbRestoreOptions {
  backupPath: string;
  manifest: BackupManifest;
  local: MariaDbDatabase;
  peer: MariaDbDatabase;
  source: DumpSource;
  backupDir: string;
  clientBinary: string;
  catchUpTimeoutMs: number;
  maintenance: RestoreActions["maintenance"];
  services: RestoreActions["services"];
  reseedPeer: RestoreActions["reseedPeer"];
}

export function mariaDbRestoreActions(options: MariaDbRestoreOptions): RestoreActions {
  const { local, peer, manifest } = options;
  return {
    maintenance: options.maintenance,
    services: options.services,
    reseedPeer:
      options.reseedPeer === null
        ? null
        : async () => {
            const copied = await (options.reseedPeer as () => Promise<string>)();
            // The re-seed restarted the peer's binary log (RESET MASTER): this node's replica
            // may still sit on the old one, connected and "running" but fetching nothing. It
            // reconnects by GTID to the new one.
            const health = await local.health();
            if (health.replicaConfigured) {
              await local.stopReplica();
              await local.startReplica();
            }
            return `${copied}; this node's replica from the peer restarted on its new binary log`;
          },
    async verifyBackup() {
      await verifyBackup(options.backupPath);
    },
    async safetyBackup() {
      // A new server (disaster recovery) holds no application data: there is nothing to keep.
      if ((await summarize(local)).schemas.length === 0) return null;
      try {
        return (await takeBackup(options.source, options.backupDir)).path;
      } catch (error) {
        // A scheduled backup started in the same second holds the name: the next second is free.
        if (!(error instanceof MnhaError && /already exists/.test(error.message))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        return (await takeBackup(options.source, options.backupDir)).path;
      }
    },
    readOnly: () => local.readOnly(),
    setReadOnly: (on) => local.setReadOnly(on),
    async dropSchemasNotInBackup() {
      const keep = new Set(manifest.schemas);
      const extra = (await summarize(local)).schemas.map((s) => s.name).filter((name) => !keep.has(name));
      // Logged: the drop replicates to the peer like the rest of the restore.
      await local.withConnection(async (c) => {
        for (const name of extra) await c.query(`DROP DATABASE ${quoteIdentifier(name)}`);
      });
      return extra;
    },
    async loadBackup(onProgress) {
      await loadDump(options, onProgress);
    },
    async waitForPeer() {
      const target = await local.gtidBinlogPos();
      const result = await peer.waitForGtid(target, options.catchUpTimeoutMs);
      if (!result.reached)
        throw new MnhaError("DB_TIMEOUT", `the peer did not apply the restore within ${options.catchUpTimeoutMs} ms (at ${result.position}${result.impossible ? `: ${result.impossible}` : ""})`, {
          hint: "check `mnha db status` (is the peer's replica running?); rerun the same command to wait again, or `mnha db resync` on the peer",
        });
    },
    async verifyRestored() {
      const problems: string[] = [];
      for (const entry of manifest.tables) {
        const table = qualified(entry.table);
        const [rows] = (await local.withConnection((c) => c.query(`SELECT COUNT(*) AS n FROM ${table}`))) as { n: bigint | number }[];
        if (Number(rows?.n) !== entry.rows) problems.push(`${entry.table}: ${String(rows?.n)} rows, the backup has ${entry.rows}`);
      }
      const tables = manifest.tables.map((t) => qualified(t.table));
      if (tables.length > 0) {
        const sums = async (db: MariaDbDatabase) => new Map(((await db.withConnection((c) => c.query(`CHECKSUM TABLE ${tables.join(", ")} EXTENDED`))) as { Table: string; Checksum: unknown }[]).map((r) => [r.Table, String(r.Checksum)]));
        const [mine, theirs] = await Promise.all([sums(local), sums(peer)]);
        for (const [table, sum] of mine) if (theirs.get(table) !== sum) problems.push(`${table}: CHECKSUM ${sum} here, ${theirs.get(table) ?? "missing"} on the peer`);
      }
      for (const [label, db] of [["this node", local], ["the peer", peer]] as const) {
        const h = await db.health();
        if (h.slaveIoRunning !== "Yes" || h.slaveSqlRunning !== "Yes") problems.push(`${label}'s replica is not running (IO ${h.slaveIoRunning}, SQL ${h.slaveSqlRunning}${h.lastSqlError ? `: ${h.lastSqlError}` : ""})`);
      }
      if (problems.length > 0) throw new MnhaError("DB_REPLICATION", `after the restore:\n${problems.map((p) => `  - ${p}`).join("\n")}`, { hint: "see `mnha db status`; the safety backup holds the data from before the restore" });
      const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
      return `${manifest.tables.length} tables, ${rows} rows as in the backup; CHECKSUM TABLE equal on both nodes; replication running both ways`;
    },
  };
}

/** `schema.table` (as the manifest writes it) as a quoted identifier. */
function qualified(table: string): string {
  const dot = table.indexOf(".");
  return `${quoteIdentifier(table.slice(0, dot))}.${quoteIdentifier(table.slice(dot + 1))}`;
}

async function loadDump(options: MariaDbRestoreOptions, onProgress: (text: string) => void): Promise<void> {
  const files = clientOptionFiles();
  try {
    const cnf = files.write("root", options.source.rootUser, options.source.rootPassword);
    const client = spawn(options.clientBinary, [`--defaults-extra-file=${cnf}`, `--socket=${options.source.socket}`, "--binary-mode"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    client.stderr.setEncoding("utf8").on("data", (t: string) => (stderr = (stderr + t).slice(-4000)));
    const exited = new Promise<number>((resolve) => {
      client.once("error", (error) => {
        stderr += error.message;
        resolve(127);
      });
      client.once("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    let bytes = 0;
    let lastReport = performance.now();
    const total = options.manifest.sqlBytes;
    try {
      await pipeline(
        createReadStream(options.backupPath),
        createGunzip(),
        new Transform({
          transform(chunk: Buffer, _e, callback) {
            bytes += chunk.length;
            if (performance.now() - lastReport >= 2_000) {
              lastReport = performance.now();
              onProgress(`loaded ${Math.round((bytes / Math.max(total, 1)) * 100)}% (${bytes} of ${total} bytes of SQL)`);
            }
            callback(null, chunk);
          },
        }),
        client.stdin,
      );
    } catch (error) {
      client.kill("SIGKILL");
      await exited;
      throw new MnhaError("DB_REPLICATION", `loading the backup stopped: ${(error as Error).message}; ${firstLine(stderr)}`, { hint: "fix the cause and run the same command again: the load starts over (each schema is dropped and recreated)", cause: error });
    }
    const code = await exited;
    if (code !== 0) throw new MnhaError("DB_REPLICATION", `loading the backup failed (mariadb exit ${code}): ${firstLine(stderr)}`, { hint: "fix the cause and run the same command again: the load starts over (each schema is dropped and recreated)" });
    onProgress(`loaded ${bytes} bytes of SQL`);
  } finally {
    files.remove();
  }
}

function firstLine(text: string): string {
  return text.trim().split("\n").filter((l) => l.trim() !== "" && !l.startsWith("WARNING") && !/Deprecated/.test(l))[0] ?? "(no message)";
}
