/**
 * The floor under the idle cost (issue 12): what the work an idle agent must do at the
 * defaults costs in its simplest Node.js form, part by part, each in its own process with the
 * agent's Node.js flags and environment, on loopback only (bench/floor/workload.mjs). Set
 * beside bench/idle-cost.ts it tells how much of the agent's cost is the agent and how much
 * is the runtime doing the required work at all.
 *
 *   pnpm build
 *   node --import tsx bench/idle-floor.ts --seconds 60 --label NAME
 *
 * CPU is process CPU time over wall time (utime + stime, from /proc), after a 5 s warm-up;
 * RSS is VmRSS at the end. Results: bench/results/idle-floor-<date>-<label>.md|csv.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { AGENT_ENV, AGENT_NODE_FLAGS, REPO_ROOT } from "../test/lab/constants.js";
import { clockTicks, cpuTicks, rssKb } from "../test/lab/bench-procstat.js";
import { csv, dateStamp, describeMachine, intFlag, machineLines, markdownTable, parseFlags, runBenchmarkMain, writeResults } from "../test/lab/bench-report.js";
import { monoNow, sleep } from "../test/lab/exec.js";

const USAGE = "node --import tsx bench/idle-floor.ts [--seconds 60] [--label NAME]";
const WORKLOAD = resolve(REPO_ROOT, "bench/floor/workload.mjs");
const WARMUP_MS = 5_000;

interface Workload {
  mode: string;
  what: string;
  /** A far end runs in its own process (not measured unless `symmetric`). */
  server: boolean;
  /** Both ends do the same work (the peer link): the worse of the two is reported. */
  symmetric: boolean;
}

const WORKLOADS: readonly Workload[] = [
  { mode: "timers", what: "a 100 ms timer that does nothing (bare runtime)", server: false, symmetric: false },
  { mode: "tcp", what: "TCP, 300 bytes each way every 100 ms (the heartbeats' packets alone)", server: true, symmetric: true },
  { mode: "peer-link", what: "WebSocket heartbeats each way every 100 ms: JSON, AES-256-GCM, zod", server: true, symmetric: true },
  { mode: "http-checks", what: "HTTP keep-alive checks, 2 targets every 200 ms (10 requests/s)", server: true, symmetric: false },
  { mode: "modules", what: "the agent's built module graph loaded, idle", server: false, symmetric: false },
  { mode: "store-worker", what: "an idle worker thread with a better-sqlite3 database open", server: false, symmetric: false },
  { mode: "code-and-store", what: "both: the module graph and the store's worker, before any work", server: false, symmetric: false },
];

interface Measured {
  workload: Workload;
  cpuPercent: number;
  rssMb: number;
}

function start(mode: string, role: string, port: number, seconds: number): ChildProcess {
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, WORKLOAD, mode, role, String(port), String(seconds)], {
    env: { ...process.env, ...AGENT_ENV },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

async function measure(workload: Workload, port: number, seconds: number): Promise<Measured> {
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
    await sleep(seconds * 1000);
    const took = (monoNow() - began) / 1000;
    const cpu = measured.map((child, i) => (100 * ((cpuTicks(child.pid ?? -1)?.total ?? Number.NaN) - (first[i] as number))) / clockTicks() / took);
    const rss = measured.map((child) => (rssKb(child.pid ?? -1) ?? Number.NaN) / 1024);
    if ([...cpu, ...rss].some((v) => Number.isNaN(v))) throw new Error(`workload ${workload.mode} ended early (see its stderr above)`);
    return { workload, cpuPercent: Math.max(...cpu), rssMb: Math.max(...rss) };
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { seconds: "string", label: "string" }, USAGE);
  const seconds = intFlag(flags, "seconds", 60, 3_600);
  const label = typeof flags["label"] === "string" ? flags["label"].replace(/[^a-z0-9-]/gi, "") : "run";
  const machine = describeMachine();
  const results: Measured[] = [];
  let port = 18_760;
  for (const workload of WORKLOADS) {
    console.log(`  ${workload.mode}: ${seconds} s`);
    results.push(await measure(workload, port++, seconds));
  }
  const bare = results.find((r) => r.workload.mode === "timers");
  const rows = results.map((r) => [r.workload.mode, r.workload.what, r.cpuPercent.toFixed(2), r.rssMb.toFixed(1), bare && r !== bare ? `+${(r.rssMb - bare.rssMb).toFixed(1)}` : ""]);
  const codeAndStore = results.find((r) => r.workload.mode === "code-and-store");
  const required = results.filter((r) => r.workload.mode === "peer-link" || r.workload.mode === "http-checks").reduce((sum, r) => sum + r.cpuPercent, 0);
  const markdown = [
    `# Idle floor, ${dateStamp()}${label !== "run" ? ` (${label})` : ""}`,
    "",
    ...machineLines(machine),
    `- each workload in its own process (bench/floor/workload.mjs), loopback only, ${seconds} s after a ${WARMUP_MS / 1000} s warm-up`,
    `- Node.js flags: ${AGENT_NODE_FLAGS.join(" ") || "none"}; environment: ${Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`).join(" ") || "none"} (the agent's)`,
    "- CPU: process CPU time over wall time, % of one core (for the symmetric peer link and TCP, the busier end); RSS: VmRSS at the end",
    "",
    ...markdownTable(["workload", "what it does", "CPU (% of one core)", "RSS (MB)", "RSS over the bare runtime (MB)"], rows),
    "",
    `The peer link and the HTTP checks alone, in their simplest form: **${required.toFixed(2)} % of one core** (the issue's target for the whole agent: 1.5 %).`,
    ...(codeAndStore ? ["", `The agent's code and its store worker, before any work: **${codeAndStore.rssMb.toFixed(1)} MB** (the issue's target for the whole agent: 70 MB).`] : []),
    "",
  ].join("\n");
  const csvText = csv(["label", "mode", "cpu_percent", "rss_mb", "seconds"], results.map((r) => [label, r.workload.mode, r.cpuPercent, r.rssMb, seconds]));
  const written = writeResults(`idle-floor-${dateStamp()}-${label}`, markdown, csvText);
  console.log(markdown);
  console.log(`written: ${written.md}, ${written.csv}`);
  return 0;
}

runBenchmarkMain("idle-floor", main);
