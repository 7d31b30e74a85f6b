/**
 * `mnha upgrade-mn [--peer user@host] [-peerpass PW | --peer-password-file F | --peer-key K] [--yes] <installer.bin | DVD.iso>`:
 * upgrades the MN platform on both nodes, the standby first (upgrade/upgrade-mn-plan.ts).
 * Run it on the VIP holder. A rerun after a failure resumes at the failed step.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig, MnhaError, writeFileAtomicSync, type MnhaConfig } from "@mnha/shared";
import type { ControlClient } from "../control/control-client.js";
import { openLocalDatabase, openPeerDatabase } from "../db/index.js";
import type { MariaDbDatabase } from "../db/mariadb.js";
import { readPasswordFile } from "../db/secret-file.js";
import { FilePlanStore } from "../plan/plan-state.js";
import { renderPlanEvent, runPlan } from "../plan/step-plan.js";
import { auditPlanEvents } from "../plan/plan-audit.js";
import { KNOWN_HOSTS_FILE } from "../provision/install-ha.js";
import { KnownHostsFile } from "../provision/known-hosts.js";
import { readSecret } from "../provision/secret-input.js";
import { SshSession, type SshCredentials } from "../provision/ssh-session.js";
import { platformFiles, readSuiteInfo } from "../provision/suite-info.js";
import { inspectInstaller } from "../upgrade/installer.js";
import { realUpgradeMnActions } from "../upgrade/upgrade-mn-actions.js";
import { upgradeMnPlan } from "../upgrade/upgrade-mn-plan.js";
import { printJson, type CliIo } from "./cli-io.js";
import { askYesNo } from "./confirm.js";
import { parsePeer } from "./install.js";
import { invokingUser } from "./ops-commands.js";
import { withOperationLock } from "../ops/operation-lock.js";

export interface UpgradeMnContext {
  io: CliIo;
  state: { exitCode: number; json: boolean };
  configPath: () => string;
  client: (timeoutMs?: number) => ControlClient;
}

interface UpgradeMnFlags {
  peer?: string;
  peerpass?: string;
  peerPasswordFile?: string;
  peerKey?: string;
  knownHosts: string;
  yes?: boolean;
  json?: boolean;
  healthyTimeout: string;
  catchUpTimeout: string;
}

export function registerUpgradeMnCommand(program: Command, ctx: UpgradeMnContext): void {
  program
    .command("upgrade-mn")
    .description("upgrade the MN platform on both nodes from an installer (.bin) or DVD image (.iso): standby first, switchover, then this node; in maintenance; resumable")
    .argument("<installer>", "the platform installer (.bin) or DVD image (.iso)")
    .option("--peer <user@address[:port]>", "the SSH login on the peer (default: root@<the peer's address>)")
    .option("--peerpass <password>", "zsha2's spelling: the peer's SSH password inline (visible in ps: prefer --peer-password-file)")
    .option("--peer-password-file <file>", "read the peer's SSH password from this file (mode 0600)")
    .option("--peer-key <file>", "log in to the peer with this private key")
    .option("--known-hosts <file>", "the peer's host key must be in this file (install-ha wrote it)", KNOWN_HOSTS_FILE)
    .option("--healthy-timeout <seconds>", "how long to wait for a node's services after its installer", "600")
    .option("--catch-up-timeout <seconds>", "then how long to wait for its database to catch up (replication running, lag 0) before the VIP moves", "600")
    .option("--yes", "do not ask for the typed confirmation (zsha2: -yes)")
    .option("--json", "print the result as JSON")
    .action(async (installer: string, flags: UpgradeMnFlags) => {
      ctx.state.json = flags.json === true;
      const config = loadConfig(ctx.configPath()).config;
      await withOperationLock(config.dataDir, "upgrade-mn", () => upgradeMn(ctx, config, resolve(installer), flags));
    });
}

async function upgradeMn(ctx: UpgradeMnContext, config: MnhaConfig, installerPath: string, flags: UpgradeMnFlags): Promise<void> {
  const { io } = ctx;
  const info = await inspectInstaller(installerPath);
  const self = config.node.name;
  const peer = config.peers[0];
  if (peer === undefined) throw new MnhaError("CONFIG_INVALID", "no peer in the config", { hint: "upgrade-mn upgrades a pair" });
  const store = new FilePlanStore(join(config.dataDir, "upgrade-mn.state.json"));
  const orderFile = join(config.dataDir, "upgrade-mn.order.json");
  const resuming = store.load() !== null;
  // The order is decided once, from who held the VIP at the start; a rerun keeps it.
  let first: string;
  let second: string;
  if (resuming) {
    const order = readUpgradeOrder(orderFile, store.describe());
    if (order.version !== info.version) throw new MnhaError("PLAN_STATE", `an upgrade to platform ${order.version} is unfinished; this installer is ${info.version}`, { hint: `finish it with that installer, or remove ${store.describe()} and ${orderFile}` });
    ({ first, second } = order);
  } else {
    const status = await ctx.client(5_000).status();
    if (status.vipOwner !== self) throw new MnhaError("OPERATION_REFUSED", `run upgrade-mn on the VIP holder (${status.vipOwner ?? "nobody holds it now"}), not on ${self}`, { hint: "the holder upgrades its standby first and then hands the VIP over to it; nothing was changed" });
    if (!status.peer.connected) throw new MnhaError("OPERATION_REFUSED", `the peer ${peer.name} is not connected: the pair must be healthy before an upgrade`, { hint: "see mnha status; nothing was changed" });
    first = peer.name;
    second = self;
  }
  const login = parsePeer(flags.peer ?? `root@${peer.address}`, false);
  const credentials: SshCredentials = {};
  if (flags.peerKey !== undefined) credentials.privateKey = readFileSync(flags.peerKey);
  const password = flags.peerpass ?? (flags.peerKey !== undefined && flags.peerPasswordFile === undefined ? null : await readSecret({ ...(flags.peerPasswordFile !== undefined ? { file: flags.peerPasswordFile } : {}), envName: "MNHA_PEER_PASSWORD" }, "peer SSH password"));
  if (password !== null) credentials.password = password;
  if (flags.peerpass !== undefined) io.stderr.write("warning: -peerpass puts the password on the command line (ps, shell history); prefer --peer-password-file\n");
  const session = await SshSession.connect({ host: login.host, port: login.port, username: login.username }, credentials, { knownHosts: new KnownHostsFile(flags.knownHosts), recordNewKey: false });
  try {
    const actions = realUpgradeMnActions({
      installerPath,
      installer: info,
      self,
      peer: peer.name,
      first,
      second,
      localSuite: readSuiteInfo().suite,
      session,
      client: ctx.client,
      platformVersionFile: platformFiles().versionFile,
      by: invokingUser(io.env ?? process.env),
      healthyTimeoutMs: Number(flags.healthyTimeout) * 1000,
      databases: upgradeDatabases(config),
      catchUpTimeoutMs: seconds(flags.catchUpTimeout, "--catch-up-timeout") * 1000,
    });
    if (!resuming) {
      io.stderr.write(`This upgrades the MN platform to ${info.version} (${info.kind}) on ${first} (the standby) first, then switches the VIP over to it, then upgrades ${second}. The pair is in maintenance meanwhile.\n`);
      if (flags.yes !== true) {
        if (io.stdin === undefined || !(await askYesNo("Continue? [y/N] ", io.stdin as NodeJS.ReadableStream, io.stderr))) {
          io.stderr.write("upgrade-mn cancelled; nothing was changed\n");
          ctx.state.exitCode = 1;
          return;
        }
      }
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      writeFileAtomicSync(orderFile, JSON.stringify({ first, second, version: info.version }), { mode: 0o600 });
    } else io.stderr.write(`resuming the upgrade to platform ${info.version} recorded in ${store.describe()}\n`);
    const plan = upgradeMnPlan(actions);
    // Each step's start, finish or failure goes to the audit store through the local agent (best effort).
    const audit = auditPlanEvents(plan.name, { self, peer: peer.name }, (event) => ctx.client(3_000).planEvent(event));
    const result = await runPlan(plan, {
      store,
      onEvent: (event) => {
        io.stderr.write(renderPlanEvent(event));
        audit.onEvent(event);
      },
    }).finally(() => audit.flush());
    store.clear();
    rmSync(orderFile, { force: true });
    if (ctx.state.json) printJson(io, { ok: true, version: info.version, ...result });
    else io.stdout.write(`upgrade-mn done: ${first} and ${second} run platform ${info.version}; ${first} holds the VIP\n`);
  } finally {
    session.close();
  }
}

/**
 * The node order of an unfinished upgrade. Deleted or damaged by hand (or by a crash), it is a
 * clear error that says how to start over, not a stack trace.
 */
export function readUpgradeOrder(orderFile: string, stateDescription: string): { first: string; second: string; version: string } {
  let order: unknown;
  try {
    order = JSON.parse(readFileSync(orderFile, "utf8"));
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "is missing" : "cannot be read";
    throw new MnhaError("PLAN_STATE", `an upgrade-mn is unfinished (${stateDescription}) but its node order ${orderFile} ${why}`, {
      hint: `remove ${stateDescription} and run upgrade-mn again on the VIP holder: it starts over, and the steps already done on each node are checked, not repeated blindly`,
    });
  }
  const o = order as { first?: unknown; second?: unknown; version?: unknown };
  if (typeof o.first !== "string" || typeof o.second !== "string" || typeof o.version !== "string") {
    throw new MnhaError("PLAN_STATE", `the node order ${orderFile} of the unfinished upgrade-mn is damaged`, { hint: `remove ${stateDescription} and ${orderFile}, then run upgrade-mn again on the VIP holder` });
  }
  return { first: o.first, second: o.second, version: o.version };
}

/**
 * The pair's databases, when it has replication to wait for: mnha manages them (db.enabled) or
 * `mnha db setup-replication` ran (its password file is there). Null otherwise.
 */
function upgradeDatabases(config: MnhaConfig): { local: MariaDbDatabase; peer: MariaDbDatabase } | null {
  if (!config.db.enabled && !existsSync(config.db.replication.passwordFile)) return null;
  return { local: openLocalDatabase(config), peer: openPeerDatabase(config, readPasswordFile(config.db.replication.passwordFile, "replication password")) };
}

function seconds(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 86_400) throw new MnhaError("USAGE", `${flag} ${JSON.stringify(text)} is not a number of seconds (1-86400)`, { hint: `e.g. ${flag} 600` });
  return value;
}
