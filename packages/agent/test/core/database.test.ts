import type { Heartbeat } from "@mnha/protocol";
import { describe, expect, it } from "vitest";
import { ElectionCore, type DbSummary, type ElectionEffect } from "../../src/core/election.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * The database follows the VIP, as core decisions: read-only before the gate closes and
 * before a handoff offer leaves; writable only once the VIP is this node's; the taker waits
 * for the holder's last transaction; a broken or lagging standby does not take over from a
 * live holder.
 */
const DB = { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true };
const base = { ...SIM_SETTINGS.election, arpGuard: false, startupGraceMs: 0, db: DB };
const goodDb: DbSummary = { alive: true, readOnly: true, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: "1-1-10", gtidCurrentPos: "1-1-10,2-2-5", semiSyncMasterActive: true };

function heartbeat(node: string, over: Partial<Heartbeat>): Heartbeat {
  return { type: "heartbeat", seq: 1, node, epoch: 3, holder: null, role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [], ...over };
}

const kinds = (effects: ElectionEffect[]): string[] => effects.map((e) => (e.kind === "event" ? `event:${e.type}` : e.kind === "set-gate" ? `gate:${e.open ? "open" : "closed"}` : e.kind === "db-read-only" ? (e.on ? "db:read-only" : "db:writable") : e.kind === "send" ? `send:${e.message.type}` : e.kind));

function healthy(core: ElectionCore, now: number, db: DbSummary = goodDb): ElectionEffect[] {
  return [...core.step(now, { kind: "services", healthy: true, reasons: [] }), ...core.step(now, { kind: "gateway", reachable: true }), ...core.step(now, { kind: "db-health", summary: db })];
}

/** mn1 alone claims (its peer never heard); returns the core as holder with its VIP seen. */
function holderWithVip(): { core: ElectionCore; effects: ElectionEffect[] } {
  const core = new ElectionCore({ ...base, self: "mn1", peer: "mn2", initialEpoch: 3 }, 0);
  const effects = [...healthy(core, 0), ...core.step(200, { kind: "tick" })];
  expect(core.snapshot(200).role).toBe("holder");
  effects.push(...core.step(250, { kind: "vip-observed", present: true }));
  return { core, effects };
}

describe("the database follows the VIP (core)", () => {
  it("the very first step makes the database read-only, before anything else", () => {
    const core = new ElectionCore({ ...base, self: "mn1", peer: "mn2", initialEpoch: 3 }, 0);
    const first = core.step(0, { kind: "services", healthy: true, reasons: [] });
    expect(first[0]).toEqual({ kind: "db-read-only", on: true });
    // Once only.
    expect(kinds(core.step(1, { kind: "gateway", reachable: true }))).not.toContain("db:read-only");
  });

  it("without db settings the core emits no database effect at all", () => {
    const core = new ElectionCore({ ...base, db: undefined, self: "mn1", peer: "mn2", initialEpoch: 3 }, 0);
    const effects = [...healthy(core, 0), ...core.step(200, { kind: "tick" }), ...core.step(250, { kind: "vip-observed", present: true })];
    expect(core.snapshot(250).role).toBe("holder");
    expect(effects.filter((e) => e.kind.startsWith("db-"))).toEqual([]);
  });

  it("a claiming holder turns writable only once the VIP is on its interface, and applies the relay log first (afterClaim)", () => {
    const core = new ElectionCore({ ...base, self: "mn1", peer: "mn2", initialEpoch: 3 }, 0);
    const before = [...healthy(core, 0), ...core.step(200, { kind: "tick" })];
    expect(core.snapshot(200)).toMatchObject({ role: "holder", gateOpen: true });
    expect(kinds(before)).not.toContain("db:writable");
    // Another tick without the VIP: still read-only.
    expect(kinds(core.step(300, { kind: "tick" }))).not.toContain("db:writable");
    const seen = core.step(350, { kind: "vip-observed", present: true });
    expect(seen).toContainEqual({ kind: "db-read-only", on: false, afterClaim: { peerGtidBinlogPos: null, peerSemiSyncActive: null, lagSeconds: 0 } });
  });

  it("a holder whose VIP disappears goes read-only at once", () => {
    const { core, effects } = holderWithVip();
    expect(kinds(effects)).toContain("db:writable");
    expect(kinds(core.step(400, { kind: "vip-observed", present: false }))).toEqual(["db:read-only"]);
    // Back: writable again.
    expect(kinds(core.step(500, { kind: "vip-observed", present: true }))).toContain("db:writable");
  });

  it("demote: read-only comes before the offer leaves and stays until the gate is closed; refused, the holder turns writable again", () => {
    const { core } = holderWithVip();
    core.step(300, { kind: "peer-up" });
    core.step(300, { kind: "peer-message", message: heartbeat("mn2", { epoch: 4, holder: "mn1", db: { ...goodDb } }) });
    const demote = kinds(core.step(310, { kind: "demote", requestId: "r1" }));
    expect(demote.indexOf("db:read-only")).toBeGreaterThanOrEqual(0);
    expect(demote.indexOf("db:read-only")).toBeLessThan(demote.indexOf("send:handoff-offer"));
    const offer = core.snapshot(310);
    expect(offer.role).toBe("handing-off");
    // While handing off: never writable, whatever else happens.
    expect(kinds(core.step(400, { kind: "tick" }))).not.toContain("db:writable");
    const rejected = kinds(core.step(420, { kind: "peer-message", message: { type: "handoff-reject", id: "mn1-5-1", epoch: 5, reason: "database not caught up" } }));
    expect(core.snapshot(420).role).toBe("holder");
    expect(rejected).toContain("db:writable");
    expect(rejected.indexOf("event:handoff-failed")).toBeLessThan(rejected.indexOf("db:writable"));
  });

  it("demote completed: the gate closes with the database already read-only (no writable step in between)", () => {
    const { core } = holderWithVip();
    core.step(300, { kind: "peer-up" });
    core.step(300, { kind: "peer-message", message: heartbeat("mn2", { epoch: 4, holder: "mn1", db: { ...goodDb } }) });
    core.step(310, { kind: "demote", requestId: "r1" });
    core.step(320, { kind: "peer-message", message: heartbeat("mn2", { epoch: 4, holder: "mn1", role: "receiving", db: { ...goodDb } }) });
    const done = kinds(core.step(330, { kind: "peer-message", message: { type: "handoff-ready", id: "mn1-5-1", epoch: 5 } }));
    expect(done).toContain("gate:closed");
    expect(done).not.toContain("db:writable");
    expect(core.snapshot(330).role).toBe("standby");
  });

  it("taker: an offer carrying the holder's GTID is answered only after this database has applied it", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0);
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true }) });
    const offered = core.step(20, { kind: "peer-message", message: { type: "handoff-offer", id: "h1", epoch: 4, from: "mn1", to: "mn2", reason: "operator demote", gtidBinlogPos: "1-1-42" } });
    expect(offered).toContainEqual({ kind: "db-wait-gtid", id: "h1", gtid: "1-1-42", timeoutMs: DB.catchUpTimeoutMs });
    expect(kinds(offered)).not.toContain("gate:open");
    expect(kinds(offered)).not.toContain("send:handoff-ready");
    // A result for another offer changes nothing.
    expect(kinds(core.step(30, { kind: "db-caught-up", id: "other", reached: true, detail: "" }))).toEqual([]);
    const caught = kinds(core.step(40, { kind: "db-caught-up", id: "h1", reached: true, detail: "applied up to 1-1-42" }));
    expect(caught.indexOf("gate:open")).toBeLessThan(caught.indexOf("send:handoff-ready"));
    expect(core.snapshot(40).role).toBe("receiving");
    // Receiving is not holding: still read-only until released and the VIP is seen.
    expect(caught).not.toContain("db:writable");
    core.step(50, { kind: "vip-observed", present: true });
    const released = core.step(60, { kind: "peer-message", message: { type: "handoff-released", id: "h1", epoch: 4 } });
    // After a handoff nothing is replayed: afterClaim is null.
    expect(released).toContainEqual({ kind: "db-read-only", on: false, afterClaim: null });
  });

  it("taker: not caught up within the bound, it refuses with the lag and never opens its gate", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0);
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true }) });
    core.step(20, { kind: "peer-message", message: { type: "handoff-offer", id: "h1", epoch: 4, from: "mn1", to: "mn2", reason: "operator demote", gtidBinlogPos: "1-1-42" } });
    const refused = core.step(90, { kind: "db-caught-up", id: "h1", reached: false, detail: "12 transactions behind 1-1-42 after 10000 ms" });
    expect(refused).toContainEqual({ kind: "send", message: { type: "handoff-reject", id: "h1", epoch: 4, reason: expect.stringContaining("12 transactions behind") } });
    expect(kinds(refused)).not.toContain("gate:open");
    expect(core.snapshot(90)).toMatchObject({ role: "standby", gateOpen: false });
  });

  it("a standby whose replica is broken or lagging is not eligible (reason shown) and refuses a handoff from a live holder", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0, { ...goodDb, broken: "Slave_SQL_Running No" });
    expect(core.eligible()).toBe(false);
    expect(core.reasons()).toContain("database replica broken: Slave_SQL_Running No");
    expect(core.heartbeatFields(0)).toMatchObject({ eligible: false, db: { broken: "Slave_SQL_Running No" } });
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true }) });
    const offer = core.step(20, { kind: "peer-message", message: { type: "handoff-offer", id: "h1", epoch: 4, from: "mn1", to: "mn2", reason: "demote", gtidBinlogPos: "1-1-1" } });
    expect(offer).toContainEqual({ kind: "send", message: { type: "handoff-reject", id: "h1", epoch: 4, reason: expect.stringContaining("replica broken") } });
    core.step(30, { kind: "db-health", summary: { ...goodDb, lagSeconds: 7 } });
    expect(core.reasons()).toContain(`database 7 s behind (more than db.maxLagForFailoverMs ${DB.maxLagForFailoverMs} ms)`);
    core.step(40, { kind: "db-health", summary: goodDb });
    expect(core.eligible()).toBe(true);
  });

  it("the holder does not offer the VIP to a peer that reports itself behind: demote is refused with the reason", () => {
    const { core } = holderWithVip();
    core.step(300, { kind: "peer-up" });
    core.step(300, { kind: "peer-message", message: heartbeat("mn2", { epoch: 4, holder: "mn1", eligible: false, reasons: ["database 9 s behind (more than db.maxLagForFailoverMs 5000 ms)"] }) });
    const effects = core.step(310, { kind: "demote", requestId: "r1" });
    expect(effects).toContainEqual({ kind: "request-done", requestId: "r1", ok: false, message: expect.stringContaining("9 s behind"), to: null, epoch: 4 });
    expect(kinds(effects)).not.toContain("db:read-only");
  });

  it("holder dead: a lagging standby takes over anyway (availability), and the event says how far behind it was", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    const effects = [...healthy(core, 0, { ...goodDb, lagSeconds: 30 }), ...core.step(200, { kind: "tick" })];
    expect(core.snapshot(200).role).toBe("holder");
    const behind = effects.find((e) => e.kind === "event" && e.type === "db-takeover-behind");
    expect(behind).toMatchObject({ fields: { lagSeconds: 30 } });
  });

  it("holder dead, availabilityOverCatchUp false: a lagging standby stays a standby", () => {
    const core = new ElectionCore({ ...base, db: { ...DB, availabilityOverCatchUp: false }, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0, { ...goodDb, lagSeconds: 30 });
    core.step(200, { kind: "tick" });
    core.step(5_000, { kind: "tick" });
    expect(core.snapshot(5_000).role).toBe("standby");
  });

  it("an incomplete seed makes the node never eligible, even with the holder dead", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0, { ...goodDb, seedIncomplete: true });
    core.step(200, { kind: "tick" });
    core.step(5_000, { kind: "tick" });
    expect(core.snapshot(5_000).role).toBe("standby");
    expect(core.reasons()).toContain("database seed incomplete (run `mnha db seed` again)");
  });

  it("after a claim the writable order carries what the dead holder last reported (for the possibly-lost check)", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0);
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true, db: { ...goodDb, readOnly: false, gtidBinlogPos: "1-1-99", semiSyncMasterActive: false } }) });
    core.step(20, { kind: "peer-down", reason: "gone" });
    for (let t = 100; t <= 2_000; t += 100) core.step(t, { kind: "tick" });
    expect(core.snapshot(2_000).role).toBe("holder");
    const writable = core.step(2_050, { kind: "vip-observed", present: true });
    expect(writable).toContainEqual({ kind: "db-read-only", on: false, afterClaim: { peerGtidBinlogPos: "1-1-99", peerSemiSyncActive: false, lagSeconds: 0 } });
  });

  it("a restarted server that came up writable on a standby is made read-only again; a holder's that came up read-only is made writable again", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    healthy(core, 0);
    expect(kinds(core.step(10, { kind: "db-health", summary: { ...goodDb, readOnly: false } }))).toEqual(["db:read-only"]);
    // Once asked, the same report does not ask again until the server says otherwise.
    expect(kinds(core.step(20, { kind: "db-health", summary: { ...goodDb, readOnly: true } }))).toEqual([]);
    const { core: holder } = holderWithVip();
    const again = holder.step(400, { kind: "db-health", summary: { ...goodDb, readOnly: true } });
    expect(kinds(again)).toEqual(["db:writable"]);
  });

  it("the replica's IO thread down because the holder's own database is down does not block a handoff; the taker applies its relay log first", () => {
    const core = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    const ioDown: DbSummary = { ...goodDb, broken: "Slave_IO_Running Connecting", lagSeconds: null, slaveIoRunning: "Connecting", slaveSqlRunning: "Yes", lastSqlError: null };
    healthy(core, 0, ioDown);
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true, db: { ...goodDb, alive: true } }) });
    // The holder's database answers: a broken fetch is a broken replica.
    expect(core.eligible()).toBe(false);
    core.step(20, { kind: "peer-message", message: heartbeat("mn1", { role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true, eligible: false, db: { ...goodDb, alive: false } }) });
    expect(core.eligible()).toBe(true);
    // Its SQL thread stopped too: not eligible whatever the holder's state.
    core.step(25, { kind: "db-health", summary: { ...ioDown, slaveSqlRunning: "No" } });
    expect(core.eligible()).toBe(false);
    core.step(26, { kind: "db-health", summary: ioDown });
    // The holder could not read its position (its database is dead): no wait, but the relay log is applied before writing.
    const offered = kinds(core.step(30, { kind: "peer-message", message: { type: "handoff-offer", id: "h1", epoch: 4, from: "mn1", to: "mn2", reason: "service db failed" } }));
    expect(offered).toContain("send:handoff-ready");
    core.step(40, { kind: "vip-observed", present: true });
    const released = core.step(50, { kind: "peer-message", message: { type: "handoff-released", id: "h1", epoch: 4 } });
    expect(released).toContainEqual({ kind: "db-read-only", on: false, afterClaim: expect.objectContaining({ peerGtidBinlogPos: "1-1-10" }) });
  });
});
