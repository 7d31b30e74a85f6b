/**
 * prom-client's process_* and nodejs_* metrics, without the timer its event-loop sampler
 * keeps. `collectDefaultMetrics` starts `perf_hooks.monitorEventLoopDelay`, a libuv timer
 * that woke the idle agent 10 times a second even at a 100 ms resolution, and offers no
 * option to leave it out (docs/benchmarks.md, tenth round). So the other default metrics are
 * registered one by one from prom-client's own modules, and the nodejs_eventloop_lag_*
 * gauges, under the same names, are fed by the beat's lateness (util/beat.ts): the agent's
 * tick runs on every beat, so the loop is sampled as often as before, by a timer that fires
 * anyway.
 */
import { createRequire } from "node:module";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import { Gauge, type Registry } from "prom-client";

/** A prom-client default metric: registers itself (and its collect hook) on the registry. */
type DefaultMetric = (registry: Registry, config: Record<string, never>) => void;

/**
 * Every default metric of prom-client 15 except eventLoopLag, as `lib/defaultMetrics.js`
 * lists them. prom-client has no exports map, so these are plain files of the package; the
 * metrics test checks that every name is still exposed, so a prom-client that moves them
 * fails it instead of losing metrics unseen.
 */
const DEFAULT_METRICS_WITHOUT_LOOP_SAMPLER = [
  "processCpuTotal",
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "processResources",
  "processHandles",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
] as const;

const requirePackage = createRequire(import.meta.url);

/** The default metrics prom-client's collectDefaultMetrics registers, except its loop sampler. */
export function registerProcessMetrics(registry: Registry): void {
  for (const name of DEFAULT_METRICS_WITHOUT_LOOP_SAMPLER) {
    const register = requirePackage(`prom-client/lib/metrics/${name}.js`) as DefaultMetric;
    register(registry, {});
  }
}

/** How late the loop ran timed work, recorded by whoever owns such work (the beat). */
export class LoopDelay {
  private readonly histogram: RecordableHistogram = createHistogram();
  private lastMs: number | null = null;

  /** One observation: the loop ran work due at some time `lateMs` after that time. */
  record(lateMs: number): void {
    if (!Number.isFinite(lateMs) || lateMs < 0) return;
    this.lastMs = lateMs;
    // The histogram holds whole nanoseconds ≥ 1.
    this.histogram.record(Math.max(1, Math.round(lateMs * 1e6)));
  }

  /** Since the last take: the count and, when any, the summary in seconds; then starts afresh. */
  take(): { count: number; lastSeconds: number | null; min: number; max: number; mean: number; stddev: number; p50: number; p90: number; p99: number } {
    const h = this.histogram;
    const count = h.count;
    const seconds = (ns: number) => (count > 0 && Number.isFinite(ns) ? ns / 1e9 : 0);
    const summary = {
      count,
      lastSeconds: this.lastMs === null ? null : this.lastMs / 1000,
      min: seconds(h.min),
      max: seconds(h.max),
      mean: seconds(h.mean),
      stddev: seconds(h.stddev),
      p50: seconds(h.percentile(50)),
      p90: seconds(h.percentile(90)),
      p99: seconds(h.percentile(99)),
    };
    h.reset();
    return summary;
  }
}

/**
 * prom-client's nodejs_eventloop_lag_* names and meanings, from `delay`: the latest delay, and
 * the min, max, mean, standard deviation and percentiles since the previous scrape (prom-client
 * also resets its histogram at each scrape). Unlike prom-client's sampler, whose readings are
 * the whole time between two samples (a 100 ms sampler never reads below 0.1 s), these are the
 * delay itself: 0 on an idle loop.
 */
export function registerLoopDelayMetrics(registry: Registry, delay: LoopDelay): void {
  const registers = [registry];
  const names = {
    min: ["nodejs_eventloop_lag_min_seconds", "The minimum recorded event loop delay."],
    max: ["nodejs_eventloop_lag_max_seconds", "The maximum recorded event loop delay."],
    mean: ["nodejs_eventloop_lag_mean_seconds", "The mean of the recorded event loop delays."],
    stddev: ["nodejs_eventloop_lag_stddev_seconds", "The standard deviation of the recorded event loop delays."],
    p50: ["nodejs_eventloop_lag_p50_seconds", "The 50th percentile of the recorded event loop delays."],
    p90: ["nodejs_eventloop_lag_p90_seconds", "The 90th percentile of the recorded event loop delays."],
    p99: ["nodejs_eventloop_lag_p99_seconds", "The 99th percentile of the recorded event loop delays."],
  } as const;
  // One gauge's collect sets them all, from one take of the histogram (as prom-client does).
  // It is registered first: a scrape reads the metrics in registration order, and the others
  // must be set before they are read.
  new Gauge({
    name: "nodejs_eventloop_lag_seconds",
    help: "Lag of event loop in seconds (how late the agent's last beat ran).",
    registers,
    collect() {
      const taken = delay.take();
      this.set(taken.lastSeconds ?? 0);
      for (const key of Object.keys(names) as (keyof typeof names)[]) gauges[key].set(taken[key]);
    },
  });
  const gauges = Object.fromEntries(Object.entries(names).map(([key, [name, help]]) => [key, new Gauge({ name, help, registers })])) as Record<keyof typeof names, Gauge>;
}
