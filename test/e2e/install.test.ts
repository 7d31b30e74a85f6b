/**
 * install-ha end to end, in the lab with real OpenSSH on each MN and each MN's own
 * filesystem (test/lab/sshd.ts): from bare nodes, with the suite bundle on mn1 only and
 * only mn2's SSH password, to a healthy pair serving the VIP and replicating the database
 * (the real MariaDB of each node: mn2's seeded from mn1's). Also the ways it must stop
 * before changing anything: a changed host key, a wrong password, a failed preflight (also
 * a wrong database password and clocks off the -time-server), an unconfirmed seed. Then
 * monitoring data sync on the installed pair: rsync over the SSH trust install-ha set up.
 * The lab namespaces have no route out: installing the bundle needs no network; the time
 * server is a tiny NTP responder in the lab's gateway namespace.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CURRENT_PROTOCOL_VERSION } from "@mnha/protocol";
import { HOSTS, LAB_STATE_DIR, REPO_ROOT, VIP_ADDRESS, GATEWAY_ADDRESS, type MnNode } from "../lab/constants.js";
import { runIn, waitFor } from "../lab/exec.js";
import { ensureBundle } from "../lab/bundle.js";
import { Lab } from "../lab/lab.js";
import { launchDetached } from "../lab/launch.mjs";
import { labRootPassword, mariaDbPaths } from "../lab/mariadb.js";
import { hostKeyFingerprint, installOutput, LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec, sshdPaths, sshdPid } from "../lab/sshd.js";
import { MariaDbDatabase } from "../../packages/agent/src/db/mariadb.js";
import type { HaEvent, StatusReport } from "../../packages/agent/src/contracts.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ sshd: true });
const IMPORT_DIR = "/var/lib/mnha-import";
/** What install-ha writes; none of it may exist after a refused install. */
const FOOTPRINT = ["/etc/mnha", "/opt/mnha", "/var/lib/mnha", "/var/lib/mnha-stage", "/usr/local/bin/mnha", "/etc/systemd/system/mnha.service"];
const PLATFORM_VERSION_FILE = "/usr/local/zstack/VERSION";
/** The MariaDB root password file given to install-ha (on mn1, 0600). */
const DB_ROOT_PW_FILE = `${IMPORT_DIR}/db-root.pw`;
/** The monitoring data directory kept in step (each node's own /var/lib). */
const SYNC_DIR = "/var/lib/mnha-lab-prom";
const NTP_PID_FILE = `${LAB_STATE_DIR}/ntp-responder.pid`;
/** Both MNs share the platform's database root password (as zsha2's -db-root-pw assumes). */
let dbRootPassword = "";
const LICENSE_FILE = "/var/lib/zstack/license/license-type";

let bundlePath = "";
let suiteDir = "";

async function sh(node: MnNode, script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return nodeExec(node, ["sh", "-c", script, "sh", ...args], { timeoutMs: 60_000 });
}

async function footprint(node: MnNode): Promise<string[]> {
  const found: string[] = [];
  for (const path of FOOTPRINT) if ((await nodeExec(node, ["test", "-e", path])).code === 0) found.push(path);
  return found;
}

async function setPlatform(node: MnNode, version: string, license = "enterprise"): Promise<void> {
  await sh(node, 'mkdir -p "$(dirname "$1")" "$(dirname "$3")" && echo "$2" > "$1" && echo "$4" > "$3"', PLATFORM_VERSION_FILE, version, LICENSE_FILE, license);
}

/** mnha install-ha on mn1, run from the unpacked bundle as an operator would. */
function installHa(extra: string[], options: { peer?: string; input?: string; dbPassword?: "inline"; dbPasswordFile?: string } = {}) {
  return nodeExec(
    "mn1",
    [
      `${suiteDir}/bin/mnha`, "install-ha",
      "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS,
      "--peer", options.peer ?? `${LAB_SSH_USER}@${HOSTS.mn2.address}`,
      "--node-name", "mn1", "--peer-name", "mn2",
      // The lab machine has 2 CPUs; the thresholds are configurable for exactly this.
      "--min-cpus", "1", "--min-memory-gb", "1",
      "-time-server", GATEWAY_ADDRESS,
      ...(options.dbPassword === "inline" ? ["-db-root-pw", dbRootPassword] : ["--db-root-pw-file", options.dbPasswordFile ?? DB_ROOT_PW_FILE]),
      "--sync-dir", SYNC_DIR, "--sync-schedule", "*/5 * * * * *",
      ...extra,
    ],
    { timeoutMs: 400_000, ...(options.input !== undefined ? { input: options.input } : {}) },
  );
}

/** The lab's time server: an NTP responder on the gateway's address, `offsetMs` off this machine's clock. */
async function startTimeServer(offsetMs: number): Promise<void> {
  await stopTimeServer();
  await launchDetached({ namespace: HOSTS.gw.namespace, argv: [process.execPath, resolve(REPO_ROOT, "test/lab/ntp-responder.mjs"), GATEWAY_ADDRESS, String(offsetMs)], logFile: `${LAB_STATE_DIR}/ntp-responder.log`, pidFile: NTP_PID_FILE });
  await waitFor("the NTP responder to listen", async () => ((await runIn(HOSTS.gw.namespace, "ss", ["-Huln", "sport = :123"])).stdout.includes(":123") ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
}

async function stopTimeServer(): Promise<void> {
  if (!existsSync(NTP_PID_FILE)) return;
  const pid = Number(readFileSync(NTP_PID_FILE, "utf8").trim());
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
  await waitFor("the NTP responder to stop", async () => ((await runIn(HOSTS.gw.namespace, "ss", ["-Huln", "sport = :123"])).stdout.includes(":123") ? undefined : true), { timeoutMs: 10_000, intervalMs: 50 });
}

/** A root connection to the node's MariaDB over its socket, with the shared root password. */
function nodeDatabase(node: MnNode): MariaDbDatabase {
  return new MariaDbDatabase({ target: { socket: mariaDbPaths(node).socket }, user: "root", password: dbRootPassword, connectTimeoutMs: 3_000, label: node });
}

async function sql(node: MnNode, statement: string): Promise<Record<string, unknown>[]> {
  return nodeDatabase(node).withConnection(async (c) => (await c.query(statement)) as Record<string, unknown>[]);
}

async function installedCli(node: MnNode, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return nodeExec(node, ["/usr/local/bin/mnha", ...args], { timeoutMs: 120_000 });
}

async function installedStatus(node: MnNode): Promise<StatusReport> {
  const result = await installedCli(node, ["status", "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as StatusReport;
}

/**
 * install-ha on mn1 as a child process, while every 100 ms every process's command line on
 * the machine is searched for `secret` (from its first output on: Node has overwritten its
 * argv by then). Returns the run and the command lines that showed it.
 */
async function installHaWatchingPs(extra: string[], secret: string): Promise<{ code: number; stdout: string; stderr: string; leaks: string[] }> {
  const pid = sshdPid("mn1");
  const argv = ["-t", String(pid), "-m", "-n", "--", `${suiteDir}/bin/mnha`, "install-ha", "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS, "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--node-name", "mn1", "--peer-name", "mn2", "--min-cpus", "1", "--min-memory-gb", "1", "-time-server", GATEWAY_ADDRESS, "--db-root-pw-file", DB_ROOT_PW_FILE, "--sync-dir", SYNC_DIR, "--sync-schedule", "*/5 * * * * *", ...extra];
  const child = spawn("nsenter", argv, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const leaks: string[] = [];
  let watching = false;
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
    watching = true;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const { readdirSync } = await import("node:fs");
  const timer = setInterval(() => {
    if (!watching) return;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const line = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        if (line.includes(secret)) leaks.push(line.split("\0").join(" ").replace(secret, "<the password>"));
      } catch {
        // the process ended
      }
    }
  }, 100);
  const code = await new Promise<number>((done) => child.once("close", (exit) => done(exit ?? -1)));
  clearInterval(timer);
  return { code, stdout, stderr, leaks };
}

beforeAll(async () => {
  bundlePath = ensureBundle();
  await lab.up({ fresh: true, agents: false });
  for (const node of ["mn1", "mn2"] as const) await setPlatform(node, "4.8.0");
  // The distribution's keepalived.service as Debian's package leaves it (enabled) on mn1, and
  // disabled by hand on mn2 (each node's own /etc; systemctl works offline here).
  for (const [node, verb] of [["mn1", "enable"], ["mn2", "disable"]] as const) {
    const set = await sh(node, 'systemctl "$1" keepalived.service && systemctl is-enabled keepalived.service', verb);
    expect(set.stdout.trim(), set.stderr).toBe(`${verb}d`);
  }
  const name = bundlePath.split("/").pop()?.replace(/\.tar\.gz$/, "") as string;
  suiteDir = `${IMPORT_DIR}/${name}`;
  // The operator imports the bundle to mn1 and unpacks it; mn2 gets nothing.
  const unpacked = await sh("mn1", 'mkdir -p "$1" && cp "$2" "$1/" && cd "$1" && tar -xzf "$3"', IMPORT_DIR, bundlePath, `${name}.tar.gz`);
  expect(unpacked.code, unpacked.stderr).toBe(0);
  // The platform's database: both MNs share its root password; mn1 holds the data, mn2 an older
  // database of its own (binary-logged, as a real MN's would be), which the seed must replace.
  dbRootPassword = labRootPassword("mn1");
  const mn2Root = new MariaDbDatabase({ target: { socket: mariaDbPaths("mn2").socket }, user: "root", password: labRootPassword("mn2"), connectTimeoutMs: 3_000, label: "mn2" });
  await mn2Root.withConnection(async (c) => {
    await c.query("SET SESSION sql_log_bin = 0");
    await c.query("ALTER USER root@localhost IDENTIFIED BY ?", [dbRootPassword]);
  });
  writeFileSync(mariaDbPaths("mn2").rootPasswordFile, `${dbRootPassword}\n`, { mode: 0o600 });
  await sql("mn1", "CREATE DATABASE appdb");
  await sql("mn1", "CREATE TABLE appdb.items (id INT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB");
  await sql("mn1", "INSERT INTO appdb.items VALUES (1, 'written on mn1 before the install')");
  await sql("mn2", "CREATE DATABASE junk");
  await sql("mn2", "CREATE TABLE junk.old (id INT PRIMARY KEY) ENGINE=InnoDB");
  const written = await nodeExec("mn1", ["sh", "-c", 'umask 077 && cat > "$1"', "sh", DB_ROOT_PW_FILE], { input: `${dbRootPassword}\n` });
  expect(written.code, written.stderr).toBe(0);
  await startTimeServer(0);
  expect(await footprint("mn1")).toEqual([]);
  expect(await footprint("mn2")).toEqual([]);
}, 900_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("install") });
});

describe("install-ha refuses before changing anything", () => {
  it("the lab's nodes have no route out of the lab (so the install below is offline)", async () => {
    for (const namespace of [HOSTS.mn2.namespace, HOSTS.gw.namespace]) {
      const links = (await runIn(namespace, "ip", ["-o", "link", "show"])).stdout.split("\n").filter(Boolean).map((line) => line.split(":")[1]?.trim().split("@")[0]);
      expect(links.sort()).toEqual(["eth0", "lo"]);
    }
    const gwRoutes = (await runIn(HOSTS.gw.namespace, "ip", ["route", "show"])).stdout;
    expect(gwRoutes).not.toContain("default");
  });

  it("a changed host key stops everything with a clear error", async () => {
    // A known_hosts that holds another key for mn2: what a reinstalled (or impersonated) peer looks like.
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${LAB_STATE_DIR}/other-key`]);
    const other = readFileSync(`${LAB_STATE_DIR}/other-key.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    await sh("mn1", 'printf "%s %s\\n" "$1" "$2" > "$3"', HOSTS.mn2.address, other, `${IMPORT_DIR}/known_hosts`);
    const result = await installHa(["--known-hosts", `${IMPORT_DIR}/known_hosts`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`the host key of ${HOSTS.mn2.address} has CHANGED`);
    expect(result.stderr).toContain(await hostKeyFingerprint("mn2"));
    expect(result.stderr).toContain("hint: check the key on the peer's console");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("an unknown host key is never accepted silently: --yes alone is not enough", async () => {
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("was not confirmed");
    expect(result.stderr).toContain(`--peer-host-key ${await hostKeyFingerprint("mn2")}`);
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("a wrong password: a clear error, the password shown nowhere, neither node changed", async () => {
    await sh("mn1", 'umask 077 && echo "not-the-password-x7" > "$1"', `${IMPORT_DIR}/wrong.pw`);
    const result = await installHa(["--peer-password-file", `${IMPORT_DIR}/wrong.pw`, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`could not log in to ${LAB_SSH_USER}@${HOSTS.mn2.address}: the password or key was refused`);
    expect(result.stdout + result.stderr).not.toContain("not-the-password-x7");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("preflight fails when the platform versions differ: one table, the fix named, neither node changed", async () => {
    await setPlatform("mn2", "4.7.0");
    try {
      const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(/^check\s+mn1 \(this\)\s+mn2\s+result\s+fix$/m);
      expect(result.stdout).toMatch(/same platform version\s+4\.8\.0\s+4\.7\.0\s+FAIL\s+upgrade the older MN/);
      expect(result.stdout).toMatch(/gateway answers\s+10\.250\.77\.1\s+10\.250\.77\.1\s+PASS/);
      expect(result.stderr).toContain("preflight failed (same platform version); nothing was changed on either node");
      expect(result.stderr).toContain("hint: upgrade the older MN to the same platform version first");
      expect(await footprint("mn1")).toEqual([]);
      expect(await footprint("mn2")).toEqual([]); // the staged suite was removed again
    } finally {
      await setPlatform("mn2", "4.8.0");
    }
  });
});

describe("install-ha refuses before changing anything: the database and the time server", () => {
  it("a wrong database root password: preflight names it and the fix, neither node changed", async () => {
    await sh("mn1", 'umask 077 && echo "not-the-db-password-q4" > "$1"', `${IMPORT_DIR}/wrong-db.pw`);
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")], { dbPasswordFile: `${IMPORT_DIR}/wrong-db.pw` });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/MariaDB socket\s+\/run\/\S+\/mn1\/mariadb\/mysqld\.sock\s+\/run\/\S+\/mn2\/mariadb\/mysqld\.sock\s+PASS/);
    expect(result.stdout).toMatch(/MariaDB root login\s+the root password was refused\s+the root password was refused\s+FAIL/);
    expect(result.stderr).toContain("preflight failed (MariaDB root login); nothing was changed on either node");
    expect(result.stderr).toContain("-db-root-pw (or --db-root-pw-file) must be the MariaDB root password of both MNs");
    expect(result.stdout + result.stderr).not.toContain("not-the-db-password-q4");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("clocks 3 s off the -time-server: preflight fails on both nodes naming the server, neither node changed", async () => {
    await startTimeServer(3_000);
    try {
      const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
      expect(result.code).not.toBe(0);
      // Each node measured its own offset with SNTP against the lab's responder (about -3000 ms: the server is ahead).
      const row = /clock within 500 ms of 10\.250\.77\.1\s+\+(\d+) ms \(±\d+, stratum 2\)\s+\+(\d+) ms \(±\d+, stratum 2\)\s+FAIL/.exec(result.stdout);
      expect(row, result.stdout).not.toBeNull();
      for (const offset of [Number(row?.[1]), Number(row?.[2])]) expect(Math.abs(offset - 3_000)).toBeLessThan(500);
      expect(result.stderr).toContain(`synchronise this clock with ${GATEWAY_ADDRESS}`);
      expect(await footprint("mn1")).toEqual([]);
      expect(await footprint("mn2")).toEqual([]);
    } finally {
      await startTimeServer(0);
    }
  });

  it("the seed's overwrite is named and must be confirmed by typing the peer's name; a wrong answer changes nothing", async () => {
    // mn2's host key already known (as after a first confirmation at the terminal): only the seed is asked.
    const hostKey = readFileSync(`${sshdPaths("mn2").hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    await sh("mn1", 'printf "%s %s\\n" "$1" "$2" > "$3"', HOSTS.mn2.address, hostKey, `${IMPORT_DIR}/known_hosts.good`);
    const result = await installHa(["--known-hosts", `${IMPORT_DIR}/known_hosts.good`, "--peer-password-file", LAB_SSH_PASSWORD_FILE], { input: "mn1\n" });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("preflight passed on both nodes");
    expect(result.stderr).toMatch(/This install OVERWRITES the MariaDB database of mn2 \(10\.250\.77\.12, socket [^)]+\):\n {2}junk: 1 tables/);
    expect(result.stderr).toMatch(/with a copy of mn1's \(this node, socket [^)]+\):\n {2}appdb: 1 tables/);
    expect(result.stderr).toContain("Type the name of the peer (mn2) to overwrite its database:");
    expect(result.stderr).toContain("install-ha cancelled before anything changed");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
    expect(await sql("mn2", "SHOW DATABASES LIKE 'junk'")).toHaveLength(1);
  });
});

describe("install-ha from bare nodes", () => {
  it("a step that fails stops at once naming the step and the cause; a rerun resumes there; with the MN down on both nodes its wait for a healthy pair names why nobody holds the VIP, and the next rerun resumes at the wait and ends with a healthy pair serving the VIP", async () => {
    const password = readFileSync(LAB_SSH_PASSWORD_FILE, "utf8").trim();
    // An obstacle on mn2 that breaks the systemd-unit step (a directory where the unit's temporary file goes).
    await sh("mn2", 'mkdir -p "$1"', "/etc/systemd/system/mnha.service.tmp");
    const failed = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/install-ha stopped at step 8\/11 "write the systemd unit[^"]*": writing \/etc\/systemd\/system\/mnha.service failed on [^ ]+ \(exit \d+\): .*Is a directory/);
    expect(failed.stderr).toContain("run the same command again: it resumes at this step");
    expect(failed.stdout).not.toContain("start both agents");
    expect(failed.stderr).toContain("This install OVERWRITES the MariaDB database of mn2");
    expect(failed.stdout).toMatch(/clock within 500 ms of 10\.250\.77\.1\s+[+-]?\d+ ms \(±\d+, stratum 2\)\s+[+-]?\d+ ms \(±\d+, stratum 2\)\s+PASS/);
    expect(failed.stdout).toMatch(/MariaDB root login\s+MariaDB 10\.\d+\.\d+\s+MariaDB 10\.\d+\.\d+\s+PASS/);
    expect(failed.stdout).toMatch(/seed done: mn2 is a copy of mn1 at GTID/);
    expect(failed.stdout).toContain("replicating both ways");
    expect(await lab.holders()).toEqual([]);
    await sh("mn2", 'rmdir "$1"', "/etc/systemd/system/mnha.service.tmp");

    // Rerun with the MN service down on both nodes (and no zstack-ctl here to restore it): the
    // steps go on from step 8, and the wait for a healthy pair ends naming, per node, why nobody
    // holds the VIP.
    for (const node of ["mn1", "mn2"] as const) await lab.killService(node, "mn");
    const waited = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--healthy-timeout", "15"]);
    expect(waited.code).not.toBe(0);
    expect(waited.stdout).toContain("resuming the install");
    expect(waited.stderr).toMatch(/install-ha stopped at step 11\/11 "wait until the pair is healthy[^"]*": the pair did not become healthy within 15 s \(last seen: nobody holds the VIP \(mn1: standby, not eligible: [^;]*mn down[^;]*; mn2: standby, not eligible: [^;]*mn down/);
    expect(waited.stderr).toContain("run the same command again: it resumes at this step");
    expect(await lab.holders()).toEqual([]);
    for (const node of ["mn1", "mn2"] as const) await lab.startService(node, "mn");

    // The resumed run takes zsha2's -peerpass: accepted with a warning, and never visible in ps.
    const result = await installHaWatchingPs(["-peerpass", password], password);
    expect(result.code, await installOutput(result)).toBe(0);
    expect(result.stderr).toContain("warning: -peerpass put a password on the command line");
    expect(result.leaks).toEqual([]);
    expect(result.stdout).toContain("resuming the install");
    expect(waited.stdout).toMatch(/\[5\/11\] write both configs[^\n]*: skipped \(/);
    // It resumed at the wait: everything before it was done by the earlier runs.
    expect(result.stdout).toMatch(/\[10\/11\] start both agents[^\n]*: skipped \(/);
    const output = failed.stdout + waited.stdout + result.stdout;
    for (const step of ["generate the pair's secret", "install suite", "copy the suite to", "write both configs", "SSH key trust", "seed mn2's database from this node (mnha db seed), then replicate both ways", "write the systemd unit", "start both agents", "wait until the pair is healthy"]) {
      expect(output).toContain(step);
    }
    // Preflight said the enabled unit would start beside mnha; install-ha masked it on both nodes, remembering each.
    // No zstack-ctl on these nodes: preflight warns that the MN's restores would fail, naming the fix once for both.
    expect(failed.stdout).toMatch(/service commands \(zstack-ctl, systemctl\)\s+zstack-ctl missing\s+zstack-ctl missing\s+WARN\s+both nodes: zstack-ctl \(the default services' command for mn, ui\) not found in \S+: each restore or stop of those services would fail/);
    expect(failed.stdout).toMatch(/the distribution's keepalived\.service kept off\s+enabled\s+disabled \(install-ha masks it\)\s+WARN\s+\S+: a reboot or a keepalived package upgrade would start it/);
    expect(waited.stdout).toContain("mn1: keepalived.service was enabled; disabled and masked (mnha runs its own Keepalived");
    expect(waited.stdout).toContain("mn2: keepalived.service was disabled; disabled and masked");
    for (const node of ["mn1", "mn2"] as const) {
      // Masked: systemd refuses to start it (no systemd as PID 1 here to show the refusal itself).
      const unit = await sh(node, "systemctl is-enabled keepalived.service; readlink /etc/systemd/system/keepalived.service");
      expect([node, unit.stdout.trim().split("\n")]).toEqual([node, ["masked", "/dev/null"]]);
    }
    expect(waited.stdout).toContain("systemd is not PID 1 here");
    expect(waited.stdout).toContain("systemd-analyze verify passed");
    // The staged suite is gone once installed.
    for (const node of ["mn1", "mn2"] as const) expect((await nodeExec(node, ["test", "-e", "/var/lib/mnha-stage"])).code).not.toBe(0);
    expect(result.stdout).toContain("The pair is installed and healthy");

    // One holder on the wire, and only its MAC answers ARP for the VIP.
    const holder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
    expect(await lab.arpProbe()).toEqual([HOSTS[holder].mac]);
    // Both agents see each other (asked on mn2, through its own installed suite).
    const status = JSON.parse((await nodeExec("mn2", ["/usr/local/bin/mnha", "status", "--json"])).stdout) as { peer: { connected: boolean }; vipOwner: string; self: { eligible: boolean } };
    expect(status.peer.connected).toBe(true);
    expect(status.self.eligible).toBe(true);
    expect(status.vipOwner).toBe(holder);

    // The suite on mn2 came from the bundle (no network), and says so.
    const version = await nodeExec("mn2", ["/usr/local/bin/zsha2", "version"]);
    expect(version.stdout).toContain(`suite 0.1.0, peer protocol ${CURRENT_PROTOCOL_VERSION}`);
    expect(version.stdout).toContain("platform 4.8.0, license enterprise");

    // Configs, the shared secret and the database passwords: 0600, the same secret on both nodes.
    for (const node of ["mn1", "mn2"] as const) {
      const modes = await sh(node, 'stat -c %a "$1" "$2" "$3" "$4"', "/etc/mnha/mnha.yaml", "/etc/mnha/secret", "/etc/mnha/db-root-password", "/etc/mnha/db-replication-password");
      expect(modes.stdout.trim().split("\n")).toEqual(["600", "600", "600", "600"]);
      // The config records the time server, the managed database (this node's own socket) and the data sync.
      const config = JSON.parse((await sh(node, 'sed 1d "$1"', "/etc/mnha/mnha.yaml")).stdout) as { timeServer: string; db: { enabled: boolean; socket: string }; dataSync: { dirs: string[]; sshUser: string } };
      expect(config.timeServer).toBe(GATEWAY_ADDRESS);
      expect(config.db).toMatchObject({ enabled: true, socket: mariaDbPaths(node).socket });
      expect(config.dataSync).toMatchObject({ dirs: [SYNC_DIR], sshUser: LAB_SSH_USER });
    }

    // The database: mn2's own old one replaced by a copy of mn1's, and both replicate each other.
    expect(await sql("mn2", "SHOW DATABASES LIKE 'junk'")).toHaveLength(0);
    expect(await sql("mn2", "SELECT note FROM appdb.items WHERE id = 1")).toEqual([{ note: "written on mn1 before the install" }]);
    const standby = holder === "mn1" ? "mn2" : "mn1";
    await sql(holder, "INSERT INTO appdb.items VALUES (2, 'written through the holder')");
    await waitFor(`the row to reach ${standby}`, async () => ((await sql(standby, "SELECT note FROM appdb.items WHERE id = 2")).length === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    for (const node of ["mn1", "mn2"] as const) {
      const health = await nodeDatabase(node).health();
      expect([node, health.slaveIoRunning, health.slaveSqlRunning]).toEqual([node, "Yes", "Yes"]);
    }
    expect(await nodeDatabase(holder).readOnly()).toBe(false);
    expect(await nodeDatabase(standby).readOnly()).toBe(true);
    const dbStatus = await installedCli("mn2", ["db", "status", "--json"]);
    expect(dbStatus.code, dbStatus.stderr).toBe(0);
    const dbReport = JSON.parse(dbStatus.stdout) as { nodes: { node: string; health: { slaveIoRunning: string; slaveSqlRunning: string } }[]; divergence: unknown[] };
    expect(dbReport.nodes.map((n) => [n.node, n.health.slaveIoRunning, n.health.slaveSqlRunning])).toEqual([["mn2", "Yes", "Yes"], ["mn1", "Yes", "Yes"]]);
    expect(dbReport.divergence).toEqual([]);
    const secrets = await Promise.all((["mn1", "mn2"] as const).map(async (node) => (await sh(node, 'sha256sum < "$1"', "/etc/mnha/secret")).stdout));
    expect(secrets[0]).toBe(secrets[1]);

    // The key trust for data sync works both ways with real OpenSSH and strict host keys.
    for (const [from, to] of [["mn1", "mn2"], ["mn2", "mn1"]] as const) {
      const login = await nodeExec(from, ["ssh", "-i", "/etc/mnha/ssh/id_ed25519", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/etc/mnha/ssh/known_hosts", `${LAB_SSH_USER}@${HOSTS[to].address}`, "cat", "/proc/sys/kernel/hostname"], { timeoutMs: 20_000 });
      expect(login.code, login.stderr).toBe(0);
    }

    // The passwords are nowhere: not printed; the SSH password not in the logs, the state file or the configs.
    expect(output + failed.stderr + waited.stderr + result.stderr).not.toContain(password);
    expect(output + failed.stderr + waited.stderr + result.stderr).not.toContain(dbRootPassword);
    for (const node of ["mn1", "mn2"] as const) {
      const grep = await sh(node, 'grep -rlF -- "$1" /etc/mnha /var/lib/mnha || true', password);
      expect(grep.stdout.trim()).toBe("");
    }
  });

  it("running it again changes nothing: every step is already done", async () => {
    const holderBefore = await lab.holder();
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code, await installOutput(result)).toBe(0);
    expect(result.stdout).toContain("resuming the install");
    expect(result.stdout).not.toMatch(/\] [^\n]*\.\.\.$/m); // no step started
    expect(result.stdout).toMatch(/start both agents \(this node first\): skipped \(/);
    expect(await lab.holder()).toBe(holderBefore);
  });

  it("monitoring data sync: the holder's directory reaches the standby with rsync over the SSH trust, on schedule; the lag is in status and Prometheus", async () => {
    const holder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
    const standby = holder === "mn1" ? "mn2" : "mn1";
    const made = await sh(holder, 'mkdir -p "$1/wal" && echo "samples of $2" > "$1/wal/000001" && echo "head" > "$1/chunks_head"', SYNC_DIR, holder);
    expect(made.code, made.stderr).toBe(0);
    await waitFor(`${SYNC_DIR} on ${standby}`, async () => ((await sh(standby, 'cat "$1/wal/000001"', SYNC_DIR)).stdout.trim() === `samples of ${holder}` ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
    // --delete: what the holder removed goes on the standby too.
    await sh(holder, 'rm -f "$1/chunks_head"', SYNC_DIR);
    await waitFor(`chunks_head gone on ${standby}`, async () => ((await sh(standby, 'test -e "$1/chunks_head"', SYNC_DIR)).code !== 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });

    const status = await installedStatus(holder);
    expect(status.dataSync).toMatchObject({ dirs: [SYNC_DIR], direction: "push", lastError: null });
    expect(Date.now() - (status.dataSync?.lastSuccessAtMs ?? 0)).toBeLessThan(60_000);
    expect((await installedStatus(standby)).dataSync).toMatchObject({ direction: "idle" });
    const metrics = await nodeExec(holder, ["/opt/mnha/current/node/bin/node", "-e", "fetch('http://127.0.0.1:9746/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"], { timeoutMs: 30_000 });
    const age = /^mnha_datasync_last_success_age_seconds(?:\{[^}]*\})? ([0-9.e+-]+)$/m.exec(metrics.stdout);
    expect(age, metrics.stdout.slice(0, 2000)).not.toBeNull();
    expect(Number(age?.[1])).toBeLessThan(60);
    // The loop delay comes from the agent's beat (no sampler timer of its own): every beat
    // since start is in it, each a few milliseconds late at most on an idle agent.
    const loopDelay = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(metrics.stdout)?.[1] ?? Number.NaN);
    expect(loopDelay("nodejs_eventloop_lag_p50_seconds"), metrics.stdout.slice(0, 2000)).toBeGreaterThan(0);
    expect(loopDelay("nodejs_eventloop_lag_p50_seconds")).toBeLessThan(0.05);
    expect(loopDelay("nodejs_eventloop_lag_max_seconds")).toBeGreaterThanOrEqual(loopDelay("nodejs_eventloop_lag_p50_seconds"));
    expect(loopDelay("nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(metrics.stdout).toMatch(/^process_cpu_user_seconds_total [0-9.e+-]+$/m);
  });

  it("a failed sync (the standby's directory is not writable as one) is an event and never moves the VIP; the next sync after the repair succeeds", async () => {
    const holder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
    const standby = holder === "mn1" ? "mn2" : "mn1";
    const startedAt = Date.now();
    // A regular file where the directory must be: rsync cannot write into it, whatever the user.
    await sh(standby, 'rm -rf "$1" && echo "in the way" > "$1"', SYNC_DIR);
    try {
      const failed = await waitFor(
        "a datasync.failed event",
        async () => {
          const result = await installedCli(holder, ["events", "--json", "--type", "datasync.failed", "--limit", "20"]);
          const events = (JSON.parse(result.stdout) as HaEvent[]).filter((e) => Date.parse(e.time) >= startedAt - 1_000);
          return events.length > 0 ? events : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      expect(failed[0]?.node).toBe(holder);
      expect(failed[0]?.message).toMatch(/monitoring data sync \(schedule\) failed/);
      const status = await installedStatus(holder);
      expect(status.dataSync?.lastError).toContain(SYNC_DIR);
      // Several more failing cycles (every 5 s): the VIP never leaves the holder, the pair stays healthy.
      const seen = new Set<string>();
      for (let sample = 0; sample < 24; sample++) {
        seen.add((await lab.holders()).join(","));
        await new Promise((r) => setTimeout(r, 500));
      }
      expect([...seen]).toEqual([holder]);
      const after = await installedStatus(holder);
      expect(after.vipOwner).toBe(holder);
      expect(after.peer.connected).toBe(true);
      expect(after.self.eligible).toBe(true);
    } finally {
      await sh(standby, 'rm -f "$1" && mkdir -p "$1"', SYNC_DIR);
    }
    await waitFor("the sync to recover", async () => ((await installedStatus(holder)).dataSync?.lastError === null ? true : undefined), { timeoutMs: 60_000, intervalMs: 1_000 });
    expect((await sh(standby, 'cat "$1/wal/000001"', SYNC_DIR)).stdout.trim()).toBe(`samples of ${holder}`);
  });

  it("right after a switchover the new holder's data flows to the other node", async () => {
    const oldHolder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
    const newHolder = oldHolder === "mn1" ? "mn2" : "mn1";
    const startedAt = Date.now();
    const demoted = await installedCli(oldHolder, ["demote", "--yes"]);
    expect(demoted.code, `${demoted.stdout}${demoted.stderr}`).toBe(0);
    await lab.waitForHolder(newHolder, { timeoutMs: 60_000 });
    // The new holder pushed at once (trigger "switchover"), recorded in the audit trail.
    const pushed = await waitFor(
      "a datasync.done event of the switchover",
      async () => {
        const result = await installedCli(newHolder, ["events", "--json", "--type", "datasync.done", "--limit", "20"]);
        const events = (JSON.parse(result.stdout) as HaEvent[]).filter((e) => e.node === newHolder && e.fields["trigger"] === "switchover" && Date.parse(e.time) >= startedAt - 1_000);
        return events.length > 0 ? events : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(pushed[0]?.message).toContain("monitoring data synced to the standby (switchover");
    // From now on the data goes the other way.
    await sh(newHolder, 'echo "samples of $2" > "$1/wal/000002"', SYNC_DIR, newHolder);
    await waitFor(`000002 on ${oldHolder}`, async () => ((await sh(oldHolder, 'cat "$1/wal/000002"', SYNC_DIR)).stdout.trim() === `samples of ${newHolder}` ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
    expect((await installedStatus(newHolder)).dataSync).toMatchObject({ direction: "push", lastError: null });
    expect((await installedStatus(oldHolder)).dataSync).toMatchObject({ direction: "idle" });
    // The database followed the VIP: the new holder writes, the old one replicates it.
    await sql(newHolder, "INSERT INTO appdb.items VALUES (3, 'written on the new holder')");
    await waitFor(`the row to reach ${oldHolder}`, async () => ((await sql(oldHolder, "SELECT note FROM appdb.items WHERE id = 3")).length === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
  });

  it("--cleanup undoes the install: agents stopped, the VIP released, configs, secret and units removed", async () => {
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--cleanup"]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/undone: start both agents[\s\S]*undone: keep the distribution's keepalived\.service off[\s\S]*undone: write the systemd unit[\s\S]*undone: seed mn2's database[\s\S]*undone: SSH key trust[\s\S]*undone: write both configs[\s\S]*undone: generate the pair's secret/);
    // The copied data stays; the replication between the two stops and neither is left read-only.
    for (const node of ["mn1", "mn2"] as const) {
      const health = await nodeDatabase(node).health();
      expect([node, health.replicaConfigured, await nodeDatabase(node).readOnly()]).toEqual([node, false, false]);
    }
    expect(await sql("mn2", "SELECT note FROM appdb.items WHERE id = 1")).toEqual([{ note: "written on mn1 before the install" }]);
    expect(await lab.holders()).toEqual([]);
    for (const node of ["mn1", "mn2"] as const) {
      for (const path of ["/etc/mnha/mnha.yaml", "/etc/mnha/secret", "/etc/systemd/system/mnha.service", "/var/lib/mnha/install-ha.json"]) {
        expect((await nodeExec(node, ["test", "-e", path])).code, `${node}:${path}`).not.toBe(0);
      }
      expect((await nodeExec(node, ["test", "-e", "/etc/mnha/ssh/id_ed25519"])).code).not.toBe(0);
      const authorized = await sh(node, 'cat "$1/.ssh/authorized_keys"', `/var/lib/${LAB_SSH_USER}`);
      expect(authorized.stdout).not.toContain("mnha-sync-");
      const agents = await sh(node, 'pid=$(cat /run/mnha/agent.pid) && kill -0 "$pid" && echo running || echo stopped');
      expect(agents.stdout.trim()).toBe("stopped");
    }
    // The distribution's keepalived.service is as it was before the install.
    for (const [node, was] of [["mn1", "enabled"], ["mn2", "disabled"]] as const) {
      const unit = await sh(node, 'systemctl is-enabled keepalived.service; test -e "$1" && echo "marker left"', "/etc/mnha/keepalived.service.before");
      expect([node, unit.stdout.trim()]).toEqual([node, was]);
    }
  });
});
