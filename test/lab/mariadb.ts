/**
 * A real MariaDB server (Debian's mariadbd 10.11) in each MN namespace: its own data dir,
 * socket, pid file and error log under the node's state dir, port 3306 inside the namespace,
 * a small buffer pool. Binary log, GTID strict mode, ROW format and log_slave_updates are on,
 * as mnha requires; replication itself is left to `mnha db setup-replication`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { MnhaError } from "@mnha/shared";
import { MariaDbDatabase } from "../../packages/agent/src/db/mariadb.js";
import { HOSTS, nodePaths, type MnNode } from "./constants.js";
import { run, waitFor } from "./exec.js";
import { launchDetached } from "./launch.mjs";
import { isAlive, namespacePids, readComm, signal, waitReaped } from "./procfs.js";

export const MARIADBD = "/usr/sbin/mariadbd";
export const MARIADB_INSTALL_DB = "/usr/bin/mariadb-install-db";
export const MARIADB_PORT = 3306;
const START_TIMEOUT_MS = 20_000;

export interface MariaDbPaths {
  dir: string;
  dataDir: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** Its own tmpdir: servers of both nodes (and of other labs) must not share /tmp's temp tables. */
  tmpDir: string;
  /** stdout/stderr of the launched process (mariadbd itself logs to errorLog). */
  launchLog: string;
  rootPasswordFile: string;
  replicationPasswordFile: string;
}

export function mariaDbPaths(node: MnNode): MariaDbPaths {
  const dir = `${nodePaths(node).dir}/mariadb`;
  return {
    dir,
    dataDir: `${dir}/data`,
    socket: `${dir}/mysqld.sock`,
    pidFile: `${dir}/mysqld.pid`,
    errorLog: `${dir}/error.log`,
    tmpDir: `${dir}/tmp`,
    launchLog: `${dir}/launch.log`,
    rootPasswordFile: `${dir}/root-password`,
    replicationPasswordFile: `${nodePaths(node).dir}/db-replication-password`,
  };
}

/** mn1 is server 1 writing in GTID domain 1, mn2 server 2 in domain 2. */
export function serverIdOf(node: MnNode): number {
  return node === "mn1" ? 1 : 2;
}

export interface MariaDbVariant {
  /** Bad-input tests: run without the binary log, or with another server_id. */
  logBin?: boolean;
  serverId?: number;
  /** As a DBA's my.cnf may have it: a restarted server comes back with its replica stopped / read-only. */
  skipSlaveStart?: boolean;
  readOnly?: boolean;
}

export function mariadbdArgv(node: MnNode, variant: MariaDbVariant = {}): string[] {
  const p = mariaDbPaths(node);
  const id = variant.serverId ?? serverIdOf(node);
  return [
    MARIADBD, "--no-defaults", "--user=root",
    `--datadir=${p.dataDir}`, `--socket=${p.socket}`, `--pid-file=${p.pidFile}`, `--log-error=${p.errorLog}`, `--tmpdir=${p.tmpDir}`,
    // Inside the namespace only: the node's address and the VIP (for clients writing through it).
    "--bind-address=0.0.0.0", `--port=${MARIADB_PORT}`, "--skip-name-resolve",
    `--server-id=${id}`, `--gtid-domain-id=${serverIdOf(node)}`,
    ...(variant.logBin === false ? [] : [`--log-bin=${p.dataDir}/mariadb-bin`]),
    "--binlog-format=ROW", "--log-slave-updates=ON", "--gtid-strict-mode=ON",
    "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M", "--performance-schema=OFF", "--max-connections=200",
    ...(variant.skipSlaveStart === true ? ["--skip-slave-start"] : []),
    ...(variant.readOnly === true ? ["--read-only"] : []),
  ];
}

/** The root password of the node's server (the lab generates it; tests read it). */
export function labRootPassword(node: MnNode): string {
  return rootPasswords.get(node) ?? readTrimmed(mariaDbPaths(node).rootPasswordFile);
}
const rootPasswords = new Map<MnNode, string>();

function readTrimmed(file: string): string {
  return readFileSync(file, "utf8").trim();
}

/** A root connection to the node's server over its socket. */
export function labDatabase(node: MnNode): MariaDbDatabase {
  return new MariaDbDatabase({ target: { socket: mariaDbPaths(node).socket }, user: "root", password: labRootPassword(node), connectTimeoutMs: 3_000, label: `${node} (lab)` });
}

/** Creates an empty data dir (mariadb-install-db) and the root password file. */
export async function initMariaDb(node: MnNode): Promise<void> {
  const p = mariaDbPaths(node);
  mkdirSync(p.tmpDir, { recursive: true, mode: 0o700 });
  const result = await run(MARIADB_INSTALL_DB, ["--no-defaults", "--user=root", `--datadir=${p.dataDir}`, `--tmpdir=${p.tmpDir}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"], { allowFailure: true, timeoutMs: 60_000 });
  if (result.code !== 0) throw new MnhaError("INTERNAL", `mariadb-install-db for ${node} failed: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`, { hint: "is mariadb-server installed? (scripts/bootstrap.sh)" });
  const password = randomBytes(18).toString("base64url");
  writeFileSync(p.rootPasswordFile, `${password}\n`, { mode: 0o600 });
  rootPasswords.set(node, password);
}

/** mariadbd processes in the node's namespace. */
export async function mariaDbPids(node: MnNode): Promise<number[]> {
  return (await namespacePids(HOSTS[node].namespace)).filter((pid) => readComm(pid) === "mariadbd" && isAlive(pid));
}

/**
 * Starts the node's server (killing one that runs) and waits until it answers a query; on the
 * first start after init, gives root its password (unlogged, so it never replicates).
 */
export async function startMariaDb(node: MnNode, variant: MariaDbVariant = {}): Promise<number> {
  const p = mariaDbPaths(node);
  await killMariaDb(node);
  const pid = await launchDetached({ namespace: HOSTS[node].namespace, argv: mariadbdArgv(node, variant), logFile: p.launchLog, pidFile: p.pidFile });
  const firstStart = !existsSync(`${p.dir}/initialized`);
  const db = firstStart
    ? new MariaDbDatabase({ target: { socket: p.socket }, user: "root", password: null, connectTimeoutMs: 2_000, label: node })
    : labDatabase(node);
  await waitFor(
    `MariaDB on ${node} to answer`,
    async () => {
      if (!isAlive(pid)) throw new MnhaError("INTERNAL", `mariadbd on ${node} exited at start`, { hint: `see ${p.errorLog}` });
      return (await db.health()).alive ? true : undefined;
    },
    { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, hint: `see ${p.errorLog}` },
  );
  if (firstStart) {
    await db.withConnection(async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("ALTER USER root@localhost IDENTIFIED BY ?", [labRootPassword(node)]);
      await c.query("FLUSH PRIVILEGES");
    });
    writeFileSync(`${p.dir}/initialized`, "");
  }
  return pid;
}

/** SIGKILLs the node's server (as a crash would); returns the pids once reaped. */
export async function killMariaDb(node: MnNode): Promise<number[]> {
  const pids = await mariaDbPids(node);
  for (const pid of pids) signal(pid, "SIGKILL");
  await waitReaped(pids, 10_000);
  return pids;
}
