/**
 * The properties every simulated run must keep, checked after every world event.
 * docs/simulation.md states them exactly; in short:
 *
 * - safety: never two nodes holding the VIP at once, unless one of them got its gate by a
 *   "blind claim" (see below), the ARP guard's documented blind spot; such a split must end
 *   within the convergence bound once the agent link is clean again;
 * - liveness: from heal + livenessBound to the end of the run, exactly one node holds the VIP;
 * - causality: a node loses the VIP only with a cause: a fault on it now or within the
 *   causality window, or something on the network between the MNs in that window; a benign
 *   run never moves the VIP to the other node at all;
 * - epochs: a node's epoch never goes back (across restarts too), is on disk before the step
 *   that adopted it ends, and a node that becomes holder after the other one did, having
 *   heard that one's epoch, takes a higher epoch. (Across a partition the two may claim the
 *   same number; the same-epoch rule settles it when they meet.)
 *
 * A blind claim: a claim the ARP guard let through (its probe found nobody) while the other
 * node's gate was open, and the claimant had lost its peer or had no heartbeat from it sent
 * since that gate opened: the peer link could not tell, and the other's VIP was invisible to the probe
 * because ARP between the MNs is cut, or not up at that moment (its Keepalived still waiting
 * out the master-down timer after its own claim, or restarting). The ARP guard cannot see a
 * holder that does not answer; docs/protocol.md's table names the ARP-cut case, the
 * simulator found the others.
 */
import type { Role } from "@mnha/protocol";
import type { NodeState, PairWorld, SimNode, Tenure, WorldSettings } from "./pair-world.js";
import type { ScheduleDriver } from "./schedule-driver.js";
import { isAdapterFault, type Schedule } from "./schedule.js";

export type InvariantName = "safety" | "liveness" | "causality" | "no-flapping" | "epoch-monotonic" | "epoch-durable" | "epoch-order";

export interface Violation {
  invariant: InvariantName;
  /** Simulated instant (ms) and the world step (event number) at which it was seen. */
  at: number;
  step: number;
  message: string;
}

export interface Bounds {
  /** After the heal, a holder exists (and stays) from healAt + livenessMs on. */
  livenessMs: number;
  /** A node losing the VIP must have had a fault (or network trouble) within this long before. */
  causalityWindowMs: number;
  /** A split from a blind claim must end within this long of the agent link being clean. */
  convergenceMs: number;
  /**
   * With the holder's duplicate check on: while ARP flows between the MNs, a split must end
   * within this long even with the agent link cut (a check interval, a probe, and the lease
   * for a holder whose agent is paused and cannot act on what it sees).
   */
  duplicateMs: number | null;
}

/** Why a node's gate is open: how its current tenure began. */
interface GateOrigin {
  at: number;
  role: Role | "down";
  blind: boolean;
  /**
   * For a blind claim, what the other node was doing: its VIP hidden by an ARP cut; its own
   * claim still waiting out the master-down timer; its Keepalived restarting; its lease
   * stale (agent paused); or its VIP up (taken while our probe ran).
   */
  why: "arp-cut" | "other-claiming" | "other-keepalived-restarting" | "other-lease-stale" | "other-vip-up" | null;
}

/**
 * The bounds, derived from the settings (docs/simulation.md explains each term). A schedule
 * with adapter faults adds the watchdog's bound: a fault that needs a repair (or the role
 * given up) may have landed just before the heal.
 */
export function deriveBounds(s: WorldSettings, schedule?: Schedule): Bounds {
  const e = s.election;
  const stretch = 1 + e.maxClockDrift;
  const monitorRecovery = (m: WorldSettings["services"]) => (m ? m.timeoutMs + m.rise * m.intervalMs : 0);
  const eligibleAgain = Math.max(monitorRecovery(s.services), monitorRecovery(s.gateway), e.startupGraceMs);
  const peerLeaseRunsOut = e.peerLossMs + e.leaseMs * stretch + e.takeoverMarginMs;
  const claim = e.arpRetryMs + s.probeTimeoutMs + s.keepalivedDownTimerMs;
  const watchdogMs = schedule?.faults.some(isAdapterFault) ? watchdogBoundMs(s) : 0;
  const livenessMs = Math.ceil((eligibleAgain + s.peerLink.reconnectMaxMs + peerLeaseRunsOut + claim + e.handoffTimeoutMs + watchdogMs) * stretch + 500);
  const convergenceMs = Math.ceil(s.peerLink.reconnectMaxMs * stretch + 4 * e.heartbeatIntervalMs + 4 * s.maxLatencyMs + e.leaseMs + 100);
  const duplicateMs = s.duplicateCheckIntervalMs > 0 ? Math.ceil((s.duplicateCheckIntervalMs + s.probeTimeoutMs + e.leaseMs + 3 * e.heartbeatIntervalMs) * stretch + 100) : null;
  return { livenessMs, causalityWindowMs: livenessMs, convergenceMs, duplicateMs };
}

/**
 * How long the watchdog may take to get the VIP served again once the faults are over: the
 * VIP seen missing (a poll), the role given up after vipGiveUpAfterMs (the repair came
 * first), and the node ineligible as long again, during which the peer claims; or, with the
 * holder unable to act, the peer's own bound.
 */
export function watchdogBoundMs(s: WorldSettings): number {
  const e = s.election;
  const giveUp = e.vipGiveUpAfterMs ?? 8_000;
  const peer = e.peerVipUnansweredMs ?? 12_000;
  return s.vipPollMs + s.repairMs + Math.max(2 * giveUp, peer) + e.arpRetryMs;
}

export class InvariantChecker {
  readonly violations: Violation[] = [];
  readonly bounds: Bounds;
  /** Splits allowed as blind claims: how many, how long in all, and why the probe was blind. */
  readonly blindSplits: { count: number; totalMs: number; why: Record<string, number> } = { count: 0, totalMs: 0, why: {} };
  /** Time from the heal until the VIP was held for good (null: never). */
  holderAfterHealMs: number | null = null;

  private readonly held: Record<SimNode, boolean> = { mn1: false, mn2: false };
  private readonly gate: Record<SimNode, GateOrigin | null> = { mn1: null, mn2: null };
  private readonly maxEpoch: Record<SimNode, number> = { mn1: 0, mn2: 0 };
  private readonly tenure: Record<SimNode, Tenure | null> = { mn1: null, mn2: null };
  private lastHolderEntry: { node: SimNode; epoch: number } | null = null;
  private splitSince: number | null = null;
  private linkCleanSince: number | null = 0;
  /** Since when ARP has flowed both ways between the MNs (null: cut now). */
  private arpCleanSince: number | null = 0;
  private firstOwner: SimNode | null = null;
  private lastOwnerChangeAt = 0;
  private lastOwner: SimNode | null = null;
  private livenessReported = false;

  /**
   * strict: excuse only the blind claims docs/protocol.md already names (ARP between the MNs
   * cut); the other blind spots count as safety violations.
   */
  constructor(
    private readonly world: PairWorld,
    private readonly schedule: Schedule,
    private readonly driver: ScheduleDriver,
    bounds?: Bounds,
    private readonly options: { strict?: boolean } = {},
  ) {
    this.bounds = bounds ?? deriveBounds(world.settings);
    this.mn1 = world.nodeState("mn1");
    this.mn2 = world.nodeState("mn2");
    this.network = world.networkState();
  }

  // What check() reads, held once: the world's own objects (see PairWorld.nodeState).
  private readonly mn1: Readonly<NodeState>;
  private readonly mn2: Readonly<NodeState>;
  private readonly network: ReturnType<PairWorld["networkState"]>;

  get failed(): boolean {
    return this.violations.length > 0;
  }

  /** Called after every world event. */
  check(): void {
    // This runs after every one of millions of events: per node written out (no arrays, no
    // per-call objects, property names the engine can see), in the order a loop would take.
    const now = this.world.now;
    const { mn1, mn2 } = this;
    const { cuts, impairment } = this.network;
    const holds1 = mn1.holdsVip;
    const holds2 = mn2.holdsVip;
    // The agent link clean: no cut and no impairment either way (PairWorld.agentLinkClean).
    if (!cuts.agent.mn1 && !cuts.agent.mn2 && impairment.mn1 === null && impairment.mn2 === null) this.linkCleanSince ??= now;
    else this.linkCleanSince = null;
    if (!cuts.arp.mn1 && !cuts.arp.mn2) this.arpCleanSince ??= now;
    else this.arpCleanSince = null;

    // Cores first: epochs, holder tenures, and where each open gate came from.
    if (!mn1.gateOpen) this.gate.mn1 = null;
    if (!mn2.gateOpen) this.gate.mn2 = null;
    this.checkCore(mn1);
    this.checkCore(mn2);

    // 1. safety
    if (holds1 && holds2) {
      // The later of two blind gates is the claim that made this split.
      const blind = [this.gate.mn1, this.gate.mn2].filter((g) => g?.blind).sort((a, b) => (b?.at ?? 0) - (a?.at ?? 0))[0];
      if (this.splitSince === null) {
        this.splitSince = now;
        if (blind) {
          this.blindSplits.count++;
          const why = blind.why ?? "unknown";
          this.blindSplits.why[why] = (this.blindSplits.why[why] ?? 0) + 1;
        }
      }
      if (!blind) {
        this.fail("safety", `both mn1 and mn2 hold the VIP (since ${this.splitSince.toFixed(1)} ms; gates: mn1 ${this.describeGate("mn1")}, mn2 ${this.describeGate("mn2")})`);
      } else if (this.options.strict && blind.why !== "arp-cut") {
        this.fail("safety", `both mn1 and mn2 hold the VIP after a blind claim (${blind.why}; strict mode excuses only an ARP cut)`);
      } else if (this.linkCleanSince !== null && now - Math.max(this.linkCleanSince, this.splitSince) > this.bounds.convergenceMs) {
        this.fail("safety", `both nodes still hold the VIP ${Math.round(now - this.linkCleanSince)} ms after the agent link became clean (a blind claim's split must end within ${this.bounds.convergenceMs} ms)`);
      } else if (this.bounds.duplicateMs !== null && this.arpCleanSince !== null && now - Math.max(this.arpCleanSince, this.splitSince) > this.bounds.duplicateMs) {
        this.fail("safety", `both nodes still hold the VIP ${Math.round(now - Math.max(this.arpCleanSince, this.splitSince))} ms into a split while ARP flows between them (the holders' duplicate check must end it within ${this.bounds.duplicateMs} ms)`);
      }
    } else if (this.splitSince !== null) {
      this.blindSplits.totalMs += now - this.splitSince;
      this.splitSince = null;
    }

    // 3. causality (checkCause)
    if (this.held.mn1 && !holds1) this.checkCause("mn1", now);
    this.held.mn1 = holds1;
    if (this.held.mn2 && !holds2) this.checkCause("mn2", now);
    this.held.mn2 = holds2;
    const owner: SimNode | null = holds1 && holds2 ? this.lastOwner : holds1 ? "mn1" : holds2 ? "mn2" : null;
    if (owner !== this.lastOwner) {
      if (owner !== null && this.firstOwner === null) this.firstOwner = owner;
      if (this.schedule.profile === "benign" && owner !== null && this.firstOwner !== null && owner !== this.firstOwner) {
        this.fail("no-flapping", `the VIP moved from ${this.firstOwner} to ${owner} in a run of faults that must move nothing`);
      }
      this.lastOwner = owner;
      this.lastOwnerChangeAt = now;
    }

    // 2. liveness, from heal + bound on
    const settledBy = this.schedule.healAt + this.bounds.livenessMs;
    if (now >= settledBy && !this.livenessReported) {
      const count = (holds1 ? 1 : 0) + (holds2 ? 1 : 0);
      if (count !== 1) {
        this.livenessReported = true;
        this.fail("liveness", `${count === 0 ? "no node holds" : "both nodes hold"} the VIP ${Math.round(now - this.schedule.healAt)} ms after the heal (bound ${this.bounds.livenessMs} ms)`);
      } else if (this.lastOwnerChangeAt > settledBy) {
        this.livenessReported = true;
        this.fail("liveness", `the VIP changed hands ${Math.round(this.lastOwnerChangeAt - this.schedule.healAt)} ms after the heal, past the bound (${this.bounds.livenessMs} ms)`);
      }
    }
  }

  /** One node's core: its epoch (never back, on disk), its holder tenure, where its open gate came from. */
  private checkCore(n: Readonly<NodeState>): void {
    const name = n.name;
    if (n.gateOpen && this.gate[name] === null) this.gate[name] = this.originOf(name);
    const core = n.core;
    if (!core) return;
    const epoch = core.currentEpoch();
    const maxEpoch = this.maxEpoch[name];
    if (epoch < maxEpoch) this.fail("epoch-monotonic", `${name}'s epoch went back from ${maxEpoch} to ${epoch}`);
    if (epoch > maxEpoch) this.maxEpoch[name] = epoch;
    if (n.persistedEpoch < epoch) this.fail("epoch-durable", `${name} acts on epoch ${epoch} but only ${n.persistedEpoch} is on disk`);
    const tenure = n.tenure;
    if (tenure === this.tenure[name]) return;
    if (tenure) {
      const last = this.lastHolderEntry;
      // Only what this node could know: the previous holder's epoch had reached it in a heartbeat.
      if (last && last.node !== name && tenure.epoch <= last.epoch && tenure.heardEpoch >= last.epoch) {
        this.fail("epoch-order", `${name} became holder at epoch ${tenure.epoch}, not above ${last.node}'s ${last.epoch}, which it had heard`);
      }
      this.lastHolderEntry = { node: name, epoch: tenure.epoch };
    }
    this.tenure[name] = tenure;
  }

  /** 3. causality: a node that loses the VIP must have a reason to. */
  private checkCause(name: SimNode, now: number): void {
    if (!this.hasCause(name, now)) this.fail("causality", `${name} lost the VIP with no fault on it or between the MNs in the last ${this.bounds.causalityWindowMs} ms`);
  }

  /** End-of-run checks; returns the violations. */
  finish(): Violation[] {
    const w = this.world;
    const count = (w.holdsVip("mn1") ? 1 : 0) + (w.holdsVip("mn2") ? 1 : 0);
    if (!this.livenessReported && count !== 1) {
      this.fail("liveness", `${count === 0 ? "no node holds" : "both nodes hold"} the VIP at the end of the run, ${Math.round(w.now - this.schedule.healAt)} ms after the heal`);
    }
    if (count === 1) this.holderAfterHealMs = Math.max(0, this.lastOwnerChangeAt - this.schedule.healAt);
    if (this.splitSince !== null) this.blindSplits.totalMs += w.now - this.splitSince;
    return this.violations;
  }

  /** How a gate that just opened came to be open. */
  private originOf(name: SimNode): GateOrigin {
    const w = this.world;
    const other: SimNode = name === "mn1" ? "mn2" : "mn1";
    const opening = w.gateOpening(name);
    const role = opening?.via ?? "down";
    // Blind: the other's gate was open, the probe found nobody, and the peer link could not
    // tell either: the peer was lost, or no heartbeat sent since that gate opened had come.
    // Only a claim the ARP guard let through counts; without the guard nothing is excused.
    const otherGate = this.gate[other];
    const blind = opening !== null && w.settings.election.arpGuard && role === "holder" && otherGate !== null && (!opening.peerAlive || opening.newsAt < otherGate.at);
    const arpCut = w.isCut("arp", name) || w.isCut("arp", other);
    let why: GateOrigin["why"] = null;
    if (blind && otherGate) {
      const ka = w.keepalivedState(other);
      if (arpCut && w.holdsVip(other)) why = "arp-cut";
      else if (ka === "backup" && w.now - otherGate.at < 2_000) why = "other-claiming";
      else if (ka === "stopped" || ka === "backup") why = "other-keepalived-restarting";
      else if (ka === "fault") why = "other-lease-stale";
      else why = "other-vip-up";
    }
    return { at: opening?.at ?? w.now, role, blind, why };
  }

  private describeGate(name: SimNode): string {
    const g = this.gate[name];
    const paused = this.world.agentPaused(name) ? ", agent paused" : "";
    return g ? `opened at ${g.at.toFixed(1)} ms as ${g.role}${g.blind ? ` (blind claim: ${g.why})` : ""}${paused}` : `closed${paused}`;
  }

  private hasCause(name: SimNode, now: number): boolean {
    if (this.driver.faultyNow(name) || this.driver.netFaultyNow()) return true;
    const since = now - this.bounds.causalityWindowMs;
    const activity = this.driver.activity;
    for (let i = activity.length - 1; i >= 0; i--) {
      const a = activity[i] as (typeof activity)[number];
      if (a.at < since) break;
      if (a.scope === name || a.scope === "net") return true;
    }
    return false;
  }

  private fail(invariant: InvariantName, message: string): void {
    this.violations.push({ invariant, at: this.world.now, step: this.world.steps, message });
  }
}
