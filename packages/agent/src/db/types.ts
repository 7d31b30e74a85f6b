/**
 * The database adapter: what the agent and the `mnha db` commands may ask of the local (or
 * the peer's) MariaDB. The core decides when; this only carries it out and reports facts.
 */
import type { GtidPosition } from "./gtid.js";
import type { ServerSettings } from "./settings.js";

export type ThreadState = "Yes" | "No" | "Connecting" | "Preparing";

/** One server's replication state, with zsha2's names where it has them. */
export interface DatabaseHealth {
  alive: boolean;
  /** Why not alive (connection or query error), else null. */
  error: string | null;
  readOnly: boolean | null;
  serverId: number | null;
  gtidDomainId: number | null;
  /** Whether a replica (CHANGE MASTER) is configured at all. */
  replicaConfigured: boolean;
  masterHost: string | null;
  slaveIoRunning: ThreadState | null;
  slaveSqlRunning: ThreadState | null;
  secondsBehindMaster: number | null;
  lastIoError: string | null;
  lastSqlError: string | null;
  gtidIoPos: string | null;
  gtidSlavePos: string | null;
  gtidBinlogPos: string | null;
  gtidCurrentPos: string | null;
  /** Seconds since the server started (`Uptime`): it tells a restarted server from a running one. */
  uptimeSeconds: number | null;
  semiSync: {
    masterEnabled: boolean;
    /** ON while commits wait for the peer's acknowledgement; OFF after a fallback to asynchronous. */
    masterActive: boolean;
    slaveEnabled: boolean;
    slaveActive: boolean;
    masterClients: number;
    /** Commits acknowledged by the peer / committed without its acknowledgement (fallback). */
    yesTx: number;
    noTx: number;
  } | null;
}

export interface PeerEndpoint {
  host: string;
  port: number;
}

export interface ReplicationSetup {
  peer: PeerEndpoint;
  /** This node's address as the peer sees it: the replication user is granted for it. */
  peerConnectsFrom: string;
  user: string;
  password: string;
  connectRetrySeconds: number;
  semiSync: { enabled: boolean; timeoutMs: number };
}

export interface GtidWaitResult {
  reached: boolean;
  waitedMs: number;
  /** gtid_current_pos when the wait ended. */
  position: string;
  /** Why it cannot be reached by waiting (errant transactions in our own domain), else null. */
  impossible: string | null;
}

export interface Database {
  /** Where this database is, for messages ("mn1 (local socket /run/mysqld/mysqld.sock)"). */
  readonly label: string;
  /** Reads the settings replication depends on (not judged here: see settings.ts). */
  settings(): Promise<ServerSettings>;
  /** Creates or updates the replication user for the peer (never binlogged) with its grants. */
  ensureReplicationUser(user: string, fromHost: string, password: string): Promise<void>;
  /** Whether the replication user exists for that host. */
  replicationUserExists(user: string, fromHost: string): Promise<boolean>;
  /** Replicate from the peer with GTID (slave_pos), semi-sync on both sides; idempotent. */
  setupReplication(setup: ReplicationSetup): Promise<void>;
  /** Turns semi-sync on or off (AFTER_SYNC, timeout) without touching the replica. */
  configureSemiSync(options: { enabled: boolean; timeoutMs: number }): Promise<void>;
  startReplica(): Promise<void>;
  stopReplica(): Promise<void>;
  /** STOP and START the replica's IO thread only: it registers with the peer again (a semi-sync replica only at its connect). */
  restartReplicaIo(): Promise<void>;
  setReadOnly(on: boolean): Promise<void>;
  readOnly(): Promise<boolean>;
  /** gtid_current_pos: every transaction this server wrote or applied. */
  gtidCurrentPos(): Promise<GtidPosition>;
  /** gtid_binlog_pos: what this server's binary log holds (what a replica of it can fetch). */
  gtidBinlogPos(): Promise<GtidPosition>;
  /**
   * Waits until this server has applied every transaction of `target` (MASTER_GTID_WAIT for
   * the peer's domains; its own domain is checked directly, since waiting cannot add to it).
   */
  waitForGtid(target: GtidPosition, timeoutMs: number): Promise<GtidWaitResult>;
  health(): Promise<DatabaseHealth>;
  close(): Promise<void>;
}
