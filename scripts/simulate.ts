/**
 * Deterministic simulation of the election core: many seeded fault schedules against two real
 * ElectionCores in a simulated world, every invariant checked after every event
 * (docs/simulation.md).
 *
 *   node --import tsx scripts/simulate.ts                       # 1,000,000 schedules
 *   node --import tsx scripts/simulate.ts --runs 20000 --parallel
 *   node --import tsx scripts/simulate.ts --seconds 1200 --parallel 2 --seed-start 1000001
 *   node --import tsx scripts/simulate.ts --seed 4242 --trace   # replay one seed
 *
 * Exit status: 0 when every schedule kept every invariant, 1 when any failed, 2 on a bad flag.
 */
import { availableParallelism } from "node:os";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { formatRun, replayCommand, runSeed, type RunResult } from "../packages/agent/src/sim/runner.js";
import type { GenerateOptions, Profile } from "../packages/agent/src/sim/schedule.js";

interface Options {
  runs: number;
  seedStart: number;
  seconds: number | null;
  parallel: number;
  seed: number | null;
  trace: boolean;
  traceLines: number;
  profile: Profile | null;
  windowMs: [number, number] | null;
  /** Share of chaos schedules that get adapter faults (null: the generator's default). */
  adapterFaults: number | null;
  releaseStallMaxMs: number | null;
  strict: boolean;
  json: boolean;
}

interface Failure {
  seed: number;
  profile: Profile;
  invariant: string;
  message: string;
}

interface Tally {
  runs: number;
  failed: number;
  steps: number;
  simulatedMs: number;
  blindSplitRuns: number;
  blindSplitMs: number;
  blindWhy: Record<string, number>;
  benign: number;
  maxHolderAfterHealMs: number;
  /** Last seed finished, for a resumable report. */
  lastSeed: number;
}

interface WorkerJob {
  first: number;
  stride: number;
  count: number;
  generate: GenerateOptions;
  strict: boolean;
  stop: SharedArrayBuffer;
}

type WorkerMessage = { kind: "progress"; tally: Tally; failures: Failure[] } | { kind: "done"; tally: Tally; failures: Failure[] };

const USAGE = `usage: node --import tsx scripts/simulate.ts [options]
  --runs N          schedules to run (default 1000000)
  --seed-start S    first seed (default 1)
  --seconds T       time budget: stop after T seconds and report
  --parallel [K]    run on K worker threads (default: every core)
  --seed N          run one seed (a replay); with --trace, print its trace
  --trace           print the trace of the seed (last --trace-lines world events and the schedule)
  --trace-lines N   world events in a trace (default 80)
  --profile P       only chaos or only benign schedules (default: drawn from each seed)
  --window MIN-MAX  fault window in ms (default 30000-120000)
  --adapter-faults F  share of chaos schedules with adapter faults, 0..1 (default 0.3)
  --release-stall MS  a slow handoff giver: each schedule draws a stall in [0, MS] before it acts on "ready"
  --strict          count every blind claim but the ARP-cut one (docs/protocol.md) as a failure
  --json            print the summary as JSON`;

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 1_000_000, seedStart: 1, seconds: null, parallel: 1, seed: null, trace: false, traceLines: 80, profile: null, windowMs: null, adapterFaults: null, releaseStallMaxMs: null, strict: false, json: false };
  const int = (flag: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min) fail(`${flag} needs a whole number of at least ${min} (got ${value ?? "nothing"})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    switch (arg) {
      case "--runs":
        o.runs = int(arg, next, 1);
        i++;
        break;
      case "--seed-start":
        o.seedStart = int(arg, next, 0);
        i++;
        break;
      case "--seconds":
        o.seconds = int(arg, next, 1);
        i++;
        break;
      case "--parallel":
        if (next !== undefined && /^\d+$/.test(next)) {
          o.parallel = int(arg, next, 1);
          i++;
        } else {
          o.parallel = availableParallelism();
        }
        break;
      case "--seed":
        o.seed = int(arg, next, 0);
        i++;
        break;
      case "--trace":
        o.trace = true;
        break;
      case "--trace-lines":
        o.traceLines = int(arg, next, 1);
        i++;
        break;
      case "--profile":
        if (next !== "chaos" && next !== "benign") fail(`--profile takes chaos or benign (got ${next ?? "nothing"})`);
        o.profile = next;
        i++;
        break;
      case "--window": {
        const m = /^(\d+)-(\d+)$/.exec(next ?? "");
        if (!m || Number(m[1]) < 1_000 || Number(m[2]) < Number(m[1])) fail(`--window takes MIN-MAX in ms, MIN at least 1000 (got ${next ?? "nothing"})`);
        o.windowMs = [Number(m[1]), Number(m[2])];
        i++;
        break;
      }
      case "--adapter-faults": {
        const share = Number(next);
        if (next === undefined || !Number.isFinite(share) || share < 0 || share > 1) fail(`--adapter-faults takes a share from 0 to 1 (got ${next ?? "nothing"})`);
        o.adapterFaults = share;
        i++;
        break;
      }
      case "--release-stall": {
        const ms = Number(next);
        if (next === undefined || !Number.isInteger(ms) || ms < 0 || ms > 60_000) fail(`--release-stall takes whole ms from 0 to 60000 (got ${next ?? "nothing"})`);
        o.releaseStallMaxMs = ms;
        i++;
        break;
      }
      case "--strict":
        o.strict = true;
        break;
      case "--json":
        o.json = true;
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        fail(`unknown option ${arg}`);
    }
  }
  return o;
}

function fail(message: string): never {
  console.error(`simulate: ${message}\n${USAGE}`);
  process.exit(2);
}

function blankTally(): Tally {
  return { runs: 0, failed: 0, steps: 0, simulatedMs: 0, blindSplitRuns: 0, blindSplitMs: 0, blindWhy: {}, benign: 0, maxHolderAfterHealMs: 0, lastSeed: -1 };
}

function count(tally: Tally, failures: Failure[], result: RunResult): void {
  tally.runs++;
  tally.steps += result.steps;
  tally.simulatedMs += result.simulatedMs;
  tally.lastSeed = result.seed;
  if (result.profile === "benign") tally.benign++;
  if (result.blindSplits.count > 0) tally.blindSplitRuns++;
  tally.blindSplitMs += result.blindSplits.totalMs;
  for (const [why, n] of Object.entries(result.blindSplits.why)) tally.blindWhy[why] = (tally.blindWhy[why] ?? 0) + n;
  if (result.holderAfterHealMs !== null) tally.maxHolderAfterHealMs = Math.max(tally.maxHolderAfterHealMs, result.holderAfterHealMs);
  const first = result.violations[0];
  if (first) {
    tally.failed++;
    failures.push({ seed: result.seed, profile: result.profile, invariant: first.invariant, message: first.message });
  }
}

function merge(into: Tally, from: Tally): void {
  into.runs += from.runs;
  into.failed += from.failed;
  into.steps += from.steps;
  into.simulatedMs += from.simulatedMs;
  into.blindSplitRuns += from.blindSplitRuns;
  into.blindSplitMs += from.blindSplitMs;
  into.benign += from.benign;
  into.maxHolderAfterHealMs = Math.max(into.maxHolderAfterHealMs, from.maxHolderAfterHealMs);
  into.lastSeed = Math.max(into.lastSeed, from.lastSeed);
  for (const [why, n] of Object.entries(from.blindWhy)) into.blindWhy[why] = (into.blindWhy[why] ?? 0) + n;
}

// ---- a worker: runs seeds first, first + stride, ... until done or told to stop ----------

function workerMain(job: WorkerJob): void {
  const stop = new Int32Array(job.stop);
  let tally = blankTally();
  let failures: Failure[] = [];
  let lastReport = performance.now();
  for (let k = 0; k < job.count; k++) {
    if (Atomics.load(stop, 0) !== 0) break;
    count(tally, failures, runSeed({ seed: job.first + k * job.stride, generate: job.generate, strict: job.strict }));
    if (performance.now() - lastReport > 1_000 || failures.length > 0) {
      parentPort?.postMessage({ kind: "progress", tally, failures } satisfies WorkerMessage);
      tally = blankTally();
      failures = [];
      lastReport = performance.now();
    }
  }
  parentPort?.postMessage({ kind: "done", tally, failures } satisfies WorkerMessage);
}

// ---- the main thread ------------------------------------------------------------------

/**
 * Node 20 does not pass `--import tsx` on to worker threads: each worker starts from a tiny
 * module that registers tsx and then loads this file.
 */
function workerEntry(): URL {
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(import.meta.url)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

async function batch(o: Options): Promise<number> {
  const generate: GenerateOptions = { ...(o.profile ? { profile: o.profile } : {}), ...(o.windowMs ? { windowMs: o.windowMs } : {}), ...(o.adapterFaults === null ? {} : { adapterFaultShare: o.adapterFaults }), ...(o.releaseStallMaxMs ? { releaseStallMaxMs: o.releaseStallMaxMs } : {}) };
  const workers = Math.min(o.parallel, o.runs);
  const stop = new SharedArrayBuffer(4);
  const total = blankTally();
  const failures: Failure[] = [];
  const started = performance.now();
  const deadline = o.seconds === null ? Infinity : started + o.seconds * 1000;
  let lastPrint = started;
  const progress = () => {
    const now = performance.now();
    if (now - lastPrint < 10_000) return;
    lastPrint = now;
    const rate = total.runs / ((now - started) / 1000);
    console.error(`  ${total.runs} runs, ${total.failed} failed, ${rate.toFixed(0)} runs/s, ${((now - started) / 1000).toFixed(0)} s`);
  };
  console.error(`simulate: ${o.runs} schedules from seed ${o.seedStart} on ${workers} thread(s)${o.seconds ? `, at most ${o.seconds} s` : ""}`);

  if (workers <= 1) {
    for (let seed = o.seedStart; seed < o.seedStart + o.runs; seed++) {
      if (performance.now() > deadline) break;
      count(total, failures, runSeed({ seed, generate, strict: o.strict }));
      progress();
    }
  } else {
    const timer = Number.isFinite(deadline) ? setTimeout(() => Atomics.store(new Int32Array(stop), 0, 1), deadline - started) : null;
    await Promise.all(
      Array.from({ length: workers }, (_, i) => {
        const job: WorkerJob = { first: o.seedStart + i, stride: workers, count: Math.ceil((o.runs - i) / workers), generate, strict: o.strict, stop };
        const worker = new Worker(workerEntry(), { workerData: job });
        return new Promise<void>((resolve, reject) => {
          worker.on("message", (m: WorkerMessage) => {
            merge(total, m.tally);
            failures.push(...m.failures);
            for (const f of m.failures) console.error(`  FAILED seed ${f.seed} (${f.profile}): [${f.invariant}] ${f.message}`);
            progress();
          });
          worker.on("error", reject);
          worker.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`worker ${i} exited with ${code}`))));
        });
      }),
    );
    if (timer) clearTimeout(timer);
  }

  const seconds = (performance.now() - started) / 1000;
  failures.sort((a, b) => a.seed - b.seed);
  const summary = {
    runs: total.runs,
    failed: total.failed,
    firstFailingSeeds: failures.slice(0, 10),
    seedStart: o.seedStart,
    stoppedEarly: total.runs < o.runs,
    seconds: Number(seconds.toFixed(1)),
    runsPerSecond: Number((total.runs / seconds).toFixed(1)),
    simulatedHours: Number((total.simulatedMs / 3_600_000).toFixed(1)),
    speedup: Math.round(total.simulatedMs / 1000 / seconds),
    eventsPerSecond: Math.round(total.steps / seconds),
    benignRuns: total.benign,
    blindClaimSplits: { runs: total.blindSplitRuns, totalMs: Math.round(total.blindSplitMs), why: total.blindWhy },
    maxHolderAfterHealMs: Math.round(total.maxHolderAfterHealMs),
  };
  if (o.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`${summary.runs} schedules run (seeds ${o.seedStart}..), ${summary.failed} failed${summary.stoppedEarly ? " (stopped early: time budget)" : ""}`);
    console.log(`  ${summary.seconds} s, ${summary.runsPerSecond} schedules/s, ${summary.simulatedHours} simulated hours (${summary.speedup}x real time), ${summary.eventsPerSecond} events/s`);
    console.log(`  ${summary.benignRuns} benign runs; splits from blind claims in ${summary.blindClaimSplits.runs} runs (${Object.entries(summary.blindClaimSplits.why).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}; ${summary.blindClaimSplits.totalMs} ms in all); slowest heal-to-holder ${summary.maxHolderAfterHealMs} ms`);
    for (const f of summary.firstFailingSeeds) console.log(`  FAILED seed ${f.seed} (${f.profile}): [${f.invariant}] ${f.message}\n    replay: ${replayCommand(f.seed, generate, o.strict)}`);
  }
  return total.failed > 0 ? 1 : 0;
}

function single(o: Options): number {
  const seed = o.seed as number;
  const generate: GenerateOptions = { ...(o.profile ? { profile: o.profile } : {}), ...(o.windowMs ? { windowMs: o.windowMs } : {}), ...(o.adapterFaults === null ? {} : { adapterFaultShare: o.adapterFaults }), ...(o.releaseStallMaxMs ? { releaseStallMaxMs: o.releaseStallMaxMs } : {}) };
  const result = runSeed({ seed, generate, fullLog: o.trace, strict: o.strict });
  if (o.trace || result.violations.length > 0) console.log(formatRun(result, o.traceLines));
  else console.log(formatRun(result, 0).split("\n")[0]);
  return result.violations.length > 0 ? 1 : 0;
}

if (isMainThread) {
  const options = parseArgs(process.argv.slice(2));
  const run = options.seed !== null ? Promise.resolve(single(options)) : batch(options);
  run.then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`simulate: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
} else {
  workerMain(workerData as WorkerJob);
}
