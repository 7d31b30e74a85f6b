/**
 * `mnha preflight` and `mnha install-ha` (zsha2: install-ha -nic … -gateway … -vip …
 * -slave user:password@ip …): installing the pair from one MN over SSH. The work itself is
 * in provision/; this file parses flags and renders.
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { MnhaError } from "@mnha/shared";
import { printJson, type CliIo } from "./cli-io.js";
import { renderStatus } from "./render-status.js";
import { FilePlanStore } from "../plan/plan-state.js";
import { renderPlanEvent, rollbackPlan, runPlan } from "../plan/step-plan.js";
import { AGENT_RUNTIME_DIR, bundleName, installPlan, KNOWN_HOSTS_FILE, nodeConfigText, preflightBoth, STAGE_DIR, STATE_FILE, waitHealthy, type InstallSettings } from "../provision/install-ha.js";
import { databaseRows, overwriteNotice, probeDatabases, type DatabaseProbes } from "../provision/database-probe.js";
import type { Plan } from "../plan/step-plan.js";
import { askLine } from "./confirm.js";
import { KnownHostsFile } from "../provision/known-hosts.js";
import { runLocalPreflight, type PreflightOptions } from "../provision/preflight.js";
import { readSecret, readSecretFile } from "../provision/secret-input.js";
import { SshSession, type SshCredentials } from "../provision/ssh-session.js";
import { platformFiles, readSuiteInfo } from "../provision/suite-info.js";
import { acquireOperationLock } from "../ops/operation-lock.js";

export const DEFAULT_PEER_PORT = 7946;
export const DEFAULT_METRICS_PORT = 9746;

interface RunState {
  exitCode: number;
  json: boolean;
}

export interface PreflightFlags {
  nic: string;
  vip: string;
  gateway: string;
  peerPort: number;
  metricsPort: number;
  minCpus: number;
  minMemoryGb: number;
  platformVersionFile?: string;
  licenseFile?: string;
  timeServer?: string;
}

/** "10.0.0.100" or "10.0.0.100/24"; the prefix defaults to the NIC's own. */
export function parseVip(value: string): { address: string; prefix: number | null } {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(value);
  if (!match || (match[2] !== undefined && Number(match[2]) > 32)) throw new InvalidArgumentError(`expected an IPv4 address such as 10.0.0.100 or 10.0.0.100/24, got ${JSON.stringify(value)}.`);
  return { address: match[1] as string, prefix: match[2] === undefined ? null : Number(match[2]) };
}

function ipv4(flag: string): (value: string) => string {
  return (value) => {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.split(".").some((p) => Number(p) > 255)) throw new InvalidArgumentError(`${flag} takes an IPv4 address, got ${JSON.stringify(value)}.`);
    return value;
  };
}

function number(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`${flag} takes a number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    return parsed;
  };
}

/** The flags both preflight and install-ha take. */
export function addPreflightFlags(command: Command): Command {
  return command
    .requiredOption("--nic <name>", "the NIC (bridge) that carries the VIP (zsha2: -nic)")
    .requiredOption("--vip <address[/prefix]>", "the VIP (zsha2: -vip); the prefix defaults to the NIC's", (value: string) => (parseVip(value), value))
    .requiredOption("--gateway <address>", "the management network's gateway (zsha2: -gateway)", ipv4("--gateway"))
    .option("--peer-port <port>", "the peer-link port", number("--peer-port", 1, 65535), DEFAULT_PEER_PORT)
    .option("--metrics-port <port>", "the metrics port", number("--metrics-port", 1, 65535), DEFAULT_METRICS_PORT)
    .option("--min-cpus <n>", "fail with fewer CPUs than this", number("--min-cpus", 1, 4096), 8)
    .option("--min-memory-gb <n>", "fail with less memory than this (GB)", number("--min-memory-gb", 0, 65536), 12)
    .option("--platform-version-file <file>", "where the platform's version is (env MNHA_PLATFORM_VERSION_FILE)")
    .option("--license-file <file>", "where the platform's license type is (env MNHA_LICENSE_FILE)")
    .option("--time-server <address>", "the NTP server both MNs follow (zsha2: -time-server): each node's clock is checked against it (fails beyond 500 ms); recorded in the config", ipv4("--time-server"));
}

export function preflightOptions(flags: PreflightFlags, env: Record<string, string | undefined>, vipPrefix: number): PreflightOptions {
  const vip = parseVip(flags.vip);
  return {
    nic: flags.nic,
    vipAddress: vip.address,
    vipPrefix: vip.prefix ?? vipPrefix,
    gateway: flags.gateway,
    peerPort: flags.peerPort,
    metricsPort: flags.metricsPort,
    minCpus: flags.minCpus,
    minMemoryGb: flags.minMemoryGb,
    platform: platformFiles(env, { ...(flags.platformVersionFile ? { versionFile: flags.platformVersionFile } : {}), ...(flags.licenseFile ? { licenseFile: flags.licenseFile } : {}) }),
    ...(flags.timeServer !== undefined ? { timeServer: flags.timeServer } : {}),
  };
}

/** Adds preflight and install-ha to the program. */
export function registerInstallCommands(program: Command, io: CliIo, state: RunState): void {
  const env = io.env ?? process.env;
  addPreflightFlags(program.command("preflight").description("check this node for an HA install (install-ha runs it on both nodes and compares them)"))
    .option("--json", "print the checks as JSON (zsha2: -json)")
    .action(async (flags: PreflightFlags & { json?: boolean }) => {
      state.json = flags.json === true;
      const report = await runLocalPreflight(preflightOptions(flags, env, parseVip(flags.vip).prefix ?? 24));
      if (state.json) printJson(io, report);
      else {
        for (const check of report.checks) io.stdout.write(`${check.status.toUpperCase().padEnd(4)}  ${check.title}: ${check.value}${check.fix ? `\n      fix: ${check.fix}` : ""}\n`);
      }
      if (report.checks.some((check) => check.status === "fail")) state.exitCode = 1;
    });

  addPreflightFlags(program.command("install-ha").description("install the HA pair from this node: preflight on both, then install, configure and start both agents over SSH"))
    .option("--peer <user@address[:port]>", "the peer MN and the SSH login (zsha2's execUser) to use there")
    .option("--slave <user:password@address>", "zsha2's spelling of --peer with the password inline (visible in ps and shell history: prefer --peer-password-file)")
    .option("--peer-password-file <file>", "read the peer's SSH password from this file (mode 0600)")
    .option("--peer-key <file>", "log in to the peer with this private key instead of a password")
    .option("--peer-host-key <SHA256:...>", "with --yes: the peer's host key fingerprint to trust when it is not in known_hosts")
    .option("--known-hosts <file>", "the known_hosts file for the peer's host key", KNOWN_HOSTS_FILE)
    .option("--bundle <file>", "the suite bundle (mnha-suite-<version>-linux-x64.tar.gz); default: the one this suite was unpacked from")
    .option("--node-name <name>", "this node's name in the pair (default: from its address)")
    .option("--peer-name <name>", "the peer's name in the pair (default: from its address)")
    .option("--peerpass <password>", "zsha2's spelling: the peer's SSH password inline (visible in ps and shell history: prefer --peer-password-file or the prompt)")
    .option("--db-root-pw <password>", "zsha2: the MariaDB root password of both MNs (visible in ps: prefer --db-root-pw-file or MNHA_DB_ROOT_PASSWORD); given, mnha manages the database: the peer's is seeded from this node's and both replicate")
    .option("--db-root-pw-file <file>", "read the MariaDB root password from this file (mode 0600)")
    .option("--db-socket <path>", "the MariaDB socket on both nodes (default: the socket the running mariadbd listens on, found on each node)")
    .option("--sync-dir <dir>", "a directory kept in step from the VIP holder to the standby (monitoring data, e.g. Prometheus); repeat for more", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--sync-schedule <cron>", "when the holder syncs the --sync-dir directories (cron; also right after each switchover)", "*/5 * * * *")
    .option("--healthy-timeout <seconds>", "how long to wait for a healthy pair", number("--healthy-timeout", 5, 3600), 120)
    .option("--cleanup", "undo what an earlier, unfinished install-ha did (newest step first)")
    .option("--yes", "do not ask (zsha2: -yes); an unknown peer host key still needs --peer-host-key")
    .action(async (flags: InstallFlags) => {
      await installHaCommand(flags, io, state);
    });

  program
    .command("run-detached-agent", { hidden: true })
    .description("start the agent in the background with a pid file and a log (where systemd is not PID 1)")
    .requiredOption("--agent-config <file>", "the agent's config")
    .requiredOption("--log-file <file>", "the agent's log")
    .requiredOption("--pid-file <file>", "the agent's pid file")
    .action(async (flags: { agentConfig: string; logFile: string; pidFile: string }) => {
      io.stdout.write(`${await startDetachedAgent({ config: flags.agentConfig, logFile: flags.logFile, pidFile: flags.pidFile })}\n`);
    });
}

interface InstallFlags extends PreflightFlags {
  peer?: string;
  slave?: string;
  peerPasswordFile?: string;
  peerKey?: string;
  peerHostKey?: string;
  knownHosts: string;
  bundle?: string;
  nodeName?: string;
  peerName?: string;
  peerpass?: string;
  dbRootPw?: string;
  dbRootPwFile?: string;
  dbSocket?: string;
  syncDir: string[];
  syncSchedule: string;
  healthyTimeout: number;
  cleanup?: boolean;
  yes?: boolean;
}

interface PeerLogin {
  username: string;
  host: string;
  port: number;
  password?: string;
}

/** "user@host[:port]" (--peer) or "user:password@host" (zsha2's -slave). */
export function parsePeer(value: string, withPassword: boolean): PeerLogin {
  const at = value.lastIndexOf("@");
  if (at <= 0) throw new MnhaError("USAGE", `${withPassword ? "-slave" : "--peer"} takes ${withPassword ? "user:password@address" : "user@address"}, got something else`, { hint: withPassword ? "e.g. -slave root:PASSWORD@10.0.0.12 (or --peer root@10.0.0.12 --peer-password-file FILE)" : "e.g. --peer root@10.0.0.12" });
  let user = value.slice(0, at);
  let password: string | undefined;
  if (withPassword) {
    const colon = user.indexOf(":");
    if (colon <= 0) throw new MnhaError("USAGE", "-slave takes user:password@address, and the password is missing", { hint: "e.g. -slave root:PASSWORD@10.0.0.12, or --peer root@10.0.0.12 --peer-password-file FILE" });
    password = user.slice(colon + 1);
    user = user.slice(0, colon);
  }
  const hostPort = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(value.slice(at + 1));
  if (!hostPort || !/^[a-z_][a-z0-9_.-]{0,31}$/i.test(user)) throw new MnhaError("USAGE", `the peer must be user@IPv4-address[:port]`, { hint: "e.g. --peer root@10.0.0.12" });
  return { username: user, host: hostPort[1] as string, port: hostPort[2] === undefined ? 22 : Number(hostPort[2]), ...(password === undefined ? {} : { password }) };
}

/** The NIC's own IPv4 address and prefix (not the VIP). */
function nicAddress(nic: string, vip: string): { address: string; prefix: number } {
  let parsed: { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  try {
    parsed = JSON.parse(execFileSync("ip", ["-j", "-4", "addr", "show", "dev", nic], { encoding: "utf8" })) as typeof parsed;
  } catch {
    throw new MnhaError("USAGE", `there is no interface ${nic} on this node`, { hint: "check the name with `ip -br addr` and pass the right --nic (zsha2: -nic)" });
  }
  const found = (parsed[0]?.addr_info ?? []).find((a) => a.family === "inet" && a.local !== vip);
  if (!found) throw new MnhaError("USAGE", `${nic} has no IPv4 address`, { hint: `give ${nic} this MN's static management address first` });
  return { address: found.local, prefix: found.prefixlen };
}

function defaultBundle(): string | null {
  const suite = readSuiteInfo();
  if (!suite.bundled) return null;
  // dist/cli -> app -> the unpacked suite -> the directory the bundle was unpacked in
  const suiteRoot = fileURLToPath(new URL("../../../", import.meta.url));
  const candidate = `${dirname(suiteRoot)}/mnha-suite-${suite.suite}-linux-x64.tar.gz`;
  return existsSync(candidate) ? candidate : null;
}

async function installHaCommand(flags: InstallFlags, io: CliIo, state: RunState): Promise<void> {
  const env = io.env ?? process.env;
  const name = "install-ha";
  if ((flags.peer === undefined) === (flags.slave === undefined)) throw new MnhaError("USAGE", "install-ha needs the peer: --peer user@address (or zsha2's -slave user:password@address)", { hint: "e.g. mnha install-ha --nic br_eth0 --vip 10.0.0.100 --gateway 10.0.0.1 --peer root@10.0.0.12 --peer-password-file /root/peer.pw" });
  const login = parsePeer((flags.peer ?? flags.slave) as string, flags.slave !== undefined);
  const inline = inlinePasswordFlags(flags);
  if (inline.length > 0) {
    // Overwrites the command line Linux shows in ps (Node writes process.title over argv).
    process.title = `mnha ${name}`;
    io.stderr.write(`${name}: warning: ${inline.join(" and ")} put a password on the command line, where ps and the shell history can see it; prefer the prompt, --peer-password-file / MNHA_PEER_PASSWORD and --db-root-pw-file / MNHA_DB_ROOT_PASSWORD\n`);
  }
  checkPasswordSources(flags, login);
  if (flags.dbSocket !== undefined && !/^\/[A-Za-z0-9._/+-]+$/.test(flags.dbSocket)) throw new MnhaError("USAGE", `--db-socket takes an absolute path, got ${JSON.stringify(flags.dbSocket)}`, { hint: "e.g. --db-socket /run/mysqld/mysqld.sock" });
  for (const dir of flags.syncDir) {
    if (!/^\/[A-Za-z0-9._/+-]+$/.test(dir) || dir.split("/").includes("..") || dir.replace(/\/+$/, "") === "") throw new MnhaError("USAGE", `--sync-dir takes an absolute directory (letters, digits, ._/+-), got ${JSON.stringify(dir)}`, { hint: "e.g. --sync-dir /var/lib/zstack/prometheus" });
  }

  const vip = parseVip(flags.vip);
  const nic = nicAddress(flags.nic, vip.address);
  const preflight = preflightOptions(flags, env, nic.prefix);
  const bundlePath = flags.bundle ?? defaultBundle();
  if (bundlePath === null) throw new MnhaError("USAGE", "which suite bundle should be installed? none was found next to this suite", { hint: "pass --bundle /path/to/mnha-suite-<version>-linux-x64.tar.gz" });
  if (!existsSync(bundlePath) || !statSync(bundlePath).isFile()) throw new MnhaError("USAGE", `the bundle ${bundlePath} does not exist`, { hint: "pass --bundle with the path of the suite bundle on this node" });
  bundleName(bundlePath);
  const dbRootPassword = flags.dbRootPw ?? (flags.dbRootPwFile !== undefined ? readSecretFile(flags.dbRootPwFile, "MariaDB root password") : env["MNHA_DB_ROOT_PASSWORD"] || null);

  const credentials: SshCredentials = {};
  if (flags.peerKey !== undefined) credentials.privateKey = readFileSync(flags.peerKey);
  const password =
    login.password ??
    flags.peerpass ??
    (flags.peerKey !== undefined && flags.peerPasswordFile === undefined
      ? null
      : await readSecret(
          {
            ...(flags.peerPasswordFile !== undefined ? { file: flags.peerPasswordFile } : {}),
            envName: "MNHA_PEER_PASSWORD",
            env,
            ...(io.stdin ? { prompt: { question: `SSH password for ${login.username}@${login.host}: `, input: io.stdin as never, output: io.stderr } } : {}),
          },
          "peer SSH password",
        ));
  if (password !== null) credentials.password = password;

  const settings: InstallSettings = {
    preflight,
    localAddress: nic.address,
    nodeName: flags.nodeName ?? `mn-${nic.address.replace(/\./g, "-")}`,
    peerName: flags.peerName ?? `mn-${login.host.replace(/\./g, "-")}`,
    peerAddress: login.host,
    execUser: login.username,
    bundlePath,
    ...(flags.timeServer !== undefined ? { timeServer: flags.timeServer } : {}),
    ...(dbRootPassword !== null ? { database: { rootPassword: dbRootPassword, socketFlag: flags.dbSocket ?? null } } : {}),
    dataSync: { dirs: flags.syncDir, schedule: flags.syncSchedule },
    healthyTimeoutMs: flags.healthyTimeout * 1000,
  };
  // Every config field is checked now, before any connection (a typo in --sync-schedule stops here).
  nodeConfigText(settings, "local");
  nodeConfigText(settings, "peer");

  // One long operation at a time, taken once the input is known good. In /run/mnha (a tmpfs,
  // the agent's runtime directory): the node has no config, so no dataDir, before the install,
  // and an install refused at its checks must leave nothing behind on disk.
  const operationLock = acquireOperationLock(AGENT_RUNTIME_DIR, name, { createDir: true });
  try {
    await installLocked(flags, io, state, { login, credentials, settings });
  } finally {
    operationLock.release();
  }
}

async function installLocked(
  flags: InstallFlags,
  io: CliIo,
  state: RunState,
  input: { login: ReturnType<typeof parsePeer>; credentials: SshCredentials; settings: InstallSettings },
): Promise<void> {
  const { login, credentials, settings } = input;
  const name = "install-ha";
  const knownHosts = new KnownHostsFile(flags.knownHosts);
  const interactive = io.stdin?.isTTY === true;
  const session = await SshSession.connect({ host: login.host, port: login.port, username: login.username }, credentials, {
    knownHosts,
    recordNewKey: false,
    ...(flags.yes === true && flags.peerHostKey !== undefined ? { acceptFingerprint: flags.peerHostKey } : {}),
    ...(interactive && flags.yes !== true
      ? {
          confirmUnknown: async (question) => {
            io.stderr.write(`The peer ${question.host} is not in ${flags.knownHosts}.\nIts ${question.keyType} host key fingerprint is ${question.fingerprint}.\nCompare it with the peer's own (on its console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).\n`);
            const { askYesNo } = await import("./confirm.js");
            return askYesNo("Trust this key and continue? [y/N] ", io.stdin as NodeJS.ReadableStream, io.stderr);
          },
        }
      : {}),
  });
  try {
    const store = new FilePlanStore(STATE_FILE);
    const plan = installPlan(session, settings, io.stdout);
    const onEvent = (event: Parameters<typeof renderPlanEvent>[0]) => void io.stdout.write(renderPlanEvent(event));
    if (flags.cleanup === true) {
      const undone = await rollbackPlan(plan, { store, onEvent });
      await removeStages(session);
      io.stdout.write(`${name} --cleanup: ${undone.length} step(s) undone; the installed suite in /opt/mnha stays (remove it by hand if unwanted)\n`);
      return;
    }
    let databases: DatabaseProbes | undefined;
    if (store.load() === null) {
      databases = (await preflightBoth(session, settings, io.stdout)).databases;
      io.stdout.write("preflight passed on both nodes\n");
    } else {
      io.stdout.write(`resuming the install recorded in ${STATE_FILE} (preflight passed in the earlier run)\n`);
      if (settings.database) {
        databases = await probeDatabases(session, settings.database);
        const failed = databaseRows(databases, [settings.nodeName, settings.peerName]).filter((row) => row.status === "fail");
        if (failed.length > 0) throw new MnhaError("PREFLIGHT_FAILED", `the database check failed (${failed.map((row) => row.title).join("; ")})`, { hint: failed.map((row) => row.fix).join("; ") });
      }
    }
    if (databases !== undefined && !(await seedDone(plan))) {
      const confirmed = await confirmSeed(databases, settings, flags.yes === true, io);
      if (!confirmed) {
        if (store.load() === null) await removeStages(session);
        throw new MnhaError("OPERATION_REFUSED", `install-ha cancelled before anything changed: the overwrite of ${settings.peerName}'s database was not confirmed`, { hint: `run it again and type ${settings.peerName} when asked (or pass -yes)` });
      }
    }
    session.recordHostKey();
    await runPlan(plan, { store, onEvent });
    const report = await waitHealthy(settings.healthyTimeoutMs);
    await removeStages(session); // the unpacked suite is installed on both now
    io.stdout.write(`\nThe pair is installed and healthy:\n${renderStatus(report)}`);
    state.exitCode = 0;
  } finally {
    session.close();
  }
}

/** -slave user:PASSWORD@ip, -peerpass and -db-root-pw: passwords in argv. */
export function inlinePasswordFlags(flags: Pick<InstallFlags, "slave" | "peerpass" | "dbRootPw">): string[] {
  return [flags.slave !== undefined ? "-slave" : null, flags.peerpass !== undefined ? "-peerpass" : null, flags.dbRootPw !== undefined ? "-db-root-pw" : null].filter((f): f is string => f !== null);
}

/** One source per password: two are a mistake the operator must see, not a silent pick. */
export function checkPasswordSources(flags: Pick<InstallFlags, "peerpass" | "peerPasswordFile" | "dbRootPw" | "dbRootPwFile">, login: { password?: string }): void {
  const peerSources = [login.password !== undefined ? "-slave user:password@ip" : null, flags.peerpass !== undefined ? "-peerpass" : null, flags.peerPasswordFile !== undefined ? "--peer-password-file" : null].filter((f): f is string => f !== null);
  if (peerSources.length > 1) throw new MnhaError("USAGE", `the peer's SSH password is given twice (${peerSources.join(", ")})`, { hint: "give it once; best --peer-password-file FILE (0600) or at the prompt" });
  if (flags.dbRootPw !== undefined && flags.dbRootPwFile !== undefined) throw new MnhaError("USAGE", "the MariaDB root password is given twice (-db-root-pw and --db-root-pw-file)", { hint: "give it once; best --db-root-pw-file FILE (0600)" });
}

async function seedDone(plan: Plan): Promise<boolean> {
  const step = plan.steps.find((s) => s.name === "db-seed");
  return step?.check !== undefined && (await step.check({ note: () => undefined }).catch(() => false));
}

/** The typed confirmation that names what the seed overwrites; with -yes the notice is printed and not asked. */
async function confirmSeed(databases: DatabaseProbes, settings: InstallSettings, yes: boolean, io: CliIo): Promise<boolean> {
  io.stderr.write(overwriteNotice(databases, { local: settings.nodeName, peer: settings.peerName, peerAddress: settings.peerAddress }));
  if (yes) return true;
  const answer = await askLine(`Type the name of the peer (${settings.peerName}) to overwrite its database: `, io.stdin, io.stderr);
  return answer.trim() === settings.peerName;
}

async function removeStages(session: SshSession): Promise<void> {
  rmSync(STAGE_DIR, { recursive: true, force: true });
  await session.exec(["rm", "-rf", "--", STAGE_DIR]);
}

/** Starts `mnha agent` detached (own session, stdio to the log), writes its pid, waits for its control socket. */
export async function startDetachedAgent(flags: { config: string; logFile: string; pidFile: string }): Promise<string> {
  const mainJs = fileURLToPath(new URL("./main.js", import.meta.url));
  mkdirSync(dirname(flags.logFile), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(flags.pidFile), { recursive: true, mode: 0o700 });
  const log = openSync(flags.logFile, "a", 0o600);
  const child = spawn(process.execPath, [mainJs, "agent", "--config", flags.config], { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new MnhaError("INTERNAL", "the agent could not be started", { hint: `see ${flags.logFile}` });
  writeFileSync(flags.pidFile, `${child.pid}\n`, { mode: 0o600 });
  // Ready means: the process lives and its control API answers (a socket alone can outlive a failed start).
  const { ControlClient } = await import("../control/control-client.js");
  const { loadConfig } = await import("@mnha/shared");
  const client = new ControlClient({ socketPath: loadConfig(flags.config).config.controlSocket, timeoutMs: 1_000 });
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      process.kill(child.pid, 0);
    } catch {
      throw new MnhaError("INTERNAL", `the agent exited at start: ${readFileSync(flags.logFile, "utf8").trim().split("\n").slice(-1).join("").slice(0, 600)}`, { hint: `see ${flags.logFile}` });
    }
    try {
      await client.status();
      return `agent started (pid ${child.pid}, log ${flags.logFile})`;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  throw new MnhaError("INTERNAL", `the agent (pid ${child.pid}) did not answer on its control socket within 30 s`, { hint: `see ${flags.logFile}` });
}
