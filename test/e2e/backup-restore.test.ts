/**
 * Backups and restore against the lab's real MariaDB pair (replicating both ways): a backup
 * taken with real mariadb-dump while rows are written, verified, then restored with
 * `mnha restore` after the data changed: both nodes hold exactly the backup's rows, CHECKSUM
 * TABLE matches what was backed up on both, and replication runs on. The remote copy goes
 * with real rsync over the lab's real sshd (mn2 stands in for the backup host).
 */
import { copyFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MAIN, HOSTS, nodePaths, type MnNode } from "../lab/constants.js";
import { runIn, waitFor, type CommandResult } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { labDatabase, labRootPassword, mariaDbPaths } from "../lab/mariadb.js";
import { LAB_SSH_USER, nodeExec, sshdPaths } from "../lab/sshd.js";
import { parse, stringify } from "yaml";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ sshd: true });
const db = { mn1: () => labDatabase("mn1"), mn2: () => labDatabase("mn2") };

function mnha(node: MnNode, args: string[], options: { input?: string; timeoutMs?: number; config?: string } = {}): Promise<CommandResult> {
  return runIn(HOSTS[node].namespace, process.execPath, [AGENT_MAIN, ...args, "--config", options.config ?? nodePaths(node).config], {
    allowFailure: true,
    timeoutMs: options.timeoutMs ?? 120_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

async function sql(node: MnNode, statement: string): Promise<Record<string, unknown>[]> {
  return db[node]().withConnection(async (c) => (await c.query(statement)) as Record<string, unknown>[]);
}

async function checksum(node: MnNode, table: string): Promise<string> {
  return String((await sql(node, `CHECKSUM TABLE ${table} EXTENDED`))[0]?.["Checksum"]);
}

async function caughtUp(node: MnNode, from: MnNode): Promise<void> {
  const result = await db[node]().waitForGtid(await db[from]().gtidBinlogPos(), 60_000);
  expect(result.reached, `${node} reaching ${from}'s position`).toBe(true);
}

async function replicatingBothWays(): Promise<void> {
  for (const node of ["mn1", "mn2"] as const) {
    await waitFor(`${node}'s replica running`, async () => {
      const h = await db[node]().health();
      return h.slaveIoRunning === "Yes" && h.slaveSqlRunning === "Yes" ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
  }
}

const out = (r: CommandResult) => `${r.stdout}\n${r.stderr}`;

/** One connection inserting numbered rows one commit at a time until stopped. */
function startWriter(): { stop: () => Promise<number>; committed: () => number } {
  let committed = 0;
  let stopping = false;
  const done = db.mn1().withConnection(async (c) => {
    while (!stopping && committed < 1_000_000) {
      await c.query("INSERT INTO appdb.events (payload) VALUES (?)", [`event ${committed + 1}`]);
      committed += 1;
    }
  });
  return {
    committed: () => committed,
    stop: async () => {
      stopping = true;
      await done;
      return committed;
    },
  };
}

interface Manifest {
  file: string;
  gtid: string;
  sha256: string;
  schemas: string[];
  excluded: string[];
  tables: { table: string; rows: number }[];
}

let backupPath = "";
let manifest: Manifest;
let bulkChecksumAtBackup = "";

beforeAll(async () => {
  await lab.up({ fresh: true });
  const first = await mnha("mn1", ["db", "setup-replication"]);
  expect(first.code, out(first)).toBe(0);
  copyFileSync(mariaDbPaths("mn1").replicationPasswordFile, mariaDbPaths("mn2").replicationPasswordFile);
  const second = await mnha("mn2", ["db", "setup-replication"]);
  expect(second.code, out(second)).toBe(0);
  await replicatingBothWays();
  await sql("mn1", "CREATE DATABASE appdb");
  await sql("mn1", "CREATE TABLE appdb.events (id INT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(64)) ENGINE=InnoDB");
  await sql("mn1", "CREATE TABLE appdb.bulk (id INT PRIMARY KEY, payload VARCHAR(200)) ENGINE=InnoDB");
  // Enough data that the dump takes a while, with quotes and parentheses in the strings.
  await sql("mn1", "INSERT INTO appdb.bulk SELECT seq, CONCAT('it''s (', seq, ') ', REPEAT(MD5(seq), 4)) FROM appdb.seq_1_to_100000");
  await caughtUp("mn2", "mn1");
}, 300_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("backup-restore") });
});

describe("mnha backup", () => {
  it("takes a consistent backup with real mariadb-dump while rows are being written", async () => {
    bulkChecksumAtBackup = await checksum("mn1", "appdb.bulk");
    const writer = startWriter();
    await waitFor("the writer under way", async () => (writer.committed() >= 50 ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
    const before = writer.committed();
    const result = await mnha("mn1", ["backup", "now", "--json"]);
    const afterCommand = writer.committed();
    await new Promise((r) => setTimeout(r, 300));
    const total = await writer.stop();
    expect(result.code, out(result)).toBe(0);
    const parsed = JSON.parse(result.stdout) as { path: string; manifest: Manifest };
    backupPath = parsed.path;
    manifest = parsed.manifest;
    const events = manifest.tables.find((t) => t.table === "appdb.events")?.rows ?? -1;
    // The snapshot holds the rows committed before it, not the ones after: writes went on around it.
    expect(events).toBeGreaterThan(before);
    expect(events).toBeLessThanOrEqual(afterCommand + 1);
    expect(total).toBeGreaterThan(events);
    expect(manifest.tables.find((t) => t.table === "appdb.bulk")?.rows).toBe(100_000);
    expect(manifest.schemas).toEqual(["appdb"]);
    expect(manifest.excluded).toContain("mysql");
    expect(manifest.gtid).toMatch(/^\d+-\d+-\d+/);
    expect(statSync(backupPath).mode & 0o777).toBe(0o600);
    // The root password never reaches the command's output.
    expect(out(result)).not.toContain(labRootPassword("mn1"));
  });

  it("verify accepts it; list shows it; a truncated copy is refused", async () => {
    const verify = await mnha("mn1", ["backup", "verify", backupPath]);
    expect(verify.code, out(verify)).toBe(0);
    expect(verify.stdout).toContain(`sha256 ${manifest.sha256} matches; gzip stream complete; dump trailer present`);
    const list = await mnha("mn1", ["backup", "list", "--json"]);
    expect(list.code, out(list)).toBe(0);
    expect((JSON.parse(list.stdout) as { backups: { name: string }[] }).backups.map((b) => b.name)).toContain(manifest.file);
    const cut = `${nodePaths("mn1").dir}/${manifest.file}`;
    copyFileSync(backupPath, cut);
    copyFileSync(`${backupPath}.sha256`, `${cut}.sha256`);
    truncateSync(cut, Math.floor(statSync(cut).size / 2));
    const bad = await mnha("mn1", ["backup", "verify", cut]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/gzip stream is damaged or cut short/);
  });
});

describe("mnha restore", () => {
  it("run on the standby (the wrong node): refused before anything changes", async () => {
    expect(await lab.holder()).toBe("mn1");
    const before = await checksum("mn2", "appdb.bulk");
    const result = await mnha("mn2", ["restore", backupPath, "--yes"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/mn2 does not hold the VIP .*restore runs on the VIP holder/);
    expect(result.stderr).toContain("nothing was changed");
    expect(await checksum("mn2", "appdb.bulk")).toBe(before);
    expect(existsSync(`${nodePaths("mn2").dataDir}/restore.state.json`), "no restore state left behind").toBe(false);
  });

  it("a wrong typed name changes nothing", async () => {
    await sql("mn1", "DELETE FROM appdb.bulk WHERE id <= 500");
    await sql("mn1", "CREATE DATABASE junk");
    await caughtUp("mn2", "mn1");
    const changed = await checksum("mn1", "appdb.bulk");
    const result = await mnha("mn1", ["restore", backupPath], { input: "mn2\n" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("This REPLACES the application databases of BOTH nodes");
    expect(result.stderr).toContain("nothing was changed");
    expect(await checksum("mn1", "appdb.bulk")).toBe(changed);
    expect(await sql("mn1", "SHOW DATABASES LIKE 'junk'")).toHaveLength(1);
  });

  it("--yes restores both nodes to the backup: row counts and CHECKSUM TABLE match it, replication running", async () => {
    const result = await mnha("mn1", ["restore", backupPath, "--yes"], { timeoutMs: 600_000 });
    expect(result.code, out(result)).toBe(0);
    expect(result.stderr).toMatch(/\[9\/10\] make this node writable again: done/);
    expect(result.stderr).toMatch(/\[10\/10\] leave maintenance mode on both nodes: done/);
    // The agents were in maintenance for the duration (no failover, no restore meanwhile), and are out of it.
    const maintenance = await mnha("mn1", ["events", "--type", "maintenance", "--json"]);
    const types = (JSON.parse(maintenance.stdout) as { type: string; node: string; message: string }[]).map((e) => `${e.node} ${e.type}`);
    for (const expected of ["mn1 maintenance.on", "mn2 maintenance.on", "mn1 maintenance.off", "mn2 maintenance.off"]) expect(types, maintenance.stdout).toContain(expected);
    const status = await lab.agentStatus("mn1");
    expect(status.ops?.self.maintenance ?? null).toBeNull();
    expect(status.ops?.peer?.maintenance ?? null).toBeNull();
    expect(result.stderr).toMatch(/safety backup: .*mnha-mn1-\d{8}T\d{6}Z\.sql\.gz/);
    const events = manifest.tables.find((t) => t.table === "appdb.events")?.rows ?? -1;
    await caughtUp("mn2", "mn1");
    for (const node of ["mn1", "mn2"] as const) {
      // Exactly the rows of the snapshot: ids 1..N, none written after it.
      expect(await sql(node, "SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM appdb.events"), node).toEqual([{ n: BigInt(events), lo: 1, hi: events }]);
      expect(await sql(node, "SELECT COUNT(*) AS n FROM appdb.bulk"), node).toEqual([{ n: 100_000n }]);
      expect(await checksum(node, "appdb.bulk"), node).toBe(bulkChecksumAtBackup);
      expect(await sql(node, "SHOW DATABASES LIKE 'junk'"), node).toHaveLength(0);
      expect(await db[node]().readOnly(), node).toBe(false);
    }
    expect(await checksum("mn2", "appdb.events")).toBe(await checksum("mn1", "appdb.events"));
    await replicatingBothWays();
    await sql("mn1", "INSERT INTO appdb.events (payload) VALUES ('after the restore')");
    await caughtUp("mn2", "mn1");
    expect(await sql("mn2", "SELECT COUNT(*) AS n FROM appdb.events WHERE payload = 'after the restore'")).toEqual([{ n: 1n }]);
    // The safety backup of the data before the restore is there, and verifies.
    const safety = /safety backup: (\S+)/.exec(result.stderr)?.[1] ?? "";
    const verify = await mnha("mn1", ["backup", "verify", safety]);
    expect(verify.code, out(verify)).toBe(0);
    expect(readFileSync(`${safety}.sha256`, "utf8")).toMatch(/^[0-9a-f]{64} {2}mnha-mn1-/);
  });
});

describe("the remote copy (real rsync over the lab's sshd)", () => {
  const remoteDir = "/var/lib/mnha-remote-backups";
  const keyFile = `${nodePaths("mn1").dir}/backup_ed25519`;
  const knownHosts = `${nodePaths("mn1").dir}/backup_known_hosts`;

  function remoteConfig(label: string, knownHostsFile: string): string {
    const config = parse(readFileSync(nodePaths("mn1").config, "utf8")) as Record<string, unknown>;
    config["backup"] = { keep: { count: 10, days: 0 }, remote: { host: HOSTS.mn2.address, user: LAB_SSH_USER, dir: remoteDir, keyFile, knownHostsFile, keep: 2 } };
    const file = `${nodePaths("mn1").dir}/mnha-${label}.yaml`;
    writeFileSync(file, stringify(config), { mode: 0o600 });
    return file;
  }

  async function remoteNames(): Promise<string[]> {
    const listing = await nodeExec("mn2", ["ls", "-1", remoteDir]);
    expect(listing.code, listing.stderr).toBe(0);
    return listing.stdout.trim().split("\n").filter((n) => n !== "").sort();
  }

  beforeAll(async () => {
    const keygen = await runIn(HOSTS.mn1.namespace, "ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mnha-backup", "-f", keyFile], { allowFailure: true });
    expect(keygen.code, keygen.stderr).toBe(0);
    const authorized = await nodeExec("mn2", ["install", "-D", "-m", "600", `${keyFile}.pub`, `/var/lib/${LAB_SSH_USER}/.ssh/authorized_keys`]);
    expect(authorized.code, authorized.stderr).toBe(0);
    writeFileSync(knownHosts, `${HOSTS.mn2.address} ${readFileSync(`${sshdPaths("mn2").hostKey}.pub`, "utf8")}`);
  });

  it("copies each backup with its checksum and manifest, and keeps the newest `keep` remotely", async () => {
    const config = remoteConfig("remote", knownHosts);
    const taken: string[] = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1_100)); // names are per second
      const result = await mnha("mn1", ["backup", "now", "--json"], { config });
      expect(result.code, out(result)).toBe(0);
      const parsed = JSON.parse(result.stdout) as { manifest: Manifest; remote: { host: string; deleted: string[] } | null };
      expect(parsed.remote?.host).toBe(HOSTS.mn2.address);
      taken.push(parsed.manifest.file);
    }
    const kept = taken.slice(1);
    expect(await remoteNames()).toEqual(kept.flatMap((n) => [n.replace(/\.sql\.gz$/, ".json"), n, `${n}.sha256`]).sort());
    // The remote copy checks out with the standard tool on the remote host.
    const inDir = await nodeExec("mn2", ["sh", "-c", `cd ${remoteDir} && sha256sum -c ${kept.map((n) => `${n}.sha256`).join(" ")}`]);
    expect(inDir.code, inDir.stdout + inDir.stderr).toBe(0);
    expect(inDir.stdout).toContain(`${kept[0] ?? ""}: OK`);
  });

  it("refuses a backup host whose key is not the known one, and keeps the local backup", async () => {
    const wrong = `${nodePaths("mn1").dir}/backup_known_hosts_wrong`;
    writeFileSync(wrong, `${HOSTS.mn2.address} ${readFileSync(`${sshdPaths("mn1").hostKey}.pub`, "utf8")}`);
    const before = await remoteNames();
    await new Promise((r) => setTimeout(r, 1_100));
    const result = await mnha("mn1", ["backup", "now"], { config: remoteConfig("wrong-key", wrong) });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/copying the backup on the remote backup host failed/);
    expect(result.stderr).toMatch(/hint: the remote host's key is not in the known-hosts file \(or changed\)/);
    expect(result.stdout).toMatch(/^backup \/.*mnha-mn1-\d{8}T\d{6}Z\.sql\.gz/m);
    const path = /^backup (\S+)/m.exec(result.stdout)?.[1] ?? "";
    const verify = await mnha("mn1", ["backup", "verify", path]);
    expect(verify.code, out(verify)).toBe(0);
    expect(await remoteNames()).toEqual(before);
  });
});

describe("scheduled backups in the agent", () => {
  it("only the VIP holder backs up on the schedule; each backup is an event", async () => {
    const holder = await lab.waitForHolder(null, { timeoutMs: 60_000 });
    const standby: MnNode = holder === "mn1" ? "mn2" : "mn1";
    const dirOf = (node: MnNode) => `${nodePaths(node).dataDir}/backups`;
    const names = async (node: MnNode) => ((await runIn(HOSTS[node].namespace, "ls", ["-1", dirOf(node)], { allowFailure: true })).stdout.trim().split("\n").filter((n) => n.endsWith(".sql.gz")));
    const before = { holder: await names(holder), standby: await names(standby) };
    for (const node of ["mn1", "mn2"] as const) {
      await lab.stopAgent(node);
      const config = parse(readFileSync(nodePaths(node).config, "utf8")) as Record<string, unknown>;
      // Every 5 seconds (node-cron's optional seconds field), so the test need not wait for a minute.
      config["backup"] = { enabled: true, schedule: "*/5 * * * * *", keep: { count: 20, days: 0 } };
      writeFileSync(nodePaths(node).config, stringify(config), { mode: 0o600 });
    }
    for (const node of ["mn1", "mn2"] as const) await lab.startAgent(node);
    const nowHolder = await lab.waitForHolder(null, { timeoutMs: 90_000 });
    const nowStandby: MnNode = nowHolder === "mn1" ? "mn2" : "mn1";
    const startCount = nowHolder === holder ? before.holder.length : before.standby.length;
    await waitFor("two scheduled backups on the holder", async () => ((await names(nowHolder)).length >= startCount + 2 ? true : undefined), { timeoutMs: 90_000, intervalMs: 500 });
    const standbyNames = await names(nowStandby);
    expect(standbyNames).toEqual(nowStandby === holder ? before.holder : before.standby);
    const events = await mnha(nowHolder, ["events", "--type", "backup", "--json"]);
    expect(events.code, out(events)).toBe(0);
    const parsed = JSON.parse(events.stdout) as { events?: { type: string; node: string }[] } | { type: string; node: string }[];
    const list = Array.isArray(parsed) ? parsed : (parsed.events ?? []);
    expect(list.filter((e) => e.type === "backup.taken" && e.node === nowHolder).length).toBeGreaterThanOrEqual(2);
    expect(list.filter((e) => e.type === "backup.failed")).toEqual([]);
    const newest = (await names(nowHolder)).sort().at(-1) ?? "";
    const verify = await mnha(nowHolder, ["backup", "verify", `${dirOf(nowHolder)}/${newest}`]);
    expect(verify.code, out(verify)).toBe(0);
  });
});
