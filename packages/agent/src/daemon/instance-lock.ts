import { spawnSync } from "node:child_process";
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";

/** Held for the agent process's life; the kernel drops it when the process dies (SIGKILL included). */
export interface InstanceLock {
  readonly path: string;
  release(): void;
}

export const INSTANCE_LOCK_FILE = "agent.lock";

/**
 * Takes the node's one-agent-per-data-dir lock: an exclusive flock(2) on `<dataDir>/agent.lock`.
 * Node has no flock binding, so util-linux `flock` locks the agent's own open file (passed as
 * fd 3): a flock belongs to the open file description, so it stays held through the agent's
 * fd after `flock` exits and is released only when the agent closes it or dies.
 * Throws AGENT_ALREADY_RUNNING (naming the holder's pid) when another process holds it; in
 * that case nothing on the node has been changed (the file is only opened, never truncated).
 */
export function acquireInstanceLock(dataDir: string, options: { flockBinary?: string } = {}): InstanceLock {
  const path = join(dataDir, INSTANCE_LOCK_FILE);
  let fd: number;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // libuv opens every file O_CLOEXEC: keepalived and the guard never inherit the lock.
    fd = openSync(path, constants.O_CREAT | constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "?";
    throw new MnhaError("AGENT_LOCK", `cannot open the agent's instance lock ${path}: ${code}`, {
      hint: code === "ELOOP" ? `${path} is a symbolic link; remove it (the agent creates the file itself)` : `check that ${dataDir} exists, is writable by root and is not on a read-only filesystem`,
      fields: { path, code },
    });
  }
  const flock = options.flockBinary ?? "flock";
  const result = spawnSync(flock, ["--exclusive", "--nonblock", "3"], { stdio: ["ignore", "ignore", "pipe", fd], timeout: 10_000, encoding: "utf8" });
  if (result.error || result.status !== 0) {
    if (!result.error && result.status === 1) {
      const holder = readHolderPid(path);
      closeSync(fd);
      throw new MnhaError("AGENT_ALREADY_RUNNING", `another mnha agent${holder === null ? "" : ` (pid ${holder})`} is already running for the data dir ${dataDir}; this one exits and changes nothing`, {
        hint: `only one agent may run per node: check it with \`mnha status\` (systemd: systemctl status mnha); stop it first if you meant to restart it`,
        fields: { dataDir, lockFile: path, pid: holder },
      });
    }
    closeSync(fd);
    const reason = result.error ? result.error.message : `exit code ${result.status ?? result.signal ?? "?"}: ${(result.stderr ?? "").trim().slice(0, 300)}`;
    throw new MnhaError("AGENT_LOCK", `cannot lock ${path} with ${flock}: ${reason}`, {
      hint: "install util-linux (it provides flock) and check that the data dir is on a local filesystem that supports flock",
      fields: { path },
    });
  }
  // Our pid, for the message a second agent prints. The lock, not this content, is the truth.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // A full or read-only disk: the lock is held all the same.
  }
  let held = true;
  return {
    path,
    release(): void {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}

function readHolderPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}
