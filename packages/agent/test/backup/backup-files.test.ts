/**
 * Taking and verifying a backup through the real pipeline (spawned dump program, gzip,
 * SHA-256, atomic renames) with a stand-in for mariadb-dump that prints a fixed dump and
 * records how it was called. The real mariadb-dump is exercised in test/e2e/backup-restore.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { applyRetention, listBackups, newestGoodBackupAgeSeconds, takeBackup, verifyBackup, type DumpSource } from "../../src/backup/backup-files.js";
import { backupFileName, manifestFileName } from "../../src/backup/naming.js";

const DUMP = [
  "-- MariaDB dump 10.19",
  "-- SET GLOBAL gtid_slave_pos='0-1-42';",
  "USE `app`;",
  "INSERT INTO `orders` VALUES (1,'one'),(2,'two'),(3,'three');",
  "INSERT INTO `users` VALUES (1,'ann');",
  "-- Dump completed on 2026-12-01 21:23:41",
  "",
].join("\n");

const PASSWORD = "s3cret-Pa55";
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function fakeDump(options: { body?: string; exit?: number } = {}): { dir: string; bin: string; argvFile: string; cnfFile: string } {
  const dir = mkdtempSync(join(tmpdir(), "mnha-backup-test-"));
  made.push(dir);
  const bodyFile = join(dir, "dump.sql");
  writeFileSync(bodyFile, options.body ?? DUMP);
  const argvFile = join(dir, "argv.txt");
  const cnfFile = join(dir, "cnf.txt");
  const bin = join(dir, "fake-mariadb-dump");
  // Records its argv, and the mode and content of the option file it was given.
  writeFileSync(
    bin,
    `#!/bin/sh
printf '%s\\n' "$@" > ${argvFile}
cnf=$(printf '%s\\n' "$@" | sed -n 's/^--defaults-extra-file=//p')
{ stat -c %a "$cnf"; cat "$cnf"; } > ${cnfFile}
cat ${bodyFile}
exit ${options.exit ?? 0}
`,
  );
  chmodSync(bin, 0o755);
  return { dir, bin, argvFile, cnfFile };
}

function source(bin: string, schemas = ["app", "mysql", "sys"]): DumpSource {
  return { node: "mn1", socket: "/run/mysqld/mysqld.sock", rootUser: "root", rootPassword: PASSWORD, dumpBinary: bin, listSchemas: async () => schemas };
}

const at = (iso: string) => () => new Date(iso);

async function corruptCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MnhaError);
  return (error as MnhaError).code;
}

describe("takeBackup", () => {
  it("writes the compressed dump, its checksum and manifest, with the password only in a 0600 option file", async () => {
    const fake = fakeDump();
    const dir = join(fake.dir, "backups");
    const result = await takeBackup(source(fake.bin), dir, at("2026-12-01T21:23:40Z"));
    expect(result.path).toBe(join(dir, "mnha-mn1-20261201T212340Z.sql.gz"));
    expect(gunzipSync(readFileSync(result.path)).toString()).toBe(DUMP);
    expect(readdirSync(dir).sort()).toEqual(["mnha-mn1-20261201T212340Z.json", "mnha-mn1-20261201T212340Z.sql.gz", "mnha-mn1-20261201T212340Z.sql.gz.sha256"]);
    expect(statSync(result.path).mode & 0o777).toBe(0o600);
    const m = result.manifest;
    expect(m).toMatchObject({ node: "mn1", gtid: "0-1-42", schemas: ["app"], tables: [{ table: "app.orders", rows: 3 }, { table: "app.users", rows: 1 }], sqlBytes: Buffer.byteLength(DUMP) });
    expect(m.excluded).toContain("mysql");
    expect(JSON.parse(readFileSync(join(dir, manifestFileName(m.file)), "utf8"))).toEqual(m);
    const argv = readFileSync(fake.argvFile, "utf8");
    expect(argv).not.toContain(PASSWORD);
    expect(argv).toContain("--single-transaction");
    expect(argv).toContain("--gtid");
    expect(argv.trim().split("\n").slice(-2)).toEqual(["--databases", "app"]);
    const [mode, ...cnf] = readFileSync(fake.cnfFile, "utf8").split("\n");
    expect(mode).toBe("600");
    expect(cnf.join("\n")).toContain(`password="${PASSWORD}"`);
    // The option file is gone afterwards.
    const cnfPath = argv.split("\n").find((l) => l.startsWith("--defaults-extra-file="))?.slice("--defaults-extra-file=".length) ?? "";
    expect(existsSync(cnfPath)).toBe(false);
  });

  it("leaves nothing behind when mariadb-dump fails, and says so", async () => {
    const fake = fakeDump({ exit: 2 });
    const dir = join(fake.dir, "backups");
    expect(await corruptCode(takeBackup(source(fake.bin), dir))).toBe("BACKUP_FAILED");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses a dump without the trailer (cut short) and leaves nothing behind", async () => {
    const fake = fakeDump({ body: DUMP.replace(/-- Dump completed.*\n/, "") });
    const dir = join(fake.dir, "backups");
    expect(await corruptCode(takeBackup(source(fake.bin), dir))).toBe("BACKUP_CORRUPT");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("never replaces a backup taken in the same second", async () => {
    const fake = fakeDump();
    const dir = join(fake.dir, "backups");
    const first = await takeBackup(source(fake.bin), dir, at("2026-12-01T21:23:40Z"));
    await expect(takeBackup(source(fake.bin), dir, at("2026-12-01T21:23:40.5Z"))).rejects.toThrow(/already exists \(two backups in the same second\)/);
    expect((await verifyBackup(first.path)).sha256).toBe(first.manifest.sha256);
    expect(readdirSync(dir).filter((n) => n.endsWith(".partial"))).toEqual([]);
  });

  it("refuses when there is no application schema", async () => {
    const fake = fakeDump();
    expect(await corruptCode(takeBackup(source(fake.bin, ["mysql", "sys"]), join(fake.dir, "b")))).toBe("BACKUP_FAILED");
  });
});

describe("verifyBackup", () => {
  async function fresh() {
    const fake = fakeDump();
    const dir = join(fake.dir, "backups");
    const result = await takeBackup(source(fake.bin), dir, at("2026-12-01T21:23:40Z"));
    return { dir, path: result.path, manifest: result.manifest };
  }

  it("accepts a good backup and reports its content", async () => {
    const { path, manifest } = await fresh();
    const result = await verifyBackup(path);
    expect(result.sha256).toBe(manifest.sha256);
    expect(result.gtid).toBe("0-1-42");
    expect(result.tables).toEqual(manifest.tables);
  });

  it("refuses a flipped byte (checksum)", async () => {
    const { path } = await fresh();
    const bytes = readFileSync(path);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    await expect(verifyBackup(path)).rejects.toMatchObject({ code: "BACKUP_CORRUPT" });
  });

  it("refuses a truncated file (gzip stream incomplete)", async () => {
    const { path } = await fresh();
    truncateSync(path, statSync(path).size - 12);
    await expect(verifyBackup(path)).rejects.toThrow(/gzip stream is damaged or cut short/);
  });

  it("refuses a manifest whose row counts do not match the dump", async () => {
    const { dir, path, manifest } = await fresh();
    const altered = { ...manifest, tables: [{ table: "app.orders", rows: 4 }, { table: "app.users", rows: 1 }] };
    writeFileSync(join(dir, manifestFileName(manifest.file)), JSON.stringify(altered));
    await expect(verifyBackup(path)).rejects.toThrow(/app\.orders has 3 rows in the dump, the manifest says 4/);
  });

  it("says plainly when the file does not exist", async () => {
    await expect(verifyBackup("/nonexistent/mnha-mn1-20261201T212340Z.sql.gz")).rejects.toMatchObject({ code: "BACKUP_INVALID" });
  });
});

describe("list and retention", () => {
  it("lists newest first, flags one without a manifest, keeps by count, reports the newest good age", async () => {
    const fake = fakeDump();
    const dir = join(fake.dir, "backups");
    for (const iso of ["2026-12-01T01:00:00Z", "2026-12-02T01:00:00Z", "2026-12-03T01:00:00Z"]) await takeBackup(source(fake.bin), dir, at(iso));
    writeFileSync(join(dir, backupFileName("mn1", new Date("2026-12-04T01:00:00Z"))), "partial");
    writeFileSync(join(dir, ".mnha-mn1-20261205T010000Z.sql.gz.partial"), "in progress");
    const listed = listBackups(dir);
    expect(listed.map((e) => e.name)).toEqual(["mnha-mn1-20261204T010000Z.sql.gz", "mnha-mn1-20261203T010000Z.sql.gz", "mnha-mn1-20261202T010000Z.sql.gz", "mnha-mn1-20261201T010000Z.sql.gz"]);
    expect(listed[0]?.problem).toMatch(/no manifest/);
    expect(newestGoodBackupAgeSeconds(dir, new Date("2026-12-03T02:00:00Z"))).toBe(3600);
    const deleted = applyRetention(dir, { keepCount: 2, keepDays: 0 }, new Date("2026-12-03T02:00:00Z"));
    expect(deleted).toEqual(["mnha-mn1-20261201T010000Z.sql.gz"]);
    expect(readdirSync(dir).filter((n) => n.startsWith("mnha-mn1-20261201"))).toEqual([]);
    expect(listBackups(dir).filter((e) => e.manifest !== null)).toHaveLength(2);
  });

  it("lists nothing (no error) when the directory does not exist yet", () => {
    expect(listBackups("/nonexistent/mnha-backups")).toEqual([]);
    expect(newestGoodBackupAgeSeconds("/nonexistent/mnha-backups", new Date())).toBeNull();
  });
});
