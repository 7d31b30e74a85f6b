/** The database adapter's pure parts: GTID positions, divergence, settings, health parsing, seed helpers. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { describeHealth } from "../../src/checks/mariadb-check.js";
import { runCheck } from "../../src/checks/runners.js";
import { describeProgress, describeSummary } from "../../src/db/describe.js";
import { quoteOption } from "../../src/db/client-files.js";
import {
  findGtidDivergence,
  formatGtidPosition,
  gtidReached,
  parseGtidPosition,
  transactionsBehind,
  type GtidView,
} from "../../src/db/gtid.js";
import { DEAD_HEALTH, healthFromRows } from "../../src/db/mariadb.js";
import { divergenceBetween, replicaBroken, replicaCaughtUp } from "../../src/db/replica-state.js";
import { ensureGeneratedPasswordFile, readPasswordFile } from "../../src/db/secret-file.js";
import { clearSeedMarker, dbSeedIncomplete, writeSeedMarker } from "../../src/db/seed-marker.js";
import { adjustForPeerReplica } from "../../src/db/seed.js";
import { assertSettings, pairProblems, settingProblems, type ServerSettings } from "../../src/db/settings.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

const good: ServerSettings = { version: "10.11.19", logBin: true, serverId: 1, gtidDomainId: 1, gtidStrictMode: true, logSlaveUpdates: true, binlogFormat: "ROW" };

describe("GTID positions", () => {
  it("parses, keeps the highest per domain, formats sorted", () => {
    const p = parseGtidPosition(" 2-2-17,1-1-42, 1-3-7");
    expect(formatGtidPosition(p)).toBe("1-1-42,2-2-17");
    expect(parseGtidPosition("").size).toBe(0);
    expect(parseGtidPosition(null).size).toBe(0);
  });

  it("refuses text that is not a position", () => {
    expect(() => parseGtidPosition("1-1")).toThrow(MnhaError);
    expect(() => parseGtidPosition("a-b-c")).toThrow(/not a GTID position/);
  });

  it("tells reached from behind, and counts the transactions missing", () => {
    const have = parseGtidPosition("1-1-10,2-2-5");
    expect(gtidReached(have, parseGtidPosition("1-1-10"))).toBe(true);
    expect(gtidReached(have, parseGtidPosition("1-1-11,2-2-5"))).toBe(false);
    expect(gtidReached(have, parseGtidPosition("3-3-1"))).toBe(false);
    expect(transactionsBehind(have, parseGtidPosition("1-1-13,2-2-4,3-3-2"))).toBe(5n);
  });
});

describe("errant transactions", () => {
  const view = (node: string, domainId: number, current: string, replicaCaughtUp = true): GtidView => ({ node, domainId, current: parseGtidPosition(current), replicaCaughtUp });

  it("equal positions: nothing", () => {
    expect(findGtidDivergence(view("mn1", 1, "1-1-5,2-2-3"), view("mn2", 2, "1-1-5,2-2-3"))).toEqual([]);
  });

  it("a lagging replica is not divergence", () => {
    expect(findGtidDivergence(view("mn1", 1, "1-1-9,2-2-3"), view("mn2", 2, "1-1-5,2-2-3", false))).toEqual([]);
  });

  it("the owner's transactions missing on a caught-up replica are unreplicated", () => {
    const found = findGtidDivergence(view("mn1", 1, "1-1-9,2-2-3"), view("mn2", 2, "1-1-5,2-2-3", true));
    expect(found).toEqual([{ node: "mn1", missingOn: "mn2", domain: 1, has: "1-1-9", otherHas: "1-1-5", kind: "unreplicated" }]);
  });

  it("transactions in the other node's own domain that it never wrote are errant, caught up or not", () => {
    const found = findGtidDivergence(view("mn1", 1, "1-1-5,2-2-3", false), view("mn2", 2, "1-2-6,2-2-3", false));
    expect(found.map((d) => [d.node, d.missingOn, d.kind])).toEqual([["mn2", "mn1", "foreign-domain"]]);
  });

  it("a domain neither node owns differs", () => {
    const found = findGtidDivergence(view("mn1", 1, "0-1-4"), view("mn2", 2, "0-1-2"));
    expect(found.map((d) => d.kind)).toEqual(["other-domain"]);
  });
});

describe("server settings", () => {
  it("a server set up for mnha has no problem", () => {
    expect(settingProblems(good)).toEqual([]);
    expect(() => assertSettings("mn1", good)).not.toThrow();
  });

  it("each missing setting names the my.cnf line to add", () => {
    const bad = { ...good, logBin: false, serverId: 0, gtidStrictMode: false, logSlaveUpdates: false, binlogFormat: "MIXED" };
    expect(settingProblems(bad).map((p) => [p.setting, p.myCnfLine])).toEqual([
      ["log_bin", "log_bin = mariadb-bin"],
      ["server_id", "server_id = 1   (2 on the other node)"],
      ["gtid_strict_mode", "gtid_strict_mode = 1"],
      ["log_slave_updates", "log_slave_updates = 1"],
      ["binlog_format", "binlog_format = ROW"],
    ]);
    try {
      assertSettings("mn1", bad);
      throw new Error("expected a DB_SETTINGS error");
    } catch (error) {
      expect((error as MnhaError).code).toBe("DB_SETTINGS");
      expect((error as MnhaError).message).toContain("add `binlog_format = ROW`");
      expect((error as MnhaError).hint).toMatch(/my\.cnf/);
    }
  });

  it("the pair needs distinct server ids and GTID domains", () => {
    expect(pairProblems(good, { ...good, serverId: 2, gtidDomainId: 2 })).toEqual([]);
    expect(pairProblems(good, good).map((p) => p.setting)).toEqual(["server_id", "gtid_domain_id"]);
  });
});

describe("health from SHOW SLAVE STATUS and the status variables", () => {
  const globals = { read_only: 1, server_id: 2n, gtid_domain_id: 2, gtid_slave_pos: "1-1-5", gtid_binlog_pos: "1-1-5,2-2-3", gtid_current_pos: "1-1-5,2-2-3", rpl_semi_sync_master_enabled: 1, rpl_semi_sync_slave_enabled: 1 };
  const status = new Map([["rpl_semi_sync_master_status", "OFF"], ["rpl_semi_sync_slave_status", "ON"], ["rpl_semi_sync_master_no_tx", "4"], ["rpl_semi_sync_master_yes_tx", "10"]]);

  it("reads threads, lag, errors, positions and semi-sync, with zsha2's names", () => {
    const h = healthFromRows(globals, { Slave_IO_Running: "Yes", Slave_SQL_Running: "No", Seconds_Behind_Master: null, Last_IO_Error: "", Last_SQL_Error: "Duplicate entry '1'", Gtid_IO_Pos: "1-1-6", Master_Host: "10.0.0.11" }, status);
    expect(h).toMatchObject({ alive: true, readOnly: true, serverId: 2, replicaConfigured: true, slaveIoRunning: "Yes", slaveSqlRunning: "No", secondsBehindMaster: null, lastIoError: null, lastSqlError: "Duplicate entry '1'", gtidIoPos: "1-1-6" });
    expect(h.semiSync).toEqual({ masterEnabled: true, masterActive: false, slaveEnabled: true, slaveActive: true, masterClients: 0, yesTx: 10, noTx: 4 });
    expect(describeHealth(h)).toBe("MariaDB up read-only, IO Yes SQL No, error: Duplicate entry '1', semi-sync off (asynchronous)");
  });

  it("no replica configured", () => {
    const h = healthFromRows({ ...globals, read_only: 0 }, undefined, new Map());
    expect(h.replicaConfigured).toBe(false);
    expect(h.slaveIoRunning).toBeNull();
    expect(describeHealth(h)).toMatch(/^MariaDB up writable, no replica/);
  });
});

describe("seed helpers", () => {
  it("the seed marker makes the node not eligible until cleared", () => {
    const dir = tempDir("mnha-seed-");
    expect(dbSeedIncomplete(dir)).toBe(false);
    writeSeedMarker(dir, { startedAt: "now", from: "mn1", operation: "seed", pid: 1 });
    expect(dbSeedIncomplete(dir)).toBe(true);
    clearSeedMarker(dir);
    expect(dbSeedIncomplete(dir)).toBe(false);
  });

  it("the copied binlog state starts the peer's own domain where the peer's replica stands", () => {
    const gtid = parseGtidPosition("1-1-9,2-2-4");
    expect(formatGtidPosition(adjustForPeerReplica(gtid, 1, parseGtidPosition("1-1-5,2-2-4")))).toBe("1-1-5,2-2-4");
    // The peer's replica has no position in its own domain (it never replicated): the binary log must not claim that domain's history.
    expect(formatGtidPosition(adjustForPeerReplica(gtid, 1, parseGtidPosition("2-2-4")))).toBe("2-2-4");
    expect(formatGtidPosition(adjustForPeerReplica(parseGtidPosition("1-1-9"), 1, parseGtidPosition("")))).toBe("");
  });

  it("summaries and progress read as an operator expects", () => {
    expect(describeSummary({ schemas: [{ name: "zstack", tables: 3, approxRows: 1200, bytes: 3 * 1024 * 1024 }], tables: 3, approxRows: 1200, bytes: 3 * 1024 * 1024 })).toContain("zstack: 3 tables, about 1200 rows, 3.0 MiB");
    expect(describeProgress({ bytes: 10 * 1024 * 1024, elapsedMs: 2_000, bytesPerSecond: 5 * 1024 * 1024, etaMs: 4_100 })).toBe("copied 10.0 MiB in 2.0 s (5.0 MiB/s, about 5 s left)");
  });

  it("option-file values are quoted", () => {
    expect(quoteOption('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it("generated password files are 0600 and never overwritten; insecure ones are refused", () => {
    const dir = tempDir("mnha-pw-");
    const file = join(dir, "sub", "pw");
    expect(ensureGeneratedPasswordFile(file)).toBe(true);
    const first = readPasswordFile(file, "replication password");
    expect(first.length).toBeGreaterThanOrEqual(24);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(ensureGeneratedPasswordFile(file)).toBe(false);
    expect(readPasswordFile(file, "replication password")).toBe(first);
    const open = join(dir, "open");
    writeFileSync(open, "x\n", { mode: 0o644 });
    expect(() => readPasswordFile(open, "replication password")).toThrow(/readable by other users/);
    expect(() => readPasswordFile(join(dir, "missing"), "replication password")).toThrow(/cannot be read \(ENOENT\)/);
  });
});

describe("the mariadb check kind", () => {
  it("a server that does not answer on its socket is unhealthy, saying why", async () => {
    const dir = tempDir("mnha-check-");
    const result = await runCheck({ kind: "mariadb", socket: join(dir, "no.sock"), user: "root", intervalMs: 100, timeoutMs: 2_000, rise: 1, fall: 1 });
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/^MariaDB down: MariaDB on local \(socket .*no\.sock\) is not reachable/);
  });

  it("an insecure password file fails the check without connecting", async () => {
    const dir = tempDir("mnha-check-");
    writeFileSync(join(dir, "pw"), "secret\n", { mode: 0o644 });
    const result = await runCheck({ kind: "mariadb", socket: join(dir, "no.sock"), user: "root", passwordFile: join(dir, "pw"), intervalMs: 100, timeoutMs: 2_000, rise: 1, fall: 1 });
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/readable by other users/);
  });
});

describe("replica state for the election", () => {
  const running = healthFromRows(
    { read_only: 1, server_id: 2, gtid_domain_id: 2, gtid_current_pos: "1-1-5,2-2-3", gtid_slave_pos: "1-1-5", gtid_binlog_pos: "1-1-5,2-2-3" },
    { Slave_IO_Running: "Yes", Slave_SQL_Running: "Yes", Seconds_Behind_Master: 0, Gtid_IO_Pos: "1-1-5", Last_IO_Error: "", Last_SQL_Error: "" },
    new Map(),
  );

  it("caught up only with both threads running, no lag and everything read applied", () => {
    expect(replicaCaughtUp(running)).toBe(true);
    expect(replicaCaughtUp({ ...running, gtidIoPos: "1-1-7" })).toBe(false);
    expect(replicaCaughtUp({ ...running, secondsBehindMaster: 3 })).toBe(false);
    expect(replicaCaughtUp({ ...running, slaveSqlRunning: "No" })).toBe(false);
  });

  it("names why a replica is broken", () => {
    expect(replicaBroken(running)).toBeNull();
    expect(replicaBroken({ ...running, slaveSqlRunning: "No", lastSqlError: "Duplicate entry" })).toBe("SQL thread error: Duplicate entry");
    expect(replicaBroken({ ...running, slaveIoRunning: "Connecting" })).toBe("Slave_IO_Running Connecting");
    expect(replicaBroken({ ...DEAD_HEALTH, error: "socket gone" })).toBe("MariaDB down: socket gone");
    expect(replicaBroken({ ...running, replicaConfigured: false })).toBe("no replica configured");
    // Stopped with no error: said as that, with the fix; only the SQL thread stopped, or an IO error kept, as before.
    expect(replicaBroken({ ...running, slaveIoRunning: "No", slaveSqlRunning: "No" })).toBe("both replica threads stopped with no error (STOP SLAVE, or a restart with skip-slave-start): START SLAVE resumes replication");
    expect(replicaBroken({ ...running, slaveSqlRunning: "No" })).toBe("Slave_SQL_Running No");
    expect(replicaBroken({ ...running, slaveIoRunning: "No", slaveSqlRunning: "No", lastIoError: "error connecting to master" })).toBe("Slave_SQL_Running No");
  });

  it("divergence between two health reports; none when one is down", () => {
    const mn1 = { ...running, serverId: 1, gtidDomainId: 1, gtidCurrentPos: "1-1-5,2-2-3" };
    const mn2 = { ...running, gtidCurrentPos: "1-2-6,2-2-3" };
    expect(divergenceBetween({ node: "mn1", health: mn1 }, { node: "mn2", health: mn2 }).map((d) => d.kind)).toEqual(["foreign-domain"]);
    expect(divergenceBetween({ node: "mn1", health: DEAD_HEALTH }, { node: "mn2", health: mn2 })).toEqual([]);
  });
});
