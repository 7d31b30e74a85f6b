/**
 * What the agent reports: `mnha status` (the control API) and the Prometheus snapshot, built
 * from the core's snapshot and the parts' own views. No IO here.
 */
import { blockedOutcomeKey } from "./claim-retry-digest.js";
import type { MnhaConfig } from "@mnha/shared";
import type { DbNodeStatus, DuplicateCheckStatus, HaEvent, NodeStatus, StatusReport, SyncEvent } from "../contracts.js";
import { replicaBroken } from "../db/replica-state.js";
import type { DatabaseHealth } from "../db/types.js";
import type { ErrantMark } from "../db/errant-watch.js";
import { DUPLICATE_CHECK_PROBLEM_MAX, type DuplicateCheckSummary, type Heartbeat } from "@mnha/protocol";
import type { ElectionSnapshot } from "../core/election.js";
import type { MetricsSnapshot } from "../metrics/metrics.js";
import { AGENT_VERSION } from "../version.js";
import type { AgentComponents } from "./components.js";

type StatusParts = Pick<AgentComponents, "keepalived" | "gateway" | "services" | "store" | "sync" | "link">;

/** The local database as last polled (db.enabled), for status and metrics. */
export interface DbStatusInput {
  health: DatabaseHealth | null;
  seedIncomplete: boolean;
  /** Errant transactions found on this node (db/errant-watch.ts). */
  errant?: ErrantMark | null;
}

/** A blocked claim older than this says nothing about who answers for the VIP now (claims retry about twice a second). */
const VIP_ANSWER_SHOWN_MS = 10_000;

export function buildStatusReport(input: {
  config: MnhaConfig;
  now: number;
  startedAt: number;
  snapshot: ElectionSnapshot;
  vipPresent: boolean;
  components: StatusParts;
  db?: DbStatusInput | null;
  /** The last claim the ARP guard blocked (`detail` as the core said it), on the monotonic clock. */
  lastBlockedClaim?: { detail: string; atMs: number } | null;
}): StatusReport {
  const { config, now, snapshot: snap, vipPresent, components: c } = input;
  const peerConfig = config.peers[0];
  const peerName = peerConfig?.name ?? "";
  const peerAddress = peerConfig?.address ?? "";
  const hb = snap.peer.heartbeat;
  const lastHeardMsAgo = snap.peer.lastHeardAt === null ? null : Math.round(now - snap.peer.lastHeardAt);
  const selfStatus: NodeStatus = {
    node: config.node.name,
    address: config.node.address,
    role: snap.role,
    epoch: snap.epoch,
    holder: snap.holder,
    eligible: snap.eligible,
    reasons: snap.reasons,
    vipPresent,
    keepalived: c.keepalived.state(),
    gatewayReachable: c.gateway.reachable(),
    services: c.services.statuses().map((s) => ({
      name: s.name,
      healthy: s.healthy,
      critical: s.critical,
      detail: s.lastDetail,
      restoreAttempts: s.restoreAttempts,
      restoreState: s.restoreState,
      ...(s.restoreBlockedBy === undefined ? {} : { restoreBlockedBy: s.restoreBlockedBy }),
    })),
  };
  // Why the link is down, when this node's own dials say (absent while it is up).
  const dialFailure = snap.peerAlive ? null : (c.link.dialFailure?.() ?? null);
  const peerBase: StatusReport["peer"] = hb
    ? {
        node: peerName,
        address: peerAddress,
        connected: snap.peerAlive,
        lastHeardMsAgo,
        role: hb.role,
        epoch: hb.epoch,
        holder: hb.holder,
        eligible: hb.eligible,
        reasons: hb.reasons,
        vipPresent: hb.vipPresent,
        keepalived: hb.keepalived,
        gatewayReachable: hb.gatewayReachable,
        services: hb.services,
        ...(hb.duplicateCheck ? { duplicateCheck: hb.duplicateCheck } : {}),
      }
    : { node: peerName, address: peerAddress, connected: false, lastHeardMsAgo };
  const peer: StatusReport["peer"] = dialFailure ? { ...peerBase, dialFailure } : peerBase;
  const vipOwner = vipPresent ? config.node.name : snap.peerAlive && hb?.vipPresent ? peerName : null;
  // With no holder known and no link to the peer, someone answering this node's last claim holds it.
  const blocked = input.lastBlockedClaim ?? null;
  const vipAnsweredElsewhere = vipOwner === null && !snap.peerAlive && blocked !== null && now - blocked.atMs <= VIP_ANSWER_SHOWN_MS ? { detail: blockedOutcomeKey(blocked.detail), agoMs: Math.round(now - blocked.atMs) } : null;
  const health = c.store.health();
  const sync = c.sync.status();
  return {
    version: AGENT_VERSION,
    vip: { address: config.vip.address, prefix: config.vip.prefix, interface: config.vip.interface },
    gateway: { address: config.gateway.address, reachable: c.gateway.reachable(), rttMs: c.gateway.lastRttMs() },
    vipOwner,
    vipUnansweredMs: vipOwner === null ? snap.vipUnansweredMs : null,
    ...(vipAnsweredElsewhere ? { vipAnsweredElsewhere } : {}),
    self: { ...selfStatus, uptimeMs: Math.round(now - input.startedAt), keepalivedPid: c.keepalived.pid(), keepalivedRestarts: c.keepalived.restarts(), leaseRemainingMs: snap.leaseRemainingMs },
    peer,
    store: {
      ok: health.ok,
      reason: health.reason,
      sizeBytes: health.sizeBytes,
      pending: health.pending,
      dropped: health.dropped,
      syncLag: sync.lagEvents === null ? null : sync.lagEvents + (sync.lagSamples ?? 0),
      lastSyncAckMsAgo: sync.lastAckAgoMs ?? null,
    },
    ...(input.db ? { db: { self: input.db.health ? { ...localDbStatus(input.db.health, input.db.seedIncomplete), errant: input.db.errant ? { ...input.db.errant, hint: `repair this node with mnha db resync (run on ${config.node.name}); it may not take over from a live holder until then` } : null } : null, peer: hb?.db ? peerDbStatus(hb.db) : null } } : {}),
    ...zsha2Keys({ vipPresent, peerReachable: snap.peerAlive, gwReachable: c.gateway.reachable(), vipReachable: vipOwner !== null || vipAnsweredElsewhere !== null, services: selfStatus.services, db: input.db ?? null }),
  };
}

/**
 * This node's duplicate-address check as its heartbeat carries it: the state and the problem,
 * shortened to what the schema allows (a longer one would make the peer refuse the frame).
 */
export function heartbeatDuplicateCheck(status: DuplicateCheckStatus): DuplicateCheckSummary {
  const problem = status.problem === null || status.problem.length <= DUPLICATE_CHECK_PROBLEM_MAX ? status.problem : `${status.problem.slice(0, DUPLICATE_CHECK_PROBLEM_MAX - 1)}…`;
  return { state: status.state, problem };
}

function localDbStatus(h: DatabaseHealth, seedIncomplete: boolean): DbNodeStatus {
  return {
    alive: h.alive,
    error: h.error,
    readOnly: h.readOnly,
    slaveIoRunning: h.slaveIoRunning,
    slaveSqlRunning: h.slaveSqlRunning,
    secondsBehindMaster: h.secondsBehindMaster,
    lastIoError: h.lastIoError,
    lastSqlError: h.lastSqlError,
    gtidBinlogPos: h.gtidBinlogPos,
    gtidCurrentPos: h.gtidCurrentPos,
    gtidSlavePos: h.gtidSlavePos,
    semiSync: h.semiSync === null ? null : { masterActive: h.semiSync.masterActive, slaveActive: h.semiSync.slaveActive, noTx: h.semiSync.noTx },
    broken: replicaBroken(h),
    seedIncomplete,
  };
}

/** The peer's database as its last heartbeat told it (no slave position or semi-sync counters). */
function peerDbStatus(db: NonNullable<Heartbeat["db"]>): DbNodeStatus {
  return {
    alive: db.alive,
    error: null,
    readOnly: db.readOnly,
    slaveIoRunning: db.slaveIoRunning ?? null,
    slaveSqlRunning: db.slaveSqlRunning ?? null,
    secondsBehindMaster: db.lagSeconds,
    lastIoError: db.lastIoError ?? null,
    lastSqlError: db.lastSqlError ?? null,
    gtidBinlogPos: db.gtidBinlogPos,
    gtidCurrentPos: db.gtidCurrentPos,
    gtidSlavePos: null,
    semiSync: db.semiSyncMasterActive === null ? null : { masterActive: db.semiSyncMasterActive, slaveActive: false, noTx: 0 },
    broken: db.broken,
    seedIncomplete: db.seedIncomplete,
  };
}

/**
 * zsha2's `status -json` keys. dbStatus/mnStatus: "running", "down" or "unknown" (the managed
 * MariaDB when db.enabled, else the `db` service check; the `mn` service check).
 */
function zsha2Keys(input: { vipPresent: boolean; peerReachable: boolean; gwReachable: boolean; vipReachable: boolean; services: NodeStatus["services"]; db: DbStatusInput | null }): Pick<StatusReport, "ownsVip" | "peerReachable" | "gwReachable" | "vipReachable" | "slaveIoRunning" | "slaveSqlRuning" | "dbStatus" | "mnStatus"> {
  const serviceState = (name: string): string => {
    const service = input.services.find((s) => s.name === name);
    return service === undefined ? "unknown" : service.healthy ? "running" : "down";
  };
  const health = input.db?.health ?? null;
  return {
    ownsVip: input.vipPresent,
    peerReachable: input.peerReachable,
    gwReachable: input.gwReachable,
    vipReachable: input.vipReachable,
    slaveIoRunning: health?.slaveIoRunning ?? null,
    slaveSqlRuning: health?.slaveSqlRunning ?? null,
    dbStatus: input.db ? (health === null ? "unknown" : health.alive ? "running" : "down") : serviceState("db"),
    mnStatus: serviceState("mn"),
  };
}

export function buildMetricsSnapshot(input: {
  node: string;
  snapshot: ElectionSnapshot;
  failoversTotal: number;
  vipPresent: boolean;
  restoreAttemptsTotal: ReadonlyMap<string, number>;
  components: StatusParts;
  db?: DbStatusInput | null;
}): MetricsSnapshot {
  const { snapshot: snap, components: c } = input;
  const store = c.store.health();
  const sync = c.sync.status();
  return {
    node: input.node,
    version: AGENT_VERSION,
    role: snap.role,
    epoch: snap.epoch,
    failoversTotal: input.failoversTotal,
    vipHeld: input.vipPresent,
    peerConnected: snap.peerAlive,
    peerRttMs: null,
    gatewayReachable: c.gateway.reachable(),
    gatewayRttMs: c.gateway.lastRttMs(),
    services: c.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, latencyMs: s.lastLatencyMs, restoreAttemptsTotal: input.restoreAttemptsTotal.get(s.name) ?? 0 })),
    keepalivedState: c.keepalived.state(),
    store: { ok: store.ok, sizeBytes: store.sizeBytes, pending: store.pending },
    syncLagRecords: sync.lagEvents === null ? null : sync.lagEvents + (sync.lagSamples ?? 0),
    vipUnansweredSeconds: !input.vipPresent && snap.vipUnansweredMs !== null ? snap.vipUnansweredMs / 1000 : 0,
    peerRefusalsTotal: c.link.refusalCounts?.() ?? {},
    ...(input.db?.health ? { db: dbMetrics(input.db.health) } : {}),
  };
}

function dbMetrics(h: DatabaseHealth): NonNullable<MetricsSnapshot["db"]> {
  const running = (state: string | null): boolean | null => (state === null ? null : state === "Yes");
  return { alive: h.alive, readOnly: h.readOnly, lagSeconds: h.secondsBehindMaster, ioRunning: running(h.slaveIoRunning), sqlRunning: running(h.slaveSqlRunning), semiSyncMasterActive: h.semiSync === null ? null : h.semiSync.masterActive };
}

export function toHaEvent(row: SyncEvent): HaEvent {
  return { seq: row.seq, node: row.node, service: row.service, time: new Date(row.wallMs).toISOString(), uptimeMs: Math.round(row.monoMs), type: row.type, message: row.message, fields: row.fields };
}
