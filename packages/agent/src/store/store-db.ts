/**
 * The database itself: synchronous (better-sqlite3), so it runs only inside the store worker.
 * Opens and migrates the file, writes records idempotently while keeping per-origin
 * watermarks, answers the queries and runs the maintenance jobs.
 *
 * Loaded by the store worker: no `@mnha/*` runtime imports (types only).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { setImmediate as yieldToMessages } from "node:timers/promises";
import Database from "better-sqlite3";
import type { EventFilter, FailoverRecord, IngestIssue, IngestRefusal, IngestReport, SeriesSummary, SyncEvent, SyncSample, Watermarks } from "../contracts.js";
import { FAILOVER_EVENT_TYPES, type AuditEvent, type HolderTake, compareTakes, describeFailover, failoverWindow, takeOf } from "./failovers.js";
import { OriginStream, type StreamRow, type StreamSource, takeOldestFirst } from "./read-after.js";
import { GAP_EVENT_TYPE, GAP_SERIES, MIGRATIONS, SCHEMA_VERSION, categoryOf, isLocalOnlyEventType, isLocalOrigin, localOriginOf } from "./schema.js";
import type { DailySummary, EventRow, IngestPolicy, IntegrityResult, OpenResult, OptimizeResult, ReadLimits, RetentionResult, RetentionSettings, SampleRow } from "./worker-protocol.js";

/** A failure with a code that survives the trip to the main thread. */
export class StoreFault extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "StoreFault";
  }
}

type Kind = "events" | "samples";

const DAY_MS = 86_400_000;
const MAX_QUERY_LIMIT = 10_000;
const DEFAULT_QUERY_LIMIT = 100;
/** The page cache's bound, in KiB (`cache_size` takes KiB when negative). */
const PAGE_CACHE_KIB = 2_048;
/** Rows deleted per transaction by retention, so that writes interleave with a long job. */
const DELETE_CHUNK = 5_000;
const VACUUM_CHUNK_PAGES = 2_000;
/** At most this many rows per step while the data exceeds maxBytes. */
const SIZE_CHUNK = 1_000;
const ORIGIN_PATTERN = /^[A-Za-z0-9_.:-]{1,80}$/;
/** Refusals and conflicts listed one by one in an ingest report (the rest are counted). */
const MAX_REPORTED_ISSUES = 20;

interface EventDbRow {
  origin_id: number;
  seq: number;
  from_seq: number | null;
  node: string;
  wall_ms: number;
  mono_ms: number;
  type: string;
  service: string | null;
  message: string;
  fields: string;
}

interface SampleDbRow {
  origin_id: number;
  seq: number;
  from_seq: number | null;
  node: string;
  series: string;
  wall_ms: number;
  value: number;
}

type Statement = Database.Statement<unknown[], unknown>;

export class StoreDatabase {
  private closed = false;
  private readonly originIds = new Map<string, number>();
  private readonly originById = new Map<number, { origin: string; node: string }>();
  private readonly seriesIds = new Map<string, number>();
  private readonly stmt: Record<string, Statement>;
  /** The file this connection has open (device and inode), to notice it removed or replaced. */
  private readonly file: { dev: number; ino: number } | null;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    readonly origin: string,
    private readonly ownOriginId: number,
    /** When this database was created (wall ms): records of an older origin of this node predate it. */
    readonly createdMs: number,
  ) {
    this.file = fileIdentity(path);
    this.stmt = {
      insertEvent: db.prepare(
        "INSERT OR IGNORE INTO events (origin_id, seq, from_seq, node, wall_ms, mono_ms, type, category, service, message, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      insertSample: db.prepare("INSERT OR IGNORE INTO samples (origin_id, seq, from_seq, series_id, wall_ms, value) VALUES (?, ?, ?, ?, ?, ?)"),
      insertGap: db.prepare("INSERT OR IGNORE INTO gaps (origin_id, kind, from_seq, to_seq) VALUES (?, ?, ?, ?)"),
      watermark: db.prepare("SELECT seq FROM watermarks WHERE origin_id = ? AND kind = ?").pluck(),
      setWatermark: db.prepare("INSERT INTO watermarks (origin_id, kind, seq) VALUES (?, ?, ?) ON CONFLICT (origin_id, kind) DO UPDATE SET seq = excluded.seq"),
      gapReach: db.prepare("SELECT max(to_seq) FROM gaps WHERE origin_id = ? AND kind = ? AND from_seq <= ? AND to_seq > ?").pluck(),
      nextEvents: db.prepare("SELECT seq, from_seq FROM events WHERE origin_id = ? AND seq > ? ORDER BY seq"),
      nextSamples: db.prepare("SELECT seq, from_seq FROM samples WHERE origin_id = ? AND seq > ? ORDER BY seq"),
      originId: db.prepare("SELECT id FROM origins WHERE origin = ?").pluck(),
      insertOrigin: db.prepare("INSERT INTO origins (origin, node) VALUES (?, ?) ON CONFLICT (origin) DO NOTHING"),
      seriesId: db.prepare("SELECT id FROM series WHERE node = ? AND name = ?").pluck(),
      insertSeries: db.prepare("INSERT INTO series (node, name) VALUES (?, ?) ON CONFLICT (node, name) DO NOTHING"),
      // Local-only origins are never announced nor sent.
      allWatermarks: db.prepare(
        "SELECT o.origin AS origin, w.origin_id AS origin_id, w.kind AS kind, w.seq AS seq FROM watermarks w JOIN origins o ON o.id = w.origin_id WHERE w.seq > 0 AND o.origin NOT LIKE '%#local'",
      ),
      eventAt: db.prepare("SELECT node, wall_ms, type, service, message, fields, from_seq FROM events WHERE origin_id = ? AND seq = ?"),
      sampleAt: db.prepare("SELECT r.node AS node, r.name AS series, s.wall_ms AS wall_ms, s.value AS value, s.from_seq AS from_seq FROM samples s JOIN series r ON r.id = s.series_id WHERE s.origin_id = ? AND s.seq = ?"),
      eventsAfter: db.prepare("SELECT origin_id, seq, from_seq, node, wall_ms, mono_ms, type, service, message, fields FROM events WHERE origin_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"),
      samplesAfter: db.prepare(
        "SELECT s.origin_id AS origin_id, s.seq AS seq, s.from_seq AS from_seq, r.node AS node, r.name AS series, s.wall_ms AS wall_ms, s.value AS value FROM samples s JOIN series r ON r.id = s.series_id WHERE s.origin_id = ? AND s.seq > ? AND s.seq <= ? ORDER BY s.seq LIMIT ?",
      ),
      roleChangesBefore: db.prepare("SELECT node, wall_ms, type, message, fields FROM events WHERE type = 'election.role-changed' AND wall_ms <= ? ORDER BY wall_ms DESC, id DESC"),
      failoverWindow: db.prepare(
        `SELECT node, wall_ms, type, message, fields FROM events WHERE type IN (${FAILOVER_EVENT_TYPES.map(() => "?").join(", ")}) AND wall_ms BETWEEN ? AND ?`,
      ),
      seriesAll: db.prepare("SELECT id, node, name FROM series WHERE name <> ? ORDER BY node, name"),
      seriesAggregate: db.prepare("SELECT count(*) AS n, min(value) AS min, max(value) AS max FROM samples WHERE series_id = ? AND wall_ms BETWEEN ? AND ?"),
      seriesLast: db.prepare("SELECT value, wall_ms FROM samples WHERE series_id = ? AND wall_ms BETWEEN ? AND ? ORDER BY wall_ms DESC, id DESC LIMIT 1"),
      seriesValues: db.prepare("SELECT value FROM samples WHERE series_id = ? AND wall_ms BETWEEN ? AND ?").pluck(),
      probe: db.prepare("INSERT INTO meta (key, value) VALUES ('last-write-probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      pageCount: db.prepare("PRAGMA page_count").pluck(),
      freelistCount: db.prepare("PRAGMA freelist_count").pluck(),
      pageSize: db.prepare("PRAGMA page_size").pluck(),
    };
    this.loadOrigins();
  }

  /**
   * Opens (creating when missing) and migrates the database. `adoptOrigin` makes that the
   * database's own origin (the store ran without a database and numbered records under it).
   */
  static open(path: string, node: string, adoptOrigin: string | null = null): { store: StoreDatabase; opened: OpenResult } {
    try {
      // Made again after a removal by hand, the data dir is closed to others, as the agent made it.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreFault(codeOf(error), `cannot create the directory of ${path}: ${messageOf(error)}`);
    }
    let db: Database.Database;
    try {
      db = new Database(path, { timeout: 5_000 });
    } catch (error) {
      throw asFault(error, `cannot open ${path}`);
    }
    try {
      const version = Number(db.pragma("user_version", { simple: true }));
      if (version > SCHEMA_VERSION) {
        throw new StoreFault("NEWER_SCHEMA", `database ${path} was written by a newer mnha (schema ${version} > ${SCHEMA_VERSION}); upgrade mnha or move the file away`);
      }
      const created = version === 0;
      const openedAt = Date.now();
      // Must be chosen before the first table exists: freed pages can then be returned to the
      // file system page by page (retention) instead of by a full VACUUM.
      if (created) db.pragma("auto_vacuum = INCREMENTAL");
      const mode = String(db.pragma("journal_mode = WAL", { simple: true }));
      if (mode !== "wal") throw new StoreFault("SQLITE_CANTOPEN", `cannot put ${path} in WAL mode (got ${mode})`);
      // An acknowledged record survives a crash and a power loss: the WAL is synced at each commit.
      db.pragma("synchronous = FULL");
      db.pragma("journal_size_limit = 67108864");
      // Checkpoint every 256 pages (1 MiB at 4 KiB pages; SQLite's default is 4 MiB): on a small
      // or nearly full file system the WAL alone must not take the last free space, which
      // would leave nothing for the checkpoint that frees it.
      db.pragma("wal_autocheckpoint = 256");
      // better-sqlite3 builds SQLite with a 16 MB page cache per connection (SQLite's own default
      // is 2 MB). This connection lives as long as the agent and its cache keeps every page it
      // writes or reads (the 6-hourly quick_check reads them all) until it is full: up to 16 MB
      // more RSS, gained slowly as the file grows. The store's hot pages (the tails of its
      // tables and indexes) fit in 2 MiB; the rest come from the OS's file cache.
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      for (const migration of MIGRATIONS) {
        if (migration.version <= version) continue;
        db.transaction(() => {
          db.exec(migration.sql);
          db.pragma(`user_version = ${migration.version}`);
        })();
      }
      const origin = StoreDatabase.ensureOrigin(db, node, adoptOrigin);
      if (created) db.prepare("INSERT INTO meta (key, value) VALUES ('created-ms', ?) ON CONFLICT (key) DO NOTHING").run(String(openedAt));
      // A database from before this key was kept: treat it as created now (only records dated
      // before now are accepted under an older origin of this node).
      const createdText = db.prepare("SELECT value FROM meta WHERE key = 'created-ms'").pluck().get() as string | undefined;
      const createdMs = createdText !== undefined && Number.isFinite(Number(createdText)) ? Number(createdText) : openedAt;
      // Opening an existing database writes nothing (it may sit on a file system that cannot be written right now).
      const originId = db.prepare("SELECT id FROM origins WHERE origin = ?").pluck();
      if (originId.get(origin) === undefined) db.prepare("INSERT INTO origins (origin, node) VALUES (?, ?)").run(origin, node);
      const ownOriginId = Number(originId.get(origin));
      // Long-lived connection: let SQLite refresh its statistics when they are stale. A damaged
      // index must not keep the store from opening: the integrity check reports it.
      try {
        db.pragma("optimize = 0x10002");
      } catch {
        // statistics are an optimisation
      }
      const store = new StoreDatabase(db, path, origin, ownOriginId, createdMs);
      const localOriginId = originId.get(localOriginOf(origin));
      return {
        store,
        opened: {
          origin,
          created,
          schemaVersion: SCHEMA_VERSION,
          lastEventSeq: store.lastSeq("events", ownOriginId),
          lastSampleSeq: store.lastSeq("samples", ownOriginId),
          lastLocalEventSeq: localOriginId === undefined ? 0 : store.lastSeq("events", Number(localOriginId)),
        },
      };
    } catch (error) {
      try {
        db.close();
      } catch {
        // already failing; the first error is the one to report
      }
      throw asFault(error, `cannot open ${path}`);
    }
  }

  private static ensureOrigin(db: Database.Database, node: string, adoptOrigin: string | null): string {
    const current = db.prepare("SELECT value FROM meta WHERE key = 'origin'").pluck().get() as string | undefined;
    if (adoptOrigin !== null && ORIGIN_PATTERN.test(adoptOrigin)) {
      if (current !== adoptOrigin) db.prepare("INSERT INTO meta (key, value) VALUES ('origin', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(adoptOrigin);
      return adoptOrigin;
    }
    if (current !== undefined) return current;
    const origin = newOriginId(node);
    db.prepare("INSERT INTO meta (key, value) VALUES ('origin', ?)").run(origin);
    return origin;
  }

  /**
   * When the file was removed or renamed while open, SQLite does not checkpoint it on close: its
   * WAL would stay at the old path, a renamed copy would lack every record still in it, and the
   * file created at the path next could meet a WAL that is not its own. So the WAL is written
   * into the open file first, and the WAL and shared-memory files left at the path are removed
   * when no file is there any more (a file put in its place keeps whatever came with it).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const moved = this.fileMoved();
    if (moved !== null) {
      try {
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        // best effort: the records are the peer's too
      }
    }
    this.db.close();
    if (moved !== null && !existsSync(this.path)) for (const file of [`${this.path}-wal`, `${this.path}-shm`]) rmSync(file, { force: true });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** The connection's durability and cache settings, for tests and diagnostics. */
  settings(): { journalMode: string; synchronous: number; autoVacuum: number; cacheSize: number; schemaVersion: number } {
    return {
      journalMode: String(this.db.pragma("journal_mode", { simple: true })),
      cacheSize: Number(this.db.pragma("cache_size", { simple: true })),
      synchronous: Number(this.db.pragma("synchronous", { simple: true })),
      autoVacuum: Number(this.db.pragma("auto_vacuum", { simple: true })),
      schemaVersion: Number(this.db.pragma("user_version", { simple: true })),
    };
  }

  /**
   * Throws when the file at the path is no longer the one this connection has open (removed or
   * renamed by hand, or replaced). In WAL mode SQLite goes on writing into the unlinked file,
   * and every record since would be gone at the next restart; the store instead treats this as
   * a failed write and reopens, which creates the file again under the same origin (the peer
   * sends back the records it holds).
   */
  assertFileInPlace(): void {
    const moved = this.fileMoved();
    if (moved === "removed") throw new StoreFault("FILE_GONE", `${this.path} was removed or renamed while the store had it open; it is created again`);
    if (moved === "replaced") throw new StoreFault("FILE_GONE", `${this.path} was replaced while the store had it open; the store opens the file now there`);
  }

  /** Whether the path still names the open file; null also when that cannot be told (EACCES: the write will say). */
  private fileMoved(): "removed" | "replaced" | null {
    if (this.file === null) return null;
    try {
      const now = statSync(this.path);
      return now.dev === this.file.dev && now.ino === this.file.ino ? null : "replaced";
    } catch (error) {
      return codeOf(error) === "ENOENT" ? "removed" : null;
    }
  }

  /** Database plus WAL file size in bytes. */
  sizeBytes(): number {
    let size = 0;
    for (const file of [this.path, `${this.path}-wal`]) {
      try {
        size += statSync(file).size;
      } catch {
        // no WAL right now
      }
    }
    return size;
  }

  // ---- writing ------------------------------------------------------------------------------

  /**
   * Stores records of any origin (INSERT OR IGNORE) and moves the watermarks, in one
   * transaction. With `report`, a record already held is compared with the copy held: the
   * same is a duplicate, a different one a conflict (the copy held is kept).
   */
  write(events: readonly EventRow[], samples: readonly SampleRow[], report: IngestReport | null = null): void {
    if (events.length === 0 && samples.length === 0) return this.probe();
    const touched = new Map<number, Set<Kind>>();
    const touch = (originId: number, kind: Kind): void => {
      const kinds = touched.get(originId);
      if (kinds) kinds.add(kind);
      else touched.set(originId, new Set([kind]));
    };
    const run = this.db.transaction(() => {
      for (const e of events) {
        const originId = this.originIdFor(e.origin, e.node);
        const inserted = this.stmt.insertEvent!.run(originId, e.seq, e.fromSeq, e.node, e.wallMs, e.monoMs, e.type, categoryOf(e.type), e.service, e.message, e.fields).changes > 0;
        if (report) this.compareEvent(report, originId, e, inserted);
        if (e.fromSeq !== null) this.stmt.insertGap!.run(originId, "events", e.fromSeq, e.seq);
        touch(originId, "events");
      }
      for (const s of samples) {
        const originId = this.originIdFor(s.origin, s.node);
        const inserted = this.stmt.insertSample!.run(originId, s.seq, s.fromSeq, this.seriesIdFor(s.node, s.series), s.wallMs, s.value).changes > 0;
        if (report) this.compareSample(report, originId, s, inserted);
        if (s.fromSeq !== null) this.stmt.insertGap!.run(originId, "samples", s.fromSeq, s.seq);
        touch(originId, "samples");
      }
      for (const [originId, kinds] of touched) for (const kind of kinds) this.advanceWatermark(originId, kind);
    });
    try {
      run();
    } catch (error) {
      // Ids handed out inside the rolled-back transaction are gone.
      this.originIds.clear();
      this.originById.clear();
      this.seriesIds.clear();
      try {
        this.loadOrigins();
      } catch {
        // reloaded on the next write
      }
      throw asFault(error, "cannot write to the store");
    }
  }

  /** A tiny real write: tells whether writing works again (an empty transaction writes nothing). */
  private probe(): void {
    try {
      this.stmt.probe!.run(String(Date.now()));
    } catch (error) {
      throw asFault(error, "cannot write to the store");
    }
  }

  /**
   * Records from the peer, as they came off the wire. A malformed record refuses the whole
   * batch (throws); a record the policy refuses is left out and reported, the rest is stored.
   */
  ingest(events: readonly SyncEvent[], samples: readonly SyncSample[], policy: IngestPolicy = {}): IngestReport {
    const report: IngestReport = { stored: 0, duplicates: 0, refusedCount: 0, conflictCount: 0, issues: [] };
    const eventRows: EventRow[] = [];
    const sampleRows: SampleRow[] = [];
    for (const row of events.map(eventRowOf)) {
      const refusal = this.refusalOf(row, policy) ?? (isLocalOnlyEventType(row.type) ? { reason: "local-only" as const, detail: `event type ${row.type} is local-only and never replicated` } : null);
      if (refusal) addIssue(report, { kind: "event", origin: row.origin, seq: row.seq, ...refusal });
      else eventRows.push(row);
    }
    for (const row of samples.map(sampleRowOf)) {
      const refusal = this.refusalOf(row, policy);
      if (refusal) addIssue(report, { kind: "sample", origin: row.origin, seq: row.seq, ...refusal });
      else sampleRows.push(row);
    }
    this.write(eventRows, sampleRows, report);
    return report;
  }

  /**
   * How origins are tied to nodes: an origin id is `<node>:<random>` (newOriginId), its node
   * the part before the first ':'; an origin without one belongs to the node it was first
   * stored for. A record must name its origin's node; with a known peer, that node must be
   * the peer (any of its origins: a rebuilt peer has a new one) or this node. This node's
   * current origin only ever comes from here; an older origin of this node (history the peer
   * kept across a rebuild of this node) is accepted only for records dated before this
   * database was created, so a peer cannot make up new records in this node's name.
   */
  private refusalOf(record: { origin: string; node: string; wallMs: number }, policy: IngestPolicy): { reason: IngestRefusal; detail: string } | null {
    if (record.origin === this.origin || (policy.ownOrigin !== undefined && record.origin === policy.ownOrigin)) {
      return { reason: "own-origin", detail: `record under this node's own origin ${record.origin}` };
    }
    if (isLocalOrigin(record.origin)) return { reason: "local-only", detail: `origin ${record.origin} is local-only` };
    const colon = record.origin.indexOf(":");
    const known = this.originIds.get(record.origin);
    const owner = colon > 0 ? record.origin.slice(0, colon) : known !== undefined ? this.originById.get(known)?.node : undefined;
    if (owner !== undefined && owner !== record.node) {
      return { reason: "origin-not-of-node", detail: `origin ${record.origin} belongs to node ${owner}, the record names node ${record.node}` };
    }
    if (known !== undefined && this.originById.get(known)?.node !== record.node) {
      return { reason: "origin-not-of-node", detail: `origin ${record.origin} is stored as node ${this.originById.get(known)?.node ?? "?"}'s, the record names node ${record.node}` };
    }
    if (policy.peerNode !== undefined && policy.ownNode !== undefined && record.node !== policy.peerNode && record.node !== policy.ownNode) {
      return { reason: "not-a-pair-node", detail: `record of node ${record.node}, which is neither this node (${policy.ownNode}) nor the peer (${policy.peerNode})` };
    }
    if (policy.ownNode !== undefined && record.node === policy.ownNode && record.wallMs >= this.createdMs) {
      return {
        reason: "own-node-after-store-created",
        detail: `record of this node under origin ${record.origin}, dated ${new Date(record.wallMs).toISOString()}, after this store was created (${new Date(this.createdMs).toISOString()})`,
      };
    }
    return null;
  }

  private compareEvent(report: IngestReport, originId: number, row: EventRow, inserted: boolean): void {
    if (inserted) {
      report.stored += 1;
      return;
    }
    const held = this.stmt.eventAt!.get(originId, row.seq) as { node: string; wall_ms: number; type: string; service: string | null; message: string; fields: string; from_seq: number | null } | undefined;
    // A gap marker and a record it stands for are not two copies of one record.
    if (!held || held.from_seq !== null || row.fromSeq !== null) {
      report.duplicates += 1;
      return;
    }
    const differs: string[] = (["node", "type", "service", "message", "fields"] as const).filter((key) => held[key] !== row[key]);
    if (held.wall_ms !== row.wallMs) differs.push("wallMs");
    if (differs.length === 0) report.duplicates += 1;
    else addIssue(report, { kind: "event", origin: row.origin, seq: row.seq, reason: "conflict", detail: `a different copy of event ${row.origin}/${row.seq} is held (differs in ${differs.join(", ")}); the copy held is kept` });
  }

  private compareSample(report: IngestReport, originId: number, row: SampleRow, inserted: boolean): void {
    if (inserted) {
      report.stored += 1;
      return;
    }
    const held = this.stmt.sampleAt!.get(originId, row.seq) as { node: string; series: string; wall_ms: number; value: number; from_seq: number | null } | undefined;
    if (!held || held.from_seq !== null || row.fromSeq !== null || (held.node === row.node && held.series === row.series && held.wall_ms === row.wallMs && held.value === row.value)) {
      report.duplicates += 1;
      return;
    }
    addIssue(report, { kind: "sample", origin: row.origin, seq: row.seq, reason: "conflict", detail: `a different copy of sample ${row.origin}/${row.seq} is held; the copy held is kept` });
  }

  private advanceWatermark(originId: number, kind: Kind): void {
    const start = Number(this.stmt.watermark!.get(originId, kind) ?? 0);
    let mark = start;
    for (;;) {
      const before = mark;
      const reach = this.stmt.gapReach!.get(originId, kind, mark + 1, mark) as number | null;
      if (reach !== null && reach > mark) mark = reach;
      const next = kind === "events" ? this.stmt.nextEvents! : this.stmt.nextSamples!;
      for (const row of next.iterate(originId, mark) as IterableIterator<{ seq: number; from_seq: number | null }>) {
        if (row.seq === mark + 1 || (row.from_seq !== null && row.from_seq <= mark + 1)) mark = row.seq;
        else break;
      }
      if (mark === before) break;
    }
    if (mark !== start) this.stmt.setWatermark!.run(originId, kind, mark);
  }

  /** This node's own watermarks: the highest own seq of each kind held with nothing missing below. */
  ownWatermarks(): { events: number; samples: number } {
    return {
      events: Number(this.stmt.watermark!.get(this.ownOriginId, "events") ?? 0),
      samples: Number(this.stmt.watermark!.get(this.ownOriginId, "samples") ?? 0),
    };
  }

  /**
   * A file created again under the same origin (the old one was removed by hand) starts where
   * the old one's own watermarks stood: the records below were written before, and the peer
   * holds them. Without this the new file's own watermark waits for seqs it will never hold,
   * and nothing this node writes reaches the peer again. A range the peer never got comes to
   * it as a gap marker (readAfter), as after retention.
   */
  carryOwnWatermarks(marks: { events: number; samples: number }): void {
    this.db.transaction(() => {
      for (const kind of ["events", "samples"] as const) {
        if (marks[kind] <= Number(this.stmt.watermark!.get(this.ownOriginId, kind) ?? 0)) continue;
        this.stmt.setWatermark!.run(this.ownOriginId, kind, marks[kind]);
        this.advanceWatermark(this.ownOriginId, kind);
      }
    })();
  }

  private lastSeq(kind: Kind, originId: number): number {
    const mark = Number(this.stmt.watermark!.get(originId, kind) ?? 0);
    const max = Number(this.db.prepare(`SELECT coalesce(max(seq), 0) FROM ${kind} WHERE origin_id = ?`).pluck().get(originId));
    return Math.max(mark, max);
  }

  private loadOrigins(): void {
    for (const row of this.db.prepare("SELECT id, origin, node FROM origins").all() as { id: number; origin: string; node: string }[]) {
      this.originIds.set(row.origin, row.id);
      this.originById.set(row.id, { origin: row.origin, node: row.node });
    }
  }

  private originIdFor(origin: string, node: string): number {
    const known = this.originIds.get(origin);
    if (known !== undefined) return known;
    this.stmt.insertOrigin!.run(origin, node);
    const id = Number(this.stmt.originId!.get(origin));
    this.originIds.set(origin, id);
    this.originById.set(id, { origin, node });
    return id;
  }

  private seriesIdFor(node: string, name: string): number {
    const key = `${node}\u0000${name}`;
    const known = this.seriesIds.get(key);
    if (known !== undefined) return known;
    this.stmt.insertSeries!.run(node, name);
    const id = Number(this.stmt.seriesId!.get(node, name));
    this.seriesIds.set(key, id);
    return id;
  }

  private originName(originId: number): string {
    const known = this.originById.get(originId);
    if (known) return known.origin;
    this.loadOrigins();
    return this.originById.get(originId)?.origin ?? `unknown-${originId}`;
  }

  // ---- sync ---------------------------------------------------------------------------------

  watermarks(): Watermarks {
    const result: Watermarks = { events: {}, samples: {} };
    for (const row of this.stmt.allWatermarks!.all() as { origin: string; kind: Kind; seq: number }[]) result[row.kind][row.origin] = row.seq;
    return result;
  }

  /**
   * Records beyond `have`, every origin, oldest first, never past this store's own watermark
   * (so that each batch moves the receiver's watermark). Ranges this store knows are gone
   * (removed by retention, dropped on overflow) come as gap markers.
   */
  readAfter(have: Watermarks, limits: ReadLimits): { events: SyncEvent[]; samples: SyncSample[] } {
    const marks = this.stmt.allWatermarks!.all() as { origin: string; origin_id: number; kind: Kind; seq: number }[];
    const eventStreams: OriginStream<StreamRow, SyncEvent>[] = [];
    const sampleStreams: OriginStream<StreamRow, SyncSample>[] = [];
    const maxEvents = Math.max(0, Math.floor(limits.maxEvents));
    const maxSamples = Math.max(0, Math.floor(limits.maxSamples));
    for (const mark of marks) {
      const from = Math.max(0, Math.floor(Number(have[mark.kind]?.[mark.origin] ?? 0)));
      if (mark.seq <= from) continue;
      const info = this.originById.get(mark.origin_id) ?? { origin: mark.origin, node: "unknown" };
      if (mark.kind === "events" && maxEvents > 0) {
        const source: StreamSource<EventDbRow & StreamRow, SyncEvent> = {
          fetch: (after, upTo, limit) =>
            (this.stmt.eventsAfter!.all(mark.origin_id, after, upTo, limit) as EventDbRow[]).map((row) => ({ ...row, fromSeq: row.from_seq, wallMs: row.wall_ms, bytes: eventRowBytes(info, row) })),
          record: (row) => this.eventOf(row),
          marker: (fromSeq, seq, wallMs) => gapEvent(info, fromSeq, seq, wallMs, "retention"),
          markerBytes: 400,
        };
        eventStreams.push(new OriginStream(info.origin, source as StreamSource<StreamRow, SyncEvent>, from, mark.seq));
      } else if (mark.kind === "samples" && maxSamples > 0) {
        const source: StreamSource<SampleDbRow & StreamRow, SyncSample> = {
          fetch: (after, upTo, limit) =>
            (this.stmt.samplesAfter!.all(mark.origin_id, after, upTo, limit) as SampleDbRow[]).map((row) => ({ ...row, fromSeq: row.from_seq, wallMs: row.wall_ms, bytes: 90 + info.origin.length + row.node.length + row.series.length })),
          record: (row) => this.sampleOf(row),
          marker: (fromSeq, seq, wallMs) => gapSample(info, fromSeq, seq, wallMs),
          markerBytes: 150,
        };
        sampleStreams.push(new OriginStream(info.origin, source as StreamSource<StreamRow, SyncSample>, from, mark.seq));
      }
    }
    const budget = { bytes: Math.max(0, limits.maxBytes) };
    const events = takeOldestFirst(eventStreams, maxEvents, budget, true);
    const samples = takeOldestFirst(sampleStreams, maxSamples, budget, events.length === 0);
    return { events, samples };
  }

  private eventOf(row: EventDbRow): SyncEvent {
    return {
      origin: this.originName(row.origin_id),
      seq: row.seq,
      node: row.node,
      wallMs: row.wall_ms,
      monoMs: row.mono_ms,
      type: row.type,
      service: row.service,
      message: row.message,
      fields: parseFields(row.fields),
    };
  }

  private sampleOf(row: SampleDbRow): SyncSample {
    return { origin: this.originName(row.origin_id), seq: row.seq, node: row.node, wallMs: row.wall_ms, series: row.series, value: row.value };
  }

  // ---- queries ------------------------------------------------------------------------------

  /**
   * Newest first. `type` matches that type and every type below it in the dotted hierarchy:
   * "election" (or "election.") matches "election.role-changed"; "operator.demote" matches
   * itself and "operator.demote.result".
   */
  queryEvents(filter: EventFilter): SyncEvent[] {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]): void => {
      where.push(clause);
      params.push(...values);
    };
    if (filter.sinceMs !== undefined) add("wall_ms >= ?", Math.floor(filter.sinceMs));
    if (filter.untilMs !== undefined) add("wall_ms <= ?", Math.floor(filter.untilMs));
    if (filter.node !== undefined) add("node = ?", filter.node);
    if (filter.service !== undefined) add("service = ?", filter.service);
    if (filter.type !== undefined && filter.type !== "" && filter.type !== ".") {
      const base = filter.type.endsWith(".") ? filter.type.slice(0, -1) : filter.type;
      // Category first so that the (category, wall_ms) index can serve the order.
      if (!base.includes(".")) add("category = ?", base);
      else add("category = ? AND (type = ? OR (type >= ? AND type < ?))", categoryOf(base), base, `${base}.`, `${base}/`);
    }
    const limit = clampLimit(filter.limit);
    const sql = `SELECT origin_id, seq, from_seq, node, wall_ms, mono_ms, type, service, message, fields FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY wall_ms DESC, id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...params, limit) as EventDbRow[]).map((row) => this.eventOf(row));
  }

  /** Every take of the VIP in the window, newest first (see failovers.ts). */
  failovers(filter: { sinceMs?: number; untilMs?: number; limit?: number }): FailoverRecord[] {
    const sinceMs = filter.sinceMs ?? -Infinity;
    const untilMs = filter.untilMs ?? Number.MAX_SAFE_INTEGER;
    const limit = clampLimit(filter.limit);
    // Newest first until `limit` takes in the window plus the one before the oldest of them.
    const takes: HolderTake[] = [];
    let exhausted = true;
    let older = 0;
    for (const row of this.stmt.roleChangesBefore!.iterate(Math.floor(Math.min(untilMs, Number.MAX_SAFE_INTEGER))) as IterableIterator<{ node: string; wall_ms: number; type: string; message: string; fields: string }>) {
      const take = takeOf(auditOf(row));
      if (!take) continue;
      takes.push(take);
      if (take.wallMs < sinceMs) older += 1;
      // One spare beyond the one we need, in case the wall clocks and the epochs disagree on order.
      if (older >= 2 || takes.length >= limit + 2) {
        exhausted = false;
        break;
      }
    }
    takes.sort(compareTakes);
    const result: FailoverRecord[] = [];
    for (let i = takes.length - 1; i >= 0 && result.length < limit; i--) {
      const take = takes[i]!;
      if (take.wallMs < sinceMs || take.wallMs > untilMs) continue;
      if (i === 0 && !exhausted) break; // its predecessor was not read
      const previous = i > 0 ? takes[i - 1]! : null;
      const window = failoverWindow(take, previous);
      const nearby = (this.stmt.failoverWindow!.all(...FAILOVER_EVENT_TYPES, Math.floor(Math.max(window.sinceMs, -Number.MAX_SAFE_INTEGER)), Math.floor(window.untilMs)) as { node: string; wall_ms: number; type: string; message: string; fields: string }[]).map(auditOf);
      result.push(describeFailover(take, previous, nearby));
    }
    return result;
  }

  summarize(filter: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): SeriesSummary[] {
    const sinceMs = Math.floor(filter.sinceMs ?? 0);
    const untilMs = Math.floor(filter.untilMs ?? Number.MAX_SAFE_INTEGER);
    const result: SeriesSummary[] = [];
    for (const series of this.stmt.seriesAll!.all(GAP_SERIES) as { id: number; node: string; name: string }[]) {
      if (filter.node !== undefined && series.node !== filter.node) continue;
      if (filter.series !== undefined && series.name !== filter.series) continue;
      const aggregate = this.stmt.seriesAggregate!.get(series.id, sinceMs, untilMs) as { n: number; min: number; max: number };
      if (aggregate.n === 0) continue;
      const last = this.stmt.seriesLast!.get(series.id, sinceMs, untilMs) as { value: number; wall_ms: number };
      const values = Float64Array.from(this.stmt.seriesValues!.all(series.id, sinceMs, untilMs) as number[]).sort();
      const mid = values.length >> 1;
      const median = values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
      result.push({ node: series.node, series: series.name, count: aggregate.n, min: aggregate.min, median, max: aggregate.max, last: last.value, lastAtMs: last.wall_ms });
    }
    return result;
  }

  // ---- jobs ---------------------------------------------------------------------------------

  /**
   * Deletes records older than maxAgeDays, then the oldest records while the data exceeds
   * maxBytes, in small transactions (writes go on in between), then gives the freed pages
   * back to the file system (incremental vacuum) and truncates the WAL.
   */
  async retention(nowMs: number, settings: RetentionSettings): Promise<RetentionResult> {
    const started = performance.now();
    const sizeBytesBefore = this.sizeBytes();
    const cutoff = Math.floor(nowMs - settings.maxAgeDays * DAY_MS);
    let deletedEvents = 0;
    let deletedSamples = 0;
    const deleteOld = this.db.prepare(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE wall_ms < ? ORDER BY wall_ms LIMIT ${DELETE_CHUNK})`);
    const deleteOldSamples = this.db.prepare(`DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE wall_ms < ? ORDER BY wall_ms LIMIT ${DELETE_CHUNK})`);
    for (;;) {
      const changes = deleteOld.run(cutoff).changes;
      deletedEvents += changes;
      if (changes < DELETE_CHUNK) break;
      await this.pause();
    }
    for (;;) {
      const changes = deleteOldSamples.run(cutoff).changes;
      deletedSamples += changes;
      if (changes < DELETE_CHUNK) break;
      await this.pause();
    }
    // Oldest first, from whichever table holds the oldest record, until the data fits.
    const oldestEvent = this.db.prepare("SELECT min(wall_ms) FROM events").pluck();
    const oldestSample = this.db.prepare("SELECT min(wall_ms) FROM samples").pluck();
    const deleteOldestEvents = this.db.prepare("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY wall_ms LIMIT ?)");
    const deleteOldestSamples = this.db.prepare("DELETE FROM samples WHERE id IN (SELECT id FROM samples ORDER BY wall_ms LIMIT ?)");
    let rows = Number(this.db.prepare("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM samples)").pluck().get());
    for (let used = this.usedBytes(); used > settings.maxBytes && rows > 0; used = this.usedBytes()) {
      const e = oldestEvent.get() as number | null;
      const s = oldestSample.get() as number | null;
      if (e === null && s === null) break;
      // About as many rows as the excess is a share of the data: small steps near the target,
      // so that it is not overshot by much.
      const chunk = Math.max(1, Math.min(SIZE_CHUNK, Math.floor((rows * (used - settings.maxBytes)) / used)));
      const changes = s === null || (e !== null && e <= s) ? deleteOldestEvents.run(chunk).changes : deleteOldestSamples.run(chunk).changes;
      if (s === null || (e !== null && e <= s)) deletedEvents += changes;
      else deletedSamples += changes;
      rows -= changes;
      await this.pause();
    }
    await this.vacuumFreePages();
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    return { job: "retention", deletedEvents, deletedSamples, sizeBytesBefore, sizeBytesAfter: this.sizeBytes(), tookMs: Math.round(performance.now() - started) };
  }

  optimize(): OptimizeResult {
    const started = performance.now();
    this.db.pragma("optimize");
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    return { job: "optimize", tookMs: Math.round(performance.now() - started) };
  }

  integrityCheck(): IntegrityResult {
    const started = performance.now();
    const rows = this.db.pragma("quick_check(20)", { simple: false }) as { quick_check: string }[];
    const problems = rows.map((row) => row.quick_check).filter((line) => line !== "ok");
    return { job: "integrityCheck", ok: problems.length === 0, detail: problems.length === 0 ? "ok" : problems.join("; "), tookMs: Math.round(performance.now() - started) };
  }

  dailySummary(nowMs: number): DailySummary {
    const started = performance.now();
    const untilMs = Math.floor(nowMs);
    const sinceMs = untilMs - DAY_MS;
    const eventsByType: Record<string, number> = {};
    const eventsByNode: Record<string, number> = {};
    let events = 0;
    for (const row of this.db.prepare("SELECT node, type, count(*) AS n FROM events WHERE wall_ms BETWEEN ? AND ? GROUP BY node, type").all(sinceMs, untilMs) as { node: string; type: string; n: number }[]) {
      events += row.n;
      eventsByType[row.type] = (eventsByType[row.type] ?? 0) + row.n;
      eventsByNode[row.node] = (eventsByNode[row.node] ?? 0) + row.n;
    }
    const samples = Number(this.db.prepare("SELECT count(*) FROM samples WHERE wall_ms BETWEEN ? AND ?").pluck().get(sinceMs, untilMs));
    const failovers = this.failovers({ sinceMs, untilMs, limit: 1_000 });
    const sizeBytes = this.sizeBytes();
    const top = Object.entries(eventsByType)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([type, n]) => `${type} ${n}`)
      .join(", ");
    const message = `last 24 h: ${events} events${top ? ` (${top})` : ""}, ${failovers.length} failover${failovers.length === 1 ? "" : "s"}, ${samples} samples; database ${(sizeBytes / 1_048_576).toFixed(1)} MiB`;
    return { job: "dailySummary", sinceMs, untilMs, events, eventsByType, eventsByNode, samples, failovers, sizeBytes, message, tookMs: Math.round(performance.now() - started) };
  }

  private usedBytes(): number {
    return (Number(this.stmt.pageCount!.get()) - Number(this.stmt.freelistCount!.get())) * Number(this.stmt.pageSize!.get());
  }

  private async vacuumFreePages(): Promise<void> {
    while (Number(this.stmt.freelistCount!.get()) > 0) {
      const before = Number(this.stmt.freelistCount!.get());
      this.db.pragma(`incremental_vacuum(${VACUUM_CHUNK_PAGES})`);
      if (Number(this.stmt.freelistCount!.get()) >= before) break;
      await this.pause();
    }
  }

  /** Lets queued messages (appends, reads) run between chunks of a long job. */
  private async pause(): Promise<void> {
    await yieldToMessages();
    if (this.closed) throw new StoreFault("CLOSED", "the store closed while a job was running");
  }
}

// ---- helpers ------------------------------------------------------------------------------

export function newOriginId(node: string): string {
  const prefix = /^[A-Za-z0-9_.-]{1,63}$/.test(node) ? `${node}:` : "";
  return `${prefix}${randomBytes(6).toString("hex")}`;
}

function addIssue(report: IngestReport, issue: IngestIssue): void {
  if (issue.reason === "conflict") report.conflictCount += 1;
  else report.refusedCount += 1;
  if (report.issues.length < MAX_REPORTED_ISSUES) report.issues.push(issue);
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_QUERY_LIMIT;
  return Math.max(1, Math.min(MAX_QUERY_LIMIT, Math.floor(limit)));
}

function parseFields(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  } catch {
    return { unparsable: text.slice(0, 200) };
  }
}

function auditOf(row: { node: string; wall_ms: number; type: string; message: string; fields: string }): AuditEvent {
  return { node: row.node, wallMs: row.wall_ms, type: row.type, message: row.message, fields: parseFields(row.fields) };
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

function checkRecord(record: { origin: unknown; seq: unknown; node: unknown; wallMs: unknown }, what: string): void {
  if (typeof record.origin !== "string" || !ORIGIN_PATTERN.test(record.origin) || !isSeq(record.seq) || typeof record.node !== "string" || typeof record.wallMs !== "number" || !Number.isFinite(record.wallMs)) {
    throw new StoreFault("REFUSED", `malformed ${what} record (origin ${String(record.origin).slice(0, 80)}, seq ${String(record.seq)})`);
  }
}

function eventRowOf(e: SyncEvent): EventRow {
  checkRecord(e, "event");
  const fromSeq = e.type === GAP_EVENT_TYPE && isSeq(e.fields["fromSeq"]) && e.fields["fromSeq"] <= e.seq ? e.fields["fromSeq"] : null;
  return {
    origin: e.origin,
    seq: e.seq,
    node: e.node,
    wallMs: Math.floor(e.wallMs),
    monoMs: Number.isFinite(e.monoMs) ? e.monoMs : 0,
    type: String(e.type),
    service: e.service ?? null,
    message: String(e.message),
    fields: JSON.stringify(e.fields ?? {}),
    fromSeq,
  };
}

function sampleRowOf(s: SyncSample): SampleRow {
  checkRecord(s, "sample");
  if (typeof s.value !== "number" || !Number.isFinite(s.value)) throw new StoreFault("REFUSED", `malformed sample ${s.origin}/${s.seq}: value ${String(s.value)}`);
  const fromSeq = s.series === GAP_SERIES && isSeq(s.value) ? Math.max(1, s.seq - s.value + 1) : null;
  return { origin: s.origin, seq: s.seq, node: s.node, wallMs: Math.floor(s.wallMs), series: String(s.series), value: s.value, fromSeq };
}

/** Marker for events `fromSeq..seq` of an origin that are gone for good. */
export function gapEvent(info: { origin: string; node: string }, fromSeq: number, seq: number, wallMs: number, cause: "retention" | "queue-overflow", detail = ""): SyncEvent {
  const count = seq - fromSeq + 1;
  const why = cause === "retention" ? "removed by retention before they were copied" : `dropped: the store could not write${detail ? ` (${detail})` : ""} and its queue overflowed`;
  return {
    origin: info.origin,
    seq,
    node: info.node,
    wallMs: Math.max(0, Math.floor(wallMs)),
    monoMs: 0,
    type: GAP_EVENT_TYPE,
    service: null,
    message: `${count} event${count === 1 ? "" : "s"} of ${info.node} (seq ${fromSeq}-${seq}) ${why}`,
    fields: { fromSeq, count, cause },
  };
}

/** Marker for samples `seq - value + 1 .. seq` of an origin that are gone for good. */
export function gapSample(info: { origin: string; node: string }, fromSeq: number, seq: number, wallMs: number): SyncSample {
  return { origin: info.origin, seq, node: info.node, wallMs: Math.max(0, Math.floor(wallMs)), series: GAP_SERIES, value: seq - fromSeq + 1 };
}

/** The record's size as JSON, near enough for a batch budget. */
function eventRowBytes(info: { origin: string }, row: EventDbRow): number {
  return 140 + info.origin.length + row.node.length + row.type.length + (row.service?.length ?? 4) + Buffer.byteLength(row.message) + Buffer.byteLength(row.fields);
}

/** Device and inode of a file, or null when it cannot be read (an in-memory database). */
function fileIdentity(path: string): { dev: number; ino: number } | null {
  try {
    const { dev, ino } = statSync(path);
    return { dev, ino };
  } catch {
    return null;
  }
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "ERROR";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** SQLite says the file is not a database, or is damaged past opening. */
export function isDamagedDatabase(code: string): boolean {
  return code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT");
}

/**
 * Moves a damaged database out of the way, with its WAL and shared-memory files, to
 * `<path>.damaged-<time>` (and `-wal`, `-shm`: SQLite can still open the set for a look).
 * Returns the new names. All or nothing: if a companion file cannot follow, the database is
 * put back, so that a new database never meets an old WAL.
 */
export function moveDamagedAside(path: string, now: Date = new Date()): string[] {
  const target = `${path}.damaged-${now.toISOString().replace(/[:.]/g, "-")}`;
  try {
    renameSync(path, target);
  } catch (error) {
    throw asFault(error, `cannot move the damaged database ${path} aside`);
  }
  const moved = [target];
  for (const suffix of ["-wal", "-shm"]) {
    if (!existsSync(`${path}${suffix}`)) continue;
    try {
      renameSync(`${path}${suffix}`, `${target}${suffix}`);
      moved.push(`${target}${suffix}`);
    } catch (error) {
      for (const file of moved.reverse()) renameSync(file, file.replace(target, path));
      throw asFault(error, `cannot move ${path}${suffix} aside with its damaged database`);
    }
  }
  return moved;
}

function asFault(error: unknown, context: string): StoreFault {
  if (error instanceof StoreFault) return error;
  return new StoreFault(codeOf(error), `${context}: ${messageOf(error)}`);
}
