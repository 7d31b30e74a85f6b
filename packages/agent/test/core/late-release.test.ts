import type { Heartbeat, LinkMessage } from "@mnha/protocol";
import { describe, expect, it } from "vitest";
import { ElectionCore, type DbSummary, type ElectionEffect } from "../../src/core/election.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * A planned handoff whose giver is slow to release (the database benchmark at load ~15,
 * docs/benchmarks.md): the taker's 200 ms receive window closes, then the giver's release
 * arrives 16 ms later. The taker must end holding the VIP (the giver has released), never in
 * "adopted epoch N as holder, claim aborted", and the giver's `mnha demote` reports success
 * only once the taker says it holds the VIP.
 */
const DB = { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true };
const base = { ...SIM_SETTINGS.election, arpGuard: false, startupGraceMs: 0, db: DB };
const goodDb: DbSummary = { alive: true, readOnly: true, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: "1-1-10", gtidCurrentPos: "1-1-10", semiSyncMasterActive: true };

function heartbeat(node: string, over: Partial<Heartbeat>): Heartbeat {
  return { type: "heartbeat", seq: 1, node, epoch: 1, holder: null, role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [], ...over };
}

function healthy(core: ElectionCore, now: number): void {
  core.step(now, { kind: "services", healthy: true, reasons: [] });
  core.step(now, { kind: "gateway", reachable: true });
  core.step(now, { kind: "db-health", summary: goodDb });
}

const sent = (effects: ElectionEffect[]): LinkMessage[] => effects.flatMap((e) => (e.kind === "send" ? [e.message] : []));
const gate = (effects: ElectionEffect[]): boolean[] => effects.flatMap((e) => (e.kind === "set-gate" ? [e.open] : []));
const events = (effects: ElectionEffect[]): string[] => effects.flatMap((e) => (e.kind === "event" ? [`${e.type}: ${e.message}`] : []));
const done = (effects: ElectionEffect[]) => effects.flatMap((e) => (e.kind === "request-done" ? [e] : []));

const OFFER = { type: "handoff-offer", id: "mn1-2-1", epoch: 2, from: "mn1", to: "mn2", reason: "operator demote", gtidBinlogPos: "1-1-10" } as const;

/** mn2, standby at epoch 1 under holder mn1, accepts the offer (after catching up) at t=3677 and lets its window close at 3877. */
function takerWhoseWindowClosed(): { taker: ElectionCore; effects: ElectionEffect[] } {
  const taker = new ElectionCore({ ...base, self: "mn2", peer: "mn1", initialEpoch: 1 }, 0);
  healthy(taker, 0);
  const effects: ElectionEffect[] = [];
  for (let t = 100; t <= 3_500; t += 100) {
    effects.push(...taker.step(t, { kind: "peer-message", message: heartbeat("mn1", { seq: t, role: "holder", holder: "mn1", leaseRemainingMs: 600, vipPresent: true, keepalived: "master" }) }));
    effects.push(...taker.step(t, { kind: "tick" }));
  }
  expect(taker.snapshot(3_500).role).toBe("standby");
  effects.push(...taker.step(3_593, { kind: "peer-message", message: heartbeat("mn1", { seq: 3593, role: "handing-off", holder: "mn1", leaseRemainingMs: 600, vipPresent: true, keepalived: "master" }) }));
  effects.push(...taker.step(3_595, { kind: "peer-message", message: OFFER }));
  effects.push(...taker.step(3_600, { kind: "tick" }));
  const accepted = taker.step(3_677, { kind: "db-caught-up", id: OFFER.id, reached: true, detail: "applied" });
  expect(sent(accepted).map((m) => m.type)).toContain("handoff-ready");
  expect(taker.snapshot(3_677).role).toBe("receiving");
  effects.push(...accepted);
  // Ticks go on while receiving (the holder is busy closing its gate: no heartbeat from it).
  effects.push(...taker.step(3_700, { kind: "tick" }), ...taker.step(3_800, { kind: "tick" }));
  const closed = taker.step(3_877, { kind: "wake" });
  expect(events(closed).join("\n")).toContain("did not confirm the handoff within 200 ms");
  expect(gate(closed)).toEqual([false]);
  effects.push(...closed);
  return { taker, effects };
}

describe("a handoff whose giver releases after the taker's receive window closed", () => {
  it("the taker takes the late release (the exact interleaving of the benchmark) and holds the VIP at the new epoch", () => {
    const { taker } = takerWhoseWindowClosed();
    // mn1 released 16 ms later: its message, then its heartbeat (standby at epoch 2, holder mn2).
    const late = taker.step(3_893, { kind: "peer-message", message: { type: "handoff-released", id: OFFER.id, epoch: 2 } });
    const after = taker.step(3_895, { kind: "peer-message", message: heartbeat("mn1", { seq: 3895, epoch: 2, holder: "mn2", role: "standby" }) });
    const s = taker.snapshot(3_895);
    expect(s.role, events([...late, ...after]).join("\n")).toBe("holder");
    expect(s.holder).toBe("mn2");
    expect(s.epoch).toBe(2);
    expect(s.gateOpen).toBe(true);
    expect(gate(late)).toEqual([true]);
    expect(late.some((e) => e.kind === "persist-epoch" && e.epoch === 2)).toBe(true);
    // The database is made writable only once the VIP is seen here.
    expect(late.some((e) => e.kind === "db-read-only" && !e.on)).toBe(false);
    const vip = taker.step(4_250, { kind: "vip-observed", present: true });
    expect(vip.some((e) => e.kind === "db-read-only" && !e.on)).toBe(true);
  });

  it("the release message lost, the giver's heartbeat (standby, epoch 2, holder mn2) completes it just the same, even during a claim", () => {
    const { taker } = takerWhoseWindowClosed();
    // As in the benchmark: mn2 lost its peer for ~300 ms (the giver busy) and started a claim.
    taker.step(3_900, { kind: "tick" });
    taker.step(4_000, { kind: "tick" });
    const after = taker.step(4_010, { kind: "peer-message", message: heartbeat("mn1", { seq: 4010, epoch: 2, holder: "mn2", role: "standby" }) });
    const s = taker.snapshot(4_010);
    expect(s.role, events(after).join("\n")).toBe("holder");
    expect(s.holder).toBe("mn2");
    expect(s.epoch).toBe(2);
    expect(s.gateOpen).toBe(true);
    // Never the contradictory state: a claim aborted because the peer "holds a newer epoch" that names us.
    expect(events(after).join("\n")).not.toContain("peer holds a newer epoch");
  });

  it("a release that comes after the lease the taker reported is not taken: standby at the new epoch, holding nothing and saying so", () => {
    const { taker } = takerWhoseWindowClosed();
    // Window closed 3877; the lease it reported from 3677 (600 ms) less the margin (150) ends at 4127.
    taker.step(3_900, { kind: "tick" });
    taker.step(4_000, { kind: "tick" });
    taker.step(4_100, { kind: "tick" });
    const late = taker.step(4_130, { kind: "peer-message", message: { type: "handoff-released", id: OFFER.id, epoch: 2 } });
    expect(events(late).join("\n")).toContain("not taken");
    const after = taker.step(4_131, { kind: "peer-message", message: heartbeat("mn1", { seq: 4131, epoch: 2, holder: "mn2", role: "standby" }) });
    const s = taker.snapshot(4_131);
    expect(s.role).not.toBe("holder");
    expect(s.gateOpen).toBe(false);
    expect(s.epoch).toBe(2);
    // It does not name itself holder (the giver would wait on a lease that protects nothing).
    expect(s.holder).toBeNull();
    expect(taker.heartbeatFields(4_131).holder).toBeNull();
    expect(gate([...late, ...after])).toEqual([]);
  });
});

/** mn1 holds at epoch 1 with mn2 a healthy standby; the operator demotes it. */
function giverAfterRelease(): { giver: ElectionCore; effects: ElectionEffect[] } {
  const giver = new ElectionCore({ ...base, self: "mn1", peer: "mn2", initialEpoch: 0 }, 0);
  healthy(giver, 0);
  giver.step(200, { kind: "tick" });
  expect(giver.snapshot(200).role).toBe("holder");
  giver.step(250, { kind: "vip-observed", present: true });
  for (let t = 300; t <= 3_500; t += 100) {
    giver.step(t, { kind: "peer-message", message: heartbeat("mn2", { seq: t, holder: "mn1" }) });
    giver.step(t, { kind: "tick" });
  }
  const effects = giver.step(3_593, { kind: "demote", requestId: "r1" });
  expect(sent(effects).map((m) => m.type)).toContain("handoff-offer");
  const offer = sent(effects).find((m) => m.type === "handoff-offer");
  if (offer?.type !== "handoff-offer") throw new Error("no offer");
  giver.step(3_600, { kind: "peer-message", message: heartbeat("mn2", { seq: 3600, holder: "mn1" }) });
  const release = giver.step(3_893, { kind: "peer-message", message: { type: "handoff-ready", id: offer.id, epoch: offer.epoch } });
  expect(sent(release).map((m) => m.type)).toContain("handoff-released");
  expect(giver.snapshot(3_893).role).toBe("standby");
  effects.push(...release);
  return { giver, effects };
}

describe("mnha demote reports what happened", () => {
  it("success only once the taker reports it holds the VIP", () => {
    const { giver, effects } = giverAfterRelease();
    expect(done(effects)).toEqual([]);
    // The role alone is not enough: the VIP must be up there.
    const role = giver.step(3_900, { kind: "peer-message", message: heartbeat("mn2", { seq: 3900, epoch: 2, holder: "mn2", role: "holder", leaseRemainingMs: 600, keepalived: "backup" }) });
    expect(done(role)).toEqual([]);
    const heard = giver.step(3_930, { kind: "peer-message", message: heartbeat("mn2", { seq: 3930, epoch: 2, holder: "mn2", role: "holder", leaseRemainingMs: 600, vipPresent: true, keepalived: "master" }) });
    expect(done(heard)).toEqual([expect.objectContaining({ requestId: "r1", ok: true, to: "mn2", epoch: 2 })]);
    expect(done(heard)[0]?.message).toContain("VIP handed to mn2");
  });

  it("a taker that reports standby at the new epoch: the demote fails, saying who holds the VIP", () => {
    const { giver } = giverAfterRelease();
    const heard = giver.step(3_900, { kind: "peer-message", message: heartbeat("mn2", { seq: 3900, epoch: 2, holder: null, role: "standby" }) });
    const [result] = done(heard);
    expect(result).toEqual(expect.objectContaining({ requestId: "r1", ok: false, to: null }));
    expect(result?.message).toContain("mn2 did not take the VIP");
    expect(result?.message).toContain("nobody holds it now");
    expect(events(heard).join("\n")).toContain("was not taken");
  });

  it("the taker holds the role but its VIP never comes up: the demote says exactly that", () => {
    const { giver } = giverAfterRelease();
    giver.step(3_900, { kind: "peer-message", message: heartbeat("mn2", { seq: 3900, epoch: 2, holder: "mn2", role: "holder", leaseRemainingMs: 600 }) });
    const [result] = done(giver.step(3_893 + base.handoffTimeoutMs, { kind: "wake" }));
    expect(result).toEqual(expect.objectContaining({ requestId: "r1", ok: false, to: "mn2" }));
    expect(result?.message).toContain("holds the role at epoch 2 but has not reported the VIP on its interface");
  });

  it("no word from the taker within handoffTimeoutMs of the release: the demote fails", () => {
    const { giver } = giverAfterRelease();
    expect(done(giver.step(4_000, { kind: "tick" }))).toEqual([]);
    const late = giver.step(3_893 + base.handoffTimeoutMs, { kind: "wake" });
    const [result] = done(late);
    expect(result).toEqual(expect.objectContaining({ requestId: "r1", ok: false }));
    expect(result?.message).toContain(`did not report holding it within ${base.handoffTimeoutMs} ms`);
  });
});
