/**
 * The node's audit and monitoring store (StoreApi). The HA loop only ever touches memory here:
 * `appendEvent` numbers the record and queues it; a worker thread (store-worker.ts) owns the
 * SQLite file and commits the queue in batches, one transaction each, and reports what is
 * durable. Reads and maintenance jobs are messages to the same worker.
 *
 * When the database cannot be written (disk full, read-only, I/O error, corrupt, cannot be
 * opened), appends go on into a bounded queue (the oldest own records are replaced by one gap
 * marker when it overflows), health() says why, and the store retries with backoff until
 * the cause goes away. Nothing here throws into the caller of an append; only a database
 * written by a newer mnha makes start() fail.
 */
import { dirname, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { MnhaError, scheduleCron, stripControlChars, stripControlCharsDeep, systemClock, type Clock, type CronTask, type Logger, type MnhaConfig } from "@mnha/shared";
import type { EventFilter, FailoverRecord, IngestReport, IngestSource, NewEvent, NewSample, SeriesSummary, StoreApi, StoreHealth, SyncEvent, SyncSample, Watermarks } from "../contracts.js";
import { Backoff } from "../util/backoff.js";
import { GAP_EVENT_TYPE, GAP_SERIES, isLocalOnlyEventType, localOriginOf } from "./schema.js";
import { gapEvent, newOriginId } from "./store-db.js";
import { startStoreWorker } from "./worker-launcher.js";
import type {
  DailySummary,
  EventRow,
  IntegrityResult,
  JobName,
  JobResult,
  OpenResult,
  OptimizeResult,
  QueryResults,
  ReadLimits,
  RetentionResult,
  SampleRow,
  StoreQuery,
  WorkerFailure,
  WorkerReply,
  WorkerRequest,
} from "./worker-protocol.js";

export type { DailySummary, IntegrityResult, JobName, JobResult, RetentionResult, OptimizeResult } from "./worker-protocol.js";

/** What the daemon should turn into an audit event (and a log line). */
export type StoreAlert =
  | { kind: "degraded"; reason: string }
  | { kind: "recovered"; afterMs: number; reason: string }
  | { kind: "dropping"; reason: string; queueLimit: number }
  | { kind: "integrity-failed"; detail: string }
  /** The database file was damaged (not a database, corrupt): moved aside, a new one created. */
  | { kind: "moved-aside"; path: string; reason: string; files: string[] }
  | { kind: "integrity-restored" };

export interface SqliteStoreOptions {
  config: MnhaConfig;
  /** This node's name (config.node.name). */
  node: string;
  logger: Logger;
  /** wallNow() dates the jobs (retention cut-off, daily summary window). */
  clock?: Clock;
  /** Retry delays after a failure (default 250 ms doubling to 30 s). */
  retry?: { initialMs?: number; maxMs?: number };
  /** How long appends may wait to be batched (default 25 ms). */
  flushIntervalMs?: number;
  /** Schedule the maintenance jobs with config.store.schedules (default true). */
  scheduleJobs?: boolean;
  /** How long start() waits for the database to open before going on degraded (default 10 s). */
  openTimeoutMs?: number;
  /** Reads and jobs fail after this long (default 120 s). */
  requestTimeoutMs?: number;
  /** How long stop() waits for queued records to be written (default 5 s). */
  stopTimeoutMs?: number;
}

const BATCH_EVENTS = 2_000;
const BATCH_SAMPLES = 10_000;
/** Batches posted to the worker and not yet acknowledged, at most. */
const MAX_BATCHES_IN_FLIGHT = 4;
const EVENT_TYPE_MAX = 64;
const MESSAGE_MAX = 2_000;
const SERVICE_MAX = 64;
const SERIES_MAX = 128;
const FIELD_KEY_MAX = 64;
/** Larger fields are cut: a record must fit a sync frame. */
const FIELDS_MAX_BYTES = 16_384;

interface OwnQueue<T> {
  items: T[];
  /** items[0 .. inFlight) are posted to the worker in batches not yet acknowledged. */
  inFlight: number;
}

interface Batch {
  gen: number;
  events: number;
  samples: number;
  lastEventSeq: number | null;
}

interface PendingRequest {
  resolve: (result: unknown) => void;
  reject: (error: MnhaError) => void;
  timer: NodeJS.Timeout | null;
}

export class SqliteStore implements StoreApi {
  private readonly config: MnhaConfig["store"];
  private readonly path: string;
  private readonly mayMoveDamagedAside: boolean;
  private readonly node: string;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly flushIntervalMs: number;
  private readonly scheduleJobs: boolean;
  private readonly openTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly stopTimeoutMs: number;

  private ownOrigin = "";
  private nextEventSeq = 1;
  private nextSampleSeq = 1;
  /** Local-only events are numbered apart, under `<origin>#local` (never replicated). */
  private nextLocalEventSeq = 1;
  private numbering = false;
  private readonly beforeStart: { events: NewEvent[]; samples: NewSample[] } = { events: [], samples: [] };
  private readonly events: OwnQueue<EventRow> = { items: [], inFlight: 0 };
  private readonly samples: OwnQueue<SampleRow> = { items: [], inFlight: 0 };
  private readonly batches = new Map<number, Batch>();
  private generation = 0;
  private storedEventSeq = 0;

  private worker: Worker | null = null;
  private workerOpen = false;
  private nextRequestId = 1;
  private readonly requests = new Map<number, PendingRequest>();

  private writeFailure: string | null = null;
  private failingSince: number | null = null;
  private integrityFailure: string | null = null;
  private lastIntegrityCheck: StoreHealth["lastIntegrityCheck"] = null;
  private sizeBytes = 0;
  private dropped = 0;
  private droppingThisEpisode = false;

  private flushTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private recovering = false;
  private readonly cronTasks: CronTask[] = [];
  private readonly runningJobs = new Set<JobName>();
  private started = false;
  private stopping = false;
  private drainWaiters: (() => void)[] = [];

  private readonly storedListeners: ((upToSeq: number) => void)[] = [];
  private readonly alertListeners: ((alert: StoreAlert) => void)[] = [];
  private readonly summaryListeners: ((summary: DailySummary) => void)[] = [];

  constructor(options: SqliteStoreOptions) {
    this.config = options.config.store;
    this.path = this.config.path ?? `${options.config.dataDir.replace(/\/+$/, "")}/mnha.db`;
    // Only a file in the agent's own directory is ever moved: a store.path that points at
    // someone else's file by mistake gets the error, not a rename.
    this.mayMoveDamagedAside = resolve(dirname(this.path)) === resolve(options.config.dataDir);
    this.node = options.node;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff({ initialMs: options.retry?.initialMs ?? 250, maxMs: options.retry?.maxMs ?? 30_000 });
    this.flushIntervalMs = options.flushIntervalMs ?? 25;
    this.scheduleJobs = options.scheduleJobs ?? true;
    this.openTimeoutMs = options.openTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  }

  /** Empty until start(); then stable for the life of the database file. */
  get origin(): string {
    return this.ownOrigin;
  }

  /** The database file. */
  get databasePath(): string {
    return this.path;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Opens the database in the worker. Resolves degraded (health().ok false, retrying) when the
   * file cannot be opened; rejects only for a database written by a newer mnha.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    try {
      const opened = await this.openWorker(null, this.openTimeoutMs);
      this.adopt(opened);
    } catch (error) {
      const failure = error as MnhaError;
      if (failure.fields?.["workerCode"] === "NEWER_SCHEMA") {
        await this.discardWorker();
        this.started = false;
        throw new MnhaError("INTERNAL", failure.message, {
          hint: `run the mnha version that wrote ${this.path}, or stop mnha and move the file away (the peer sends its copy of the records back)`,
          fields: { path: this.path },
        });
      }
      // Go on without a database: HA must not wait for the disk. Records are numbered under a
      // fresh origin that the database adopts once it opens, so no (origin, seq) is reused.
      this.ownOrigin = newOriginId(this.node);
      this.nextEventSeq = 1;
      this.nextSampleSeq = 1;
      this.nextLocalEventSeq = 1;
      this.markFailing(reasonOf(failure));
      this.scheduleRetry();
    }
    this.numbering = true;
    for (const event of this.beforeStart.events.splice(0)) this.appendEvent(event);
    if (this.beforeStart.samples.length > 0) this.appendSamples(this.beforeStart.samples.splice(0));
    if (this.scheduleJobs) this.scheduleCron();
    this.flushSoon();
  }

  /** Writes what is queued (waiting at most stopTimeoutMs), closes the database, ends the worker. */
  async stop(): Promise<void> {
    if (!this.started || this.stopping) return;
    this.stopping = true;
    for (const task of this.cronTasks.splice(0)) task.stop();
    this.clearTimer("flush");
    this.clearTimer("retry");
    if (this.worker && this.workerOpen && this.writeFailure === null) {
      this.flush(true);
      await this.drained(this.stopTimeoutMs);
    }
    const unwritten = this.events.items.length + this.samples.items.length;
    if (unwritten > 0) this.logger.warn({ unwrittenEvents: this.events.items.length, unwrittenSamples: this.samples.items.length, reason: this.writeFailure }, "store stopped with records not written");
    if (this.worker && this.workerOpen) await this.request({ op: "close" }, 5_000).catch(() => undefined);
    await this.discardWorker();
    this.failRequests("the store stopped", "start the store again");
    this.started = false;
    this.numbering = false;
  }

  // ---- appends (synchronous, never throw) -------------------------------------------------

  appendEvent(event: NewEvent): number {
    try {
      if (!this.numbering) {
        // Numbered when start() has read the last seq from the database.
        this.beforeStart.events.push(event);
        return 0;
      }
      const local = event.localOnly === true || isLocalOnlyEventType(String(event.type ?? ""));
      const seq = local ? this.nextLocalEventSeq++ : this.nextEventSeq++;
      this.events.items.push(this.eventRow(event, seq, local ? localOriginOf(this.ownOrigin) : this.ownOrigin));
      this.enforceQueueLimit();
      this.flushSoon();
      return seq;
    } catch (error) {
      this.logger.error({ err: error, type: event?.type }, "could not queue an event");
      return 0;
    }
  }

  appendSamples(samples: NewSample[]): void {
    try {
      if (!this.numbering) {
        this.beforeStart.samples.push(...samples);
        return;
      }
      for (const sample of samples) {
        if (typeof sample.value !== "number" || !Number.isFinite(sample.value)) continue;
        const seq = this.nextSampleSeq++;
        this.samples.items.push({ origin: this.ownOrigin, seq, node: this.node, wallMs: this.wallOf(sample.wallMs), series: clip(stripControlChars(String(sample.series), { keepNewlines: false }), SERIES_MAX) || "unnamed", value: sample.value, fromSeq: null });
      }
      this.enforceQueueLimit();
      this.flushSoon();
    } catch (error) {
      this.logger.error({ err: error }, "could not queue samples");
    }
  }

  storedUpTo(): number {
    return this.storedEventSeq;
  }

  onStored(listener: (upToSeq: number) => void): void {
    this.storedListeners.push(listener);
  }

  /** Store trouble and recovery, integrity-check failures: the daemon records them as events. */
  onAlert(listener: (alert: StoreAlert) => void): void {
    this.alertListeners.push(listener);
  }

  /** The scheduled daily summary: the daemon records `summary.message` as an event. */
  onDailySummary(listener: (summary: DailySummary) => void): void {
    this.summaryListeners.push(listener);
  }

  health(): StoreHealth {
    const reason = this.writeFailure ?? (this.integrityFailure === null ? null : `integrity check failed: ${this.integrityFailure}`);
    return {
      ok: reason === null,
      reason,
      sizeBytes: this.sizeBytes,
      pending: this.events.items.length + this.samples.items.length + this.beforeStart.events.length + this.beforeStart.samples.length,
      dropped: this.dropped,
      lastIntegrityCheck: this.lastIntegrityCheck,
    };
  }

  // ---- sync and queries --------------------------------------------------------------------

  /**
   * Stores the peer's records. Every string in them loses its control characters first (they
   * end up in operators' terminals); records under this node's origin, or whose origin is not
   * the named node's, are refused, and a different copy of a held record is reported (see
   * StoreDatabase.ingest).
   */
  async ingest(events: SyncEvent[], samples: SyncSample[], from?: IngestSource): Promise<IngestReport> {
    if (events.length === 0 && samples.length === 0) return { stored: 0, duplicates: 0, refusedCount: 0, conflictCount: 0, issues: [] };
    let report: IngestReport;
    try {
      const policy = { ...(this.ownOrigin === "" ? {} : { ownOrigin: this.ownOrigin }), ownNode: this.node, ...(from ? { peerNode: from.peer } : {}) };
      report = (await this.request({ op: "ingest", events: events.map(cleanEvent), samples: samples.map(cleanSample), policy })) as IngestReport;
    } catch (error) {
      const failure = error as MnhaError;
      if (failure.fields?.["workerCode"] !== "REFUSED" && failure.fields?.["workerCode"] !== "NOT_STARTED") {
        this.markFailing(reasonOf(failure));
        this.scheduleRetry();
      }
      throw failure;
    }
    this.writeSucceeded();
    return report;
  }

  watermarks(): Promise<Watermarks> {
    return this.query({ kind: "watermarks" });
  }

  readAfter(have: Watermarks, limits: ReadLimits): Promise<{ events: SyncEvent[]; samples: SyncSample[] }> {
    return this.query({ kind: "readAfter", have, limits });
  }

  queryEvents(filter: EventFilter): Promise<SyncEvent[]> {
    return this.query({ kind: "events", filter });
  }

  failovers(filter: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]> {
    return this.query({ kind: "failovers", filter });
  }

  summarize(filter: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<SeriesSummary[]> {
    return this.query({ kind: "summarize", filter });
  }

  /** Runs a maintenance job now (the cron schedule calls the same). Rejects when the store is not open. */
  async runJob(job: "retention"): Promise<RetentionResult>;
  async runJob(job: "optimize"): Promise<OptimizeResult>;
  async runJob(job: "integrityCheck"): Promise<IntegrityResult>;
  async runJob(job: "dailySummary"): Promise<DailySummary>;
  async runJob(job: JobName): Promise<JobResult>;
  async runJob(job: JobName): Promise<JobResult> {
    this.flush(false);
    const retention = { maxAgeDays: this.config.retention.maxAgeDays, maxBytes: this.config.retention.maxBytes };
    let result: JobResult;
    try {
      result = (await this.request({ op: "job", job, nowMs: this.clock.wallNow(), retention })) as JobResult;
    } catch (error) {
      if (job === "integrityCheck" && (error as MnhaError).fields?.["workerCode"] !== "NOT_STARTED") {
        // A check that cannot even run (corrupt header, I/O error) is a failed check.
        this.recordIntegrity({ job: "integrityCheck", ok: false, detail: (error as Error).message, tookMs: 0 });
      }
      throw error;
    }
    if (result.job === "integrityCheck") this.recordIntegrity(result);
    if (result.job === "dailySummary") for (const listener of this.summaryListeners) listener(result);
    if (result.job === "retention" && (result.deletedEvents > 0 || result.deletedSamples > 0)) {
      this.logger.info({ deletedEvents: result.deletedEvents, deletedSamples: result.deletedSamples, sizeBytes: result.sizeBytesAfter, tookMs: result.tookMs }, "retention removed old records");
    }
    return result;
  }

  private recordIntegrity(result: IntegrityResult): void {
    const wasFailing = this.integrityFailure !== null;
    this.lastIntegrityCheck = { at: this.clock.wallNow(), ok: result.ok, detail: result.detail };
    if (!result.ok) {
      this.integrityFailure = result.detail;
      this.logger.error({ detail: result.detail, path: this.path }, "store integrity check failed");
      this.alert({ kind: "integrity-failed", detail: result.detail });
    } else if (wasFailing) {
      this.integrityFailure = null;
      this.alert({ kind: "integrity-restored" });
    }
  }

  private async query<K extends StoreQuery["kind"]>(query: Extract<StoreQuery, { kind: K }>): Promise<QueryResults[K]> {
    // Own records queued so far go first: the worker answers in order, so they are visible.
    this.flush(false);
    return (await this.request({ op: "query", query })) as QueryResults[K];
  }

  // ---- the own-record queue ------------------------------------------------------------------

  /** Own events carry network-supplied text too (check output, refusal reasons): stripped as well. */
  private eventRow(event: NewEvent, seq: number, origin: string): EventRow {
    return {
      origin,
      seq,
      node: this.node,
      wallMs: this.wallOf(event.wallMs),
      monoMs: typeof event.monoMs === "number" && Number.isFinite(event.monoMs) ? Math.max(0, event.monoMs) : 0,
      type: clip(stripControlChars(String(event.type ?? ""), { keepNewlines: false }), EVENT_TYPE_MAX) || "unknown",
      service: clipOrNull(event.service === undefined ? event.fields?.["service"] : event.service, SERVICE_MAX),
      message: clip(stripControlChars(String(event.message ?? "")), MESSAGE_MAX),
      fields: fieldsJson(event.fields),
      fromSeq: null,
    };
  }

  private wallOf(wallMs: number): number {
    return typeof wallMs === "number" && Number.isFinite(wallMs) ? Math.max(0, Math.round(wallMs)) : Math.round(this.clock.wallNow());
  }

  /** Over the limit: the oldest own records not being written give way, samples before events. */
  private enforceQueueLimit(): void {
    const limit = this.config.queueLimit;
    while (this.events.items.length + this.samples.items.length > limit) {
      if (!this.dropOldest(this.samples, "samples") && !this.dropOldest(this.events, "events")) break;
    }
  }

  /** Replaces the oldest record not in flight by a gap marker (or widens the marker there). */
  private dropOldest<T extends EventRow | SampleRow>(queue: OwnQueue<T>, kind: "events" | "samples"): boolean {
    const at = queue.inFlight;
    const head = queue.items[at];
    if (head === undefined) return false;
    const reason = this.writeFailure ?? "writes are slower than appends";
    if (!this.droppingThisEpisode) {
      this.droppingThisEpisode = true;
      this.logger.error({ queueLimit: this.config.queueLimit, reason }, "store queue full: dropping the oldest own records");
      this.alert({ kind: "dropping", reason, queueLimit: this.config.queueLimit });
    }
    if (head.origin !== this.ownOrigin) {
      // A local-only event: nothing waits for its seq, so it simply goes.
      queue.items.splice(at, 1);
      this.dropped += 1;
      return true;
    }
    if (head.fromSeq === null) {
      queue.items[at] = this.marker(kind, head.seq, head.seq, head.wallMs, reason) as T;
      this.dropped += 1;
      return true;
    }
    // Widen the marker over the next record (or the next marker: two runs of drops meet).
    const next = queue.items[at + 1];
    if (next === undefined || next.origin !== head.origin || (next.fromSeq ?? next.seq) !== head.seq + 1) return false;
    queue.items.splice(at, 2, this.marker(kind, head.fromSeq, next.seq, next.wallMs, reason) as T);
    if (next.fromSeq === null) this.dropped += 1;
    return true;
  }

  private marker(kind: "events" | "samples", fromSeq: number, seq: number, wallMs: number, reason: string): EventRow | SampleRow {
    const info = { origin: this.ownOrigin, node: this.node };
    if (kind === "samples") return { origin: info.origin, seq, node: info.node, wallMs, series: GAP_SERIES, value: seq - fromSeq + 1, fromSeq };
    const event = gapEvent(info, fromSeq, seq, wallMs, "queue-overflow", reason);
    return { origin: event.origin, seq, node: event.node, wallMs: event.wallMs, monoMs: 0, type: GAP_EVENT_TYPE, service: null, message: event.message, fields: JSON.stringify(event.fields), fromSeq };
  }

  private flushSoon(): void {
    if (this.flushTimer || this.stopping) return;
    const queued = this.events.items.length - this.events.inFlight + this.samples.items.length - this.samples.inFlight;
    if (queued === 0) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush(false);
    }, queued >= BATCH_EVENTS ? 0 : this.flushIntervalMs);
  }

  /** Posts queued records in batches. `probe`: post even an empty batch (tests that writing works). */
  private flush(probe: boolean): void {
    if (!this.worker || !this.workerOpen || this.retryTimer !== null || this.recovering) return;
    let posted = false;
    while (this.batches.size < MAX_BATCHES_IN_FLIGHT) {
      const events = this.events.items.slice(this.events.inFlight, this.events.inFlight + BATCH_EVENTS);
      const samples = this.samples.items.slice(this.samples.inFlight, this.samples.inFlight + BATCH_SAMPLES);
      if (events.length === 0 && samples.length === 0 && (posted || !probe)) break;
      posted = true;
      this.events.inFlight += events.length;
      this.samples.inFlight += samples.length;
      const id = this.nextRequestId++;
      let lastOwnEvent: EventRow | undefined;
      for (const row of events) if (row.origin === this.ownOrigin) lastOwnEvent = row;
      this.batches.set(id, { gen: this.generation, events: events.length, samples: samples.length, lastEventSeq: lastOwnEvent?.seq ?? null });
      this.post({ op: "write", id, gen: this.generation, events, samples });
    }
  }

  private onWriteReply(id: number, reply: Extract<WorkerReply, { op: "reply" }>): void {
    const batch = this.batches.get(id);
    if (!batch) return;
    this.batches.delete(id);
    if (batch.gen !== this.generation) return; // refused after an earlier failure; already requeued
    if (reply.ok) {
      if (reply.sizeBytes !== null) this.sizeBytes = reply.sizeBytes;
      this.events.items.splice(0, batch.events);
      this.events.inFlight -= batch.events;
      this.samples.items.splice(0, batch.samples);
      this.samples.inFlight -= batch.samples;
      this.writeSucceeded();
      if (batch.lastEventSeq !== null && batch.lastEventSeq > this.storedEventSeq) {
        this.storedEventSeq = batch.lastEventSeq;
        for (const listener of this.storedListeners) listener(batch.lastEventSeq);
      }
      this.flush(false);
      if (this.batches.size === 0 && this.events.items.length === 0 && this.samples.items.length === 0) for (const waiter of this.drainWaiters.splice(0)) waiter();
      return;
    }
    this.writeFailed(`${reply.error.code}: ${reply.error.message}`);
  }

  /** Every batch in flight goes back to the queue, to be sent again (as a new generation) later. */
  private writeFailed(reason: string): void {
    this.generation += 1;
    this.batches.clear();
    this.events.inFlight = 0;
    this.samples.inFlight = 0;
    this.markFailing(reason);
    this.scheduleRetry();
    // stop() does not wait for writes that cannot happen.
    if (this.stopping) for (const waiter of this.drainWaiters.splice(0)) waiter();
  }

  private markFailing(reason: string): void {
    const first = this.writeFailure === null;
    this.writeFailure = reason;
    if (first) {
      this.failingSince = this.clock.now();
      this.logger.error({ reason, path: this.path, pending: this.events.items.length + this.samples.items.length }, "store cannot write; queueing records in memory and retrying");
      this.alert({ kind: "degraded", reason });
    }
  }

  private writeSucceeded(): void {
    this.backoff.reset();
    if (this.writeFailure === null) return;
    const reason = this.writeFailure;
    const afterMs = Math.round(this.clock.now() - (this.failingSince ?? this.clock.now()));
    this.writeFailure = null;
    this.failingSince = null;
    this.droppingThisEpisode = false;
    this.logger.info({ afterMs, reason, dropped: this.dropped }, "store writes again");
    this.alert({ kind: "recovered", afterMs, reason });
    // A retry may be pending from the failure that just cleared (e.g. an ingest succeeded first).
    if (this.retryTimer) {
      this.clearTimer("retry");
      this.flush(false);
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopping || !this.started) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.recover();
    }, this.backoff.next());
  }

  /** After a failure: a fresh worker or connection, then the queue (or a probe) again. */
  private async recover(): Promise<void> {
    if (this.stopping || this.recovering) return;
    this.recovering = true;
    try {
      if (!this.worker || !this.workerOpen) {
        await this.discardWorker();
        const opened = await this.openWorker(this.ownOrigin, this.requestTimeoutMs);
        this.adopt(opened);
      } else {
        this.noteMovedAside((await this.request({ op: "reopen" })) as OpenResult);
      }
    } catch (error) {
      this.recovering = false;
      this.markFailing(reasonOf(error));
      this.scheduleRetry();
      return;
    }
    this.recovering = false;
    this.flush(true);
  }

  // ---- the worker --------------------------------------------------------------------------

  private async openWorker(adoptOrigin: string | null, timeoutMs: number): Promise<OpenResult> {
    const worker = startStoreWorker();
    this.worker = worker;
    this.workerOpen = false;
    worker.on("message", (message: WorkerReply) => this.onMessage(message));
    worker.on("error", (error) => this.onWorkerGone(worker, `store worker failed: ${error.message}`));
    worker.on("exit", (code) => this.onWorkerGone(worker, `store worker exited with code ${code}`));
    const opened = (await this.request({ op: "open", path: this.path, node: this.node, adoptOrigin, moveDamagedAside: this.mayMoveDamagedAside }, timeoutMs)) as OpenResult;
    this.workerOpen = true;
    return opened;
  }

  private adopt(opened: OpenResult): void {
    if (this.ownOrigin === "") {
      this.ownOrigin = opened.origin;
      this.nextEventSeq = opened.lastEventSeq + 1;
      this.nextSampleSeq = opened.lastSampleSeq + 1;
      this.nextLocalEventSeq = opened.lastLocalEventSeq + 1;
      this.storedEventSeq = opened.lastEventSeq;
    } else {
      // The numbering in memory goes on; never below what the file already holds.
      this.nextEventSeq = Math.max(this.nextEventSeq, opened.lastEventSeq + 1);
      this.nextSampleSeq = Math.max(this.nextSampleSeq, opened.lastSampleSeq + 1);
      this.nextLocalEventSeq = Math.max(this.nextLocalEventSeq, opened.lastLocalEventSeq + 1);
    }
    this.logger.info({ path: this.path, origin: opened.origin, created: opened.created, lastEventSeq: opened.lastEventSeq }, "store open");
    this.noteMovedAside(opened);
  }

  private noteMovedAside(opened: OpenResult): void {
    if (opened.movedAside) this.alert({ kind: "moved-aside", path: this.path, reason: opened.movedAside.reason, files: opened.movedAside.files });
  }

  private onWorkerGone(worker: Worker, reason: string): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.workerOpen = false;
    this.failRequests(reason, "the store restarts its worker by itself; see the agent log");
    if (this.stopping) return;
    if (this.batches.size > 0) this.writeFailed(reason);
    else {
      this.markFailing(reason);
      this.scheduleRetry();
    }
  }

  private failRequests(reason: string, hint: string): void {
    for (const [id, pending] of this.requests) {
      if (pending.timer) clearTimeout(pending.timer);
      this.requests.delete(id);
      pending.reject(new MnhaError("INTERNAL", reason, { hint, fields: { workerCode: "WORKER_GONE" } }));
    }
  }

  private async discardWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.workerOpen = false;
    if (worker) await worker.terminate().catch(() => undefined);
  }

  private onMessage(message: WorkerReply): void {
    if (message.op === "log") {
      this.logger[message.level](message.fields, message.message);
      return;
    }
    if (this.batches.has(message.id)) return this.onWriteReply(message.id, message);
    const pending = this.requests.get(message.id);
    if (!pending) return;
    this.requests.delete(message.id);
    if (pending.timer) clearTimeout(pending.timer);
    if (message.ok) {
      if (message.sizeBytes !== null) this.sizeBytes = message.sizeBytes;
      pending.resolve(message.result);
    } else pending.reject(failureError(message.error, this.path));
  }

  private request(body: DistributiveOmit<WorkerRequest, "id">, timeoutMs = this.requestTimeoutMs): Promise<unknown> {
    const worker = this.worker;
    if (!worker || (!this.workerOpen && body.op !== "open")) {
      return Promise.reject(new MnhaError("INTERNAL", `the store is not available: ${this.writeFailure ?? "not started"}`, { hint: "the store retries by itself; see health() and the agent log", fields: { workerCode: "NOT_STARTED" } }));
    }
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(id);
        reject(new MnhaError("INTERNAL", `the store did not answer a ${body.op} request within ${timeoutMs} ms`, { hint: "the disk may be very slow or hung; see the agent log", fields: { workerCode: "TIMEOUT" } }));
        // A worker stuck in open is abandoned; a new one is started on retry.
        if (body.op === "open" && this.worker === worker) void this.discardWorker();
      }, timeoutMs);
      this.requests.set(id, { resolve, reject, timer });
      this.post({ ...body, id } as WorkerRequest);
    });
  }

  private post(request: WorkerRequest): void {
    this.worker?.postMessage(request);
  }

  private drained(timeoutMs: number): Promise<void> {
    if (this.batches.size === 0 && this.events.items.length === 0 && this.samples.items.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.drainWaiters.push(done);
    });
  }

  // ---- jobs --------------------------------------------------------------------------------

  private scheduleCron(): void {
    const schedules = this.config.schedules;
    for (const job of ["retention", "optimize", "integrityCheck", "dailySummary"] as const) {
      this.cronTasks.push(scheduleCron(schedules[job], () => this.runScheduled(job)));
    }
  }

  private async runScheduled(job: JobName): Promise<void> {
    if (this.runningJobs.has(job) || !this.workerOpen) return;
    this.runningJobs.add(job);
    try {
      await this.runJob(job);
    } catch (error) {
      this.logger.warn({ job, err: error }, "store job failed");
    } finally {
      this.runningJobs.delete(job);
    }
  }

  // ---- misc ---------------------------------------------------------------------------------

  private alert(alert: StoreAlert): void {
    for (const listener of this.alertListeners) {
      try {
        listener(alert);
      } catch (error) {
        this.logger.warn({ err: error, alert: alert.kind }, "store alert listener failed");
      }
    }
  }

  private clearTimer(which: "flush" | "retry"): void {
    const timer = which === "flush" ? this.flushTimer : this.retryTimer;
    if (timer) clearTimeout(timer);
    if (which === "flush") this.flushTimer = null;
    else this.retryTimer = null;
  }
}

/** "SQLITE_FULL: cannot write to the store: database or disk is full" */
function reasonOf(error: unknown): string {
  const code = (error as MnhaError | null)?.fields?.["workerCode"];
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" && !["NOT_STARTED", "TIMEOUT", "WORKER_GONE", "ERROR"].includes(code) ? `${code}: ${message}` : message;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function failureError(failure: WorkerFailure, path: string): MnhaError {
  const hint =
    failure.code === "SQLITE_FULL"
      ? `free space on the file system of ${path}; the store writes its queue by itself once it can`
      : failure.code.startsWith("SQLITE_CORRUPT") || failure.code === "SQLITE_NOTADB"
        ? `stop mnha, move ${path} away and start again: a new database is created and the peer sends its copy of the records back`
        : failure.code.startsWith("SQLITE_READONLY") || failure.code === "SQLITE_CANTOPEN" || failure.code === "EACCES" || failure.code === "EROFS"
          ? `make ${path} and its directory writable by the agent`
          : failure.code === "REFUSED"
            ? "the records were refused as malformed; see the agent log"
            : "see the agent log; the store retries by itself";
  return new MnhaError("INTERNAL", failure.message, { hint, fields: { workerCode: failure.code, path } });
}

/** The peer's event with every string stripped of control characters (node and origin are checked by pattern). */
function cleanEvent(event: SyncEvent): SyncEvent {
  const fields = event.fields !== null && typeof event.fields === "object" ? stripControlCharsDeep(event.fields) : event.fields;
  return {
    ...event,
    type: typeof event.type === "string" ? stripControlChars(event.type, { keepNewlines: false }) : event.type,
    service: typeof event.service === "string" ? stripControlChars(event.service, { keepNewlines: false }) : event.service,
    message: typeof event.message === "string" ? stripControlChars(event.message) : event.message,
    fields,
  };
}

function cleanSample(sample: SyncSample): SyncSample {
  return typeof sample.series === "string" ? { ...sample, series: stripControlChars(sample.series, { keepNewlines: false }) } : sample;
}

/** A service named by the event, or by its fields when the event does not say (check.changed). */
function clipOrNull(value: unknown, max: number): string | null {
  const text = typeof value === "string" ? stripControlChars(value, { keepNewlines: false }) : "";
  return text !== "" ? clip(text, max) : null;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

/**
 * JSON.stringify replacer: strings, and object keys, without control characters. An object is
 * copied only when a key needs it, so JSON.stringify still detects a cycle.
 */
function withoutControlChars(_key: string, value: unknown): unknown {
  if (typeof value === "string") return stripControlChars(value);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (!keys.some((key) => stripControlChars(key) !== key)) return value;
  return Object.fromEntries(keys.map((key) => [stripControlChars(key), (value as Record<string, unknown>)[key]]));
}

/** JSON of the fields, always an object with short keys, cut to fit a sync frame. */
function fieldsJson(fields: Record<string, unknown> | undefined): string {
  let value: Record<string, unknown> = fields && typeof fields === "object" && !Array.isArray(fields) ? fields : {};
  if (Object.keys(value).some((key) => key.length > FIELD_KEY_MAX)) {
    value = Object.fromEntries(Object.entries(value).map(([key, v]) => [clip(key, FIELD_KEY_MAX), v]));
  }
  let json: string;
  try {
    json = JSON.stringify(value, withoutControlChars) ?? "{}";
  } catch (error) {
    json = JSON.stringify({ unserializable: error instanceof Error ? error.message : String(error) });
  }
  if (Buffer.byteLength(json) > FIELDS_MAX_BYTES) json = JSON.stringify({ truncated: true, preview: json.slice(0, 2_000) });
  return json;
}
