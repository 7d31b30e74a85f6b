/** upgrade-mn's wait for the upgraded standby's database: lag 0 with replication running, progress, a bounded clear error. */
import { describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { parseGtidPosition } from "../../src/db/gtid.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";
import { waitDatabaseCaughtUp, type CatchUpDatabase } from "../../src/upgrade/db-catch-up.js";

function replica(current: string, overrides: Partial<DatabaseHealth> = {}): DatabaseHealth {
  return { ...DEAD_HEALTH, alive: true, error: null, replicaConfigured: true, slaveIoRunning: "Yes", slaveSqlRunning: "Yes", lastIoError: null, lastSqlError: null, secondsBehindMaster: 3, gtidCurrentPos: current, gtidIoPos: current, ...overrides };
}

/** A standby that applies `step` transactions per poll towards the holder's position. */
function pair(holderSeq: number, standbySeq: number, options: { step?: number; health?: (seq: number) => Partial<DatabaseHealth> } = {}) {
  let seq = standbySeq;
  const standby: CatchUpDatabase = {
    health: async () => {
      const h = replica(`1-1-${seq},2-2-5`, options.health?.(seq) ?? {});
      seq = Math.min(holderSeq, seq + (options.step ?? 0));
      return h;
    },
    gtidBinlogPos: async () => parseGtidPosition(`1-1-${seq},2-2-5`),
  };
  const holder: CatchUpDatabase = { health: async () => replica(`1-1-${holderSeq}`), gtidBinlogPos: async () => parseGtidPosition(`1-1-${holderSeq},2-2-5`) };
  return { standby, holder };
}

function clock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

describe("waitDatabaseCaughtUp", () => {
  it("waits while the standby is behind, showing the remaining lag, and returns once it is at lag 0", async () => {
    const { standby, holder } = pair(100, 40, { step: 20 });
    const progress: string[] = [];
    const text = await waitDatabaseCaughtUp({ standbyName: "mn2", standby, holderName: "mn1", holder, timeoutMs: 60_000, onProgress: (t) => progress.push(t), ...clock() });
    expect(progress).toEqual(["mn2's database: 60 transaction(s) behind mn1, 3 s behind", "mn2's database: 40 transaction(s) behind mn1, 3 s behind", "mn2's database: 20 transaction(s) behind mn1, 3 s behind"]);
    expect(text).toBe("mn2's database caught up with mn1: replication running, lag 0 (GTID 1-1-100,2-2-5)");
  });

  it("a stopped replica is not caught up, even with no transactions missing", async () => {
    const { standby, holder } = pair(100, 100, { health: () => ({ slaveSqlRunning: "No", lastSqlError: "Duplicate entry '7'" }) });
    const progress: string[] = [];
    const error = await waitDatabaseCaughtUp({ standbyName: "mn2", standby, holderName: "mn1", holder, timeoutMs: 10_000, onProgress: (t) => progress.push(t), ...clock() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MnhaError);
    expect((error as MnhaError).code).toBe("DB_TIMEOUT");
    expect((error as MnhaError).message).toBe("mn2's database did not catch up with mn1 within 10 s (replication not running: SQL thread error: Duplicate entry '7'); the VIP stays on mn1");
    expect((error as MnhaError).hint).toContain("mnha db resync");
    expect(progress[0]).toBe("mn2's database: replication not running: SQL thread error: Duplicate entry '7'");
  });

  it("is bounded: a standby that stays behind fails with the lag it was left at, progress repeated at most every 5 s", async () => {
    const { standby, holder } = pair(100, 90);
    const progress: string[] = [];
    await expect(waitDatabaseCaughtUp({ standbyName: "mn1", standby, holderName: "mn2", holder, timeoutMs: 20_000, onProgress: (t) => progress.push(t), ...clock() })).rejects.toThrow(
      "mn1's database did not catch up with mn2 within 20 s (10 transaction(s) behind mn2, 3 s behind)",
    );
    expect(progress.length).toBeGreaterThanOrEqual(4);
    expect(progress.length).toBeLessThanOrEqual(6);
  });

  it("a server that does not answer is waited for, and named", async () => {
    const { holder } = pair(10, 10);
    const standby: CatchUpDatabase = { health: async () => ({ ...DEAD_HEALTH, error: "connect ECONNREFUSED" }), gtidBinlogPos: async () => parseGtidPosition("") };
    await expect(waitDatabaseCaughtUp({ standbyName: "mn2", standby, holderName: "mn1", holder, timeoutMs: 2_000, onProgress: () => undefined, ...clock() })).rejects.toThrow(/MariaDB does not answer \(connect ECONNREFUSED\)/);
  });
});
