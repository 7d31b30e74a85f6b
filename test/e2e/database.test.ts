/**
 * The database adapter and the `mnha db` commands against real MariaDB servers, one per MN
 * namespace: replication both ways with GTID and semi-sync, read-only, GTID waits, seeding
 * with its confirmation, its refusal on the holder and its interruption, and every bad input
 * ending in a clear error with nothing changed.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { parseGtidPosition } from "../../packages/agent/src/db/gtid.js";
import { dbSeedIncomplete } from "../../packages/agent/src/db/seed-marker.js";
import { AGENT_MAIN, HOSTS, nodePaths, type MnNode } from "../lab/constants.js";
import { runIn, sleep, waitFor, type CommandResult } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { labDatabase, mariaDbPaths, startMariaDb } from "../lab/mariadb.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab();
const db = { mn1: () => labDatabase("mn1"), mn2: () => labDatabase("mn2") };

function mnha(node: MnNode, args: string[], options: { input?: string; config?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return runIn(HOSTS[node].namespace, process.execPath, [AGENT_MAIN, ...args, "--config", options.config ?? nodePaths(node).config], {
    allowFailure: true,
    timeoutMs: options.timeoutMs ?? 60_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

async function sql(node: MnNode, statement: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return db[node]().withConnection(async (c) => (await c.query(statement, values)) as Record<string, unknown>[]);
}

async function checksum(node: MnNode, table: string): Promise<string> {
  const rows = await sql(node, `CHECKSUM TABLE ${table} EXTENDED`);
  return String(rows[0]?.["Checksum"]);
}

/** Waits until `node` has applied everything `from` has written or applied. */
async function caughtUp(node: MnNode, from: MnNode): Promise<void> {
  const target = await db[from]().gtidBinlogPos();
  const result = await db[node]().waitForGtid(target, 30_000);
  expect(result.reached, `${node} reaching ${from}'s position (${result.impossible ?? result.position})`).toBe(true);
}

async function replicatingBothWays(): Promise<void> {
  for (const node of ["mn1", "mn2"] as const) {
    let last = "";
    await waitFor(
      `${node}'s replica running`,
      async () => {
        const h = await db[node]().health();
        last = `IO ${h.slaveIoRunning} SQL ${h.slaveSqlRunning} ${h.lastIoError ?? ""} ${h.lastSqlError ?? ""}`;
        return h.slaveIoRunning === "Yes" && h.slaveSqlRunning === "Yes" ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, describeLast: () => last },
    );
  }
}

/** A copy of the node's config with `change` applied to its db section (for bad-input runs). */
function variantConfig(node: MnNode, label: string, change: (dbSection: Record<string, unknown>) => void): string {
  const config = parse(readFileSync(nodePaths(node).config, "utf8")) as { db: Record<string, unknown> };
  change(config.db);
  const file = `${nodePaths(node).dir}/mnha-${label}.yaml`;
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}

function errorOf(result: CommandResult): string {
  return `${result.stdout}\n${result.stderr}`;
}

beforeAll(async () => {
  await lab.up({ fresh: true });
  // mn1 generates the replication password; the operator copies the file to mn2.
  const first = await mnha("mn1", ["db", "setup-replication"]);
  expect(first.code, errorOf(first)).toBe(0);
  expect(first.stdout).toContain("generated the replication password");
  copyFileSync(mariaDbPaths("mn1").replicationPasswordFile, mariaDbPaths("mn2").replicationPasswordFile);
  const second = await mnha("mn2", ["db", "setup-replication"]);
  expect(second.code, errorOf(second)).toBe(0);
  await replicatingBothWays();
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("database") });
});

describe("replication between the two real MariaDB servers", () => {
  it("replicates both ways, with semi-sync on and the password file root-only", async () => {
    expect((readFileSync(mariaDbPaths("mn1").replicationPasswordFile).length)).toBeGreaterThan(16);
    const { statSync } = await import("node:fs");
    expect(statSync(mariaDbPaths("mn1").replicationPasswordFile).mode & 0o777).toBe(0o600);
    await sql("mn1", "CREATE DATABASE appdb");
    await sql("mn1", "CREATE TABLE appdb.items (id INT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB");
    await sql("mn1", "INSERT INTO appdb.items VALUES (1, 'written on mn1')");
    await caughtUp("mn2", "mn1");
    expect(await sql("mn2", "SELECT note FROM appdb.items WHERE id = 1")).toEqual([{ note: "written on mn1" }]);
    await sql("mn2", "INSERT INTO appdb.items VALUES (2, 'written on mn2')");
    await caughtUp("mn1", "mn2");
    expect(await sql("mn1", "SELECT note FROM appdb.items WHERE id = 2")).toEqual([{ note: "written on mn2" }]);
    const h1 = await db.mn1().health();
    expect(h1.semiSync?.masterEnabled).toBe(true);
    expect(h1.semiSync?.masterActive).toBe(true);
    expect(h1.semiSync?.yesTx).toBeGreaterThan(0);
    const status = await mnha("mn2", ["db", "status", "--json"]);
    expect(status.code, errorOf(status)).toBe(0);
    const report = JSON.parse(status.stdout) as { nodes: { node: string; health: { slaveIoRunning: string; slaveSqlRunning: string } }[]; divergence: unknown[] };
    expect(report.nodes.map((n) => [n.node, n.health.slaveIoRunning, n.health.slaveSqlRunning])).toEqual([["mn2", "Yes", "Yes"], ["mn1", "Yes", "Yes"]]);
    expect(report.divergence).toEqual([]);
    const text = await mnha("mn1", ["db", "status"]);
    expect(text.stdout).toContain("Slave_IO_Running        Yes");
    // The password never shows in what the commands print.
    const password = readFileSync(mariaDbPaths("mn1").replicationPasswordFile, "utf8").trim();
    expect(errorOf(status) + errorOf(text)).not.toContain(password);
  });

  it("a read-only node refuses an application's writes; the writable one takes them", async () => {
    await sql("mn1", "CREATE USER app@'%' IDENTIFIED BY 'app-password'");
    await sql("mn1", "GRANT ALL ON appdb.* TO app@'%'");
    await caughtUp("mn2", "mn1");
    await db.mn2().setReadOnly(true);
    expect(await db.mn2().readOnly()).toBe(true);
    expect(await db.mn1().readOnly()).toBe(false);
    // The application's user (not root, which may bypass read_only) over TCP inside each node's namespace.
    const write = async (node: MnNode, id: number) =>
      runIn(HOSTS[node].namespace, "mariadb", ["--no-defaults", "-h127.0.0.1", "-uapp", "-papp-password", "-e", `INSERT INTO appdb.items VALUES (${id}, 'app')`], { allowFailure: true });
    const refused = await write("mn2", 10);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/read-only/);
    const accepted = await write("mn1", 11);
    expect(accepted.code, accepted.stderr).toBe(0);
    await caughtUp("mn2", "mn1");
    expect(await sql("mn2", "SELECT COUNT(*) AS n FROM appdb.items WHERE id IN (10, 11)")).toEqual([{ n: 1n }]);
  });

  it("waitForGtid returns once the position is applied, and times out on one never written", async () => {
    await sql("mn1", "INSERT INTO appdb.items VALUES (20, 'wait')");
    const target = await db.mn1().gtidBinlogPos();
    const ok = await db.mn2().waitForGtid(target, 10_000);
    expect(ok.reached).toBe(true);
    expect(parseGtidPosition(ok.position).get(1)?.seq).toBeGreaterThanOrEqual(target.get(1)?.seq ?? 0n);
    const beyond = new Map(target);
    const one = target.get(1);
    if (!one) throw new Error("mn1 wrote nothing in domain 1");
    beyond.set(1, { ...one, seq: one.seq + 1000n });
    const late = await db.mn2().waitForGtid(beyond, 700);
    expect(late.reached).toBe(false);
    expect(late.waitedMs).toBeGreaterThanOrEqual(600);
    // mn2's own domain: waiting cannot add to it.
    const own = await db.mn2().waitForGtid(new Map([[2, { domain: 2, serverId: 2, seq: 999_999n }]]), 5_000);
    expect(own.reached).toBe(false);
    expect(own.impossible).toMatch(/own domain 2/);
  });
});

describe("mnha db seed", () => {
  it("asks for the node's name; a wrong answer changes nothing", async () => {
    await db.mn2().withConnection(async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("CREATE DATABASE junk");
      await c.query("CREATE TABLE junk.t (id INT PRIMARY KEY)");
    });
    const before = await checksum("mn2", "appdb.items");
    const result = await mnha("mn2", ["db", "seed"], { input: "mn1\n" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("OVERWRITES the MariaDB database of mn2");
    expect(result.stderr).toMatch(/junk: 1 tables/);
    expect(result.stderr).toContain("nothing was changed");
    expect(await sql("mn2", "SHOW DATABASES LIKE 'junk'")).toHaveLength(1);
    expect(await checksum("mn2", "appdb.items")).toBe(before);
    expect(dbSeedIncomplete(nodePaths("mn2").dataDir)).toBe(false);
  });

  it("--yes copies the holder's database: equal checksums, extra databases gone, replication from the copy", async () => {
    await sql("mn1", "CREATE TABLE appdb.bulk (id INT PRIMARY KEY, payload VARCHAR(200)) ENGINE=InnoDB");
    await sql("mn1", "INSERT INTO appdb.bulk SELECT seq, REPEAT(MD5(seq), 6) FROM appdb.seq_1_to_20000");
    // mn2 diverges on purpose, unlogged: the seed must put it right.
    await db.mn2().withConnection(async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("DELETE FROM appdb.items WHERE id = 1");
    });
    const result = await mnha("mn2", ["db", "seed", "--yes"]);
    expect(result.code, errorOf(result)).toBe(0);
    expect(result.stderr).toMatch(/copied .* in .* s \(/);
    expect(result.stdout).toMatch(/seed done: mn2 is a copy of mn1 at GTID/);
    expect(dbSeedIncomplete(nodePaths("mn2").dataDir)).toBe(false);
    expect(await sql("mn2", "SHOW DATABASES LIKE 'junk'")).toHaveLength(0);
    for (const table of ["appdb.items", "appdb.bulk"]) expect(await checksum("mn2", table), table).toBe(await checksum("mn1", table));
    await replicatingBothWays();
    await sql("mn1", "INSERT INTO appdb.items VALUES (30, 'after seed')");
    await caughtUp("mn2", "mn1");
    expect(await checksum("mn2", "appdb.items")).toBe(await checksum("mn1", "appdb.items"));
  });

  it("refuses to overwrite the VIP holder", async () => {
    const holder = await lab.holder();
    expect(holder).toBe("mn1");
    const before = await checksum("mn1", "appdb.items");
    const result = await mnha("mn1", ["db", "seed", "--yes"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/mn1 holds the VIP .* never overwritten/);
    expect(await checksum("mn1", "appdb.items")).toBe(before);
    expect(dbSeedIncomplete(nodePaths("mn1").dataDir)).toBe(false);
  });

  it("an interrupted seed leaves the node marked unusable; the next one completes and clears it", async () => {
    await sql("mn1", "INSERT INTO appdb.bulk SELECT seq, REPEAT(MD5(seq), 6) FROM appdb.seq_20001_to_300000");
    await caughtUp("mn2", "mn1");
    // Like Ctrl-C at the terminal: the whole process group (mnha, mariadb-dump, mariadb) dies.
    const child = spawn("ip", ["netns", "exec", HOSTS.mn2.namespace, process.execPath, AGENT_MAIN, "db", "seed", "--yes", "--config", nodePaths("mn2").config], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    await waitFor("the seed to start copying", async () => (existsSync(`${nodePaths("mn2").dataDir}/db.seeding`) && /OVERWRITES/.test(stderr) ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    await sleep(300);
    process.kill(-(child.pid as number), "SIGKILL");
    await exited;
    expect(dbSeedIncomplete(nodePaths("mn2").dataDir)).toBe(true);
    const again = await mnha("mn2", ["db", "seed", "--yes"], { timeoutMs: 120_000 });
    expect(again.code, errorOf(again)).toBe(0);
    expect(dbSeedIncomplete(nodePaths("mn2").dataDir)).toBe(false);
    expect(await checksum("mn2", "appdb.bulk")).toBe(await checksum("mn1", "appdb.bulk"));
    await replicatingBothWays();
  });
});

describe("bad input: a clear error naming the fix, nothing changed", () => {
  beforeAll(async () => {
    // mn2's agent would restart "its" MariaDB while the tests run variants of it.
    await lab.stopAgent("mn2");
  });

  it("a wrong root password", async () => {
    const wrong = `${nodePaths("mn2").dir}/wrong-root-password`;
    writeFileSync(wrong, "not-the-password\n", { mode: 0o600 });
    const config = variantConfig("mn2", "wrongpw", (d) => (d["rootPasswordFile"] = wrong));
    const result = await mnha("mn2", ["db", "setup-replication"], { config });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused the login of root: wrong password/);
    expect(result.stderr).toMatch(/hint: .*db\.rootPasswordFile/);
  });

  it("MariaDB down", async () => {
    const config = variantConfig("mn2", "nosocket", (d) => (d["socket"] = `${nodePaths("mn2").dir}/no-such.sock`));
    const result = await mnha("mn2", ["db", "setup-replication"], { config });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/MariaDB on mn2 \(local\) .* is not reachable/);
    expect(result.stderr).toMatch(/hint: start MariaDB/);
  });

  it("the replication user missing on the peer", async () => {
    await db.mn1().withConnection(async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("DROP USER mnha_repl@'10.250.77.12'");
    });
    const result = await mnha("mn2", ["db", "seed", "--yes"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/MariaDB on mn1 \(peer\) .*(no user mnha_repl|refused the login of mnha_repl)/);
    expect(result.stderr).toMatch(/hint: .*setup-replication/);
    expect(dbSeedIncomplete(nodePaths("mn2").dataDir)).toBe(false);
    const repaired = await mnha("mn1", ["db", "setup-replication"]);
    expect(repaired.code, errorOf(repaired)).toBe(0);
  });

  it("the binary log off", async () => {
    await startMariaDb("mn2", { logBin: false });
    try {
      const result = await mnha("mn2", ["db", "setup-replication"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/log_bin is OFF: add `log_bin = mariadb-bin`/);
      expect(result.stderr).toMatch(/nothing was changed/);
    } finally {
      await startMariaDb("mn2");
      // mn1's replica stopped for good on "binary log is not open" (error 1236): start it again.
      await db.mn1().startReplica();
    }
  });

  it("equal server_ids", async () => {
    await startMariaDb("mn2", { serverId: 1 });
    try {
      const result = await mnha("mn2", ["db", "setup-replication"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/server_id is 1 on both nodes: add `server_id = 2/);
    } finally {
      await startMariaDb("mn2");
      // mn1's replica stopped for good on "equal server ids": start it again.
      await db.mn1().startReplica();
    }
  });

  it("errant GTIDs: refused and shown; resync repairs the node", async () => {
    await replicatingBothWays();
    await caughtUp("mn2", "mn1");
    await db.mn1().stopReplica();
    // A transaction on mn2 in mn1's own domain: mn1 never wrote it.
    await db.mn2().withConnection(async (c) => {
      await c.query("SET SESSION gtid_domain_id = 1");
      await c.query("INSERT INTO appdb.items VALUES (99, 'errant')");
    });
    const status = await mnha("mn2", ["db", "status"]);
    expect(status.stdout).toMatch(/ERRANT TRANSACTIONS: mn2 has transactions in mn1's own domain 1/);
    const refused = await mnha("mn2", ["db", "setup-replication"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/diverged \(errant transactions\)/);
    expect(refused.stderr).toMatch(/hint: .*mnha db resync/);
    const resync = await mnha("mn2", ["db", "resync", "--yes"], { timeoutMs: 120_000 });
    expect(resync.code, errorOf(resync)).toBe(0);
    await db.mn1().startReplica();
    await replicatingBothWays();
    expect(await sql("mn2", "SELECT COUNT(*) AS n FROM appdb.items WHERE id = 99")).toEqual([{ n: 0n }]);
    expect(await checksum("mn2", "appdb.items")).toBe(await checksum("mn1", "appdb.items"));
    const after = await mnha("mn2", ["db", "status", "--json"]);
    expect((JSON.parse(after.stdout) as { divergence: unknown[] }).divergence).toEqual([]);
  });
});
