/**
 * The lab: two MNs, a gateway and a client as network namespaces on one bridge, with
 * stand-in MN/UI services, a real MariaDB (mariadb.ts) and a real mnha agent (which runs real Keepalived) on each MN.
 * Every verb of `pnpm lab` and every step of the e2e tests is a method here. State lives in
 * the namespaces and in LAB_STATE_DIR, so separate CLI runs can drive the same lab.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { MnhaError, silentLogger, type Logger } from "@mnha/shared";
import type { StatusReport } from "../../packages/agent/src/contracts.js";
import { arpProbe } from "./arp-probe.js";
import { arpingPath, newSecret, standinArgv, writeNodeConfig, type ConfigOverrides } from "./config-writer.js";
import {
  AGENT_MAIN,
  AGENT_ENV,
  AGENT_NODE_FLAGS,
  CLIENT_STATE_DIR,
  HOST_INTERFACE,
  HOSTS,
  LAB_STATE_DIR,
  MN_NODES,
  STANDIN_SCRIPT,
  STANDIN_SERVICES,
  nodeOfMac,
  nodePaths,
  peerOf,
  type MnNode,
  type ServiceName,
  type StandinSpec,
} from "./constants.js";
import { run, runIn, sleep, waitFor, monoNow, type CommandResult } from "./exec.js";
import { clearNodeFaults, cutGateway, cutPeerLink, dropPeerTrafficFrom, healGateway, healPeerLink, nodeFaults, type NodeFaults } from "./faults.js";
import { launchDetached } from "./launch.mjs";
import { isAlive, killTogether, listeningTcpPorts, namespacePids, parentPid, processState, readCmdline, readComm, readPidFile, signal, waitGone, waitReaped } from "./procfs.js";
import { ClientSampler } from "./sampler.js";
import { MARIADB_INSTALL_DB, MARIADBD, initMariaDb, killMariaDb, mariaDbPids, startMariaDb } from "./mariadb.js";
import { setUpSshd } from "./sshd.js";
import { labNamespacesPresent, tearDownLab, type TeardownReport } from "./teardown.js";
import { createTopology, hostLinkUp, resetHostInterface, setHostLink, vipHolders } from "./topology.js";

export type AgentStartOrder = "sequential" | "together" | number;

export interface LabOptions {
  logger?: Logger;
  /** Changes to the generated agent configs (e.g. no restore). */
  config?: ConfigOverrides;
  /**
   * How `up` starts the agents: "sequential" (mn1, and once it holds the VIP, mn2: the
   * holder is predictable), "together", or a delay in ms between mn1 and mn2.
   */
  agentStart?: AgentStartOrder;
  /** Bound for "exactly one holder, both agents agree" after up/reset (ms). */
  stableTimeoutMs?: number;
  /** Real sshd and an own filesystem view on each MN, and the lab's execUser (test/lab/sshd.ts). */
  sshd?: boolean;
  /** Each MN a systemd machine, systemd as its PID 1, with the lab's sshd as one of its services (test/lab/systemd-node.sh). Implies sshd. */
  systemd?: boolean;
  /** Extra Node.js flags for the agents (e.g. `--cpu-prof`), after AGENT_NODE_FLAGS. */
  agentNodeArgs?: readonly string[];
}

export interface UpOptions {
  /** Tear down a lab that is already (partly) up first. */
  fresh?: boolean;
  /** false: topology and stand-ins only (no agents), e.g. to try plain keepalived by hand. */
  agents?: boolean;
}

export interface UpResult {
  holder: MnNode | null;
  tookMs: number;
}

export interface ServiceSummary {
  name: ServiceName;
  pids: number[];
  listening: boolean;
}

export interface NodeSummary {
  node: MnNode;
  namespace: string;
  address: string;
  mac: string;
  linkUp: boolean;
  vipOnEth0: boolean;
  agentPid: number | null;
  agentPaused: boolean;
  keepalivedPids: number[];
  services: ServiceSummary[];
  faults: NodeFaults;
  status: StatusReport | null;
  statusError: string | null;
}

export interface LabStatus {
  up: boolean;
  namespaces: string[];
  holders: MnNode[];
  /** Who answered one ARP request for the VIP from the client (node names, or MACs). */
  arpAnsweredBy: string[];
  nodes: NodeSummary[];
}

export interface StableState {
  holder: MnNode;
  standby: MnNode;
}

const AGENT_START_TIMEOUT_MS = 10_000;
const SERVICE_START_TIMEOUT_MS = 5_000;
/** Bound on waiting for init to reap a killed orphan. */
const REAP_TIMEOUT_MS = 10_000;

export class Lab {
  readonly logger: Logger;
  private readonly configOverrides: ConfigOverrides;
  private readonly agentStart: AgentStartOrder;
  private readonly agentNodeArgs: readonly string[];
  private readonly stableTimeoutMs: number;
  private readonly arping = arpingPath();
  private readonly sshd: boolean;
  private readonly systemd: boolean;
  /** Nodes whose agent runs from another build's CLI (mixed versions); the others run AGENT_MAIN. */
  private readonly agentMains = new Map<MnNode, string>();

  constructor(options: LabOptions = {}) {
    this.logger = options.logger ?? silentLogger();
    this.configOverrides = options.config ?? {};
    this.agentStart = options.agentStart ?? "sequential";
    this.agentNodeArgs = options.agentNodeArgs ?? [];
    this.stableTimeoutMs = options.stableTimeoutMs ?? 30_000;
    this.systemd = options.systemd === true;
    this.sshd = options.sshd === true || this.systemd;
  }

  // ---------------------------------------------------------------- up / down

  async up(options: UpOptions = {}): Promise<UpResult> {
    const started = monoNow();
    const withAgents = options.agents !== false;
    await this.preflight(withAgents);
    if (options.fresh === true) await this.down();
    const present = await labNamespacesPresent();
    if (present.length > 0) {
      throw new MnhaError("USAGE", `the lab is already (partly) up: namespaces ${present.join(", ")} exist`, { hint: "run `pnpm lab down` first (or `pnpm lab up --fresh`)" });
    }
    rmSync(LAB_STATE_DIR, { recursive: true, force: true });
    mkdirSync(CLIENT_STATE_DIR, { recursive: true, mode: 0o700 });
    const secret = newSecret();
    for (const node of MN_NODES) writeNodeConfig(node, secret, this.configOverrides);
    await Promise.all([createTopology(), ...MN_NODES.map((node) => initMariaDb(node))]);
    this.logger.info({ stateDir: LAB_STATE_DIR }, "lab topology up");
    if (this.sshd) await setUpSshd({ systemd: this.systemd });
    await Promise.all(MN_NODES.map((node) => this.startServices(node)));
    if (!withAgents) return { holder: null, tookMs: monoNow() - started };

    const [first, second] = MN_NODES;
    await this.startAgent(first);
    if (this.agentStart === "sequential") {
      await this.waitForHolder(first, { timeoutMs: this.stableTimeoutMs });
    } else if (typeof this.agentStart === "number") {
      await sleep(this.agentStart);
    }
    await this.startAgent(second);
    const stable = await this.waitForStable();
    this.logger.info({ holder: stable.holder, tookMs: Math.round(monoNow() - started) }, "lab up");
    return { holder: stable.holder, tookMs: monoNow() - started };
  }

  /** Kills everything in the lab namespaces, deletes them, removes the state directory. */
  async down(options: { archiveTo?: string } = {}): Promise<TeardownReport> {
    if (options.archiveTo !== undefined && existsSync(LAB_STATE_DIR)) this.archiveState(options.archiveTo);
    const report = await tearDownLab();
    this.logger.info(report, "lab down");
    return report;
  }

  /** Copies the lab's configs, logs and sample files (regular files only) for a post-mortem. */
  archiveState(target: string): void {
    try {
      rmSync(target, { recursive: true, force: true });
      cpSync(LAB_STATE_DIR, target, {
        recursive: true,
        filter: (source) => {
          try {
            const stat = statSync(source);
            return (stat.isDirectory() || stat.isFile()) && !source.endsWith("/secret");
          } catch {
            return false;
          }
        },
      });
    } catch (error) {
      this.logger.warn({ err: error, target }, "could not archive the lab state");
    }
  }

  private async preflight(withAgents: boolean): Promise<void> {
    if (process.getuid?.() !== 0) throw new MnhaError("USAGE", "the lab needs root (it creates network namespaces)", { hint: "run it with sudo, or as root" });
    const missing: string[] = [];
    const tools: [string, string[], string][] = [
      ["ip", ["-V"], "iproute2"],
      ["nft", ["--version"], "nftables"],
      [this.arping, ["-V"], "iputils-arping"],
    ];
    for (const [tool, args, pkg] of tools) if ((await run(tool, args, { allowFailure: true })).code !== 0) missing.push(pkg);
    if (withAgents && !existsSync("/usr/sbin/keepalived")) missing.push("keepalived");
    if (!existsSync(MARIADBD) || !existsSync(MARIADB_INSTALL_DB)) missing.push("mariadb-server");
    if (missing.length > 0) throw new MnhaError("USAGE", `the lab needs ${missing.join(", ")}`, { hint: `install: apt-get install -y ${missing.join(" ")}` });
    if (withAgents && !existsSync(AGENT_MAIN)) throw new MnhaError("USAGE", `the agent is not built (${AGENT_MAIN} is missing)`, { hint: "run `pnpm build` first" });
  }

  // ---------------------------------------------------------------- who holds the VIP

  /**
   * MNs that hold the VIP right now: the VIP on eth0 and the wire connected (a crashed
   * node's leftover address reaches nobody; boot removes it as a reboot would).
   */
  async holders(): Promise<MnNode[]> {
    const holders: MnNode[] = [];
    for (const node of await vipHolders()) if (await hostLinkUp(node)) holders.push(node);
    return holders;
  }

  /** The one MN with the VIP on eth0; null when none; throws when two do. */
  async holder(): Promise<MnNode | null> {
    const holders = await this.holders();
    if (holders.length > 1) throw new MnhaError("INTERNAL", `split brain: both ${holders.join(" and ")} have the VIP on eth0`, { hint: "see the agents' logs in the lab state dir" });
    return holders[0] ?? null;
  }

  /** Who answers one ARP request for the VIP from the client: MACs, lower case. */
  arpProbe(windowMs = 150): Promise<string[]> {
    return arpProbe({ windowMs, arping: this.arping });
  }

  async waitForHolder(node: MnNode | null, options: { timeoutMs: number }): Promise<MnNode> {
    let last: MnNode[] = [];
    return waitFor(
      node === null ? "one node to hold the VIP" : `${node} to hold the VIP`,
      async () => {
        last = await this.holders();
        if (last.length !== 1) return undefined;
        return node === null || last[0] === node ? last[0] : undefined;
      },
      { timeoutMs: options.timeoutMs, describeLast: () => `holders [${last.join(", ")}]` },
    );
  }

  /**
   * Waits until the lab is settled: exactly one MN has the VIP, only its MAC answers ARP
   * from the client, both agents are up, connected, eligible and agree on the holder.
   */
  async waitForStable(options: { timeoutMs?: number } = {}): Promise<StableState> {
    let last = "nothing yet";
    return waitFor(
      "a stable lab (one holder, both agents connected, eligible and agreeing)",
      async () => {
        const holders = await this.holders();
        if (holders.length !== 1) return void (last = `holders on eth0: [${holders.join(", ")}]`);
        const holder = holders[0] as MnNode;
        const macs = await this.arpProbe();
        if (macs.length !== 1 || macs[0] !== HOSTS[holder].mac) return void (last = `ARP answered by [${macs.map(labelMac).join(", ")}]`);
        for (const node of MN_NODES) {
          const { status, error } = await this.tryAgentStatus(node);
          if (!status) return void (last = `${node} status: ${error}`);
          const problem = statusProblem(status, holder);
          if (problem) return void (last = `${node}: ${problem}`);
        }
        return { holder, standby: peerOf(holder) };
      },
      { timeoutMs: options.timeoutMs ?? this.stableTimeoutMs, intervalMs: 200, describeLast: () => last },
    );
  }

  // ---------------------------------------------------------------- stand-in services

  private serviceSpec(service: ServiceName): StandinSpec {
    const spec = STANDIN_SERVICES.find((s) => s.name === service);
    if (!spec) throw new MnhaError("USAGE", `unknown service "${service}"`, { hint: `one of ${STANDIN_SERVICES.map((s) => s.name).join(", ")}` });
    return spec;
  }

  async servicePids(node: MnNode, service: ServiceName): Promise<number[]> {
    if (this.serviceSpec(service).kind === "mariadb") return mariaDbPids(node);
    return (await namespacePids(HOSTS[node].namespace)).filter((pid) => {
      const argv = readCmdline(pid);
      const at = argv.indexOf("--service");
      return argv.includes(STANDIN_SCRIPT) && at >= 0 && argv[at + 1] === service;
    });
  }

  /** Starts (or restarts) one stand-in and waits until it listens. */
  async startService(node: MnNode, service: ServiceName): Promise<number> {
    const spec = this.serviceSpec(service);
    if (spec.kind === "mariadb") {
      const pid = await startMariaDb(node);
      this.logger.info({ node, service, processId: pid }, "MariaDB started");
      return pid;
    }
    const paths = nodePaths(node);
    for (const pid of await this.servicePids(node, service)) signal(pid, "SIGKILL");
    const pid = await launchDetached({
      namespace: HOSTS[node].namespace,
      argv: standinArgv(node, spec),
      logFile: paths.serviceLog(service),
      pidFile: paths.servicePid(service),
    });
    await waitFor(
      `${node}/${service} to listen on port ${spec.port}`,
      async () => {
        if (!isAlive(pid)) throw new MnhaError("INTERNAL", `stand-in ${node}/${service} exited at start: ${tail(paths.serviceLog(service))}`, { hint: `see ${paths.serviceLog(service)}` });
        return listeningTcpPorts(pid).has(spec.port) ? true : undefined;
      },
      { timeoutMs: SERVICE_START_TIMEOUT_MS, intervalMs: 20 },
    );
    this.logger.info({ node, service, processId: pid }, "stand-in started");
    return pid;
  }

  async startServices(node: MnNode): Promise<void> {
    // The database first: the MN service depends on it (and it takes the longest).
    for (const spec of [...STANDIN_SERVICES].sort((a, b) => Number(b.kind === "mariadb") - Number(a.kind === "mariadb"))) await this.startService(node, spec.name);
  }

  /** SIGKILLs the stand-in; returns the pids killed (empty: it was not running). */
  async killService(node: MnNode, service: ServiceName): Promise<number[]> {
    const spec = this.serviceSpec(service);
    const pids = spec.kind === "mariadb" ? await killMariaDb(node) : await this.servicePids(node, service);
    for (const pid of pids) signal(pid, "SIGKILL");
    await waitGone(pids, 2_000);
    this.logger.info({ node, service, processIds: pids }, "stand-in killed");
    return pids;
  }

  async serviceListening(node: MnNode, service: ServiceName): Promise<boolean> {
    const spec = this.serviceSpec(service);
    const pids = await this.servicePids(node, service);
    return pids.some((pid) => listeningTcpPorts(pid).has(spec.port));
  }

  // ---------------------------------------------------------------- agents

  /** The running agent's pid (pid file first, then a scan of the namespace). */
  async agentPid(node: MnNode): Promise<number | null> {
    const paths = nodePaths(node);
    const isAgent = (pid: number) => {
      const argv = readCmdline(pid);
      return argv.includes(this.agentMainOf(node)) && argv.includes("agent") && argv.includes(paths.config);
    };
    const fromFile = readPidFile(paths.agentPid);
    if (fromFile !== null && isAlive(fromFile) && isAgent(fromFile)) return fromFile;
    const found = (await namespacePids(HOSTS[node].namespace)).find((pid) => isAlive(pid) && isAgent(pid));
    return found ?? null;
  }

  /**
   * Starts the node's agent (no-op when it runs) and waits until its control socket is
   * fresh. Like systemd's control-group cleanup, a keepalived left behind by a killed agent
   * is killed first.
   */
  async startAgent(node: MnNode): Promise<number> {
    const running = await this.agentPid(node);
    if (running !== null) return running;
    const main = this.agentMainOf(node);
    if (!existsSync(main)) throw new MnhaError("USAGE", `the agent is not built (${main} is missing)`, { hint: "run `pnpm build` first" });
    const stale = await this.killKeepalived(node);
    if (stale.length > 0) this.logger.info({ node, processIds: stale }, "killed keepalived left behind by a previous agent");
    const paths = nodePaths(node);
    const launchedAt = Date.now();
    const pid = await launchDetached({
      namespace: HOSTS[node].namespace,
      argv: [process.execPath, ...AGENT_NODE_FLAGS, ...this.agentNodeArgs, main, "agent", "--config", paths.config],
      // Not a systemd service, even when the lab runs from one: its restores run directly (checks/action-command.ts).
      env: { ...withoutSystemdInvocation(process.env), ...AGENT_ENV },
      logFile: paths.agentLog,
      pidFile: paths.agentPid,
    });
    await waitFor(
      `the ${node} agent's control socket`,
      async () => {
        if (!isAlive(pid)) throw new MnhaError("INTERNAL", `the ${node} agent exited at start: ${tail(paths.agentLog)}`, { hint: `see ${paths.agentLog}` });
        try {
          return statSync(paths.controlSocket).ctimeMs >= launchedAt - 1_000 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: AGENT_START_TIMEOUT_MS, intervalMs: 50, hint: `see ${paths.agentLog}` },
    );
    this.logger.info({ node, processId: pid }, "agent started");
    return pid;
  }

  /** SIGKILLs the agent only (its keepalived stays, as after a crash of the daemon). */
  async killAgent(node: MnNode): Promise<number | null> {
    const pid = await this.agentPid(node);
    if (pid === null) return null;
    signal(pid, "SIGKILL");
    await waitReaped([pid], REAP_TIMEOUT_MS);
    this.logger.info({ node, processId: pid }, "agent killed");
    return pid;
  }

  /** SIGTERM, as `systemctl stop mnha` sends: the agent hands the VIP over and exits. */
  async stopAgent(node: MnNode, timeoutMs = 15_000): Promise<number | null> {
    const pid = await this.agentPid(node);
    if (pid === null) return null;
    signal(pid, "SIGTERM");
    await waitReaped([pid], timeoutMs);
    this.logger.info({ node, processId: pid }, "agent stopped");
    return pid;
  }

  async pauseAgent(node: MnNode): Promise<number> {
    const pid = await this.requireAgent(node);
    signal(pid, "SIGSTOP");
    this.logger.info({ node, processId: pid }, "agent paused");
    return pid;
  }

  async resumeAgent(node: MnNode): Promise<number | null> {
    const pid = await this.agentPid(node);
    if (pid !== null) signal(pid, "SIGCONT");
    return pid;
  }

  private async requireAgent(node: MnNode): Promise<number> {
    const pid = await this.agentPid(node);
    if (pid === null) throw new MnhaError("USAGE", `the ${node} agent is not running`, { hint: `start it: pnpm lab start-agent ${node}` });
    return pid;
  }

  /** keepalived processes in the node's namespace (parent and VRRP child). */
  async keepalivedPids(node: MnNode): Promise<number[]> {
    return (await namespacePids(HOSTS[node].namespace)).filter((pid) => readComm(pid) === "keepalived" && isAlive(pid));
  }

  /**
   * SIGKILLs every keepalived process of the node; returns their pids once they are reaped
   * (so that a keepalived started next does not mistake a zombie for a running daemon).
   */
  async killKeepalived(node: MnNode): Promise<number[]> {
    const pids = await this.keepalivedPids(node);
    const unfrozen = await killTogether(pids);
    if (unfrozen.length > 0) this.logger.warn({ node, processIds: unfrozen }, "keepalived not seen stopped before SIGKILL");
    await waitReaped(pids, REAP_TIMEOUT_MS);
    if (pids.length > 0) this.logger.info({ node, processIds: pids }, "keepalived killed");
    return pids;
  }

  /** Runs the agent's CLI inside the node's namespace (as an operator on that node would). */
  agentCli(node: MnNode, args: string[], timeoutMs = 10_000): Promise<CommandResult> {
    return runIn(HOSTS[node].namespace, process.execPath, [this.agentMainOf(node), ...args, "--config", nodePaths(node).config], { allowFailure: true, timeoutMs });
  }

  /**
   * Runs the node's agent and CLI from another build (its `packages/agent/dist/cli/main.js`),
   * as one node of a pair in the middle of an upgrade; null: this tree's build again. Takes
   * effect at the next start of the agent: stop it first.
   */
  setAgentMain(node: MnNode, main: string | null): void {
    if (main === null) this.agentMains.delete(node);
    else this.agentMains.set(node, main);
  }

  private agentMainOf(node: MnNode): string {
    return this.agentMains.get(node) ?? AGENT_MAIN;
  }

  async tryAgentStatus(node: MnNode): Promise<{ status: StatusReport | null; error: string | null }> {
    const result = await this.agentCli(node, ["status", "--json"], 5_000);
    if (result.code !== 0) return { status: null, error: (result.stderr || result.stdout).trim().split("\n")[0] ?? `exit ${result.code}` };
    try {
      return { status: JSON.parse(result.stdout) as StatusReport, error: null };
    } catch {
      return { status: null, error: `not JSON: ${result.stdout.slice(0, 120)}` };
    }
  }

  async agentStatus(node: MnNode): Promise<StatusReport> {
    const { status, error } = await this.tryAgentStatus(node);
    if (!status) throw new MnhaError("INTERNAL", `mnha status on ${node} failed: ${error}`, { hint: `is the agent running? see ${nodePaths(node).agentLog}` });
    return status;
  }

  /** `mnha demote --yes` on the node: a planned switchover. */
  demote(node: MnNode): Promise<CommandResult> {
    return this.agentCli(node, ["demote", "--yes"], 15_000);
  }

  // ---------------------------------------------------------------- whole-node faults

  /** Power loss: the node's wire is cut at once, then every process in it is SIGKILLed. */
  async crash(node: MnNode): Promise<number[]> {
    await setHostLink(node, false);
    const pids = await namespacePids(HOSTS[node].namespace);
    for (const pid of pids) signal(pid, "SIGKILL");
    await waitReaped(pids, REAP_TIMEOUT_MS);
    this.logger.info({ node, killed: pids.length }, "node crashed");
    return pids;
  }

  /**
   * Power on: what a reboot leaves (only the node's own address on eth0, none of the node's
   * own lab firewall tables), wire connected, stand-ins and (unless agent: false) the agent started.
   */
  async boot(node: MnNode, options: { agent?: boolean } = {}): Promise<void> {
    const leftovers = await namespacePids(HOSTS[node].namespace);
    for (const pid of leftovers) signal(pid, "SIGKILL");
    await waitReaped(leftovers, REAP_TIMEOUT_MS);
    await resetHostInterface(node);
    await clearNodeFaults(node);
    await setHostLink(node, true);
    await this.startServices(node);
    if (options.agent !== false) await this.startAgent(node);
    this.logger.info({ node }, "node booted");
  }

  // ---------------------------------------------------------------- network faults

  async cutPeerLink(): Promise<void> {
    await cutPeerLink();
    this.logger.info("peer link cut (IP between mn1 and mn2 dropped; ARP flows)");
  }

  async healPeerLink(): Promise<void> {
    await healPeerLink();
    this.logger.info("peer link healed");
  }

  async cutGateway(node: MnNode): Promise<void> {
    await cutGateway(node);
    this.logger.info({ node }, "gateway cut");
  }

  async healGateway(node: MnNode): Promise<void> {
    await healGateway(node);
    this.logger.info({ node }, "gateway healed");
  }

  /**
   * The node's own eth0 (the VIP interface) down or up, inside its namespace: the kernel
   * keeps the addresses, keepalived sees the interface fail. The wire (bridge side) stays up.
   */
  async setVipInterface(node: MnNode, up: boolean): Promise<void> {
    await runIn(HOSTS[node].namespace, "ip", ["link", "set", HOST_INTERFACE, up ? "up" : "down"]);
    this.logger.info({ node, up }, "VIP interface set");
  }

  /** Whether the node's own eth0 is administratively up. */
  async vipInterfaceUp(node: MnNode): Promise<boolean> {
    const result = await runIn(HOSTS[node].namespace, "ip", ["-j", "link", "show", HOST_INTERFACE], { allowFailure: true });
    try {
      return ((JSON.parse(result.stdout) as { flags?: string[] }[])[0]?.flags ?? []).includes("UP");
    } catch {
      return false;
    }
  }

  /** One direction only: every IP packet from `from` to its peer is dropped (see faults.ts). */
  async dropPeerTrafficFrom(from: MnNode): Promise<void> {
    await dropPeerTrafficFrom(from);
    this.logger.info({ from, to: peerOf(from) }, "one-way peer loss");
  }

  /**
   * SIGHUP to the node's keepalived main process (`systemctl reload keepalived`): it rereads
   * its config and has its VRRP process reload its instances. Returns the pid signalled,
   * null when none runs.
   */
  async reloadKeepalived(node: MnNode): Promise<number | null> {
    const pids = await this.keepalivedPids(node);
    // The main process is the one whose parent is not itself a keepalived.
    const main = pids.find((pid) => !pids.includes(parentPid(pid) ?? -1)) ?? null;
    if (main !== null) signal(main, "SIGHUP");
    this.logger.info({ node, processId: main }, "keepalived reload (SIGHUP)");
    return main;
  }

  // ---------------------------------------------------------------- between scenarios

  /**
   * Puts the lab back to "both nodes healthy": heals network faults, boots crashed nodes,
   * resumes paused agents, restarts missing stand-ins and agents, waits until stable.
   */
  async reset(): Promise<StableState> {
    await healPeerLink();
    for (const node of MN_NODES) {
      await healGateway(node);
      if (!(await hostLinkUp(node))) {
        await this.boot(node);
        continue;
      }
      await this.resumeAgent(node);
      for (const spec of STANDIN_SERVICES) if (!(await this.serviceListening(node, spec.name))) await this.startService(node, spec.name);
      await this.startAgent(node);
    }
    return this.waitForStable();
  }

  /** A new client sampler writing to the client's state dir (start it yourself). */
  sampler(label: string, options: { httpTimeoutMs?: number; httpIntervalMs?: number; maxMs?: number } = {}): ClientSampler {
    return new ClientSampler({
      logger: this.logger,
      outFile: `${CLIENT_STATE_DIR}/samples-${label.replace(/[^A-Za-z0-9_.-]/g, "_")}.jsonl`,
      arpingPath: this.arping,
      ...(options.httpTimeoutMs === undefined ? {} : { httpTimeoutMs: options.httpTimeoutMs }),
      ...(options.httpIntervalMs === undefined ? {} : { httpIntervalMs: options.httpIntervalMs }),
      ...(options.maxMs === undefined ? {} : { maxMs: options.maxMs }),
    });
  }

  // ---------------------------------------------------------------- status

  async status(): Promise<LabStatus> {
    const namespaces = await labNamespacesPresent();
    if (namespaces.length === 0) return { up: false, namespaces, holders: [], arpAnsweredBy: [], nodes: [] };
    const nodes: NodeSummary[] = [];
    for (const node of MN_NODES) {
      const agentPid = await this.agentPid(node);
      const services: ServiceSummary[] = [];
      for (const spec of STANDIN_SERVICES) {
        const pids = await this.servicePids(node, spec.name);
        services.push({ name: spec.name, pids, listening: pids.some((pid) => listeningTcpPorts(pid).has(spec.port)) });
      }
      const { status, error } = agentPid === null ? { status: null, error: "agent not running" } : await this.tryAgentStatus(node);
      nodes.push({
        node,
        namespace: HOSTS[node].namespace,
        address: HOSTS[node].address,
        mac: HOSTS[node].mac,
        linkUp: await hostLinkUp(node),
        vipOnEth0: (await vipHolders([node])).length > 0,
        agentPid,
        agentPaused: agentPid !== null && processState(agentPid) === "T",
        keepalivedPids: await this.keepalivedPids(node),
        services,
        faults: await nodeFaults(node),
        status,
        statusError: error,
      });
    }
    return { up: true, namespaces, holders: await this.holders(), arpAnsweredBy: (await this.arpProbe()).map(labelMac), nodes };
  }
}

/** Why a node's status does not show a settled lab with `holder` holding; null when it does. */
export function statusProblem(status: StatusReport, holder: MnNode): string | null {
  if (status.vipOwner !== holder) return `vipOwner is ${status.vipOwner ?? "nobody"}, not ${holder}`;
  if (!status.peer.connected) return "peer not connected";
  if (!status.self.eligible) return `not eligible (${status.self.reasons.join("; ")})`;
  const sick = status.self.services.filter((s) => !s.healthy).map((s) => s.name);
  if (sick.length > 0) return `services not healthy: ${sick.join(", ")}`;
  if (status.self.node === holder && !status.self.vipPresent) return "holder does not see the VIP on its interface";
  return null;
}

export function labelMac(mac: string): string {
  return nodeOfMac(mac) ?? mac;
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join(" | ").slice(0, 800);
  } catch {
    return "(no log)";
  }
}

/** The environment without INVOCATION_ID, the mark systemd puts on the processes of a service. */
function withoutSystemdInvocation(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { INVOCATION_ID: _invocation, ...rest } = env;
  return rest;
}
