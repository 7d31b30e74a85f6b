import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMnhaError } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { OPERATION_LOCK_FILE, acquireOperationLock, withOperationLock } from "../../src/ops/operation-lock.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mnha-oplock-"));
  dirs.push(dir);
  return dir;
}

function caught(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  return null;
}

// flock locks belong to the open file description: a second open in the same process conflicts
// exactly as a second process would (instance-lock.test.ts proves the cross-process case).
describe("the node's operation lock", () => {
  it("a second operation while one runs: OPERATION_RUNNING naming the first (operation, pid, since) and the fix; the holder's record untouched", () => {
    const dir = tempDir();
    const first = acquireOperationLock(dir, "upgrade-mn", { now: new Date("2026-12-04T03:12:04.000Z") });
    const record = readFileSync(join(dir, OPERATION_LOCK_FILE), "utf8");
    expect(JSON.parse(record)).toEqual({ pid: process.pid, operation: "upgrade-mn", since: "2026-12-04T03:12:04.000Z" });
    const error = caught(() => acquireOperationLock(dir, "restore"));
    expect(isMnhaError(error) && error.code).toBe("OPERATION_RUNNING");
    expect(isMnhaError(error) && error.message).toBe(`mnha upgrade-mn (pid ${process.pid}, since 2026-12-04T03:12:04.000Z) is running on this node; this restore exits and changes nothing`);
    expect(isMnhaError(error) && error.hint).toMatch(new RegExp(`^one long operation at a time per node: wait for it to finish .*stop it \\(kill ${process.pid}\\) and run your command again`));
    expect(readFileSync(join(dir, OPERATION_LOCK_FILE), "utf8"), "the refused one changed nothing").toBe(record);
    first.release();
    acquireOperationLock(dir, "restore").release();
  });

  it("a lock file that holds no record (emptied by hand) still refuses, without a pid to name", () => {
    const dir = tempDir();
    const first = acquireOperationLock(dir, "install-ha");
    writeFileSync(join(dir, OPERATION_LOCK_FILE), "");
    const error = caught(() => acquireOperationLock(dir, "db seed"));
    expect(isMnhaError(error) && error.message).toBe("another mnha operation is running on this node; this db seed exits and changes nothing");
    expect(isMnhaError(error) && error.hint).toMatch(/stop it and run your command again/);
    first.release();
  });

  it("withOperationLock releases the lock however the work ends", async () => {
    const dir = tempDir();
    await expect(withOperationLock(dir, "restore", async () => Promise.reject(new Error("step failed")))).rejects.toThrow("step failed");
    expect(await withOperationLock(dir, "restore", async () => "done")).toBe("done");
    const inside = await withOperationLock(dir, "upgrade-ha", async () => caught(() => acquireOperationLock(dir, "upgrade-ha")));
    expect(isMnhaError(inside) && inside.code).toBe("OPERATION_RUNNING");
  });

  it("a node without the directory (nothing of mnha there yet) is left as it was: no directory is created, unless asked (install-ha)", () => {
    const missing = join(tempDir(), "not-installed");
    acquireOperationLock(missing, "upgrade-ha").release();
    expect(existsSync(missing)).toBe(false);
    const lock = acquireOperationLock(missing, "install-ha", { createDir: true });
    expect(existsSync(join(missing, OPERATION_LOCK_FILE))).toBe(true);
    const second = caught(() => acquireOperationLock(missing, "install-ha", { createDir: true }));
    expect(isMnhaError(second) && second.code, "the lock made with its directory holds").toBe("OPERATION_RUNNING");
    lock.release();
  });

  it("says clearly when the lock cannot be taken at all (no flock)", () => {
    const error = caught(() => acquireOperationLock(tempDir(), "restore", { flockBinary: "/nonexistent/flock" }));
    expect(isMnhaError(error) && error.code).toBe("OPERATION_FAILED");
    expect(isMnhaError(error) && error.message).toMatch(/cannot lock .*operation\.lock/);
  });
});
