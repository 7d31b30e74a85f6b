/**
 * One long operation at a time on a node: restore, upgrade-mn, upgrade-ha, install-ha, db seed
 * and resync each take `<dataDir>/operation.lock` for their whole run. A second one, typed in
 * another terminal or started again while the first still runs in a lost SSH session, exits at
 * once and changes nothing, instead of running the same steps side by side (two loads into one
 * database, two installers). The kernel drops the lock with the process, however it ends.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { acquireFileLock, type FileLock } from "../util/file-lock.js";

export const OPERATION_LOCK_FILE = "operation.lock";

interface Holder {
  pid: number;
  operation: string;
  since: string;
}

/**
 * Takes the node's operation lock for `operation` (as the operator typed it, e.g. "upgrade-mn"),
 * or throws OPERATION_RUNNING. Taken first, before the command's own checks, so a second run is
 * told what runs rather than tripping over its half-done work. `dir` is not created unless
 * `createDir`: a node without its data dir has no mnha state a second run could trample (the
 * agent, install-ha or the plan creates it), and a mistyped command must leave such a node as it was.
 */
export function acquireOperationLock(dir: string, operation: string, options: { flockBinary?: string; now?: Date; createDir?: boolean } = {}): FileLock {
  const path = join(dir, OPERATION_LOCK_FILE);
  if (options.createDir !== true && !existsSync(dir)) return { path, release: () => undefined, keepAtPath: () => "kept" };
  const holder: Holder = { pid: process.pid, operation, since: (options.now ?? new Date()).toISOString() };
  return acquireFileLock(path, {
    content: JSON.stringify(holder),
    failureCode: "OPERATION_FAILED",
    ...(options.flockBinary === undefined ? {} : { flockBinary: options.flockBinary }),
    busy: (text) => {
      const other = parseHolder(text);
      const who = other === null ? "another mnha operation" : `mnha ${other.operation} (pid ${other.pid}, since ${other.since})`;
      return new MnhaError("OPERATION_RUNNING", `${who} is running on this node; this ${operation} exits and changes nothing`, {
        hint:
          `one long operation at a time per node: wait for it to finish (mnha events --type plan shows its steps); ` +
          `if its terminal is gone and it is stuck, stop it${other === null ? "" : ` (kill ${other.pid})`} and run your command again: restore, upgrade and install resume where they stopped`,
        fields: { lockFile: join(dir, OPERATION_LOCK_FILE), holder: other },
      });
    },
  });
}

/** Runs `work` under the node's operation lock, released however it ends. */
export async function withOperationLock<T>(dir: string, operation: string, work: () => Promise<T>): Promise<T> {
  const lock = acquireOperationLock(dir, operation);
  try {
    return await work();
  } finally {
    lock.release();
  }
}

function parseHolder(text: string | null): Holder | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (typeof value.pid === "number" && typeof value.operation === "string" && typeof value.since === "string") return { pid: value.pid, operation: value.operation, since: value.since };
  } catch {
    // Not ours, or cut short: the lock still says someone holds it.
  }
  return null;
}
