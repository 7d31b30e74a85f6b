/**
 * The host: the one piece of glue between the pure election core and the world. Inputs go in
 * one at a time; each is stepped through the core and its effects are carried out in order
 * before the next input is looked at (a gate is closed before the lease is renewed or the
 * peer is told). The daemon and the simulator both run this code, each with its own
 * adapters behind the interfaces below, so the glue itself is what the simulator tests.
 *
 * Effect handlers may be synchronous (the simulator's, the daemon's file writes) or return a
 * promise (a gate write the host must wait for): the host waits only when it is given one,
 * so a synchronous world runs the whole step, and anything it queued, in one call.
 */
import type { Heartbeat, KeepalivedState, LinkMessage } from "@mnha/protocol";
import type { DbSummary, ElectionCore, ElectionEffect, ElectionEventType, ElectionInput } from "../core/election.js";
import { Backoff } from "../util/backoff.js";

/** What one `request-done` effect reports (demote, shutdown). */
export interface RequestResult {
  requestId: string;
  ok: boolean;
  message: string;
  to: string | null;
  epoch: number;
}

/** The Keepalived side as the host needs it: the gate, the lease guard, repair. */
export interface HostKeepalived {
  setGate(open: boolean): void | Promise<void>;
  renewLease(): void;
  /**
   * Repair what stands between the holder and a served VIP; `done` reports what was done or
   * why it failed (a callback, so that a synchronous world can finish it when it chooses).
   */
  repair(reason: string, done: (outcome: { actions: string[] } | { error: string }) => void): void;
  state(): KeepalivedState;
}

export interface HostLink {
  /** False when no authenticated link is open (the message is dropped). */
  send(message: LinkMessage): boolean;
  connected(): boolean;
}

/** Runs one ARP probe for the VIP and reports the result through `done` (never throws). */
export interface HostArpProber {
  probe(done: (result: { occupied: boolean; detail: string }) => void): void;
  /** Gratuitous ARP for the VIP (fire and forget: neighbours may point at a holder that left). */
  announce(): void;
}

/** What the host reports about the database beside the core's events (type without the "db." prefix as "db-..."). */
export type HostDbEventType =
  | "db-read-only"
  | "db-read-only-failed"
  | "db-writable"
  | "db-writable-failed"
  | "db-relay-applied"
  | "db-possibly-lost"
  /** The poll found the server in the other mode than the election asked (restarted, set by hand): asked again. */
  | "db-mode-reasserted";

/** Retries of a failed read-only/writable switch (local: no jitter). */
export const DB_RETRY_BACKOFF = { initialMs: 250, maxMs: 5_000 } as const;

/** Facts for a holder that claimed (no handoff): what the peer last said of its database. */
export type DbAfterClaim = Extract<ElectionEffect, { kind: "db-read-only"; on: false }>["afterClaim"];

export interface DbWritableOutcome {
  /** False: superseded by a later read-only order before it took effect (the database stays read-only). */
  writable: boolean;
  /** Facts worth an event (the relay log applied, possibly lost transactions). */
  notes: { type: Extract<HostDbEventType, "db-relay-applied" | "db-possibly-lost">; message: string; fields: Record<string, unknown> }[];
}

/**
 * The database as the host needs it (db enabled). Every call is bounded by the adapter's own
 * timeouts and rejects on failure; the adapter keeps its switches in the order they were asked.
 */
export interface HostDatabase {
  /** read_only = ON, confirmed; then this server's gtid_binlog_pos (null if it could not be read). */
  goReadOnly(): Promise<{ gtidBinlogPos: string | null }>;
  /**
   * read_only = OFF, unless `stillWanted()` is false by the time the switch would be made.
   * After a claim, first apply the relay log already received (bounded) and compare with the
   * peer's last reported position.
   */
  goWritable(afterClaim: DbAfterClaim, stillWanted: () => boolean): Promise<DbWritableOutcome>;
  /** Taker: wait until every transaction of `gtid` is applied here (bounded). */
  waitForGtid(gtid: string, timeoutMs: number): Promise<{ reached: boolean; detail: string }>;
  /** read_only as the server says now, read after any switch already asked (bounded). */
  readOnlyNow(): Promise<boolean>;
}

/** What the witness said to one request (or why it said nothing). */
export type WitnessAnswer =
  | { reachable: true; granted: boolean; holder: string | null; holderEpoch: number; remainingMs: number; validMs: number }
  | { reachable: false; reason: string };

/** The witness as the host needs it (witness configured); absent: requests are answered "unreachable". */
export interface HostWitness {
  /** Ask for (or renew) the grant; `done` is called exactly once (a bounded wait: no answer is `reachable: false`). */
  request(ask: { epoch: number; leaseMs: number }, done: (answer: WitnessAnswer) => void): void;
  /** Our grant is free (fire and forget). */
  release(epoch: number): void;
}

/** A one-shot timer on this process's monotonic clock; returns its cancel function. */
export type SetTimer = (delayMs: number, fire: () => void) => () => void;

export interface HostAdapters {
  /** This process's monotonic clock (ms). */
  now(): number;
  keepalived: HostKeepalived;
  link: HostLink;
  arp: HostArpProber;
  persistEpoch(epoch: number): void;
  /** An election event for the audit trail (type without the "election." prefix). */
  recordEvent(type: ElectionEventType | "watchdog-repaired" | "watchdog-repair-failed" | HostDbEventType, message: string, fields: Record<string, unknown>): void;
  /** The database (db enabled); absent: db effects are ignored. */
  db?: HostDatabase;
  /** The witness (witness configured). */
  witness?: HostWitness;
  requestDone(result: RequestResult): void;
  /** The facts a heartbeat reports besides the core's fields. */
  heartbeatFacts(): Pick<Heartbeat, "vipPresent" | "keepalived" | "services" | "duplicateCheck">;
  setTimer: SetTimer;
  /** A step or effect threw (a bug or a failed write): logged; the host goes on with the next input. */
  onError(error: unknown, what: string): void;
}

export interface HostOptions {
  self: string;
  /** Ticks come this often; the host arms a wake timer only for a nearer deadline. */
  heartbeatIntervalMs: number;
}

type Op = { kind: "input"; input: ElectionInput } | { kind: "heartbeat" } | { kind: "reassert-gate" };

function isPromise(value: unknown): value is Promise<void> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

export class ElectionHost {
  private readonly ops: Op[] = [];
  private draining = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private cancelWake: (() => void) | null = null;
  private heartbeatSeq = 0;
  private repairing = false;
  private lastKnownHolder: string | null = null;
  /** Changes of VIP holder this node has learnt of (for metrics). */
  holderChanges = 0;
  /** Bumped by every database switch: a writable switch still pending is void once a later one is asked. */
  private dbGeneration = 0;
  /** gtid_binlog_pos read once the database went read-only (attached to the next handoff offer). */
  private dbReadOnlyPosition: string | null = null;
  /** What the election last asked of the database (null: nothing yet). */
  private dbWant: "read-only" | "writable" | null = null;
  /** A switch (or its retry timer, or a reconcile check) is under way: the poll does not start another. */
  private dbBusy = 0;
  private cancelDbRetry: (() => void) | null = null;
  /** The last database poll (seed state for the writable retries). */
  private dbLastSummary: DbSummary | null = null;
  /** Read-only periods (a new one each time the election turns from writable, or nothing, to read-only). */
  private dbPeriod = { id: 0, position: null as string | null };

  constructor(
    readonly core: ElectionCore,
    private readonly adapters: HostAdapters,
    private readonly options: HostOptions,
  ) {}

  /** Queue one input for the core. */
  input(input: ElectionInput): void {
    this.submit({ kind: "input", input });
  }

  /** Queue a heartbeat (the peer just connected: tell it our state now, not at the next tick). */
  heartbeatNow(): void {
    this.submit({ kind: "heartbeat" });
  }

  /** Resolves once every queued input has been stepped and its effects carried out. */
  idle(): Promise<void> {
    if (!this.draining && this.ops.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The process is going away: nothing more is stepped or carried out; the wake timer stops. */
  close(): void {
    this.closed = true;
    this.ops.length = 0;
    this.cancelWake?.();
    this.cancelWake = null;
    this.cancelDbRetry?.();
    this.cancelDbRetry = null;
  }

  isClosed(): boolean {
    return this.closed;
  }

  private submit(op: Op): void {
    if (this.closed) return;
    this.ops.push(op);
    if (!this.draining) this.drain();
  }

  private drain(): void {
    this.draining = true;
    while (!this.closed && this.ops.length > 0) {
      const op = this.ops.shift() as Op;
      let pending: void | Promise<void>;
      try {
        pending = this.run(op);
      } catch (error) {
        this.adapters.onError(error, op.kind === "input" ? `step ${op.input.kind}` : op.kind);
        continue;
      }
      if (isPromise(pending)) {
        pending
          .catch((error: unknown) => this.adapters.onError(error, op.kind === "input" ? `step ${op.input.kind}` : op.kind))
          .finally(() => this.drain());
        return;
      }
    }
    this.draining = false;
    if (this.closed) this.ops.length = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private run(op: Op): void | Promise<void> {
    switch (op.kind) {
      case "heartbeat":
        this.sendHeartbeat();
        return;
      case "reassert-gate":
        // After a repair (which may have restarted Keepalived and its files): the gate as the core wants it.
        return this.adapters.keepalived.setGate(this.core.wantsGateOpen());
      case "input": {
        const now = this.adapters.now();
        const effects = this.core.step(now, op.input);
        return this.applyFrom(effects, 0);
      }
    }
  }

  /** Carries out effects[i..] in order, waiting where a handler returns a promise. */
  private applyFrom(effects: ElectionEffect[], from: number): void | Promise<void> {
    for (let i = from; i < effects.length; i++) {
      if (this.closed) return;
      const pending = this.apply(effects[i] as ElectionEffect);
      if (isPromise(pending)) return pending.then(() => this.applyFrom(effects, i + 1));
    }
    this.afterStep();
  }

  private apply(effect: ElectionEffect): void | Promise<void> {
    const a = this.adapters;
    switch (effect.kind) {
      case "set-gate":
        return a.keepalived.setGate(effect.open);
      case "persist-epoch":
        a.persistEpoch(effect.epoch);
        return;
      case "send":
        a.link.send(this.withDbPosition(effect.message));
        return;
      case "db-read-only":
        return effect.on ? this.dbGoReadOnly() : this.dbGoWritable(effect.afterClaim);
      case "db-wait-gtid": {
        const { id, gtid, timeoutMs } = effect;
        const answer = (reached: boolean, detail: string): void => this.input({ kind: "db-caught-up", id, reached, detail });
        if (!a.db) {
          answer(false, "this agent has no database adapter");
          return;
        }
        // Beside the queue: ticks and heartbeats go on while the database catches up.
        a.db.waitForGtid(gtid, timeoutMs).then(
          (result) => answer(result.reached, result.detail),
          (error: unknown) => answer(false, `waiting failed: ${errorText(error)}`),
        );
        return;
      }
      case "heartbeat-now":
        this.sendHeartbeat();
        return;
      case "renew-lease":
        a.keepalived.renewLease();
        return;
      case "arp-probe": {
        const probeId = effect.probeId;
        a.arp.probe((result) => this.input({ kind: "arp-result", probeId, occupied: result.occupied, detail: result.detail }));
        return;
      }
      case "repair-keepalived":
        this.repair(effect.reason);
        return;
      case "announce-vip":
        a.arp.announce();
        return;
      case "event":
        a.recordEvent(effect.type, effect.message, effect.fields);
        return;
      case "witness-request": {
        const requestId = effect.requestId;
        const answer = (result: WitnessAnswer): void =>
          this.input(result.reachable ? { kind: "witness-grant", requestId, granted: result.granted, holder: result.holder, holderEpoch: result.holderEpoch, remainingMs: result.remainingMs, validMs: result.validMs } : { kind: "witness-lost", requestId, reason: result.reason });
        if (!a.witness) {
          answer({ reachable: false, reason: "this agent has no witness adapter" });
          return;
        }
        a.witness.request({ epoch: effect.epoch, leaseMs: effect.leaseMs }, answer);
        return;
      }
      case "witness-release":
        a.witness?.release(effect.epoch);
        return;
      case "request-done":
        a.requestDone({ requestId: effect.requestId, ok: effect.ok, message: effect.message, to: effect.to, epoch: effect.epoch });
        return;
    }
  }

  /**
   * Read-only, awaited: the next effect (closing the gate, sending the offer) waits for it. A
   * failure is recorded loudly and the host goes on: the VIP must not hang on a dead database.
   * The switch is then retried beside the queue (backoff) until it holds or another is asked.
   */
  private dbGoReadOnly(): Promise<void> | void {
    const a = this.adapters;
    const generation = this.newDbSwitch("read-only");
    this.dbReadOnlyPosition = null;
    if (!a.db) return;
    const backoff = new Backoff({ ...DB_RETRY_BACKOFF, jitter: false });
    return this.dbReadOnlyAttempt(generation, backoff, 1);
  }

  private dbReadOnlyAttempt(generation: number, backoff: Backoff, attempt: number): Promise<void> {
    const a = this.adapters;
    const db = a.db as HostDatabase;
    this.dbBusy += 1;
    return db.goReadOnly().then(
      (result) => {
        this.dbBusy -= 1;
        if (generation === this.dbGeneration) this.dbReadOnlyPosition = result.gtidBinlogPos;
        // The period's baseline is its first confirmed position: what was written later, read-only, is errant.
        if (generation === this.dbGeneration && this.dbWant === "read-only" && this.dbPeriod.position === null) this.dbPeriod.position = result.gtidBinlogPos;
        a.recordEvent("db-read-only", `database read-only (gtid_binlog_pos ${result.gtidBinlogPos ?? "unknown"})${attempt > 1 ? ` after ${attempt} attempts` : ""}`, { gtidBinlogPos: result.gtidBinlogPos, attempts: attempt });
      },
      (error: unknown) => {
        this.dbBusy -= 1;
        const retry = generation === this.dbGeneration && !this.closed;
        const delay = retry ? backoff.next() : null;
        a.recordEvent(
          "db-read-only-failed",
          `COULD NOT MAKE THE DATABASE READ-ONLY: ${errorText(error)}; going on (the VIP must not wait on a failed database); check it before writing to it${delay === null ? "" : `; retrying in ${delay} ms`}`,
          { error: errorText(error), attempt, retryInMs: delay },
        );
        if (delay !== null) this.scheduleDbRetry(delay, () => (generation === this.dbGeneration ? void this.dbReadOnlyAttempt(generation, backoff, attempt + 1) : undefined));
      },
    );
  }

  /** Writable, beside the queue (applying a relay log may take seconds; the lease must still be renewed). */
  private dbGoWritable(afterClaim: DbAfterClaim): void {
    const generation = this.newDbSwitch("writable");
    if (!this.adapters.db) return;
    this.dbWritableAttempt(generation, afterClaim, new Backoff({ ...DB_RETRY_BACKOFF, jitter: false }), 1);
  }

  /**
   * One writable attempt; a failure is retried with backoff as long as the election still
   * wants this switch (the node holds the VIP: a later read-only voids it), the node is not in
   * maintenance and its seed is complete. The poll restarts it once those hold again.
   */
  private dbWritableAttempt(generation: number, afterClaim: DbAfterClaim, backoff: Backoff, attempt: number): void {
    const a = this.adapters;
    const db = a.db as HostDatabase;
    const stillWanted = (): boolean => !this.closed && generation === this.dbGeneration;
    this.dbBusy += 1;
    db.goWritable(afterClaim, stillWanted).then(
      (outcome) => {
        this.dbBusy -= 1;
        for (const note of outcome.notes) a.recordEvent(note.type, note.message, note.fields);
        if (outcome.writable) a.recordEvent("db-writable", `database writable: this node holds the VIP${attempt > 1 ? ` (after ${attempt} attempts)` : ""}`, { afterClaim: afterClaim !== null, attempts: attempt });
      },
      (error: unknown) => {
        this.dbBusy -= 1;
        const blocker = stillWanted() ? this.dbWritableBlocker() : "no longer wanted";
        const delay = blocker === null ? backoff.next() : null;
        a.recordEvent("db-writable-failed", `could not make the database writable: ${errorText(error)}${delay === null ? `; not retrying (${blocker})` : `; retrying in ${delay} ms`}`, { error: errorText(error), attempt, retryInMs: delay });
        if (delay !== null) this.scheduleDbRetry(delay, () => (stillWanted() && this.dbWritableBlocker() === null ? this.dbWritableAttempt(generation, afterClaim, backoff, attempt + 1) : undefined));
      },
    );
  }

  /** Why a writable switch the election wants must wait (maintenance, an incomplete seed), or null. */
  private dbWritableBlocker(): string | null {
    if (this.core.snapshot(this.adapters.now()).maintenance) return "maintenance mode";
    if (this.dbLastSummary?.seedIncomplete) return "database seed incomplete";
    return null;
  }

  /**
   * The current read-only period (null while the election lets this node write, or before it
   * asked anything): the errant-write watch judges the own GTID domain against its position.
   */
  dbStandbyPeriod(): { id: number; position: string | null; settled: boolean } | null {
    if (this.dbWant !== "read-only") return null;
    return { id: this.dbPeriod.id, position: this.dbPeriod.position, settled: this.dbBusy === 0 };
  }

  /** A new switch voids any retry of an earlier one. */
  private newDbSwitch(want: "read-only" | "writable"): number {
    this.cancelDbRetry?.();
    this.cancelDbRetry = null;
    if (want === "read-only" && this.dbWant !== "read-only") this.dbPeriod = { id: this.dbPeriod.id + 1, position: null };
    this.dbWant = want;
    return ++this.dbGeneration;
  }

  private scheduleDbRetry(delayMs: number, retry: () => void): void {
    this.cancelDbRetry?.();
    this.dbBusy += 1;
    let fired = false;
    const cancel = this.adapters.setTimer(delayMs, () => {
      fired = true;
      this.dbBusy -= 1;
      if (this.cancelDbRetry === cancelThis) this.cancelDbRetry = null;
      if (!this.closed) retry();
    });
    const cancelThis = (): void => {
      cancel();
      if (!fired) {
        fired = true;
        this.dbBusy -= 1;
      }
    };
    this.cancelDbRetry = cancelThis;
  }

  /**
   * Each database poll, changed or not (the core hears only of changes, as a `db-health`
   * input): checks that the server is in the mode the election last asked. The server does
   * not keep what it was told (a restart, a hand), and a switch that failed must not stay
   * failed. A mismatch seen by the poll is confirmed by reading read_only again (the poll may
   * predate the last switch) before anything is asked.
   */
  dbReconcile(summary: DbSummary): void {
    if (this.closed) return;
    this.dbLastSummary = summary;
    const a = this.adapters;
    const want = this.dbWant;
    if (!a.db || want === null || this.dbBusy > 0 || !summary.alive || summary.readOnly === null) return;
    if ((want === "writable") !== summary.readOnly) return;
    if (want === "writable" && this.dbWritableBlocker() !== null) return;
    const generation = this.dbGeneration;
    this.dbBusy += 1;
    a.db.readOnlyNow().then(
      (readOnly) => {
        this.dbBusy -= 1;
        if (this.closed || generation !== this.dbGeneration || (want === "writable") !== readOnly) return;
        const backoff = new Backoff({ ...DB_RETRY_BACKOFF, jitter: false });
        if (want === "writable") {
          a.recordEvent("db-mode-reasserted", "the database is read-only although this node holds the VIP: making it writable again", { want, readOnly });
          this.dbWritableAttempt(generation, null, backoff, 1);
        } else {
          a.recordEvent("db-mode-reasserted", "the database is WRITABLE although this node does not hold the VIP: making it read-only at once", { want, readOnly });
          void this.dbReadOnlyAttempt(generation, backoff, 1);
        }
      },
      () => {
        // The server did not answer: the next poll looks again.
        this.dbBusy -= 1;
      },
    );
  }

  /** A handoff offer carries the holder's final GTID position, read once its database went read-only. */
  private withDbPosition(message: LinkMessage): LinkMessage {
    if (message.type !== "handoff-offer" || !this.adapters.db || this.dbReadOnlyPosition === null) return message;
    return { ...message, gtidBinlogPos: this.dbReadOnlyPosition };
  }

  /** Repairs run beside the queue (a Keepalived restart takes a while); one at a time. */
  private repair(reason: string): void {
    if (this.repairing) return;
    this.repairing = true;
    const a = this.adapters;
    const done = (outcome: { actions: string[] } | { error: string }): void => {
      this.repairing = false;
      if (this.closed) return;
      if ("error" in outcome) a.recordEvent("watchdog-repair-failed", `repair failed: ${outcome.error}`, { reason, error: outcome.error });
      else a.recordEvent("watchdog-repaired", `repair done: ${outcome.actions.join("; ") || "nothing to do"}`, { reason, actions: outcome.actions });
      this.submit({ kind: "reassert-gate" });
    };
    try {
      a.keepalived.repair(reason, done);
    } catch (error) {
      done({ error: error instanceof Error ? error.message : String(error) });
    }
  }

  private afterStep(): void {
    const now = this.adapters.now();
    const holder = this.core.currentHolder();
    if (holder !== null && holder !== this.lastKnownHolder) {
      if (this.lastKnownHolder !== null) this.holderChanges += 1;
      this.lastKnownHolder = holder;
    }
    this.scheduleWake(now);
  }

  /** Replace the wake timer; arm it only for a deadline nearer than the next tick. */
  private scheduleWake(now: number): void {
    this.cancelWake?.();
    this.cancelWake = null;
    if (this.closed) return;
    const at = this.core.nextWakeAt(now);
    if (at - now < this.options.heartbeatIntervalMs) {
      this.cancelWake = this.adapters.setTimer(Math.max(1, at - now), () => {
        this.cancelWake = null;
        this.input({ kind: "wake" });
      });
    }
  }

  private sendHeartbeat(): void {
    const a = this.adapters;
    if (!a.link.connected()) return;
    const heartbeat: Heartbeat = {
      type: "heartbeat",
      seq: ++this.heartbeatSeq,
      node: this.options.self,
      ...this.core.heartbeatFields(a.now()),
      ...a.heartbeatFacts(),
    };
    a.link.send(heartbeat);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
