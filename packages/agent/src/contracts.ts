/**
 * The contracts between the daemon and its adapters. Each adapter owns one kind of IO,
 * has one start/stop lifecycle, and reports what it sees through callbacks; the daemon
 * turns those reports into events for the pure cores and carries out their effects.
 */
import type { KeepalivedState, LinkMessage, Role } from "@mnha/protocol";
import type { PairSettingsStatus } from "./daemon/pair-settings.js";
import type { DialFailureReport } from "./peer/dial-failure.js";
import type { PlanStepEvent } from "./plan/plan-audit.js";

/** One start/stop lifecycle for every component (after libp2p's Startable). */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Outcome of one health-check run. Runners never throw. */
export interface CheckResult {
  ok: boolean;
  latencyMs: number;
  /** Short human-readable reason: "HTTP 200", "connect ECONNREFUSED", "timed out after 1000 ms". */
  detail: string;
  /**
   * A failure that restarting the service cannot fix, and what will: the service answered but
   * refused the check itself (a wrong password in the check's file, a locked account). The
   * service stays failed for the election; its restore waits until a result without this.
   */
  notRestorable?: string;
}

export interface ServiceStatus {
  name: string;
  critical: boolean;
  healthy: boolean;
  /** Consecutive successes / failures of the latest run of checks. */
  successes: number;
  failures: number;
  lastDetail: string;
  lastLatencyMs: number | null;
  restoreAttempts: number;
  /** "held": maintenance or stop-node; "not-tried": the failure is one a restart cannot fix (restoreBlockedBy). */
  restoreState: "idle" | "scheduled" | "running" | "gave-up" | "held" | "not-tried";
  /** Why a due restore is not tried (restoreState "not-tried"), and the fix. */
  restoreBlockedBy?: string;
}

export type HealthEvent =
  | { kind: "service-changed"; service: string; healthy: boolean; critical: boolean; detail: string }
  | { kind: "restore-started"; service: string; attempt: number; command: string[] }
  | { kind: "restore-finished"; service: string; attempt: number; ok: boolean; detail: string }
  | { kind: "restore-gave-up"; service: string; attempts: number }
  /** A restore came due and was not started: the failure is one a restart cannot fix. Once per failure. */
  | { kind: "restore-not-tried"; service: string; reason: string };

export interface ServiceMonitorApi extends Startable {
  onEvent(listener: (event: HealthEvent) => void): void;
  statuses(): ServiceStatus[];
  /** All critical services healthy (before the first verdict: false). */
  allCriticalHealthy(): boolean;
}

export interface GatewayMonitorApi extends Startable {
  onChange(listener: (reachable: boolean, detail: string) => void): void;
  reachable(): boolean;
  lastRttMs(): number | null;
}

export interface KeepalivedDriverApi extends Startable {
  /** Open (true) lets keepalived become MASTER; closed keeps it in FAULT. Atomic, idempotent. */
  setGate(open: boolean): Promise<void>;
  gateOpen(): boolean;
  /** Tell the lease guard the agent is alive; called every heartbeat tick. Never blocks. */
  renewLease(): void;
  /** Latest state reported through notify_fifo ("stopped" if the process is not running). */
  state(): KeepalivedState;
  onState(listener: (state: KeepalivedState) => void): void;
  /** Whether the VIP is configured on the interface right now (`ip -4 addr show`). */
  vipPresent(): Promise<boolean>;
  pid(): number | null;
  restarts(): number;
  /**
   * Checks and restores what the driver owns (lease guard and its pid file, gate and lease
   * track files, keepalived.conf, keepalived running). Never throws; returns the actions taken
   * (empty when all was right), for the audit event.
   */
  repair(reason: string): Promise<{ actions: string[] }>;
  /** Repairs the driver made on its own (its self-check), for the audit trail. */
  onRepair?(listener: (repair: { reason: string; actions: string[] }) => void): void;
  /** The driver's directory is not writable (its self-check found it so): why, or null. */
  unwritableDir?(): string | null;
  /** Takes the VIP off the interface by hand (an address Keepalived does not own); true if removed. Never throws. */
  removeStrayVip?(): Promise<boolean>;
}

export interface ArpProbeResult {
  /** Someone other than us answered for the VIP. */
  occupied: boolean;
  macs: string[];
  detail: string;
  /** The probe itself could not run (then `occupied` is false): callers decide what doubt means. */
  failed?: boolean;
}

export interface ArpGuardApi {
  probe(): Promise<ArpProbeResult>;
  /** Gratuitous ARP for the VIP from this node (which holds it). Never throws; false if it failed. */
  announce(): Promise<boolean>;
  /** This node's MAC on the VIP interface (lower case), for the holder's duplicate check. */
  ownMac(): Promise<string>;
  /**
   * The holder's periodic duplicate-address check without a process per check (long-running
   * arpings), or null when that cannot keep the interval and window: then the daemon probes
   * with probe(). Absent (test doubles): probe() too.
   */
  duplicateWatch?(intervalMs: number): DuplicateWatchApi | null;
}

/** One duplicate-address check: the MACs other than ours that answered for the VIP (empty: nobody else). */
export interface DuplicateCheckReport {
  ownMac: string;
  otherMacs: string[];
  detail: string;
}

/**
 * Whether the holder's duplicate-address check is being made, for `mnha status` and metrics.
 * disabled: arpGuard.duplicateCheckIntervalMs is 0. idle: this node does not hold the VIP
 * (the check runs only on the holder). running: checks are being made. failing: this node
 * holds the VIP but cannot check (own MAC unknown, arping failing): a second holder that
 * cannot talk to this one would go unnoticed until it works again.
 */
export interface DuplicateCheckStatus {
  state: "disabled" | "idle" | "running" | "failing";
  /** What stops the check (failing), or what weakens it (running with some arpings failing); else null. */
  problem: string | null;
  /** Since the latest check was judged while this node holds the VIP (null: none yet). */
  lastCheckMsAgo: number | null;
}

/** The peer's duplicate-address check as its heartbeat carries it (no age of the last check). */
export type PeerDuplicateCheck = Pick<DuplicateCheckStatus, "state" | "problem">;

/** The holder's duplicate-address check (rule 7 of docs/protocol.md), active while it holds the VIP. */
export interface DuplicateWatchApi {
  onCheck(listener: (check: DuplicateCheckReport) => void): void;
  setActive(active: boolean): void;
  isActive(): boolean;
  status(): DuplicateCheckStatus;
  /** Called with the new status each time its state changes (running, failing, idle…). */
  onStateChange(listener: (status: DuplicateCheckStatus) => void): void;
  stop(): void;
}

export type PeerLinkEvent =
  | { kind: "up"; peer: string; version: number; remote: string }
  | { kind: "down"; peer: string; reason: string }
  | { kind: "message"; message: LinkMessage }
  /**
   * Refused connections and frames, summarised and rate-limited by the link (peer/refusal-ledger.ts).
   * Record them as `peer.refusals` events: local-only, never replicated (a stranger must not fill both stores).
   */
  | { kind: "refusals"; count: number; byCode: Record<string, number>; sources: string[]; otherSources: number; first: { remote: string; code: string; reason: string }; message: string };

export interface PeerLinkApi extends Startable {
  onEvent(listener: (event: PeerLinkEvent) => void): void;
  /** False when no authenticated link is open (the message is dropped). */
  send(message: LinkMessage): boolean;
  connected(): boolean;
  /** What the peer port refused since start, by refusal code (for the metric). */
  refusalCounts?(): Record<string, number>;
  /** The protocol version negotiated on the open link (null: none open). */
  version?(): number | null;
  /** Why the last dial to the peer gave no link, with the likeliest fix (null while a link is up). */
  dialFailure?(): DialFailureReport | null;
  /** The protocol versions this node offers in its hello. */
  offeredVersions?(): readonly number[];
}

/** An HA event kept in memory for `mnha events` (the durable store is a separate module). */
export interface HaEvent {
  seq: number;
  node: string;
  /** The service the event is about, if any (check and restore events). */
  service?: string | null;
  /** ISO wall-clock time, for display only. */
  time: string;
  /** Monotonic milliseconds since the agent started. */
  uptimeMs: number;
  type: string;
  message: string;
  fields: Record<string, unknown>;
}

export interface NodeStatus {
  node: string;
  address: string;
  role: Role;
  epoch: number;
  holder: string | null;
  eligible: boolean;
  reasons: string[];
  vipPresent: boolean;
  keepalived: KeepalivedState;
  gatewayReachable: boolean;
  services: { name: string; healthy: boolean; critical: boolean; detail?: string; restoreAttempts?: number; restoreState?: string; restoreBlockedBy?: string }[];
}

/** What `mnha status` shows: this node in full, the peer as last heard. */
export interface StatusReport {
  version: string;
  vip: { address: string; prefix: number; interface: string };
  gateway: { address: string; reachable: boolean; rttMs: number | null };
  /** The node that holds the VIP as far as this node knows (null: nobody). */
  vipOwner: string | null;
  /**
   * With no holder known and no link to the peer: what this node's last claim found answering
   * ARP for the VIP ("10.0.0.100 answered by 02:…:0b"), and how long ago; absent when no claim
   * was blocked in the last 10 s. Someone holds the VIP that this node cannot name.
   */
  vipAnsweredElsewhere?: { detail: string; agoMs: number };
  /**
   * Directories this agent writes that were read-only at its start (daemon/writable-dirs.ts):
   * the audit store's, the backups'. Absent when none (and from older agents).
   */
  readOnlyDirs?: { setting: string; dir: string; message: string; hint: string }[];
  self: NodeStatus & { uptimeMs: number; keepalivedPid: number | null; keepalivedRestarts: number; leaseRemainingMs: number };
  /** The peer as its last heartbeat said; `duplicateCheck` only from an agent on peer protocol v4 or later. */
  peer: (NodeStatus & { connected: boolean; lastHeardMsAgo: number | null; duplicateCheck?: PeerDuplicateCheck; dialFailure?: DialFailureReport }) | { node: string; address: string; connected: false; lastHeardMsAgo: number | null; dialFailure?: DialFailureReport };
  /**
   * How long the VIP has gone unanswered while a node claims the role (this node without its
   * VIP, or the peer reporting none): the liveness watchdog's clock. Null or absent: served.
   */
  vipUnansweredMs?: number | null;
  /** The peer protocol: the versions this node offers, and the one negotiated with the peer (null: no link). */
  protocol?: { offered: number[]; negotiated: number | null };
  /** The settings both nodes must share, as compared with the peer's (daemon/pair-settings.ts); absent from older agents. */
  pairSettings?: PairSettingsStatus;
  /** Operator modes of both nodes (maintenance, stopped); the peer's as it last told us. Shown first. */
  ops?: { self: OpsStatus; peer: OpsStatus | null };
  /** Monitoring data sync from the holder to the standby (absent when no dirs are configured). */
  dataSync?: DataSyncStatus;
  /** The witness (present only when configured): this node's link to it and what it last said. */
  witness?: WitnessStatus;
  /** This node's audit store and its replication to the peer (absent in older agents). */
  store?: { ok: boolean; reason: string | null; sizeBytes: number; pending: number; dropped: number; syncLag: number | null; lastSyncAckMsAgo: number | null };
  /** This node's duplicate-address check (absent in older agents). */
  duplicateCheck?: DuplicateCheckStatus;
  /** Both nodes' MariaDB (db.enabled; absent otherwise): this node's as polled, the peer's as its heartbeat said. */
  db?: { self: DbNodeStatus | null; peer: DbNodeStatus | null };
  // zsha2's `status -json` keys, so that existing callers keep working (docs/database.md).
  ownsVip?: boolean;
  peerReachable?: boolean;
  gwReachable?: boolean;
  vipReachable?: boolean;
  slaveIoRunning?: string | null;
  /** (sic: zsha2's spelling) */
  slaveSqlRuning?: string | null;
  dbStatus?: string;
  mnStatus?: string;
}

/** One node's MariaDB as `mnha status` shows it. */
export interface DbNodeStatus {
  alive: boolean;
  error: string | null;
  readOnly: boolean | null;
  slaveIoRunning: string | null;
  slaveSqlRunning: string | null;
  secondsBehindMaster: number | null;
  lastIoError: string | null;
  lastSqlError: string | null;
  gtidBinlogPos: string | null;
  gtidCurrentPos: string | null;
  gtidSlavePos: string | null;
  semiSync: { masterActive: boolean; slaveActive: boolean; noTx: number } | null;
  /** Why the replica is broken, else null. */
  broken: string | null;
  seedIncomplete: boolean;
  /** Errant transactions found on this node (this node only; the peer's show in its reasons). */
  errant?: { description: string; domain: number; baseline: string; latest: string; count: number; foundAt: string; hint: string } | null;
}

export interface DemoteResult {
  ok: boolean;
  from: string;
  to: string | null;
  epoch: number;
  message: string;
  tookMs: number;
}

export interface EventQuery {
  limit?: number;
  /** Exact type, or a prefix ending in '.' or matching whole dotted segments ("election"). */
  type?: string;
  sinceMs?: number;
  untilMs?: number;
  node?: string;
  service?: string;
}

export interface MetricsReport {
  /** Per node and series over the window: count, min, median, max, last. */
  summaries: SeriesSummary[];
  store: StoreHealth | null;
}

// ---- operator operations (maintenance, stop-node / start-node, collect-log) ------------------

export interface MaintenanceInfo {
  /** Wall-clock ms when it was turned on. */
  since: number;
  by: string;
  reason: string;
}

export interface StoppedInfo {
  since: number;
  by: string;
  keepUi: boolean;
}

export interface OpsStatus {
  maintenance: MaintenanceInfo | null;
  stopped: StoppedInfo | null;
}

/** One external command the agent ran for an operator action (hook, stop, start). */
export interface CommandOutcome {
  name: string;
  command: string[];
  ok: boolean;
  detail: string;
}

/** The peer's answer to a re-seed from this node (mnha restore). */
export interface DbReseedPeerResult {
  node: string;
  ok: boolean;
  message: string;
}

export interface MaintenanceResult {
  node: string;
  on: boolean;
  /** False when the node already was in the asked mode. */
  changed: boolean;
  message: string;
  hook: CommandOutcome | null;
  /** Said on entering: what the operator must do by hand (the platform's VM HA). */
  reminder: string | null;
  /** For --node peer|both: the peer's answer. */
  peer?: { node: string; ok: boolean; message: string };
  /** When the request asked to stop or start the MN services: what happened on this node. */
  services?: { ok: boolean; message: string; commands: CommandOutcome[] };
}

export interface StopNodeResult {
  ok: boolean;
  message: string;
  handedTo: string | null;
  /** The VIP was given up with no peer to take it (-stopvip). */
  vipReleased: boolean;
  commands: CommandOutcome[];
}

export interface StartNodeResult {
  ok: boolean;
  message: string;
  commands: CommandOutcome[];
  /** The wait for the local database to catch up with the peer's (absent: older agent). */
  db?: {
    /** behind: not caught up in time (the node stays stopped). */
    outcome: "caught-up" | "behind" | "not-configured" | "not-needed" | "peer-unreachable";
    detail: string;
    waitedMs: number;
    lagSeconds: number | null;
    transactionsBehind: number | null;
  };
}

export interface CollectedFile {
  name: string;
  text: string;
}

export interface CollectResult {
  self: { node: string; files: CollectedFile[] };
  peer: { node: string; files: CollectedFile[] } | { node: string; missing: string };
}

export interface DataSyncStatus {
  dirs: string[];
  /** Wall-clock ms of the last successful sync (null: none yet). */
  lastSuccessAtMs: number | null;
  lastError: string | null;
  running: boolean;
  /** What this node does: push (holder), nothing (standby). */
  direction: "push" | "idle";
}

/** What the control API asks of the daemon. */
export interface ControlHandlers {
  maintenance?(request: { on: boolean; node: "this" | "peer" | "both"; reason: string; by: string; services?: "stop" | "start" }): Promise<MaintenanceResult>;
  stopNode?(request: { keepUi: boolean; stopVip: boolean; by: string }): Promise<StopNodeResult>;
  startNode?(request: { by: string; dbCatchUpTimeoutMs?: number }): Promise<StartNodeResult>;
  collect?(request: { sinceMs?: number; by: string }): Promise<CollectResult>;
  dbReseedPeer?(request: { by: string }): Promise<DbReseedPeerResult>;
  /** Stores a plan step's audit event (plan/plan-audit.ts catalog) with the pair's events. */
  planEvent?(event: PlanStepEvent): Promise<{ seq: number }>;
  status(): Promise<StatusReport>;
  demote(options: { timeoutMs?: number }): Promise<DemoteResult>;
  events(options: EventQuery): Promise<HaEvent[]>;
  failovers(options: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]>;
  metrics(options: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<MetricsReport>;
  version(): { version: string; protocol: number; node: string; offered?: number[]; negotiated?: number | null };
}

export type { KeepalivedState, LinkMessage, Role };

// ---- the audit and monitoring store (SQLite) ---------------------------------------------

import type { SyncEvent, SyncSample, Watermarks } from "@mnha/protocol";
export type { SyncEvent, SyncSample, Watermarks };

export interface NewEvent {
  type: string;
  service?: string | null;
  message: string;
  fields?: Record<string, unknown>;
  wallMs: number;
  monoMs: number;
  /**
   * Kept on this node only, never replicated (e.g. summaries of refused strangers: no peer
   * can make the other node store them). Types under LOCAL_ONLY_EVENT_TYPES are local-only
   * whatever this says.
   */
  localOnly?: boolean;
}

/** Who sent records to `ingest`: the authenticated peer's node name. */
export interface IngestSource {
  peer: string;
}

/** Why a record from the peer was not stored. */
export type IngestRefusal = "own-origin" | "origin-not-of-node" | "not-a-pair-node" | "own-node-after-store-created" | "local-only";

/** One record ingest did not store as sent. */
export interface IngestIssue {
  kind: "event" | "sample";
  origin: string;
  seq: number;
  /** A refusal reason, or "conflict": a different copy of (origin, seq) is already held and kept. */
  reason: IngestRefusal | "conflict";
  detail: string;
}

export interface IngestReport {
  /** Records stored now. */
  stored: number;
  /** Records already held, identical. */
  duplicates: number;
  refusedCount: number;
  conflictCount: number;
  /** The first few refusals and conflicts (at most 20), for the event that reports them. */
  issues: IngestIssue[];
}

export interface NewSample {
  series: string;
  value: number;
  wallMs: number;
}

export interface StoreHealth {
  /** false: writes are failing (disk full, read-only, corrupt); HA goes on regardless. */
  ok: boolean;
  reason: string | null;
  sizeBytes: number;
  /** Records accepted but not yet durably stored. */
  pending: number;
  /** Own records dropped because the in-memory queue overflowed while the store was failing. */
  dropped: number;
  lastIntegrityCheck: { at: number; ok: boolean; detail: string } | null;
}

export interface EventFilter {
  sinceMs?: number;
  untilMs?: number;
  node?: string;
  type?: string;
  service?: string;
  limit?: number;
}

export interface FailoverRecord {
  /** Wall-clock ms when the new holder took the VIP. */
  atMs: number;
  from: string | null;
  to: string;
  epoch: number;
  cause: string;
  /** How long no node held the VIP around the change, when known. */
  unansweredMs: number | null;
}

export interface SeriesSummary {
  node: string;
  series: string;
  count: number;
  min: number;
  median: number;
  max: number;
  last: number;
  lastAtMs: number;
}

/**
 * The node's store. Appends return at once (queued); records become durable in batches off
 * the HA path (a worker thread), and `onStored` reports durability. Reads are async.
 */
export interface StoreApi extends Startable {
  /** This store's origin id (stable for the life of the database file). */
  readonly origin: string;
  appendEvent(event: NewEvent): number;
  appendSamples(samples: NewSample[]): void;
  /** Highest own event seq durably stored. */
  storedUpTo(): number;
  onStored(listener: (upToSeq: number) => void): void;
  /**
   * Records from the peer (any origin it may relay); idempotent; resolves once durable. Never
   * stores records under this node's own origin, records whose origin belongs to another node
   * than the record names (or, with `from`, to neither pair node), nor a second, different copy
   * of a record: those are reported.
   */
  ingest(events: SyncEvent[], samples: SyncSample[], from?: IngestSource): Promise<IngestReport>;
  watermarks(): Promise<Watermarks>;
  /** Records after the given watermarks, every origin, oldest first, bounded in count and bytes. */
  readAfter(have: Watermarks, limits: { maxEvents: number; maxSamples: number; maxBytes: number }): Promise<{ events: SyncEvent[]; samples: SyncSample[] }>;
  queryEvents(filter: EventFilter): Promise<SyncEvent[]>;
  failovers(filter: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]>;
  summarize(filter: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<SeriesSummary[]>;
  health(): StoreHealth;
}

/** `status.witness`: the link, this node's grant, and who the witness said holds it. */
export interface WitnessStatus {
  configured: true;
  address: string;
  leaseMs: number;
  /** The authenticated link to the witness is up. */
  connected: boolean;
  linkError: string | null;
  /** The last request was answered. */
  reachable: boolean;
  /** This node holds a grant it may act on. */
  grantHeld: boolean;
  grantRemainingMs: number;
  /** Who holds the grant, as the witness last said. */
  holder: string | null;
  holderEpoch: number;
  holderRemainingMs: number;
  answeredMsAgo: number | null;
  lastError: string | null;
}
