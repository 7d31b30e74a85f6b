/**
 * What the agent reports: `mnha status` (the control API) and the Prometheus snapshot, built
 * from the core's snapshot and the parts' own views. No IO here.
 */
import type { MnhaConfig } from "@mnha/shared";
import type { HaEvent, NodeStatus, StatusReport, SyncEvent } from "../contracts.js";
import type { ElectionSnapshot } from "../core/election.js";
import type { MetricsSnapshot } from "../metrics/metrics.js";
import { AGENT_VERSION } from "../version.js";
import type { AgentComponents } from "./components.js";

type StatusParts = Pick<AgentComponents, "keepalived" | "gateway" | "services" | "store" | "sync">;

export function buildStatusReport(input: { config: MnhaConfig; now: number; startedAt: number; snapshot: ElectionSnapshot; vipPresent: boolean; components: StatusParts }): StatusReport {
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
    services: c.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, critical: s.critical, detail: s.lastDetail, restoreAttempts: s.restoreAttempts, restoreState: s.restoreState })),
  };
  const peer: StatusReport["peer"] = hb
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
      }
    : { node: peerName, address: peerAddress, connected: false, lastHeardMsAgo };
  const vipOwner = vipPresent ? config.node.name : snap.peerAlive && hb?.vipPresent ? peerName : null;
  const health = c.store.health();
  const sync = c.sync.status();
  return {
    version: AGENT_VERSION,
    vip: { address: config.vip.address, prefix: config.vip.prefix, interface: config.vip.interface },
    gateway: { address: config.gateway.address, reachable: c.gateway.reachable(), rttMs: c.gateway.lastRttMs() },
    vipOwner,
    vipUnansweredMs: vipOwner === null ? snap.vipUnansweredMs : null,
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
  };
}

export function buildMetricsSnapshot(input: {
  node: string;
  snapshot: ElectionSnapshot;
  failoversTotal: number;
  vipPresent: boolean;
  restoreAttemptsTotal: ReadonlyMap<string, number>;
  components: StatusParts;
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
  };
}

export function toHaEvent(row: SyncEvent): HaEvent {
  return { seq: row.seq, node: row.node, service: row.service, time: new Date(row.wallMs).toISOString(), uptimeMs: Math.round(row.monoMs), type: row.type, message: row.message, fields: row.fields };
}
