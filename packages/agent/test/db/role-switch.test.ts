/** DatabaseRoleSwitch over an in-memory Database: ordering, bounds, the failover's relay-log step and possibly-lost check. */
import { describe, expect, it } from "vitest";
import { formatGtidPosition, gtidReached, parseGtidPosition, type GtidPosition } from "../../src/db/gtid.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import { DatabaseRoleSwitch } from "../../src/db/role-switch.js";
import type { Database, DatabaseHealth, GtidWaitResult } from "../../src/db/types.js";

class MemoryDatabase {
  readOnly = false;
  current = "1-1-10,2-2-5";
  binlog = "1-1-10,2-2-5";
  ioPos = "2-2-5";
  /** What the SQL thread will have applied once asked to wait (the relay log it holds). */
  appliesTo: string | null = null;
  log: string[] = [];
  hangReadOnly = false;
  async setReadOnly(on: boolean): Promise<void> {
    if (this.hangReadOnly && on) return new Promise(() => undefined);
    this.readOnly = on;
    this.log.push(`read_only=${on ? "ON" : "OFF"}`);
  }
  async gtidBinlogPos(): Promise<GtidPosition> {
    return parseGtidPosition(this.binlog);
  }
  async waitForGtid(target: GtidPosition, timeoutMs: number): Promise<GtidWaitResult> {
    this.log.push(`wait ${formatGtidPosition(target)} ${timeoutMs}`);
    if (this.appliesTo !== null) this.current = this.appliesTo;
    const reached = gtidReached(parseGtidPosition(this.current), target);
    return { reached, waitedMs: reached ? 5 : timeoutMs, position: this.current, impossible: null };
  }
  async health(): Promise<DatabaseHealth> {
    return { ...DEAD_HEALTH, alive: true, readOnly: this.readOnly, gtidIoPos: this.ioPos, gtidCurrentPos: this.current, gtidBinlogPos: this.binlog, replicaConfigured: true, slaveIoRunning: "Yes", slaveSqlRunning: "Yes" };
  }
}

function make(db: MemoryDatabase, switchTimeoutMs = 1_000): DatabaseRoleSwitch {
  return new DatabaseRoleSwitch(db as unknown as Database, { switchTimeoutMs, catchUpTimeoutMs: 3_000 });
}

describe("DatabaseRoleSwitch", () => {
  it("read-only then the binlog position read after it", async () => {
    const db = new MemoryDatabase();
    db.binlog = "1-1-42";
    await expect(make(db).goReadOnly()).resolves.toEqual({ gtidBinlogPos: "1-1-42" });
    expect(db.readOnly).toBe(true);
  });

  it("a read-only switch that hangs is bounded and rejects with what it was doing", async () => {
    const db = new MemoryDatabase();
    db.hangReadOnly = true;
    await expect(make(db, 50).goReadOnly()).rejects.toThrow(/SET GLOBAL read_only = ON: no answer within 50 ms/);
  });

  it("writable after a handoff: no relay-log wait, just the switch; skipped when no longer wanted", async () => {
    const db = new MemoryDatabase();
    db.readOnly = true;
    const s = make(db);
    await expect(s.goWritable(null, () => false)).resolves.toEqual({ writable: false, notes: [] });
    expect(db.readOnly).toBe(true);
    await expect(s.goWritable(null, () => true)).resolves.toEqual({ writable: true, notes: [] });
    expect(db.log).toEqual(["read_only=OFF"]);
  });

  it("after a claim: applies the received relay log before writing; nothing lost when the old holder's position is reached", async () => {
    const db = new MemoryDatabase();
    db.readOnly = true;
    db.current = "1-1-10,2-2-3";
    db.ioPos = "2-2-5";
    db.appliesTo = "1-1-10,2-2-5";
    const outcome = await make(db).goWritable({ peerGtidBinlogPos: "1-1-10,2-2-5", peerSemiSyncActive: true, lagSeconds: 1 }, () => true);
    expect(db.log).toEqual(["wait 2-2-5 3000", "read_only=OFF"]);
    expect(outcome.writable).toBe(true);
    expect(outcome.notes.map((n) => n.type)).toEqual(["db-relay-applied"]);
    expect(outcome.notes[0]?.fields).toMatchObject({ reached: true, gtidCurrentPos: "1-1-10,2-2-5" });
  });

  it("after a claim: transactions the old holder reported and never received are a possibly-lost note with both positions", async () => {
    const db = new MemoryDatabase();
    db.current = "1-1-10,2-2-5";
    const outcome = await make(db).goWritable({ peerGtidBinlogPos: "1-1-10,2-2-9", peerSemiSyncActive: false, lagSeconds: 0 }, () => true);
    const lost = outcome.notes.find((n) => n.type === "db-possibly-lost");
    expect(lost?.fields).toMatchObject({ peerGtidBinlogPos: "1-1-10,2-2-9", gtidCurrentPos: "1-1-10,2-2-5", peerSemiSyncActive: false, missingTransactions: 4 });
    expect(lost?.message).toMatch(/semi-sync fallen back.*4 transactions missing/);
  });

  it("the taker's wait reports the lag when the bound passes", async () => {
    const db = new MemoryDatabase();
    db.current = "2-2-5";
    await expect(make(db).waitForGtid("2-2-17", 200)).resolves.toEqual({ reached: false, detail: "12 transactions behind 2-2-17 after 200 ms (at 2-2-5)" });
    db.current = "2-2-17";
    await expect(make(db).waitForGtid("2-2-17", 200)).resolves.toMatchObject({ reached: true });
  });
});
