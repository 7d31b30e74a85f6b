/**
 * Passwords for the MariaDB client programs go in option files (mode 0600, in a private
 * temporary directory), never on their command line, where `ps` would show them.
 *
 * The directory must not outlive its command: a seed or a backup interrupted with Ctrl-C, or
 * killed, would otherwise leave the root and replication passwords in /tmp. It goes on
 * `process.exit`, and on a SIGINT, SIGTERM or SIGHUP that would end the process (one it has
 * no handler of its own for), and its name carries the pid, so each new directory first
 * sweeps away those of processes that are gone (which `kill -9` left behind).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { processAlive } from "../util/process-alive.js";

export interface ClientOptionFiles {
  /** Writes `[client]` user/password to a new 0600 file and returns its path. */
  write(name: string, user: string, password: string | null): string;
  /** Removes the directory and every file in it. */
  remove(): void;
}

const PREFIX = "mnha-db-";
/** `mnha-db-<pid>-<random>`: made by the process <pid>. */
const WITH_PID = /^mnha-db-(\d+)-[A-Za-z0-9]+$/;
/** `mnha-db-<random>`, as mnha made them before the pid was in the name: removed once a day old. */
const LEGACY = /^mnha-db-[A-Za-z0-9]{6}$/;
const LEGACY_AGE_MS = 24 * 3_600_000;
const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

export function clientOptionFiles(): ClientOptionFiles {
  sweepLeftovers();
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
  } catch (error) {
    throw optionFileError(error, join(tmpdir(), `${PREFIX}${process.pid}-*`));
  }
  track(dir);
  return {
    write(name, user, password) {
      const file = join(dir, `${name}.cnf`);
      const lines = ["[client]", `user=${quoteOption(user)}`, ...(password === null ? [] : [`password=${quoteOption(password)}`]), ""];
      try {
        writeFileSync(file, lines.join("\n"), { mode: 0o600 });
      } catch (error) {
        throw optionFileError(error, file);
      }
      return file;
    },
    remove() {
      untrack(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- the process's live directories, removed when it ends

const live = new Set<string>();

function removeLive(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

/**
 * A signal nobody else listens for would end the process without an "exit" event: remove the
 * directories, then let the signal do that. A process with its own handler (the agent's
 * graceful stop, its ignored SIGHUP) decides for itself; if it exits, "exit" cleans up.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listeners(signal).some((listener) => listener !== onSignal)) return;
  removeLive();
  detach();
  process.kill(process.pid, signal);
}

function track(dir: string): void {
  if (live.size === 0) {
    process.on("exit", removeLive);
    for (const signal of CLEANUP_SIGNALS) process.on(signal, onSignal);
  }
  live.add(dir);
}

function untrack(dir: string): void {
  live.delete(dir);
  if (live.size === 0) detach();
}

function detach(): void {
  process.removeListener("exit", removeLive);
  for (const signal of CLEANUP_SIGNALS) process.removeListener(signal, onSignal);
}

/** A temporary directory that cannot take the option files (full, read-only, missing): what to do. */
function optionFileError(error: unknown, path: string): MnhaError {
  const errno = (error as NodeJS.ErrnoException).code ?? "error";
  const full = errno === "ENOSPC" || errno === "EDQUOT";
  return new MnhaError(full ? "DISK_FULL" : "OPERATION_FAILED", `cannot write the MariaDB client's option file ${path} (${errno})`, {
    hint: `${full ? `free space in ${tmpdir()} (df -h ${tmpdir()})` : `check ${tmpdir()} (it must exist and be writable by root)`}, or point TMPDIR at another directory, then run the command again`,
    cause: error,
  });
}

/** Removes the option-file directories of processes that no longer run. Never throws. */
export function sweepLeftovers(now = Date.now()): string[] {
  const base = tmpdir();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base).filter((name) => name.startsWith(PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(base, name);
    try {
      const pid = WITH_PID.exec(name)?.[1];
      const stale = pid !== undefined ? !processAlive(Number(pid)) : LEGACY.test(name) && now - statSync(path).mtimeMs > LEGACY_AGE_MS;
      if (!stale || !existsSync(path)) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Someone else's to deal with (or gone meanwhile).
    }
  }
  return removed;
}

/** An option-file value in double quotes, with backslashes and quotes escaped. */
export function quoteOption(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
