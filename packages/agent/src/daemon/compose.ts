/**
 * Builds the real parts of an agent from a loaded config. Constructors only: nothing here
 * touches Keepalived, files or sockets; the Agent starts the parts, in order, and undoes a
 * start that fails.
 */
import { existsSync } from "node:fs";
import type { Clock, LoadedConfig, Logger } from "@mnha/shared";
import { GatewayMonitor } from "../checks/gateway-monitor.js";
import { ServiceMonitor } from "../checks/service-monitor.js";
import { ControlServer } from "../control/control-server.js";
import { KeepalivedDriver } from "../keepalived/driver.js";
import { MetricsServer } from "../metrics/metrics.js";
import { LoopDelay } from "../metrics/process-metrics.js";
import { SystemSampler } from "../metrics/system-sampler.js";
import { ArpGuard } from "../net/arp-guard.js";
import { PeerLink } from "../peer/peer-link.js";
import { distributionKeepalivedMustStayOff, readDistributionKeepalived, runHere } from "../keepalived/distribution-unit.js";
import { readSuiteInfo } from "../provision/suite-info.js";
import { SqliteStore } from "../store/sqlite-store.js";
import { SyncEngine } from "../sync/sync-engine.js";
import type { AgentComponents } from "./components.js";
import { EpochStore } from "./epoch-store.js";
import { dbSeedIncomplete, openLocalDatabase } from "../db/index.js";
import { KeptHealthReader } from "../db/kept-health.js";
import { DatabaseRoleSwitch } from "../db/role-switch.js";
import { Beat } from "../util/beat.js";

export function composeAgent(loaded: LoadedConfig, logger: Logger, clock: Clock): AgentComponents {
  const { config } = loaded;
  const peer = config.peers[0];
  const self = config.node.name;
  // One timer for the tick, the checks and the once-a-second work (util/beat.ts): fewer wake-ups
  // at idle. How late it fires is the loop delay the metrics export, with no sampler of their own.
  const loopDelay = new LoopDelay();
  const beat = new Beat(config.timings.heartbeatIntervalMs, { onLateness: (lateMs) => loopDelay.record(lateMs) });
  const services = new ServiceMonitor({ services: config.services, logger: logger.child({ component: "checks" }), clock, beat });
  const gateway = new GatewayMonitor({
    address: config.gateway.address,
    intervalMs: config.gateway.intervalMs,
    timeoutMs: config.gateway.timeoutMs,
    rise: config.gateway.rise,
    fall: config.gateway.fall,
    logger: logger.child({ component: "gateway" }),
  });
  const keepalived = new KeepalivedDriver({ config, logger: logger.child({ component: "keepalived" }), beat });
  const arpGuard = new ArpGuard({
    iface: config.vip.interface,
    vip: config.vip.address,
    timeoutMs: config.arpGuard.probeTimeoutMs,
    command: config.arpGuard.command,
    logger: logger.child({ component: "arp-guard" }),
  });
  const link = new PeerLink({
    self: { name: self, listenAddress: config.listen.address ?? config.node.address, listenPort: config.listen.port, address: config.node.address },
    peer: { name: peer?.name ?? "", address: peer?.address ?? "", port: peer?.port ?? 0 },
    secret: loaded.secret,
    logger: logger.child({ component: "peer" }),
    reconnectInitialMs: config.timings.reconnectInitialMs,
    reconnectMaxMs: config.timings.reconnectMaxMs,
    // The build's list (suite.json): a test build of the next version offers [current, next].
    supportedVersions: readSuiteInfo().protocols,
    beat,
  });
  const store = new SqliteStore({ config, node: self, logger: logger.child({ component: "store" }), clock });
  const engine = new SyncEngine({ store, send: (message) => link.send(message), logger: logger.child({ component: "sync" }), clock });
  const sampler = new SystemSampler({
    intervalMs: config.store.sampleIntervalMs,
    dataDir: config.dataDir,
    iface: config.vip.interface,
    logger: logger.child({ component: "sampler" }),
    clock,
    onSamples: (samples) => store.appendSamples(samples),
    checkLatencies: () => services.statuses().map((s) => ({ service: s.name, latencyMs: s.lastLatencyMs, healthy: s.healthy })),
  });
  return {
    epochs: new EpochStore(config.dataDir),
    services,
    gateway,
    keepalived,
    arpGuard,
    link,
    store,
    sync: {
      start: () => engine.start(),
      stop: () => engine.stop(),
      handleLinkEvent: (event) => engine.handleLinkEvent(event),
      isSyncMessage: (message) => SyncEngine.isSyncMessage(message as Parameters<typeof SyncEngine.isSyncMessage>[0]),
      status: () => engine.status(),
      announceAgain: (reason) => engine.announceAgain(reason),
    },
    sampler,
    beat,
    control: (handlers) => new ControlServer({ socketPath: config.controlSocket, handlers, logger }),
    metrics: config.metrics.enabled ? (collect) => new MetricsServer({ address: config.metrics.address, port: config.metrics.port, logger: logger.child({ component: "metrics" }), collect, loopDelay }) : null,
    ...(config.db.enabled ? { database: composeDatabase(loaded) } : {}),
    ...(distributionKeepalivedMustStayOff(config) && existsSync("/run/systemd/system") ? { distributionKeepalived: () => readDistributionKeepalived(runHere) } : {}),
  };
}

/** The local MariaDB for the election (db.enabled): each switch bounded by twice the connect timeout. */
export function composeDatabase(loaded: LoadedConfig): NonNullable<AgentComponents["database"]> {
  const { config } = loaded;
  const db = openLocalDatabase(config);
  // The health poll's connection is kept across polls (issue 12: one per second was costly).
  const healthReader = new KeptHealthReader({ label: db.label, connect: () => db.connect(), read: (connection) => db.readHealth(connection) });
  return {
    roleSwitch: new DatabaseRoleSwitch(db, { switchTimeoutMs: 2 * config.db.connectTimeoutMs, catchUpTimeoutMs: config.db.catchUpTimeoutMs }),
    health: (signal) => healthReader.health(signal),
    seedIncomplete: () => dbSeedIncomplete(config.dataDir),
    repairControl: db,
    close: async () => {
      await healthReader.close();
      await db.close();
    },
  };
}
