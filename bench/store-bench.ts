/**
 * Store benchmark: append throughput (and what appending costs the HA loop), query latency on
 * a large store, and how long an empty store takes to catch up through readAfter/ingest.
 * In-process, no network. Prints a Markdown table.
 *
 *   pnpm run build                       # the store imports @mnha/shared from its dist
 *   node --import tsx bench/store-bench.ts [--events 1000000] [--samples N] [--runs 5] [--quick] [--dir /path]
 *
 * --quick is --events 100000. --dir puts the databases on another file system (default: the OS temp dir).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseConfig } from "../packages/shared/src/config.js";
import { silentLogger } from "../packages/shared/src/logging.js";
import type { SyncEvent, SyncSample, Watermarks } from "../packages/agent/src/contracts.js";
import { SqliteStore } from "../packages/agent/src/store/sqlite-store.js";

interface Options {
  events: number;
  samples: number;
  runs: number;
  dir: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { events: 1_000_000, samples: -1, runs: 5, dir: tmpdir() };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--events") options.events = positive(value(), flag);
    else if (flag === "--samples") options.samples = positive(value(), flag);
    else if (flag === "--runs") options.runs = positive(value(), flag);
    else if (flag === "--quick") options.events = 100_000;
    else if (flag === "--dir") options.dir = value();
    else throw new Error(`unknown flag ${flag} (see the usage at the top of bench/store-bench.ts)`);
  }
  if (options.samples < 0) options.samples = options.events;
  return options;
}

function positive(text: string, flag: string | undefined): number {
  const n = Number(text.replace(/_/g, ""));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got ${text}`);
  return n;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (n: number, digits = 1): string => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const count = (n: number): string => n.toLocaleString("en-US");

function config(dataDir: string, node = "mn1") {
  return parseConfig({
    node: { name: node, address: node === "mn1" ? "10.0.0.11" : "10.0.0.12" },
    peers: [{ name: node === "mn1" ? "mn2" : "mn1", address: node === "mn1" ? "10.0.0.12" : "10.0.0.11" }],
    vip: { address: "10.0.0.10", interface: "eth0" },
    gateway: { address: "10.0.0.1" },
    // The config wants 256 random bits; the store never uses them.
    auth: { secret: randomBytes(32).toString("base64") },
    services: [],
    dataDir,
    // Nothing is dropped however far the producer runs ahead; the benchmark data is years old.
    store: { queueLimit: 10_000_000, retention: { maxAgeDays: 3650, maxBytes: 64 * 1024 * 1024 * 1024 } },
  });
}

async function openStore(dataDir: string, node = "mn1"): Promise<SqliteStore> {
  const store = new SqliteStore({ config: config(dataDir, node), node, logger: silentLogger(), scheduleJobs: false, requestTimeoutMs: 600_000 });
  await store.start();
  return store;
}

function durable(store: SqliteStore, seq: number): Promise<void> {
  if (store.storedUpTo() >= seq) return Promise.resolve();
  return new Promise((resolve) => store.onStored((upTo) => upTo >= seq && resolve()));
}

// ---- 1. appends -------------------------------------------------------------------------------

interface AppendRun {
  perSecond: number;
  appendMicros: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** A producer appends in chunks of 1,000 per event-loop turn; timed until the last is durable. */
async function appendRun(root: string, total: number): Promise<AppendRun> {
  const dir = mkdtempSync(join(root, "append-"));
  const store = await openStore(dir);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let appendNs = 0n;
  const started = performance.now();
  delay.enable();
  let last = 0;
  for (let done = 0; done < total; ) {
    const chunk = Math.min(1_000, total - done);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < chunk; i++) {
      last = store.appendEvent({ type: "check.changed", service: "mn", message: `service mn is healthy: HTTP 200 (${done + i})`, fields: { service: "mn", healthy: true, latencyMs: 3 }, wallMs: Date.now(), monoMs: performance.now() });
    }
    appendNs += process.hrtime.bigint() - t0;
    done += chunk;
    await nextTurn();
  }
  await durable(store, last);
  const seconds = (performance.now() - started) / 1_000;
  delay.disable();
  await store.stop();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: total / seconds, appendMicros: Number(appendNs) / 1_000 / total, loopDelayP99Ms: delay.percentile(99) / 1e6, loopDelayMaxMs: delay.max / 1e6 };
}

/** How long a lone event waits to be durable: the batching window plus one commit. */
async function ackLatencies(root: string, events: number): Promise<number[]> {
  const dir = mkdtempSync(join(root, "latency-"));
  const store = await openStore(dir);
  const latencies: number[] = [];
  for (let i = 0; i < events; i++) {
    const t0 = performance.now();
    const seq = store.appendEvent({ type: "check.changed", message: `lone ${i}`, wallMs: Date.now(), monoMs: t0 });
    await durable(store, seq);
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  await store.stop();
  rmSync(dir, { recursive: true, force: true });
  return latencies;
}

// ---- 2. a large store -------------------------------------------------------------------------

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 1);
const SPAN = 90 * DAY;

/** Deterministic pseudo-random numbers (the same data every run). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A mix like a long-running pair: mostly checks and links, some elections, rare operator commands. */
function* syntheticEvents(total: number, origins: { origin: string; node: string }[]): Generator<SyncEvent[]> {
  const random = lcg(42);
  const seqs = origins.map(() => 0);
  const services = ["mn", "ui", "db"];
  let epoch = 1;
  let holder = 0;
  let batch: SyncEvent[] = [];
  for (let i = 0; i < total; i++) {
    const which = random() < 0.5 ? 0 : 1;
    const { origin, node } = origins[which]!;
    const wallMs = Math.floor(NOW - SPAN + (SPAN * i) / total);
    const r = random();
    let event: Omit<SyncEvent, "origin" | "seq" | "node" | "wallMs" | "monoMs">;
    if (r < 0.4) {
      const service = services[Math.floor(random() * 3)]!;
      const healthy = random() < 0.7;
      event = { type: "check.changed", service, message: `service ${service} is ${healthy ? "healthy" : "failed"}: ${healthy ? "HTTP 200" : "connect ECONNREFUSED"}`, fields: { service, healthy, critical: true, detail: healthy ? "HTTP 200" : "connect ECONNREFUSED" } };
    } else if (r < 0.5) event = { type: "gateway.changed", service: null, message: "gateway 10.0.0.1 reachable: 0.4 ms", fields: { reachable: true, detail: "0.4 ms" } };
    else if (r < 0.6) event = { type: "keepalived.state", service: null, message: "keepalived is BACKUP", fields: { state: "BACKUP" } };
    else if (r < 0.7) event = { type: "peer.connected", service: null, message: "peer connected from 10.0.0.12 (protocol v1)", fields: { peer: "mn2", remote: "10.0.0.12", version: 1 } };
    else if (r < 0.78) {
      // A take by the other node now and then; otherwise a role change that moves nothing.
      if (random() < 0.05 && which !== holder) {
        epoch += 1;
        holder = which;
        event = { type: "election.role-changed", service: null, message: "receiving -> holder", fields: { from: "receiving", to: "holder", reason: `took the VIP from ${origins[1 - which]!.node} at epoch ${epoch}`, epoch } };
      } else event = { type: "election.role-changed", service: null, message: "standby -> claiming", fields: { from: "standby", to: "claiming", reason: "holder gone", epoch } };
    } else if (r < 0.9) event = { type: "election.heartbeat-late", service: null, message: "heartbeat 180 ms late", fields: { lateMs: 180 } };
    else if (r < 0.95) event = { type: "vip.changed", service: null, message: "VIP 10.0.0.10 is now on eth0", fields: { present: random() < 0.5, role: "holder" } };
    else if (r < 0.999) event = { type: "restore.finished", service: "mn", message: "restore of mn (attempt 1) succeeded: exit 0", fields: { service: "mn", attempt: 1, ok: true, detail: "exit 0" } };
    else event = { type: "operator.demote", service: null, message: "operator asked to demote this node", fields: { requestId: `r${i}` } };
    seqs[which]! += 1;
    batch.push({ origin, seq: seqs[which]!, node, wallMs, monoMs: i, ...event });
    if (batch.length === 5_000) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function* syntheticSamples(total: number, origins: { origin: string; node: string }[]): Generator<SyncSample[]> {
  const random = lcg(7);
  const series = ["cpu.percent", "memory.percent", "disk.percent", "net.rx_bytes", "net.tx_bytes", "check.mn.latency_ms", "check.ui.latency_ms", "check.db.latency_ms"];
  const seqs = origins.map(() => 0);
  let batch: SyncSample[] = [];
  for (let i = 0; i < total; i++) {
    const which = i % 2;
    seqs[which]! += 1;
    batch.push({ origin: origins[which]!.origin, seq: seqs[which]!, node: origins[which]!.node, wallMs: Math.floor(NOW - SPAN + (SPAN * i) / total), series: series[Math.floor(i / 2) % series.length]!, value: Math.round(random() * 10_000) / 100 });
    if (batch.length === 10_000) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

async function timed<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  let result = await fn(); // warm-up (statement cache, page cache)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), result };
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(options.dir, "mnha-store-bench-"));
  const rows: string[][] = [];
  const row = (...cells: string[]): void => {
    rows.push(cells);
    console.error(`  ${cells.join("  |  ")}`);
  };
  try {
    console.error(`store benchmark: ${count(options.events)} events, ${count(options.samples)} samples, ${options.runs} runs, in ${root}`);

    // 0. what the event loop sees with no store at all (this machine's noise floor)
    const floor = monitorEventLoopDelay({ resolution: 1 });
    floor.enable();
    const idle = setInterval(() => undefined, 10);
    await new Promise((r) => setTimeout(r, 3_000));
    clearInterval(idle);
    floor.disable();
    row("event-loop delay with no store (noise floor)", `p99 ${fmt(floor.percentile(99) / 1e6)} ms, max ${fmt(floor.max / 1e6)} ms`, "3 s of an idle 10 ms interval; compare the rows below with it");

    // 1. appends
    const appendTotal = Math.min(200_000, options.events);
    const appends: AppendRun[] = [];
    for (let i = 0; i < options.runs; i++) appends.push(await appendRun(root, appendTotal));
    row("appendEvent → durable (own events/s)", `${count(Math.round(median(appends.map((a) => a.perSecond))))} /s`, `median of ${options.runs} runs of ${count(appendTotal)} events; one commit (fsync) per batch`);
    row("appendEvent cost on the caller", `${fmt(median(appends.map((a) => a.appendMicros)), 2)} µs`, "per call, median of runs");
    row("event-loop delay while writing at full speed", `p99 ${fmt(median(appends.map((a) => a.loopDelayP99Ms)))} ms, max ${fmt(median(appends.map((a) => a.loopDelayMaxMs)))} ms`, "producer appends 1,000 per turn; SQLite runs in the worker");

    const latencies = await ackLatencies(root, 50);
    row("append → durable ack, one event at a time", `median ${fmt(median(latencies))} ms, max ${fmt(Math.max(...latencies))} ms`, "50 events 20 ms apart; batching window 25 ms + one commit");

    // 2. a large store
    const source = await openStore(join(root, "source"));
    const peer = { origin: "mn2:00000000bench", node: "mn2" };
    const origins = [{ origin: source.origin, node: "mn1" }, peer];
    let t0 = performance.now();
    for (const batch of syntheticEvents(options.events, origins)) await source.ingest(batch, []);
    const loadEventsMs = performance.now() - t0;
    t0 = performance.now();
    for (const batch of syntheticSamples(options.samples, origins)) await source.ingest([], batch);
    const loadSamplesMs = performance.now() - t0;
    row(`bulk ingest of ${count(options.events)} events`, `${fmt(loadEventsMs / 1_000)} s`, `${count(Math.round(options.events / (loadEventsMs / 1_000)))} events/s, batches of 5,000`);
    row(`bulk ingest of ${count(options.samples)} samples`, `${fmt(loadSamplesMs / 1_000)} s`, `${count(Math.round(options.samples / (loadSamplesMs / 1_000)))} samples/s, batches of 10,000`);
    await source.runJob("optimize");
    row("database size", `${fmt(source.health().sizeBytes / 1_048_576)} MiB`, "after optimize (WAL checkpointed)");

    const lastDay = { sinceMs: NOW - DAY, untilMs: NOW };
    const queries: [string, () => Promise<unknown[]>][] = [
      ["queryEvents newest 100", () => source.queryEvents({ limit: 100 })],
      ["queryEvents last 24 h, limit 1,000", () => source.queryEvents({ ...lastDay, limit: 1_000 })],
      ["queryEvents node=mn2", () => source.queryEvents({ node: "mn2" })],
      ["queryEvents type=election.role-changed (exact)", () => source.queryEvents({ type: "election.role-changed" })],
      ["queryEvents type=election (prefix)", () => source.queryEvents({ type: "election" })],
      ["queryEvents type=operator.demote (rare, 0.1 %)", () => source.queryEvents({ type: "operator.demote" })],
      ["queryEvents rare type 60 days back", () => source.queryEvents({ type: "operator.demote", untilMs: NOW - 60 * DAY, limit: 10 })],
      ["queryEvents service=db", () => source.queryEvents({ service: "db" })],
      ["queryEvents node+type+service+since", () => source.queryEvents({ node: "mn1", type: "check", service: "ui", sinceMs: NOW - 7 * DAY })],
      ["failovers newest 100", () => source.failovers({ limit: 100 })],
      ["failovers last 7 days", () => source.failovers({ sinceMs: NOW - 7 * DAY })],
      [`summarize all ${count(options.samples)} samples`, () => source.summarize({})],
      ["summarize last 24 h", () => source.summarize(lastDay)],
      ["summarize one series, all time", () => source.summarize({ node: "mn1", series: "cpu.percent" })],
      ["watermarks", async () => [await source.watermarks()]],
      ["readAfter from nothing (2,000 / 10,000 / 200 KB)", async () => { const r = await source.readAfter({ events: {}, samples: {} }, { maxEvents: 2_000, maxSamples: 10_000, maxBytes: 200_000 }); return [...r.events, ...r.samples]; }],
    ];
    for (const [name, run] of queries) {
      const { ms, result } = await timed(options.runs, run);
      row(name, `${fmt(ms, 2)} ms`, `${name === "watermarks" ? "" : `${count(result.length)} rows; `}median of ${options.runs}`);
    }
    // The jobs run in the worker: they delay writes (not the HA loop) by about this long. A
    // steady producer (1,000 events/s, as a busy daemon would never reach) watches the loop.
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const appendedAt = new Map<number, number>();
    let worstAckMs = 0;
    source.onStored((upTo) => {
      for (const [seq, at] of appendedAt) {
        if (seq > upTo) continue;
        worstAckMs = Math.max(worstAckMs, performance.now() - at);
        appendedAt.delete(seq);
      }
    });
    delay.enable();
    const producer = setInterval(() => {
      for (let i = 0; i < 10; i++) appendedAt.set(source.appendEvent({ type: "check.changed", message: "steady", wallMs: NOW, monoMs: 0 }), performance.now());
    }, 10);
    for (const job of ["integrityCheck", "optimize", "retention"] as const) {
      const result = await source.runJob(job);
      row(`job ${job}`, `${fmt(result.tookMs / 1_000, 2)} s`, job === "retention" ? "nothing to delete: the cost of a scheduled pass" : job === "integrityCheck" ? "PRAGMA quick_check" : "PRAGMA optimize + wal_checkpoint(TRUNCATE)");
    }
    clearInterval(producer);
    await durable(source, Math.max(...appendedAt.keys(), 0));
    delay.disable();
    row("event-loop delay during those jobs, 1,000 events/s appended", `p99 ${fmt(delay.percentile(99) / 1e6)} ms, max ${fmt(delay.max / 1e6)} ms`, `the appends wait for the worker: worst append → durable ${fmt(worstAckMs / 1_000, 2)} s`);

    // 3. an empty store catches up through readAfter / ingest, as the sync engine would
    const target = await openStore(join(root, "target"), "mn2");
    const limits = { maxEvents: 2_000, maxSamples: 10_000, maxBytes: 200_000 };
    t0 = performance.now();
    let batches = 0;
    let have: Watermarks = await target.watermarks();
    for (;;) {
      const batch = await source.readAfter(have, limits);
      if (batch.events.length === 0 && batch.samples.length === 0) break;
      await target.ingest(batch.events, batch.samples);
      batches += 1;
      have = await target.watermarks();
    }
    const syncMs = performance.now() - t0;
    const total = options.events + options.samples;
    row(`empty store catches up: ${count(options.events)} events + ${count(options.samples)} samples`, `${fmt(syncMs / 1_000)} s`, `${count(batches)} readAfter/ingest rounds (≤ 2,000 events, 10,000 samples, 200 KB); ${count(Math.round(total / (syncMs / 1_000)))} records/s`);
    const marks = await target.watermarks();
    const expected = await source.watermarks();
    if (JSON.stringify(marks) !== JSON.stringify(expected)) throw new Error(`the copy's watermarks ${JSON.stringify(marks)} differ from the source's ${JSON.stringify(expected)}`);
    await target.stop();
    await source.stop();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  console.log(`\n### Store (${count(options.events)} events, ${count(options.samples)} samples; ${new Date().toISOString().slice(0, 10)})\n`);
  console.log("| measure | result | notes |");
  console.log("| --- | --- | --- |");
  for (const cells of rows) console.log(`| ${cells.join(" | ")} |`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`store-bench: ${(error as Error).message}`);
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND") console.error("hint: run `pnpm run build` first (the store loads @mnha/shared from its dist)");
    process.exit(2);
  },
);
