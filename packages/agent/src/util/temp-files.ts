/**
 * Temporary files that must not outlive the command that made them: MariaDB option files
 * with passwords, a diagnostic bundle's staging and its half-written archive. A command
 * interrupted with Ctrl-C, or killed, would otherwise leave them behind.
 *
 * A tracked path goes on `process.exit`, and on a SIGINT, SIGTERM or SIGHUP that would end
 * the process (one it has no handler of its own for: the agent's graceful stop and its
 * ignored SIGHUP decide for themselves, and an exit then cleans up). A temporary directory's
 * name carries the pid, so each new one first sweeps away those of processes that are gone
 * (which `kill -9` left behind).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { processAlive } from "./process-alive.js";

export interface TempDir {
  readonly path: string;
  /** Removes the directory and everything in it. */
  remove(): void;
}

/** `<prefix><pid>-<random>`, as made by `makeTempDir`. */
const WITH_PID = /^(\d+)-[A-Za-z0-9]+$/;
/** `<prefix><random>`, as mnha made them before the pid was in the name: removed once a day old. */
const LEGACY = /^[A-Za-z0-9]{6}$/;
const LEGACY_AGE_MS = 24 * 3_600_000;
const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * A new 0700 directory `$TMPDIR/<prefix><pid>-*`, removed when the process ends. `what` names
 * the job for the error a full or missing $TMPDIR gets ("stage the bundle's files").
 */
export function makeTempDir(prefix: string, what: string): TempDir {
  sweepLeftovers(prefix);
  let path: string;
  try {
    path = mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
  } catch (error) {
    throw tempDirError(error, what);
  }
  const untrack = removeOnExit(path);
  return {
    path,
    remove() {
      untrack();
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Removes `path` (file or directory) when the process ends; the returned function stops that. */
export function removeOnExit(path: string): () => void {
  if (tracked.size === 0) {
    process.on("exit", removeTracked);
    for (const signal of CLEANUP_SIGNALS) process.on(signal, onSignal);
  }
  tracked.add(path);
  return () => {
    tracked.delete(path);
    if (tracked.size === 0) detach();
  };
}

/**
 * $TMPDIR could not take a command's files (full, missing, read-only): DISK_FULL or
 * OPERATION_FAILED with the fix, never "a bug in mnha". Anything but a system error is returned as is.
 */
export function tempDirError(error: unknown, what: string): unknown {
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (error instanceof MnhaError || typeof errno !== "string") return error;
  const full = errno === "ENOSPC" || errno === "EDQUOT";
  return new MnhaError(full ? "DISK_FULL" : "OPERATION_FAILED", `cannot ${what} in ${tmpdir()} (${errno})`, {
    hint: `${full ? `free space in ${tmpdir()} (df -h ${tmpdir()})` : `check ${tmpdir()} (it must exist and be writable by root)`}, or point TMPDIR at another directory, then run the command again`,
    cause: error,
  });
}

/** Removes the `<prefix>*` directories in $TMPDIR of processes that no longer run. Never throws. */
export function sweepLeftovers(prefix: string, now = Date.now()): string[] {
  const base = tmpdir();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base).filter((name) => name.startsWith(prefix));
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(base, name);
    const rest = name.slice(prefix.length);
    try {
      const pid = WITH_PID.exec(rest)?.[1];
      const stale = pid !== undefined ? !processAlive(Number(pid)) : LEGACY.test(rest) && now - statSync(path).mtimeMs > LEGACY_AGE_MS;
      if (!stale) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Someone else's to deal with (or gone meanwhile).
    }
  }
  return removed;
}

// ---- the process's tracked paths

const tracked = new Set<string>();

function removeTracked(): void {
  for (const path of tracked) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Its directory is gone or not one: nothing left to remove.
    }
  }
  tracked.clear();
}

/** A signal nobody else listens for ends the process without an "exit" event: clean up, then let it. */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listeners(signal).some((listener) => listener !== onSignal)) return;
  removeTracked();
  detach();
  process.kill(process.pid, signal);
}

function detach(): void {
  process.removeListener("exit", removeTracked);
  for (const signal of CLEANUP_SIGNALS) process.removeListener(signal, onSignal);
}
