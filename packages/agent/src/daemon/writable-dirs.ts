/**
 * The directories the agent itself writes, checked once at start for a read-only file system.
 * Under the shipped unit that is the common case, not a broken disk: ProtectSystem=strict
 * leaves the agent only /var/lib/mnha and /run/mnha (and what a drop-in adds), so a
 * `backup.dir: /backup` failed every scheduled backup with EROFS (while `mnha backup now`,
 * run from a shell, worked), and a moved `store.path` degraded the audit store with
 * "unable to open database file". Now each says what it is and the one fix.
 *
 * Essential directories (the data dir, Keepalived's config, the control socket's) stop the
 * start with the fix; the others (the audit store, backups) are reported, and HA goes on.
 */
import { accessSync, constants } from "node:fs";
import { dirname, join } from "node:path";
import type { LoadedConfig } from "@mnha/shared";

export interface WritableDir {
  /** The config key that names it (shown to the operator). */
  setting: string;
  dir: string;
  /** Without it the agent cannot run. */
  essential: boolean;
  /** The setting names a file in the directory, not the directory. */
  ofFile: boolean;
}

export interface ReadOnlyDir extends WritableDir {
  message: string;
  hint: string;
}

export function writableDirs(loaded: Pick<LoadedConfig, "config" | "derived">): WritableDir[] {
  const { config, derived } = loaded;
  const candidates: WritableDir[] = [
    { setting: "dataDir", dir: config.dataDir, essential: true, ofFile: false },
    { setting: "keepalived.configPath", dir: dirname(derived.keepalivedConfigPath), essential: true, ofFile: true },
    { setting: "controlSocket", dir: dirname(config.controlSocket), essential: true, ofFile: true },
    { setting: "store.path", dir: dirname(config.store.path ?? join(config.dataDir, "mnha.db")), essential: false, ofFile: true },
    ...(config.backup.enabled ? [{ setting: "backup.dir", dir: config.backup.dir ?? join(config.dataDir, "backups"), essential: false, ofFile: false }] : []),
  ];
  // One entry per directory: the first key that names it, essential if any is.
  const byDir = new Map<string, WritableDir>();
  for (const candidate of candidates) {
    const seen = byDir.get(candidate.dir);
    if (seen === undefined) byDir.set(candidate.dir, { ...candidate });
    else seen.essential ||= candidate.essential;
  }
  return [...byDir.values()];
}

/** The error a write into `dir` would meet, or null. */
export type WriteProbe = (dir: string) => NodeJS.ErrnoException | null;

/**
 * access(2) with W_OK answers EROFS for a read-only mount. A directory not made yet is judged
 * by the nearest one that exists (where it would be made): nothing is created here.
 */
export const probeWrite: WriteProbe = (dir) => {
  for (let at = dir; ; at = dirname(at)) {
    try {
      accessSync(at, constants.W_OK);
      return null;
    } catch (error) {
      const failure = error as NodeJS.ErrnoException;
      if (failure.code !== "ENOENT" || at === dirname(at)) return failure;
    }
  }
};

/**
 * The directories on a read-only file system. Only EROFS counts here: ownership and modes
 * are the data dir's and the socket's own checks (control/socket-file.ts), and a missing
 * permission is a different fix.
 */
export function readOnlyDirs(dirs: readonly WritableDir[], options: { underSystemd: boolean; probe?: WriteProbe }): ReadOnlyDir[] {
  const probe = options.probe ?? probeWrite;
  const found: ReadOnlyDir[] = [];
  for (const entry of dirs) {
    if (probe(entry.dir)?.code !== "EROFS") continue;
    const named = entry.ofFile ? `${entry.dir} (the directory of ${entry.setting})` : `${entry.setting} ${entry.dir}`;
    found.push(
      options.underSystemd
        ? {
            ...entry,
            message: `${named} is read-only to the agent: mnha.service's sandbox (ProtectSystem=strict) lets it write only /var/lib/mnha, /run/mnha and the directories a drop-in adds`,
            hint: `run: systemctl edit mnha.service, add the two lines "[Service]" and "ReadWritePaths=${entry.dir}", then: systemctl restart mnha.service`,
          }
        : {
            ...entry,
            message: `${named} is on a read-only file system`,
            hint: `remount it read-write, or set ${entry.setting} to a directory on a writable one, then restart the agent`,
          },
    );
  }
  return found;
}
