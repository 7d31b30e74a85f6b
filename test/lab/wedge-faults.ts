/**
 * Mishaps around the agent (issue 7, "never wedge"): a second agent started by hand, the lease
 * guard's pid file removed, keepalived.conf overwritten, a keepalived or arping binary that
 * will not start, the data dir made read-only. Each acts on one node the way an operator (or a
 * broken disk) would, and each can be undone.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import type { HaEvent } from "../../packages/agent/src/contracts.js";
import { arpingPath, type ConfigOverrides } from "./config-writer.js";
import { AGENT_MAIN, HOSTS, nodePaths, type MnNode } from "./constants.js";
import { monoNow, run, runIn } from "./exec.js";
import type { Lab } from "./lab.js";
import { namespacePids, readCmdline, readComm, signal, waitGone } from "./procfs.js";

/** The driver's files on a node (defaults of packages/agent/src/keepalived/paths.ts). */
export function keepalivedFiles(node: MnNode): { dir: string; gate: string; lease: string; guardPid: string; config: string } {
  const dataDir = nodePaths(node).dataDir;
  const dir = `${dataDir}/keepalived`;
  return { dir, gate: `${dir}/gate`, lease: `${dir}/lease`, guardPid: `${dir}/lease.guard.pid`, config: `${dataDir}/keepalived.conf` };
}

export interface SecondAgentResult {
  code: number;
  stderr: string;
  tookMs: number;
}

/**
 * `mnha agent --config <the node's config>` by hand inside the node's namespace while the
 * node's agent runs (as an operator would while systemd runs it). Waits for it to exit, at
 * most `timeoutMs` (then it is killed and the result says so with code -1).
 */
export async function startSecondAgent(node: MnNode, timeoutMs = 15_000): Promise<SecondAgentResult> {
  const started = monoNow();
  const result = await runIn(HOSTS[node].namespace, process.execPath, [AGENT_MAIN, "agent", "--config", nodePaths(node).config], { allowFailure: true, timeoutMs, killSignal: "SIGTERM" });
  const tookMs = monoNow() - started;
  return { code: tookMs >= timeoutMs ? -1 : result.code, stderr: result.stderr, tookMs };
}

/** What a second agent must not change on a node: processes, files, the control socket. */
export interface NodeSnapshot {
  agentPid: number | null;
  keepalivedPids: number[];
  guardPid: string | null;
  gate: string | null;
  lease: string | null;
  configSha: string | null;
  controlSocketInode: number | null;
  lockHolder: string | null;
}

const readOrNull = (file: string): string | null => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
};

export async function nodeSnapshot(lab: Lab, node: MnNode): Promise<NodeSnapshot> {
  const files = keepalivedFiles(node);
  const config = readOrNull(files.config);
  const socket = nodePaths(node).controlSocket;
  return {
    agentPid: await lab.agentPid(node),
    keepalivedPids: (await lab.keepalivedPids(node)).sort((a, b) => a - b),
    guardPid: readOrNull(files.guardPid),
    gate: readOrNull(files.gate),
    lease: readOrNull(files.lease),
    configSha: config === null ? null : createHash("sha256").update(config).digest("hex"),
    controlSocketInode: existsSync(socket) ? statSync(socket).ino : null,
    lockHolder: readOrNull(`${nodePaths(node).dataDir}/agent.lock`),
  };
}

export function removeGuardPidFile(node: MnNode): void {
  unlinkSync(keepalivedFiles(node).guardPid);
}

export function garbleKeepalivedConfig(node: MnNode): void {
  writeFileSync(keepalivedFiles(node).config, "vrrp_instance {{{ garbage written by the lab\n", { mode: 0o600 });
}

/** Binaries a test can make fail to start on one node: each config points at a wrapper. */
export type BreakableBinary = "keepalived" | "arping";

/** The wrapper in the node's state dir that the config points at for `binary`, and the flag file that breaks it. */
export function binaryWrapper(node: MnNode, binary: BreakableBinary): { wrapper: string; brokenFlag: string } {
  const dir = nodePaths(node).dir;
  return { wrapper: `${dir}/${binary}-wrapper`, brokenFlag: `${dir}/${binary}-broken` };
}

/**
 * Writes the node's wrapper for `binary`: it execs `real`, or exits 1 with "lab: BINARY broken
 * on purpose" on stderr while the node's flag file exists (as keepalived with a bad binary, or
 * arping without its socket, would). Returns the wrapper's path.
 */
function writeWrapper(node: MnNode, binary: BreakableBinary, real: string): string {
  const { wrapper, brokenFlag } = binaryWrapper(node, binary);
  writeFileSync(wrapper, `#!/bin/bash\n# mnha lab: a ${binary} that can be made to fail at start\n[[ -e '${brokenFlag}' ]] && { echo "lab: ${binary} broken on purpose" >&2; exit 1; }\nexec '${real}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/** Config overrides that point keepalived.binary at the node's breakable wrapper of /usr/sbin/keepalived. */
export function breakableKeepalived(base: ConfigOverrides = {}): ConfigOverrides {
  return {
    ...base,
    customize: (node, config) => {
      const next = { ...config, keepalived: { ...config.keepalived, binary: writeWrapper(node, "keepalived", "/usr/sbin/keepalived") } };
      return base.customize ? base.customize(node, next) : next;
    },
  };
}

/** Config overrides that point arpGuard.command at the node's breakable wrapper of the real arping. */
export function breakableArping(base: ConfigOverrides = {}): ConfigOverrides {
  return {
    ...base,
    customize: (node, config) => {
      const next = { ...config, arpGuard: { ...config.arpGuard, command: writeWrapper(node, "arping", arpingPath()) } };
      return base.customize ? base.customize(node, next) : next;
    },
  };
}

/** Makes `binary` fail at every start on the node (true), or run again (false). */
export function setBroken(node: MnNode, binary: BreakableBinary, broken: boolean): void {
  const { brokenFlag } = binaryWrapper(node, binary);
  if (broken) writeFileSync(brokenFlag, "");
  else rmSync(brokenFlag, { force: true });
}

/**
 * Kills the node's long-running duplicate-check arpings (`arping … -i N -w N …`, the holder
 * agent's children), as a crash or an OOM kill would; the agent starts them again. Returns the
 * pids killed, once they are gone.
 */
export async function killDuplicateCheckArpings(node: MnNode): Promise<number[]> {
  const pids = (await namespacePids(HOSTS[node].namespace)).filter((pid) => {
    const argv = readCmdline(pid);
    return readComm(pid) === "arping" && argv.includes("-i") && argv.includes("-w");
  });
  for (const pid of pids) signal(pid, "SIGKILL");
  const left = await waitGone(pids, 2_000);
  if (left.length > 0) throw new Error(`duplicate-check arpings on ${node} still alive after SIGKILL: ${left.join(", ")}`);
  return pids;
}

/**
 * Makes the node's data dir read-only for the agent and its children only: a read-only bind
 * mount inside the agent's own mount namespace (`ip netns exec` gave it one), so the lab's
 * own view, and its cleanup, are untouched. Files the agent already holds open stay
 * writable, as after a read-only remount of a real disk.
 */
export async function setDataDirReadOnly(lab: Lab, node: MnNode, readOnly: boolean): Promise<void> {
  const pid = await lab.agentPid(node);
  if (pid === null) throw new Error(`no ${node} agent to make its data dir read-only for`);
  const dir = nodePaths(node).dataDir;
  const enter = ["--target", String(pid), "--mount", "--"];
  if (readOnly) {
    await run("nsenter", [...enter, "mount", "--bind", dir, dir]);
    await run("nsenter", [...enter, "mount", "-o", "remount,bind,ro", dir]);
  } else {
    await run("nsenter", [...enter, "umount", dir], { allowFailure: true });
  }
}

/**
 * Audit events of one type (null: every type) that happened on `of` (default: `node`), as
 * `node`'s store holds them (`mnha events --json` on `node`), oldest first.
 */
export async function agentEvents(lab: Lab, node: MnNode, type: string | null, of: MnNode = node): Promise<HaEvent[]> {
  const result = await lab.agentCli(node, ["events", "--json", "--limit", "1000", "--node", of, ...(type === null ? [] : ["--type", type])], 10_000);
  if (result.code !== 0) throw new Error(`mnha events on ${node} failed: ${result.stderr.trim()}`);
  return (JSON.parse(result.stdout) as HaEvent[]).filter((e) => e.node === of && (type === null || e.type === type)).sort((a, b) => a.seq - b.seq);
}
