import { describe, expect, it } from "vitest";
import { ElectionCore, type DbSummary, type ElectionSettings } from "../../src/core/election.js";
import { DB_RETRY_BACKOFF, ElectionHost, type DbAfterClaim, type HostAdapters, type HostDatabase } from "../../src/host/election-host.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * A failed read-only/writable switch does not stay failed: the host retries it with backoff
 * while the election still wants it, and each database poll checks the server's mode against
 * what was asked (the lab once saw a new holder stay read-only ~30 s after a failed switch).
 */

/** A database that fails the first N switches of each kind (answers asynchronously). */
class FlakyDatabase implements HostDatabase {
  readOnly = true;
  failWritable = 0;
  failReadOnly = 0;
  writableAttempts = 0;
  readOnlyAttempts = 0;
  /** Set whenever the server is writable while the election's holder is elsewhere (must stay false). */
  readonly log: string[] = [];

  async goReadOnly(): Promise<{ gtidBinlogPos: string | null }> {
    await Promise.resolve();
    this.readOnlyAttempts += 1;
    if (this.failReadOnly > 0) {
      this.failReadOnly -= 1;
      this.log.push("read-only failed");
      throw new Error("SET GLOBAL read_only = ON: no answer within 2000 ms");
    }
    this.readOnly = true;
    this.log.push("read-only");
    return { gtidBinlogPos: "1-1-10" };
  }

  async goWritable(_afterClaim: DbAfterClaim, stillWanted: () => boolean): Promise<{ writable: boolean; notes: [] }> {
    await Promise.resolve();
    this.writableAttempts += 1;
    if (this.failWritable > 0) {
      this.failWritable -= 1;
      this.log.push("writable failed");
      throw new Error("SET GLOBAL read_only = OFF: no answer within 2000 ms");
    }
    if (!stillWanted()) return { writable: false, notes: [] };
    this.readOnly = false;
    this.log.push("writable");
    return { writable: true, notes: [] };
  }

  waitForGtid(): Promise<{ reached: boolean; detail: string }> {
    return Promise.resolve({ reached: true, detail: "applied" });
  }

  readOnlyNow(): Promise<boolean> {
    return Promise.resolve(this.readOnly);
  }
}

async function settle(host: ElectionHost): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setImmediate(r));
    await host.idle();
  }
}

function harness() {
  let now = 0;
  const events: { type: string; message: string; fields: Record<string, unknown> }[] = [];
  const timers: { delayMs: number; fire: () => void; cancelled: boolean }[] = [];
  const db = new FlakyDatabase();
  const adapters: HostAdapters = {
    now: () => now,
    keepalived: { setGate: () => undefined, renewLease: () => undefined, repair: () => undefined, state: () => "backup" },
    link: { send: () => true, connected: () => false },
    arp: { probe: () => undefined, announce: () => undefined },
    persistEpoch: () => undefined,
    recordEvent: (type, message, fields) => events.push({ type, message, fields }),
    requestDone: () => undefined,
    heartbeatFacts: () => ({ vipPresent: false, keepalived: "backup", services: [] }),
    setTimer: (delayMs, fire) => {
      const timer = { delayMs, fire, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
    onError: (error) => {
      throw error;
    },
    db,
  };
  const settings: ElectionSettings = { ...SIM_SETTINGS.election, self: "mn1", peer: "mn2", initialEpoch: 2, startupGraceMs: 0, arpGuard: false, db: { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true } };
  const core = new ElectionCore(settings, 0);
  const host = new ElectionHost(core, adapters, { self: "mn1", heartbeatIntervalMs: settings.heartbeatIntervalMs });
  const summary = (readOnly: boolean, extra: Partial<DbSummary> = {}): DbSummary => ({ alive: true, readOnly, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: "1-1-10", gtidCurrentPos: "1-1-10", semiSyncMasterActive: true, ...extra });
  /** The database retry timers armed and not cancelled (the host's wake timers are longer-lived and carry no db work: told apart by delay). */
  const retryTimers = () => timers.filter((t) => !t.cancelled && (t as { fired?: boolean }).fired !== true && [250, 500, 1000, 2000, 4000, 5000].includes(t.delayMs));
  const fireRetry = async () => {
    const timer = retryTimers()[0];
    if (!timer) throw new Error("no retry timer armed");
    (timer as { fired?: boolean }).fired = true;
    timer.fire();
    await settle(host);
    return timer.delayMs;
  };
  return {
    host,
    core,
    db,
    events,
    summary,
    retryTimers,
    fireRetry,
    setNow: (t: number) => (now = t),
    /** mn1 alone: claims the VIP, sees it on its interface; the writable switch is asked. */
    async becomeHolder(): Promise<void> {
      host.input({ kind: "services", healthy: true, reasons: [] });
      host.input({ kind: "gateway", reachable: true });
      host.input({ kind: "db-health", summary: summary(true) });
      await settle(host);
      now = 200;
      host.input({ kind: "tick" });
      host.input({ kind: "vip-observed", present: true });
      await settle(host);
      expect(core.snapshot(now).role).toBe("holder");
    },
  };
}

const count = (events: { type: string }[], type: string) => events.filter((e) => e.type === type).length;

describe("database switches are retried until they hold", () => {
  it("a holder whose writable switch fails 3 times retries with backoff and ends writable", async () => {
    const h = harness();
    h.db.failWritable = 3;
    await h.becomeHolder();
    expect(h.db.writableAttempts).toBe(1);
    expect(h.db.readOnly).toBe(true);
    const delays = [await h.fireRetry(), await h.fireRetry(), await h.fireRetry()];
    expect(delays).toEqual([DB_RETRY_BACKOFF.initialMs, 2 * DB_RETRY_BACKOFF.initialMs, 4 * DB_RETRY_BACKOFF.initialMs]);
    expect(h.db.writableAttempts).toBe(4);
    expect(h.db.readOnly).toBe(false);
    expect(count(h.events, "db-writable-failed")).toBe(3);
    expect(h.events.filter((e) => e.type === "db-writable-failed").map((e) => e.fields["retryInMs"])).toEqual([250, 500, 1000]);
    expect(h.events.find((e) => e.type === "db-writable")?.fields).toMatchObject({ attempts: 4 });
    // Done: nothing more armed.
    expect(h.retryTimers()).toEqual([]);
  });

  it("retries stop once the node stops being holder; it ends read-only", async () => {
    const h = harness();
    h.db.failWritable = 100;
    await h.becomeHolder();
    await h.fireRetry();
    expect(h.db.writableAttempts).toBe(2);
    // The VIP leaves: read-only is asked and voids the retries.
    h.host.input({ kind: "vip-observed", present: false });
    await settle(h.host);
    expect(h.retryTimers()).toEqual([]);
    expect(h.db.readOnly).toBe(true);
    expect(h.db.writableAttempts).toBe(2);
    expect(h.db.log.at(-1)).toBe("read-only");
  });

  it("in maintenance a failed writable switch is not retried; the poll resumes it once maintenance ends", async () => {
    const h = harness();
    h.db.failWritable = 1;
    await h.becomeHolder();
    expect(h.retryTimers()).toHaveLength(1);
    h.host.input({ kind: "maintenance", on: true });
    await settle(h.host);
    await h.fireRetry();
    expect(h.db.writableAttempts).toBe(1);
    h.host.dbReconcile(h.summary(true));
    await settle(h.host);
    expect(h.db.writableAttempts).toBe(1);
    h.host.input({ kind: "maintenance", on: false });
    h.host.dbReconcile(h.summary(true));
    await settle(h.host);
    expect(h.db.writableAttempts).toBe(2);
    expect(h.db.readOnly).toBe(false);
  });

  it("an incomplete seed blocks the writable retries", async () => {
    const h = harness();
    h.db.failWritable = 1;
    await h.becomeHolder();
    h.host.dbReconcile(h.summary(true, { seedIncomplete: true }));
    await h.fireRetry();
    expect(h.db.writableAttempts).toBe(1);
    expect(h.db.readOnly).toBe(true);
  });

  it("a failed read-only switch is retried until it holds", async () => {
    const h = harness();
    await h.becomeHolder();
    expect(h.db.readOnly).toBe(false);
    h.db.failReadOnly = 2;
    h.host.input({ kind: "vip-observed", present: false });
    await settle(h.host);
    expect(h.db.readOnly).toBe(false);
    expect(count(h.events, "db-read-only-failed")).toBe(1);
    await h.fireRetry();
    await h.fireRetry();
    expect(h.db.readOnly).toBe(true);
    expect(h.db.readOnlyAttempts).toBeGreaterThanOrEqual(3);
    expect(h.events.filter((e) => e.type === "db-read-only-failed").map((e) => e.fields["attempt"])).toEqual([1, 2]);
    expect(h.retryTimers()).toEqual([]);
  });
});

describe("each poll checks the server's mode against what the election asked", () => {
  it("a holder whose server turned read-only (restart, a hand) is made writable again", async () => {
    const h = harness();
    await h.becomeHolder();
    expect(h.db.readOnly).toBe(false);
    h.db.readOnly = true;
    // The same summary as before may come again (unchanged): the check runs on every poll.
    h.host.dbReconcile(h.summary(true));
    await settle(h.host);
    expect(h.db.readOnly).toBe(false);
    expect(h.events.find((e) => e.type === "db-mode-reasserted")?.message).toMatch(/read-only although this node holds the VIP/);
  });

  it("a non-holder whose server is writable is made read-only at once, without waiting for a backoff", async () => {
    const h = harness();
    h.host.input({ kind: "services", healthy: true, reasons: [] });
    await settle(h.host);
    expect(h.core.snapshot(0).role).not.toBe("holder");
    h.db.readOnly = false;
    const readOnlyBefore = h.db.readOnlyAttempts;
    h.host.dbReconcile(h.summary(false));
    await settle(h.host);
    expect(h.db.readOnly).toBe(true);
    expect(h.db.readOnlyAttempts).toBe(readOnlyBefore + 1);
    expect(h.events.find((e) => e.type === "db-mode-reasserted")?.message).toMatch(/WRITABLE although this node does not hold the VIP/);
  });

  it("a stale poll (the server already in the asked mode) changes nothing", async () => {
    const h = harness();
    await h.becomeHolder();
    const attempts = h.db.writableAttempts;
    // The poll read read_only before the switch; the server says writable now.
    h.host.dbReconcile(h.summary(true));
    await settle(h.host);
    expect(h.db.writableAttempts).toBe(attempts);
    expect(count(h.events, "db-mode-reasserted")).toBe(0);
  });
});

describe("read-only periods (the errant-write watch's baseline)", () => {
  it("a period starts when the node stops being allowed to write; its position is the first confirmed one and later re-asserts do not move it", async () => {
    const h = harness();
    await h.becomeHolder();
    expect(h.host.dbStandbyPeriod()).toBeNull();
    h.host.input({ kind: "vip-observed", present: false });
    await settle(h.host);
    const period = h.host.dbStandbyPeriod();
    expect(period).toMatchObject({ position: "1-1-10", settled: true });
    // Someone turns read_only off by hand: the poll puts it right, in the same period.
    h.db.readOnly = false;
    h.host.dbReconcile(h.summary(false));
    await settle(h.host);
    expect(h.db.readOnly).toBe(true);
    expect(h.host.dbStandbyPeriod()).toEqual(period);
  });
});
