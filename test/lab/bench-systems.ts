/**
 * The systems a benchmark compares, in the same lab: mnha (two agents, each running its own
 * Keepalived) and plain Keepalived with a profile (common or tuned for speed). Each can be
 * started on a lab that has only its topology and stand-ins, stopped without leaving a
 * process or a VIP behind, and put back to "both nodes healthy" after a fault.
 */
import { existsSync } from "node:fs";
import { MnhaError } from "@mnha/shared";
import { HOST_INTERFACE, HOSTS, MN_NODES, STANDIN_SERVICES, SUBNET_PREFIX, VIP_ADDRESS, peerOf, type MnNode } from "./constants.js";
import { runIn, waitFor } from "./exec.js";
import { healGateway, healPeerLink } from "./faults.js";
import { labelMac, type Lab, type StableState } from "./lab.js";
import {
  CURL_BINARY,
  plainKeepalivedState,
  startPlainKeepalivedProfile,
  stopPlainKeepalived,
  type PlainKeepalivedProfile,
} from "./plain-keepalived.js";
import { namespacePids, readComm, signal, waitReaped } from "./procfs.js";
import { hostLinkUp, vipHolders } from "./topology.js";

export type SystemName = "mnha" | "keepalived-common" | "keepalived-fast";

export interface SystemUnderTest {
  readonly name: SystemName;
  /** Starts the system on both nodes (mn1 first: it becomes the holder) and waits until stable. */
  start(): Promise<StableState>;
  /** Stops it on both nodes: no process of it and no VIP left. */
  stop(): Promise<void>;
  /** One holder, only its MAC answers ARP, the other node ready to take over. */
  waitStable(timeoutMs?: number): Promise<StableState>;
  /**
   * After a fault: heals the network, boots crashed nodes, restarts what an operator's
   * systemd would restart (services, the HA daemon), waits until stable.
   */
  recover(): Promise<StableState>;
  /** A planned switchover away from `holder`. */
  plannedSwitchover(holder: MnNode): Promise<void>;
  /** Short description of the switchover, for reports. */
  readonly switchoverMethod: string;
  /** The system's own processes on a node, by role (for memory and CPU). */
  processes(node: MnNode): Promise<{ pid: number; role: string }[]>;
  /** The node's HA daemon, paused (SIGSTOP) or resumed (SIGCONT). */
  pauseDaemon(node: MnNode, pause: boolean): Promise<void>;
  /** Whether the node's HA daemon (agent, or plain keepalived) is running. */
  daemonRunning(node: MnNode): Promise<boolean>;
  /**
   * SIGKILLs the node's HA daemon, as a crash of the daemon alone: the mnha agent (its
   * Keepalived and lease guard stay), or every plain keepalived process.
   */
  killDaemon(node: MnNode): Promise<void>;
}

const LEASE_GUARD_COMM = "mnha-lease-guar";

async function removeVip(node: MnNode): Promise<void> {
  await runIn(HOSTS[node].namespace, "ip", ["address", "del", `${VIP_ADDRESS}/${SUBNET_PREFIX}`, "dev", HOST_INTERFACE], { allowFailure: true });
}

async function killByComm(node: MnNode, comms: readonly string[]): Promise<number[]> {
  const pids = (await namespacePids(HOSTS[node].namespace)).filter((pid) => comms.includes(readComm(pid)));
  for (const pid of pids) signal(pid, "SIGKILL");
  await waitReaped(pids, 10_000);
  return pids;
}

/** Heals every network fault, brings eth0 up, boots crashed nodes (with or without the agent), restarts missing stand-ins. */
export async function healLab(lab: Lab, options: { agent: boolean }): Promise<MnNode[]> {
  await healPeerLink();
  const booted: MnNode[] = [];
  for (const node of MN_NODES) {
    await healGateway(node);
    if (!(await lab.vipInterfaceUp(node))) await lab.setVipInterface(node, true);
    if (!(await hostLinkUp(node))) {
      await lab.boot(node, { agent: options.agent });
      booted.push(node);
      continue;
    }
    for (const spec of STANDIN_SERVICES) if (!(await lab.serviceListening(node, spec.name))) await lab.startService(node, spec.name);
  }
  return booted;
}

export class MnhaSystem implements SystemUnderTest {
  readonly name = "mnha" as const;
  readonly switchoverMethod = "`mnha demote --yes` on the holder";

  constructor(private readonly lab: Lab) {}

  async start(): Promise<StableState> {
    for (const node of MN_NODES) {
      await stopPlainKeepalived(node, "SIGKILL");
      await removeVip(node);
    }
    const [first, second] = MN_NODES;
    await this.lab.startAgent(first);
    await this.lab.waitForHolder(first, { timeoutMs: 15_000 });
    await this.lab.startAgent(second);
    return this.lab.waitForStable();
  }

  async stop(): Promise<void> {
    for (const node of MN_NODES) {
      await this.lab.resumeAgent(node);
      await this.lab.killAgent(node);
      await killByComm(node, ["keepalived", LEASE_GUARD_COMM]);
      await removeVip(node);
    }
  }

  waitStable(timeoutMs?: number): Promise<StableState> {
    return this.lab.waitForStable(timeoutMs === undefined ? {} : { timeoutMs });
  }

  async recover(): Promise<StableState> {
    await healLab(this.lab, { agent: true });
    return this.lab.reset();
  }

  async plannedSwitchover(holder: MnNode): Promise<void> {
    const result = await this.lab.demote(holder);
    if (result.code !== 0) throw new MnhaError("INTERNAL", `mnha demote on ${holder} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`, { hint: "see the agents' logs" });
  }

  async processes(node: MnNode): Promise<{ pid: number; role: string }[]> {
    const out: { pid: number; role: string }[] = [];
    const agent = await this.lab.agentPid(node);
    if (agent !== null) out.push({ pid: agent, role: "agent" });
    for (const pid of await namespacePids(HOSTS[node].namespace)) {
      const comm = readComm(pid);
      if (comm === LEASE_GUARD_COMM) out.push({ pid, role: "lease-guard" });
      if (comm === "keepalived") out.push({ pid, role: "keepalived" });
    }
    return out;
  }

  async pauseDaemon(node: MnNode, pause: boolean): Promise<void> {
    if (pause) await this.lab.pauseAgent(node);
    else await this.lab.resumeAgent(node);
  }

  async daemonRunning(node: MnNode): Promise<boolean> {
    return (await this.lab.agentPid(node)) !== null;
  }

  async killDaemon(node: MnNode): Promise<void> {
    await this.lab.killAgent(node);
  }
}

export class PlainKeepalivedSystem implements SystemUnderTest {
  readonly switchoverMethod = "SIGTERM to keepalived on the master (`systemctl stop keepalived`), which sends a priority-0 advert; it is started again afterwards and comes back as BACKUP (nopreempt)";

  constructor(
    private readonly lab: Lab,
    readonly profile: PlainKeepalivedProfile & { name: "keepalived-common" | "keepalived-fast" },
  ) {
    if (profile.serviceCheck && !existsSync(CURL_BINARY)) {
      throw new MnhaError("USAGE", `the plain Keepalived baseline checks the MN service with ${CURL_BINARY}, which is missing`, { hint: "apt-get install -y curl" });
    }
  }

  get name(): SystemName {
    return this.profile.name;
  }

  async start(): Promise<StableState> {
    for (const node of MN_NODES) {
      if ((await this.lab.agentPid(node)) !== null) {
        await this.lab.resumeAgent(node);
        await this.lab.killAgent(node);
      }
      await killByComm(node, ["keepalived", LEASE_GUARD_COMM]);
      await removeVip(node);
    }
    const [first, second] = MN_NODES;
    await startPlainKeepalivedProfile(first, this.profile);
    await this.lab.waitForHolder(first, { timeoutMs: 15_000 });
    await startPlainKeepalivedProfile(second, this.profile);
    return this.waitStable();
  }

  async stop(): Promise<void> {
    for (const node of MN_NODES) {
      await this.pauseDaemon(node, false);
      await stopPlainKeepalived(node, "SIGTERM");
      await killByComm(node, ["keepalived"]);
      await removeVip(node);
    }
  }

  async waitStable(timeoutMs = 30_000): Promise<StableState> {
    let last = "nothing yet";
    return waitFor(
      `a stable lab with ${this.profile.name} (one MASTER holding the VIP, the other BACKUP)`,
      async () => {
        const holders: MnNode[] = [];
        for (const node of await vipHolders()) if (await hostLinkUp(node)) holders.push(node);
        if (holders.length !== 1) return void (last = `holders on eth0: [${holders.join(", ")}]`);
        const holder = holders[0] as MnNode;
        const standby = peerOf(holder);
        const macs = await this.lab.arpProbe();
        if (macs.length !== 1 || macs[0] !== HOSTS[holder].mac) return void (last = `ARP answered by [${macs.map(labelMac).join(", ")}]`);
        const states = { holder: plainKeepalivedState(holder), standby: plainKeepalivedState(standby) };
        if (states.holder !== "MASTER" || states.standby !== "BACKUP") return void (last = `${holder} ${states.holder ?? "?"}, ${standby} ${states.standby ?? "?"}`);
        return { holder, standby };
      },
      { timeoutMs, intervalMs: 200, describeLast: () => last },
    );
  }

  async recover(): Promise<StableState> {
    await healLab(this.lab, { agent: false });
    for (const node of MN_NODES) {
      await this.pauseDaemon(node, false);
      if (!(await this.daemonRunning(node))) await startPlainKeepalivedProfile(node, this.profile);
    }
    return this.waitStable();
  }

  async plannedSwitchover(holder: MnNode): Promise<void> {
    await stopPlainKeepalived(holder, "SIGTERM");
  }

  async processes(node: MnNode): Promise<{ pid: number; role: string }[]> {
    return (await namespacePids(HOSTS[node].namespace)).filter((pid) => readComm(pid) === "keepalived").map((pid) => ({ pid, role: "keepalived" }));
  }

  async pauseDaemon(node: MnNode, pause: boolean): Promise<void> {
    for (const { pid } of await this.processes(node)) signal(pid, pause ? "SIGSTOP" : "SIGCONT");
  }

  async daemonRunning(node: MnNode): Promise<boolean> {
    return (await this.processes(node)).length > 0;
  }

  async killDaemon(node: MnNode): Promise<void> {
    await this.lab.killKeepalived(node);
  }
}

/** The system by name. */
export function systemByName(lab: Lab, name: SystemName, profiles: { common: PlainKeepalivedProfile; fast: PlainKeepalivedProfile }): SystemUnderTest {
  if (name === "mnha") return new MnhaSystem(lab);
  if (name === "keepalived-common") return new PlainKeepalivedSystem(lab, { ...profiles.common, name });
  return new PlainKeepalivedSystem(lab, { ...profiles.fast, name });
}
