/**
 * Errant transactions on a standby: its own GTID domain grew after it went read-only. Found
 * from real multi-domain GTID strings, kept on disk across restarts, never cleared except by a
 * completed seed/resync (which removes the file), and it makes the standby ineligible to take
 * over from a live holder.
 */
import { existsSync, rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ElectionCore, type DbSummary, type ElectionSettings } from "../../src/core/election.js";
import { ErrantWriteWatch, clearErrantMark, errantMarkPath, readErrantMark } from "../../src/db/errant-watch.js";
import { ownDomainWritesBeyond, parseGtidPosition } from "../../src/db/gtid.js";
import { DEAD_HEALTH } from "../../src/db/mariadb.js";
import type { DatabaseHealth } from "../../src/db/types.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";
import { tempDir } from "../control/fake-control.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function scratch(): string {
  const dir = tempDir("mnha-errant-");
  cleanups.push(dir.remove);
  return dir.path;
}

/** mn2 (server 2, domain 2) as its poll sees it. */
const mn2 = (binlog: string): DatabaseHealth => ({ ...DEAD_HEALTH, alive: true, readOnly: true, serverId: 2, gtidDomainId: 2, gtidBinlogPos: binlog, gtidCurrentPos: binlog });

describe("own-domain writes beyond a baseline (pure)", () => {
  it("finds the standby's own-domain transactions beyond the read-only position, over several domains", () => {
    const found = ownDomainWritesBeyond(parseGtidPosition("0-1-7,1-1-120,2-2-45"), parseGtidPosition("0-1-7,1-1-133,2-2-47"), 2);
    expect(found).toMatchObject({ domain: 2, baselineSeq: 45n, count: 2n, latest: { domain: 2, serverId: 2, seq: 47n } });
  });

  it("the holder's domain growing (replication) and an unchanged own domain are not errant", () => {
    expect(ownDomainWritesBeyond(parseGtidPosition("0-1-7,1-1-120,2-2-45"), parseGtidPosition("0-1-7,1-1-999,2-2-45"), 2)).toBeNull();
    expect(ownDomainWritesBeyond(parseGtidPosition("1-1-120"), parseGtidPosition("1-1-121"), 2)).toBeNull();
  });

  it("a first own-domain transaction on a node that never wrote is errant", () => {
    expect(ownDomainWritesBeyond(parseGtidPosition("1-1-120"), parseGtidPosition("1-1-120,2-2-1"), 2)).toMatchObject({ count: 1n, baselineSeq: 0n });
  });
});

describe("the errant-write watch", () => {
  it("flags a write in the own domain during a read-only period, keeps it on disk, reports it once", () => {
    const dataDir = scratch();
    const watch = new ErrantWriteWatch(dataDir, () => new Date("2026-12-01T00:00:00Z"));
    const period = { id: 1, position: "1-1-120,2-2-45", settled: true };
    expect(watch.observe(mn2("1-1-125,2-2-45"), period, false)).toEqual({ mark: null, found: false });
    const first = watch.observe(mn2("1-1-125,2-2-46"), period, false);
    expect(first.found).toBe(true);
    expect(first.mark).toMatchObject({ domain: 2, baseline: "2-2-45", latest: "2-2-46", count: 1 });
    expect(first.mark?.description).toMatch(/1 written in its own domain 2 while a read-only standby \(2-2-45 when it went read-only, now 2-2-46\)/);
    expect(watch.observe(mn2("1-1-126,2-2-46"), period, false)).toMatchObject({ found: false, mark: { latest: "2-2-46" } });
    // An agent restart does not forget it, even in a new read-only period.
    const restarted = new ErrantWriteWatch(dataDir);
    expect(restarted.observe(mn2("1-1-126,2-2-46"), { id: 1, position: "1-1-126,2-2-46", settled: true }, false).mark).toMatchObject({ latest: "2-2-46" });
  });

  it("is silent while the node may write, during a switch, and before the period's position is known", () => {
    const dataDir = scratch();
    const watch = new ErrantWriteWatch(dataDir);
    expect(watch.observe(mn2("2-2-90"), null, false).mark).toBeNull();
    expect(watch.observe(mn2("2-2-90"), { id: 1, position: "2-2-45", settled: false }, false).mark).toBeNull();
    expect(watch.observe(mn2("2-2-90"), { id: 1, position: null, settled: true }, false).mark).toBeNull();
    expect(existsSync(errantMarkPath(dataDir))).toBe(false);
  });

  it("only a completed seed clears it; the own domain is then judged from the copy's position", () => {
    const dataDir = scratch();
    const watch = new ErrantWriteWatch(dataDir);
    const period = { id: 3, position: "1-1-120,2-2-45", settled: true };
    expect(watch.observe(mn2("1-1-120,2-2-46"), period, false).found).toBe(true);
    // The seed runs (marker present): nothing judged meanwhile.
    expect(watch.observe(mn2("1-1-130,2-2-46"), period, true).found).toBe(false);
    clearErrantMark(dataDir);
    // The copy still holds 2-2-46 (the holder had replicated it): not found again.
    expect(watch.observe(mn2("1-1-130,2-2-46"), period, false)).toEqual({ mark: null, found: false });
    expect(readErrantMark(dataDir)).toBeNull();
    // A new errant write after the repair is found again.
    expect(watch.observe(mn2("1-1-130,2-2-47"), period, false)).toMatchObject({ found: true, mark: { baseline: "2-2-46", latest: "2-2-47" } });
    rmSync(errantMarkPath(dataDir));
  });
});

describe("errant transactions and the election", () => {
  const settings: ElectionSettings = { ...SIM_SETTINGS.election, self: "mn2", peer: "mn1", initialEpoch: 2, startupGraceMs: 0, arpGuard: false, db: { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true } };
  const summary = (errant: string | null): DbSummary => ({ alive: true, readOnly: true, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: "1-1-10,2-2-46", gtidCurrentPos: "1-1-10,2-2-46", semiSyncMasterActive: true, errant });

  it("a standby with errant transactions is not eligible, with the reason naming mnha db resync", () => {
    const core = new ElectionCore(settings, 0);
    core.step(0, { kind: "services", healthy: true, reasons: [] });
    core.step(0, { kind: "gateway", reachable: true });
    core.step(0, { kind: "db-health", summary: summary(null) });
    expect(core.eligible()).toBe(true);
    core.step(1, { kind: "db-health", summary: summary("1 written in its own domain 2 while a read-only standby (2-2-45 when it went read-only, now 2-2-46)") });
    expect(core.eligible()).toBe(false);
    expect(core.reasons().join("\n")).toMatch(/database has errant transactions \(repair: mnha db resync on this node\): 1 written in its own domain 2/);
  });
});
