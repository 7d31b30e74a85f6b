/**
 * The store's worker thread: owns the SQLite connection, so that synchronous SQLite calls
 * (a commit waits for fsync) never run on the HA loop. Requests are handled in arrival
 * order; a long job (retention) yields between chunks so that writes and reads interleave.
 */
import { parentPort, workerData } from "node:worker_threads";
import { StoreDatabase, StoreFault, isDamagedDatabase, moveDamagedAside } from "./store-db.js";
import { STORE_WORKER_ROLE, type JobResult, type OpenResult, type StoreQuery, type WorkerFailure, type WorkerReply, type WorkerRequest } from "./worker-protocol.js";

interface OpenArgs {
  path: string;
  node: string;
  adoptOrigin: string | null;
  moveDamagedAside: boolean;
}

export class StoreWorker {
  private store: StoreDatabase | null = null;
  private openArgs: OpenArgs | null = null;
  /** Writes of this generation are refused: an earlier one failed and the main thread will resend. */
  private failedGeneration: number | null = null;
  private jobs: Promise<void> = Promise.resolve();

  constructor(private readonly send: (reply: WorkerReply) => void) {}

  handle(request: WorkerRequest): void {
    if (request.op === "job") {
      // Jobs run one at a time, each in chunks; other requests are served in between.
      this.jobs = this.jobs.then(() => this.runJob(request));
      return;
    }
    try {
      const result = this.handleNow(request);
      this.send({ op: "reply", id: request.id, ok: true, result, sizeBytes: this.sizeAfter(request.op) });
    } catch (error) {
      if (request.op === "write" && this.failedGeneration === null) this.failedGeneration = request.gen;
      this.send({ op: "reply", id: request.id, ok: false, error: failureOf(error) });
    }
  }

  private handleNow(request: Exclude<WorkerRequest, { op: "job" }>): unknown {
    switch (request.op) {
      case "open":
        this.openArgs = { path: request.path, node: request.node, adoptOrigin: request.adoptOrigin, moveDamagedAside: request.moveDamagedAside };
        return this.open();
      case "reopen": {
        const carried = this.ownWatermarksOfOpenStore();
        this.store?.close();
        this.store = null;
        const opened = this.open();
        if (carried !== null && opened.created) this.opened().carryOwnWatermarks(carried);
        return opened;
      }
      case "write": {
        if (this.failedGeneration !== null && request.gen <= this.failedGeneration) {
          throw new StoreFault("REFUSED", `write of generation ${request.gen} refused: an earlier write of it failed`);
        }
        this.failedGeneration = null;
        this.openedInPlace().write(request.events, request.samples);
        return null;
      }
      case "ingest":
        return this.openedInPlace().ingest(request.events, request.samples, request.policy);
      case "query":
        return this.query(this.opened(), request.query);
      case "close":
        this.store?.close();
        this.store = null;
        return null;
    }
  }

  private open(): OpenResult {
    const args = this.openArgs;
    if (!args) throw new StoreFault("NOT_OPEN", "the store was never opened");
    const adopt = args.adoptOrigin ?? this.store?.origin ?? null;
    let movedAside: OpenResult["movedAside"];
    let result: ReturnType<typeof StoreDatabase.open>;
    try {
      result = StoreDatabase.open(args.path, args.node, adopt);
    } catch (error) {
      // A file SQLite cannot read as a database stays damaged: nothing written to it would
      // last. Its records are on the peer too, so it is kept aside and a new one started.
      if (!(error instanceof StoreFault) || !isDamagedDatabase(error.code) || !args.moveDamagedAside) throw error;
      const files = moveDamagedAside(args.path);
      movedAside = { reason: `${error.code}: ${error.message}`, files };
      this.send({ op: "log", level: "warn", message: `moved the damaged store database ${args.path} aside`, fields: { path: args.path, reason: movedAside.reason, files } });
      result = StoreDatabase.open(args.path, args.node, adopt);
    }
    const { store } = result;
    const opened: OpenResult = movedAside ? { ...result.opened, movedAside } : result.opened;
    this.store = store;
    // From now on the file's origin is the one to keep, even if the file is replaced.
    this.openArgs = { ...args, adoptOrigin: opened.origin };
    if (opened.created) this.send({ op: "log", level: "info", message: `created the store database ${args.path}`, fields: { path: args.path, origin: opened.origin, schemaVersion: opened.schemaVersion } });
    return opened;
  }

  /** Read before a reopen, in case the file is created again (it was removed by hand); null when the old connection cannot tell. */
  private ownWatermarksOfOpenStore(): { events: number; samples: number } | null {
    if (!this.store?.isOpen) return null;
    try {
      return this.store.ownWatermarks();
    } catch {
      return null;
    }
  }

  /** For a write: the open database, refused (FILE_GONE) when its file was removed or replaced by hand. */
  private openedInPlace(): StoreDatabase {
    const store = this.opened();
    store.assertFileInPlace();
    return store;
  }

  private opened(): StoreDatabase {
    if (!this.store?.isOpen) throw new StoreFault("NOT_OPEN", "the store database is not open");
    return this.store;
  }

  private query(store: StoreDatabase, query: StoreQuery): unknown {
    switch (query.kind) {
      case "events":
        return store.queryEvents(query.filter);
      case "failovers":
        return store.failovers(query.filter);
      case "summarize":
        return store.summarize(query.filter);
      case "watermarks":
        return store.watermarks();
      case "readAfter":
        return store.readAfter(query.have, query.limits);
    }
  }

  private async runJob(request: Extract<WorkerRequest, { op: "job" }>): Promise<void> {
    try {
      const store = this.opened();
      let result: JobResult;
      switch (request.job) {
        case "retention":
          result = await store.retention(request.nowMs, request.retention);
          break;
        case "optimize":
          result = store.optimize();
          break;
        case "integrityCheck":
          result = store.integrityCheck();
          break;
        case "dailySummary":
          result = store.dailySummary(request.nowMs);
          break;
      }
      this.send({ op: "reply", id: request.id, ok: true, result, sizeBytes: this.store?.isOpen ? this.store.sizeBytes() : null });
    } catch (error) {
      this.send({ op: "reply", id: request.id, ok: false, error: failureOf(error) });
    }
  }

  private sizeAfter(op: WorkerRequest["op"]): number | null {
    if (op === "query" || op === "close" || !this.store?.isOpen) return null;
    return this.store.sizeBytes();
  }
}

function failureOf(error: unknown): WorkerFailure {
  if (error instanceof StoreFault) return { code: error.code, message: error.message };
  const code = (error as { code?: unknown } | null)?.code;
  return { code: typeof code === "string" ? code : "ERROR", message: error instanceof Error ? error.message : String(error) };
}

// Started as the store's worker thread (not when a test or a test runner's thread imports it).
if (parentPort && (workerData as { role?: unknown } | null)?.role === STORE_WORKER_ROLE) {
  const port = parentPort;
  const worker = new StoreWorker((reply) => port.postMessage(reply));
  port.on("message", (request: WorkerRequest) => worker.handle(request));
}
