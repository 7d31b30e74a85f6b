/**
 * Taking, listing and verifying backups. A backup is `mariadb-dump` of the application's
 * schemas at one consistent snapshot, gzip-compressed while it streams, with a SHA-256
 * `.sha256` file and a `.json` manifest beside it. Every file is written under a temporary
 * name and renamed once complete and synced; the manifest comes last, so a backup with a
 * manifest is a complete one.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { MnhaError, writeFileAtomicSync } from "@mnha/shared";
import { clientOptionFiles } from "../db/client-files.js";
import { SYSTEM_SCHEMAS } from "../db/seed.js";
import { DUMP_TRAILER, DumpScanner, type DumpSummary } from "./dump-scanner.js";
import { checksumLine, MANIFEST_FORMAT, parseChecksumLine, readManifest, type BackupManifest } from "./manifest.js";
import { backupFileName, checksumFileName, manifestFileName, parseBackupFileName } from "./naming.js";
import { backupsToDelete, compareCodePoints, type RetentionPolicy } from "./retention.js";

/**
 * Left out of every backup: the server's own schemas. `mysql` holds each node's accounts,
 * and the replication user differs per node (it is created for the peer's address only), so
 * restoring one node's `mysql` onto the pair would break replication; accounts are
 * recreated by install-ha / setup-replication. Application accounts made through SQL are
 * the application's to recreate (see docs/disaster-recovery.md).
 */
export const EXCLUDED_SCHEMAS = SYSTEM_SCHEMAS;

export interface DumpSource {
  node: string;
  socket: string;
  rootUser: string;
  rootPassword: string | null;
  dumpBinary: string;
  /** The schemas to dump (the application's: every schema but EXCLUDED_SCHEMAS). */
  listSchemas(): Promise<string[]>;
}

export interface BackupResult {
  path: string;
  manifest: BackupManifest;
}

/** Dumps, compresses and checksums into `dir`; throws BACKUP_FAILED with nothing left behind. */
export async function takeBackup(source: DumpSource, dir: string, now: () => Date = () => new Date()): Promise<BackupResult> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const schemas = (await source.listSchemas()).filter((s) => !EXCLUDED_SCHEMAS.includes(s)).sort();
  if (schemas.length === 0) throw new MnhaError("BACKUP_FAILED", `${source.node}'s MariaDB has no application schema to back up (only ${EXCLUDED_SCHEMAS.join(", ")})`, { hint: "nothing to back up yet; check db.socket points at the MN's MariaDB" });
  const takenAt = now();
  const name = backupFileName(source.node, takenAt);
  const finalPath = join(dir, name);
  const partial = join(dir, `.${name}.partial`);
  const files = clientOptionFiles();
  try {
    const cnf = files.write("root", source.rootUser, source.rootPassword);
    const args = [
      `--defaults-extra-file=${cnf}`,
      `--socket=${source.socket}`,
      "--single-transaction", "--gtid", "--master-data=2", "--routines", "--events", "--triggers", "--hex-blob", "--quick", "--add-drop-database",
      "--databases", ...schemas,
    ];
    const dump = spawn(source.dumpBinary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    dump.stderr.setEncoding("utf8").on("data", (t: string) => (stderr = (stderr + t).slice(-4000)));
    const exited = new Promise<number>((resolve) => {
      dump.once("error", (error) => {
        stderr += (error as Error).message;
        resolve(127);
      });
      dump.once("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    const scanner = new DumpScanner();
    const hash = createHash("sha256");
    let bytes = 0;
    try {
      await pipeline(
        dump.stdout,
        new Transform({
          transform(chunk: Buffer, _e, callback) {
            scanner.push(chunk);
            callback(null, chunk);
          },
        }),
        createGzip({ level: 6 }),
        new Transform({
          transform(chunk: Buffer, _e, callback) {
            hash.update(chunk);
            bytes += chunk.length;
            callback(null, chunk);
          },
        }),
        createWriteStream(partial, { mode: 0o600 }),
      );
    } catch (error) {
      dump.kill("SIGKILL");
      throw new MnhaError("BACKUP_FAILED", `writing the backup to ${dir} failed: ${(error as Error).message}`, { hint: "check the free space and permissions of backup.dir", cause: error });
    }
    const code = await exited;
    if (code !== 0) throw new MnhaError("BACKUP_FAILED", `mariadb-dump failed (exit ${code}): ${firstMeaningfulLine(stderr)}`, { hint: "check that MariaDB runs and db.rootPasswordFile is right (`mnha db status`)" });
    const summary = scanner.summary();
    assertComplete(summary, name);
    fsyncFile(partial);
    const sha256 = hash.digest("hex");
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      file: name,
      node: source.node,
      takenAt: takenAt.toISOString(),
      finishedAt: now().toISOString(),
      gtid: summary.gtid ?? "",
      bytes,
      sqlBytes: summary.sqlBytes,
      sha256,
      schemas,
      excluded: [...EXCLUDED_SCHEMAS],
      tables: [...summary.rows.entries()].map(([table, rows]) => ({ table, rows })).sort((a, b) => compareCodePoints(a.table, b.table)),
    };
    // link, not rename: a backup of the same second never replaces another.
    try {
      linkSync(partial, finalPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new MnhaError("BACKUP_FAILED", `a backup named ${name} already exists (two backups in the same second)`, { hint: "wait a second and run it again" });
      throw error;
    }
    rmSync(partial, { force: true });
    writeFileAtomicSync(join(dir, checksumFileName(name)), checksumLine(sha256, name), { mode: 0o600 });
    writeFileAtomicSync(join(dir, manifestFileName(name)), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    fsyncDir(dir);
    return { path: finalPath, manifest };
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    files.remove();
  }
}

function assertComplete(summary: DumpSummary, name: string): void {
  if (!summary.lastLine.startsWith(DUMP_TRAILER)) throw new MnhaError("BACKUP_CORRUPT", `${name}: the dump ends without mariadb-dump's "${DUMP_TRAILER}" line (last line: ${JSON.stringify(summary.lastLine.slice(0, 80))})`, { hint: "the dump was cut short: take a new backup" });
  if (summary.gtid === null) throw new MnhaError("BACKUP_CORRUPT", `${name}: the dump carries no GTID position (is the binary log on?)`, { hint: "check log_bin (`mnha db status`), then take a new backup" });
}

export interface BackupEntry {
  name: string;
  path: string;
  node: string;
  takenAt: Date;
  /** Null: no manifest (an incomplete or foreign file). */
  manifest: BackupManifest | null;
  problem: string | null;
}

/** The backups in `dir`, newest first. Temporary files of a backup in progress are not listed. */
export function listBackups(dir: string): BackupEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new MnhaError("BACKUP_INVALID", `cannot read the backup directory ${dir}: ${(error as Error).message}`, { hint: "run as root, or check backup.dir", cause: error });
  }
  const entries: BackupEntry[] = [];
  for (const name of names) {
    const parsed = parseBackupFileName(name);
    if (parsed === null) continue;
    let manifest: BackupManifest | null = null;
    let problem: string | null = null;
    try {
      manifest = readManifest(join(dir, manifestFileName(name)));
      if (manifest === null) problem = "no manifest (incomplete backup)";
    } catch (error) {
      problem = (error as Error).message;
    }
    entries.push({ name, path: join(dir, name), node: parsed.node, takenAt: parsed.takenAt, manifest, problem });
  }
  return entries.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || compareCodePoints(b.name, a.name));
}

/** Seconds since the newest backup with a manifest was taken; null when there is none. */
export function newestGoodBackupAgeSeconds(dir: string, now: Date): number | null {
  const newest = listBackups(dir).find((entry) => entry.manifest !== null);
  return newest ? Math.max(0, (now.getTime() - newest.takenAt.getTime()) / 1000) : null;
}

export interface VerifyResult {
  path: string;
  sha256: string;
  bytes: number;
  sqlBytes: number;
  gtid: string;
  tables: { table: string; rows: number }[];
  manifest: BackupManifest | null;
}

/**
 * Checks a backup end to end: its checksum (the .sha256 file and the manifest agree with
 * the bytes), the whole gzip stream (a truncated one fails), the dump's trailer, and the
 * row counts against the manifest. Throws BACKUP_CORRUPT naming what is wrong.
 */
export async function verifyBackup(path: string): Promise<VerifyResult> {
  const name = basename(path);
  const dir = dirname(path);
  try {
    statSync(path);
  } catch (error) {
    throw new MnhaError("BACKUP_INVALID", `${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`, { hint: "`mnha backup list` shows the backups and their paths", cause: error });
  }
  const manifest = parseBackupFileName(name) === null ? null : readManifest(join(dir, manifestFileName(name)));
  let expected: string | null = null;
  try {
    expected = parseChecksumLine(readFileSync(join(dir, checksumFileName(name)), "utf8"));
  } catch {
    expected = null;
  }
  expected ??= manifest?.sha256 ?? null;
  if (expected === null) throw new MnhaError("BACKUP_INVALID", `${name} has neither a ${checksumFileName(name)} file nor a manifest: nothing to verify it against`, { hint: "copy the .sha256 and .json files along with the backup" });
  if (manifest !== null && manifest.sha256 !== expected) throw new MnhaError("BACKUP_CORRUPT", `${name}: the .sha256 file and the manifest disagree`, { hint: "one of them was altered: do not restore this backup without checking it by hand" });

  const hash = createHash("sha256");
  const scanner = new DumpScanner();
  let bytes = 0;
  try {
    await pipeline(
      createReadStream(path),
      new Transform({
        transform(chunk: Buffer, _e, callback) {
          hash.update(chunk);
          bytes += chunk.length;
          callback(null, chunk);
        },
      }),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _e, callback) {
          scanner.push(chunk);
          callback();
        },
      }),
    );
  } catch (error) {
    throw new MnhaError("BACKUP_CORRUPT", `${name}: the gzip stream is damaged or cut short (${(error as Error).message})`, { hint: "use another backup (`mnha backup list`), or the remote copy", cause: error });
  }
  const sha256 = hash.digest("hex");
  if (sha256 !== expected) throw new MnhaError("BACKUP_CORRUPT", `${name}: SHA-256 ${sha256} does not match the recorded ${expected}`, { hint: "the file was altered or damaged: use another backup (`mnha backup list`), or the remote copy" });
  const summary = scanner.summary();
  assertComplete(summary, name);
  const tables = [...summary.rows.entries()].map(([table, rows]) => ({ table, rows })).sort((a, b) => compareCodePoints(a.table, b.table));
  if (manifest !== null) {
    const counted = new Map(tables.map((t) => [t.table, t.rows]));
    for (const entry of manifest.tables) {
      if ((counted.get(entry.table) ?? 0) !== entry.rows) throw new MnhaError("BACKUP_CORRUPT", `${name}: table ${entry.table} has ${counted.get(entry.table) ?? 0} rows in the dump, the manifest says ${entry.rows}`, { hint: "do not restore this backup; use another one" });
    }
  }
  return { path, sha256, bytes, sqlBytes: summary.sqlBytes, gtid: summary.gtid ?? "", tables, manifest };
}

/** Deletes the local backups the policy no longer keeps (with their .sha256 and manifest). Returns their names. */
export function applyRetention(dir: string, policy: RetentionPolicy, now: Date): string[] {
  const complete = listBackups(dir).filter((entry) => entry.manifest !== null);
  const doomed = backupsToDelete(complete, policy, now);
  for (const entry of doomed) {
    for (const file of [entry.name, checksumFileName(entry.name), manifestFileName(entry.name)]) rmSync(join(dir, file), { force: true });
  }
  return doomed.map((entry) => entry.name);
}

function fsyncFile(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    fsyncFile(dir);
  } catch {
    // Some filesystems refuse fsync on a directory; the renames are still ordered.
  }
}

function firstMeaningfulLine(text: string): string {
  return text.trim().split("\n").filter((l) => l.trim() !== "" && !l.startsWith("WARNING") && !/Deprecated/.test(l))[0] ?? "(no message)";
}

