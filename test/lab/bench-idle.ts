/**
 * The idle-cost benchmark (bench/idle-cost.ts): what an idle agent costs at the documented defaults (issue 12: ≤ 1.5 % of one core and
 * ≤ 70 MB RSS per agent over 5 minutes). Brings up the lab with the checks at their default
 * timing (every 200 ms, timeout 1 s; heartbeats every 100 ms, gateway ping every 500 ms,
 * audit store and metrics on), waits, then measures each node's agent, lease guard and
 * keepalived from /proc: CPU as process CPU time (utime + stime, with reaped children) over
 * wall time — which a busy machine barely changes — and VmRSS sampled every 10 s.
 *
 *   pnpm build
 *   MNHA_LAB=hperf node --import tsx bench/idle-cost.ts --seconds 300 --label after
 *   MNHA_LAB=hperf node --import tsx bench/idle-cost.ts --seconds 60 --profile /tmp/prof
 *
 * --profile DIR runs the agents with --cpu-prof and --heapsnapshot-signal (profiles and a
 * heap snapshot of each agent land in DIR; profiling costs CPU, so such a run's numbers are
 * not the benchmark's). --heap-snapshots DIR only takes a heap snapshot of each agent when the
 * window opens and when it closes (diff them in Chrome DevTools' Comparison view to see what
 * grew); the pause each snapshot causes falls outside the measured window, but its memory
 * stays with the agent (RSS about 90 MB higher), so neither kind of run writes result files.
 * --with-floor then takes the lab down and measures the floor under that cost
 * (test/lab/bench-floor.ts: the peer link's and the HTTP checks' work in their simplest form,
 * and the agent's code before any work, 60 s each) so that the report sets the agents beside
 * a floor measured in the same hour: on this host the absolute figure moves by a factor of
 * two within a day, the ratio does not (docs/benchmarks.md, eighth round).
 * Results: bench/results/idle-cost-<date>-<label>.md|csv, and each agent's RSS, private
 * memory and CPU ticks every 10 s (its V8 heap every minute) in
 * idle-cost-<date>-<label>-series.csv.
 */
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { createLogger } from "@mnha/shared";
import { Lab } from "./lab.js";
import { AGENT_ENV, AGENT_NODE_FLAGS, MN_NODES, LAB_NAME, LAB_PREFIX, REPO_ROOT, type MnNode } from "./constants.js";
import { MnhaSystem } from "./bench-systems.js";
import { measureFloor, requiredCpuPercent } from "./bench-floor.js";
import { clockTicks, costBetween, cpuTicks, memorySplit, rssKb, sampleProcesses, type HeapFigures } from "./bench-procstat.js";
import { privateMb, scrapeHeap } from "./agent-memory.js";
import { csv, dateStamp, describeMachine, intFlag, labelFlag, machineLines, markdownTable, median, parseFlags, writeCsvResult, writeResults } from "./bench-report.js";
import { monoNow, sleep } from "./exec.js";

const USAGE = "MNHA_LAB=hperf node --import tsx bench/idle-cost.ts [--seconds 300 (up to 14400)] [--warmup 30] [--label NAME] [--profile DIR | --heap-snapshots DIR] [--node-args flag=value,...] [--keep-up] [--with-floor]";
/** Issue 12's targets per agent. */
const TARGETS = { cpuPercent: 1.5, rssMb: 70 };
/**
 * The targets proposed in issue 12's closing notes in their place, which this host can judge:
 * CPU as a multiple of the floor measured in the same hour, RSS with the node binary's shared
 * pages counted, and the agent's private memory.
 */
const PROPOSED_TARGETS = { cpuTimesFloor: 1.5, rssMb: 90, privateMb: 45 };
/** The floor's workloads that --with-floor runs, and for how long each. */
const FLOOR_MODES = ["peer-link", "http-checks", "code-and-store"];
const FLOOR_SECONDS = 60;

interface AgentSample {
  /** Since the window opened. */
  seconds: number;
  node: MnNode;
  rssMb: number;
  /** utime + stime of the agent, in clock ticks. */
  ticks: number;
  /** Its private resident memory (smaps_rollup), null when unreadable. */
  privateMb: number | null;
  /** The main isolate's V8 heap from the agent's own metrics, every minute; null in between. */
  heap: HeapFigures | null;
}

/** The heap every sixth 10-s sample: a scrape costs the agent a little CPU. */
const HEAP_EVERY_SAMPLES = 6;

/**
 * The window cut into 10-minute parts (1-minute parts in runs under 20 minutes): per agent the
 * RSS's minimum / median / maximum, the private memory and V8 heap at the part's end, and the
 * CPU in each part. Empty when there are fewer than two.
 */
function windowLines(series: readonly AgentSample[], took: number, holder: MnNode | null): string[] {
  const partS = took >= 1_200 ? 600 : 60;
  const parts = Math.floor(took / partS);
  if (parts < 2) return [];
  const rows: string[][] = [];
  for (let part = 0; part < parts; part++) {
    const row = [`${(part * partS) / 60}–${((part + 1) * partS) / 60}`];
    for (const node of MN_NODES) {
      // From the last sample before the part (its CPU starts there) to the last one in it.
      const inPart = series.filter((x) => x.node === node && x.seconds > part * partS && x.seconds <= (part + 1) * partS + 1);
      const before = series.filter((x) => x.node === node && x.seconds <= part * partS + 1).at(-1);
      const rss = inPart.map((x) => x.rssMb);
      const last = inPart.at(-1);
      const lastHeap = inPart.filter((x) => x.heap !== null).at(-1)?.heap;
      row.push(rss.length > 0 ? `${Math.min(...rss).toFixed(1)} / ${median(rss).toFixed(1)} / ${Math.max(...rss).toFixed(1)}` : "");
      row.push([last?.privateMb, lastHeap?.usedMb, lastHeap?.totalMb].map((v) => (v === null || v === undefined ? "–" : v.toFixed(1))).join(" / "));
      row.push(before && last && last.seconds > before.seconds ? ((last.ticks - before.ticks) / clockTicks() / (last.seconds - before.seconds) * 100).toFixed(2) : "");
    }
    rows.push(row);
  }
  const header = ["minutes", ...MN_NODES.flatMap((node) => [`${node}${node === holder ? " (holder at the start)" : ""} RSS min / median / max (MB)`, `${node} at the part's end: private / V8 heap used / heap total (MB)`, `${node} CPU %`])];
  return [
    "",
    "The window in parts (agent samples every 10 s, in the `-series.csv` file; the heap is the main thread's, from the agent's metrics every minute, and excludes the store's worker):",
    "",
    ...markdownTable(header, rows),
  ];
}

/** The floor measured after the window, and the agents judged against it and the proposed targets. */
function floorLines(floor: Awaited<ReturnType<typeof measureFloor>>, agents: { worstCpu: number; worstRss: number; worstPrivate: number }): string[] {
  const required = requiredCpuPercent(floor);
  const ratio = agents.worstCpu / required;
  const codeAndStore = floor.find((f) => f.workload.mode === "code-and-store");
  const pass = (ok: boolean) => (ok ? "**pass**" : "**miss**");
  return [
    "",
    `## The floor in the same hour (\`--with-floor\`, measured right after the lab went down, ${FLOOR_SECONDS} s per workload)`,
    "",
    ...markdownTable(
      ["workload", "what it does", "CPU (% of one core)", "RSS (MB)"],
      floor.map((f) => [f.workload.mode, f.workload.what, f.cpuPercent.toFixed(2), f.rssMb.toFixed(1)]),
    ),
    "",
    `The required work (the peer link and the HTTP checks in their simplest form): **${required.toFixed(2)} %** of one core; the worst agent, ${agents.worstCpu.toFixed(2)} %, is **${ratio.toFixed(2)} ×** that floor.${codeAndStore ? ` The agent's code and store worker before any work: ${codeAndStore.rssMb.toFixed(1)} MB.` : ""}`,
    "",
    `Against the targets proposed in issue 12's notes: CPU ≤ ${PROPOSED_TARGETS.cpuTimesFloor} × the floor: ${ratio.toFixed(2)} × ${pass(ratio <= PROPOSED_TARGETS.cpuTimesFloor)}; RSS ≤ ${PROPOSED_TARGETS.rssMb} MB: worst ${agents.worstRss.toFixed(1)} MB ${pass(agents.worstRss <= PROPOSED_TARGETS.rssMb)}; private memory ≤ ${PROPOSED_TARGETS.privateMb} MB: worst ${Number.isNaN(agents.worstPrivate) ? "unreadable" : `${agents.worstPrivate.toFixed(1)} MB`} ${pass(agents.worstPrivate <= PROPOSED_TARGETS.privateMb)}.`,
  ];
}

export async function runIdleCost(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { seconds: "string", warmup: "string", label: "string", profile: "string", "heap-snapshots": "string", "node-args": "string", "keep-up": "boolean", "with-floor": "boolean" }, USAGE);
  // Up to four hours: long enough to tell a drift of a megabyte an hour from the heap settling.
  const seconds = intFlag(flags, "seconds", 300, 14_400);
  const warmup = intFlag(flags, "warmup", 30, 600);
  const label = labelFlag(flags) ?? "run";
  const profileDir = typeof flags["profile"] === "string" ? flags["profile"] : null;
  if (profileDir !== null) mkdirSync(profileDir, { recursive: true });
  // A heap snapshot of each agent when the window opens and when it closes, to diff what grew.
  const snapshotDir = typeof flags["heap-snapshots"] === "string" ? flags["heap-snapshots"] : null;
  if (snapshotDir !== null && profileDir !== null) {
    console.error(`--heap-snapshots and --profile: choose one (--profile already takes a heap snapshot at the end)\n${USAGE}`);
    return 2;
  }
  const withFloor = flags["with-floor"] === true;
  // The floor is measured on a quiet machine beside a result that is written: not beside a lab
  // left up, nor after a diagnostic run that writes no result.
  if (withFloor && (flags["keep-up"] === true || profileDir !== null || snapshotDir !== null)) {
    console.error(`--with-floor measures the floor after the lab is down and beside a result that is written: it cannot go with --keep-up, --profile or --heap-snapshots\n${USAGE}`);
    return 2;
  }
  if (snapshotDir !== null) mkdirSync(snapshotDir, { recursive: true });
  // Extra Node.js flags for the agents, to try a setting before it goes into AGENT_NODE_FLAGS
  // (comma-separated, without the leading dashes: --node-args max-semi-space-size=1,jitless).
  const extraNodeArgs = typeof flags["node-args"] === "string" ? flags["node-args"].split(",").filter((a) => a.length > 0).map((a) => `--${a}`) : [];
  const logger = createLogger({ level: "warn", pretty: true, destination: process.stderr });
  const machine = describeMachine();
  const lab = new Lab({
    logger,
    // The documented defaults: drop the lab's faster check timing (100 ms / 500 ms).
    config: {
      customize: (_node, config) => ({
        ...config,
        services: (config.services ?? []).map((service) => {
          const { intervalMs: _interval, timeoutMs: _timeout, ...check } = service.check as Record<string, unknown>;
          return { ...service, check } as typeof service;
        }),
      }),
    },
    agentNodeArgs: [
      ...extraNodeArgs,
      ...(profileDir !== null ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--diagnostic-dir=${profileDir}`, "--heapsnapshot-signal=SIGUSR2"] : []),
      ...(snapshotDir !== null ? [`--diagnostic-dir=${snapshotDir}`, "--heapsnapshot-signal=SIGUSR2"] : []),
    ],
  });
  const system = new MnhaSystem(lab);
  const loadSamples: number[] = [];
  const rssSamples = new Map<MnNode, number[]>(MN_NODES.map((node) => [node, []]));
  // Each agent every 10 s: the series file and the table of windows tell a leak from the heap settling.
  const series: AgentSample[] = [];
  let interrupted = false;
  // Ctrl-C also ends the floor's measurement (--with-floor), which runs after the lab is down.
  const stopFloor = new AbortController();
  const onSignal = () => {
    interrupted = true;
    stopFloor.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  console.log(`idle cost in lab ${LAB_PREFIX}: warm-up ${warmup} s, window ${seconds} s${profileDir ? `, profiling into ${profileDir}` : ""}${snapshotDir ? `, heap snapshots into ${snapshotDir}` : ""}`);
  let result: { markdown: string; csvRows: unknown[][]; seriesCsv: string; worstCpu: number; worstRss: number; worstPrivate: number } | null = null;
  try {
    const stable = await lab.up({ fresh: true });
    console.log(`  up: holder ${stable.holder ?? "?"}`);
    await sleep(warmup * 1000);
    const processes = new Map<MnNode, { pid: number; role: string }[]>();
    for (const node of MN_NODES) processes.set(node, await system.processes(node));
    const snapshot = async () => {
      if (snapshotDir === null) return;
      for (const node of MN_NODES) {
        const agent = processes.get(node)?.find((p) => p.role === "agent");
        if (agent && cpuTicks(agent.pid) !== null) process.kill(agent.pid, "SIGUSR2");
      }
      // Writing a snapshot stops the agent's loop for a moment; let it settle before measuring.
      await sleep(15_000);
    };
    await snapshot();
    const first = new Map(MN_NODES.map((node) => [node, sampleProcesses(processes.get(node) ?? [])]));
    const started = monoNow();
    for (const node of MN_NODES) {
      const agent = first.get(node)?.find((p) => p.role === "agent");
      if (agent) series.push({ seconds: 0, node, rssMb: agent.rssKb / 1024, ticks: agent.ticks, privateMb: privateMb(agent.pid), heap: await scrapeHeap(node) });
    }
    const loadStart = loadavg().map((l) => l.toFixed(2)).join(" ");
    let samples = 0;
    while (!interrupted && monoNow() - started < seconds * 1000) {
      samples++;
      await sleep(Math.min(10_000, seconds * 1000 - (monoNow() - started)));
      loadSamples.push(loadavg()[0] ?? 0);
      for (const node of MN_NODES) {
        const agent = processes.get(node)?.find((p) => p.role === "agent");
        const rss = agent ? rssKb(agent.pid) : null;
        if (rss !== null) rssSamples.get(node)?.push(rss / 1024);
        const ticks = agent ? cpuTicks(agent.pid) : null;
        if (agent && rss !== null && ticks !== null) {
          const at = (monoNow() - started) / 1000;
          const heap = samples % HEAP_EVERY_SAMPLES === 0 ? await scrapeHeap(node) : null;
          series.push({ seconds: at, node, rssMb: rss / 1024, ticks: ticks.total, privateMb: privateMb(agent.pid), heap });
        }
      }
    }
    const took = (monoNow() - started) / 1000;
    const loadEnd = loadavg().map((l) => l.toFixed(2)).join(" ");
    const costs = MN_NODES.map((node) => ({ node, roles: costBetween(first.get(node) ?? [], sampleProcesses(processes.get(node) ?? []), took) }));
    const holder = stable.holder;
    const rows: string[][] = [];
    const csvRows: unknown[][] = [];
    for (const { node, roles } of costs) {
      const rss = rssSamples.get(node) ?? [];
      for (const role of roles) {
        const isAgent = role.role === "agent";
        rows.push([
          node + (node === holder ? " (holder)" : ""),
          role.role,
          role.cpuPercent.toFixed(2),
          role.childCpuPercent.toFixed(2),
          role.rssMb.toFixed(1),
          isAgent && rss.length > 0 ? `${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)}` : "",
        ]);
        csvRows.push([label, node, node === holder ? "holder" : "standby", role.role, role.cpuPercent, role.childCpuPercent, role.rssMb, isAgent && rss.length > 0 ? Math.max(...rss) : "", took]);
      }
    }
    const agents = costs.map((c) => c.roles.find((r) => r.role === "agent"));
    const worstCpu = Math.max(...agents.map((a) => a?.cpuPercent ?? Number.NaN));
    const worstRss = Math.max(...MN_NODES.flatMap((node) => rssSamples.get(node) ?? []));
    const pass = (ok: boolean) => (ok ? "**pass**" : "**miss**");
    // RSS counts the node binary's and libraries' file pages in full in every Node.js process;
    // the private part is what the agent alone costs the machine.
    const splitRows = MN_NODES.flatMap((node) => {
      const agent = processes.get(node)?.find((p) => p.role === "agent");
      const split = agent ? memorySplit(agent.pid) : null;
      const mb = (kb: number) => (kb / 1024).toFixed(1);
      return split ? [[node + (node === holder ? " (holder)" : ""), mb(split.rssKb), mb(split.privateKb), mb(split.sharedKb), mb(split.pssKb)]] : [];
    });
    const meanLoad = loadSamples.length > 0 ? loadSamples.reduce((a, b) => a + b, 0) / loadSamples.length : Number.NaN;
    const markdown = [
      `# Idle cost at the defaults, ${machine.date.slice(0, 10)} (${label})`,
      "",
      ...machineLines(machine),
      `- lab \`${LAB_PREFIX}\`; checks at their default timing (every 200 ms, timeout 1 s, fall/rise 2) on the lab's three services (2 HTTP, 1 MariaDB query); heartbeats 100 ms; gateway ping 500 ms; audit store and metrics on`,
      `- warm-up ${warmup} s after the lab was stable, then a window of ${took.toFixed(0)} s${interrupted ? " (interrupted)" : ""}`,
      `- load average (1 min): ${loadStart} at the start, ${loadEnd} at the end, mean ${meanLoad.toFixed(2)} over the window (2 CPUs shared with other work: CPU here is process CPU time ÷ wall time, which load barely affects)`,
      `- agents' Node.js flags: ${[...AGENT_NODE_FLAGS, ...extraNodeArgs].join(" ") || "none"} (the lab's AGENT_NODE_FLAGS${extraNodeArgs.length > 0 ? " and --node-args" : ""})`,
      `- agents' added environment: ${Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${value}`).join(" ") || "none"} (the lab's AGENT_ENV)`,
      `- CPU ticks per second: ${clockTicks()}${profileDir ? "; **the agents ran with --cpu-prof: not a benchmark run**" : ""}${snapshotDir ? "; **heap snapshots taken: each leaves the agent's RSS about 90 MB higher, not a benchmark run**" : ""}`,
      "",
      ...markdownTable(["node", "process", "CPU (% of one core)", "of which reaped children", "RSS at the end (MB)", "agent RSS over the window (MB)"], rows),
      "",
      `Targets per agent: CPU ≤ ${TARGETS.cpuPercent} % of one core: worst ${worstCpu.toFixed(2)} % ${pass(worstCpu <= TARGETS.cpuPercent)}; RSS ≤ ${TARGETS.rssMb} MB: worst ${worstRss.toFixed(1)} MB ${pass(worstRss <= TARGETS.rssMb)}.`,
      ...(splitRows.length > 0
        ? ["", "Each agent's resident memory at the end (/proc/PID/smaps_rollup): its private pages, and the shared ones (mostly the node binary's and libraries' file pages, which RSS counts in full in every Node.js process):", "", ...markdownTable(["node", "RSS (MB)", "private (MB)", "shared (MB)", "PSS (MB)"], splitRows)]
        : []),
      ...windowLines(series, took, holder),
    ].join("\n");
    const mb = (value: number | null | undefined) => (value === null || value === undefined ? "" : value.toFixed(1));
    const seriesCsv = csv(
      ["seconds", "node", "agent_rss_mb", "agent_cpu_ticks", "agent_private_mb", "heap_used_mb", "heap_total_mb", "external_mb"],
      series.map((x) => [x.seconds.toFixed(1), x.node, x.rssMb.toFixed(1), x.ticks, mb(x.privateMb), mb(x.heap?.usedMb), mb(x.heap?.totalMb), mb(x.heap?.externalMb)]),
    );
    const privates = series.map((x) => x.privateMb).filter((v): v is number => v !== null);
    const worstPrivate = privates.length > 0 ? Math.max(...privates) : Number.NaN;
    result = { markdown, csvRows, seriesCsv, worstCpu, worstRss, worstPrivate };
    await snapshot();
    if (profileDir !== null) {
      // A heap snapshot of each agent, then a clean stop so --cpu-prof writes its profile.
      for (const node of MN_NODES) {
        const agent = processes.get(node)?.find((p) => p.role === "agent");
        if (agent && cpuTicks(agent.pid) !== null) process.kill(agent.pid, "SIGUSR2");
      }
      await sleep(15_000);
      for (const node of [...MN_NODES].reverse()) await lab.stopAgent(node).catch(() => undefined);
    }
  } finally {
    if (flags["keep-up"] !== true) await lab.down({ archiveTo: `${REPO_ROOT}/.lab/${LAB_NAME}/idle-cost/last-lab` });
  }
  if (result === null) return 1;
  if (withFloor && !interrupted) {
    console.log(`lab down; the floor beside it (${FLOOR_MODES.join(", ")}: ${FLOOR_SECONDS} s each)`);
    const floor = await measureFloor(FLOOR_SECONDS, FLOOR_MODES, (line) => console.log(line), stopFloor.signal).catch((error: unknown) => {
      if (!stopFloor.signal.aborted) throw error;
      return null;
    });
    if (floor === null) {
      // Interrupted: the agents' figures are whole; the report says the floor is missing.
      result.markdown += "\n\nThe floor (`--with-floor`) was interrupted (Ctrl-C) and is not in this report.";
    } else {
      result.markdown += `\n${floorLines(floor, result).join("\n")}`;
      // The floor's rows in the same file: process "floor:<workload>", its measuring time as the window.
      result.csvRows.push(...floor.map((f) => [label, "", "", `floor:${f.workload.mode}`, f.cpuPercent, "", f.rssMb, "", FLOOR_SECONDS]));
    }
  }
  console.log(`\n${result.markdown}`);
  // A profiled agent pays for the profiler; a snapshotted one keeps the snapshot's buffers in malloc.
  if (profileDir === null && snapshotDir === null) {
    const base = `idle-cost-${dateStamp()}-${label}`;
    const csvText = csv(["label", "node", "role_at_start", "process", "cpu_pct_one_core", "children_cpu_pct_one_core", "rss_mb_end", "agent_rss_mb_max", "window_s"], result.csvRows);
    const files = writeResults(base, result.markdown, csvText);
    const seriesFile = writeCsvResult(`${base}-series`, result.seriesCsv);
    console.log(`written: ${files.md}, ${files.csv}, ${seriesFile}`);
  }
  return 0;
}
