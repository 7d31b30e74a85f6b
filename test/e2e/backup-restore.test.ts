/**
 * Backups and restore against the lab's real MariaDB pair (replicating both ways): a backup
 * taken with real mariadb-dump while rows are written, verified, then restored with
 * `mnha restore` after the data changed: both nodes hold exactly the backup's rows, CHECKSUM
 * TABLE matches what was backed up on both, and replication runs on. The peer is re-seeded
 * from the restored node by its agent, so a peer whose replica was stopped and whose data
 * diverged (an unlogged row written as root) is repaired too. The remote copy goes
 * with real rsync over the lab's real sshd (mn2 stands in for the backup host).
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MAIN, HOSTS, nodePaths, type MnNode } from "../lab/constants.js";
import { runIn, waitFor, type CommandResult } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { labDatabase, labRootPassword, mariaDbPaths } from "../lab/mariadb.js";
import { LAB_SSH_USER, nodeExec, sshdPaths } from "../lab/sshd.js";
import { parse, stringify } from "yaml";
import { labArchiveDir } from "./scenario.js";

/** Stops a stand-in by its pid file and waits until it is gone (a stand-in already down is fine). */
function stopStandin(node: MnNode, service: "mn" | "ui"): string[] {
  const script = 'pid=$(cat "$1" 2>/dev/null) && kill "$pid" 2>/dev/null; for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done; exit 1';
  return ["sh", "-c", script, "sh", nodePaths(node).servicePid(service)];
}

// The MN and the UI get stop commands (as zstack-ctl stop_node / stop_ui would be): the restore
// stops the MN service on both nodes and must keep the UI (and the database) running.
const lab = new Lab({
  sshd: true,
  config: {
    customize: (node, config) => ({
      ...config,
      services: config.services?.map((s) => (s.name === "mn" || s.name === "ui" ? { ...s, stop: stopStandin(node, s.name), ...(s.restore ? { start: s.restore.command } : {}) } : s)),
    }),
  },
});
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
function startWriter(node: MnNode = "mn1"): { stop: () => Promise<number>; committed: () => number } {
  let committed = 0;
  let stopping = false;
  const done = db[node]().withConnection(async (c) => {
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

/** The stand-ins' pids per node (a restarted service has a new one). */
async function standinPids(): Promise<Record<string, string>> {
  const pids: Record<string, string> = {};
  for (const node of ["mn1", "mn2"] as const) for (const service of ["mn", "ui"] as const) pids[`${node}/${service}`] = readFileSync(nodePaths(node).servicePid(service), "utf8").trim();
  return pids;
}

/** The MN service was stopped and started again on both nodes (new pid, answering), the UI never (same pid), as the events say. */
async function expectServicesStoppedAndStarted(before: Record<string, string>): Promise<void> {
  const after = await standinPids();
  for (const node of ["mn1", "mn2"] as const) {
    expect(after[`${node}/mn`], `${node}'s MN service restarted`).not.toBe(before[`${node}/mn`]);
    expect(after[`${node}/ui`], `${node}'s UI kept`).toBe(before[`${node}/ui`]);
    const answer = await runIn(HOSTS.client.namespace, "curl", ["-s", "--max-time", "3", `http://${HOSTS[node].address}:8080/`], { allowFailure: true });
    expect(answer.stdout, `${node}'s MN service answers`).toContain(`"node":"${node}"`);
  }
  const events = await mnha("mn1", ["events", "--type", "maintenance", "--json", "--limit", "200"]);
  const list = JSON.parse(events.stdout) as { type: string; node: string; message: string }[];
  for (const node of ["mn1", "mn2"] as const) {
    expect(list.filter((e) => e.node === node && e.type === "maintenance.services-stop").map((e) => e.message), events.stdout).toContain(`${node}: stopped mn; kept running: ui, db`);
    expect(list.filter((e) => e.node === node && e.type === "maintenance.services-start").map((e) => e.message), events.stdout).toContain(`${node}: started mn; kept running: ui, db`);
  }
}

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

  it("run twice (a second terminal): the second exits at once while the first waits at its confirmation, naming it; nothing changes", async () => {
    const before = await checksum("mn1", "appdb.bulk");
    const first = spawn("ip", ["netns", "exec", HOSTS.mn1.namespace, process.execPath, AGENT_MAIN, "restore", backupPath, "--config", nodePaths("mn1").config], { stdio: ["pipe", "pipe", "pipe"] });
    let firstErr = "";
    first.stderr.on("data", (chunk: Buffer) => (firstErr += chunk.toString()));
    const firstExit = new Promise<number | null>((resolve) => first.on("exit", (code) => resolve(code)));
    try {
      await waitFor("the first restore at its typed confirmation", async () => (firstErr.includes("Type the name of this node") ? true : undefined), { timeoutMs: 60_000, intervalMs: 100 });
      const second = await mnha("mn1", ["restore", backupPath, "--yes"]);
      expect(second.code, out(second)).toBe(1);
      expect(second.stderr).toMatch(/^mnha: mnha restore \(pid \d+, since \S+Z\) is running on this node; this restore exits and changes nothing$/m);
      expect(second.stderr).toMatch(/hint: one long operation at a time per node/);
      expect(second.stderr).not.toContain("This REPLACES");
    } finally {
      first.stdin.end("not-this-node\n");
    }
    expect(await firstExit, firstErr).toBe(1);
    expect(firstErr).toContain("restore cancelled");
    expect(await checksum("mn1", "appdb.bulk")).toBe(before);
    // The lock went with the first: the next run gets as far as its question again.
    const again = await mnha("mn1", ["restore", backupPath], { input: "no\n" });
    expect(again.stderr).toContain("This REPLACES the application databases of BOTH nodes");
  });

  it("--yes restores both nodes to the backup: row counts and CHECKSUM TABLE match it, replication running", async () => {
    const pidsBefore = await standinPids();
    const result = await mnha("mn1", ["restore", backupPath, "--yes"], { timeoutMs: 600_000 });
    expect(result.code, out(result)).toBe(0);
    expect(result.stderr).toContain("The MN services are stopped on both nodes for the duration (the UI and the database keep running)");
    expect(result.stderr).toMatch(/\[4\/13\] stop the MN services on both nodes \(the UI and the database keep running\): done/);
    expect(result.stderr).toMatch(/\[8\/13\] re-seed the peer from this node \(its database becomes a copy of this one\): done/);
    expect(result.stderr).toMatch(/mn2 is a copy of mn1's database at GTID \d+-\d+-\d+/);
    expect(result.stderr).toMatch(/\[11\/13\] make this node writable again: done/);
    expect(result.stderr).toMatch(/\[12\/13\] start the MN services on both nodes again: done/);
    expect(result.stderr).toMatch(/\[13\/13\] leave maintenance mode on both nodes: done/);
    expect(result.stdout).toContain("the MN services run again");
    await expectServicesStoppedAndStarted(pidsBefore);
    // The agents were in maintenance for the duration (no failover, no restore meanwhile), and are out of it.
    const maintenance = await mnha("mn1", ["events", "--type", "maintenance", "--json"]);
    const types = (JSON.parse(maintenance.stdout) as { type: string; node: string; message: string }[]).map((e) => `${e.node} ${e.type}`);
    for (const expected of ["mn1 maintenance.on", "mn2 maintenance.on", "mn1 maintenance.off", "mn2 maintenance.off"]) expect(types, maintenance.stdout).toContain(expected);
    // The status CLI gets 5 s per try: on a loaded machine its start alone may take that long.
    const status = await waitFor("mn1's status", async () => (await lab.tryAgentStatus("mn1")).status ?? undefined, { timeoutMs: 60_000, intervalMs: 500 });
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

  it("a peer whose replica is stopped and whose data diverged is re-seeded: both nodes equal the backup, replication running both ways", async () => {
    expect(await lab.holder()).toBe("mn1");
    // mn2 stops replicating; mn1 writes on (mn2 misses it); mn2 gets a row nobody else has
    // (written as root, read_only lifted, unlogged: replication can never repair that).
    await sql("mn2", "STOP SLAVE");
    await sql("mn1", "INSERT INTO appdb.events (payload) VALUES ('mn2 misses this')");
    await db.mn2().withConnection(async (c) => {
      const [row] = (await c.query("SELECT @@GLOBAL.read_only AS ro")) as { ro: number }[];
      await c.query("SET GLOBAL read_only = OFF");
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("INSERT INTO appdb.events (payload) VALUES ('diverged on mn2')");
      await c.query("DELETE FROM appdb.bulk WHERE id <= 10");
      if (Number(row?.ro) === 1) await c.query("SET GLOBAL read_only = ON");
    });
    expect((await db.mn2().health()).slaveSqlRunning).toBe("No");
    expect(await checksum("mn2", "appdb.bulk")).not.toBe(bulkChecksumAtBackup);
    const result = await mnha("mn1", ["restore", backupPath, "--yes"], { timeoutMs: 600_000 });
    expect(result.code, out(result)).toBe(0);
    expect(result.stderr).toMatch(/\[8\/13\] re-seed the peer from this node \(its database becomes a copy of this one\): done/);
    expect(result.stderr).toMatch(/mn2 is a copy of mn1's database at GTID \d+-\d+-\d+ \(.* in [\d.]+ s\) and replicates from it/);
    expect(result.stderr).toContain("CHECKSUM TABLE equal on both nodes; replication running both ways");
    const events = manifest.tables.find((t) => t.table === "appdb.events")?.rows ?? -1;
    await replicatingBothWays();
    await caughtUp("mn2", "mn1");
    for (const node of ["mn1", "mn2"] as const) {
      expect(await sql(node, "SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM appdb.events"), node).toEqual([{ n: BigInt(events), lo: 1, hi: events }]);
      expect(await sql(node, "SELECT COUNT(*) AS n FROM appdb.events WHERE payload IN ('diverged on mn2', 'mn2 misses this')"), node).toEqual([{ n: 0n }]);
      expect(await checksum(node, "appdb.bulk"), node).toBe(bulkChecksumAtBackup);
    }
    expect(await checksum("mn2", "appdb.events")).toBe(await checksum("mn1", "appdb.events"));
    // Replication runs both ways from the restored position.
    await sql("mn1", "INSERT INTO appdb.events (payload) VALUES ('after the re-seed')");
    await caughtUp("mn2", "mn1");
    expect(await sql("mn2", "SELECT COUNT(*) AS n FROM appdb.events WHERE payload = 'after the re-seed'")).toEqual([{ n: 1n }]);
    // The copy is in mn2's audit trail: started and finished, asked through mn1.
    const audit = await mnha("mn2", ["events", "--type", "db.reseed", "--json", "--limit", "100"]);
    const list = JSON.parse(audit.stdout) as { type: string; node: string; message: string }[];
    const mine = list.filter((e) => e.node === "mn2").map((e) => e.type);
    expect(mine, audit.stdout).toEqual(expect.arrayContaining(["db.reseed.started", "db.reseed.finished"]));
    expect(mine).not.toContain("db.reseed.failed");
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
      // Every 5 seconds (cron's optional leading seconds field), so the test need not wait for a minute.
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

  it("a scheduled backup taken while rows are written, restored into the pair: row counts and CHECKSUM TABLE match the backup on both nodes, replication running", async () => {
    const holder = await lab.waitForHolder(null, { timeoutMs: 60_000 });
    const peer: MnNode = holder === "mn1" ? "mn2" : "mn1";
    const dir = `${nodePaths(holder).dataDir}/backups`;
    const list = () => readdirSync(dir).filter((n) => n.endsWith(".sql.gz")).sort();
    const before = list();
    const rowsBefore = Number((await sql(holder, "SELECT COUNT(*) AS n FROM appdb.events"))[0]?.["n"]);
    const writer = startWriter(holder);
    await waitFor("two scheduled backups taken while rows are written", async () => (list().length >= before.length + 2 ? true : undefined), { timeoutMs: 90_000, intervalMs: 200 });
    await new Promise((r) => setTimeout(r, 300));
    const written = await writer.stop();
    const rowsAfter = rowsBefore + written;
    // A scheduled backup whose snapshot lies inside the writes: rows before it and rows after it.
    const taken = list().filter((n) => !before.includes(n)).map((name) => ({ name, manifest: JSON.parse(readFileSync(`${dir}/${name.replace(/\.sql\.gz$/, ".json")}`, "utf8")) as Manifest }));
    const underWrites = taken.find((b) => {
      const rows = b.manifest.tables.find((t) => t.table === "appdb.events")?.rows ?? -1;
      return rows > rowsBefore && rows < rowsAfter;
    });
    expect(underWrites, `a scheduled backup with between ${rowsBefore} and ${rowsAfter} events rows: ${JSON.stringify(taken.map((b) => b.manifest.tables))}`).toBeDefined();
    const backup = underWrites as { name: string; manifest: Manifest };
    const rows = backup.manifest.tables.find((t) => t.table === "appdb.events")?.rows as number;
    // What the backup holds, computed from the live table independently of the dump: its first `rows` rows (one writer, ids ascending).
    const lastId = Number((await sql(holder, `SELECT id FROM appdb.events ORDER BY id LIMIT 1 OFFSET ${rows - 1}`))[0]?.["id"]);
    await sql(holder, "CREATE DATABASE expected_snapshot");
    await sql(holder, "CREATE TABLE expected_snapshot.events LIKE appdb.events");
    await sql(holder, `INSERT INTO expected_snapshot.events SELECT * FROM appdb.events WHERE id <= ${lastId}`);
    const expectedChecksum = await checksum(holder, "expected_snapshot.events");
    await sql(holder, "DROP DATABASE expected_snapshot");
    // The data changes after the backup (rows deleted, a table added), then the restore.
    await sql(holder, "DELETE FROM appdb.events WHERE id % 7 = 0");
    await sql(holder, "CREATE TABLE appdb.extra (id INT PRIMARY KEY) ENGINE=InnoDB");
    await caughtUp(peer, holder);
    const pidsBefore = await standinPids();
    const result = await mnha(holder, ["restore", `${dir}/${backup.name}`, "--yes"], { timeoutMs: 600_000 });
    expect(result.code, out(result)).toBe(0);
    await expectServicesStoppedAndStarted(pidsBefore);
    await caughtUp(peer, holder);
    for (const node of [holder, peer]) {
      expect(await sql(node, "SELECT COUNT(*) AS n, MAX(id) AS hi FROM appdb.events"), node).toEqual([{ n: BigInt(rows), hi: lastId }]);
      expect(await checksum(node, "appdb.events"), node).toBe(expectedChecksum);
      expect(await sql(node, "SELECT COUNT(*) AS n FROM appdb.bulk"), node).toEqual([{ n: 100_000n }]);
      expect(await checksum(node, "appdb.bulk"), node).toBe(bulkChecksumAtBackup);
      expect(await sql(node, "SHOW TABLES FROM appdb LIKE 'extra'"), node).toHaveLength(0);
    }
    await replicatingBothWays();
    await sql(holder, "INSERT INTO appdb.events (payload) VALUES ('after the scheduled restore')");
    await caughtUp(peer, holder);
    expect(await sql(peer, "SELECT COUNT(*) AS n FROM appdb.events WHERE payload = 'after the scheduled restore'")).toEqual([{ n: 1n }]);
  });
});
