/**
 * The database side of the election's effects (`HostDatabase`): read-only before the VIP may
 * leave, writable once it is ours, and the taker's wait for the holder's last transaction.
 * The core decides when; this carries it out, each call bounded, the switches in the order
 * they were asked (a read-only asked after a writable is never overtaken by it).
 */
import type { DbAfterClaim, DbWritableOutcome, HostDatabase } from "../host/election-host.js";
import { formatGtidPosition, gtidReached, parseGtidPosition, transactionsBehind } from "./gtid.js";
import type { Database } from "./types.js";

export interface RoleSwitchOptions {
  /** Bound on one switch (SET read_only, reading a position). */
  switchTimeoutMs: number;
  /** Bound on applying the relay log after a claim. */
  catchUpTimeoutMs: number;
}

export class DatabaseRoleSwitch implements HostDatabase {
  /** The read_only switches, one after the other. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly options: RoleSwitchOptions,
  ) {}

  goReadOnly(): Promise<{ gtidBinlogPos: string | null }> {
    return this.serial(async () => {
      await bounded(this.db.setReadOnly(true), this.options.switchTimeoutMs, "SET GLOBAL read_only = ON");
      // Read after the switch: nothing can be added to it any more (no application writes).
      const position = await bounded(this.db.gtidBinlogPos(), this.options.switchTimeoutMs, "reading gtid_binlog_pos").then(formatGtidPosition, () => null);
      return { gtidBinlogPos: position };
    });
  }

  async goWritable(afterClaim: DbAfterClaim, stillWanted: () => boolean): Promise<DbWritableOutcome> {
    const notes: DbWritableOutcome["notes"] = [];
    if (afterClaim !== null) notes.push(...(await this.applyRelayLog(afterClaim)));
    const writable = await this.serial(async () => {
      if (!stillWanted()) return false;
      await bounded(this.db.setReadOnly(false), this.options.switchTimeoutMs, "SET GLOBAL read_only = OFF");
      return true;
    });
    return { writable, notes };
  }

  readOnlyNow(): Promise<boolean> {
    return this.serial(() => bounded(this.db.readOnly(), this.options.switchTimeoutMs, "reading read_only"));
  }

  async waitForGtid(gtid: string, timeoutMs: number): Promise<{ reached: boolean; detail: string }> {
    const target = parseGtidPosition(gtid);
    const result = await this.db.waitForGtid(target, timeoutMs);
    if (result.reached) return { reached: true, detail: `applied up to ${result.position || "(empty)"} in ${result.waitedMs} ms` };
    if (result.impossible !== null) return { reached: false, detail: result.impossible };
    const behind = transactionsBehind(parseGtidPosition(result.position), target);
    return { reached: false, detail: `${behind} transactions behind ${gtid} after ${result.waitedMs} ms (at ${result.position || "(empty)"})` };
  }

  /**
   * Unplanned failover: apply what the replica already received before writing, and say what
   * may be lost: transactions the old holder reported that never arrived here, or any when its
   * semi-sync had fallen back to asynchronous.
   */
  private async applyRelayLog(afterClaim: NonNullable<DbAfterClaim>): Promise<DbWritableOutcome["notes"]> {
    const notes: DbWritableOutcome["notes"] = [];
    const health = await this.db.health();
    let current = health.gtidCurrentPos;
    if (health.alive && health.gtidIoPos !== null && health.gtidIoPos !== "") {
      const wait = await this.db.waitForGtid(parseGtidPosition(health.gtidIoPos), this.options.catchUpTimeoutMs).catch((error: unknown) => ({ reached: false, waitedMs: 0, position: current ?? "", impossible: String(error) }));
      current = wait.position;
      notes.push({
        type: "db-relay-applied",
        message: wait.reached ? `applied the received relay log (${health.gtidIoPos}) in ${wait.waitedMs} ms before becoming writable` : `the received relay log (${health.gtidIoPos}) was NOT fully applied within ${this.options.catchUpTimeoutMs} ms (${wait.impossible ?? `at ${wait.position}`}); becoming writable anyway`,
        fields: { reached: wait.reached, waitedMs: wait.waitedMs, gtidIoPos: health.gtidIoPos, gtidCurrentPos: wait.position, lagSeconds: afterClaim.lagSeconds },
      });
    }
    const peerPos = afterClaim.peerGtidBinlogPos;
    const missing = peerPos === null ? null : transactionsBehind(parseGtidPosition(current), parseGtidPosition(peerPos));
    const knownMissing = peerPos !== null && !gtidReached(parseGtidPosition(current), parseGtidPosition(peerPos));
    if (afterClaim.peerSemiSyncActive === false || knownMissing) {
      notes.push({
        type: "db-possibly-lost",
        message: `possibly lost transactions: the old holder last reported gtid_binlog_pos ${peerPos ?? "unknown"}${afterClaim.peerSemiSyncActive === false ? " with semi-sync fallen back to asynchronous" : ""}; this node has ${current ?? "unknown"}${missing !== null && missing > 0n ? ` (${missing} transactions missing)` : ""}`,
        fields: { peerGtidBinlogPos: peerPos, gtidCurrentPos: current, peerSemiSyncActive: afterClaim.peerSemiSyncActive, missingTransactions: missing === null ? null : Number(missing) },
      });
    }
    return notes;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** Rejects after `ms` (the operation itself may still finish later; the caller goes on). */
export function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
