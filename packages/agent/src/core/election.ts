/**
 * The election core: who holds the VIP. Pure — it takes inputs with the current monotonic
 * time and returns effects for the daemon to carry out. No sockets, files, timers or clocks
 * in here, so that the same code runs in the daemon, in scenario tests and in simulation.
 *
 * The rules (docs/protocol.md explains them at length):
 * - A node may hold the VIP only while it is eligible: its critical services are healthy and
 *   it reaches the gateway. The holder's right is its gate (open) plus a lease that its agent
 *   keeps renewing; Keepalived drops the VIP when either lapses.
 * - No preemption: a holder keeps the VIP until it fails, is demoted, or steps down.
 * - A standby claims only when the holder is gone AND the holder's last reported lease has
 *   run out by the standby's own clock (stretched by the drift bound) plus a margin, AND it
 *   reaches the gateway, AND (ARP guard) nobody answers for the VIP.
 * - Every change of holder carries a higher epoch; messages from older epochs are refused.
 * - A holder that finds its own lease expired (the agent was paused) steps down before
 *   anything else; a holder cut off from both its peer and the gateway steps down.
 * - A holder keeps asking the segment whether anyone else answers for the VIP (duplicate
 *   address detection). Two holders that cannot talk settle it by what both can see, the
 *   MAC addresses: the lower MAC keeps the VIP, the other releases it at once.
 */
import { MAX_EPOCH, type HandoffOffer, type Heartbeat, type LinkMessage, type Role } from "@mnha/protocol";

export interface ElectionSettings {
  self: string;
  peer: string;
  heartbeatIntervalMs: number;
  /** No heartbeat for this long: the peer is lost. */
  peerLossMs: number;
  leaseMs: number;
  takeoverMarginMs: number;
  /** Bound on relative drift of the two monotonic clocks, as a fraction (0.01 = 1 %). */
  maxClockDrift: number;
  /** After start, how long to wait for the peer before deciding alone. */
  startupGraceMs: number;
  handoffTimeoutMs: number;
  /**
   * How long a standby that accepted a handoff keeps its gate open waiting for the holder's
   * release. Keep it below Keepalived's master-down timer: a taker that cannot hear the
   * holder's adverts (IP between the MNs cut) would take the VIP while the holder still has
   * it. Default: two heartbeat intervals, at most handoffTimeoutMs.
   */
  receiveWindowMs?: number;
  arpGuard: boolean;
  /** While someone answers for the VIP and the peer is lost, probe again this often. */
  arpRetryMs: number;
  /**
   * Keepalived's master-down timer: after the gate opens, Keepalived waits this long as
   * BACKUP before it takes the VIP (unless a leaving MASTER's priority-0 advert cuts it
   * short, and a leaving MASTER no longer holds). A claim after peer loss therefore opens the
   * gate this long BEFORE the peer's lease has surely run out: the VIP still cannot appear
   * here earlier than the deadline, and the wait no longer comes on top of it. 0: open the
   * gate only at the deadline (the VIP then comes one timer later).
   */
  keepalivedDownTimerMs?: number;
  /** How long an ARP probe that finds nobody takes: it runs just before the gate may open. */
  arpProbeTimeoutMs?: number;
  /** The highest epoch this node has seen, read from disk at start. */
  initialEpoch: number;
  /**
   * Liveness watchdog (active once the host has reported the VIP at least once). A holder
   * whose VIP is not on its interface this long asks the host to repair Keepalived...
   */
  vipRepairAfterMs?: number;
  /** ...and if it is still not served this long, gives the role up through the election. */
  vipGiveUpAfterMs?: number;
  /** A standby whose peer claims the role without serving the VIP this long claims it (ARP probe, higher epoch). */
  peerVipUnansweredMs?: number;
  /** The database follows the VIP (docs/database.md); absent: the core emits no db effects. */
  db?: DbElectionSettings;
  /**
   * A witness (docs/protocol.md, "The witness"): a claim, and any opening of the gate, needs
   * its grant; a holder that loses both the peer and the grant gives the VIP up. Absent: no
   * witness effects, today's rules.
   */
  witness?: WitnessElectionSettings;
}

/** The election's part of the `witness:` config. */
export interface WitnessElectionSettings {
  /** How long one grant lasts at the witness (asked for with every request). */
  leaseMs: number;
}

/** What this node knows of the witness (status). */
export interface WitnessView {
  /** The last request was answered (false: unreachable, or not asked yet). */
  reachable: boolean;
  /** This node holds a grant it may act on (by its own clock, less the agent lease). */
  grantHeld: boolean;
  /** How long this node's grant still counts here (0: none). */
  grantRemainingMs: number;
  /** Who the witness said holds the grant, at which epoch, and for how much longer (as it said). */
  holder: string | null;
  holderEpoch: number;
  holderRemainingMs: number;
  /** How long ago the witness last answered (null: never). */
  answeredMsAgo: number | null;
  lastError: string | null;
}

/** The election's part of the `db:` config (present only when `db.enabled`). */
export interface DbElectionSettings {
  /** How long a taker waits for the holder's last transaction before it refuses the handoff. */
  catchUpTimeoutMs: number;
  /** A standby further behind than this may not take over from a live holder. */
  maxLagForFailoverMs: number;
  /** Holder dead and this node behind or its replica broken: take over anyway. */
  availabilityOverCatchUp: boolean;
}

/** What this node knows of its own database, polled by the daemon off the hot path. */
export interface DbSummary {
  alive: boolean;
  readOnly: boolean | null;
  /** Why the replica is broken (thread stopped, error, MariaDB down), else null. */
  broken: string | null;
  /** An interrupted `db seed` left a partial copy: never eligible. */
  seedIncomplete: boolean;
  /** Errant transactions found on this node (written while a read-only standby), else null/absent: may not take over from a live holder. */
  errant?: string | null;
  /** Seconds_Behind_Master (null: unknown or no replica). */
  lagSeconds: number | null;
  gtidBinlogPos: string | null;
  gtidCurrentPos: string | null;
  /** Semi-sync on the master side: false after a fallback to asynchronous; null: unknown. */
  semiSyncMasterActive: boolean | null;
  /** For status only (the election does not read them). */
  slaveIoRunning?: string | null;
  slaveSqlRunning?: string | null;
  lastIoError?: string | null;
  lastSqlError?: string | null;
}

/** Watchdog defaults (ms): docs/architecture.md explains them; the config's timings override them. */
export const WATCHDOG_DEFAULTS = { vipRepairAfterMs: 3_000, vipGiveUpAfterMs: 8_000, peerVipUnansweredMs: 12_000 } as const;

export type ElectionInput =
  | { kind: "tick" }
  /** Re-evaluate time-based rules between ticks (no lease renewal). */
  | { kind: "wake" }
  | { kind: "services"; healthy: boolean; reasons: string[] }
  | { kind: "gateway"; reachable: boolean }
  /**
   * Maintenance mode (Pacemaker's semantics): keep watching, act on nothing. The node keeps
   * its gate and role: a holder keeps the VIP however it fares, a standby claims nothing and
   * takes no handoff, no handoff starts. Safety rules still apply (own lease expired, a newer
   * epoch elsewhere, cut off from both the peer and the gateway).
   */
  | { kind: "maintenance"; on: boolean }
  /** The operator stopped this node's services (mnha stop-node): not eligible; a holder gives the VIP up. */
  | { kind: "node-stopped"; on: boolean }
  | { kind: "peer-up" }
  | { kind: "peer-down"; reason: string }
  | { kind: "peer-message"; message: LinkMessage }
  | { kind: "arp-result"; probeId: number; occupied: boolean; detail: string }
  /**
   * The holder's duplicate-address check: the MACs other than this node's own that answered
   * for the VIP (empty: nobody else). MACs lower-case, colon-separated.
   */
  | { kind: "duplicate-check"; ownMac: string; otherMacs: string[]; detail: string }
  /** Whether the VIP is on this node's interface now (polls and Keepalived notifications). */
  | { kind: "vip-observed"; present: boolean }
  | { kind: "demote"; requestId: string }
  | { kind: "shutdown"; requestId: string }
  /** The database's state, from the daemon's periodic poll (db enabled only). */
  | { kind: "db-health"; summary: DbSummary }
  /** How the taker's wait for the holder's last transaction ended (answer to `db-wait-gtid`). */
  | { kind: "db-caught-up"; id: string; reached: boolean; detail: string }
  /**
   * The witness answered request `requestId` (answer to `witness-request`): who holds its grant
   * now, at which epoch, for how much longer by its clock; `validMs` is the grant's length
   * when it is ours (counted here from when the request left, shortened by the drift bound).
   */
  | { kind: "witness-grant"; requestId: number; granted: boolean; holder: string | null; holderEpoch: number; remainingMs: number; validMs: number }
  /** Request `requestId` got no answer (the witness is unreachable, refused us, or timed out). */
  | { kind: "witness-lost"; requestId: number; reason: string };

export type ElectionEffect =
  /** Open or close this node's Keepalived gate. Must be applied before the next effect. */
  | { kind: "set-gate"; open: boolean }
  /** Write the epoch durably before acting on it. */
  | { kind: "persist-epoch"; epoch: number }
  | { kind: "send"; message: LinkMessage }
  /** Send a heartbeat now (the state changed), besides the regular ones. */
  | { kind: "heartbeat-now" }
  | { kind: "arp-probe"; probeId: number }
  /** Send gratuitous ARP for the VIP: neighbours may still point at a holder that just left. */
  | { kind: "announce-vip" }
  /** Tell the lease guard the agent is alive (after a tick's other effects: a woken node has closed its gate first). */
  | { kind: "renew-lease" }
  /** The VIP is not served although this node holds the role: repair what can be repaired (guard, files, Keepalived). */
  | { kind: "repair-keepalived"; reason: string }
  | { kind: "event"; type: ElectionEventType; message: string; fields: Record<string, unknown> }
  | { kind: "request-done"; requestId: string; ok: boolean; message: string; to: string | null; epoch: number }
  /**
   * The database follows the VIP. `on: true` (read-only) comes before the gate closes and
   * before a handoff offer leaves; the host waits until it is confirmed (or failed: then it
   * records the failure loudly and goes on, so a dead database never keeps the gate open).
   * `on: false` (writable) only once the VIP is on this node's interface; `afterClaim` says
   * the tenure began without a handoff, so the host first applies the relay log it has
   * (bounded) and compares with the peer's last reported position.
   */
  | { kind: "db-read-only"; on: true }
  | { kind: "db-read-only"; on: false; afterClaim: { peerGtidBinlogPos: string | null; peerSemiSyncActive: boolean | null; lagSeconds: number | null } | null }
  /** Taker: wait until this database has applied `gtid` (bounded), then answer with `db-caught-up`. */
  | { kind: "db-wait-gtid"; id: string; gtid: string; timeoutMs: number }
  /** Ask the witness for its grant (or renew ours) at `epoch`; answer with `witness-grant` or `witness-lost`. */
  | { kind: "witness-request"; requestId: number; epoch: number; leaseMs: number }
  /** Tell the witness our grant is free (our gate is closed): the peer need not wait for it to run out. */
  | { kind: "witness-release"; epoch: number };

export type ElectionEventType =
  | "role-changed"
  | "epoch-adopted"
  | "peer-lost"
  | "peer-heard"
  | "claim-started"
  | "claim-blocked"
  | "claim-aborted"
  | "handoff-offered"
  | "handoff-completed"
  | "handoff-failed"
  | "handoff-accepted"
  | "handoff-rejected"
  | "stale-message"
  | "lease-expired"
  | "stepped-down"
  | "holding-degraded"
  | "duplicate-found"
  | "duplicate-yielded"
  | "duplicate-cleared"
  | "vip-repair"
  | "vip-restored"
  | "vip-gave-up"
  | "peer-vip-unanswered"
  | "holding-in-maintenance"
  | "db-catch-up"
  | "db-not-caught-up"
  | "db-takeover-behind"
  | "witness-lapsed"
  | "witness-regained"
  | "witness-denied";

export interface PeerView {
  connected: boolean;
  lastHeardAt: number | null;
  heartbeat: Heartbeat | null;
  /** My-clock instant by which any lease the peer reported has surely run out. */
  leaseDeadline: number;
}

export interface ElectionSnapshot {
  role: Role;
  epoch: number;
  holder: string | null;
  eligible: boolean;
  reasons: string[];
  gateOpen: boolean;
  leaseRemainingMs: number;
  peerAlive: boolean;
  peer: PeerView;
  /** How long the VIP has gone unanswered while a holder claims it (this node or the peer), or null. */
  vipUnansweredMs: number | null;
  maintenance: boolean;
  nodeStopped: boolean;
  /** Present only with a witness configured. */
  witness?: WitnessView;
}

interface PendingHandoff {
  id: string;
  epoch: number;
  startedAt: number;
  requestId: string | null;
  reason: string;
  /** After the handoff, stop (shutdown) instead of staying a standby. */
  thenStop: boolean;
}

interface ReceivingHandoff {
  id: string;
  epoch: number;
  startedAt: number;
}

/**
 * Taker: a handoff whose receive window closed before the holder's release came. The holder
 * may still release (it was slow to close its gate): until `until` that release makes this
 * node the holder (docs/protocol.md, "A release that comes late").
 */
interface LateRelease {
  id: string;
  epoch: number;
  /** When our window closed (our clock): a pause after it voids the late release. */
  closedAt: number;
  /** The lease we reported as we began receiving, less the takeover margin: the giver waits for it to run out before it may claim. */
  until: number;
}

/** Giver: released to the peer; the operator's request waits until the peer reports it holds the VIP. */
interface ReleasedHandoff {
  epoch: number;
  requestId: string;
  releasedAt: number;
  startedAt: number;
}

interface PendingProbe {
  id: number;
  startedAt: number;
}

export class ElectionCore {
  private readonly s: ElectionSettings;
  private role: Role = "starting";
  private epoch: number;
  private holder: string | null = null;
  private readonly startedAt: number;

  private servicesHealthy = false;
  private serviceReasons: string[] = ["services not checked yet"];
  private gatewayReachable = false;
  private maintenance = false;
  private nodeStopped = false;
  private maintenanceAnnounced = false;

  private gateOpen = false;
  /** Instant the lease guard last heard from us plus leaseMs (our clock). */
  private leaseValidUntil: number;
  private lastStepAt: number;
  /** When this node last woke from a pause (a gap of over two heartbeat intervals between steps). */
  private resumedAt: number | null = null;

  private peer: PeerView = { connected: false, lastHeardAt: null, heartbeat: null, leaseDeadline: 0 };
  private peerLostAnnounced = true;

  private handoff: PendingHandoff | null = null;
  private receiving: ReceivingHandoff | null = null;
  private lateRelease: LateRelease | null = null;
  private released: ReleasedHandoff | null = null;
  private probe: PendingProbe | null = null;
  /** The claim's probe found nobody; the gate opens at this instant (peer's lease, less the VRRP timer). */
  private probeClearedAt: number | null = null;
  private nextProbeId = 1;
  private lastProbeBlockedAt: number | null = null;
  private handoffSeq = 0;
  private degradedAnnounced = false;
  private stopping = false;
  /** Another MAC answered for the VIP while this node held it, and has not been seen gone yet. */
  private duplicateSeen = false;

  // ---- liveness watchdog
  /** The VIP on our interface as last reported (null: never reported; the watchdog stays idle). */
  private vipPresent: boolean | null = null;
  /** While holder: since when the VIP has been missing. */
  private vipMissingSince: number | null = null;
  private vipRepairRequested = false;
  /** After giving the VIP up for not serving it: not eligible until then, so the peer goes first. */
  private vipFaultUntil: number | null = null;
  /** While the peer claims the role: since when it has reported no VIP, and at which epoch (one tenure). */
  private peerVipMissingSince: number | null = null;
  private peerVipMissingEpoch = -1;
  private peerVipAnnounced = false;

  // ---- the database follows the VIP (db settings only; see the "database" section below)
  /** What the core last asked of the database: writable (true), read-only (false), nothing yet (null). */
  private dbWritable: boolean | null = null;
  /** The VIP has been seen on our interface since the gate last opened (and not seen gone since). */
  private vipOwnSinceGateOpened = false;
  /** This tenure began by a claim (no handoff): the first writable step applies the relay log first. */
  private tenureByClaim = false;
  private dbSummary: DbSummary | null = null;
  /** Taker: a handoff offer waiting for this database to apply the holder's last transaction. */
  private catchingUp: { offer: HandoffOffer; startedAt: number } | null = null;
  private takingWithoutPosition = false;

  // ---- the witness (witness settings only; see the "witness" section below)
  /** My-clock instant until which the witness's grant is ours (from the request's departure, less the drift bound). */
  private witnessGrantUntil = Number.NEGATIVE_INFINITY;
  /** Requests in flight: id → my-clock instant it left. */
  private readonly witnessRequests = new Map<number, number>();
  private nextWitnessRequestId = 1;
  /** The gate should be open (holder or taker) but waits for the witness's grant. */
  private gateAwaitingWitness = false;
  /** The witness denied a claim: no new claim before this instant. */
  private witnessDeniedUntil: number | null = null;
  private witnessLapseAnnounced = false;
  private witnessAnswer: { at: number; reachable: boolean; holder: string | null; holderEpoch: number; remainingMs: number; error: string | null } | null = null;

  constructor(settings: ElectionSettings, now: number) {
    this.s = settings;
    this.epoch = settings.initialEpoch;
    this.startedAt = now;
    this.leaseValidUntil = now + settings.leaseMs;
    this.lastStepAt = now;
  }

  // ---- queries ----------------------------------------------------------------

  eligible(): boolean {
    return this.servicesHealthy && this.gatewayReachable && !this.maintenance && !this.nodeStopped && !this.stopping && this.vipFaultUntil === null && this.dbSeedProblem() === null && this.dbTakeoverProblem() === null;
  }

  reasons(): string[] {
    const reasons: string[] = [];
    if (!this.servicesHealthy) reasons.push(...this.serviceReasons);
    if (!this.gatewayReachable) reasons.push("gateway unreachable");
    if (this.maintenance) reasons.push("maintenance mode");
    if (this.nodeStopped) reasons.push("node stopped by the operator (mnha stop-node)");
    if (this.stopping) reasons.push("agent stopping");
    if (this.vipFaultUntil !== null) reasons.push("the VIP could not be served here (watchdog)");
    const seed = this.dbSeedProblem();
    if (seed !== null) reasons.push(seed);
    const takeover = this.dbTakeoverProblem();
    if (takeover !== null) reasons.push(takeover);
    return reasons;
  }

  peerAlive(now: number): boolean {
    return this.peer.connected && this.peer.lastHeardAt !== null && now - this.peer.lastHeardAt < this.s.peerLossMs;
  }

  /** The epoch now (what snapshot().epoch says, without building a snapshot: hosts ask after every step). */
  currentEpoch(): number {
    return this.epoch;
  }

  /** The holder this node believes in now (snapshot().holder, without building a snapshot). */
  currentHolder(): string | null {
    return this.holder;
  }

  /** Whether the core wants the gate open now (snapshot().gateOpen, without building a snapshot). */
  wantsGateOpen(): boolean {
    return this.gateOpen;
  }

  snapshot(now: number): ElectionSnapshot {
    return {
      role: this.role,
      epoch: this.epoch,
      holder: this.holder,
      eligible: this.eligible(),
      reasons: this.reasons(),
      gateOpen: this.gateOpen,
      leaseRemainingMs: this.leaseRemaining(now),
      peerAlive: this.peerAlive(now),
      peer: { ...this.peer },
      vipUnansweredMs: this.vipMissingSince !== null ? Math.round(now - this.vipMissingSince) : this.peerVipMissingSince !== null && this.peerAlive(now) ? Math.round(now - this.peerVipMissingSince) : null,
      maintenance: this.maintenance,
      nodeStopped: this.nodeStopped,
      ...(this.s.witness ? { witness: this.witnessView(now) } : {}),
    };
  }

  /** Why the peer could not take the VIP now (null: it could), for operator commands. */
  peerCannotTake(now: number): string | null {
    return this.peerProblem(now);
  }

  /** The HA fields of the heartbeat this node sends now. */
  heartbeatFields(now: number): Pick<Heartbeat, "epoch" | "holder" | "role" | "eligible" | "reasons" | "leaseRemainingMs" | "gatewayReachable" | "db"> {
    return {
      ...(this.s.db && this.dbSummary ? { db: heartbeatDb(this.dbSummary) } : {}),
      epoch: this.epoch,
      holder: this.holder,
      role: this.role,
      eligible: this.eligible(),
      // The protocol bounds reasons (16 of at most 200 characters): never send a frame the peer must refuse.
      reasons: this.reasons().slice(0, 16).map((r) => (r.length > 200 ? `${r.slice(0, 197)}...` : r)),
      leaseRemainingMs: this.leaseRemaining(now),
      gatewayReachable: this.gatewayReachable,
    };
  }

  /** The next instant at which time alone may change a decision (for the daemon's timer). */
  nextWakeAt(now: number): number {
    // The earliest candidate after `now` (this runs after every step: no arrays built).
    let at = earliestAfter(now, Infinity, now + this.s.heartbeatIntervalMs);
    if (this.peer.lastHeardAt !== null) {
      at = earliestAfter(now, at, this.peer.lastHeardAt + this.s.peerLossMs);
      at = earliestAfter(now, at, this.peer.lastHeardAt + this.s.peerLossMs - this.peerSuspectLeadMs());
    }
    const deadline = this.peer.leaseDeadline + this.s.takeoverMarginMs;
    at = earliestAfter(now, at, deadline);
    at = earliestAfter(now, at, deadline - this.gateLeadMs());
    at = earliestAfter(now, at, deadline - this.probeLeadMs());
    at = earliestAfter(now, at, this.startedAt + this.s.startupGraceMs);
    if (this.handoff) at = earliestAfter(now, at, this.handoff.startedAt + this.handoffTimeoutMs());
    if (this.receiving) at = earliestAfter(now, at, this.receiving.startedAt + this.receiveWindowMs());
    if (this.released) at = earliestAfter(now, at, this.released.releasedAt + this.s.handoffTimeoutMs);
    if (this.lastProbeBlockedAt !== null) at = earliestAfter(now, at, this.lastProbeBlockedAt + this.s.arpRetryMs);
    if (this.vipMissingSince !== null) {
      const watchdog = this.watchdog();
      at = earliestAfter(now, at, this.vipMissingSince + watchdog.vipRepairAfterMs);
      at = earliestAfter(now, at, this.vipMissingSince + watchdog.vipGiveUpAfterMs);
    }
    if (this.peerVipMissingSince !== null) at = earliestAfter(now, at, this.peerVipMissingSince + this.watchdog().peerVipUnansweredMs);
    if (this.vipFaultUntil !== null) at = earliestAfter(now, at, this.vipFaultUntil);
    if (this.s.witness) {
      if (Number.isFinite(this.witnessGrantUntil)) at = earliestAfter(now, at, this.witnessGrantUntil - this.s.leaseMs);
      if (this.witnessDeniedUntil !== null) at = earliestAfter(now, at, this.witnessDeniedUntil);
    }
    return Math.max(now + 1, at);
  }

  // ---- the one entry point ------------------------------------------------------

  step(now: number, input: ElectionInput): ElectionEffect[] {
    const out: ElectionEffect[] = [];
    // A database left writable by an earlier run is made read-only before anything else.
    if (this.s.db && this.dbWritable === null) this.dbGoReadOnly(out);
    // A node that wakes from a pause re-checks its own lease before acting on anything.
    this.checkOwnLease(now, out);
    if (now - this.lastStepAt > 2 * this.s.heartbeatIntervalMs) this.resumedAt = now;
    this.lastStepAt = now;
    if (this.vipFaultUntil !== null && now >= this.vipFaultUntil) this.vipFaultUntil = null;

    switch (input.kind) {
      case "tick":
        // The lease guard is renewed on every tick, by the renew-lease effect after the others.
        this.leaseValidUntil = now + this.s.leaseMs;
        // A holder (or one waiting for the grant to open its gate) renews the witness's grant.
        if (this.s.witness && this.holder === this.s.self && (this.role === "holder" || this.role === "handing-off")) this.requestWitness(now, this.epoch, out);
        break;
      case "wake":
        break;
      case "services":
        this.servicesHealthy = input.healthy;
        this.serviceReasons = input.healthy ? [] : input.reasons.length > 0 ? input.reasons : ["a critical service failed"];
        break;
      case "gateway":
        this.gatewayReachable = input.reachable;
        break;
      case "maintenance":
        this.maintenance = input.on;
        if (!input.on) this.maintenanceAnnounced = false;
        break;
      case "node-stopped":
        this.nodeStopped = input.on;
        break;
      case "peer-up":
        this.peer.connected = true;
        break;
      case "peer-down":
        this.peer.connected = false;
        this.announcePeerLost(now, input.reason, out);
        break;
      case "peer-message":
        this.onPeerMessage(now, input.message, out);
        break;
      case "arp-result":
        this.onArpResult(now, input, out);
        break;
      case "duplicate-check":
        this.onDuplicateCheck(now, input, out);
        break;
      case "vip-observed":
        // A holder whose VIP just came up tells its peer at once (a giver's demote waits for that word).
        if (input.present && this.vipPresent !== true && this.holder === this.s.self) out.push({ kind: "heartbeat-now" });
        this.vipPresent = input.present;
        this.onVipObservedForDb(input.present, out);
        break;
      case "demote":
        this.onDemote(now, input.requestId, false, out);
        break;
      case "shutdown":
        this.onShutdown(now, input.requestId, out);
        break;
      case "db-health":
        this.dbSummary = input.summary;
        this.reassertDbMode(input.summary, out);
        break;
      case "db-caught-up":
        this.onDbCaughtUp(now, input, out);
        break;
      case "witness-grant":
        this.onWitnessGrant(now, input, out);
        break;
      case "witness-lost":
        this.onWitnessLost(now, input, out);
        break;
    }

    if (this.peer.lastHeardAt !== null && !this.peerAlive(now)) this.announcePeerLost(now, "no heartbeat", out);
    this.checkWitness(now, out);
    this.checkReleasedTaken(now, null, out);
    this.evaluate(now, out);
    this.reconcileDbWritable(out);
    // The lease guard hears from us only after every other effect of the tick.
    if (input.kind === "tick") out.push({ kind: "renew-lease" }, { kind: "heartbeat-now" });
    return out;
  }

  // ---- rules ----------------------------------------------------------------------

  private leaseRemaining(now: number): number {
    return this.gateOpen ? Math.max(0, Math.floor(this.leaseValidUntil - now)) : 0;
  }

  private checkOwnLease(now: number, out: ElectionEffect[]): void {
    if (this.gateOpen && now >= this.leaseValidUntil) {
      // We were paused (or starved) past our lease: Keepalived has dropped the VIP and the
      // peer may already hold it at a higher epoch. Close the gate before renewing anything.
      out.push({ kind: "event", type: "lease-expired", message: `own lease expired ${Math.round(now - this.leaseValidUntil)} ms ago; stepping down`, fields: { pausedMs: Math.round(now - this.lastStepAt) } });
      this.closeGate(out);
      if (this.holder === this.s.self) this.holder = null;
      this.abandonHandoff("own lease expired", out);
      this.receiving = null;
      this.setRole("standby", "own lease expired", out);
    }
  }

  private announcePeerLost(now: number, reason: string, out: ElectionEffect[]): void {
    // What the peer reported about its VIP is void once it is lost: a later tenure starts afresh.
    this.peerVipMissingSince = null;
    this.peerVipAnnounced = false;
    // A handoff we were catching up for is void without its holder.
    this.catchingUp = null;
    if (this.peerLostAnnounced) return;
    this.peerLostAnnounced = true;
    out.push({ kind: "event", type: "peer-lost", message: `peer ${this.s.peer} lost: ${reason}`, fields: { peer: this.s.peer, reason, lastHeardMsAgo: this.peer.lastHeardAt === null ? null : Math.round(now - this.peer.lastHeardAt) } });
  }

  private onPeerMessage(now: number, message: LinkMessage, out: ElectionEffect[]): void {
    switch (message.type) {
      case "heartbeat":
        this.onHeartbeat(now, message, out);
        return;
      case "handoff-offer":
        this.onHandoffOffer(now, message, out);
        return;
      case "handoff-ready":
        if (this.handoff && message.id === this.handoff.id && message.epoch === this.handoff.epoch && this.role === "handing-off") {
          this.completeHandoffAsGiver(now, out);
        } else {
          out.push({ kind: "event", type: "stale-message", message: "handoff-ready for no pending handoff ignored", fields: { id: message.id, epoch: message.epoch } });
        }
        return;
      case "handoff-reject":
        if (this.handoff && message.id === this.handoff.id) {
          const reason = `peer refused: ${message.reason}`;
          this.abandonHandoff(reason, out);
          if (this.role === "handing-off") this.setRole("holder", "handoff refused", out);
        }
        return;
      case "handoff-released":
        if (this.receiving && message.id === this.receiving.id && message.epoch === this.receiving.epoch) {
          this.completeHandoffAsTaker(now, out);
        } else if (this.lateRelease && message.id === this.lateRelease.id && message.epoch === this.lateRelease.epoch) {
          this.onLateRelease(now, out);
        }
        return;
      case "refuse":
        return;
    }
  }

  private onHeartbeat(now: number, hb: Heartbeat, out: ElectionEffect[]): void {
    if (hb.node !== this.s.peer) return;
    this.peer.connected = true;
    if (this.peerLostAnnounced) {
      this.peerLostAnnounced = false;
      out.push({ kind: "event", type: "peer-heard", message: `peer ${this.s.peer} heard: ${hb.role} at epoch ${hb.epoch}`, fields: { peer: hb.node, role: hb.role, epoch: hb.epoch, holder: hb.holder } });
    }
    const previousHeardAt = this.peer.lastHeardAt;
    this.peer.lastHeardAt = now;
    this.peer.heartbeat = hb;
    this.trackPeerVip(now, hb, previousHeardAt);
    if (hb.leaseRemainingMs > 0) {
      // The lease was measured on the peer's clock when it sent; it cannot outlast this.
      const deadline = now + hb.leaseRemainingMs * (1 + this.s.maxClockDrift);
      this.peer.leaseDeadline = Math.max(this.peer.leaseDeadline, deadline);
    }

    this.checkReleasedTaken(now, hb, out);
    // The release message was lost but the giver's heartbeat tells the same story.
    if (this.lateRelease && hb.epoch === this.lateRelease.epoch && hb.holder === this.s.self && !(hb.role === "holder" || hb.role === "handing-off")) this.onLateRelease(now, out);

    if (hb.epoch >= MAX_EPOCH) {
      // Adopting it would leave no room for the next change of holder.
      out.push({ kind: "event", type: "stale-message", message: `ignored a heartbeat at epoch ${hb.epoch}: at the protocol's bound ${MAX_EPOCH}`, fields: { peerEpoch: hb.epoch } });
      return;
    }
    if (hb.epoch > this.epoch) {
      const peerHolding = hb.role === "holder" || hb.role === "handing-off" || hb.role === "receiving";
      if (this.role === "holder" && this.gateOpen && !peerHolding) {
        // The peer knows a newer epoch but holds nothing (it claimed alone while we were apart
        // and has since restarted or stepped down): stepping down would only open a gap.
        // Keep the VIP and hold it at that epoch, on disk before anyone hears of it.
        this.epoch = hb.epoch;
        this.holder = this.s.self;
        out.push({ kind: "persist-epoch", epoch: hb.epoch });
        out.push({ kind: "event", type: "epoch-adopted", message: `adopted epoch ${hb.epoch} from ${hb.node}, which holds nothing; keeping the VIP`, fields: { epoch: hb.epoch, holder: this.s.self } });
        out.push({ kind: "heartbeat-now" });
        return;
      }
      this.epoch = hb.epoch;
      // The peer names us holder only after releasing to us; unless the handoff completes
      // below, we do not hold it, and must not say so (the peer would wait for our lease).
      const namesUs = hb.holder === this.s.self && !(this.receiving && hb.epoch >= this.receiving.epoch);
      this.holder = namesUs ? null : hb.holder;
      out.push({ kind: "persist-epoch", epoch: hb.epoch });
      out.push({ kind: "event", type: "epoch-adopted", message: `adopted epoch ${hb.epoch} from ${hb.node} (holder ${hb.holder ?? "none"}${namesUs ? ": a release this node no longer waits for; it does not hold the VIP" : ""})`, fields: { epoch: hb.epoch, holder: hb.holder } });
      if (this.gateOpen && this.role !== "receiving") {
        this.closeGate(out);
        this.abandonHandoff("a newer epoch exists", out);
        this.setRole("standby", `peer holds a newer epoch ${hb.epoch}`, out);
      }
      if (this.receiving && hb.epoch >= this.receiving.epoch && hb.holder === this.s.self) {
        this.completeHandoffAsTaker(now, out);
      }
      if (this.role === "claiming") this.abortClaim("peer holds a newer epoch", out);
      return;
    }

    if (hb.epoch < this.epoch) {
      if (hb.role === "holder" || hb.role === "handing-off") {
        out.push({ kind: "event", type: "stale-message", message: `peer claims the VIP at stale epoch ${hb.epoch} < ${this.epoch}`, fields: { peerEpoch: hb.epoch, epoch: this.epoch } });
      }
      return;
    }

    // Same epoch.
    if (this.receiving && hb.epoch === this.epoch && hb.role === "standby" && hb.holder === this.s.self) {
      // The release message was lost but the heartbeat tells the same story.
      this.completeHandoffAsTaker(now, out);
      return;
    }
    const peerHolds = hb.role === "holder" || hb.role === "handing-off";
    if (peerHolds && this.gateOpen && this.role !== "receiving") {
      // Two holders at one epoch cannot come from a correct run, but if it happens the
      // lower name keeps the VIP and the other steps down at once.
      if (this.s.self > this.s.peer) {
        this.closeGate(out);
        this.holder = this.s.peer;
        this.abandonHandoff("conflicting holder", out);
        this.setRole("standby", `conflict at epoch ${hb.epoch}: ${this.s.peer} keeps the VIP`, out);
      }
      return;
    }
    if (peerHolds) this.holder = this.s.peer;
    // (A claim against a holder that has not served the VIP for too long goes on: the rescue.)
    if (this.role === "claiming" && peerHolds && !this.peerVipUnanswered(now)) this.abortClaim("peer holds the VIP", out);
  }

  private onHandoffOffer(now: number, offer: HandoffOffer, out: ElectionEffect[]): void {
    const reject = (reason: string): void => {
      out.push({ kind: "send", message: { type: "handoff-reject", id: offer.id, epoch: offer.epoch, reason: reason.length > 200 ? `${reason.slice(0, 197)}...` : reason } });
      out.push({ kind: "event", type: "handoff-rejected", message: `refused to take the VIP from ${offer.from}: ${reason}`, fields: { id: offer.id, epoch: offer.epoch, reason } });
    };
    if (offer.to !== this.s.self || offer.from !== this.s.peer) return reject("offer not addressed to this node");
    if (offer.epoch <= this.epoch) {
      out.push({ kind: "event", type: "stale-message", message: `handoff offer at stale epoch ${offer.epoch} <= ${this.epoch}`, fields: { epoch: offer.epoch } });
      return reject(`stale epoch ${offer.epoch} (this node is at ${this.epoch})`);
    }
    if (!this.eligible()) return reject(`not eligible: ${this.reasons().join("; ")}`);
    if (this.role !== "standby" && this.role !== "claiming") return reject(`busy (${this.role})`);
    if (this.catchingUp && this.catchingUp.offer.id !== offer.id) return reject("busy (catching up for another handoff)");
    if (this.s.db && offer.gtidBinlogPos !== undefined && this.catchingUp?.offer.id !== offer.id) {
      // Planned switchover: take the VIP only once every transaction the holder has is applied here.
      this.catchingUp = { offer, startedAt: now };
      out.push({ kind: "event", type: "db-catch-up", message: `waiting until this database has applied ${offer.gtidBinlogPos || "(nothing)"} from ${offer.from} before taking the VIP`, fields: { id: offer.id, gtid: offer.gtidBinlogPos, timeoutMs: this.s.db.catchUpTimeoutMs } });
      out.push({ kind: "db-wait-gtid", id: offer.id, gtid: offer.gtidBinlogPos, timeoutMs: this.s.db.catchUpTimeoutMs });
      return;
    }
    this.catchingUp = null;
    // An offer without the holder's position (its database could not be read): apply the relay log before writing, as after a claim.
    this.takingWithoutPosition = this.s.db !== undefined && offer.gtidBinlogPos === undefined;
    if (this.role === "claiming") this.abortClaim("taking a handoff instead", out);
    this.receiving = { id: offer.id, epoch: offer.epoch, startedAt: now };
    // Open our gate while the holder still holds: our Keepalived waits as BACKUP and takes
    // over the instant the holder's Keepalived leaves MASTER.
    this.openGate(now, out);
    this.setRole("receiving", `taking the VIP from ${offer.from}: ${offer.reason}`, out);
    out.push({ kind: "send", message: { type: "handoff-ready", id: offer.id, epoch: offer.epoch } });
    out.push({ kind: "event", type: "handoff-accepted", message: `accepted the VIP from ${offer.from} at epoch ${offer.epoch}`, fields: { id: offer.id, epoch: offer.epoch, reason: offer.reason } });
  }

  private completeHandoffAsGiver(now: number, out: ElectionEffect[]): void {
    const handoff = this.handoff;
    if (!handoff) return;
    this.closeGate(out);
    this.epoch = handoff.epoch;
    this.holder = this.s.peer;
    out.push({ kind: "persist-epoch", epoch: handoff.epoch });
    out.push({ kind: "send", message: { type: "handoff-released", id: handoff.id, epoch: handoff.epoch } });
    this.handoff = null;
    this.setRole("standby", `handed the VIP to ${this.s.peer}: ${handoff.reason}`, out);
    out.push({ kind: "event", type: "handoff-completed", message: `VIP handed to ${this.s.peer} at epoch ${handoff.epoch} in ${Math.round(now - handoff.startedAt)} ms`, fields: { to: this.s.peer, epoch: handoff.epoch, reason: handoff.reason, tookMs: Math.round(now - handoff.startedAt) } });
    // The operator hears "done" only once the peer reports it holds the VIP (checkReleasedTaken).
    // An agent stop reports at once: it exits either way.
    if (handoff.requestId && handoff.thenStop) out.push({ kind: "request-done", requestId: handoff.requestId, ok: true, message: `VIP handed to ${this.s.peer}`, to: this.s.peer, epoch: handoff.epoch });
    else if (handoff.requestId) this.released = { epoch: handoff.epoch, requestId: handoff.requestId, releasedAt: now, startedAt: handoff.startedAt };
  }

  /**
   * Giver, after the release: the peer's heartbeat says whether it took the VIP. Holder at the
   * handoff's epoch with the VIP on its interface: done. Not holding at that epoch or later: it
   * gave up (its receive window closed first and it could not take the late release); the
   * operator is told so, as when no such word comes within handoffTimeoutMs.
   */
  private checkReleasedTaken(now: number, heard: Heartbeat | null, out: ElectionEffect[]): void {
    const released = this.released;
    if (!released) return;
    const hb = heard ?? this.peer.heartbeat;
    const tookMs = Math.round(now - released.startedAt);
    const peerHoldsRole = hb !== null && hb.epoch >= released.epoch && (hb.role === "holder" || hb.role === "handing-off") && hb.holder === this.s.peer;
    if (peerHoldsRole && hb.vipPresent) {
      this.released = null;
      out.push({ kind: "request-done", requestId: released.requestId, ok: true, message: `VIP handed to ${this.s.peer} (up on ${this.s.peer} at epoch ${hb.epoch}, ${tookMs} ms)`, to: this.s.peer, epoch: hb.epoch });
      return;
    }
    if (peerHoldsRole) {
      if (now < released.releasedAt + this.s.handoffTimeoutMs) return;
      // The role moved but the VIP is not up there yet (its watchdog repairs that): say exactly so.
      this.released = null;
      out.push({ kind: "request-done", requestId: released.requestId, ok: false, message: `switchover incomplete: ${this.s.peer} holds the role at epoch ${hb.epoch} but has not reported the VIP on its interface within ${this.s.handoffTimeoutMs} ms of the release (its watchdog repairs Keepalived; see mnha status on ${this.s.peer})`, to: this.s.peer, epoch: hb.epoch });
      return;
    }
    let why: string | null = null;
    if (hb && hb.epoch >= released.epoch && hb.role !== "receiving" && hb.role !== "holder" && hb.role !== "handing-off") why = `${this.s.peer} reports ${hb.role} at epoch ${hb.epoch} and does not hold it (it stopped waiting for the release before it came)`;
    else if (hb && hb.epoch > released.epoch) why = `${this.s.peer} reports epoch ${hb.epoch}, holder ${hb.holder ?? "none"}`;
    else if (now >= released.releasedAt + this.s.handoffTimeoutMs) why = `${this.s.peer} did not report holding it within ${this.s.handoffTimeoutMs} ms of the release`;
    if (why === null) return;
    this.released = null;
    const holderNow = this.role === "holder" ? `${this.s.self} (this node) holds it again` : hb && (hb.role === "holder" || hb.role === "handing-off") ? `${this.s.peer} holds it` : `nobody holds it now; ${this.s.self} takes it back by the standby rules once ${this.s.peer}'s lease has run out`;
    out.push({ kind: "event", type: "handoff-failed", message: `the VIP released to ${this.s.peer} at epoch ${released.epoch} was not taken: ${why}; ${holderNow}`, fields: { epoch: released.epoch, reason: why } });
    out.push({ kind: "request-done", requestId: released.requestId, ok: false, message: `switchover failed: ${this.s.peer} did not take the VIP (${why}); ${holderNow}`, to: null, epoch: this.epoch });
  }

  /**
   * Taker, after its window closed: the giver's release came late. The giver closed its gate
   * before it sent it, and cannot claim before the lease we reported while receiving has run
   * out (plus margin): until then, taking the VIP here is the handoff it offered, only later.
   */
  private onLateRelease(now: number, out: ElectionEffect[]): void {
    const late = this.lateRelease;
    if (!late) return;
    this.lateRelease = null;
    const problem =
      now >= late.until ? `it came ${Math.round(now - late.closedAt)} ms after this node's window closed, past the lease it reported`
      : this.resumedAt !== null && this.resumedAt > late.closedAt ? "this agent was paused since its window closed"
      : !this.eligible() ? `not eligible: ${this.reasons().join("; ")}`
      : this.role !== "standby" && this.role !== "claiming" ? `busy (${this.role})`
      : this.epoch >= late.epoch ? `epoch ${this.epoch} already known`
      : null;
    if (problem !== null) {
      out.push({ kind: "event", type: "handoff-failed", message: `late release from ${this.s.peer} at epoch ${late.epoch} not taken: ${problem}`, fields: { id: late.id, epoch: late.epoch, reason: problem } });
      return;
    }
    if (this.role === "claiming") this.abortClaim(`taking the VIP ${this.s.peer} released to this node`, out);
    out.push({ kind: "event", type: "handoff-accepted", message: `${this.s.peer} released the VIP ${Math.round(now - late.closedAt)} ms after this node's window closed: taking it at epoch ${late.epoch}`, fields: { id: late.id, epoch: late.epoch, lateMs: Math.round(now - late.closedAt) } });
    this.receiving = { id: late.id, epoch: late.epoch, startedAt: now };
    // The giver's gate is already closed: our Keepalived waits its master-down timer as BACKUP, then takes the VIP.
    this.openGate(now, out);
    this.completeHandoffAsTaker(now, out);
  }

  private completeHandoffAsTaker(now: number, out: ElectionEffect[]): void {
    const receiving = this.receiving;
    if (!receiving) return;
    this.receiving = null;
    this.tenureByClaim = this.takingWithoutPosition;
    this.epoch = Math.max(this.epoch, receiving.epoch);
    this.holder = this.s.self;
    out.push({ kind: "persist-epoch", epoch: this.epoch });
    this.setRole("holder", `took the VIP from ${this.s.peer} at epoch ${this.epoch}`, out);
    out.push({ kind: "event", type: "handoff-completed", message: `took the VIP from ${this.s.peer} at epoch ${this.epoch} in ${Math.round(now - receiving.startedAt)} ms`, fields: { from: this.s.peer, epoch: this.epoch } });
  }

  private abandonHandoff(reason: string, out: ElectionEffect[]): void {
    const handoff = this.handoff;
    if (!handoff) return;
    this.handoff = null;
    out.push({ kind: "event", type: "handoff-failed", message: `handoff to ${this.s.peer} abandoned: ${reason}`, fields: { id: handoff.id, epoch: handoff.epoch, reason } });
    if (handoff.requestId) out.push({ kind: "request-done", requestId: handoff.requestId, ok: false, message: `switchover abandoned: ${reason}`, to: null, epoch: this.epoch });
  }

  private onDemote(now: number, requestId: string, thenStop: boolean, out: ElectionEffect[]): void {
    const refuse = (message: string): void => {
      out.push({ kind: "request-done", requestId, ok: false, message, to: null, epoch: this.epoch });
    };
    if (this.role === "handing-off") return refuse("a switchover is already in progress");
    if (this.role !== "holder") return refuse(`this node (${this.s.self}) does not hold the VIP (role ${this.role}${this.holder ? `; holder is ${this.holder}` : ""})`);
    if (this.maintenance && !thenStop) return refuse(`this node (${this.s.self}) is in maintenance mode: the agent moves nothing; turn it off first (mnha maintenance off)`);
    const problem = this.peerProblem(now);
    if (problem) return refuse(`no healthy peer to take the VIP: ${problem}`);
    this.startHandoff(now, thenStop ? "agent stopping" : "operator demote", requestId, thenStop, out);
  }

  private onShutdown(now: number, requestId: string, out: ElectionEffect[]): void {
    if (this.role === "holder" && this.peerProblem(now) === null) {
      this.stopping = true;
      this.onDemote(now, requestId, true, out);
      return;
    }
    this.stopping = true;
    this.abandonHandoff("agent stopping", out);
    if (this.gateOpen) this.closeGate(out);
    if (this.holder === this.s.self) this.holder = null;
    this.receiving = null;
    this.setRole("stopping", "agent stopping", out);
    out.push({ kind: "request-done", requestId, ok: true, message: "stopped without a handoff", to: null, epoch: this.epoch });
  }

  /** Why the peer cannot take the VIP now, or null if it can. */
  private peerProblem(now: number): string | null {
    // A handoff offers the next epoch: at the protocol's bound there is none the peer would accept.
    if (this.epoch >= MAX_EPOCH) return `epoch ${this.epoch} is at the protocol's bound: no handoff can follow`;
    if (!this.peerAlive(now)) return `${this.s.peer} is not connected`;
    const hb = this.peer.heartbeat;
    if (!hb) return `${this.s.peer} has not reported its state yet`;
    if (!hb.eligible) return `${this.s.peer} is not eligible (${hb.reasons.join("; ") || "unhealthy"})`;
    if (hb.role !== "standby") return `${this.s.peer} is ${hb.role}`;
    return null;
  }

  private startHandoff(now: number, reason: string, requestId: string | null, thenStop: boolean, out: ElectionEffect[]): void {
    const id = `${this.s.self}-${this.epoch + 1}-${++this.handoffSeq}`.slice(-64);
    this.handoff = { id, epoch: this.epoch + 1, startedAt: now, requestId, reason, thenStop };
    this.setRole("handing-off", reason, out);
    // Read-only before the offer leaves: the host attaches the final gtid_binlog_pos to it.
    this.dbGoReadOnly(out);
    out.push({ kind: "send", message: { type: "handoff-offer", id, epoch: this.epoch + 1, from: this.s.self, to: this.s.peer, reason: reason.length > 200 ? `${reason.slice(0, 197)}...` : reason } });
    out.push({ kind: "event", type: "handoff-offered", message: `offering the VIP to ${this.s.peer} at epoch ${this.epoch + 1}: ${reason}`, fields: { id, epoch: this.epoch + 1, reason } });
  }

  private onArpResult(now: number, result: { probeId: number; occupied: boolean; detail: string }, out: ElectionEffect[]): void {
    if (!this.probe || this.probe.id !== result.probeId || this.role !== "claiming") return;
    if (this.resumedAt !== null && this.resumedAt > this.probe.startedAt) {
      // The probe ran before a pause of this agent: "nobody answered" then says nothing about
      // now (the old holder may be back). Drop it; the standby rules probe again at once.
      return this.abortClaim("the ARP probe predates a pause of this agent", out);
    }
    this.probe = null;
    this.probeClearedAt = null;
    if (result.occupied) {
      this.lastProbeBlockedAt = now;
      this.setRole("standby", "claim blocked by ARP guard", out);
      out.push({ kind: "event", type: "claim-blocked", message: `someone answers for the VIP (${result.detail}); not claiming`, fields: { detail: result.detail } });
      return;
    }
    this.lastProbeBlockedAt = null;
    const blocker = this.probeBlocker(now);
    if (blocker) return this.abortClaim(blocker, out);
    if (this.claimBlocker(now, this.gateLeadMs()) !== null) {
      // Nobody answers, but the gate may open only once the peer is lost and one VRRP timer
      // before its lease runs out: wait for that (evaluate() opens it; the wake timer brings us there).
      this.probeClearedAt = now;
      return;
    }
    if (!this.witnessAllowsClaim(now, out)) {
      // Nobody answers; the witness's grant is on its way (or the claim ends when it is denied).
      this.probeClearedAt = now;
      return;
    }
    this.becomeHolderByClaim(now, out);
  }

  /** How long before the peer's lease deadline (plus margin) the gate may open. */
  private gateLeadMs(): number {
    return Math.max(0, this.s.keepalivedDownTimerMs ?? 0);
  }

  /** How long before that deadline a claim's ARP probe may start (it must finish before the gate opens). */
  private probeLeadMs(): number {
    return this.gateLeadMs() + (this.s.arpGuard ? Math.max(0, this.s.arpProbeTimeoutMs ?? 0) : 0);
  }

  /**
   * How long before a silent peer counts as lost a claim's ARP probe may start: the probe
   * then runs while the last heartbeat is still missed, not after it. Only the probe moves;
   * the gate still waits for the peer to be lost, and a heartbeat that comes in the meantime
   * ends the claim as it always did. At most one heartbeat interval and the probe's own
   * time, and never before two heartbeats were missed (a single late one starts nothing).
   */
  private peerSuspectLeadMs(): number {
    if (!this.s.arpGuard) return 0;
    const hb = this.s.heartbeatIntervalMs;
    return Math.max(0, Math.min(this.s.arpProbeTimeoutMs ?? 0, hb, this.s.peerLossMs - 2 * hb));
  }

  /**
   * Two holders that cannot talk (IP between the MNs cut while ARP flows, both started at
   * once) cannot compare epochs, but both see the same two MACs: the lower keeps the VIP,
   * the higher releases at once and goes back to the standby rules, whose ARP guard then
   * keeps it from claiming while the other answers. Without this, the split lasts as long
   * as the partition.
   */
  private onDuplicateCheck(now: number, check: { ownMac: string; otherMacs: string[]; detail: string }, out: ElectionEffect[]): void {
    if ((this.role !== "holder" && this.role !== "handing-off") || !this.gateOpen) {
      this.duplicateSeen = false;
      return;
    }
    const own = check.ownMac.toLowerCase();
    const others = [...new Set(check.otherMacs.map((m) => m.toLowerCase()))].filter((m) => m !== own).sort();
    if (others.length === 0) {
      if (this.duplicateSeen) {
        this.duplicateSeen = false;
        // The other holder is gone; clients that followed its ARP answers must come back to us.
        out.push({ kind: "announce-vip" });
        out.push({ kind: "event", type: "duplicate-cleared", message: "no other MAC answers for the VIP any more; announcing it again", fields: { ownMac: own } });
      }
      return;
    }
    const lowest = others[0] as string;
    if (own < lowest) {
      if (!this.duplicateSeen) {
        out.push({ kind: "event", type: "duplicate-found", message: `another MAC answers for the VIP (${others.join(", ")}); this node's MAC ${own} is lower: keeping it`, fields: { ownMac: own, otherMacs: others, detail: check.detail, kept: true } });
      }
      this.duplicateSeen = true;
      return;
    }
    out.push({ kind: "event", type: "duplicate-found", message: `another MAC answers for the VIP (${others.join(", ")}); ${lowest} is lower than this node's ${own}: releasing`, fields: { ownMac: own, otherMacs: others, detail: check.detail, kept: false } });
    this.duplicateSeen = false;
    this.closeGate(out);
    if (this.holder === this.s.self) this.holder = null;
    this.abandonHandoff("another node answers for the VIP", out);
    // Back to the standby rules, which probe before any claim and find the other holder.
    this.lastProbeBlockedAt = now;
    this.setRole("standby", `released the VIP: ${lowest} also answers for it and keeps it`, out);
    out.push({ kind: "event", type: "duplicate-yielded", message: `released the VIP to the holder with MAC ${lowest}`, fields: { ownMac: own, keptBy: lowest } });
  }

  private becomeHolderByClaim(now: number, out: ElectionEffect[]): void {
    this.tenureByClaim = true;
    const behind = this.dbTakeoverProblem();
    if (behind !== null) {
      out.push({ kind: "event", type: "db-takeover-behind", message: `taking the VIP although ${behind}: the holder is gone and availability comes first (db.availabilityOverCatchUp)`, fields: { problem: behind, lagSeconds: this.dbSummary?.lagSeconds ?? null, gtidCurrentPos: this.dbSummary?.gtidCurrentPos ?? null } });
    }
    this.epoch += 1;
    this.holder = this.s.self;
    out.push({ kind: "persist-epoch", epoch: this.epoch });
    this.openGate(now, out);
    this.setRole("holder", `claimed the VIP at epoch ${this.epoch}`, out);
  }

  private abortClaim(reason: string, out: ElectionEffect[]): void {
    this.probe = null;
    this.probeClearedAt = null;
    if (this.role === "claiming") this.setRole("standby", `claim aborted: ${reason}`, out);
    out.push({ kind: "event", type: "claim-aborted", message: `claim aborted: ${reason}`, fields: { reason } });
  }

  /**
   * Why this node must not claim now, or null when a claim is allowed. `leadMs`: how long
   * before the lost peer's lease deadline (plus margin) the step being judged may happen
   * (starting the probe, opening the gate: see keepalivedDownTimerMs). `peerLossLeadMs`: the
   * same for the instant the peer counts as lost.
   */
  /**
   * Why a claim's ARP probe must not start, or go on, now: null when the rules allow it for
   * the peer as it is, or for the peer as it will be if it stays silent peerSuspectLeadMs
   * longer (never right after a pause of this agent: queued news must be read first).
   */
  private probeBlocker(now: number): string | null {
    const blocker = this.claimBlocker(now, this.s.arpGuard ? this.probeLeadMs() : this.gateLeadMs());
    if (blocker === null) return null;
    const suspectMs = this.peerSuspectLeadMs();
    if (suspectMs <= 0 || !this.peerAlive(now) || this.peerAlive(now + suspectMs)) return blocker;
    if (this.resumedAt !== null && now < this.resumedAt + this.s.peerLossMs) return blocker;
    return this.claimBlocker(now, this.probeLeadMs(), suspectMs);
  }

  private claimBlocker(now: number, leadMs = 0, peerLossLeadMs = 0): string | null {
    // A claim takes the next epoch: at the protocol's bound there is none the peer would accept.
    if (this.epoch >= MAX_EPOCH) return `epoch ${this.epoch} is at the protocol's bound: no claim can follow`;
    if (!this.eligible() && !this.dbOnlyBehindWithHolderGone(now)) return `not eligible: ${this.reasons().join("; ")}`;
    const hb = this.peer.heartbeat;
    // peerLossLeadMs: judge a peer that will count as lost this soon (no news by then) as lost
    // already; only for starting the probe (peerSuspectLeadMs), never for opening the gate.
    if (this.peerAlive(now + peerLossLeadMs)) {
      // Heartbeats that queued up while we were frozen are old news that looks fresh: wait a
      // peer-loss interval for current news, or for the peer to turn out lost.
      if (this.resumedAt !== null && now < this.resumedAt + this.s.peerLossMs) return "woke from a pause; waiting for current news of the peer";
      if (!hb) return "waiting for the peer's state";
      // The peer claims the role but nobody has served the VIP for too long: claim through the
      // ARP guard at a higher epoch; the peer steps down when it hears it.
      if (this.peerVipUnanswered(now)) return null;
      if (hb.role === "holder" || hb.role === "handing-off" || hb.role === "receiving") return `${this.s.peer} is ${hb.role}`;
      // Both claiming at once: the lower name goes on, the other yields (never both yield).
      if (hb.role === "claiming" && this.s.peer < this.s.self) return `${this.s.peer} is claiming`;
      if (hb.holder === this.s.peer && hb.epoch >= this.epoch && hb.leaseRemainingMs > 0) return `${this.s.peer} holds the VIP`;
      // Both eligible and nobody holds: the lower name goes first, so the two never race.
      if (hb.eligible && this.s.peer < this.s.self) return `${this.s.peer} goes first`;
      if (now < this.peer.leaseDeadline) return `${this.s.peer}'s lease has not run out`;
      return null;
    }
    if (now < this.startedAt + this.s.startupGraceMs) return "waiting for the peer after start";
    if (now < this.peer.leaseDeadline + this.s.takeoverMarginMs - leadMs) return `${this.s.peer}'s lease has not run out`;
    return null;
  }

  private evaluate(now: number, out: ElectionEffect[]): void {
    switch (this.role) {
      case "starting": {
        // Leave the start-up wait once the peer has spoken or the grace period is over.
        if (this.peer.heartbeat !== null || now >= this.startedAt + this.s.startupGraceMs) this.setRole("standby", "start-up wait over", out);
        if (this.role === "starting") return;
        this.evaluate(now, out);
        return;
      }
      case "standby": {
        if (this.lastProbeBlockedAt !== null && now < this.lastProbeBlockedAt + this.s.arpRetryMs) return;
        if (this.witnessDeniedUntil !== null && now < this.witnessDeniedUntil) return;
        if (this.probeBlocker(now) !== null) return;
        if (this.peerVipUnanswered(now) && !this.peerVipAnnounced) {
          this.peerVipAnnounced = true;
          const missingMs = Math.round(now - (this.peerVipMissingSince ?? now));
          out.push({ kind: "event", type: "peer-vip-unanswered", message: `${this.s.peer} holds the role but has not served the VIP for ${missingMs} ms; claiming it through the ARP guard`, fields: { peer: this.s.peer, missingMs } });
        }
        if (this.s.arpGuard) {
          this.probe = { id: this.nextProbeId++, startedAt: now };
          this.setRole("claiming", "holder gone; checking nobody answers for the VIP", out);
          const peerState = !this.peerAlive(now) ? "lost" : this.peerVipUnanswered(now) ? "cannot hold it" : `silent for ${Math.round(now - (this.peer.lastHeardAt ?? now))} ms`;
          out.push({ kind: "event", type: "claim-started", message: `claiming the VIP (peer ${peerState})`, fields: { probeId: this.probe.id } });
          out.push({ kind: "arp-probe", probeId: this.probe.id });
          // Ask the witness beside the probe: its answer is usually here before the gate may open.
          if (this.s.witness && !this.witnessGrantHeld(now)) this.requestWitness(now, this.epoch + 1, out);
        } else if (this.witnessAllowsClaim(now, out)) {
          this.becomeHolderByClaim(now, out);
        }
        return;
      }
      case "claiming": {
        const blocker = this.probeBlocker(now);
        if (blocker) {
          this.abortClaim(blocker, out);
          return;
        }
        if (this.probeClearedAt !== null) {
          if (this.resumedAt !== null && this.resumedAt > this.probeClearedAt) {
            this.abortClaim("the ARP probe predates a pause of this agent", out);
            return;
          }
          if (this.claimBlocker(now, this.gateLeadMs()) === null && this.witnessAllowsClaim(now, out)) {
            this.probeClearedAt = null;
            this.becomeHolderByClaim(now, out);
          }
        }
        return;
      }
      case "holder": {
        if (this.watchHolderVip(now, out)) return;
        if (this.eligible()) {
          this.degradedAnnounced = false;
          return;
        }
        if (this.maintenance) {
          // Act on nothing, except the safety rule: cut off from both the peer and the
          // gateway, we may be the isolated one and must not keep the VIP beside a new holder.
          if (!this.gatewayReachable && !this.peerAlive(now)) {
            this.closeGate(out);
            this.holder = null;
            this.setRole("standby", "lost both the peer and the gateway (in maintenance mode)", out);
            out.push({ kind: "event", type: "stepped-down", message: "gave up the VIP in maintenance mode: lost both the peer and the gateway", fields: { maintenance: true } });
            return;
          }
          if (!this.maintenanceAnnounced) {
            this.maintenanceAnnounced = true;
            const health = this.reasons().filter((r) => r !== "maintenance mode");
            out.push({ kind: "event", type: "holding-in-maintenance", message: `keeping the VIP in maintenance mode${health.length > 0 ? ` although ${health.join("; ")}` : ""}`, fields: { reasons: health } });
          }
          return;
        }
        const peerReady = this.peerProblem(now) === null;
        if (peerReady) {
          this.startHandoff(now, `this node is not eligible: ${this.reasons().join("; ")}`, null, false, out);
          return;
        }
        if (this.nodeStopped) {
          // mnha stop-node -stopvip with no healthy peer: the operator chose to give the VIP up.
          this.closeGate(out);
          this.holder = null;
          this.setRole("standby", "node stopped by the operator; no healthy peer to take the VIP", out);
          out.push({ kind: "event", type: "stepped-down", message: "gave up the VIP: node stopped by the operator (mnha stop-node -stopvip) with no healthy peer", fields: { nodeStopped: true } });
          return;
        }
        if (!this.gatewayReachable && !this.peerAlive(now)) {
          // Cut off from both the peer and the gateway: we may be the isolated one.
          this.closeGate(out);
          this.holder = null;
          this.setRole("standby", "lost both the peer and the gateway", out);
          out.push({ kind: "event", type: "stepped-down", message: "gave up the VIP: lost both the peer and the gateway", fields: {} });
          return;
        }
        if (!this.degradedAnnounced) {
          this.degradedAnnounced = true;
          out.push({ kind: "event", type: "holding-degraded", message: `keeping the VIP although not eligible (${this.reasons().join("; ")}): no eligible peer to take it`, fields: { reasons: this.reasons() } });
        }
        return;
      }
      case "handing-off": {
        const handoff = this.handoff;
        if (!handoff) {
          this.setRole("holder", "no handoff pending", out);
          return;
        }
        if (!this.peerAlive(now)) {
          this.abandonHandoff(`${this.s.peer} lost during the handoff`, out);
          this.setRole("holder", "handoff abandoned", out);
          this.evaluate(now, out);
        } else if (now >= handoff.startedAt + this.handoffTimeoutMs()) {
          this.abandonHandoff(`no answer from ${this.s.peer} within ${this.handoffTimeoutMs()} ms`, out);
          this.setRole("holder", "handoff timed out", out);
        }
        return;
      }
      case "receiving": {
        const receiving = this.receiving;
        // Unconfirmed within the window, or the holder lost: it may still hold the VIP where
        // our Keepalived cannot hear it; close the gate before our master-down timer runs out.
        const window = this.receiveWindowMs();
        const peerLost = !this.peerAlive(now);
        if (!receiving || now >= receiving.startedAt + window || !this.eligible() || peerLost) {
          // The holder never confirmed: close our gate again; the normal rules take over.
          // A release still on its way may yet make us holder, while the lease we reported lasts.
          // (Our first heartbeat while receiving reported at least leaseMs from its start, and it
          // left before our "ready": the giver had it before it could release.)
          const until = receiving ? receiving.startedAt + this.s.leaseMs - this.s.takeoverMarginMs : now;
          this.lateRelease = receiving && this.eligible() && now < until ? { id: receiving.id, epoch: receiving.epoch, closedAt: now, until } : null;
          this.closeGate(out);
          this.receiving = null;
          const why = peerLost ? `${this.s.peer} lost before it confirmed the handoff` : `the holder did not confirm the handoff within ${window} ms`;
          this.setRole("standby", peerLost ? "handoff not confirmed: peer lost" : "handoff not confirmed in time", out);
          out.push({ kind: "event", type: "handoff-failed", message: why, fields: { peerLost, windowMs: window } });
        }
        return;
      }
      case "stopping":
        if (this.handoff === null && this.gateOpen) this.closeGate(out);
        return;
    }
  }

  // ---- the database follows the VIP ------------------------------------------------------
  // Ordering rules (docs/database.md): read-only before the gate closes and before a handoff
  // offer leaves; writable only while this node holds the role, its gate is open and the VIP
  // has been seen on its interface since the gate opened. So both are never writable at once.

  private dbGoReadOnly(out: ElectionEffect[]): void {
    if (!this.s.db || this.dbWritable === false) return;
    this.dbWritable = false;
    out.push({ kind: "db-read-only", on: true });
  }

  private onVipObservedForDb(present: boolean, out: ElectionEffect[]): void {
    if (!this.s.db) return;
    if (present && this.gateOpen) {
      this.vipOwnSinceGateOpened = true;
    } else if (!present) {
      // The VIP left us (Keepalived, the lease guard, a hand): writes must stop here too.
      this.vipOwnSinceGateOpened = false;
      this.dbGoReadOnly(out);
    }
  }

  /**
   * The server does not keep what was asked (a restarted mariadbd comes up writable unless
   * my.cnf says read_only): when the poll shows the other mode, ask again.
   */
  private reassertDbMode(summary: DbSummary, out: ElectionEffect[]): void {
    if (!this.s.db || !summary.alive || summary.readOnly === null) return;
    if (this.dbWritable === false && !summary.readOnly) {
      this.dbWritable = null;
      this.dbGoReadOnly(out);
    } else if (this.dbWritable === true && summary.readOnly) {
      // (A stale poll read before the switch lands here too: asking again is harmless.)
      this.dbWritable = null;
    }
  }

  /** After each step: writable exactly when the rules allow it (read-only was already ordered before any gate close). */
  private reconcileDbWritable(out: ElectionEffect[]): void {
    if (!this.s.db) return;
    const mayWrite = this.role === "holder" && this.gateOpen && this.holder === this.s.self && this.vipOwnSinceGateOpened;
    if (mayWrite && this.dbWritable !== true) {
      this.dbWritable = true;
      const hb = this.peer.heartbeat;
      const afterClaim = this.tenureByClaim ? { peerGtidBinlogPos: hb?.db?.gtidBinlogPos ?? null, peerSemiSyncActive: hb?.db?.semiSyncMasterActive ?? null, lagSeconds: this.dbSummary?.lagSeconds ?? null } : null;
      out.push({ kind: "db-read-only", on: false, afterClaim });
    } else if (!mayWrite) {
      this.dbGoReadOnly(out);
    }
  }

  private onDbCaughtUp(now: number, result: { id: string; reached: boolean; detail: string }, out: ElectionEffect[]): void {
    const pending = this.catchingUp;
    if (!pending || pending.offer.id !== result.id) return;
    if (!result.reached) {
      this.catchingUp = null;
      const reason = `database not caught up within ${this.s.db?.catchUpTimeoutMs ?? 0} ms: ${result.detail}`;
      out.push({ kind: "event", type: "db-not-caught-up", message: `refusing the VIP from ${pending.offer.from}: ${reason}`, fields: { id: result.id, detail: result.detail, waitedMs: Math.round(now - pending.startedAt) } });
      out.push({ kind: "send", message: { type: "handoff-reject", id: pending.offer.id, epoch: pending.offer.epoch, reason: reason.length > 200 ? `${reason.slice(0, 197)}...` : reason } });
      return;
    }
    out.push({ kind: "event", type: "db-catch-up", message: `caught up with ${pending.offer.from} in ${Math.round(now - pending.startedAt)} ms: ${result.detail}`, fields: { id: result.id, waitedMs: Math.round(now - pending.startedAt) } });
    // The ordinary checks again (eligible, not busy, epoch), now that the data is here.
    this.onHandoffOffer(now, pending.offer, out);
  }

  /** Why this node must never take the VIP (an interrupted seed), or null. */
  private dbSeedProblem(): string | null {
    if (!this.s.db || !this.dbSummary?.seedIncomplete) return null;
    return "database seed incomplete (run `mnha db seed` again)";
  }

  /** Why this standby may not take the VIP from a live holder (replica broken or behind), or null. */
  private dbTakeoverProblem(): string | null {
    const db = this.s.db;
    // The holder's own replica (from the standby) says nothing about the data it serves.
    if (!db || this.role === "holder" || this.role === "handing-off") return null;
    const summary = this.dbSummary;
    if (!summary) return "database state not known yet";
    // The replica cannot fetch from a holder whose own database is down: that says nothing
    // against this copy (the SQL thread must still be sound).
    const holderDbDown = this.peer.heartbeat?.db?.alive === false;
    const onlyFetchingBroken = summary.slaveSqlRunning === "Yes" && (summary.lastSqlError ?? null) === null;
    // Never papered over: only `mnha db resync` clears it (the finding is kept on disk).
    if (summary.errant) return `database has errant transactions (repair: mnha db resync on this node): ${summary.errant}`;
    if (summary.broken !== null && !(holderDbDown && onlyFetchingBroken)) return `database replica broken: ${summary.broken}`;
    if (summary.lagSeconds !== null && summary.lagSeconds * 1000 > db.maxLagForFailoverMs) return `database ${summary.lagSeconds} s behind (more than db.maxLagForFailoverMs ${db.maxLagForFailoverMs} ms)`;
    return null;
  }

  /** The holder is gone and only the database's lag or replica stands in the way: availability wins when configured. */
  private dbOnlyBehindWithHolderGone(now: number): boolean {
    if (!this.s.db?.availabilityOverCatchUp || this.peerAlive(now) || this.dbTakeoverProblem() === null) return false;
    return this.servicesHealthy && this.gatewayReachable && !this.maintenance && !this.stopping && this.vipFaultUntil === null && this.dbSeedProblem() === null;
  }

  // ---- the witness ---------------------------------------------------------------------
  // A grant is (node, epoch, expiry at the witness). Ours counts here from the instant the
  // request left, shortened by the drift bound, so it ends here before it ends at the witness;
  // and we act on it only until one agent lease before that end, so that even an agent frozen
  // right after its last look has lost the VIP (lease guard) before the witness can grant it
  // to the peer. Rule: the witness's failure never takes the VIP from a holder that still
  // reaches its peer; losing both means giving the VIP up.

  private witnessGrantHeld(now: number): boolean {
    return now < this.witnessGrantUntil - this.s.leaseMs;
  }

  private witnessView(now: number): WitnessView {
    const a = this.witnessAnswer;
    return {
      reachable: a?.reachable ?? false,
      grantHeld: this.witnessGrantHeld(now),
      grantRemainingMs: Number.isFinite(this.witnessGrantUntil) ? Math.max(0, Math.floor(this.witnessGrantUntil - this.s.leaseMs - now)) : 0,
      holder: a?.holder ?? null,
      holderEpoch: a?.holderEpoch ?? 0,
      holderRemainingMs: a ? Math.max(0, Math.floor(a.remainingMs - (now - a.at))) : 0,
      answeredMsAgo: a?.reachable ? Math.round(now - a.at) : null,
      lastError: a?.error ?? null,
    };
  }

  /** One request at a time (a new one only once the last is a heartbeat interval old). */
  private requestWitness(now: number, epoch: number, out: ElectionEffect[]): void {
    const witness = this.s.witness;
    if (!witness) return;
    let newest = Number.NEGATIVE_INFINITY;
    for (const [id, sentAt] of this.witnessRequests) {
      if (now - sentAt > 10 * witness.leaseMs) this.witnessRequests.delete(id);
      else newest = Math.max(newest, sentAt);
    }
    if (now - newest < this.s.heartbeatIntervalMs) return;
    const requestId = this.nextWitnessRequestId++;
    this.witnessRequests.set(requestId, now);
    out.push({ kind: "witness-request", requestId, epoch: Math.min(epoch, MAX_EPOCH), leaseMs: witness.leaseMs });
  }

  /** A claim may go on (gate open, epoch up) only with the witness's grant; meanwhile it is asked for. */
  private witnessAllowsClaim(now: number, out: ElectionEffect[]): boolean {
    if (!this.s.witness || this.witnessGrantHeld(now)) return true;
    this.requestWitness(now, this.epoch + 1, out);
    return false;
  }

  private onWitnessGrant(now: number, answer: Extract<ElectionInput, { kind: "witness-grant" }>, out: ElectionEffect[]): void {
    const sentAt = this.witnessRequests.get(answer.requestId);
    if (!this.s.witness || sentAt === undefined) return;
    this.witnessRequests.delete(answer.requestId);
    this.witnessAnswer = { at: now, reachable: true, holder: answer.holder, holderEpoch: answer.holderEpoch, remainingMs: answer.remainingMs, error: null };
    if (answer.granted && answer.holder === this.s.self) {
      const until = sentAt + answer.validMs * (1 - this.s.maxClockDrift);
      this.witnessGrantUntil = Math.max(this.witnessGrantUntil, until);
      if (this.witnessLapseAnnounced && this.witnessGrantHeld(now)) {
        this.witnessLapseAnnounced = false;
        out.push({ kind: "event", type: "witness-regained", message: "the witness grants this node the VIP again", fields: { epoch: answer.holderEpoch } });
      }
      return;
    }
    if (this.role === "claiming" || this.role === "standby") this.witnessDenied(now, `the witness grants the VIP to ${answer.holder ?? "nobody yet"} (${answer.remainingMs} ms left)`, Math.max(this.s.heartbeatIntervalMs, Math.min(this.s.arpRetryMs, answer.remainingMs)), out);
  }

  private onWitnessLost(now: number, lost: { requestId: number; reason: string }, out: ElectionEffect[]): void {
    if (!this.s.witness || !this.witnessRequests.delete(lost.requestId)) return;
    const reason = lost.reason.length > 200 ? `${lost.reason.slice(0, 197)}...` : lost.reason;
    this.witnessAnswer = { at: this.witnessAnswer?.at ?? now, reachable: false, holder: this.witnessAnswer?.holder ?? null, holderEpoch: this.witnessAnswer?.holderEpoch ?? 0, remainingMs: 0, error: reason };
    if (this.role === "claiming" || this.role === "standby") this.witnessDenied(now, `the witness is unreachable: ${reason}`, this.s.arpRetryMs, out);
  }

  private witnessDenied(now: number, why: string, retryMs: number, out: ElectionEffect[]): void {
    this.witnessDeniedUntil = now + retryMs;
    if (this.role === "claiming") this.abortClaim(why, out);
    out.push({ kind: "event", type: "witness-denied", message: `not claiming: ${why}`, fields: { retryMs: Math.round(retryMs) } });
  }

  /** The rule, applied before every evaluation. */
  private checkWitness(now: number, out: ElectionEffect[]): void {
    if (!this.s.witness) return;
    if (this.witnessDeniedUntil !== null && now >= this.witnessDeniedUntil) this.witnessDeniedUntil = null;
    const held = this.witnessGrantHeld(now);
    // A taker's gate waits until it holds the role (the giver's gate is closed by then) and the grant.
    if (this.gateAwaitingWitness && !this.gateOpen && this.role === "holder") {
      if (held) this.openGate(now, out);
      else this.requestWitness(now, this.epoch, out);
      return;
    }
    if (!this.gateOpen || held) return;
    const peerAlive = this.peerAlive(now);
    const peerRole = peerAlive ? this.peer.heartbeat?.role : undefined;
    const a = this.witnessAnswer;
    const peerGranted = a !== null && a.reachable && a.holder === this.s.peer && now - a.at < a.remainingMs;
    if (!peerAlive || peerGranted || peerRole === "claiming") {
      const why = !peerAlive ? "lost both the peer and the witness's grant" : peerGranted ? `the witness grants the VIP to ${this.s.peer}` : `${this.s.peer} is claiming and this node has no grant from the witness`;
      this.closeGate(out);
      if (this.holder === this.s.self) this.holder = null;
      this.abandonHandoff(why, out);
      this.receiving = null;
      this.setRole("standby", why, out);
      out.push({ kind: "event", type: "stepped-down", message: `gave up the VIP: ${why}`, fields: { witness: true, peerAlive } });
      return;
    }
    if (!this.witnessLapseAnnounced) {
      this.witnessLapseAnnounced = true;
      out.push({ kind: "event", type: "witness-lapsed", message: `no grant from the witness (${a?.error ?? "not renewed"}); keeping the VIP: ${this.s.peer} is reachable`, fields: { error: a?.error ?? null } });
    }
  }

  private handoffTimeoutMs(): number {
    return this.s.handoffTimeoutMs + (this.s.db?.catchUpTimeoutMs ?? 0);
  }

  private watchdog(): { vipRepairAfterMs: number; vipGiveUpAfterMs: number; peerVipUnansweredMs: number } {
    return {
      vipRepairAfterMs: this.s.vipRepairAfterMs ?? WATCHDOG_DEFAULTS.vipRepairAfterMs,
      vipGiveUpAfterMs: this.s.vipGiveUpAfterMs ?? WATCHDOG_DEFAULTS.vipGiveUpAfterMs,
      peerVipUnansweredMs: this.s.peerVipUnansweredMs ?? WATCHDOG_DEFAULTS.peerVipUnansweredMs,
    };
  }

  /**
   * The holder's side of the watchdog: the VIP must be on our interface. Missing past the
   * first bound: ask the host to repair; past the second: give the role up (handoff if the
   * peer is ready, else step down) and stay ineligible for a while so the peer goes first.
   * Returns true when it changed the role.
   */
  private watchHolderVip(now: number, out: ElectionEffect[]): boolean {
    if (this.vipPresent === null) return false;
    if (this.vipPresent) {
      if (this.vipMissingSince !== null && this.vipRepairRequested) {
        out.push({ kind: "event", type: "vip-restored", message: `the VIP is served again after ${Math.round(now - this.vipMissingSince)} ms`, fields: { missingMs: Math.round(now - this.vipMissingSince) } });
      }
      this.vipMissingSince = null;
      this.vipRepairRequested = false;
      return false;
    }
    if (this.vipMissingSince === null) {
      this.vipMissingSince = now;
      return false;
    }
    const missingMs = Math.round(now - this.vipMissingSince);
    const bounds = this.watchdog();
    if (missingMs >= bounds.vipGiveUpAfterMs) {
      const peerReady = this.peerProblem(now) === null;
      out.push({ kind: "event", type: "vip-gave-up", message: `the VIP is still not served after ${missingMs} ms: giving the role up (${peerReady ? `handoff to ${this.s.peer}` : "stepping down"})`, fields: { missingMs, handoff: peerReady } });
      // Ineligible for a while: the peer may claim (it sees us not eligible), and we do not claim straight back.
      this.vipFaultUntil = now + bounds.vipGiveUpAfterMs;
      if (peerReady) {
        this.startHandoff(now, `the VIP is not served here (missing ${missingMs} ms)`, null, false, out);
      } else {
        this.closeGate(out);
        this.holder = null;
        this.setRole("standby", "the VIP is not served here", out);
        out.push({ kind: "event", type: "stepped-down", message: `gave up the VIP: not served for ${missingMs} ms`, fields: { missingMs } });
      }
      return true;
    }
    if (missingMs >= bounds.vipRepairAfterMs && !this.vipRepairRequested) {
      this.vipRepairRequested = true;
      const reason = `this node holds the role but the VIP has not been on its interface for ${missingMs} ms`;
      out.push({ kind: "event", type: "vip-repair", message: `repairing Keepalived: ${reason}`, fields: { missingMs } });
      out.push({ kind: "repair-keepalived", reason });
    }
    return false;
  }

  /** Follows the peer's reports: it claims the role (holder) but has no VIP on its interface. */
  private trackPeerVip(now: number, hb: Heartbeat, previousHeardAt: number | null): void {
    const claimsWithoutVip = hb.role === "holder" && hb.holder === this.s.peer && !hb.vipPresent;
    // One unbroken stretch of one tenure: reports from an earlier tenure (another epoch) or
    // from before a silence longer than the peer-loss time do not count.
    const continuous = this.peerVipMissingSince !== null && this.peerVipMissingEpoch === hb.epoch && previousHeardAt !== null && now - previousHeardAt < this.s.peerLossMs;
    if (!claimsWithoutVip) {
      this.peerVipMissingSince = null;
      this.peerVipAnnounced = false;
    } else if (!continuous) {
      this.peerVipMissingSince = now;
      this.peerVipMissingEpoch = hb.epoch;
      this.peerVipAnnounced = false;
    }
  }

  /** The peer has claimed the role without serving the VIP past the bound, and we do not serve it either. */
  private peerVipUnanswered(now: number): boolean {
    if (this.peerVipMissingSince === null || this.vipPresent === true || !this.peerAlive(now)) return false;
    return now - this.peerVipMissingSince >= this.watchdog().peerVipUnansweredMs;
  }

  private receiveWindowMs(): number {
    return Math.min(this.s.handoffTimeoutMs, this.s.receiveWindowMs ?? 2 * this.s.heartbeatIntervalMs);
  }

  private openGate(now: number, out: ElectionEffect[]): void {
    if (!this.gateOpen && this.s.witness && !this.witnessGrantHeld(now)) {
      // With a witness, no gate opens without its grant: it opens when the grant comes (checkWitness).
      this.gateAwaitingWitness = true;
      this.requestWitness(now, this.receiving?.epoch ?? this.epoch, out);
      return;
    }
    this.gateAwaitingWitness = false;
    if (!this.gateOpen) {
      this.gateOpen = true;
      this.vipOwnSinceGateOpened = false;
      this.leaseValidUntil = Math.max(this.leaseValidUntil, now + this.s.leaseMs);
      out.push({ kind: "set-gate", open: true });
    }
  }

  private closeGate(out: ElectionEffect[]): void {
    this.gateAwaitingWitness = false;
    if (this.gateOpen) {
      // The database goes read-only before the VIP may leave (the peer may become writable).
      this.dbGoReadOnly(out);
      this.vipOwnSinceGateOpened = false;
      this.gateOpen = false;
      out.push({ kind: "set-gate", open: false });
      if (this.s.witness && Number.isFinite(this.witnessGrantUntil)) {
        // After the gate: the peer may get the grant as soon as the witness hears this.
        this.witnessGrantUntil = Number.NEGATIVE_INFINITY;
        out.push({ kind: "witness-release", epoch: this.epoch });
      }
    }
  }

  private setRole(role: Role, reason: string, out: ElectionEffect[]): void {
    if (this.role === role) return;
    const from = this.role;
    if (this.stopping && role !== "stopping" && this.handoff === null && role !== "handing-off") {
      role = "stopping";
      if (from === role) return;
    }
    this.role = role;
    if (role !== "holder" && role !== "handing-off" && role !== "receiving") this.gateAwaitingWitness = false;
    if (role !== "holder" && role !== "handing-off") {
      this.vipMissingSince = null;
      this.vipRepairRequested = false;
    }
    out.push({ kind: "event", type: "role-changed", message: `${from} -> ${role}: ${reason}`, fields: { from, to: role, reason, epoch: this.epoch } });
    out.push({ kind: "heartbeat-now" });
  }
}

/** The database summary as a heartbeat carries it (bounded strings). */
function heartbeatDb(summary: DbSummary): NonNullable<Heartbeat["db"]> {
  const cut = (text: string | null, max: number): string | null => (text === null || text.length <= max ? text : `${text.slice(0, max - 3)}...`);
  return {
    alive: summary.alive,
    readOnly: summary.readOnly,
    broken: cut(summary.broken, 200),
    seedIncomplete: summary.seedIncomplete,
    lagSeconds: summary.lagSeconds,
    gtidBinlogPos: cut(summary.gtidBinlogPos, 1000),
    gtidCurrentPos: cut(summary.gtidCurrentPos, 1000),
    semiSyncMasterActive: summary.semiSyncMasterActive,
    slaveIoRunning: cut(summary.slaveIoRunning ?? null, 16),
    slaveSqlRunning: cut(summary.slaveSqlRunning ?? null, 16),
    lastIoError: cut(summary.lastIoError ?? null, 200),
    lastSqlError: cut(summary.lastSqlError ?? null, 200),
  };
}

/** The earlier of `best` and `candidate`, counting only a candidate after `now`. */
function earliestAfter(now: number, best: number, candidate: number): number {
  return candidate > now && candidate < best ? candidate : best;
}
