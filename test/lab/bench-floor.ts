/**
 * The floor under the idle cost (issue 12), shared by bench/idle-floor.ts and
 * bench/idle-cost.ts --with-floor: what the work an idle agent must do at the defaults costs in
 * its simplest Node.js form, part by part, each in its own process with the agent's Node.js
 * flags and environment, on loopback only (bench/floor/workload.mjs).
 *
 * CPU is process CPU time over wall time (utime + stime, from /proc), after a 5 s warm-up;
 * RSS is VmRSS at the end. The absolute figure moves with the host by a factor of two within a
 * day (docs/benchmarks.md, eighth round); the agent's cost over the floor measured in the same
 * hour does not, which is why the idle benchmark can measure both in one run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { AGENT_ENV, AGENT_NODE_FLAGS, REPO_ROOT } from "./constants.js";
import { clockTicks, cpuTicks, rssKb } from "./bench-procstat.js";
import { monoNow, sleep } from "./exec.js";

const WORKLOAD = resolve(REPO_ROOT, "bench/floor/workload.mjs");
const WARMUP_MS = 5_000;
/** Loopback ports, one per workload run; far from the agent's and the lab's. */
const FIRST_PORT = 18_760;

export interface FloorWorkload {
  mode: string;
  what: string;
  /** A far end runs in its own process (not measured unless `symmetric`). */
  server: boolean;
  /** Both ends do the same work (the peer link): the worse of the two is reported. */
  symmetric: boolean;
}

export const FLOOR_WORKLOADS: readonly FloorWorkload[] = [
  { mode: "timers", what: "a 100 ms timer that does nothing (bare runtime)", server: false, symmetric: false },
  { mode: "tcp", what: "TCP, 300 bytes each way every 100 ms (the heartbeats' packets alone)", server: true, symmetric: true },
  { mode: "peer-link", what: "WebSocket heartbeats each way every 100 ms: JSON, AES-256-GCM, zod", server: true, symmetric: true },
  { mode: "http-checks", what: "HTTP keep-alive checks, 2 targets every 200 ms (10 requests/s)", server: true, symmetric: false },
  { mode: "modules", what: "the agent's built module graph loaded, idle", server: false, symmetric: false },
  { mode: "store-worker", what: "an idle worker thread with a better-sqlite3 database open", server: false, symmetric: false },
  { mode: "code-and-store", what: "both: the module graph and the store's worker, before any work", server: false, symmetric: false },
];

/** The workloads whose CPU is the required work: the peer link and the two HTTP checks. */
export const REQUIRED_CPU_MODES: readonly string[] = ["peer-link", "http-checks"];

export interface FloorMeasurement {
  workload: FloorWorkload;
  cpuPercent: number;
  rssMb: number;
}

function start(mode: string, role: string, port: number, seconds: number): ChildProcess {
  return spawn(process.execPath, [...AGENT_NODE_FLAGS, WORKLOAD, mode, role, String(port), String(seconds)], {
    env: { ...process.env, ...AGENT_ENV },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function measureOne(workload: FloorWorkload, port: number, seconds: number, signal: AbortSignal | undefined): Promise<FloorMeasurement> {
  // The workloads end by themselves shortly after the window, even if this process is killed.
  const lifetime = seconds + WARMUP_MS / 1000 + 5;
  const children: ChildProcess[] = [];
  try {
    if (workload.server) {
      children.push(start(workload.mode, "server", port, lifetime));
      await sleep(500);
    }
    const client = start(workload.mode, "client", port, lifetime);
    children.push(client);
    await sleep(WARMUP_MS);
    const measured = workload.symmetric ? children : [client];
    const first = measured.map((child) => cpuTicks(child.pid ?? -1)?.total ?? Number.NaN);
    const began = monoNow();
    // Ctrl-C ends the window at once (the workloads are killed below).
    await delay(seconds * 1000, undefined, signal ? { signal } : {});
    const took = (monoNow() - began) / 1000;
    const cpu = measured.map((child, i) => (100 * ((cpuTicks(child.pid ?? -1)?.total ?? Number.NaN) - (first[i] as number))) / clockTicks() / took);
    const rss = measured.map((child) => (rssKb(child.pid ?? -1) ?? Number.NaN) / 1024);
    if ([...cpu, ...rss].some((v) => Number.isNaN(v))) throw new Error(`floor workload ${workload.mode} ended early (see its stderr above)`);
    return { workload, cpuPercent: Math.max(...cpu), rssMb: Math.max(...rss) };
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

/**
 * Runs the named workloads (all of them by default) one after another, `seconds` each.
 * Throws on an unknown mode, before anything runs; an abort of `signal` (Ctrl-C) stops the one
 * running, kills its processes and rejects with an AbortError.
 */
export async function measureFloor(
  seconds: number,
  modes: readonly string[] = FLOOR_WORKLOADS.map((w) => w.mode),
  progress: (line: string) => void = () => {},
  signal?: AbortSignal,
): Promise<FloorMeasurement[]> {
  const workloads = modes.map((mode) => {
    const workload = FLOOR_WORKLOADS.find((w) => w.mode === mode);
    if (!workload) throw new Error(`unknown floor workload ${mode}; known: ${FLOOR_WORKLOADS.map((w) => w.mode).join(", ")}`);
    return workload;
  });
  const results: FloorMeasurement[] = [];
  let port = FIRST_PORT;
  for (const workload of workloads) {
    progress(`  floor, ${workload.mode}: ${seconds} s`);
    signal?.throwIfAborted();
    results.push(await measureOne(workload, port++, seconds, signal));
  }
  return results;
}

/** The required work's CPU: the peer link's and the HTTP checks' workloads added up. */
export function requiredCpuPercent(results: readonly FloorMeasurement[]): number {
  return results.filter((r) => REQUIRED_CPU_MODES.includes(r.workload.mode)).reduce((sum, r) => sum + r.cpuPercent, 0);
}
