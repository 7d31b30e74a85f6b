/**
 * The Prometheus endpoint: `GET /metrics` in the text exposition format, on loopback unless
 * configured otherwise. Values are read from the daemon at scrape time through `collect()`;
 * nothing here keeps state of its own beyond making the `_total` counters monotonic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KeepalivedStateSchema, RoleSchema, type KeepalivedState, type Role } from "@mnha/protocol";
import { MnhaError, type Logger } from "@mnha/shared";
import { Counter, Gauge, Registry } from "prom-client";
import type { Startable } from "../contracts.js";
import { registerLoopDelayMetrics, registerProcessMetrics, type LoopDelay } from "./process-metrics.js";

/** What the daemon reports at each scrape. Durations in milliseconds (exposed in seconds). */
export interface MetricsSnapshot {
  node: string;
  version: string;
  role: Role;
  epoch: number;
  /** Changes of VIP holder this node has observed since it started (cumulative). */
  failoversTotal: number;
  vipHeld: boolean;
  peerConnected: boolean;
  /** Round trip to the peer, when known. */
  peerRttMs: number | null;
  gatewayReachable: boolean;
  /** Latest gateway ping round trip, when known. */
  gatewayRttMs: number | null;
  services: {
    name: string;
    healthy: boolean;
    /** Latest check latency, when known. */
    latencyMs: number | null;
    /** Restore attempts since the agent started (cumulative; a value that drops is counted on from). */
    restoreAttemptsTotal: number;
  }[];
  keepalivedState: KeepalivedState;
  /** Null while the store is not open. */
  store: { ok: boolean; sizeBytes: number; pending: number } | null;
  /** Records this node holds that the peer lacks, as far as known (null: not known). */
  syncLagRecords: number | null;
  /** Seconds the VIP has gone unanswered while a node claims the role (0: served); the watchdog's clock. */
  vipUnansweredSeconds?: number;
  /** Seconds since the last successful monitoring data sync (null/absent: none, or not configured). */
  dataSyncAgeSeconds?: number | null;
  /** Connections and frames the peer port refused since start, by refusal code (strangers, bad frames). */
  peerRefusalsTotal?: Record<string, number>;
  /** This node's MariaDB (db.enabled; absent or null: not managed or not polled yet). */
  db?: { alive: boolean; readOnly: boolean | null; lagSeconds: number | null; ioRunning: boolean | null; sqlRunning: boolean | null; semiSyncMasterActive: boolean | null } | null;
  /** Seconds since the newest good database backup in backup.dir (null/absent: none, or backups not enabled). */
  backupAgeSeconds?: number | null;
  /** This node holds the VIP but cannot make its duplicate-address check (absent: false). */
  duplicateCheckFailing?: boolean;
}

export interface MetricsServerOptions {
  address: string;
  /** 0 picks a free port (tests); see `port()`. */
  port: number;
  logger: Logger;
  collect: () => MetricsSnapshot;
  /** Also export the process_* and nodejs_* metrics of prom-client (default true). */
  processMetrics?: boolean;
  /**
   * The loop's delay for nodejs_eventloop_lag_*, as the agent's beat records it (with
   * processMetrics; absent: those metrics are not exported, and no sampler runs for them).
   */
  loopDelay?: LoopDelay;
}

export const METRICS_PATH = "/metrics";

/** A counter's exposed value never goes down: when the source drops (a reset), count on from where it was. */
class MonotonicTotals {
  private readonly seen = new Map<string, { last: number; base: number }>();
  observe(key: string, value: number): number {
    const safe = Number.isFinite(value) && value > 0 ? value : 0;
    const entry = this.seen.get(key) ?? { last: 0, base: 0 };
    if (safe < entry.last) entry.base += entry.last;
    entry.last = safe;
    this.seen.set(key, entry);
    return entry.base + safe;
  }
}

export class MetricsServer implements Startable {
  private readonly options: MetricsServerOptions;
  private readonly registry = new Registry();
  private readonly totals = new MonotonicTotals();
  private server: Server | null = null;
  private boundPort: number | null = null;
  private readonly metrics: ReturnType<typeof createMetrics>;

  constructor(options: MetricsServerOptions) {
    this.options = options;
    this.metrics = createMetrics(this.registry);
    // Not collectDefaultMetrics: its event-loop sampler is a timer of its own, 10 wake-ups a
    // second at idle even at 100 ms (process-metrics.ts); the beat measures the same delay.
    if (options.processMetrics ?? true) {
      if (options.loopDelay) registerLoopDelayMetrics(this.registry, options.loopDelay);
      registerProcessMetrics(this.registry);
    }
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((request, response) => void this.handle(request, response));
    // A scrape is small: bound slow or idle clients.
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = 64;
    const { address, port, logger } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.close();
        const inUse = error.code === "EADDRINUSE";
        reject(
          new MnhaError(inUse ? "PORT_IN_USE" : "CONFIG_INVALID", `cannot serve metrics on ${address}:${port}: ${inUse ? "the port is in use" : error.code === "EADDRNOTAVAIL" ? "no such local address" : error.message}`, {
            hint: inUse ? "set metrics.port to a free port, or metrics.enabled: false" : "set metrics.address to an address of this host (127.0.0.1 by default), or metrics.enabled: false",
            fields: { address, port, code: error.code },
            cause: error,
          }),
        );
      };
      server.once("error", onError);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (error) => logger.warn({ err: error }, "metrics endpoint error"));
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    logger.info({ address, port: this.boundPort, path: METRICS_PATH }, "metrics endpoint listening");
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The port listened on (null before start). */
  port(): number | null {
    return this.server ? this.boundPort : null;
  }

  /** The exposition text for a snapshot (what a scrape returns). */
  async render(snapshot: MetricsSnapshot): Promise<string> {
    this.update(snapshot);
    return this.registry.metrics();
  }

  contentType(): string {
    return this.registry.contentType;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== METRICS_PATH) {
      send(response, 404, "text/plain; charset=utf-8", `not found: metrics are at ${METRICS_PATH}\n`);
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      send(response, 405, "text/plain; charset=utf-8", `method ${request.method ?? "?"} not allowed: use GET\n`);
      return;
    }
    let text: string;
    try {
      text = await this.render(this.options.collect());
    } catch (error) {
      this.options.logger.warn({ err: error }, "metrics: collecting a snapshot failed");
      send(response, 500, "text/plain; charset=utf-8", "collecting metrics failed; see the agent's log\n");
      return;
    }
    // For HEAD, node sends the headers (Content-Length included) and drops the body.
    send(response, 200, this.registry.contentType, text);
  }

  private update(s: MetricsSnapshot): void {
    const m = this.metrics;
    m.info.reset();
    m.info.set({ node: s.node, version: s.version }, 1);
    for (const role of RoleSchema.options) m.role.set({ role }, role === s.role ? 1 : 0);
    m.epoch.set(s.epoch);
    m.failovers.reset();
    m.failovers.inc(this.totals.observe("failovers", s.failoversTotal));
    m.vipHeld.set(s.vipHeld ? 1 : 0);
    m.vipUnanswered.set(s.vipUnansweredSeconds ?? 0);
    m.peerConnected.set(s.peerConnected ? 1 : 0);
    m.duplicateCheckFailing.set(s.duplicateCheckFailing === true ? 1 : 0);
    this.optional(m.peerRtt, s.peerRttMs === null ? null : s.peerRttMs / 1000);
    m.gatewayReachable.set(s.gatewayReachable ? 1 : 0);
    this.optional(m.gatewayRtt, s.gatewayRttMs === null ? null : s.gatewayRttMs / 1000);
    // Reset the labelled series so that a service removed from the config disappears.
    m.checkUp.reset();
    m.checkLatency.reset();
    m.restoreAttempts.reset();
    for (const service of s.services) {
      const labels = { service: service.name };
      m.checkUp.set(labels, service.healthy ? 1 : 0);
      if (service.latencyMs !== null && Number.isFinite(service.latencyMs)) m.checkLatency.set(labels, service.latencyMs / 1000);
      m.restoreAttempts.inc(labels, this.totals.observe(`restore:${service.name}`, service.restoreAttemptsTotal));
    }
    for (const state of KeepalivedStateSchema.options) m.keepalived.set({ state }, state === s.keepalivedState ? 1 : 0);
    m.storeOk.set(s.store?.ok ? 1 : 0);
    this.optional(m.storeSize, s.store?.sizeBytes ?? null);
    this.optional(m.storePending, s.store?.pending ?? null);
    this.optional(m.syncLag, s.syncLagRecords);
    this.optional(m.dataSyncAge, s.dataSyncAgeSeconds ?? null);
    m.peerRefusals.reset();
    for (const [code, total] of Object.entries(s.peerRefusalsTotal ?? {})) m.peerRefusals.inc({ code }, this.totals.observe(`refusal:${code}`, total));
    const db = s.db ?? null;
    const flag = (value: boolean | null | undefined): number | null => (value === null || value === undefined ? null : value ? 1 : 0);
    this.optional(m.dbUp, db === null ? null : db.alive ? 1 : 0);
    this.optional(m.dbReadOnly, flag(db?.readOnly));
    this.optional(m.dbLag, db?.lagSeconds ?? null);
    this.optional(m.dbIoRunning, flag(db?.ioRunning));
    this.optional(m.dbSqlRunning, flag(db?.sqlRunning));
    this.optional(m.dbSemiSync, flag(db?.semiSyncMasterActive));
    this.optional(m.backupAge, s.backupAgeSeconds ?? null);
  }

  /** A gauge that is exported only while its value is known. */
  private optional({ name, gauge }: { name: string; gauge: Gauge }, value: number | null): void {
    const registered = this.registry.getSingleMetric(name) !== undefined;
    if (value === null || !Number.isFinite(value)) {
      if (registered) this.registry.removeSingleMetric(name);
      return;
    }
    if (!registered) this.registry.registerMetric(gauge);
    gauge.set(value);
  }
}

/** Every mnha_* metric, registered on `registry` (the optional ones are registered while known). */
function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    info: new Gauge({ name: "mnha_info", help: "Always 1; labels name this node and the agent's version.", labelNames: ["node", "version"] as const, registers }),
    role: new Gauge({ name: "mnha_role", help: "1 on the role this node is in, 0 on the others.", labelNames: ["role"] as const, registers }),
    epoch: new Gauge({ name: "mnha_epoch", help: "The current epoch (term) of the VIP holder.", registers }),
    failovers: new Counter({ name: "mnha_failovers_total", help: "Changes of VIP holder observed by this node.", registers }),
    vipHeld: new Gauge({ name: "mnha_vip_held", help: "1 while the VIP is configured on this node.", registers }),
    vipUnanswered: new Gauge({ name: "mnha_vip_unanswered_seconds", help: "Seconds without an answering VIP holder while a node claims the role (0 while the VIP is served).", registers }),
    peerConnected: new Gauge({ name: "mnha_peer_connected", help: "1 while the authenticated peer link is open.", registers }),
    duplicateCheckFailing: new Gauge({ name: "mnha_duplicate_check_failing", help: "1 while this node holds the VIP but cannot check that nobody else answers for it (own MAC unknown, arping failing).", registers }),
    // Exported only when known: created unregistered, added to the registry when a value exists.
    peerRtt: optionalGauge("mnha_peer_rtt_seconds", "Round trip to the peer."),
    gatewayReachable: new Gauge({ name: "mnha_gateway_reachable", help: "1 while the gateway answers (arbitration).", registers }),
    gatewayRtt: optionalGauge("mnha_gateway_rtt_seconds", "Latest gateway ping round trip."),
    checkUp: new Gauge({ name: "mnha_check_up", help: "1 while the service's health check passes.", labelNames: ["service"] as const, registers }),
    checkLatency: new Gauge({ name: "mnha_check_latency_seconds", help: "Latency of the service's latest health check.", labelNames: ["service"] as const, registers }),
    restoreAttempts: new Counter({ name: "mnha_restore_attempts_total", help: "Restore commands run for the service.", labelNames: ["service"] as const, registers }),
    keepalived: new Gauge({ name: "mnha_keepalived_state", help: "1 on Keepalived's current state, 0 on the others.", labelNames: ["state"] as const, registers }),
    storeSize: optionalGauge("mnha_store_size_bytes", "Size of the audit and monitoring database."),
    storeOk: new Gauge({ name: "mnha_store_ok", help: "1 while the store writes succeed.", registers }),
    storePending: optionalGauge("mnha_store_pending", "Records accepted but not yet durably stored."),
    syncLag: optionalGauge("mnha_sync_lag_records", "Records this node holds that the peer lacks, as far as known."),
    peerRefusals: new Counter({ name: "mnha_peer_refusals_total", help: "Connections and frames refused on the peer port, by refusal code.", labelNames: ["code"] as const, registers }),
    dataSyncAge: optionalGauge("mnha_datasync_last_success_age_seconds", "Seconds since the monitoring data was last synced to the standby (the holder's lag)."),
    // The managed MariaDB (db.enabled only).
    dbUp: optionalGauge("mnha_db_up", "1 while the local MariaDB answers."),
    dbReadOnly: optionalGauge("mnha_db_read_only", "1 while the local MariaDB is read_only (only the VIP holder's is writable)."),
    dbLag: optionalGauge("mnha_db_replica_lag_seconds", "Seconds_Behind_Master of the local replica."),
    dbIoRunning: optionalGauge("mnha_db_replica_io_running", "1 while Slave_IO_Running is Yes."),
    dbSqlRunning: optionalGauge("mnha_db_replica_sql_running", "1 while Slave_SQL_Running is Yes."),
    dbSemiSync: optionalGauge("mnha_db_semi_sync_master_active", "1 while commits wait for the peer's acknowledgement (0: fell back to asynchronous)."),
    backupAge: optionalGauge("mnha_backup_newest_age_seconds", "Seconds since the newest good database backup in backup.dir was taken."),
  };
}

/** A gauge kept off the registry until it has a value (see MetricsServer.optional). */
function optionalGauge(name: string, help: string): { name: string; gauge: Gauge } {
  return { name, gauge: new Gauge({ name, help, registers: [] }) };
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.statusCode = status;
  response.setHeader("Content-Type", contentType);
  response.setHeader("Content-Length", Buffer.byteLength(body));
  response.end(body);
}
