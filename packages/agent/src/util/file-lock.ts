import { spawnSync } from "node:child_process";
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { MnhaError, type ErrorCode } from "@mnha/shared";

/** Held for the process's life at most; the kernel drops it when the process dies (SIGKILL included). */
export interface FileLock {
  readonly path: string;
  release(): void;
  /**
   * The lock file removed or replaced by hand no longer guards anything: a second comer would
   * lock the new file. This locks the file now at the path too (made again if missing), keeping
   * the old one. "kept": nothing to do; "relocked": done; "taken": another process holds the
   * new file (it came in the gap); "failed": it could not be made again (read-only, full).
   */
  keepAtPath(): "kept" | "relocked" | "taken" | "failed";
}

export interface FileLockOptions {
  /** What the file says while held (who holds it), for the message a second comer prints. */
  content: string;
  /** The error for "another process holds it", given what the file says (null: unreadable or empty). */
  busy: (holder: string | null) => MnhaError;
  /** The code of a lock that cannot be taken at all (no flock, a symlink, a read-only dir). */
  failureCode: ErrorCode;
  flockBinary?: string;
}

/**
 * Takes an exclusive flock(2) on `path`, or throws `busy(...)` at once when another process
 * holds it. Node has no flock binding, so util-linux `flock` locks our own open file (passed as
 * fd 3): a flock belongs to the open file description, so it stays held through our fd after
 * `flock` exits, and is released only when we close it or die. While another holds it the file
 * is only opened, never truncated: nothing is changed.
 */
export function acquireFileLock(path: string, options: FileLockOptions): FileLock {
  const fds = [lockFd(path, options)];
  let held = true;
  return {
    path,
    release(): void {
      if (!held) return;
      held = false;
      for (const fd of fds.splice(0)) closeSync(fd);
    },
    keepAtPath() {
      if (!held) return "kept";
      const current = fds[fds.length - 1] as number;
      try {
        if (statSync(path).ino === fstatSync(current).ino) return "kept";
      } catch {
        // Missing: made again below.
      }
      try {
        fds.push(lockFd(path, options));
        return "relocked";
      } catch (error) {
        return error instanceof MnhaError && error.code !== options.failureCode ? "taken" : "failed";
      }
    },
  };
}

/** Opens and flocks `path`, writes the holder's record; returns the fd (held for the lock's life). */
function lockFd(path: string, options: FileLockOptions): number {
  const dir = dirname(path);
  let fd: number;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // libuv opens every file O_CLOEXEC: children (keepalived, the guard, installers) never inherit the lock.
    fd = openSync(path, constants.O_CREAT | constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "?";
    throw new MnhaError(options.failureCode, `cannot open the lock file ${path}: ${code}`, {
      hint: code === "ELOOP" ? `${path} is a symbolic link; remove it (mnha creates the file itself)` : `check that ${dir} exists, is writable by root and is not on a read-only filesystem`,
      fields: { path, code },
    });
  }
  const flock = options.flockBinary ?? "flock";
  const result = spawnSync(flock, ["--exclusive", "--nonblock", "3"], { stdio: ["ignore", "ignore", "pipe", fd], timeout: 10_000, encoding: "utf8" });
  if (result.error || result.status !== 0) {
    if (!result.error && result.status === 1) {
      const holder = readHolder(path);
      closeSync(fd);
      throw options.busy(holder);
    }
    closeSync(fd);
    const reason = result.error ? result.error.message : `exit code ${result.status ?? result.signal ?? "?"}: ${(result.stderr ?? "").trim().slice(0, 300)}`;
    throw new MnhaError(options.failureCode, `cannot lock ${path} with ${flock}: ${reason}`, {
      hint: "install util-linux (it provides flock) and check that the directory is on a local filesystem that supports flock",
      fields: { path },
    });
  }
  // Who holds it, for the message a second comer prints. The lock, not this content, is the truth.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${options.content}\n`, 0);
  } catch {
    // A full or read-only disk: the lock is held all the same.
  }
  return fd;
}

function readHolder(path: string): string | null {
  try {
    const text = readFileSync(path, "utf8").trim();
    return text === "" ? null : text;
  } catch {
    return null;
  }
}
