/**
 * The daemon: wires the adapters (checks, gateway, peer link, Keepalived, ARP guard,
 * control API) to the pure election core. Every input goes through one queue, so the
 * core sees events one at a time and its effects are carried out in order (a gate is
 * closed before the lease is renewed or the peer is told).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { CURRENT_PROTOCOL_VERSION, type Heartbeat } from "@mnha/protocol";
import { createLogger, isMnhaError, loadConfig, MnhaError, systemClock, type Clock, type LoadedConfig, type Logger } from "@mnha/shared";
import { GatewayMonitor } from "../checks/gateway-monitor.js";
import { ServiceMonitor } from "../checks/service-monitor.js";
import type { ControlHandlers, DemoteResult, EventQuery, FailoverRecord, HaEvent, MetricsReport, NodeStatus, PeerLinkEvent, StatusReport, SyncEvent } from "../contracts.js";
import { ControlServer } from "../control/control-server.js";
import { MetricsServer, type MetricsSnapshot } from "../metrics/metrics.js";
import { SystemSampler } from "../metrics/system-sampler.js";
import { SqliteStore, type StoreAlert } from "../store/sqlite-store.js";
import { SyncEngine } from "../sync/sync-engine.js";
import { ElectionCore, type ElectionEffect, type ElectionInput } from "../core/election.js";
import { KeepalivedDriver } from "../keepalived/driver.js";
import { ArpGuard } from "../net/arp-guard.js";
import { PeerLink } from "../peer/peer-link.js";
import { AGENT_VERSION } from "../version.js";
import { EpochStore } from "./epoch-store.js";
import { EventLog } from "./event-log.js";

export interface AgentOptions {
  loaded: LoadedConfig;
  logger: Logger;
  clock?: Clock;
}

interface PendingRequest {
  resolve: (result: { ok: boolean; message: string; to: string | null; epoch: number }) => void;
}

export class Agent {
  private readonly loaded: LoadedConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly startedAt: number;
  private readonly self: string;
  private readonly peerName: string;

  private readonly epochs: EpochStore;
  private readonly events: EventLog;
  private readonly core: ElectionCore;
  private readonly services: ServiceMonitor;
  private readonly gateway: GatewayMonitor;
  private readonly keepalived: KeepalivedDriver;
  private readonly arpGuard: ArpGuard;
  private readonly link: PeerLink;
  private readonly control: ControlServer;
  private readonly store: SqliteStore;
  private readonly sync: SyncEngine;
  private readonly sampler: SystemSampler;
  private readonly metrics: MetricsServer | null;
  private failoversTotal = 0;
  private lastKnownHolder: string | null = null;
  private readonly restoreAttemptsTotal = new Map<string, number>();

  /** Every core step runs in this chain, one after another. */
  private queue: Promise<void> = Promise.resolve();
  private tickTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private vipTimer: NodeJS.Timeout | null = null;
  private heartbeatSeq = 0;
  private vipPresent = false;
  private readonly pending = new Map<string, PendingRequest>();
  private running = false;
  private lastServicesVerdict: string | null = null;

  constructor(options: AgentOptions) {
    this.loaded = options.loaded;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.startedAt = this.clock.now();
    const { config, derived } = this.loaded;
    const peer = config.peers[0];
    if (!peer) throw new MnhaError("CONFIG_INVALID", "no peer configured", { hint: "add the other node under peers:" });
    this.self = config.node.name;
    this.peerName = peer.name;

    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    this.epochs = new EpochStore(config.dataDir);
    this.events = new EventLog(this.self, this.clock, this.logger, this.startedAt);
    this.core = new ElectionCore(
      {
        self: this.self,
        peer: peer.name,
        heartbeatIntervalMs: config.timings.heartbeatIntervalMs,
        peerLossMs: derived.peerLossMs,
        leaseMs: config.timings.leaseMs,
        takeoverMarginMs: config.timings.takeoverMarginMs,
        maxClockDrift: config.timings.maxClockDrift,
        startupGraceMs: derived.startupGraceMs,
        handoffTimeoutMs: config.timings.handoffTimeoutMs,
        arpGuard: config.arpGuard.enabled,
        arpRetryMs: config.arpGuard.retryIntervalMs,
        initialEpoch: this.epochs.get(),
      },
      this.startedAt,
    );
    this.services = new ServiceMonitor({ services: config.services, logger: this.logger.child({ component: "checks" }), clock: this.clock });
    this.gateway = new GatewayMonitor({
      address: config.gateway.address,
      intervalMs: config.gateway.intervalMs,
      timeoutMs: config.gateway.timeoutMs,
      rise: config.gateway.rise,
      fall: config.gateway.fall,
      logger: this.logger.child({ component: "gateway" }),
    });
    this.keepalived = new KeepalivedDriver({ config, logger: this.logger.child({ component: "keepalived" }) });
    this.arpGuard = new ArpGuard({
      iface: config.vip.interface,
      vip: config.vip.address,
      timeoutMs: config.arpGuard.probeTimeoutMs,
      command: config.arpGuard.command,
      logger: this.logger.child({ component: "arp-guard" }),
    });
    this.link = new PeerLink({
      self: { name: this.self, listenAddress: config.listen.address ?? config.node.address, listenPort: config.listen.port, address: config.node.address },
      peer: { name: peer.name, address: peer.address, port: peer.port },
      secret: this.loaded.secret,
      logger: this.logger.child({ component: "peer" }),
      reconnectInitialMs: config.timings.reconnectInitialMs,
      reconnectMaxMs: config.timings.reconnectMaxMs,
    });
    this.control = new ControlServer({ socketPath: config.controlSocket, handlers: this.handlers(), logger: this.logger });
    this.store = new SqliteStore({ config, node: this.self, logger: this.logger.child({ component: "store" }), clock: this.clock });
    this.sync = new SyncEngine({ store: this.store, send: (message) => this.link.send(message), logger: this.logger.child({ component: "sync" }), clock: this.clock });
    this.sampler = new SystemSampler({
      intervalMs: config.store.sampleIntervalMs,
      dataDir: config.dataDir,
      iface: config.vip.interface,
      logger: this.logger.child({ component: "sampler" }),
      clock: this.clock,
      onSamples: (samples) => this.store.appendSamples(samples),
      checkLatencies: () => this.services.statuses().map((s) => ({ service: s.name, latencyMs: s.lastLatencyMs, healthy: s.healthy })),
    });
    this.metrics = config.metrics.enabled
      ? new MetricsServer({ address: config.metrics.address, port: config.metrics.port, logger: this.logger.child({ component: "metrics" }), collect: () => this.metricsSnapshot() })
      : null;
    // Every HA event also goes to the durable, replicated store (off the decision path).
    this.events.onEvent((event, wallMs) => {
      this.store.appendEvent({
        type: event.type,
        service: typeof event.fields["service"] === "string" ? (event.fields["service"] as string) : null,
        message: event.message,
        fields: event.fields,
        wallMs,
        monoMs: event.uptimeMs,
      });
    });
  }

  async start(): Promise<void> {
    const { config } = this.loaded;
    this.events.record("config.loaded", `configuration loaded from ${this.loaded.file}`, {
      file: this.loaded.file,
      vip: `${config.vip.address}/${config.vip.prefix}`,
      interface: config.vip.interface,
      peer: `${this.peerName}@${config.peers[0]?.address}:${config.peers[0]?.port}`,
      epoch: this.epochs.get(),
      version: AGENT_VERSION,
    });

    this.services.onEvent((event) => {
      switch (event.kind) {
        case "service-changed":
          this.events.record("check.changed", `service ${event.service} is ${event.healthy ? "healthy" : "failed"}: ${event.detail}`, { service: event.service, healthy: event.healthy, critical: event.critical, detail: event.detail }, event.healthy ? "info" : "warn");
          this.feedServices();
          break;
        case "restore-started":
          this.restoreAttemptsTotal.set(event.service, (this.restoreAttemptsTotal.get(event.service) ?? 0) + 1);
          this.events.record("restore.started", `restoring ${event.service} (attempt ${event.attempt}): ${event.command.join(" ")}`, { service: event.service, attempt: event.attempt, command: event.command });
          break;
        case "restore-finished":
          this.events.record("restore.finished", `restore of ${event.service} (attempt ${event.attempt}) ${event.ok ? "succeeded" : "failed"}: ${event.detail}`, { service: event.service, attempt: event.attempt, ok: event.ok, detail: event.detail }, event.ok ? "info" : "warn");
          break;
        case "restore-gave-up":
          this.events.record("restore.gave-up", `gave up restoring ${event.service} after ${event.attempts} attempts`, { service: event.service, attempts: event.attempts }, "error");
          break;
      }
    });
    this.gateway.onChange((reachable, detail) => {
      this.events.record("gateway.changed", `gateway ${config.gateway.address} ${reachable ? "reachable" : "unreachable"}: ${detail}`, { reachable, detail }, reachable ? "info" : "warn");
      this.enqueue({ kind: "gateway", reachable });
    });
    this.keepalived.onState((state) => {
      this.events.record("keepalived.state", `keepalived is ${state}`, { state });
      void this.observeVip();
    });
    this.link.onEvent((event) => this.onLinkEvent(event));

    this.store.onAlert((alert) => this.onStoreAlert(alert));
    this.store.onDailySummary((summary) => this.events.record("store.daily-summary", summary.message, { ...summary }));
    // The store never blocks HA: it opens in a worker and reports itself degraded on failure.
    await this.store.start();
    await this.sync.start();

    // Keepalived first, with the gate closed: nothing can claim the VIP until we decide.
    await this.keepalived.start();
    await this.control.start();
    await this.services.start();
    await this.gateway.start();
    await this.link.start();
    await this.sampler.start();
    if (this.metrics) {
      try {
        await this.metrics.start();
      } catch (error) {
        // Metrics are for monitoring; their port being taken must not stop HA.
        this.events.record("metrics.unavailable", `metrics endpoint not started: ${error instanceof Error ? error.message : String(error)}`, {}, "warn");
      }
    }
    this.running = true;
    this.feedServices();

    const interval = config.timings.heartbeatIntervalMs;
    this.tickTimer = setInterval(() => this.enqueueTick(), interval);
    // Keepalived notifications trigger a look at once; the slow poll only catches what they miss
    // (each look forks `ip`, so a fast poll would cost more CPU than everything else at idle).
    this.vipTimer = setInterval(() => void this.observeVip(), 1_000);
    this.enqueueTick();
    this.events.record("agent.started", `mnha ${AGENT_VERSION} started as ${this.self} (epoch ${this.epochs.get()})`, { version: AGENT_VERSION, protocol: CURRENT_PROTOCOL_VERSION });
  }

  /**
   * Clean stop: hand the VIP to a healthy peer if this node holds it, then close the gate
   * and stop Keepalived (which removes the VIP). Without a healthy peer the VIP is released:
   * an agent that is not running cannot keep renewing the lease.
   */
  async stop(reason = "stop requested"): Promise<void> {
    if (!this.running) return;
    this.events.record("agent.stopping", `stopping: ${reason}`, { reason });
    const requestId = randomUUID();
    const done = this.waitForRequest(requestId, this.loaded.config.timings.handoffTimeoutMs + 1_000);
    this.enqueue({ kind: "shutdown", requestId });
    const result = await done;
    this.events.record("agent.stopped", `stopped (${result.message})`, { handedTo: result.to });
    this.running = false;
    for (const timer of [this.tickTimer, this.vipTimer, this.wakeTimer]) if (timer) clearTimeout(timer);
    await this.queue;
    await this.control.stop().catch((error: unknown) => this.logger.warn({ err: error }, "control socket stop failed"));
    await this.link.stop().catch((error: unknown) => this.logger.warn({ err: error }, "peer link stop failed"));
    await this.services.stop();
    await this.gateway.stop();
    await this.keepalived.stop();
    await this.sampler.stop();
    await this.metrics?.stop().catch(() => undefined);
    await this.sync.stop();
    // Last: the store flushes what the stop itself recorded.
    await this.store.stop();
  }

  private onStoreAlert(alert: StoreAlert): void {
    switch (alert.kind) {
      case "degraded":
        this.events.record("store.degraded", `audit store degraded: ${alert.reason}; HA goes on, records are kept in memory`, { reason: alert.reason }, "error");
        break;
      case "recovered":
        this.events.record("store.recovered", `audit store recovered after ${Math.round(alert.afterMs / 1000)} s (${alert.reason})`, { afterMs: alert.afterMs, reason: alert.reason });
        break;
      case "dropping":
        this.events.record("store.dropping", `audit store queue full (${alert.queueLimit} records): dropping the oldest records (${alert.reason})`, { reason: alert.reason, queueLimit: alert.queueLimit }, "error");
        break;
      case "integrity-failed":
        this.events.record("store.integrity-failed", `audit store integrity check failed: ${alert.detail}`, { detail: alert.detail }, "error");
        break;
      case "integrity-restored":
        this.events.record("store.integrity-restored", "audit store integrity check passes again", {});
        break;
    }
  }

  // ---- inputs -------------------------------------------------------------------------

  private onLinkEvent(event: PeerLinkEvent): void {
    // The sync engine sees every link event; sync messages go to it alone.
    this.sync.handleLinkEvent(event);
    if (event.kind === "message" && SyncEngine.isSyncMessage(event.message)) return;
    switch (event.kind) {
      case "up":
        this.events.record("peer.connected", `peer ${event.peer} connected from ${event.remote} (protocol v${event.version})`, { peer: event.peer, remote: event.remote, version: event.version });
        this.enqueue({ kind: "peer-up" });
        // Tell the peer our state at once rather than at the next tick.
        this.enqueue(null);
        break;
      case "down":
        this.events.record("peer.disconnected", `peer ${event.peer} disconnected: ${event.reason}`, { peer: event.peer, reason: event.reason }, "warn");
        this.enqueue({ kind: "peer-down", reason: event.reason });
        break;
      case "message":
        this.enqueue({ kind: "peer-message", message: event.message });
        break;
      case "refusals":
        // Already summarised and rate-limited by the link; `peer.refusals` events stay on this node (sync skips them).
        this.events.record("peer.refusals", event.message, { count: event.count, byCode: event.byCode, sources: event.sources, otherSources: event.otherSources, first: event.first }, "warn");
        break;
    }
  }

  private feedServices(): void {
    const failing = this.services.statuses().filter((s) => s.critical && !s.healthy);
    const healthy = this.services.allCriticalHealthy();
    const reasons = failing.map((s) => `service ${s.name} ${s.successes + s.failures === 0 ? "not checked yet" : `failed (${s.lastDetail})`}`);
    const verdict = `${healthy}|${reasons.join(",")}`;
    if (verdict === this.lastServicesVerdict) return;
    this.lastServicesVerdict = verdict;
    this.enqueue({ kind: "services", healthy, reasons });
  }

  private enqueueTick(): void {
    this.enqueue({ kind: "tick" });
  }

  /** Queue one core step (null: just send a heartbeat). */
  private enqueue(input: ElectionInput | null): void {
    this.queue = this.queue
      .then(async () => {
        if (input !== null) {
          const now = this.clock.now();
          const effects = this.core.step(now, input);
          await this.apply(effects);
          this.countHolderChange(now);
          if (input.kind === "tick") {
            // Renew only after the tick's effects: a node that woke from a pause has closed
            // its gate by now, so the renewed lease cannot bring an old holder back.
            this.keepalived.renewLease();
            this.sendHeartbeat();
          }
        } else {
          this.sendHeartbeat();
        }
        this.scheduleWake();
      })
      .catch((error: unknown) => {
        this.logger.error({ err: error }, "election step failed");
      });
  }

  /** Counts each change of VIP holder this node learns of (for metrics). */
  private countHolderChange(now: number): void {
    const holder = this.core.snapshot(now).holder;
    if (holder !== null && holder !== this.lastKnownHolder) {
      if (this.lastKnownHolder !== null) this.failoversTotal += 1;
      this.lastKnownHolder = holder;
    }
  }

  private metricsSnapshot(): MetricsSnapshot {
    const now = this.clock.now();
    const snap = this.core.snapshot(now);
    const store = this.store.health();
    const sync = this.sync.status();
    return {
      node: this.self,
      version: AGENT_VERSION,
      role: snap.role,
      epoch: snap.epoch,
      failoversTotal: this.failoversTotal,
      vipHeld: this.vipPresent,
      peerConnected: snap.peerAlive,
      peerRttMs: null,
      gatewayReachable: this.gateway.reachable(),
      gatewayRttMs: this.gateway.lastRttMs(),
      services: this.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, latencyMs: s.lastLatencyMs, restoreAttemptsTotal: this.restoreAttemptsTotal.get(s.name) ?? 0 })),
      keepalivedState: this.keepalived.state(),
      store: { ok: store.ok, sizeBytes: store.sizeBytes, pending: store.pending },
      syncLagRecords: sync.lagEvents === null ? null : sync.lagEvents + (sync.lagSamples ?? 0),
    };
  }

  private scheduleWake(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const at = this.core.nextWakeAt(now);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    // Ticks already come every heartbeat interval; only wake early for a nearer deadline.
    if (at - now < this.loaded.config.timings.heartbeatIntervalMs) {
      this.wakeTimer = setTimeout(() => this.enqueue({ kind: "wake" }), Math.max(1, at - now));
    }
  }

  // ---- effects ------------------------------------------------------------------------

  private async apply(effects: ElectionEffect[]): Promise<void> {
    for (const effect of effects) {
      switch (effect.kind) {
        case "set-gate":
          await this.keepalived.setGate(effect.open);
          this.logger.debug({ open: effect.open }, "gate set");
          break;
        case "persist-epoch":
          this.epochs.set(effect.epoch);
          break;
        case "send":
          if (!this.link.send(effect.message)) this.logger.debug({ type: effect.message.type }, "peer not connected; message dropped");
          break;
        case "heartbeat-now":
          this.sendHeartbeat();
          break;
        case "arp-probe":
          void this.runArpProbe(effect.probeId);
          break;
        case "event": {
          const level = effect.type === "lease-expired" || effect.type === "stepped-down" || effect.type === "peer-lost" || effect.type === "holding-degraded" ? "warn" : "info";
          this.events.record(`election.${effect.type}`, effect.message, effect.fields, level);
          break;
        }
        case "request-done": {
          const pending = this.pending.get(effect.requestId);
          if (pending) {
            this.pending.delete(effect.requestId);
            pending.resolve({ ok: effect.ok, message: effect.message, to: effect.to, epoch: effect.epoch });
          }
          break;
        }
      }
    }
  }

  private async runArpProbe(probeId: number): Promise<void> {
    const result = await this.arpGuard.probe().catch((error: unknown) => ({ occupied: true, failed: true, macs: [], detail: `probe failed: ${String(error)}` }));
    // A probe that could not run counts as "occupied": when in doubt, do not claim.
    this.enqueue({ kind: "arp-result", probeId, occupied: result.occupied || result.failed, detail: result.detail });
  }

  private sendHeartbeat(): void {
    if (!this.link.connected()) return;
    const now = this.clock.now();
    const heartbeat: Heartbeat = {
      type: "heartbeat",
      seq: ++this.heartbeatSeq,
      node: this.self,
      ...this.core.heartbeatFields(now),
      vipPresent: this.vipPresent,
      keepalived: this.keepalived.state(),
      services: this.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, critical: s.critical })),
    };
    this.link.send(heartbeat);
  }

  private async observeVip(): Promise<void> {
    const present = await this.keepalived.vipPresent().catch(() => this.vipPresent);
    if (present !== this.vipPresent) {
      this.vipPresent = present;
      this.events.record("vip.changed", `VIP ${this.loaded.config.vip.address} ${present ? "is now on" : "is gone from"} ${this.loaded.config.vip.interface}`, { present, role: this.core.snapshot(this.clock.now()).role });
    }
  }

  // ---- requests -----------------------------------------------------------------------

  private waitForRequest(requestId: string, timeoutMs: number): Promise<{ ok: boolean; message: string; to: string | null; epoch: number }> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        resolve({ ok: false, message: `no result within ${timeoutMs} ms`, to: null, epoch: this.core.snapshot(this.clock.now()).epoch });
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
      });
    });
  }

  private handlers(): ControlHandlers {
    return {
      status: async () => this.status(),
      demote: async (options) => this.demote(options.timeoutMs),
      events: async (options) => this.queryEvents(options),
      failovers: async (options) => this.queryFailovers(options),
      metrics: async (options) => this.queryMetrics(options),
      version: () => ({ version: AGENT_VERSION, protocol: CURRENT_PROTOCOL_VERSION, node: this.self }),
    };
  }

  /** From the replicated store (both nodes' history); from memory if the store cannot answer. */
  private async queryEvents(options: EventQuery): Promise<HaEvent[]> {
    try {
      const rows = await this.store.queryEvents({ ...options, limit: options.limit ?? 50 });
      return rows.map(toHaEvent);
    } catch (error) {
      this.logger.warn({ err: error }, "audit store query failed; answering from recent events in memory");
      return this.events.recent({ ...(options.limit === undefined ? {} : { limit: options.limit }), ...(options.type === undefined ? {} : { type: options.type }) });
    }
  }

  private async queryFailovers(options: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]> {
    return this.store.failovers(options);
  }

  private async queryMetrics(options: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<MetricsReport> {
    return { summaries: await this.store.summarize(options), store: this.store.health() };
  }

  async demote(timeoutMs?: number): Promise<DemoteResult> {
    const started = this.clock.now();
    const requestId = randomUUID();
    const budget = Math.min(timeoutMs ?? this.loaded.config.timings.handoffTimeoutMs + 1_000, 60_000);
    this.events.record("operator.demote", "operator asked to demote this node", { requestId });
    const done = this.waitForRequest(requestId, budget);
    this.enqueue({ kind: "demote", requestId });
    const result = await done;
    const tookMs = Math.round(this.clock.now() - started);
    this.events.record("operator.demote.result", `demote ${result.ok ? "done" : "refused"}: ${result.message}`, { ok: result.ok, to: result.to, tookMs }, result.ok ? "info" : "warn");
    return { ok: result.ok, from: this.self, to: result.to, epoch: result.epoch, message: result.message, tookMs };
  }

  async status(): Promise<StatusReport> {
    await this.observeVip();
    const now = this.clock.now();
    const snap = this.core.snapshot(now);
    const { config } = this.loaded;
    const peerConfig = config.peers[0]!;
    const hb = snap.peer.heartbeat;
    const lastHeardMsAgo = snap.peer.lastHeardAt === null ? null : Math.round(now - snap.peer.lastHeardAt);
    const selfStatus: NodeStatus = {
      node: this.self,
      address: config.node.address,
      role: snap.role,
      epoch: snap.epoch,
      holder: snap.holder,
      eligible: snap.eligible,
      reasons: snap.reasons,
      vipPresent: this.vipPresent,
      keepalived: this.keepalived.state(),
      gatewayReachable: this.gateway.reachable(),
      services: this.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, critical: s.critical, detail: s.lastDetail, restoreAttempts: s.restoreAttempts, restoreState: s.restoreState })),
    };
    const peer: StatusReport["peer"] = hb
      ? {
          node: this.peerName,
          address: peerConfig.address,
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
      : { node: this.peerName, address: peerConfig.address, connected: false, lastHeardMsAgo };
    const vipOwner = this.vipPresent ? this.self : snap.peerAlive && hb?.vipPresent ? this.peerName : null;
    return {
      version: AGENT_VERSION,
      vip: { address: config.vip.address, prefix: config.vip.prefix, interface: config.vip.interface },
      gateway: { address: config.gateway.address, reachable: this.gateway.reachable(), rttMs: this.gateway.lastRttMs() },
      vipOwner,
      self: { ...selfStatus, uptimeMs: Math.round(now - this.startedAt), keepalivedPid: this.keepalived.pid(), keepalivedRestarts: this.keepalived.restarts(), leaseRemainingMs: snap.leaseRemainingMs },
      peer,
      store: (() => {
        const health = this.store.health();
        const sync = this.sync.status();
        return {
          ok: health.ok,
          reason: health.reason,
          sizeBytes: health.sizeBytes,
          pending: health.pending,
          dropped: health.dropped,
          syncLag: sync.lagEvents === null ? null : sync.lagEvents + (sync.lagSamples ?? 0),
          lastSyncAckMsAgo: sync.lastAckAgoMs ?? null,
        };
      })(),
    };
  }
}

/**
 * `mnha agent`: load the config (refusing to start on any problem), run until SIGTERM or
 * SIGINT, stop cleanly. A second signal forces an immediate exit.
 */
export async function runAgent(options: { configPath: string }): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(options.configPath);
  } catch (error) {
    if (isMnhaError(error)) {
      process.stderr.write(`mnha: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger({ level: loaded.config.log.level, name: loaded.config.node.name });
  const agent = new Agent({ loaded, logger });
  try {
    await agent.start();
  } catch (error) {
    const message = isMnhaError(error) ? `${error.message}${error.hint ? ` (hint: ${error.hint})` : ""}` : String(error);
    logger.fatal({ err: error }, `agent failed to start: ${message}`);
    process.stderr.write(`mnha: agent failed to start: ${message}\n`);
    await agent.stop("start failed").catch(() => undefined);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting now");
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, "signal received: stopping");
      agent
        .stop(`signal ${signal}`)
        .then(() => resolve(0))
        .catch((error: unknown) => {
          logger.error({ err: error }, "stop failed");
          resolve(1);
        });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

function toHaEvent(row: SyncEvent): HaEvent {
  return { seq: row.seq, node: row.node, service: row.service, time: new Date(row.wallMs).toISOString(), uptimeMs: Math.round(row.monoMs), type: row.type, message: row.message, fields: row.fields };
}
