/** Database backups: take, list, verify, retain, copy to a remote host, schedule. */
import { join } from "node:path";
import type { MnhaConfig } from "@mnha/shared";
import { openLocalDatabase, rootPassword } from "../db/index.js";
import { summarize } from "../db/seed.js";
import { applyRetention, newestGoodBackupAgeSeconds, takeBackup, type DumpSource } from "./backup-files.js";
import { copyToRemote, type RemoteTarget } from "./remote-copy.js";
import type { BackupJob } from "./scheduler.js";

export * from "./backup-files.js";
export * from "./manifest.js";
export * from "./naming.js";
export * from "./retention.js";
export * from "./remote-copy.js";
export * from "./scheduler.js";

export type BackupConfig = MnhaConfig["backup"];

export function backupDir(config: MnhaConfig): string {
  return config.backup.dir ?? join(config.dataDir, "backups");
}

/** This node's MariaDB as a dump source (root over the local socket). */
export function localDumpSource(config: MnhaConfig): DumpSource {
  return {
    node: config.node.name,
    socket: config.db.socket,
    rootUser: config.db.rootUser,
    rootPassword: rootPassword(config.db),
    dumpBinary: config.db.dumpBinary,
    listSchemas: async () => (await summarize(openLocalDatabase(config))).schemas.map((s) => s.name),
  };
}

export function remoteTarget(config: MnhaConfig): RemoteTarget | null {
  const remote = config.backup.remote;
  if (remote === undefined) return null;
  return { host: remote.host, user: remote.user, port: remote.port, dir: remote.dir, keyFile: remote.keyFile, knownHostsFile: remote.knownHostsFile, keep: remote.keep };
}

/** The backup job as the CLI and the scheduler run it. */
export function backupJob(config: MnhaConfig): BackupJob {
  const dir = backupDir(config);
  const target = remoteTarget(config);
  return {
    take: () => takeBackup(localDumpSource(config), dir),
    retain: () => applyRetention(dir, { keepCount: config.backup.keep.count, keepDays: config.backup.keep.days }, new Date()),
    copyRemote: target === null ? null : (path) => copyToRemote(target, path),
    newestGoodAgeSeconds: () => newestGoodBackupAgeSeconds(dir, new Date()),
  };
}
