/**
 * Tearing the lab down: kill every process in every lab namespace, delete the namespaces,
 * remove the state directory. Works when nothing is up, after the lab crashed half-way, and
 * when run twice. Node built-ins only (see procfs.ts).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { LAB_PREFIX, LAB_STATE_DIR } from "./constants.js";
import { namespacePids, signal, waitGone } from "./procfs.js";
import { removeLabUser, removeSystemdCgroups } from "./sshd.js";

export interface TeardownReport {
  namespacesRemoved: string[];
  processesKilled: number;
  problems: string[];
}

function ip(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolveResult) => {
    execFile("ip", args, { timeout: 10_000, encoding: "utf8" }, (error, stdout, stderr) => resolveResult({ ok: error === null, stdout, stderr: stderr || (error?.message ?? "") }));
  });
}

/** Namespaces whose name starts with the lab prefix and a dash (never any other). */
export async function labNamespacesPresent(): Promise<string[]> {
  const listed = await ip(["netns", "list"]);
  if (!listed.ok) return [];
  return listed.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name.startsWith(`${LAB_PREFIX}-`));
}

export async function tearDownLab(): Promise<TeardownReport> {
  const report: TeardownReport = { namespacesRemoved: [], processesKilled: 0, problems: [] };
  const namespaces = await labNamespacesPresent();
  // Kill everything first (all namespaces), so that no agent notices its peer going away.
  const killed: number[] = [];
  for (const namespace of namespaces) {
    for (const pid of await namespacePids(namespace)) {
      signal(pid, "SIGCONT"); // a stopped process still dies from SIGKILL, but be plain about it
      if (signal(pid, "SIGKILL")) killed.push(pid);
    }
  }
  const survivors = await waitGone(killed, 5_000);
  report.processesKilled = killed.length - survivors.length;
  if (survivors.length > 0) report.problems.push(`processes still alive after SIGKILL: ${survivors.join(", ")}`);
  for (const namespace of namespaces) {
    // A process started while we were killing (a restore command) may still hold the namespace open; one more round.
    for (const pid of await namespacePids(namespace)) signal(pid, "SIGKILL");
    const removed = await ip(["netns", "delete", namespace]);
    if (removed.ok) report.namespacesRemoved.push(namespace);
    else report.problems.push(`ip netns delete ${namespace}: ${removed.stderr.trim()}`);
  }
  // A node booted as a systemd machine (systemd-node.sh) leaves cgroups of its own behind.
  if (existsSync(LAB_STATE_DIR)) for (const node of readdirSync(LAB_STATE_DIR)) report.problems.push(...removeSystemdCgroups(node));
  const userProblem = await removeLabUser();
  if (userProblem !== null) report.problems.push(userProblem);
  try {
    rmSync(LAB_STATE_DIR, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    report.problems.push(`removing ${LAB_STATE_DIR}: ${(error as Error).message}`);
  }
  return report;
}
