/**
 * UpgradeHaActions on a real pair: this node directly, the peer over SSH (SFTP upload with
 * its SHA-256 checked there, remote commands as quoted argv), the pair's state and the
 * switchover through the local agent's control socket. The suite is installed by the
 * bundle's own install.sh, which keeps each release in /opt/mnha/releases/<version> and moves
 * /opt/mnha/current: rolling back is the previous release's install.sh.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { MnhaError } from "@mnha/shared";
import type { ControlClient } from "../control/control-client.js";
import type { StatusReport } from "../contracts.js";
import { AGENT_LOG, AGENT_PID, CONFIG_FILE, INSTALL_DIR, agentRunning, healthProblem, stopAgent } from "../provision/install-ha.js";
import { maskDistributionKeepalived } from "../keepalived/distribution-unit.js";
import type { SshSession } from "../provision/ssh-session.js";
import { databaseSyncProblem, type RunningAgent, type UpgradeHaActions } from "./upgrade-ha-plan.js";

/** Where the bundle is copied and unpacked on each node; removed when the upgrade is done. */
export const UPGRADE_HA_STAGE_DIR = "/var/lib/mnha-stage/upgrade-ha";
const MNHA = `${INSTALL_DIR}/current/bin/mnha`;

export interface RealUpgradeHaOptions {
  bundlePath: string;
  /** The bundle's directory name (mnha-suite-<version>-linux-x64). */
  bundleName: string;
  /** Its SHA-256 (checked before the run; the copy on the peer is checked against it). */
  bundleSha256: string;
  target: string;
  self: string;
  peer: string;
  first: string;
  second: string;
  previous: Record<string, string>;
  session: SshSession;
  client: (timeoutMs?: number) => ControlClient;
  /** How long a restarted agent has to rejoin the pair. */
  rejoinTimeoutMs: number;
  /** How long the pair may take to look healthy and in sync before a node is touched. */
  readyTimeoutMs: number;
  /**
   * The agents run their own Keepalived: each installed node's keepalived.service is masked
   * too (keepalived/distribution-unit.ts; pairs installed before install-ha did it).
   */
  keepDistributionKeepalivedOff: boolean;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function localExec(argv: readonly string[], timeoutMs: number): Promise<Result> {
  return new Promise((resolve) => {
    execFile(argv[0] ?? "", argv.slice(1), { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1) : 0, stdout, stderr: stderr || (error?.message ?? "") });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last lines of a command's output, without the SSH server's notices. */
function meaningful(text: string): string {
  return text.trim().split("\n").filter((line) => line.trim() !== "" && !/^Could not chdir to home directory/.test(line)).slice(-3).join(" | ");
}

export function realUpgradeHaActions(o: RealUpgradeHaOptions): UpgradeHaActions {
  const systemdRuns = existsSync("/run/systemd/system");
  const onNode = (node: string, argv: readonly string[], timeoutMs = 120_000): Promise<Result> => (node === o.self ? localExec(argv, timeoutMs) : o.session.exec(argv, { timeoutMs }));
  const mustOnNode = async (node: string, what: string, argv: readonly string[], timeoutMs?: number): Promise<Result> => {
    const result = await onNode(node, argv, timeoutMs);
    if (result.code !== 0) throw new MnhaError("REMOTE_COMMAND", `${what} failed on ${node} (exit ${result.code}): ${meaningful(result.stderr || result.stdout)}`, { hint: `see the message above; fix it on ${node}` });
    return result;
  };
  const runner = (node: string) => (argv: string[]) => onNode(node, argv);
  const status = (): Promise<StatusReport> => o.client(5_000).status();
  const stagedTar = `${UPGRADE_HA_STAGE_DIR}/${o.bundleName}.tar.gz`;
  const stagedSuite = `${UPGRADE_HA_STAGE_DIR}/${o.bundleName}`;

  const actions: UpgradeHaActions = {
    target: o.target,
    first: o.first,
    second: o.second,
    previous: o.previous,

    async assertPairReady() {
      const deadline = performance.now() + o.readyTimeoutMs;
      let last = "no status yet";
      for (;;) {
        try {
          const report = await status();
          const problem = healthProblem(report) ?? databaseSyncProblem(report);
          if (problem === null) return `the pair is healthy (${report.vipOwner} holds the VIP)${report.db ? ", databases in sync" : ""}`;
          last = problem;
        } catch (error) {
          last = (error as Error).message;
        }
        if (performance.now() > deadline) {
          throw new MnhaError("OPERATION_REFUSED", `the pair is not ready for an upgrade step: ${last}`, { hint: "see mnha status; upgrade-ha touches a node only while both are healthy and the databases in sync" });
        }
        await sleep(1_000);
      }
    },

    async installedSuite(node) {
      const result = await onNode(node, ["cat", "--", `${INSTALL_DIR}/current/VERSION`]);
      return result.code === 0 ? result.stdout.trim() || null : null;
    },

    async runningAgent(node) {
      if (node === o.self) {
        try {
          const version = await o.client(3_000).version();
          return { version: version.version, offered: version.offered ?? [version.protocol], negotiated: version.negotiated ?? null };
        } catch {
          return null;
        }
      }
      const result = await onNode(node, [MNHA, "version", "--json"], 30_000);
      try {
        const agent = (JSON.parse(result.stdout) as { agent?: { version?: unknown; protocol?: unknown; offered?: unknown; negotiated?: unknown } | null }).agent;
        if (agent === null || agent === undefined || typeof agent.version !== "string") return null;
        const offered = Array.isArray(agent.offered) ? agent.offered.filter((v): v is number => typeof v === "number") : typeof agent.protocol === "number" ? [agent.protocol] : [];
        return { version: agent.version, offered, negotiated: typeof agent.negotiated === "number" ? agent.negotiated : null } satisfies RunningAgent;
      } catch {
        return null;
      }
    },

    async staged(node) {
      const result = await onNode(node, ["sh", "-c", 'test -f "$2/VERSION" && sha256sum -- "$1"', "sh", stagedTar, stagedSuite]);
      return result.code === 0 && result.stdout.split(/\s+/)[0] === o.bundleSha256;
    },

    async stage(node) {
      await mustOnNode(node, `creating ${UPGRADE_HA_STAGE_DIR}`, ["mkdir", "-p", "-m", "700", "--", UPGRADE_HA_STAGE_DIR]);
      let copied: string;
      if (node === o.self) {
        await mustOnNode(node, "copying the bundle to the staging dir", ["cp", "--", o.bundlePath, `${stagedTar}.part`]);
        await mustOnNode(node, "moving the bundle into place", ["mv", "-f", "--", `${stagedTar}.part`, stagedTar]);
        copied = `${o.bundleName}.tar.gz staged on this node`;
      } else {
        const sha = await o.session.upload(o.bundlePath, stagedTar);
        copied = `copied to ${node}:${stagedTar} over SFTP (SHA-256 ${sha.slice(0, 16)}… verified there)`;
      }
      const sum = await mustOnNode(node, "checking the staged bundle", ["sha256sum", "--", stagedTar]);
      if (sum.stdout.split(/\s+/)[0] !== o.bundleSha256) throw new MnhaError("UPLOAD_VERIFY", `the staged bundle on ${node} does not match (SHA-256 ${sum.stdout.slice(0, 16)}…)`, { hint: "run the command again; if it repeats, check the node's disk" });
      await mustOnNode(node, "clearing an earlier unpacked copy", ["rm", "-rf", "--", stagedSuite]);
      await mustOnNode(node, "unpacking the bundle", ["tar", "-xzf", stagedTar, "-C", UPGRADE_HA_STAGE_DIR], 300_000);
      const version = (await mustOnNode(node, "reading the unpacked suite's version", ["cat", "--", `${stagedSuite}/VERSION`])).stdout.trim();
      if (version !== o.target) throw new MnhaError("USAGE", `the bundle ${o.bundleName} unpacks a suite that calls itself ${version}, not ${o.target}`, { hint: "the bundle was renamed or damaged: use the file scripts/bundle.sh wrote" });
      return `${copied}; unpacked in ${stagedSuite}`;
    },

    async install(node) {
      const result = await mustOnNode(node, "install.sh", [`${stagedSuite}/install.sh`], 300_000);
      const now = await actions.installedSuite(node);
      if (now !== o.target) throw new MnhaError("REMOTE_COMMAND", `install.sh exited 0 on ${node}, but ${INSTALL_DIR}/current is suite ${now ?? "unknown"}, not ${o.target}`, { hint: `look at ${INSTALL_DIR} on ${node}` });
      if (!o.keepDistributionKeepalivedOff) return meaningful(result.stdout);
      // Not a reason to stop (or roll back) an upgrade that installed: said, with the commands to run by hand.
      const unit = await maskDistributionKeepalived(runner(node), node).catch((error: unknown) => `warning: ${(error as Error).message}; ${(error as MnhaError).hint ?? ""}`);
      return `${meaningful(result.stdout)}; ${unit}`;
    },

    async activate(node, version) {
      const installer = `${INSTALL_DIR}/releases/${version}/install.sh`;
      const result = await mustOnNode(node, `${installer} (back to suite ${version})`, [installer], 300_000);
      const now = await actions.installedSuite(node);
      if (now !== version) throw new MnhaError("REMOTE_COMMAND", `${node}'s ${INSTALL_DIR}/current is suite ${now ?? "unknown"} after ${installer}`, { hint: `look at ${INSTALL_DIR} on ${node}` });
      return meaningful(result.stdout);
    },

    async restartAgent(node) {
      // Restarting the holder's agent would cost a failover: only standbys are restarted.
      const holder = await actions.holder().catch(() => null);
      if (holder === node) throw new MnhaError("OPERATION_REFUSED", `${node} holds the VIP: its agent is not restarted (that would be an unplanned failover)`, { hint: "hand the VIP over first; run the same command again" });
      if (systemdRuns) {
        await mustOnNode(node, "systemctl restart mnha.service", ["systemctl", "restart", "mnha.service"]);
        return `${node}: mnha.service restarted`;
      }
      if (await agentRunning(runner(node), false)) await stopAgent(runner(node), false);
      if (await agentRunning(runner(node), false)) throw new MnhaError("REMOTE_COMMAND", `${node}'s agent did not stop within 20 s`, { hint: `see ${AGENT_LOG} on ${node}` });
      const started = await mustOnNode(node, "starting the agent", [MNHA, "run-detached-agent", "--agent-config", CONFIG_FILE, "--log-file", AGENT_LOG, "--pid-file", AGENT_PID], 120_000);
      return `${node}: ${meaningful(started.stdout) || "agent restarted"}`;
    },

    async waitRejoined(node, version) {
      const deadline = performance.now() + o.rejoinTimeoutMs;
      let last = "no answer yet";
      for (;;) {
        try {
          const agent = await actions.runningAgent(node);
          const report = await status();
          if (agent === null) last = `${node}'s agent does not answer`;
          else if (agent.version !== version) last = `${node}'s agent runs ${agent.version}, not ${version}`;
          else {
            const problem = healthProblem(report);
            // An agent older than upgrade-ha does not report the negotiated version: connected and healthy is all it can show.
            const negotiated = report.protocol === undefined ? "not reported by this node's agent" : report.protocol.negotiated;
            if (problem !== null) last = problem;
            else if (negotiated === null) last = "no protocol version negotiated yet";
            else {
              const other = node === o.self ? o.peer : o.self;
              const otherAgent = await actions.runningAgent(other);
              return `${node} rejoined on suite ${version}: peer link protocol ${typeof negotiated === "number" ? `v${negotiated} negotiated` : negotiated} (${node} offers ${agent.offered.join(",")}, ${other} offers ${otherAgent?.offered.join(",") ?? "?"}); ${report.vipOwner} holds the VIP`;
            }
          }
        } catch (error) {
          last = (error as Error).message;
        }
        if (performance.now() > deadline) {
          throw new MnhaError("OPERATION_FAILED", `${node} did not rejoin the pair on suite ${version} within ${Math.round(o.rejoinTimeoutMs / 1000)} s (${last})`, { hint: `see ${systemdRuns ? "journalctl -u mnha" : AGENT_LOG} on ${node}` });
        }
        await sleep(1_000);
      }
    },

    async holder() {
      return (await status()).vipOwner;
    },

    async handover(from, to) {
      if (from !== o.self) throw new MnhaError("OPERATION_REFUSED", `the VIP is on ${from}, not on this node: the switchover is asked of the holder`, { hint: `run upgrade-ha on ${from}` });
      const deadline = performance.now() + 30_000;
      for (;;) {
        const report = await status();
        if (report.vipOwner === to) return `${to} already holds the VIP`;
        if ("eligible" in report.peer && report.peer.connected && report.peer.eligible) break;
        if (performance.now() > deadline) throw new MnhaError("SWITCHOVER_FAILED", `${to} is not eligible to take the VIP${"reasons" in report.peer ? ` (${report.peer.reasons.join("; ")})` : " (not connected)"}`, { hint: "see mnha status; the VIP stays where it is" });
        await sleep(500);
      }
      const result = await o.client(60_000).demote();
      if (!result.ok || result.to !== to) throw new MnhaError("SWITCHOVER_FAILED", `the switchover to ${to} did not happen: ${result.message}`, { hint: "see mnha status; the VIP stays where it is" });
      // This node's view of the holder follows the peer's report: wait until it shows the new holder.
      const shown = performance.now() + 30_000;
      while ((await status()).vipOwner !== to) {
        if (performance.now() > shown) throw new MnhaError("SWITCHOVER_FAILED", `${to} took the VIP, but this node does not see it as the holder after 30 s`, { hint: "see mnha status" });
        await sleep(200);
      }
      return `${to} holds the VIP (switchover took ${result.tookMs} ms)`;
    },

    async cleanStage(node) {
      await onNode(node, ["rm", "-rf", "--", UPGRADE_HA_STAGE_DIR]);
    },
  };
  return actions;
}
