/**
 * The daemon's composition: what an agent is made of, as interfaces, and the function that
 * builds the real parts from a loaded config. The Agent takes these parts ready-made, so its
 * unit tests pass in-memory ones and need no root, no Keepalived and no sockets.
 */
import type { DailySummary } from "../store/sqlite-store.js";
import type { StoreAlert } from "../store/sqlite-store.js";
import type { NodeOpsHost } from "../ops/node-ops.js";
import type { ArpGuardApi, ControlHandlers, FailoverRecord, GatewayMonitorApi, KeepalivedDriverApi, NewEvent, NewSample, PeerLinkApi, PeerLinkEvent, SeriesSummary, ServiceMonitorApi, Startable, StoreHealth, SyncEvent, EventFilter } from "../contracts.js";
import type { MetricsSnapshot } from "../metrics/metrics.js";
import type { SyncStatus } from "../sync/sync-engine.js";
import type { Database, DatabaseHealth } from "../db/types.js";
import type { HostDatabase } from "../host/election-host.js";
import type { Beat } from "../util/beat.js";

/** The local MariaDB as the agent needs it (db.enabled): the election's switches and a health poll. */
export interface AgentDatabase {
  roleSwitch: HostDatabase;
  /** Never throws: a dead server is `alive: false`. `signal`: the poll gave up on this read (its timeout). */
  health(signal?: AbortSignal): Promise<DatabaseHealth>;
  /** An interrupted `db seed` left its marker: never eligible. */
  seedIncomplete(): boolean;
  /** What a restarted server forgot, given back: semi-sync, a replica left stopped (absent: not kept, as in tests without it). */
  repairControl?: Pick<Database, "configureSemiSync" | "restartReplicaIo" | "startReplica">;
  close(): Promise<void>;
}

/** What the agent needs of the audit store. */
export interface AgentStore extends Startable {
  appendEvent(event: NewEvent): number;
  appendSamples(samples: NewSample[]): void;
  queryEvents(filter: EventFilter): Promise<SyncEvent[]>;
  failovers(filter: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]>;
  summarize(filter: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<SeriesSummary[]>;
  health(): StoreHealth;
  onAlert(listener: (alert: StoreAlert) => void): void;
  onDailySummary(listener: (summary: DailySummary) => void): void;
}

/** The control API's server. */
export interface AgentControl extends Startable {
  /** Listens again if its socket file was removed by hand; true when it did. */
  keepSocketFile(): Promise<boolean>;
}

/** What the agent needs of the replication engine. */
export interface AgentSync extends Startable {
  handleLinkEvent(event: PeerLinkEvent): void;
  /** Sync messages are the engine's alone; the election never sees them. */
  isSyncMessage(message: unknown): boolean;
  status(): Pick<SyncStatus, "lagEvents" | "lagSamples" | "lastAckAgoMs">;
  /** Tell the peer again what the store holds (after the store recovered, perhaps into a new file). */
  announceAgain(reason: string): void;
}

/** The highest epoch seen, durable (written before the agent acts on it). */
export interface EpochStoreApi {
  get(): number;
  set(epoch: number): void;
  /** Why the file read at start gave no epoch (null: it did, or there was none yet). */
  readProblem?(): string | null;
  path?(): string;
  /** Writes the epoch back if its file was removed or replaced by hand; says what it did. */
  restoreIfLost?(): string | null;
}

export interface AgentComponents {
  epochs: EpochStoreApi;
  /** The checks, and the restore holds operator modes put on them (maintenance, stop-node). */
  services: ServiceMonitorApi & NodeOpsHost["services"];
  gateway: GatewayMonitorApi;
  keepalived: KeepalivedDriverApi & Required<Pick<KeepalivedDriverApi, "repair">>;
  arpGuard: ArpGuardApi;
  link: PeerLinkApi;
  store: AgentStore;
  sync: AgentSync;
  sampler: Startable;
  /** Built once the agent's handlers exist. */
  control: (handlers: ControlHandlers) => AgentControl;
  /** Null: metrics disabled. */
  metrics: ((collect: () => MetricsSnapshot) => Startable) | null;
  /** Absent: db.enabled is false (the election ignores the database). */
  database?: AgentDatabase;
  /**
   * The distribution's keepalived.service as systemd has it, read once at start. Absent: the
   * agent's Keepalived is that unit (keepalived.mode: service), or systemd does not run here.
   */
  distributionKeepalived?: () => Promise<{ enabled: string; active: boolean }>;
  /**
   * The one timer of the periodic work, at the heartbeat interval: compose.ts gives it to the
   * service checks, the Keepalived driver and the peer link; the agent's tick and polls ride it
   * too. Absent: the agent makes its own.
   */
  beat?: Beat;
}
