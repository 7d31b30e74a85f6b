/**
 * For instance-lock.test.ts: takes the instance lock on DATA_DIR, prints one JSON line
 * ({ locked: true, pid } or { locked: false, code, message, hint }), then holds the lock
 * until killed (or exits 3 when refused, as the agent does).
 * Usage: node --import tsx lock-child.ts DATA_DIR   (TSX_TSCONFIG_PATH=tsconfig.child.json)
 */
import { isMnhaError } from "@mnha/shared";
import { acquireInstanceLock } from "../../src/daemon/instance-lock.js";

const dataDir = process.argv[2];
if (!dataDir) {
  console.error("usage: lock-child.ts DATA_DIR");
  process.exit(2);
}
try {
  acquireInstanceLock(dataDir);
  console.log(JSON.stringify({ locked: true, pid: process.pid }));
  setInterval(() => undefined, 60_000);
} catch (error) {
  if (!isMnhaError(error)) throw error;
  console.log(JSON.stringify({ locked: false, code: error.code, message: error.message, hint: error.hint }));
  process.exit(3);
}
