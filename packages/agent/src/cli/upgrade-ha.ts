/**
 * `mnha upgrade-ha [--peer user@host] [-peerpass PW | --peer-password-file F | --peer-key K] [--yes] <suite bundle>`:
 * upgrades the HA suite on both nodes, the standby first (upgrade/upgrade-ha-plan.ts). Run it
 * on the VIP holder. A failure rolls the failing node back; a rerun resumes at the failed step.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig, MnhaError, writeFileAtomicSync, type MnhaConfig } from "@mnha/shared";
import type { ControlClient } from "../control/control-client.js";
import { FilePlanStore } from "../plan/plan-state.js";
import { renderPlanEvent, runPlan } from "../plan/step-plan.js";
import { auditPlanEvents } from "../plan/plan-audit.js";
import { bundleName, bundleVersion, INSTALL_DIR, KNOWN_HOSTS_FILE } from "../provision/install-ha.js";
import { KnownHostsFile } from "../provision/known-hosts.js";
import { distributionKeepalivedMustStayOff } from "../keepalived/distribution-unit.js";
import { readSecret } from "../provision/secret-input.js";
import { sha256OfFile, SshSession, type SshCredentials } from "../provision/ssh-session.js";
import { compareVersions } from "../upgrade/installer.js";
import { realUpgradeHaActions } from "../upgrade/upgrade-ha-actions.js";
import { upgradeHaPlan } from "../upgrade/upgrade-ha-plan.js";
import { printJson, type CliIo } from "./cli-io.js";
import { askYesNo } from "./confirm.js";
import { parsePeer } from "./install.js";
import { withOperationLock } from "../ops/operation-lock.js";

export interface UpgradeHaContext {
  io: CliIo;
  state: { exitCode: number; json: boolean };
  configPath: () => string;
  client: (timeoutMs?: number) => ControlClient;
}

interface UpgradeHaFlags {
  peer?: string;
  peerpass?: string;
  peerPasswordFile?: string;
  peerKey?: string;
  knownHosts: string;
  rejoinTimeout: string;
  yes?: boolean;
  json?: boolean;
}

/** What an unfinished upgrade-ha keeps next to its state file: decided once, kept for the reruns. */
export interface UpgradeHaOrder {
  target: string;
  first: string;
  second: string;
  previous: Record<string, string>;
}

export function registerUpgradeHaCommand(program: Command, ctx: UpgradeHaContext): void {
  program
    .command("upgrade-ha")
    .description("upgrade the HA suite on both nodes from a suite bundle: the standby first, switchover, then this node; a failing node is rolled back; resumable")
    .argument("<bundle>", "the suite bundle (mnha-suite-<version>-linux-x64.tar.gz; a <bundle>.sha256 next to it is checked)")
    .option("--peer <user@address[:port]>", "the SSH login on the peer (default: root@<the peer's address>)")
    .option("--peerpass <password>", "zsha2's spelling: the peer's SSH password inline (visible in ps: prefer --peer-password-file)")
    .option("--peer-password-file <file>", "read the peer's SSH password from this file (mode 0600)")
    .option("--peer-key <file>", "log in to the peer with this private key")
    .option("--known-hosts <file>", "the peer's host key must be in this file (install-ha wrote it)", KNOWN_HOSTS_FILE)
    .option("--rejoin-timeout <seconds>", "how long a restarted agent has to rejoin the pair before its node is rolled back", "120")
    .option("--yes", "do not ask for the confirmation (zsha2: -yes)")
    .option("--json", "print the result as JSON")
    .action(async (bundle: string, flags: UpgradeHaFlags) => {
      ctx.state.json = flags.json === true;
      const config = loadConfig(ctx.configPath()).config;
      await withOperationLock(config.dataDir, "upgrade-ha", () => upgradeHa(ctx, config, resolve(bundle), flags));
    });
}

async function upgradeHa(ctx: UpgradeHaContext, config: MnhaConfig, bundlePath: string, flags: UpgradeHaFlags): Promise<void> {
  const { io } = ctx;
  const name = bundleName(bundlePath);
  const target = bundleVersion(bundlePath);
  const rejoinSeconds = Number(flags.rejoinTimeout);
  if (!Number.isFinite(rejoinSeconds) || rejoinSeconds < 10 || rejoinSeconds > 3600) throw new MnhaError("USAGE", `--rejoin-timeout ${flags.rejoinTimeout}: seconds from 10 to 3600`, { hint: "e.g. --rejoin-timeout 120" });
  if (!existsSync(bundlePath)) throw new MnhaError("USAGE", `the bundle ${bundlePath} does not exist`, { hint: "pass the suite bundle built by scripts/bundle.sh" });
  const sha256 = await sha256OfFile(bundlePath);
  const sumFile = `${bundlePath}.sha256`;
  if (existsSync(sumFile)) {
    const expected = readFileSync(sumFile, "utf8").trim().split(/\s+/)[0] ?? "";
    if (expected !== sha256) throw new MnhaError("UPLOAD_VERIFY", `the bundle ${bundlePath} does not match ${sumFile} (SHA-256 ${sha256.slice(0, 16)}…, expected ${expected.slice(0, 16)}…)`, { hint: "the bundle is damaged or not the one its checksum names: copy it again; nothing was changed" });
  }
  const self = config.node.name;
  const peer = config.peers[0];
  if (peer === undefined) throw new MnhaError("CONFIG_INVALID", "no peer in the config", { hint: "upgrade-ha upgrades a pair" });
  const store = new FilePlanStore(join(config.dataDir, "upgrade-ha.state.json"));
  const orderFile = join(config.dataDir, "upgrade-ha.order.json");
  const resuming = store.load() !== null;
  let order: UpgradeHaOrder | null = null;
  if (resuming) {
    order = readUpgradeHaOrder(orderFile, store.describe());
    if (order.target !== target) throw new MnhaError("PLAN_STATE", `an upgrade to suite ${order.target} is unfinished; this bundle is ${target}`, { hint: `finish it with that bundle, or remove ${store.describe()} and ${orderFile}` });
  } else {
    const status = await ctx.client(5_000).status();
    if (status.vipOwner !== self) throw new MnhaError("OPERATION_REFUSED", `run upgrade-ha on the VIP holder (${status.vipOwner ?? "nobody holds it now"}), not on ${self}`, { hint: "the holder upgrades its standby first and then hands the VIP over to it; nothing was changed" });
    if (!status.peer.connected) throw new MnhaError("OPERATION_REFUSED", `the peer ${peer.name} is not connected: the pair must be healthy before an upgrade`, { hint: "see mnha status; nothing was changed" });
  }

  const login = parsePeer(flags.peer ?? `root@${peer.address}`, false);
  const credentials: SshCredentials = {};
  if (flags.peerKey !== undefined) credentials.privateKey = readFileSync(flags.peerKey);
  const password = flags.peerpass ?? (flags.peerKey !== undefined && flags.peerPasswordFile === undefined ? null : await readSecret({ ...(flags.peerPasswordFile !== undefined ? { file: flags.peerPasswordFile } : {}), envName: "MNHA_PEER_PASSWORD" }, "peer SSH password"));
  if (password !== null) credentials.password = password;
  if (flags.peerpass !== undefined) io.stderr.write("warning: -peerpass puts the password on the command line (ps, shell history); prefer --peer-password-file\n");
  const session = await SshSession.connect({ host: login.host, port: login.port, username: login.username }, credentials, { knownHosts: new KnownHostsFile(flags.knownHosts), recordNewKey: false });
  try {
    const options = {
      bundlePath,
      bundleName: name,
      bundleSha256: sha256,
      target,
      self,
      peer: peer.name,
      session,
      client: ctx.client,
      rejoinTimeoutMs: rejoinSeconds * 1000,
      readyTimeoutMs: 30_000,
      keepDistributionKeepalivedOff: distributionKeepalivedMustStayOff(config),
    };
    if (order === null) {
      // Probe both nodes with the real actions (the order does not matter for reading).
      const probe = realUpgradeHaActions({ ...options, first: peer.name, second: self, previous: {} });
      const previous: Record<string, string> = {};
      for (const node of [self, peer.name]) {
        const installed = await probe.installedSuite(node);
        if (installed === null) throw new MnhaError("OPERATION_REFUSED", `${node} has no suite installed in ${INSTALL_DIR} (no ${INSTALL_DIR}/current/VERSION)`, { hint: "upgrade-ha upgrades a pair that install-ha installed; nothing was changed" });
        previous[node] = installed;
      }
      const agents = await Promise.all([self, peer.name].map((node) => probe.runningAgent(node)));
      if (Object.values(previous).every((v) => v === target) && agents.every((agent) => agent?.version === target)) {
        if (ctx.state.json) printJson(io, { ok: true, version: target, ran: [], skipped: [], alreadyDone: true });
        else io.stdout.write(`upgrade-ha: ${self} and ${peer.name} already run suite ${target}; nothing to do\n`);
        return;
      }
      for (const [node, version] of Object.entries(previous)) {
        if (version !== target && compareVersions(target, version) < 0) throw new MnhaError("OPERATION_REFUSED", `the bundle is suite ${target}, older than the ${version} on ${node}: upgrade-ha does not downgrade`, { hint: `a failed upgrade is rolled back by upgrade-ha itself; to go back by hand run ${INSTALL_DIR}/releases/<version>/install.sh on each node; nothing was changed` });
      }
      order = { target, first: peer.name, second: self, previous };
      io.stderr.write(`This upgrades the HA suite to ${target} on ${order.first} (the standby; now ${previous[order.first]}) first, then hands the VIP over to it, then upgrades ${order.second} (now ${previous[order.second]}). A node that fails is rolled back to its suite.\n`);
      if (flags.yes !== true) {
        if (io.stdin === undefined || !(await askYesNo("Continue? [y/N] ", io.stdin as NodeJS.ReadableStream, io.stderr))) {
          io.stderr.write("upgrade-ha cancelled; nothing was changed\n");
          ctx.state.exitCode = 1;
          return;
        }
      }
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      writeFileAtomicSync(orderFile, JSON.stringify(order), { mode: 0o600 });
    } else io.stderr.write(`resuming the upgrade to suite ${target} recorded in ${store.describe()}\n`);

    const actions = realUpgradeHaActions({ ...options, first: order.first, second: order.second, previous: order.previous });
    const plan = upgradeHaPlan(actions);
    // Each step's start, finish or failure goes to the audit store through the local agent (best effort: it restarts on the way).
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
    if (ctx.state.json) printJson(io, { ok: true, version: target, ...result });
    else io.stdout.write(`upgrade-ha done: ${order.first} and ${order.second} run suite ${target}; ${order.first} holds the VIP\n`);
  } finally {
    session.close();
  }
}

/** The order of an unfinished upgrade-ha; missing or damaged, it is a clear error saying how to start over. */
export function readUpgradeHaOrder(orderFile: string, stateDescription: string): UpgradeHaOrder {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(orderFile, "utf8"));
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "is missing" : "cannot be read";
    throw new MnhaError("PLAN_STATE", `an upgrade-ha is unfinished (${stateDescription}) but its node order ${orderFile} ${why}`, {
      hint: `remove ${stateDescription} and run upgrade-ha again on the VIP holder: the steps already done on each node are checked, not repeated`,
    });
  }
  const o = parsed as Partial<UpgradeHaOrder> | null;
  const previous = o?.previous;
  if (typeof o?.target !== "string" || typeof o.first !== "string" || typeof o.second !== "string" || typeof previous !== "object" || previous === null || !Object.values(previous).every((v) => typeof v === "string")) {
    throw new MnhaError("PLAN_STATE", `the node order ${orderFile} of the unfinished upgrade-ha is damaged`, { hint: `remove ${stateDescription} and ${orderFile}, then run upgrade-ha again on the VIP holder` });
  }
  return { target: o.target, first: o.first, second: o.second, previous: previous as Record<string, string> };
}
