/**
 * One agent per data dir: an exclusive flock on <dataDir>/agent.lock, taken before the agent
 * touches anything else and held for the life of the process (the kernel drops it when the
 * process dies, however it dies).
 */
import { spawnSync } from "node:child_process";
import { closeSync, constants, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";

export interface InstanceLock {
  readonly path: string;
  release(): void;
}

export function acquireInstanceLock(dataDir: string): InstanceLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, "agent.lock");
  const fd = openSync(path, constants.O_CREAT | constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
  // flock(1) locks the open file description it inherits as fd 3: the lock stays with our fd
  // after it exits.
  const result = spawnSync("flock", ["--exclusive", "--nonblock", "3"], { stdio: ["ignore", "ignore", "pipe", fd] });
  if (result.error || result.status !== 0) {
    closeSync(fd);
    if (result.status === 1) {
      throw new MnhaError("AGENT_ALREADY_RUNNING", `another mnha agent is already running for ${dataDir} (it holds ${path})`, {
        hint: "this node's agent is already running (systemctl status mnha); stop it first if you mean to run it by hand",
        fields: { dataDir, lock: path },
      });
    }
    throw new MnhaError("INTERNAL", `cannot lock ${path}: ${result.error?.message ?? result.stderr.toString().trim()}`, { hint: "check that util-linux flock is installed", fields: { lock: path } });
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}
