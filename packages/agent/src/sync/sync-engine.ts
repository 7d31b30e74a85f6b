/**
 * Replicates the audit store between the two MNs over the peer link.
 *
 * On link up each side sends `sync-hello` with its watermarks; each side then streams to
 * the other everything the other lacks, of every origin (a rebuilt node gets the pair's whole
 * history back), one `sync-batch` at a time: the next batch leaves only after the peer's
 * `sync-ack`, which carries the peer's watermarks. New local records are pushed shortly after
 * they are stored. Ingest is idempotent, so duplicates and resends are harmless.
 *
 * One batch in flight, both ways, is a rule the receiver enforces: a second `sync-batch`
 * before the ack of the first is a protocol error (nothing of it is stored, the link is
 * closed), so a buggy or hostile peer can never queue work here. A receiver that cannot store
 * a batch sends no ack but says `sync-hello` again (after ackTimeoutMs): the sender starts
 * over from those watermarks. A slow ack is waited for, never answered by a second batch.
 *
 * Records the store refuses (under this node's origin, of a node that does not own the
 * origin) or finds in conflict with a copy it holds are reported in rate-limited events.
 */
import { MAX_FRAME_BYTES, type LinkMessage, type SyncAck, type SyncBatch, type SyncHello, type Watermarks } from "@mnha/protocol";
import { systemClock, type Clock, type Logger } from "@mnha/shared";
import type { IngestReport, PeerLinkEvent, Startable, StoreApi } from "../contracts.js";
import { buildBatch } from "./batch-builder.js";
import { HeldSeqs } from "./held-seqs.js";
import { IncidentReporter } from "./incident-reporter.js";

export interface SyncBatchLimits {
  maxEvents: number;
  maxSamples: number;
  /** Encoded size budget of one batch frame: small, so heartbeats on the same socket are not delayed. */
  maxBytes: number;
}

export const DEFAULT_SYNC_BATCH_LIMITS: SyncBatchLimits = { maxEvents: 1_000, maxSamples: 2_000, maxBytes: 64 * 1024 };

export interface SyncEngineOptions {
  store: StoreApi;
  /** Sends on the peer link; false when the link is not open (the message is dropped). */
  send: (message: LinkMessage) => boolean;
  /**
   * Closes the peer link after a protocol error. Without it the engine sends the peer a
   * `refuse` (code protocol), which makes a well-behaved peer close the link; either way
   * nothing more from that link session is handled.
   */
  closeLink?: (reason: string) => void;
  logger: Logger;
  batch?: Partial<SyncBatchLimits>;
  clock?: Clock;
  /** New local records are pushed this long after the first one is announced (batches bursts). */
  pushDelayMs?: number;
  /**
   * No ack within this long: warn (the batch stays in flight). Also how long a receiver that
   * could not store a batch waits before saying hello again (which makes the peer resend).
   */
  ackTimeoutMs?: number;
  /** While connected, look for unsent records this often (samples, anything not announced). */
  pollIntervalMs?: number;
  /** After a failed store call or send, try again this much later. */
  retryDelayMs?: number;
  /** Refused or conflicting records: one event at once, then one summary per this window. */
  reportWindowMs?: number;
}

export interface SyncStatus {
  connected: boolean;
  /** The peer's hello arrived: lag figures are known. */
  peerKnown: boolean;
  /** Records this node holds that the peer lacks, as far as known (null before the peer's hello). */
  lagEvents: number | null;
  lagSamples: number | null;
  /** Wall-clock ms of the latest ack from the peer (display only). */
  lastAckAt: number | null;
  /** Monotonic ms since that ack. */
  lastAckAgoMs: number | null;
  /** Unacknowledged batches (0 or 1). */
  inFlight: number;
  /** Batches from the peer being stored (0 or 1: a second one is a protocol error). */
  receiving: number;
  batchesSent: number;
  batchesReceived: number;
  /** Times the peer said hello again with a batch in flight (it could not store it): sent again. */
  resends: number;
  /** Link sessions ended because the peer broke the sync protocol. */
  protocolErrors: number;
  /** Records from the peer the store refused, and different copies of records it holds. */
  refusedRecords: number;
  conflicts: number;
  /** Times the peer was found lacking records the cursor had passed, which were then sent again. */
  gapRepairs: number;
}

type SyncMessage = SyncHello | SyncBatch | SyncAck;
type Kind = "events" | "samples";
const KINDS: readonly Kind[] = ["events", "samples"];

/** Store reads that find only records the peer holds, before yielding to the event loop. */
const MAX_READS_PER_PUMP = 64;

interface InFlightBatch {
  id: number;
  records: { events: { origin: string; seq: number }[]; samples: { origin: string; seq: number }[] };
  timer: NodeJS.Timeout;
  /** The ack timeout passed (warned once; still waiting). */
  late: boolean;
}

/** Everything about one link session; dropped whole when the link goes down. */
interface Session {
  helloSent: boolean;
  /** What the peer holds (null until its hello). */
  peerHolds: { events: HeldSeqs; samples: HeldSeqs } | null;
  /** Where the next store read starts. */
  cursor: Watermarks;
  inFlight: InFlightBatch | null;
  /** Id of the peer's batch being stored and not yet acknowledged. */
  receiving: number | null;
  /** The peer broke the protocol: nothing more of this session is handled. */
  broken: boolean;
  /** Per origin, the peer floor at which a gap was last re-sent (repair once per floor). */
  repairedAt: { events: Map<string, number>; samples: Map<string, number> };
  timers: Set<NodeJS.Timeout>;
  pushTimer: NodeJS.Timeout | null;
  pollTimer: NodeJS.Timeout | null;
}

export class SyncEngine implements Startable {
  private readonly store: StoreApi;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly limits: SyncBatchLimits;
  private readonly pushDelayMs: number;
  private readonly ackTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly sendMessage: (message: LinkMessage) => boolean;
  private readonly closeLink: ((reason: string) => void) | null;
  private readonly incidents: IncidentReporter;
  /** The authenticated peer's node name (from the link's up event). */
  private peerNode: string | null = null;

  private running = false;
  private linkUp = false;
  private subscribed = false;
  private session: Session | null = null;
  /** Batch ids never repeat within this process, so a stale ack never matches. */
  private nextBatchId = 1;
  private ownWatermarks: Watermarks = { events: {}, samples: {} };
  private pumpRun: Promise<void> | null = null;
  private pumpAgain = false;
  /** The one ingest running (a second batch is refused, never queued). */
  private ingestRun: Promise<void> | null = null;
  private lastAck: { wallMs: number; monoMs: number } | null = null;
  private counters = { batchesSent: 0, batchesReceived: 0, resends: 0, gapRepairs: 0, protocolErrors: 0, refusedRecords: 0, conflicts: 0 };

  constructor(options: SyncEngineOptions) {
    this.store = options.store;
    this.sendMessage = options.send;
    this.closeLink = options.closeLink ?? null;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    const limits = { ...DEFAULT_SYNC_BATCH_LIMITS, ...options.batch };
    // The protocol caps a batch at 2,000 events and 10,000 samples and a frame at MAX_FRAME_BYTES.
    this.limits = {
      maxEvents: clamp(limits.maxEvents, 1, 2_000),
      maxSamples: clamp(limits.maxSamples, 1, 10_000),
      maxBytes: clamp(limits.maxBytes, 4 * 1024, MAX_FRAME_BYTES / 2),
    };
    this.pushDelayMs = options.pushDelayMs ?? 150;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.incidents = new IncidentReporter({ windowMs: options.reportWindowMs ?? 60_000, record: (type, message, fields) => this.recordEvent(type, message, fields, "warn") });
  }

  /** The messages this engine handles (the daemon routes them to `onMessage`). */
  static isSyncMessage(message: LinkMessage): message is SyncMessage {
    return message.type === "sync-hello" || message.type === "sync-batch" || message.type === "sync-ack";
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (!this.subscribed) {
      this.subscribed = true;
      this.store.onStored(() => this.notifyLocalAppend());
    }
    this.log.debug({ limits: this.limits, ackTimeoutMs: this.ackTimeoutMs }, "sync engine started");
    if (this.linkUp) this.openSession();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.closeSession();
    await Promise.allSettled([this.pumpRun ?? Promise.resolve(), this.ingestRun ?? Promise.resolve()]);
    this.incidents.flush();
  }

  /** Convenience for the daemon: feed every peer link event here. */
  handleLinkEvent(event: PeerLinkEvent): void {
    if (event.kind === "up") this.onLinkUp(event.peer);
    else if (event.kind === "down") this.onLinkDown();
    else if (event.kind === "message" && SyncEngine.isSyncMessage(event.message)) this.onMessage(event.message);
  }

  /** `peer`: the authenticated peer's node name; ingest then refuses records of any other node. */
  onLinkUp(peer?: string): void {
    this.linkUp = true;
    if (peer !== undefined) this.peerNode = peer;
    if (this.running) this.openSession();
  }

  onLinkDown(): void {
    this.linkUp = false;
    if (this.session) this.log.debug({ inFlight: this.session.inFlight?.id ?? null }, "sync: link down, session closed");
    this.closeSession();
  }

  onMessage(message: SyncMessage): void {
    const session = this.session;
    if (!session) {
      this.log.debug({ type: message.type }, "sync: message outside a link session dropped");
      return;
    }
    if (session.broken) return;
    try {
      if (message.type === "sync-hello") this.onHello(session, message);
      else if (message.type === "sync-batch") this.onBatch(session, message);
      else this.onAck(session, message);
    } catch (error) {
      this.log.error({ err: error, type: message.type }, "sync: handling a message failed");
    }
  }

  /** New own records were stored: push them to the peer soon (bursts go in one batch). */
  notifyLocalAppend(): void {
    const session = this.session;
    if (!session || session.pushTimer !== null) return;
    session.pushTimer = setTimeout(() => {
      session.pushTimer = null;
      this.kick();
    }, this.pushDelayMs);
  }

  /**
   * The local store no longer holds what the peer thinks it does (its file was created again
   * after it was removed by hand): say hello again, so that the peer learns the watermarks held
   * now and sends the rest, as at link-up. Without a link session, the next link-up does it.
   */
  announceAgain(reason: string): void {
    const session = this.session;
    if (!session) return;
    this.log.info({ reason }, "sync: saying hello again (the local store changed under the peer's view of it)");
    void this.sendHello(session);
  }

  status(): SyncStatus {
    const holds = this.session?.peerHolds ?? null;
    return {
      connected: this.session !== null,
      peerKnown: holds !== null,
      lagEvents: holds ? lag(this.ownWatermarks.events, holds.events) : null,
      lagSamples: holds ? lag(this.ownWatermarks.samples, holds.samples) : null,
      lastAckAt: this.lastAck?.wallMs ?? null,
      lastAckAgoMs: this.lastAck ? Math.max(0, this.clock.now() - this.lastAck.monoMs) : null,
      inFlight: this.session?.inFlight ? 1 : 0,
      receiving: (this.session?.receiving ?? null) !== null ? 1 : 0,
      ...this.counters,
    };
  }

  // ---- session ------------------------------------------------------------------------

  private openSession(): void {
    this.closeSession();
    const session: Session = {
      helloSent: false,
      peerHolds: null,
      cursor: { events: {}, samples: {} },
      inFlight: null,
      receiving: null,
      broken: false,
      repairedAt: { events: new Map(), samples: new Map() },
      timers: new Set(),
      pushTimer: null,
      pollTimer: null,
    };
    this.session = session;
    session.pollTimer = setInterval(() => this.kick(), this.pollIntervalMs);
    void this.sendHello(session);
  }

  private closeSession(): void {
    const session = this.session;
    if (!session) return;
    this.session = null;
    for (const timer of session.timers) clearTimeout(timer);
    session.timers.clear();
    if (session.inFlight) clearTimeout(session.inFlight.timer);
    if (session.pushTimer) clearTimeout(session.pushTimer);
    if (session.pollTimer) clearInterval(session.pollTimer);
    session.inFlight = null;
    session.pushTimer = null;
    session.pollTimer = null;
  }

  private later(session: Session, delayMs: number, action: () => void): void {
    const timer = setTimeout(() => {
      session.timers.delete(timer);
      if (this.session === session) action();
    }, delayMs);
    session.timers.add(timer);
  }

  private async sendHello(session: Session): Promise<void> {
    try {
      const have = await this.store.watermarks();
      if (this.session !== session) return;
      this.ownWatermarks = have;
      if (!this.sendMessage({ type: "sync-hello", have })) {
        this.log.debug("sync: hello not sent (link not open); retrying");
        this.later(session, this.retryDelayMs, () => void this.sendHello(session));
        return;
      }
      session.helloSent = true;
      this.log.debug({ origins: Object.keys(have.events).length }, "sync: hello sent");
      this.kick();
    } catch (error) {
      if (this.session !== session) return;
      this.log.warn({ err: error, retryInMs: this.retryDelayMs }, "sync: reading the store's watermarks failed; retrying");
      this.later(session, this.retryDelayMs, () => void this.sendHello(session));
    }
  }

  // ---- receiving ------------------------------------------------------------------------

  private onHello(session: Session, hello: SyncHello): void {
    // A fresh start: the peer says what it holds; everything else it lacks is sent again.
    // With a batch in flight, that is the peer saying it could not store it.
    if (session.inFlight) {
      clearTimeout(session.inFlight.timer);
      this.counters.resends += 1;
      this.log.info({ batch: session.inFlight.id }, "sync: the peer said hello again with a batch in flight (it could not store it); sending from its watermarks");
    }
    session.inFlight = null;
    session.peerHolds = { events: HeldSeqs.fromWatermarks(hello.have.events), samples: HeldSeqs.fromWatermarks(hello.have.samples) };
    session.cursor = { events: { ...hello.have.events }, samples: { ...hello.have.samples } };
    session.repairedAt = { events: new Map(), samples: new Map() };
    this.log.debug({ origins: Object.keys(hello.have.events).length }, "sync: peer hello received");
    this.kick();
  }

  private onBatch(session: Session, batch: SyncBatch): void {
    if (session.receiving !== null) {
      this.protocolError(session, `sync-batch ${batch.id} arrived before batch ${session.receiving} was acknowledged (one batch in flight at most)`);
      return;
    }
    session.receiving = batch.id;
    this.counters.batchesReceived += 1;
    // Whatever the peer sends, it holds: never send those records back.
    session.peerHolds?.events.addRecords(batch.events);
    session.peerHolds?.samples.addRecords(batch.samples);
    const run = this.ingestBatch(session, batch).finally(() => {
      if (this.ingestRun === run) this.ingestRun = null;
    });
    this.ingestRun = run;
  }

  private async ingestBatch(session: Session, batch: SyncBatch): Promise<void> {
    let report: IngestReport;
    let have: Watermarks;
    try {
      report = await this.store.ingest(batch.events, batch.samples, this.peerNode === null ? undefined : { peer: this.peerNode });
      have = await this.store.watermarks();
    } catch (error) {
      this.log.warn({ err: error, batch: batch.id, events: batch.events.length, samples: batch.samples.length, helloInMs: this.ackTimeoutMs }, "sync: storing a batch from the peer failed; not acknowledging it");
      if (this.session !== session || session.broken) return;
      session.receiving = null;
      // No ack; a new hello later makes the peer send from what this store holds.
      this.later(session, this.ackTimeoutMs, () => void this.sendHello(session));
      return;
    }
    this.ownWatermarks = have;
    this.reportIngest(report);
    if (this.session !== session || session.broken) return;
    session.receiving = null;
    this.sendMessage({ type: "sync-ack", id: batch.id, have });
  }

  /** Refused and conflicting records become (rate-limited) events. */
  private reportIngest(report: IngestReport | undefined): void {
    if (!report) return;
    this.counters.refusedRecords += report.refusedCount;
    this.counters.conflicts += report.conflictCount;
    const refused = report.issues.filter((issue) => issue.reason !== "conflict");
    const conflicts = report.issues.filter((issue) => issue.reason === "conflict");
    const peer = this.peerNode ?? "the peer";
    if (report.refusedCount > 0) {
      const first = refused[0];
      this.incidents.note({
        type: "sync.ingest-refused",
        count: report.refusedCount,
        detail: `refused from ${peer}${first ? ` (${first.reason}: ${first.detail})` : ""}`,
        fields: { peer: this.peerNode, reasons: [...new Set(refused.map((issue) => issue.reason))], examples: refused.slice(0, 5) },
      });
    }
    if (report.conflictCount > 0) {
      const first = conflicts[0];
      this.incidents.note({
        type: "sync.conflict",
        count: report.conflictCount,
        detail: `from ${peer} differ from the copy held${first ? ` (${first.detail})` : ""}`,
        fields: { peer: this.peerNode, examples: conflicts.slice(0, 5) },
      });
    }
  }

  /** The peer broke the sync protocol: stop handling this session and close the link. */
  private protocolError(session: Session, reason: string): void {
    session.broken = true;
    this.counters.protocolErrors += 1;
    if (session.inFlight) clearTimeout(session.inFlight.timer);
    session.inFlight = null;
    this.recordEvent("sync.protocol-error", `sync: ${this.peerNode ?? "the peer"} broke the protocol: ${reason}; link closed, nothing of it stored`, { peer: this.peerNode, reason }, "error");
    if (this.closeLink) this.closeLink(reason);
    else this.sendMessage({ type: "refuse", code: "protocol", message: reason.slice(0, 500) });
  }

  private recordEvent(type: string, message: string, fields: Record<string, unknown>, level: "warn" | "error"): void {
    this.log[level]({ event: type, ...fields }, message);
    this.store.appendEvent({ type, message, fields, wallMs: this.clock.wallNow(), monoMs: this.clock.now() });
  }

  private onAck(session: Session, ack: SyncAck): void {
    const holds = session.peerHolds;
    if (holds) {
      holds.events.raiseFloors(ack.have.events);
      holds.samples.raiseFloors(ack.have.samples);
    }
    const inFlight = session.inFlight;
    if (!inFlight || inFlight.id !== ack.id) {
      this.log.debug({ batch: ack.id, expected: inFlight?.id ?? null }, "sync: ack for a batch no longer in flight");
      return;
    }
    clearTimeout(inFlight.timer);
    session.inFlight = null;
    holds?.events.addRecords(inFlight.records.events);
    holds?.samples.addRecords(inFlight.records.samples);
    this.lastAck = { wallMs: this.clock.wallNow(), monoMs: this.clock.now() };
    this.kick();
  }

  // ---- sending --------------------------------------------------------------------------

  private canSend(session: Session | null): session is Session {
    return this.running && session !== null && session === this.session && !session.broken && session.helloSent && session.peerHolds !== null && session.inFlight === null;
  }

  /** Sends the next batch if the peer is ready for one; at most one pump runs at a time. */
  private kick(): void {
    if (!this.canSend(this.session)) return;
    if (this.pumpRun) {
      this.pumpAgain = true;
      return;
    }
    const run = (async () => {
      do {
        this.pumpAgain = false;
        await this.pumpOnce();
      } while (this.pumpAgain && this.canSend(this.session));
    })()
      .catch((error: unknown) => this.log.error({ err: error }, "sync: sending failed unexpectedly"))
      .finally(() => {
        this.pumpRun = null;
      });
    this.pumpRun = run;
  }

  private async pumpOnce(): Promise<void> {
    const session = this.session;
    for (let reads = 0; reads < MAX_READS_PER_PUMP; reads++) {
      if (!this.canSend(session)) return;
      const cursor = session.cursor;
      let read: Awaited<ReturnType<StoreApi["readAfter"]>>;
      try {
        read = await this.store.readAfter(cursor, this.limits);
      } catch (error) {
        this.log.warn({ err: error, retryInMs: this.retryDelayMs }, "sync: reading records to send failed; retrying");
        this.later(session, this.retryDelayMs, () => this.kick());
        return;
      }
      // The peer said hello again (cursor replaced) or the link went: read again / stop.
      if (!this.canSend(session) || session.cursor !== cursor) continue;
      if (read.events.length === 0 && read.samples.length === 0) {
        if (await this.repairGaps(session)) continue;
        return;
      }
      const holds = session.peerHolds as NonNullable<Session["peerHolds"]>;
      const built = buildBatch({ id: this.nextBatchId, read, cursor, peerHolds: holds, maxBytes: this.limits.maxBytes });
      for (const record of built.unsendable) this.log.error(record, "sync: a record cannot be sent to the peer; skipped");
      if (built.batch === null) {
        session.cursor = built.cursor;
        continue;
      }
      const batch = built.batch;
      if (!this.sendMessage(batch)) {
        this.log.debug({ batch: batch.id }, "sync: batch not sent (link not open); retrying");
        this.later(session, this.retryDelayMs, () => this.kick());
        return;
      }
      this.nextBatchId += 1;
      this.counters.batchesSent += 1;
      session.cursor = built.cursor;
      session.inFlight = {
        id: batch.id,
        records: { events: batch.events.map(seqOf), samples: batch.samples.map(seqOf) },
        timer: setTimeout(() => this.onAckTimeout(session, batch.id), this.ackTimeoutMs),
        late: false,
      };
      this.log.trace({ batch: batch.id, events: batch.events.length, samples: batch.samples.length, bytes: built.bytes }, "sync: batch sent");
      return;
    }
    // Many reads found only records the peer holds: go on after other work had its turn.
    if (session !== null && this.session === session) this.later(session, 0, () => this.kick());
  }

  /**
   * A late ack is waited for: a second batch now would break the one-in-flight rule. A peer
   * that cannot store the batch says hello again; a lost link ends the session.
   */
  private onAckTimeout(session: Session, id: number): void {
    const inFlight = session.inFlight;
    if (this.session !== session || inFlight?.id !== id || inFlight.late) return;
    inFlight.late = true;
    this.log.warn({ batch: id, ackTimeoutMs: this.ackTimeoutMs }, "sync: no ack from the peer in time; still waiting for it (its store may be slow)");
  }

  /**
   * Caught up with the store: if the peer still lacks records below our own watermarks (a
   * gap it has, which the cursor already passed), send that origin again from the peer's
   * floor, once per floor so that a peer that cannot store them does not loop us.
   */
  private async repairGaps(session: Session): Promise<boolean> {
    let own: Watermarks;
    try {
      own = await this.store.watermarks();
    } catch (error) {
      this.log.warn({ err: error }, "sync: reading the store's watermarks failed");
      return false;
    }
    this.ownWatermarks = own;
    if (!this.canSend(session)) return false;
    const holds = session.peerHolds as NonNullable<Session["peerHolds"]>;
    let repaired = false;
    for (const kind of KINDS) {
      for (const [origin, upTo] of Object.entries(own[kind])) {
        if (holds[kind].missingUpTo(origin, upTo) === 0) continue;
        const floor = holds[kind].floor(origin);
        if (session.repairedAt[kind].get(origin) === floor) continue;
        session.repairedAt[kind].set(origin, floor);
        session.cursor = { ...session.cursor, [kind]: { ...session.cursor[kind], [origin]: floor } };
        this.log.debug({ kind, origin, from: floor, upTo }, "sync: peer lacks records behind the cursor; sending them again");
        repaired = true;
        this.counters.gapRepairs += 1;
      }
    }
    return repaired;
  }
}

function seqOf(record: { origin: string; seq: number }): { origin: string; seq: number } {
  return { origin: record.origin, seq: record.seq };
}

function lag(own: Record<string, number>, peer: HeldSeqs): number {
  let missing = 0;
  for (const [origin, upTo] of Object.entries(own)) missing += peer.missingUpTo(origin, upTo);
  return missing;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(value)));
}
