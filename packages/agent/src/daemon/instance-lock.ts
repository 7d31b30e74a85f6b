import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { acquireFileLock, type FileLock } from "../util/file-lock.js";

/** Held for the agent process's life; the kernel drops it when the process dies (SIGKILL included). */
export type InstanceLock = FileLock;

export const INSTANCE_LOCK_FILE = "agent.lock";

/**
 * Takes the node's one-agent-per-data-dir lock: an exclusive flock(2) on `<dataDir>/agent.lock`
 * (util/file-lock.ts). Throws AGENT_ALREADY_RUNNING (naming the holder's pid) when another
 * process holds it; in that case nothing on the node has been changed.
 */
export function acquireInstanceLock(dataDir: string, options: { flockBinary?: string } = {}): InstanceLock {
  return acquireFileLock(join(dataDir, INSTANCE_LOCK_FILE), {
    content: String(process.pid),
    failureCode: "AGENT_LOCK",
    ...(options.flockBinary === undefined ? {} : { flockBinary: options.flockBinary }),
    busy: (holderText) => {
      const holder = holderPid(holderText);
      return new MnhaError("AGENT_ALREADY_RUNNING", `another mnha agent${holder === null ? "" : ` (pid ${holder})`} is already running for the data dir ${dataDir}; this one exits and changes nothing`, {
        hint: `only one agent may run per node: check it with \`mnha status\` (systemd: systemctl status mnha); stop it first if you meant to restart it`,
        fields: { dataDir, lockFile: join(dataDir, INSTANCE_LOCK_FILE), pid: holder },
      });
    },
  });
}

function holderPid(text: string | null): number | null {
  const pid = Number(text);
  return text !== null && Number.isInteger(pid) && pid > 1 ? pid : null;
}
