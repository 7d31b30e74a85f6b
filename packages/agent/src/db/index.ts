/** The database adapter (MariaDB) and what the host and the CLI build it from. */
import type { MnhaConfig } from "@mnha/shared";
import { MariaDbDatabase } from "./mariadb.js";
import { readPasswordFile } from "./secret-file.js";
import type { ReplicationSetup } from "./types.js";

export * from "./gtid.js";
export * from "./settings.js";
export * from "./types.js";
export { divergenceBetween, replicaBroken, replicaCaughtUp } from "./replica-state.js";
export { MariaDbDatabase, healthFromRows } from "./mariadb.js";
export { dbSeedIncomplete, readSeedMarker, seedMarkerPath } from "./seed-marker.js";

export type DbConfig = MnhaConfig["db"];

export function rootPassword(db: DbConfig): string | null {
  return db.rootPasswordFile === undefined ? null : readPasswordFile(db.rootPasswordFile, "MariaDB root password");
}

/** This node's MariaDB, over its Unix socket, as root. */
export function openLocalDatabase(config: MnhaConfig): MariaDbDatabase {
  return new MariaDbDatabase({ target: { socket: config.db.socket }, user: config.db.rootUser, password: rootPassword(config.db), connectTimeoutMs: config.db.connectTimeoutMs, label: `${config.node.name} (local)` });
}

export function peerEndpoint(config: MnhaConfig): { name: string; host: string; port: number } {
  const peer = config.peers[0];
  return { name: peer?.name ?? "peer", host: config.db.peerAddress ?? peer?.address ?? "", port: config.db.peerPort };
}

/** The peer's MariaDB over TCP, as the replication user. */
export function openPeerDatabase(config: MnhaConfig, replicationPassword: string): MariaDbDatabase {
  const peer = peerEndpoint(config);
  return new MariaDbDatabase({ target: { host: peer.host, port: peer.port }, user: config.db.replication.user, password: replicationPassword, connectTimeoutMs: config.db.connectTimeoutMs, label: `${peer.name} (peer)` });
}

export function replicationSetup(config: MnhaConfig, replicationPassword: string): ReplicationSetup {
  const peer = peerEndpoint(config);
  return {
    peer: { host: peer.host, port: peer.port },
    peerConnectsFrom: config.node.address,
    user: config.db.replication.user,
    password: replicationPassword,
    connectRetrySeconds: config.db.replication.connectRetrySeconds,
    semiSync: { enabled: config.db.semiSync.enabled, timeoutMs: config.db.semiSync.timeoutMs },
  };
}
