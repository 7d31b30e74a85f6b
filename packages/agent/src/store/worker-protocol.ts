/**
 * Messages between the SqliteStore (main thread) and its worker thread. Every request has an
 * id and gets exactly one reply with that id; the worker handles requests in arrival order.
 */
import type { EventFilter, FailoverRecord, SeriesSummary, SyncEvent, SyncSample, Watermarks } from "../contracts.js";

/** An event row as written: `fields` already JSON. `fromSeq` is set on gap markers only. */
export interface EventRow {
  origin: string;
  seq: number;
  node: string;
  wallMs: number;
  monoMs: number;
  type: string;
  service: string | null;
  message: string;
  fields: string;
  fromSeq: number | null;
}

export interface SampleRow {
  origin: string;
  seq: number;
  node: string;
  wallMs: number;
  series: string;
  value: number;
  fromSeq: number | null;
}

/** Who may own the records an ingest stores (see StoreDatabase.ingest). */
export interface IngestPolicy {
  /** This node's current origin (also refused when the database has not adopted it yet). */
  ownOrigin?: string;
  ownNode?: string;
  /** The authenticated peer's node name; unknown: the pair-node check is skipped. */
  peerNode?: string;
}

export type JobName = "retention" | "optimize" | "integrityCheck" | "dailySummary";
export const JOB_NAMES: readonly JobName[] = ["retention", "optimize", "integrityCheck", "dailySummary"];

export interface RetentionSettings {
  maxAgeDays: number;
  maxBytes: number;
}

export interface RetentionResult {
  job: "retention";
  deletedEvents: number;
  deletedSamples: number;
  sizeBytesBefore: number;
  sizeBytesAfter: number;
  tookMs: number;
}

export interface OptimizeResult {
  job: "optimize";
  tookMs: number;
}

export interface IntegrityResult {
  job: "integrityCheck";
  ok: boolean;
  /** "ok" or the problems quick_check found (first few). */
  detail: string;
  tookMs: number;
}

/** The last day in numbers, for the daemon to record as one event. */
export interface DailySummary {
  job: "dailySummary";
  sinceMs: number;
  untilMs: number;
  events: number;
  eventsByType: Record<string, number>;
  eventsByNode: Record<string, number>;
  samples: number;
  failovers: FailoverRecord[];
  sizeBytes: number;
  /** One line for the event's message. */
  message: string;
  tookMs: number;
}

export type JobResult = RetentionResult | OptimizeResult | IntegrityResult | DailySummary;

export interface ReadLimits {
  maxEvents: number;
  maxSamples: number;
  maxBytes: number;
}

export type StoreQuery =
  | { kind: "events"; filter: EventFilter }
  | { kind: "failovers"; filter: { sinceMs?: number; untilMs?: number; limit?: number } }
  | { kind: "summarize"; filter: { sinceMs?: number; untilMs?: number; node?: string; series?: string } }
  | { kind: "watermarks" }
  | { kind: "readAfter"; have: Watermarks; limits: ReadLimits };

export interface QueryResults {
  events: SyncEvent[];
  failovers: FailoverRecord[];
  summarize: SeriesSummary[];
  watermarks: Watermarks;
  readAfter: { events: SyncEvent[]; samples: SyncSample[] };
}

export type WorkerRequest =
  /** Open (create, migrate) the database. `adoptOrigin`: make this the database's origin. */
  | { op: "open"; id: number; path: string; node: string; adoptOrigin: string | null; moveDamagedAside: boolean }
  /** Close and open again (after a failure, to start from a clean connection). */
  | { op: "reopen"; id: number }
  /** Own records, in seq order. Once a write of generation `gen` fails, later ones of that generation are refused unwritten. */
  | { op: "write"; id: number; gen: number; events: EventRow[]; samples: SampleRow[] }
  | { op: "ingest"; id: number; events: SyncEvent[]; samples: SyncSample[]; policy: IngestPolicy }
  | { op: "query"; id: number; query: StoreQuery }
  | { op: "job"; id: number; job: JobName; nowMs: number; retention: RetentionSettings }
  | { op: "close"; id: number };

export interface OpenResult {
  origin: string;
  created: boolean;
  schemaVersion: number;
  /** Highest own seq the database holds (or has held). */
  lastEventSeq: number;
  lastSampleSeq: number;
  /** Highest seq of the local-only events (their own origin, never replicated). */
  lastLocalEventSeq: number;
  /** The file at the path was damaged and was moved aside before this one was created. */
  movedAside?: MovedAside;
}

/** A damaged database moved out of the way (store-db.ts moveDamagedAside). */
export interface MovedAside {
  reason: string;
  /** The new names: the database, then its WAL and shared-memory files if it had them. */
  files: string[];
}

/** A failure as it crosses the thread boundary. */
export interface WorkerFailure {
  /** SQLite's code ("SQLITE_FULL", "SQLITE_IOERR_WRITE", ...), "NEWER_SCHEMA", "NOT_OPEN", "REFUSED" or "ERROR". */
  code: string;
  message: string;
}

export type WorkerReply =
  | { op: "reply"; id: number; ok: true; result: unknown; sizeBytes: number | null }
  | { op: "reply"; id: number; ok: false; error: WorkerFailure }
  | { op: "log"; level: "debug" | "info" | "warn" | "error"; message: string; fields: Record<string, unknown> };

export const STORE_WORKER_ROLE = "mnha-store-worker";

/** workerData of the store worker. */
export interface WorkerStartData {
  role: typeof STORE_WORKER_ROLE;
}
