/**
 * An in-memory StoreApi with the semantics the sync engine relies on: own appends get
 * consecutive seqs and become "durable" on the next tick (then onStored fires); ingest is
 * idempotent by (origin, seq); watermarks are the highest seq with no gap before it;
 * readAfter returns, oldest wall-clock first across origins, ascending seqs within each
 * origin, bounded in count and (approximate) bytes.
 */
import type { EventFilter, FailoverRecord, IngestReport, IngestSource, NewEvent, NewSample, SeriesSummary, StoreApi, StoreHealth, SyncEvent, SyncSample, Watermarks } from "../../src/contracts.js";

interface Record_ {
  origin: string;
  seq: number;
  wallMs: number;
}

/** One kind of record (events or samples) of every origin. */
class OriginTable<R extends Record_> {
  private readonly byOrigin = new Map<string, { records: Map<number, R>; sorted: number[] | null; watermark: number }>();

  put(record: R): boolean {
    let table = this.byOrigin.get(record.origin);
    if (!table) {
      table = { records: new Map(), sorted: [], watermark: 0 };
      this.byOrigin.set(record.origin, table);
    }
    if (table.records.has(record.seq)) return false;
    table.records.set(record.seq, record);
    // Appends in order keep the sorted index; anything else rebuilds it on the next read.
    if (table.sorted !== null && (table.sorted.length === 0 || record.seq > (table.sorted[table.sorted.length - 1] as number))) table.sorted.push(record.seq);
    else table.sorted = null;
    while (table.records.has(table.watermark + 1)) table.watermark += 1;
    return true;
  }

  /** Every record of one origin gone, as when a node's database file is created again. */
  forget(origin: string): void {
    this.byOrigin.delete(origin);
  }

  watermarks(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const [origin, table] of this.byOrigin) if (table.watermark > 0) result[origin] = table.watermark;
    return result;
  }

  count(): number {
    let total = 0;
    for (const table of this.byOrigin.values()) total += table.records.size;
    return total;
  }

  all(): R[] {
    return [...this.byOrigin.values()].flatMap((table) => [...table.records.values()]);
  }

  /** Per origin the seqs above `have`, ascending; merged oldest wall-clock first. */
  after(have: Record<string, number>, maxCount: number, budget: { bytes: number }): R[] {
    const heads: { records: R[]; index: number }[] = [];
    for (const [origin, table] of this.byOrigin) {
      table.sorted ??= [...table.records.keys()].sort((a, b) => a - b);
      const from = firstAbove(table.sorted, have[origin] ?? 0);
      if (from >= table.sorted.length) continue;
      const seqs = table.sorted.slice(from, from + maxCount);
      heads.push({ records: seqs.map((seq) => table.records.get(seq) as R), index: 0 });
    }
    const out: R[] = [];
    while (out.length < maxCount) {
      let best: { records: R[]; index: number } | null = null;
      for (const head of heads) {
        const candidate = head.records[head.index];
        if (!candidate) continue;
        const current = best?.records[best.index];
        if (!current || candidate.wallMs < current.wallMs) best = head;
      }
      if (!best) break;
      const record = best.records[best.index] as R;
      const size = JSON.stringify(record).length + 1;
      if (out.length > 0 && size > budget.bytes) break;
      budget.bytes -= size;
      out.push(record);
      best.index += 1;
    }
    return out;
  }
}

function firstAbove(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class FakeStore implements StoreApi {
  readonly origin: string;
  private readonly node: string;
  private readonly events = new OriginTable<SyncEvent>();
  private readonly samples = new OriginTable<SyncSample>();
  private readonly storedListeners: ((upToSeq: number) => void)[] = [];
  private nextEventSeq = 1;
  private nextSampleSeq = 1;
  private durableUpTo = 0;
  private flushScheduled = false;
  private readonly queued: { events: SyncEvent[]; samples: SyncSample[] } = { events: [], samples: [] };
  /** Test hooks. */
  ingestCalls = 0;
  duplicateRecordsIngested = 0;
  failIngest = false;
  /** While set, ingest waits for it (a slow disk). */
  ingestGate: Promise<void> | null = null;
  /** The `from` of every ingest call. */
  readonly ingestSources: (IngestSource | undefined)[] = [];
  failWatermarks = false;
  readCalls = 0;
  /** "origin#seq" of events that the next read skips (a read racing a commit), once each. */
  hideFromNextRead = new Set<string>();

  constructor(node: string, origin = `${node}:${Math.random().toString(36).slice(2, 10)}`) {
    this.node = node;
    this.origin = origin;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  appendEvent(event: NewEvent): number {
    const seq = this.nextEventSeq++;
    this.queued.events.push({
      origin: this.origin,
      seq,
      node: this.node,
      wallMs: event.wallMs,
      monoMs: event.monoMs,
      type: event.type,
      service: event.service ?? null,
      message: event.message,
      fields: event.fields ?? {},
    });
    this.scheduleFlush();
    return seq;
  }

  appendSamples(samples: NewSample[]): void {
    for (const sample of samples) {
      this.queued.samples.push({ origin: this.origin, seq: this.nextSampleSeq++, node: this.node, wallMs: sample.wallMs, series: sample.series, value: sample.value });
    }
    this.scheduleFlush();
  }

  /** Appends already-durable own records in bulk (a backlog written while the link was down). */
  seed(count: { events?: number; samples?: number }, make: (i: number) => Partial<NewEvent> = () => ({})): void {
    for (let i = 0; i < (count.events ?? 0); i++) {
      const seq = this.nextEventSeq++;
      this.events.put({ origin: this.origin, seq, node: this.node, wallMs: 1_700_000_000_000 + seq, monoMs: seq, type: "test.event", service: null, message: `event ${seq} of ${this.node}`, fields: { i }, ...make(i) });
    }
    for (let i = 0; i < (count.samples ?? 0); i++) {
      const seq = this.nextSampleSeq++;
      this.samples.put({ origin: this.origin, seq, node: this.node, wallMs: 1_700_000_000_000 + seq, series: "cpu.load_percent", value: i % 100 });
    }
    this.durableUpTo = this.nextEventSeq - 1;
  }

  storedUpTo(): number {
    return this.durableUpTo;
  }

  onStored(listener: (upToSeq: number) => void): void {
    this.storedListeners.push(listener);
  }

  async ingest(events: SyncEvent[], samples: SyncSample[], from?: IngestSource): Promise<IngestReport> {
    this.ingestCalls += 1;
    this.ingestSources.push(from);
    await tick();
    if (this.ingestGate) await this.ingestGate;
    if (this.failIngest) throw new Error("disk full (fake)");
    const report: IngestReport = { stored: 0, duplicates: 0, refusedCount: 0, conflictCount: 0, issues: [] };
    for (const event of events) {
      if (this.events.put(structuredClone(event))) report.stored += 1;
      else {
        this.duplicateRecordsIngested += 1;
        report.duplicates += 1;
      }
    }
    for (const sample of samples) {
      if (this.samples.put({ ...sample })) report.stored += 1;
      else {
        this.duplicateRecordsIngested += 1;
        report.duplicates += 1;
      }
    }
    return report;
  }

  async watermarks(): Promise<Watermarks> {
    await tick();
    if (this.failWatermarks) throw new Error("database is locked (fake)");
    return { events: this.events.watermarks(), samples: this.samples.watermarks() };
  }

  async readAfter(have: Watermarks, limits: { maxEvents: number; maxSamples: number; maxBytes: number }): Promise<{ events: SyncEvent[]; samples: SyncSample[] }> {
    this.readCalls += 1;
    await tick();
    const budget = { bytes: limits.maxBytes };
    let events = this.events.after(have.events, limits.maxEvents, budget);
    if (this.hideFromNextRead.size > 0) {
      const hidden = this.hideFromNextRead;
      this.hideFromNextRead = new Set();
      events = events.filter((e) => !hidden.has(`${e.origin}#${e.seq}`));
    }
    const samples = this.samples.after(have.samples, limits.maxSamples, budget);
    return { events: structuredClone(events), samples: samples.map((s) => ({ ...s })) };
  }

  /** Every event held, as "origin#seq" keys, sorted (for comparing two stores). */
  eventKeys(): string[] {
    return this.events
      .all()
      .map((e) => `${e.origin}#${e.seq}`)
      .sort();
  }

  sampleKeys(): string[] {
    return this.samples
      .all()
      .map((s) => `${s.origin}#${s.seq}`)
      .sort();
  }

  allEvents(): SyncEvent[] {
    return this.events.all();
  }

  eventCount(): number {
    return this.events.count();
  }

  sampleCount(): number {
    return this.samples.count();
  }

  /** Directly ingests records without going through sync (e.g. a gap in a peer's copy). */
  /** The records of `origin` this store held are lost (a database file created again). */
  forgetOrigin(origin: string): void {
    this.events.forget(origin);
    this.samples.forget(origin);
  }

  putEvent(event: SyncEvent): void {
    this.events.put(event);
  }

  async queryEvents(filter: EventFilter): Promise<SyncEvent[]> {
    return this.events.all().filter((e) => (filter.type === undefined || e.type === filter.type) && (filter.node === undefined || e.node === filter.node));
  }
  async failovers(): Promise<FailoverRecord[]> {
    return [];
  }
  async summarize(): Promise<SeriesSummary[]> {
    return [];
  }
  health(): StoreHealth {
    return { ok: true, reason: null, sizeBytes: 0, pending: this.queued.events.length + this.queued.samples.length, dropped: 0, lastIntegrityCheck: null };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const event of this.queued.events.splice(0)) this.events.put(event);
      for (const sample of this.queued.samples.splice(0)) this.samples.put(sample);
      this.durableUpTo = this.nextEventSeq - 1;
      for (const listener of this.storedListeners) listener(this.durableUpTo);
    });
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
