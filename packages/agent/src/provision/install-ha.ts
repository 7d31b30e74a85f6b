/**
 * install-ha: from two bare MNs (the suite bundle on this one, the peer's SSH login) to a
 * healthy pair. Preflight on both nodes runs first and changes nothing (the suite is staged
 * on the peer to run its preflight, and removed again if anything fails); then a step plan
 * (plan/step-plan.ts) that a rerun resumes and `--cleanup` undoes.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { loadConfig, MnhaError, parseConfig, writeFileAtomicSync } from "@mnha/shared";
import { ControlClient } from "../control/control-client.js";
import type { StatusReport } from "../contracts.js";
import type { Plan, PlanStep } from "../plan/step-plan.js";
import { openLocalDatabase, peerEndpoint } from "../db/index.js";
import { readPasswordFile } from "../db/secret-file.js";
import { databaseRows, optionFile, PROBE_SCRIPT, probeDatabases, type DatabaseProbes } from "./database-probe.js";
import { distributionKeepalivedHarmless, distributionKeepalivedState, DISTRIBUTION_KEEPALIVED_UNIT, maskDistributionKeepalived, restoreDistributionKeepalived } from "../keepalived/distribution-unit.js";
import { combinePreflight, parseNodePreflight, preflightFailed, renderPreflightTable, runLocalPreflight, type PreflightOptions, type PreflightRow } from "./preflight.js";
import { sha256OfFile, type SshSession } from "./ssh-session.js";

export const INSTALL_DIR = "/opt/mnha";
export const CONFIG_DIR = "/etc/mnha";
export const CONFIG_FILE = `${CONFIG_DIR}/mnha.yaml`;
export const SECRET_FILE = `${CONFIG_DIR}/secret`;
export const SSH_DIR = `${CONFIG_DIR}/ssh`;
export const KNOWN_HOSTS_FILE = `${SSH_DIR}/known_hosts`;
export const STATE_FILE = "/var/lib/mnha/install-ha.json";
/** Where the suite is unpacked before it is installed (both nodes); removed when done or when preflight fails. */
export const STAGE_DIR = "/var/lib/mnha-stage";
export const AGENT_LOG = "/var/lib/mnha/agent.log";
/** The agent's runtime directory (systemd's RuntimeDirectory=mnha): its socket, pid, and install-ha's operation lock. */
export const AGENT_RUNTIME_DIR = "/run/mnha";
export const AGENT_PID = `${AGENT_RUNTIME_DIR}/agent.pid`;
export const UNIT_FILE = "/etc/systemd/system/mnha.service";
/** The MariaDB root password (both nodes, 0600): the config's db.rootPasswordFile. */
export const DB_ROOT_PASSWORD_FILE = `${CONFIG_DIR}/db-root-password`;
/** The replication user's password, generated here, the same on both nodes (0600). */
export const DB_REPLICATION_PASSWORD_FILE = `${CONFIG_DIR}/db-replication-password`;
/** The seed marker `mnha db seed` leaves while a copy is incomplete (db/seed-marker.ts, default data dir). */
const PEER_SEED_MARKER = "/var/lib/mnha/db.seeding";
const MNHA = `${INSTALL_DIR}/current/bin/mnha`;

export interface InstallSettings {
  preflight: PreflightOptions;
  localAddress: string;
  nodeName: string;
  peerName: string;
  peerAddress: string;
  /** zsha2's execUser: the SSH login on both nodes; data sync uses it with the key set up here. */
  execUser: string;
  bundlePath: string;
  /** -time-server: preflight checks both clocks against it; recorded in the config. */
  timeServer?: string;
  /** Given (-db-root-pw): mnha manages MariaDB; the peer's database is seeded from this node's. */
  database?: DatabaseInstall;
  /** Monitoring data kept in step from the holder to the standby over the SSH trust. */
  dataSync: { dirs: string[]; schedule: string };
  healthyTimeoutMs: number;
}

export interface DatabaseInstall {
  rootPassword: string;
  /** --db-socket: the same on both nodes; null: found on each node (probeDatabases). */
  socketFlag: string | null;
  /** Each node's socket, known once probeDatabases ran. */
  sockets?: { local: string; peer: string };
}

export interface Output {
  write(text: string): unknown;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function local(file: string, args: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 120_000, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1;
      resolve({ code, stdout, stderr: stderr || (error?.message ?? "") });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function mustLocal(what: string, file: string, args: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<Result> {
  const result = await local(file, args, options);
  if (result.code !== 0) {
    throw new MnhaError("REMOTE_COMMAND", `${what} failed on this node (exit ${result.code}): ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ")}`, { hint: "fix the cause above, then run install-ha again: it resumes" });
  }
  return result;
}

/** The suite's directory name inside the bundle: the file name without .tar.gz. */
export function bundleName(bundlePath: string): string {
  const name = basename(bundlePath).replace(/\.tar\.gz$/, "");
  if (!/^mnha-suite-[0-9A-Za-z.+-]+-linux-x64$/.test(name)) throw new MnhaError("USAGE", `${bundlePath} is not a suite bundle (mnha-suite-<version>-linux-x64.tar.gz)`, { hint: "pass the bundle built by `pnpm bundle` with --bundle" });
  return name;
}

export function bundleVersion(bundlePath: string): string {
  return bundleName(bundlePath).replace(/^mnha-suite-/, "").replace(/-linux-x64$/, "");
}

/** Writes a file on the peer from stdin (content never in argv), atomically, with the given mode. */
async function writeRemoteFile(session: SshSession, path: string, content: string, mode: string): Promise<void> {
  await session.run(["sh", "-c", 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && chmod "$2" "$1.tmp" && mv -f "$1.tmp" "$1"', "sh", path, mode], { input: content, what: `writing ${path}` });
}

/** Replaces the file atomically: an interrupted install never leaves a config or secret half written. */
function writeLocalFile(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(path, content, { mode });
  chmodSync(path, mode); // exactly this mode, whatever the umask
}

/** The config of one node, validated with the agent's own schema. JSON is valid YAML. */
export function nodeConfigText(settings: InstallSettings, side: "local" | "peer"): string {
  const self = side === "local" ? { name: settings.nodeName, address: settings.localAddress } : { name: settings.peerName, address: settings.peerAddress };
  const other = side === "local" ? { name: settings.peerName, address: settings.peerAddress } : { name: settings.nodeName, address: settings.localAddress };
  const config = {
    node: self,
    peers: [{ ...other, port: settings.preflight.peerPort }],
    listen: { port: settings.preflight.peerPort },
    vip: { address: settings.preflight.vipAddress, prefix: settings.preflight.vipPrefix, interface: settings.preflight.nic },
    gateway: { address: settings.preflight.gateway },
    auth: { secretFile: SECRET_FILE },
    keepalived: { mode: "child" },
    metrics: { port: settings.preflight.metricsPort },
    ...(settings.database
      ? {
          db: {
            enabled: true,
            socket: (side === "local" ? settings.database.sockets?.local : settings.database.sockets?.peer) ?? settings.database.socketFlag ?? "/run/mysqld/mysqld.sock",
            rootUser: "root",
            rootPasswordFile: DB_ROOT_PASSWORD_FILE,
            replication: { passwordFile: DB_REPLICATION_PASSWORD_FILE },
          },
        }
      : {}),
    // The SSH trust set up by install-ha (ssh-trust step), whether or not directories are named yet.
    dataSync: { dirs: settings.dataSync.dirs, schedule: settings.dataSync.schedule, sshKey: `${SSH_DIR}/id_ed25519`, knownHostsFile: KNOWN_HOSTS_FILE, sshUser: settings.execUser },
    ...(settings.timeServer !== undefined ? { timeServer: settings.timeServer } : {}),
  };
  parseConfig(config, `the generated config of ${self.name}`);
  return `# mnha config of ${self.name}, written by mnha install-ha. See docs/mnha.example.yaml for every field.\n${JSON.stringify(config, null, 2)}\n`;
}

// ------------------------------------------------------------------ preflight (changes nothing)

export interface PreflightOutcome {
  rows: PreflightRow[];
  names: [string, string];
  databases?: DatabaseProbes;
}

/** Stages the suite on the peer (checked upload), runs both preflights, compares. On failure the stage is removed. */
export async function preflightBoth(session: SshSession, settings: InstallSettings, out: Output): Promise<PreflightOutcome> {
  const name = bundleName(settings.bundlePath);
  out.write(`preflight: staging the suite on ${settings.peerAddress} to run the same checks there ...\n`);
  const stagedByUs = !(await remoteExists(session, STAGE_DIR));
  try {
    await stageOnPeer(session, settings);
    const p = settings.preflight;
    const remoteArgs = [`${STAGE_DIR}/${name}/bin/mnha`, "preflight", "--json", "--nic", p.nic, "--vip", `${p.vipAddress}/${p.vipPrefix}`, "--gateway", p.gateway, "--peer-port", String(p.peerPort), "--metrics-port", String(p.metricsPort), "--min-cpus", String(p.minCpus), "--min-memory-gb", String(p.minMemoryGb), "--platform-version-file", p.platform.versionFile, "--license-file", p.platform.licenseFile, ...(p.timeServer !== undefined ? ["--time-server", p.timeServer] : [])];
    const [localReport, remote] = await Promise.all([runLocalPreflight(p), session.exec(remoteArgs, { timeoutMs: 120_000 })]);
    const peerReport = parseNodePreflight(remote.stdout, settings.peerAddress);
    const clock = await clockOffset(session);
    const rows = combinePreflight(localReport, peerReport, clock);
    if (settings.timeServer !== undefined) for (const row of rows) if (row.id === "clock" && row.status === "fail") row.fix = `synchronise both clocks with ${settings.timeServer} (chrony) and run again`;
    let databases: DatabaseProbes | undefined;
    if (settings.database) {
      databases = await probeDatabases(session, settings.database);
      rows.push(...databaseRows(databases, [settings.nodeName, settings.peerName]));
    }
    const names: [string, string] = [`${settings.nodeName} (this)`, settings.peerName];
    out.write(renderPreflightTable(rows, names));
    if (preflightFailed(rows)) {
      const failed = rows.filter((row) => row.status === "fail");
      throw new MnhaError("PREFLIGHT_FAILED", `preflight failed (${failed.map((row) => row.title).join("; ")}); nothing was changed on either node`, {
        hint: failed.map((row) => row.fix).join("; "),
        fields: { failed: failed.map((row) => row.id) },
      });
    }
    return { rows, names, ...(databases ? { databases } : {}) };
  } catch (error) {
    if (stagedByUs) await session.exec(["rm", "-rf", "--", STAGE_DIR]).catch(() => undefined);
    throw error;
  }
}

async function remoteExists(session: SshSession, path: string): Promise<boolean> {
  return (await session.exec(["test", "-e", path])).code === 0;
}

async function stageOnPeer(session: SshSession, settings: InstallSettings): Promise<void> {
  const name = bundleName(settings.bundlePath);
  const remoteTar = `${STAGE_DIR}/${name}.tar.gz`;
  const expected = await sha256OfFile(settings.bundlePath);
  const present = await session.exec(["sha256sum", "--", remoteTar]);
  if (present.code !== 0 || present.stdout.split(/\s+/)[0] !== expected) {
    await session.run(["mkdir", "-p", "-m", "0700", STAGE_DIR]);
    await session.upload(settings.bundlePath, remoteTar);
  }
  if (!(await remoteExists(session, `${STAGE_DIR}/${name}/VERSION`))) await session.run(["tar", "-xzf", remoteTar, "-C", STAGE_DIR], { what: "unpacking the suite", timeoutMs: 300_000 });
}

async function clockOffset(session: SshSession): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best: { offsetMs: number; uncertaintyMs: number } | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = Date.now();
    const result = await session.run(["date", "+%s%3N"]);
    const after = Date.now();
    const remote = Number(result.stdout.trim());
    const sample = { offsetMs: remote - (before + after) / 2, uncertaintyMs: (after - before) / 2 };
    if (best === null || sample.uncertaintyMs < best.uncertaintyMs) best = sample;
  }
  return best as { offsetMs: number; uncertaintyMs: number };
}

// ------------------------------------------------------------------ the plan

export function installPlan(session: SshSession, settings: InstallSettings, out: Output): Plan {
  const name = bundleName(settings.bundlePath);
  const version = bundleVersion(settings.bundlePath);
  const systemdRuns = existsSync("/run/systemd/system");
  let secretCache: string | null = null;
  const secret = (): string => {
    secretCache ??= readFileSync(SECRET_FILE, "utf8").trim();
    return secretCache;
  };
  const installed = async (runner: (argv: string[]) => Promise<Result>): Promise<boolean> => {
    const result = await runner(["cat", `${INSTALL_DIR}/current/VERSION`]);
    return result.code === 0 && result.stdout.trim() === version;
  };
  const localRun = (argv: string[]) => local(argv[0] as string, argv.slice(1));
  const peerRun = (argv: string[]) => session.exec(argv);

  const steps: PlanStep[] = [
    {
      name: "secret",
      title: "generate the pair's secret (32 random bytes)",
      check: async () => secretPresent(SECRET_FILE) && (settings.database === undefined || secretPresent(DB_REPLICATION_PASSWORD_FILE)),
      run: async () => {
        if (!secretPresent(SECRET_FILE)) writeLocalFile(SECRET_FILE, `${randomBytes(32).toString("base64url")}\n`, 0o600);
        // The replication user's password: generated here, copied to the peer with the configs.
        if (settings.database !== undefined && !secretPresent(DB_REPLICATION_PASSWORD_FILE)) writeLocalFile(DB_REPLICATION_PASSWORD_FILE, `${randomBytes(24).toString("base64url")}\n`, 0o600);
      },
      rollback: async () => {
        rmSync(SECRET_FILE, { force: true });
        rmSync(DB_REPLICATION_PASSWORD_FILE, { force: true });
      },
    },
    {
      name: "install-local",
      title: `install suite ${version} on this node (${INSTALL_DIR})`,
      check: () => installed(localRun),
      run: async (context) => {
        mkdirSync(STAGE_DIR, { recursive: true, mode: 0o700 });
        await mustLocal("unpacking the suite", "tar", ["-xzf", settings.bundlePath, "-C", STAGE_DIR], { timeoutMs: 300_000 });
        const done = await mustLocal("install.sh", `${STAGE_DIR}/${name}/install.sh`, []);
        context.note(done.stdout.trim());
      },
    },
    {
      name: "upload-peer",
      title: `copy the suite to ${settings.peerAddress} over SFTP and verify its SHA-256`,
      check: async () => (await installed(peerRun)) || (await session.exec(["test", "-f", `${STAGE_DIR}/${name}/VERSION`])).code === 0,
      run: async () => stageOnPeer(session, settings),
    },
    {
      name: "install-peer",
      title: `install suite ${version} on ${settings.peerName} (${INSTALL_DIR})`,
      check: () => installed(peerRun),
      run: async (context) => {
        const done = await session.run([`${STAGE_DIR}/${name}/install.sh`], { what: "install.sh", timeoutMs: 300_000 });
        context.note(done.stdout.trim());
      },
    },
    {
      name: "configs",
      title: `write both configs (${CONFIG_FILE}, ${SECRET_FILE}${settings.database ? ", the database passwords" : ""}, mode 0600)`,
      check: async () => {
        if (!existsSync(CONFIG_FILE) || readFileSync(CONFIG_FILE, "utf8") !== nodeConfigText(settings, "local")) return false;
        const database = settings.database;
        if (database !== undefined && (!existsSync(DB_ROOT_PASSWORD_FILE) || readFileSync(DB_ROOT_PASSWORD_FILE, "utf8") !== `${database.rootPassword}\n`)) return false;
        const files = [CONFIG_FILE, SECRET_FILE, ...(database ? [DB_ROOT_PASSWORD_FILE, DB_REPLICATION_PASSWORD_FILE] : [])];
        const remote = await session.exec(["cat", "--", ...files]);
        const expected = `${nodeConfigText(settings, "peer")}${secret()}\n${database ? `${database.rootPassword}\n${readFileSync(DB_REPLICATION_PASSWORD_FILE, "utf8")}` : ""}`;
        return remote.code === 0 && remote.stdout === expected;
      },
      run: async () => {
        if (settings.database) {
          writeLocalFile(DB_ROOT_PASSWORD_FILE, `${settings.database.rootPassword}\n`, 0o600);
          await writeRemoteFile(session, DB_ROOT_PASSWORD_FILE, `${settings.database.rootPassword}\n`, "600");
          await writeRemoteFile(session, DB_REPLICATION_PASSWORD_FILE, readFileSync(DB_REPLICATION_PASSWORD_FILE, "utf8"), "600");
        }
        writeLocalFile(CONFIG_FILE, nodeConfigText(settings, "local"), 0o600);
        await writeRemoteFile(session, SECRET_FILE, `${secret()}\n`, "600");
        await writeRemoteFile(session, CONFIG_FILE, nodeConfigText(settings, "peer"), "600");
      },
      rollback: async () => {
        rmSync(CONFIG_FILE, { force: true });
        rmSync(DB_ROOT_PASSWORD_FILE, { force: true });
        await session.exec(["rm", "-f", "--", CONFIG_FILE, SECRET_FILE, DB_ROOT_PASSWORD_FILE, DB_REPLICATION_PASSWORD_FILE]);
      },
    },
    sshTrustStep(session, settings),
    databaseStep(session, settings, localRun),
    {
      name: "units",
      title: `write the systemd unit (${UNIT_FILE}) on both nodes`,
      check: async () => existsSync(UNIT_FILE) && (await session.exec(["test", "-f", UNIT_FILE])).code === 0,
      run: async (context) => {
        const unit = readFileSync(`${INSTALL_DIR}/current/systemd/mnha.service`, "utf8");
        writeLocalFile(UNIT_FILE, unit, 0o644);
        await writeRemoteFile(session, UNIT_FILE, unit, "644");
        if (systemdRuns) {
          for (const runner of [localRun, peerRun]) {
            for (const argv of [["systemctl", "daemon-reload"], ["systemctl", "enable", "mnha.service"]]) {
              const result = await runner(argv);
              if (result.code !== 0) throw new MnhaError("REMOTE_COMMAND", `${argv.join(" ")} failed: ${result.stderr.trim()}`, { hint: "see systemctl status mnha" });
            }
          }
          context.note("unit enabled on both nodes");
          return;
        }
        context.note("systemd is not PID 1 here: the unit files are written but not enabled; the agents are started by mnha itself (pid file, log in /var/lib/mnha)");
        for (const [label, runner] of [["this node", localRun], [settings.peerName, peerRun]] as const) {
          const verify = await runner(["sh", "-c", 'if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$1" && echo verified; else echo "no systemd-analyze"; fi', "sh", UNIT_FILE]);
          if (verify.code !== 0) throw new MnhaError("REMOTE_COMMAND", `systemd-analyze verify ${UNIT_FILE} on ${label}: ${(verify.stderr || verify.stdout).trim()}`, { hint: "the unit file is wrong for this system; see the message" });
          context.note(`${label}: ${verify.stdout.trim() === "verified" ? "systemd-analyze verify passed" : "systemd-analyze not available: unit not checked"}`);
        }
      },
      rollback: async () => {
        rmSync(UNIT_FILE, { force: true });
        await session.exec(["rm", "-f", "--", UNIT_FILE]);
      },
    },
    {
      // Before the agents start: a keepalived.service started beside them would run another VRRP instance.
      name: "keepalived-unit",
      title: `keep the distribution's ${DISTRIBUTION_KEEPALIVED_UNIT} off on both nodes (disable and mask it: mnha runs its own Keepalived)`,
      check: async () => distributionKeepalivedHarmless(await distributionKeepalivedState(localRun)) && distributionKeepalivedHarmless(await distributionKeepalivedState(peerRun)),
      run: async (context) => {
        for (const [label, runner] of [[settings.nodeName, localRun], [settings.peerName, peerRun]] as const) context.note(await maskDistributionKeepalived(runner, label));
      },
      rollback: async (context) => {
        for (const [label, runner] of [[settings.peerName, peerRun], [settings.nodeName, localRun]] as const) context.note(await restoreDistributionKeepalived(runner, label));
      },
    },
    {
      name: "start",
      title: "start both agents (this node first)",
      check: async () => (await agentRunning(localRun, systemdRuns)) && (await agentRunning(peerRun, systemdRuns)),
      run: async () => {
        for (const [label, runner] of [["this node", localRun], [settings.peerName, peerRun]] as const) {
          if (await agentRunning(runner, systemdRuns)) continue;
          const argv = systemdRuns ? ["systemctl", "start", "mnha.service"] : [MNHA, "run-detached-agent", "--agent-config", CONFIG_FILE, "--log-file", AGENT_LOG, "--pid-file", AGENT_PID];
          const result = await runner(argv);
          if (result.code !== 0) throw new MnhaError("REMOTE_COMMAND", `starting the agent on ${label} failed: ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ")}`, { hint: `see ${systemdRuns ? "journalctl -u mnha" : AGENT_LOG} on ${label}` });
        }
      },
      rollback: async () => {
        for (const runner of [peerRun, localRun]) await stopAgent(runner, systemdRuns);
      },
    },
    {
      name: "healthy",
      title: "wait until the pair is healthy (one VIP holder, both connected and eligible)",
      run: async (context) => {
        const report = await waitHealthy(settings.healthyTimeoutMs);
        context.note(`${report.vipOwner ?? "nobody"} holds the VIP ${settings.preflight.vipAddress}`);
      },
    },
  ];
  void out;
  return { name: "install-ha", steps };
}

function secretPresent(file: string): boolean {
  return existsSync(file) && (statSync(file).mode & 0o077) === 0 && readFileSync(file, "utf8").trim().length >= 32;
}

interface DbStatusJson {
  nodes: { node: string; health: { alive: boolean; replicaConfigured?: boolean; slaveIoRunning: string | null; slaveSqlRunning: string | null; lastIoError?: string | null; lastSqlError?: string | null } }[];
  divergence: unknown[];
  peerProblem: string | null;
}

/** Null when both nodes replicate from each other (both threads running, no divergence); else what is missing. */
export function replicationProblem(report: DbStatusJson): string | null {
  if (report.peerProblem !== null) return `the peer's database: ${report.peerProblem}`;
  if (report.nodes.length < 2) return "only one node's database answered";
  for (const { node, health } of report.nodes) {
    if (!health.alive) return `${node}'s MariaDB is down`;
    if (health.slaveIoRunning !== "Yes" || health.slaveSqlRunning !== "Yes") return `${node} does not replicate (Slave_IO_Running ${health.slaveIoRunning ?? "-"}, Slave_SQL_Running ${health.slaveSqlRunning ?? "-"}${health.lastIoError ? `, ${health.lastIoError}` : ""}${health.lastSqlError ? `, ${health.lastSqlError}` : ""})`;
  }
  if (report.divergence.length > 0) return "the two databases have diverged (see mnha db status)";
  return null;
}

/**
 * The peer's database becomes a copy of this node's, then both replicate each other. This
 * node's replica is set up last: the peer's own old transactions must never flow here.
 */
function databaseStep(session: SshSession, settings: InstallSettings, localRun: (argv: string[]) => Promise<Result>): PlanStep {
  const dbStatus = [MNHA, "db", "status", "--json", "--config", CONFIG_FILE];
  const replicatingBothWays = async (): Promise<string | null> => {
    const status = await localRun(dbStatus);
    if (status.code !== 0) return `mnha db status: ${(status.stderr || status.stdout).trim().split("\n").slice(-1).join("")}`;
    return replicationProblem(JSON.parse(status.stdout) as DbStatusJson);
  };
  // Without a database to manage, the step has nothing to do: it says so once, then it is done.
  let skippedUnmanaged = false;
  return {
    name: "db-seed",
    title: settings.database ? `seed ${settings.peerName}'s database from this node (mnha db seed), then replicate both ways` : `seed ${settings.peerName}'s database from this node (mnha db seed)`,
    check: async () => (settings.database === undefined ? skippedUnmanaged : (await session.exec(["test", "-e", PEER_SEED_MARKER])).code !== 0 && (await replicatingBothWays()) === null),
    run: async (context) => {
      if (settings.database === undefined) {
        skippedUnmanaged = true;
        context.note("skipped: the database is not managed (no -db-root-pw / --db-root-pw-file / MNHA_DB_ROOT_PASSWORD given); `mnha db` documents how to add it later");
        return;
      }
      // 1. This node: the user the peer copies and replicates with (unlogged, this node's own).
      const { config } = loadConfig(CONFIG_FILE);
      await openLocalDatabase(config).ensureReplicationUser(config.db.replication.user, peerEndpoint(config).host, readPasswordFile(config.db.replication.passwordFile, "replication password"));
      // 2. The peer: overwritten with a copy of this node's database (confirmed before the plan started).
      const seeded = await session.run([MNHA, "db", "seed", "--yes", "--config", CONFIG_FILE], { what: `mnha db seed on ${settings.peerName}`, timeoutMs: 6 * 3600_000 });
      context.note(seeded.stdout.trim());
      // 3. The peer: its user for this node; 4. this node replicates from the peer.
      await session.run([MNHA, "db", "setup-replication", "--config", CONFIG_FILE], { what: `mnha db setup-replication on ${settings.peerName}` });
      const here = await localRun([MNHA, "db", "setup-replication", "--config", CONFIG_FILE]);
      if (here.code !== 0) throw new MnhaError("REMOTE_COMMAND", `mnha db setup-replication on this node failed: ${(here.stderr || here.stdout).trim().split("\n").slice(-2).join(" | ")}`, { hint: "see mnha db status; run install-ha again: it resumes here" });
      let problem: string | null = "not checked yet";
      for (let attempt = 0; attempt < 60 && problem !== null; attempt++) {
        problem = await replicatingBothWays();
        if (problem !== null) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      if (problem !== null) throw new MnhaError("DB_REPLICATION", `the databases do not replicate both ways after the seed: ${problem}`, { hint: "see mnha db status on this node; run install-ha again: it resumes here" });
      context.note("replicating both ways (Slave_IO_Running and Slave_SQL_Running Yes on both nodes)");
    },
    // The copy stays (it cannot be undone); replication between the two stops, and neither node is
    // left read-only or waiting for a semi-sync acknowledgement that no replica will send.
    rollback: async () => {
      const database = settings.database;
      if (database === undefined) return;
      const sql = "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL rpl_semi_sync_master_enabled = OFF; SET GLOBAL rpl_semi_sync_slave_enabled = OFF; SET GLOBAL read_only = OFF;";
      const argv = ["sh", "-c", PROBE_SCRIPT, "sh", database.socketFlag ?? "", sql];
      const input = optionFile(database.rootPassword);
      for (const [label, result] of [["this node", await local(argv[0] as string, argv.slice(1), { input })], [settings.peerName, await session.exec(argv, { input })]] as const) {
        if (result.code !== 0) throw new MnhaError("REMOTE_COMMAND", `stopping the replication on ${label} failed: ${result.stderr.trim().split("\n").slice(-1).join("")}`, { hint: "run STOP SLAVE; RESET SLAVE ALL there by hand, then --cleanup again" });
      }
    },
  };
}

function sshTrustStep(session: SshSession, settings: InstallSettings): PlanStep {
  const keyFile = `${SSH_DIR}/id_ed25519`;
  const marker = (node: string) => `mnha-sync-${node}`;
  const makeKey = ["sh", "-c", 'mkdir -p -m 700 "$(dirname "$1")" && { test -f "$1" || ssh-keygen -q -t ed25519 -N "" -C "$2" -f "$1"; } && cat "$1.pub"', "sh", keyFile];
  /** Appends the key to the execUser's authorized_keys unless it is there. */
  const authorize = ["sh", "-c", 'home=$(getent passwd "$1" | cut -d: -f6) && test -n "$home" && mkdir -p -m 700 "$home/.ssh" && touch "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys" && key=$(cat) && { grep -qxF "$key" "$home/.ssh/authorized_keys" || printf "%s\\n" "$key" >> "$home/.ssh/authorized_keys"; }', "sh", settings.execUser];
  const knownHost = ["sh", "-c", 'mkdir -p -m 700 "$(dirname "$1")" && line=$(cat) && touch "$1" && { grep -qxF "$line" "$1" || printf "%s\\n" "$line" >> "$1"; }', "sh", KNOWN_HOSTS_FILE];
  const tryLogin = (address: string) => ["ssh", "-i", keyFile, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${KNOWN_HOSTS_FILE}`, "-o", "ConnectTimeout=10", `${settings.execUser}@${address}`, "true"];
  return {
    name: "ssh-trust",
    title: `SSH key trust between the nodes for data sync (${keyFile}, user ${settings.execUser})`,
    check: async () => (await local("ssh", tryLogin(settings.peerAddress).slice(1), { timeoutMs: 20_000 })).code === 0 && (await session.exec(tryLogin(settings.localAddress), { timeoutMs: 20_000 })).code === 0,
    run: async () => {
      const localKey = (await mustLocal("making this node's key", makeKey[0] as string, [...makeKey.slice(1), marker(settings.nodeName)])).stdout.trim();
      const peerKey = (await session.run([...makeKey, marker(settings.peerName)], { what: "making the peer's key" })).stdout.trim();
      await session.run(authorize, { input: localKey, what: `authorizing ${settings.nodeName}'s key` });
      await mustLocal(`authorizing ${settings.peerName}'s key`, authorize[0] as string, authorize.slice(1), { input: peerKey });
      // Host keys: the peer's as this install verified it; ours as sshd here serves it (read locally, not over the network).
      const peerHostLine = `${settings.peerAddress} ${keyTypeName(session.hostKeyBlob)} ${session.hostKeyBlob.toString("base64")}`;
      await mustLocal("recording the peer's host key", knownHost[0] as string, knownHost.slice(1), { input: peerHostLine });
      const ownHostKey = (await mustLocal("reading this node's host key", "ssh-keyscan", ["-t", "ed25519", settings.localAddress], { timeoutMs: 15_000 })).stdout.split("\n").find((line) => line.startsWith(settings.localAddress));
      if (ownHostKey === undefined) throw new MnhaError("REMOTE_COMMAND", `this node's sshd did not show an ed25519 host key on ${settings.localAddress}`, { hint: "sshd must run on this node with an ed25519 host key (data sync logs in over SSH)" });
      await session.run(knownHost, { input: ownHostKey.trim(), what: "recording this node's host key on the peer" });
    },
    rollback: async () => {
      // Only the keys this step made: the authorized_keys lines marked mnha-sync-<node>, and the key files.
      const forget = ["sh", "-c", 'home=$(getent passwd "$1" | cut -d: -f6) && f="$home/.ssh/authorized_keys" && if test -f "$f"; then grep -v -e " $2$" -e " $3$" "$f" > "$f.tmp"; chmod 600 "$f.tmp"; mv -f "$f.tmp" "$f"; fi; rm -f "$4" "$4.pub"', "sh", settings.execUser, marker(settings.nodeName), marker(settings.peerName), keyFile];
      await mustLocal("removing the sync key trust", forget[0] as string, forget.slice(1));
      await session.run(forget, { what: "removing the sync key trust" });
    },
  };
}

function keyTypeName(blob: Buffer): string {
  return blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1");
}

export async function agentRunning(runner: (argv: string[]) => Promise<Result>, systemdRuns: boolean): Promise<boolean> {
  if (systemdRuns) return (await runner(["systemctl", "is-active", "--quiet", "mnha.service"])).code === 0;
  const result = await runner(["sh", "-c", 'pid=$(cat "$1" 2>/dev/null) && test -n "$pid" && tr "\\0" " " < "/proc/$pid/cmdline" | grep -q " agent "', "sh", AGENT_PID]);
  return result.code === 0;
}

export async function stopAgent(runner: (argv: string[]) => Promise<Result>, systemdRuns: boolean): Promise<void> {
  if (systemdRuns) {
    await runner(["systemctl", "disable", "--now", "mnha.service"]);
    return;
  }
  await runner(["sh", "-c", 'pid=$(cat "$1" 2>/dev/null) && kill -TERM "$pid" && for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done', "sh", AGENT_PID]);
}

/** Polls this node's agent until the pair is healthy. */
export async function waitHealthy(timeoutMs: number, socketPath = "/run/mnha/mnha.sock"): Promise<StatusReport> {
  const deadline = performance.now() + timeoutMs;
  let last = "no answer yet";
  const client = new ControlClient({ socketPath, timeoutMs: 3_000 });
  for (let attempt = 0; attempt < Math.ceil(timeoutMs / 500) + 1; attempt++) {
    try {
      const report = await client.status();
      const problem = healthProblem(report);
      if (problem === null) return report;
      last = problem;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (performance.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new MnhaError("PLAN_STEP_FAILED", `the pair did not become healthy within ${Math.round(timeoutMs / 1000)} s (last seen: ${last})`, { hint: `see mnha status and ${AGENT_LOG} on both nodes` });
}

export function healthProblem(report: StatusReport): string | null {
  if (!report.peer.connected) return "the peer is not connected";
  if (report.vipOwner === null) return `nobody holds the VIP (${[nodeSummary(report.self), nodeSummary(report.peer)].join("; ")})`;
  if (!report.self.eligible) return `this node is not eligible (${report.self.reasons.join("; ")})`;
  if ("eligible" in report.peer && report.peer.eligible === false) return `the peer is not eligible (${report.peer.reasons.join("; ")})`;
  return null;
}

/** One node as the wait shows it when nobody holds the VIP: why it does not take it. */
function nodeSummary(node: StatusReport["self"] | StatusReport["peer"]): string {
  if (!("role" in node)) return `${node.node}: not heard from`;
  const down = node.services.filter((service) => !service.healthy).map((service) => `${service.name} down${service.detail ? ` (${service.detail})` : ""}`);
  const eligibility = node.eligible ? "eligible" : `not eligible: ${node.reasons.join(", ") || "no reason given"}`;
  return [`${node.node}: ${node.role}`, eligibility, `keepalived ${node.keepalived}`, ...down].join(", ");
}
