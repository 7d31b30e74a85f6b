/**
 * The soak: the lab runs for a set time with both CPU cores saturated (stress-ng, inside the
 * lab's gateway namespace, bounded by --timeout) while seeded random faults hit it, one at
 * a time, each healed and settled before the next. The client samples throughout. Reports
 * the failovers with a cause (a fault that may move the VIP, at most one move from the
 * faulted node per fault), the failovers without one (target 0), split-brain ARP samples
 * (target 0), the longest time without a served VIP, and each HA daemon's memory over its
 * life (RSS, private pages, and the agent's V8 heap: what grew, if anything did).
 *
 * Run through bench/soak.ts (see docs/benchmarks.md).
 */
import { existsSync, readFileSync } from "node:fs";
import { createLogger, MnhaError } from "@mnha/shared";
import { analyze, type SamplerRecord } from "./analysis.js";
import { answerMoves, answers, longestAnswerGap } from "./bench-client.js";
import { doubleHolders, NodeWatcher, type NodeSample } from "./bench-node-watch.js";
import { csv, dateStamp, describeMachine, intFlag, labelFlag, machineLines, markdownTable, median, ms, parseFlags, seededRandom, writeCsvResult, writeResults } from "./bench-report.js";
import { MnhaSystem, PlainKeepalivedSystem, type SystemName, type SystemUnderTest } from "./bench-systems.js";
import { privateMb, scrapeHeap } from "./agent-memory.js";
import { rssKb } from "./bench-procstat.js";
import { HOSTS, LAB_NAME, LAB_PREFIX, LAB_STATE_DIR, MN_NODES, REPO_ROOT, peerOf, type MnNode } from "./constants.js";
import { monoNow, sleep } from "./exec.js";
import { Lab } from "./lab.js";
import { launchDetached } from "./launch.mjs";
import { PLAIN_KEEPALIVED_COMMON, PLAIN_KEEPALIVED_FAST } from "./plain-keepalived.js";
import { namespacePids, readComm, signal, waitReaped } from "./procfs.js";

const SOAK_MEMORY_USAGE = "node --import tsx bench/soak-memory.ts bench/results/soak-<system>-<date>-seed<N>-memory.csv";
const STRESS_NG = ["/usr/bin/stress-ng", "/usr/local/bin/stress-ng"].find((p) => existsSync(p)) ?? null;
const USAGE = "MNHA_LAB=bench node --import tsx bench/soak.ts [--minutes 30] [--system mnha|keepalived-fast|keepalived-common] [--seed 1] [--cpu-workers 2] [--faults KIND,... | --faults none] [--label NAME]";
/** Time between faults: drawn from this range (s). */
const FAULT_GAP_S = { min: 8, max: 20 };
/** How long a fault with a duration lasts before it is healed (ms). */
const FAULT_HOLD_MS = 4_000;
/** A move counts as caused by a fault if it comes between the fault and this long after the lab settled. */
const CAUSE_GRACE_MS = 2_000;

type SoakFaultKind =
  | "service-kill-holder"
  | "service-kill-standby"
  | "crash-holder"
  | "crash-standby"
  | "peer-link-cut"
  | "gateway-cut-holder"
  | "gateway-cut-standby"
  | "daemon-pause-holder-300ms"
  | "keepalived-kill-holder";

const SOAK_FAULTS: readonly { kind: SoakFaultKind; mayMove: boolean }[] = [
  { kind: "service-kill-holder", mayMove: true },
  { kind: "service-kill-standby", mayMove: false },
  { kind: "crash-holder", mayMove: true },
  { kind: "crash-standby", mayMove: false },
  { kind: "peer-link-cut", mayMove: false },
  { kind: "gateway-cut-holder", mayMove: true },
  { kind: "gateway-cut-standby", mayMove: false },
  { kind: "daemon-pause-holder-300ms", mayMove: false },
  { kind: "keepalived-kill-holder", mayMove: true },
];

interface InjectedFault {
  index: number;
  kind: SoakFaultKind;
  node: MnNode;
  mayMove: boolean;
  at: number;
  /** When the lab was stable again (or the settle gave up). */
  settledAt: number;
  settled: boolean;
  note: string;
}

/** Busy share of all CPUs between two readings of /proc/stat. */
function cpuTimes(): { busy: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

async function startStress(workers: number, seconds: number): Promise<number> {
  if (STRESS_NG === null) throw new MnhaError("USAGE", "the soak needs stress-ng, which is not installed", { hint: "apt-get install -y stress-ng" });
  return launchDetached({
    namespace: HOSTS.gw.namespace,
    argv: [STRESS_NG, "--cpu", String(workers), "--timeout", `${seconds}s`, "--quiet"],
    logFile: `${LAB_STATE_DIR}/stress-ng.log`,
    pidFile: `${LAB_STATE_DIR}/stress-ng.pid`,
  });
}

async function stopStress(): Promise<void> {
  const pids = (await namespacePids(HOSTS.gw.namespace)).filter((pid) => readComm(pid).startsWith("stress-ng"));
  for (const pid of pids) signal(pid, "SIGKILL");
  await waitReaped(pids, 5_000);
}

async function inject(lab: Lab, system: SystemUnderTest, kind: SoakFaultKind, holder: MnNode): Promise<{ node: MnNode; note: string }> {
  const standby = peerOf(holder);
  switch (kind) {
    case "service-kill-holder":
      await lab.killService(holder, "mn");
      return { node: holder, note: "" };
    case "service-kill-standby":
      await lab.killService(standby, "mn");
      return { node: standby, note: "" };
    case "crash-holder":
    case "crash-standby": {
      const node = kind === "crash-holder" ? holder : standby;
      await lab.crash(node);
      await sleep(FAULT_HOLD_MS);
      await lab.boot(node, { agent: system.name === "mnha" });
      return { node, note: "booted after 4 s" };
    }
    case "peer-link-cut":
      await lab.cutPeerLink();
      await sleep(FAULT_HOLD_MS);
      await lab.healPeerLink();
      return { node: holder, note: "healed after 4 s" };
    case "gateway-cut-holder":
    case "gateway-cut-standby": {
      const node = kind === "gateway-cut-holder" ? holder : standby;
      await lab.cutGateway(node);
      await sleep(FAULT_HOLD_MS);
      await lab.healGateway(node);
      return { node, note: "healed after 4 s" };
    }
    case "daemon-pause-holder-300ms":
      await system.pauseDaemon(holder, true);
      await sleep(300);
      await system.pauseDaemon(holder, false);
      return { node: holder, note: system.name === "mnha" ? "agent SIGSTOP 300 ms" : "keepalived SIGSTOP 300 ms" };
    case "keepalived-kill-holder":
      await lab.killKeepalived(holder);
      return { node: holder, note: system.name === "mnha" ? "the agent restarts it" : "restarted by the harness (as systemd would)" };
  }
}

const RSS_SAMPLE_MS = 10_000;
/** The heap every sixth memory sample (each minute): a scrape costs the agent a little CPU. */
const HEAP_EVERY_SAMPLES = 6;
const RSS_WARM_FROM_S = 60;
const RSS_WARM_TO_S = 120;
const RSS_MIN_LIFE_S = 600;
/** The memory table's parts (s): short enough to show a climb from a plateau in 30 minutes. */
const MEMORY_PART_S = 300;
/** The memory trend is read from minute 10 (after warm-up: code compiled, the event list filling), in two halves of at least 10 minutes. */
const TREND_FROM_S = 600;
const TREND_MIN_HALF_S = 600;
/** A process fitted must have run since the soak's start (its first sample within this many seconds of it). */
const TREND_STARTED_WITHIN_S = 60;

/** One look at a daemon's memory; the private pages and the heap are null when they could not be read. */
export interface MemorySample {
  t: number;
  rssMb: number;
  privateMb: number | null;
  /** The main isolate's V8 heap: used, and committed (used + the headroom V8 keeps); external (ArrayBuffers, Buffers). */
  heapUsedMb: number | null;
  heapTotalMb: number | null;
  externalMb: number | null;
}

export type MemorySeries = ReadonlyMap<number, { node: MnNode; samples: readonly MemorySample[] }>;

interface RssRow {
  node: MnNode;
  pid: number;
  livedS: number;
  samples: number;
  startMb: number;
  endMb: number;
  maxMb: number;
  growthPercent: number;
  /** Private memory and the main thread's V8 heap used, start -> end (same windows as RSS); null when unread. */
  privateMb: { start: number; end: number } | null;
  heapUsedMb: { start: number; end: number } | null;
  heapTotalMb: { start: number; end: number } | null;
  judged: boolean;
}

/** The median of a figure over the warm window and over the last three samples that have it. */
function startEnd(samples: readonly MemorySample[], warmFrom: number, pick: (s: MemorySample) => number | null): { start: number; end: number } | null {
  const known = samples.map((s) => ({ t: s.t, v: pick(s) })).filter((s): s is { t: number; v: number } => s.v !== null);
  const warm = known.filter((s) => s.t >= warmFrom + RSS_WARM_FROM_S * 1000 && s.t <= warmFrom + RSS_WARM_TO_S * 1000).map((s) => s.v);
  // The heap is read once a minute: the warm window may hold one reading or none.
  const start = warm.length > 0 ? median(warm) : known.find((s) => s.t >= warmFrom + RSS_WARM_FROM_S * 1000)?.v;
  const end = known.slice(-3).map((s) => s.v);
  return start === undefined || end.length === 0 ? null : { start, end: median(end) };
}

/**
 * Each daemon process's memory from its warm start to its end, and whether its RSS grew past
 * 10 %. The private pages and the heap say what grew: RSS alone mixes the process's own
 * memory with the shared file pages the kernel maps in and out.
 */
export function rssGrowth(series: MemorySeries, soakStart: number): { rows: RssRow[]; verdict: string } {
  const rows: RssRow[] = [];
  for (const [pid, { node, samples }] of series) {
    if (samples.length === 0) continue;
    const first = (samples[0] as MemorySample).t;
    const base = Math.max(first, soakStart);
    const warm = samples.filter((s) => s.t >= base + RSS_WARM_FROM_S * 1000 && s.t <= base + RSS_WARM_TO_S * 1000).map((s) => s.rssMb);
    const startMb = warm.length > 0 ? median(warm) : (samples[0] as MemorySample).rssMb;
    const endMb = median(samples.slice(-3).map((s) => s.rssMb));
    const livedS = ((samples[samples.length - 1] as MemorySample).t - first) / 1000;
    rows.push({
      node,
      pid,
      livedS,
      samples: samples.length,
      startMb,
      endMb,
      maxMb: Math.max(...samples.map((s) => s.rssMb)),
      growthPercent: ((endMb - startMb) / startMb) * 100,
      privateMb: startEnd(samples, base, (s) => s.privateMb),
      heapUsedMb: startEnd(samples, base, (s) => s.heapUsedMb),
      heapTotalMb: startEnd(samples, base, (s) => s.heapTotalMb),
      judged: livedS >= RSS_MIN_LIFE_S && warm.length > 0,
    });
  }
  rows.sort((a, b) => b.livedS - a.livedS);
  const judged = rows.filter((r) => r.judged);
  const worst = judged.reduce<RssRow | null>((w, r) => (w === null || r.growthPercent > w.growthPercent ? r : w), null);
  const verdict =
    worst === null
      ? `No daemon process lived ${RSS_MIN_LIFE_S / 60} minutes: growth not judged.`
      : `Largest growth over a process's life: ${worst.growthPercent.toFixed(1)} % (${worst.node}, pid ${worst.pid}, ${(worst.livedS / 60).toFixed(1)} min): **${worst.growthPercent <= 10 ? "pass" : "miss"}** (target within 10 %).`;
  return { rows, verdict };
}

/**
 * The judged processes' memory in 5-minute parts of the soak: the RSS, private and heap medians
 * of each part. A leak climbs part after part; a heap settling under load steps up and stays.
 */
export function memoryParts(series: MemorySeries, judgedPids: readonly number[], soakStart: number, soakEnd: number): string[] {
  const parts = Math.floor((soakEnd - soakStart) / (MEMORY_PART_S * 1000));
  if (parts < 2 || judgedPids.length === 0) return [];
  const fmt = (values: number[]) => (values.length > 0 ? median(values).toFixed(1) : "–");
  const rows: string[][] = [];
  for (let part = 0; part < parts; part++) {
    const from = soakStart + part * MEMORY_PART_S * 1000;
    const to = from + MEMORY_PART_S * 1000;
    const row = [`${(part * MEMORY_PART_S) / 60}–${((part + 1) * MEMORY_PART_S) / 60}`];
    for (const pid of judgedPids) {
      const inPart = (series.get(pid)?.samples ?? []).filter((s) => s.t >= from && s.t < to);
      row.push(
        [
          fmt(inPart.map((s) => s.rssMb)),
          fmt(inPart.map((s) => s.privateMb).filter((v): v is number => v !== null)),
          fmt(inPart.map((s) => s.heapUsedMb).filter((v): v is number => v !== null)),
          fmt(inPart.map((s) => s.heapTotalMb).filter((v): v is number => v !== null)),
        ].join(" / "),
      );
    }
    rows.push(row);
  }
  const header = ["minutes", ...judgedPids.map((pid) => `${series.get(pid)?.node ?? "?"} pid ${pid}: RSS / private / V8 heap used / V8 heap committed (MB, medians)`)];
  return ["", "The judged processes in 5-minute parts (every sample in the `-memory.csv` file):", "", ...markdownTable(header, rows)];
}

/** Least-squares slope of one figure over [from, to), in MB an hour; null with fewer than three readings. */
export function trendMbPerHour(samples: readonly MemorySample[], from: number, to: number, pick: (s: MemorySample) => number | null): number | null {
  const points = samples.filter((s) => s.t >= from && s.t < to).flatMap((s) => (pick(s) === null ? [] : [{ x: s.t / 3_600_000, y: pick(s) as number }]));
  if (points.length < 3) return null;
  const meanX = points.reduce((sum, p) => sum + p.x, 0) / points.length;
  const meanY = points.reduce((sum, p) => sum + p.y, 0) / points.length;
  const sxx = points.reduce((sum, p) => sum + (p.x - meanX) ** 2, 0);
  return sxx === 0 ? null : points.reduce((sum, p) => sum + (p.x - meanX) * (p.y - meanY), 0) / sxx;
}

/**
 * Whether the judged processes' memory levels off: its trend after warm-up (minute 10) in the
 * first and the second half of what is left of the soak. A leak keeps its slope; memory that
 * settles has a second half flatter than the first. Needs at least 20 minutes after warm-up.
 */
export function memoryTrends(series: MemorySeries, judgedPids: readonly number[], soakStart: number, soakEnd: number): string[] {
  const from = soakStart + TREND_FROM_S * 1000;
  if (soakEnd - from < 2 * TREND_MIN_HALF_S * 1000 || judgedPids.length === 0) return [];
  const middle = from + (soakEnd - from) / 2;
  const minute = (t: number) => Math.round((t - soakStart) / 60_000);
  const fmt = (v: number | null) => (v === null ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(1)}`);
  const figures: readonly { name: string; pick: (s: MemorySample) => number | null }[] = [
    { name: "RSS", pick: (s) => s.rssMb },
    { name: "private", pick: (s) => s.privateMb },
    { name: "V8 heap used", pick: (s) => s.heapUsedMb },
    { name: "V8 heap committed", pick: (s) => s.heapTotalMb },
  ];
  const rows = judgedPids.flatMap((pid) => {
    const entry = series.get(pid);
    if (!entry) return [];
    // Minute 10 is warm-up only for a process that ran from the soak's start; a later one (restarted) is not fitted.
    const firstT = entry.samples[0]?.t ?? Number.POSITIVE_INFINITY;
    if (firstT > soakStart + TREND_STARTED_WITHIN_S * 1000) return [[`${entry.node} pid ${pid}`, "(started during the soak: not fitted)", "–", "–"]];
    return figures.map(({ name, pick }) => [`${entry.node} pid ${pid}`, name, fmt(trendMbPerHour(entry.samples, from, middle, pick)), fmt(trendMbPerHour(entry.samples, middle, soakEnd, pick))]);
  });
  const header = ["process", "figure", `minutes ${minute(from)}–${minute(middle)} (MB an hour)`, `minutes ${minute(middle)}–${minute(soakEnd)} (MB an hour)`];
  return ["", "Trend after warm-up (least squares), first and second half: a leak keeps its slope, memory that settles flattens.", "", ...markdownTable(header, rows)];
}

/**
 * The samples of a soak's `-memory.csv` (t relative to the soak's start), for reading a
 * committed soak again with today's analysis; files from before a column existed read it as null.
 * A plain split on commas is enough: the file holds numbers and node names, never a quoted cell.
 */
export function readMemoryCsv(text: string): MemorySeries {
  const [headerLine, ...lines] = text.trim().split("\n");
  const header = (headerLine ?? "").split(",");
  const column = (name: string) => header.indexOf(name);
  for (const required of ["t_s", "node", "pid", "rss_mb"]) {
    if (column(required) < 0) throw new MnhaError("USAGE", `not a soak memory file: no ${required} column`, { hint: "pass a bench/results/soak-…-memory.csv file" });
  }
  const series = new Map<number, { node: MnNode; samples: MemorySample[] }>();
  for (const line of lines) {
    const cells = line.split(",");
    const number = (name: string): number | null => {
      const cell = column(name) < 0 ? "" : (cells[column(name)] ?? "");
      return cell === "" || !Number.isFinite(Number(cell)) ? null : Number(cell);
    };
    const node = cells[column("node")] as MnNode;
    const pid = number("pid");
    const t = number("t_s");
    const rssMb = number("rss_mb");
    if (!MN_NODES.includes(node) || pid === null || t === null || rssMb === null) throw new MnhaError("USAGE", `bad memory sample: ${line}`, { hint: "the file must be as bench/soak.ts wrote it" });
    const entry = series.get(pid) ?? { node, samples: [] };
    entry.samples.push({ t: t * 1000, rssMb, privateMb: number("private_mb"), heapUsedMb: number("heap_used_mb"), heapTotalMb: number("heap_total_mb"), externalMb: number("external_mb") });
    series.set(pid, entry);
  }
  return series;
}

/** `bench/soak-memory.ts FILE`: a committed soak's memory verdict, 5-minute parts and trend, from its `-memory.csv`. */
export async function runSoakMemory(argv: readonly string[]): Promise<number> {
  const [file, ...rest] = argv;
  if (file === undefined || rest.length > 0) throw new MnhaError("USAGE", "expected one argument: a soak's -memory.csv file", { hint: SOAK_MEMORY_USAGE });
  if (!existsSync(file)) throw new MnhaError("USAGE", `${file} does not exist`, { hint: SOAK_MEMORY_USAGE });
  const series = readMemoryCsv(readFileSync(file, "utf8"));
  const end = Math.max(0, ...[...series.values()].flatMap(({ samples }) => samples.map((s) => s.t)));
  const memory = rssGrowth(series, 0);
  const judged = memory.rows.filter((r) => r.judged).map((r) => r.pid);
  console.log([memory.verdict, ...memoryParts(series, judged, 0, end), ...memoryTrends(series, judged, 0, end)].join("\n"));
  return 0;
}

export async function runSoak(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { minutes: "string", system: "string", seed: "string", "cpu-workers": "string", "keep-up": "boolean", faults: "string", label: "string" }, USAGE);
  const label = labelFlag(flags);
  const minutes = intFlag(flags, "minutes", 30, 24 * 60);
  const seed = intFlag(flags, "seed", 1, 2 ** 31 - 1);
  const cpuWorkers = intFlag(flags, "cpu-workers", 2, 64);
  // --faults: the kinds to draw from (all by default); "none" soaks under load alone.
  const faultKinds = typeof flags["faults"] === "string" ? flags["faults"].split(",").map((k) => k.trim()).filter((k) => k !== "") : SOAK_FAULTS.map((f) => f.kind);
  const unknownKinds = faultKinds.filter((k) => k !== "none" && !SOAK_FAULTS.some((f) => f.kind === k));
  if (unknownKinds.length > 0) throw new MnhaError("USAGE", `--faults: unknown kind ${unknownKinds.join(", ")}`, { hint: `kinds: ${SOAK_FAULTS.map((f) => f.kind).join(", ")}, or none` });
  const drawFrom = SOAK_FAULTS.filter((f) => faultKinds.includes(f.kind));
  const systemName = (typeof flags["system"] === "string" ? flags["system"] : "mnha") as SystemName;
  if (!["mnha", "keepalived-fast", "keepalived-common"].includes(systemName)) {
    throw new MnhaError("USAGE", `--system ${systemName}: unknown system`, { hint: "one of mnha, keepalived-fast, keepalived-common" });
  }
  if (STRESS_NG === null) throw new MnhaError("USAGE", "the soak needs stress-ng (to saturate the CPUs), which is not installed", { hint: "apt-get install -y stress-ng" });

  const logger = createLogger({ level: "warn", pretty: true, destination: process.stderr });
  const machine = describeMachine();
  const lab = new Lab({ logger });
  const system: SystemUnderTest =
    systemName === "mnha" ? new MnhaSystem(lab) : new PlainKeepalivedSystem(lab, systemName === "keepalived-common" ? { ...PLAIN_KEEPALIVED_COMMON, name: systemName } : { ...PLAIN_KEEPALIVED_FAST, name: systemName });
  const random = seededRandom(seed);
  const durationMs = minutes * 60_000;
  const maxFaults = Math.floor((minutes * 60) / FAULT_GAP_S.min) + 1;
  const faults: InjectedFault[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  console.log(`soak: ${system.name}, ${minutes} min, seed ${seed}, stress-ng --cpu ${cpuWorkers}, lab ${LAB_PREFIX}`);
  await lab.up({ fresh: true, agents: false });
  let startedAt = monoNow();
  let endedAt = startedAt;
  let records: SamplerRecord[] = [];
  let nodeSamples: NodeSample[] = [];
  let cpuBusyPercent = 0;
  // The HA daemon's resident memory, per process (a crash or a kill starts a new one): a leak
  // shows as growth within one process's life, not across restarts.
  const rss = new Map<number, { node: MnNode; samples: MemorySample[] }>();
  let rssTimer: NodeJS.Timeout | null = null;
  let rssBusy = false;
  let rssRounds = 0;
  const sampleRss = async () => {
    if (rssBusy) return;
    rssBusy = true;
    const withHeap = rssRounds++ % HEAP_EVERY_SAMPLES === 0;
    try {
      for (const node of MN_NODES) {
        for (const proc of await system.processes(node).catch(() => [])) {
          if (proc.role !== "agent" && proc.role !== "keepalived") continue;
          if (proc.role === "keepalived" && system.name === "mnha") continue;
          const kb = rssKb(proc.pid);
          if (kb === null) continue;
          // Only mnha's agent has a metrics endpoint; keepalived's heap is not V8's.
          const heap = withHeap && proc.role === "agent" ? await scrapeHeap(node) : null;
          const series = rss.get(proc.pid) ?? { node, samples: [] };
          series.samples.push({ t: monoNow(), rssMb: kb / 1024, privateMb: privateMb(proc.pid), heapUsedMb: heap?.usedMb ?? null, heapTotalMb: heap?.totalMb ?? null, externalMb: heap?.externalMb ?? null });
          rss.set(proc.pid, series);
        }
      }
    } finally {
      rssBusy = false;
    }
  };
  try {
    await system.start();
    const sampler = lab.sampler(`soak-${system.name}`, { maxMs: durationMs + 120_000 });
    const watcher = new NodeWatcher({ intervalMs: 500, maxMs: durationMs + 120_000 });
    await startStress(cpuWorkers, Math.ceil(durationMs / 1000) + 60);
    const cpuStart = cpuTimes();
    await sampler.start();
    watcher.start();
    startedAt = sampler.mark("soak start");
    const deadline = startedAt + durationMs;
    await sampleRss();
    rssTimer = setInterval(() => void sampleRss(), RSS_SAMPLE_MS);
    for (let index = 1; index <= maxFaults && !interrupted; index++) {
      const gapMs = (FAULT_GAP_S.min + random() * (FAULT_GAP_S.max - FAULT_GAP_S.min)) * 1000;
      if (drawFrom.length === 0) break;
      const pick = drawFrom[Math.floor(random() * drawFrom.length)] as (typeof SOAK_FAULTS)[number];
      if (monoNow() + gapMs > deadline) break;
      await sleep(gapMs);
      const holders = await lab.holders();
      if (holders.length !== 1) {
        console.log(`  fault ${index} skipped: holders [${holders.join(", ")}]`);
        continue;
      }
      const holder = holders[0] as MnNode;
      const at = sampler.mark(`fault ${index}: ${pick.kind} (holder ${holder})`);
      const { node, note } = await inject(lab, system, pick.kind, holder);
      // Give the system time to deal with it by itself (the agent restores services and
      // keepalived), then play the operator's systemd: boot, restart what is still down.
      await sleep(3_000);
      let settled = true;
      let settleNote = "";
      try {
        await system.recover();
      } catch (error) {
        settled = false;
        settleNote = `did not settle: ${(error as Error).message.split("\n")[0]}`;
        lab.archiveState(`${REPO_ROOT}/.lab/${LAB_NAME}/soak/${system.name}-fault-${index}`);
        await system.stop();
        await system.start();
      }
      const settledAt = sampler.mark(`fault ${index} settled`);
      faults.push({ index, kind: pick.kind, node, mayMove: pick.mayMove, at, settledAt, settled, note: [note, settleNote].filter(Boolean).join("; ") });
      console.log(`  [${((at - startedAt) / 1000).toFixed(0).padStart(5)} s] fault ${index}: ${pick.kind} on ${node}; settled in ${ms(settledAt - at)} ms${settled ? "" : ` (${settleNote})`}`);
    }
    const rest = deadline - monoNow();
    if (rest > 0 && !interrupted) await sleep(rest);
    if (rssTimer) clearInterval(rssTimer);
    await sampleRss();
    endedAt = sampler.mark("soak end");
    const cpuEnd = cpuTimes();
    cpuBusyPercent = ((cpuEnd.busy - cpuStart.busy) / Math.max(1, cpuEnd.total - cpuStart.total)) * 100;
    records = await sampler.stop();
    nodeSamples = await watcher.stop();
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    await stopStress();
    await system.stop().catch(() => undefined);
    if (flags["keep-up"] !== true) await lab.down({ archiveTo: `${REPO_ROOT}/.lab/${LAB_NAME}/soak/last-lab-${system.name}` });
  }

  // Every change of the answering node, attributed to a fault or not.
  const all = answers(records);
  const moves = answerMoves(all, startedAt, endedAt);
  const attributed = new Map<number, number>();
  const movesWithCause: string[] = [];
  const movesWithoutCause: string[] = [];
  for (const move of moves) {
    const fault = faults.find((f) => move.at >= f.at && move.at <= f.settledAt + CAUSE_GRACE_MS);
    const label = `${((move.at - startedAt) / 1000).toFixed(1)} s ${move.from}->${move.to}`;
    if (fault && fault.mayMove && move.from === fault.node && (attributed.get(fault.index) ?? 0) === 0) {
      attributed.set(fault.index, 1);
      movesWithCause.push(`${label} (fault ${fault.index} ${fault.kind})`);
    } else {
      movesWithoutCause.push(`${label}${fault ? ` (during fault ${fault.index} ${fault.kind})` : ""}`);
    }
  }
  const analysis = analyze(records, { from: startedAt, to: endedAt });
  const gap = longestAnswerGap(all, startedAt, endedAt, { fromLastAnswerBefore: false });
  const gapFault = faults.find((f) => gap.start >= f.at - 1_000 && gap.start <= f.settledAt + CAUSE_GRACE_MS);
  const splitByFault = new Map<string, number>();
  for (const sample of analysis.arp.splitBrain) {
    const fault = faults.find((f) => sample.t >= f.at && sample.t <= f.settledAt + CAUSE_GRACE_MS);
    const key = fault ? fault.kind : "no fault";
    splitByFault.set(key, (splitByFault.get(key) ?? 0) + 1);
  }
  const doubles = doubleHolders(nodeSamples);
  const memory = rssGrowth(rss, startedAt);
  const kinds = [...new Set(faults.map((f) => f.kind))].sort();

  const summary = markdownTable(
    ["system", "minutes", "faults", "failovers with a cause", "failovers without a cause", "split-brain ARP samples", "node samples with two holders", "longest without a served VIP (ms)", "ARP samples/s", "CPU busy (all cores)", "faults that did not settle"],
    [[
      system.name,
      ((endedAt - startedAt) / 60_000).toFixed(1),
      String(faults.length),
      String(movesWithCause.length),
      String(movesWithoutCause.length),
      String(analysis.arp.splitBrain.length),
      String(doubles.length),
      `${ms(gap.gapMs)}${gapFault ? ` (fault ${gapFault.index}: ${gapFault.kind})` : ""}`,
      analysis.arp.perSecond.toFixed(1),
      `${cpuBusyPercent.toFixed(0)} %`,
      String(faults.filter((f) => !f.settled).length),
    ]],
  );
  const markdown = [
    `# Soak: ${system.name}, ${machine.date.slice(0, 10)}`,
    "",
    ...machineLines(machine),
    `- lab \`${LAB_PREFIX}\`, seed ${seed}, \`stress-ng --cpu ${cpuWorkers}\` in the gateway namespace for the whole soak; ${drawFrom.length === 0 ? "no faults (load alone)" : `a fault every ${FAULT_GAP_S.min}-${FAULT_GAP_S.max} s (seeded) drawn from ${drawFrom.length === SOAK_FAULTS.length ? "every kind" : drawFrom.map((f) => f.kind).join(", ")}, each healed and settled before the next`}`,
    "",
    ...summary,
    "",
    "## Faults",
    "",
    ...markdownTable(
      ["kind", "injected", "may move the VIP"],
      kinds.map((kind) => [kind, String(faults.filter((f) => f.kind === kind).length), SOAK_FAULTS.find((f) => f.kind === kind)?.mayMove ? "yes" : "no"]),
    ),
    "",
    `Failovers with a cause: ${movesWithCause.join("; ") || "none"}.`,
    "",
    `Failovers without a cause: ${movesWithoutCause.join("; ") || "none"}.`,
    "",
    `Split-brain ARP samples by fault: ${[...splitByFault].map(([k, v]) => `${k} ${v}`).join(", ") || "none"}.`,
    "",
    "## The HA daemon's memory (RSS) over the soak",
    "",
    `Sampled every ${RSS_SAMPLE_MS / 1000} s, per process (a crash or a kill of the daemon starts a new one). Start: the median of the samples ${RSS_WARM_FROM_S}-${RSS_WARM_TO_S} s into the process's life (or into the soak, for a process already running); end: the median of its last 3 samples. Growth is judged for processes that lived at least ${RSS_MIN_LIFE_S / 60} minutes (target: within 10 %).`,
    "",
    ...markdownTable(
      ["node", "pid", "lived (min)", "samples", "start (MB)", "end (MB)", "max (MB)", "growth", "private start -> end (MB)", "V8 heap used start -> end (MB)", "V8 heap committed start -> end (MB)", "judged"],
      memory.rows.map((r) => [
        r.node,
        String(r.pid),
        (r.livedS / 60).toFixed(1),
        String(r.samples),
        r.startMb.toFixed(1),
        r.endMb.toFixed(1),
        r.maxMb.toFixed(1),
        `${r.growthPercent >= 0 ? "+" : ""}${r.growthPercent.toFixed(1)} %`,
        r.privateMb ? `${r.privateMb.start.toFixed(1)} -> ${r.privateMb.end.toFixed(1)}` : "–",
        r.heapUsedMb ? `${r.heapUsedMb.start.toFixed(1)} -> ${r.heapUsedMb.end.toFixed(1)}` : "–",
        r.heapTotalMb ? `${r.heapTotalMb.start.toFixed(1)} -> ${r.heapTotalMb.end.toFixed(1)}` : "–",
        r.judged ? "yes" : "no (short life)",
      ]),
    ),
    "",
    memory.verdict,
    ...memoryParts(rss, memory.rows.filter((r) => r.judged).map((r) => r.pid), startedAt, endedAt),
    ...memoryTrends(rss, memory.rows.filter((r) => r.judged).map((r) => r.pid), startedAt, endedAt),
    "",
  ].join("\n");
  const csvText = csv(
    ["index", "at_s", "kind", "node", "may_move", "settled", "settle_ms", "moves_in_window", "split_brain_in_window", "note"],
    faults.map((f) => [
      f.index,
      (f.at - startedAt) / 1000,
      f.kind,
      f.node,
      f.mayMove,
      f.settled,
      f.settledAt - f.at,
      moves.filter((m) => m.at >= f.at && m.at <= f.settledAt + CAUSE_GRACE_MS).map((m) => `${m.from}->${m.to}`).join(" "),
      analysis.arp.splitBrain.filter((s) => s.t >= f.at && s.t <= f.settledAt + CAUSE_GRACE_MS).length,
      f.note,
    ]),
  );
  console.log(`\n${markdown}`);
  const base = `soak-${system.name}-${dateStamp()}-seed${seed}${label === null ? "" : `-${label}`}`;
  const files = writeResults(base, markdown, csvText);
  const memoryFile = writeCsvResult(
    `${base}-memory`,
    csv(
      ["t_s", "node", "pid", "rss_mb", "private_mb", "heap_used_mb", "heap_total_mb", "external_mb"],
      [...rss].flatMap(([pid, { node, samples }]) =>
        samples.map((x) => [((x.t - startedAt) / 1000).toFixed(1), node, pid, x.rssMb.toFixed(1), x.privateMb?.toFixed(1) ?? "", x.heapUsedMb?.toFixed(1) ?? "", x.heapTotalMb?.toFixed(1) ?? "", x.externalMb?.toFixed(1) ?? ""]),
      ),
    ),
  );
  console.log(`written: ${files.md}, ${files.csv}, ${memoryFile}`);
  return 0;
}
