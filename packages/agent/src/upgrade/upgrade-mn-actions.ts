/**
 * UpgradeMnActions on a real pair: this node directly, the peer over SSH (SFTP upload with
 * its SHA-256 checked, remote commands as quoted argv), the pair's state and operator modes
 * through the local agent's control socket.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { MnhaError } from "@mnha/shared";
import type { ControlClient } from "../control/control-client.js";
import type { StatusReport } from "../contracts.js";
import type { SshSession } from "../provision/ssh-session.js";
import { installerCommand, type InstallerInfo } from "./installer.js";
import type { UpgradeMnActions } from "./upgrade-mn-plan.js";
import { waitDatabaseCaughtUp, type CatchUpDatabase } from "./db-catch-up.js";

export const UPGRADE_STAGE_DIR = "/var/lib/mnha-stage";

export interface RealUpgradeMnOptions {
  installerPath: string;
  installer: InstallerInfo;
  self: string;
  peer: string;
  first: string;
  second: string;
  localSuite: string;
  session: SshSession;
  client: (timeoutMs?: number) => ControlClient;
  platformVersionFile: string;
  by: string;
  healthyTimeoutMs: number;
  /**
   * Both MariaDB servers (this node's as root, the peer's as the replication user): after its
   * services, a node's database must catch up before the VIP moves. Null: no database
   * replication on this pair (said in the output).
   */
  databases: { local: CatchUpDatabase; peer: CatchUpDatabase } | null;
  catchUpTimeoutMs: number;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function localExec(argv: string[], timeoutMs: number): Promise<Result> {
  return new Promise((resolve) => {
    execFile(argv[0] ?? "", argv.slice(1), { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1) : 0, stdout, stderr: stderr || (error?.message ?? "") });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function realUpgradeMnActions(o: RealUpgradeMnOptions): UpgradeMnActions {
  const onNode = (node: string, argv: string[], timeoutMs: number): Promise<Result> => (node === o.self ? localExec(argv, timeoutMs) : o.session.exec(argv, { timeoutMs }));
  const stagedPath = (node: string) => (node === o.self ? o.installerPath : `${UPGRADE_STAGE_DIR}/${basename(o.installerPath)}`);
  const status = (): Promise<StatusReport> => o.client(5_000).status();
  /** Until the node's critical services are healthy (as the local agent sees them), bounded. */
  const waitServices = async (node: string): Promise<string> => {
    const deadline = performance.now() + o.healthyTimeoutMs;
    let last = "no status yet";
    while (performance.now() < deadline) {
      try {
        const report = await status();
        const view = node === o.self ? report.self : report.peer;
        if ("services" in view) {
          const down = view.services.filter((s) => s.critical && !s.healthy);
          if (down.length === 0 && (node === o.self || report.peer.connected)) return `${node}: every critical service healthy (${view.services.map((s) => s.name).join(", ")})`;
          last = down.length > 0 ? `${down.map((s) => `${s.name}: ${s.detail ?? "down"}`).join(", ")}` : `${node} not connected`;
        } else last = `${node} not connected`;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(1_000);
    }
    throw new MnhaError("OPERATION_FAILED", `${node}'s services are not healthy after ${Math.round(o.healthyTimeoutMs / 1000)} s (${last})`, { hint: `see mnha status and the MN's logs on ${node}; run the same command again to wait again` });
  };
  return {
    installer: o.installer,
    first: o.first,
    second: o.second,
    async suiteVersions() {
      const peerVersion = await o.session.exec(["sh", "-c", 'mnha=$(command -v mnha || echo /opt/mnha/current/bin/mnha); "$mnha" version --json 2>/dev/null || true']);
      let peerSuite: string | null = null;
      try {
        peerSuite = (JSON.parse(peerVersion.stdout) as { suite?: { suite?: string } }).suite?.suite ?? null;
      } catch {
        peerSuite = null;
      }
      // The agents negotiate the peer protocol; a peer whose suite cannot be read is taken to run this one's (install-ha installs both alike).
      return [
        { node: o.self, suite: o.localSuite },
        { node: o.peer, suite: peerSuite ?? o.localSuite },
      ];
    },
    async maintenance(on) {
      const result = await o.client(150_000).maintenance({ on, node: "both", reason: `mnha upgrade-mn to platform ${o.installer.version}`, by: o.by });
      if (result.peer && !result.peer.ok) throw new MnhaError("OPERATION_FAILED", `maintenance ${on ? "on" : "off"} on ${result.peer.node}: ${result.peer.message}`, { hint: "check the peer link (mnha status), then run the same command again" });
      return `${result.message}${result.peer ? `; ${result.peer.node}: ${result.peer.message}` : ""}`;
    },
    async platformVersion(node) {
      if (node === o.self) {
        try {
          return readFileSync(o.platformVersionFile, "utf8").trim() || null;
        } catch {
          return null;
        }
      }
      const result = await o.session.exec(["cat", "--", o.platformVersionFile]);
      return result.code === 0 ? result.stdout.trim() || null : null;
    },
    async stage(node) {
      if (node === o.self) return `the installer is on this node: ${o.installerPath}`;
      await o.session.run(["mkdir", "-p", "-m", "700", "--", UPGRADE_STAGE_DIR], { what: `creating ${UPGRADE_STAGE_DIR}` });
      const sha = await o.session.upload(o.installerPath, stagedPath(node), { mode: 0o700 });
      return `copied to ${node}:${stagedPath(node)} (SHA-256 ${sha.slice(0, 16)}… verified there)`;
    },
    async install(node, onOutput) {
      const argv = installerCommand(o.installer, stagedPath(node), `${UPGRADE_STAGE_DIR}/iso-${o.installer.version}`);
      const result = await onNode(node, argv, 60 * 60_000);
      for (const line of result.stdout.trim().split("\n").filter((l) => l !== "").slice(-5)) onOutput(line);
      if (result.code !== 0)
        throw new MnhaError("REMOTE_COMMAND", `the installer failed on ${node} (exit ${result.code}): ${meaningful(result.stderr || result.stdout)}`, {
          hint: `fix the cause on ${node} (the installer's output above, its log there)`,
        });
      const now = await this.platformVersion(node);
      if (now !== o.installer.version) throw new MnhaError("REMOTE_COMMAND", `the installer exited 0 on ${node}, but it reports platform ${now ?? "unknown"}, not ${o.installer.version}`, { hint: `check ${o.platformVersionFile} on ${node}` });
    },
    async waitHealthy(node, onProgress = () => undefined) {
      const services = await waitServices(node);
      if (o.databases === null) return `${services}; no database replication set up on this pair (db.enabled is false and there is no replication password file): not waited for`;
      const standbyIsHere = node === o.self;
      const database = await waitDatabaseCaughtUp({
        standbyName: node,
        standby: standbyIsHere ? o.databases.local : o.databases.peer,
        holderName: standbyIsHere ? o.peer : o.self,
        holder: standbyIsHere ? o.databases.peer : o.databases.local,
        timeoutMs: o.catchUpTimeoutMs,
        onProgress,
      });
      return `${services}; ${database}`;
    },
    async holder() {
      return (await status()).vipOwner;
    },
    async switchover(from, to) {
      if (from !== o.self) throw new MnhaError("OPERATION_REFUSED", `the VIP is on ${from}, not on this node: the switchover is asked of the holder`, { hint: `run upgrade-mn on ${from}` });
      // demote is refused in maintenance: lifted for the handoff only, put back at once.
      await this.maintenance(false);
      try {
        // The peer's leaving maintenance reaches this node's election over the peer link: wait until it may take over.
        const deadline = performance.now() + 30_000;
        for (;;) {
          const report = await status();
          if ("eligible" in report.peer && report.peer.eligible && (report.ops?.peer?.maintenance ?? null) === null) break;
          if (performance.now() > deadline) throw new MnhaError("SWITCHOVER_FAILED", `${to} did not become eligible to take the VIP within 30 s${"reasons" in report.peer ? ` (${report.peer.reasons.join("; ")})` : ""}`, { hint: "see mnha status" });
          await sleep(200);
        }
        const result = await o.client(60_000).demote();
        if (!result.ok || result.to !== to) throw new MnhaError("SWITCHOVER_FAILED", `the switchover to ${to} did not happen: ${result.message}`, { hint: "see mnha status" });
        // This node's view of the holder follows the peer's report: wait until it shows the new holder.
        const shown = performance.now() + 30_000;
        while ((await status()).vipOwner !== to) {
          if (performance.now() > shown) throw new MnhaError("SWITCHOVER_FAILED", `${to} took the VIP, but this node does not see it as the holder after 30 s`, { hint: "see mnha status" });
          await sleep(200);
        }
        return `${to} holds the VIP (${result.tookMs} ms)`;
      } finally {
        await this.maintenance(true);
      }
    },
  };
}

/** The last lines of a command's output, without the SSH server's notices. */
function meaningful(text: string): string {
  return text.trim().split("\n").filter((line) => line.trim() !== "" && !/^Could not chdir to home directory/.test(line)).slice(-3).join(" | ");
}
