/**
 * Samples the host every interval into monitoring series for the store: CPU load, load
 * average, memory, disk usage of the data directories, traffic on the VIP interface and
 * each service's check latency and verdict. One round at a time: the next round starts
 * only after the previous one ended, and a reader that is still busy from an earlier round
 * is skipped rather than called again. A reading that fails is skipped (debug log);
 * the sampler never throws.
 */
import { systemClock, type Clock, type Logger } from "@mnha/shared";
import type { NewSample, Startable } from "../contracts.js";
import { linuxSystemReaders, type CpuTimes, type SystemReaders } from "./system-readers.js";

export interface CheckLatency {
  service: string;
  latencyMs: number | null;
  healthy: boolean;
}

export interface SystemSamplerOptions {
  intervalMs: number;
  /** The agent's data directory: series `disk.data.*`. */
  dataDir: string;
  /** More directories to watch (the database's, say): series `disk.<path as label>.*`. */
  extraDirs?: string[];
  /** The VIP interface: series `net.<iface>.*`. */
  iface: string;
  logger: Logger;
  onSamples: (samples: NewSample[]) => void;
  clock?: Clock;
  checkLatencies?: () => CheckLatency[];
  /** Where the figures come from (tests pass slow or failing ones). */
  readers?: SystemReaders;
  /** One reading slower than this is skipped this round (default: the interval, at most 5 s). */
  readTimeoutMs?: number;
}

/** A series name segment: letters, digits, '_' and '-' only. */
export function seriesLabel(text: string): string {
  const label = text
    .replace(/[^A-Za-z0-9_-]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 48);
  return label === "" ? "root" : label;
}

interface Reading {
  name: string;
  run: () => Promise<[string, number][]>;
}

export class SystemSampler implements Startable {
  private readonly options: SystemSamplerOptions;
  private readonly readers: SystemReaders;
  private readonly clock: Clock;
  private readonly readTimeoutMs: number;
  private readonly disks: { label: string; path: string }[];
  private readonly ifaceLabel: string;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<NewSample[]> | null = null;
  /** Readers whose earlier call has not settled yet (not called again until it has). */
  private readonly busy = new Set<string>();
  private lastCpu: CpuTimes | null = null;
  private lastNet: { rxBytes: number; txBytes: number; atMs: number } | null = null;

  constructor(options: SystemSamplerOptions) {
    this.options = options;
    this.readers = options.readers ?? linuxSystemReaders;
    this.clock = options.clock ?? systemClock;
    this.readTimeoutMs = options.readTimeoutMs ?? Math.min(Math.max(options.intervalMs, 100), 5_000);
    this.disks = [{ label: "data", path: options.dataDir }, ...(options.extraDirs ?? []).map((path) => ({ label: seriesLabel(path), path }))];
    this.ifaceLabel = seriesLabel(options.iface);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.options.logger.debug({ intervalMs: this.options.intervalMs, disks: this.disks, iface: this.options.iface }, "system sampler started");
    // The first round only sets the baselines of the rates (CPU, traffic); it reports the rest.
    void this.sampleNow();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.round !== null) await this.round;
  }

  /** Runs one round now (or joins the one under way), reports it and returns its samples. */
  sampleNow(): Promise<NewSample[]> {
    if (this.round !== null) return this.round;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const startedAt = this.clock.now();
    const round = this.collect()
      .then((samples) => {
        if (samples.length > 0) this.report(samples);
        return samples;
      })
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, "system sampler: a round failed unexpectedly");
        return [] as NewSample[];
      })
      .finally(() => {
        this.round = null;
        this.schedule(Math.max(0, this.options.intervalMs - (this.clock.now() - startedAt)));
      });
    this.round = round;
    return round;
  }

  private schedule(delayMs: number): void {
    if (!this.running || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.sampleNow();
    }, delayMs);
  }

  private report(samples: NewSample[]): void {
    try {
      this.options.onSamples(samples);
    } catch (error) {
      this.options.logger.warn({ err: error }, "system sampler: the samples listener threw");
    }
  }

  private async collect(): Promise<NewSample[]> {
    const readings: Reading[] = [
      { name: "cpu", run: () => this.readCpu() },
      { name: "load", run: () => this.readLoad() },
      { name: "memory", run: () => this.readMemory() },
      ...this.disks.map((disk) => ({ name: `disk:${disk.label}`, run: () => this.readDisk(disk.label, disk.path) })),
      { name: "net", run: () => this.readNet() },
      { name: "checks", run: async () => this.readChecks() },
    ];
    const results = await Promise.all(readings.map((reading) => this.guarded(reading)));
    const wallMs = Math.round(this.clock.wallNow());
    const samples: NewSample[] = [];
    for (const values of results) {
      for (const [series, value] of values) {
        if (Number.isFinite(value)) samples.push({ series, value, wallMs });
      }
    }
    return samples;
  }

  /** One reading with a time limit; never rejects; skipped while its previous call is still busy. */
  private async guarded(reading: Reading): Promise<[string, number][]> {
    const { logger } = this.options;
    if (this.busy.has(reading.name)) {
      logger.debug({ reading: reading.name }, "system sampler: reading still busy from an earlier round; skipped");
      return [];
    }
    this.busy.add(reading.name);
    const call = reading.run();
    void call.then(
      () => this.busy.delete(reading.name),
      () => this.busy.delete(reading.name),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.readTimeoutMs);
    });
    try {
      const outcome = await Promise.race([call, timeout]);
      if (outcome === "timeout") {
        logger.debug({ reading: reading.name, timeoutMs: this.readTimeoutMs }, "system sampler: reading too slow; skipped");
        return [];
      }
      return outcome;
    } catch (error) {
      logger.debug({ reading: reading.name, err: error }, "system sampler: reading failed; skipped");
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  private async readCpu(): Promise<[string, number][]> {
    const now = await this.readers.cpuTimes();
    const before = this.lastCpu;
    this.lastCpu = now;
    if (!before || now.total <= before.total) return [];
    const percent = ((now.busy - before.busy) / (now.total - before.total)) * 100;
    return [["cpu.load_percent", clampPercent(percent)]];
  }

  private async readLoad(): Promise<[string, number][]> {
    const [one, five, fifteen] = await this.readers.loadAverage();
    return [
      ["load.1m", one],
      ["load.5m", five],
      ["load.15m", fifteen],
    ];
  }

  private async readMemory(): Promise<[string, number][]> {
    const { totalBytes, availableBytes } = await this.readers.memory();
    const used = Math.max(0, totalBytes - availableBytes);
    return [
      ["memory.used_bytes", used],
      ["memory.total_bytes", totalBytes],
      ["memory.used_percent", totalBytes > 0 ? clampPercent((used / totalBytes) * 100) : NaN],
    ];
  }

  private async readDisk(label: string, path: string): Promise<[string, number][]> {
    const usage = await this.readers.diskUsage(path);
    return [
      [`disk.${label}.used_percent`, clampPercent(usage.usedPercent)],
      [`disk.${label}.used_bytes`, usage.usedBytes],
      [`disk.${label}.total_bytes`, usage.totalBytes],
    ];
  }

  private async readNet(): Promise<[string, number][]> {
    const counters = await this.readers.interfaceCounters(this.options.iface);
    const atMs = this.clock.now();
    const before = this.lastNet;
    this.lastNet = { ...counters, atMs };
    const seconds = before ? (atMs - before.atMs) / 1000 : 0;
    // No baseline yet, or the counters were reset (interface re-created): no rate this round.
    if (!before || seconds <= 0 || counters.rxBytes < before.rxBytes || counters.txBytes < before.txBytes) return [];
    return [
      [`net.${this.ifaceLabel}.rx_bytes_per_s`, (counters.rxBytes - before.rxBytes) / seconds],
      [`net.${this.ifaceLabel}.tx_bytes_per_s`, (counters.txBytes - before.txBytes) / seconds],
    ];
  }

  private readChecks(): [string, number][] {
    const latencies = this.options.checkLatencies?.() ?? [];
    const values: [string, number][] = [];
    for (const check of latencies) {
      const label = seriesLabel(check.service);
      if (check.latencyMs !== null) values.push([`check.${label}.latency_ms`, check.latencyMs]);
      values.push([`check.${label}.up`, check.healthy ? 1 : 0]);
    }
    return values;
  }
}

function clampPercent(value: number): number {
  return Math.min(100, Math.max(0, value));
}
