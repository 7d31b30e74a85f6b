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
import type { ElectionCore, ElectionEffect, ElectionEventType, ElectionInput } from "../core/election.js";

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
  recordEvent(type: ElectionEventType | "watchdog-repaired" | "watchdog-repair-failed", message: string, fields: Record<string, unknown>): void;
  requestDone(result: RequestResult): void;
  /** The facts a heartbeat reports besides the core's fields. */
  heartbeatFacts(): Pick<Heartbeat, "vipPresent" | "keepalived" | "services">;
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
        return this.adapters.keepalived.setGate(this.core.snapshot(this.adapters.now()).gateOpen);
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
        a.link.send(effect.message);
        return;
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
      case "event":
        a.recordEvent(effect.type, effect.message, effect.fields);
        return;
      case "request-done":
        a.requestDone({ requestId: effect.requestId, ok: effect.ok, message: effect.message, to: effect.to, epoch: effect.epoch });
        return;
    }
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
    const holder = this.core.snapshot(now).holder;
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
