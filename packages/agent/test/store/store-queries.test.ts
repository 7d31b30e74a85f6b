import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SyncEvent } from "../../src/contracts.js";
import type { SqliteStore } from "../../src/store/sqlite-store.js";
import { StoreSet, durable, peerEvent, peerSample, removeDir, tempDir } from "./helpers.js";

const T = 1_760_000_000_000;
const PEER = "mn2:00000000beef";
const data = tempDir("queries");
const stores = new StoreSet();
let store: SqliteStore;

/** Own event (mn1) at T + at. */
function own(at: number, type: string, message: string, fields: Record<string, unknown> = {}, service: string | null = null): number {
  return store.appendEvent({ type, message, fields, service, wallMs: T + at, monoMs: at });
}

let peerSeq = 0;
function peer(at: number, type: string, message: string, fields: Record<string, unknown> = {}, service: string | null = null): SyncEvent {
  peerSeq += 1;
  return peerEvent(PEER, peerSeq, { wallMs: T + at, type, message, fields, service });
}

beforeAll(async () => {
  store = await stores.open(data);
  // A realistic history of two nodes: start-up claim, a failed service hands the VIP over,
  // an operator demote hands it back, the holder dies and the peer claims.
  const mn2: SyncEvent[] = [];
  own(0, "agent.started", "mnha started as mn1");
  mn2.push(peer(10, "agent.started", "mnha started as mn2"));
  own(500, "election.role-changed", "standby -> claiming: holder gone", { from: "standby", to: "claiming", reason: "holder gone; checking nobody answers for the VIP", epoch: 0 });
  own(510, "election.claim-started", "claiming the VIP (peer lost)", { probeId: 1 });
  own(1_000, "election.role-changed", "claiming -> holder: claimed the VIP at epoch 1", { from: "claiming", to: "holder", reason: "claimed the VIP at epoch 1", epoch: 1 });
  own(1_150, "vip.changed", "VIP is now on eth0", { present: true, role: "holder" });
  mn2.push(peer(1_200, "election.role-changed", "starting -> standby", { from: "starting", to: "standby", reason: "start-up wait over", epoch: 1 }));
  // A handoff that the peer refused: holder -> handing-off -> holder is no change of holder.
  own(30_000, "election.role-changed", "holder -> handing-off", { from: "holder", to: "handing-off", reason: "operator demote", epoch: 1 });
  own(30_100, "election.role-changed", "handing-off -> holder", { from: "handing-off", to: "holder", reason: "handoff refused", epoch: 1 });
  // Service mn fails on mn1: handoff to mn2 (epoch 2).
  own(60_000, "check.changed", "service mn is failed: connect ECONNREFUSED", { service: "mn", healthy: false, critical: true, detail: "connect ECONNREFUSED" }, "mn");
  own(60_010, "election.handoff-offered", "offering the VIP to mn2 at epoch 2", { id: 7, epoch: 2, reason: "this node is not eligible: service mn failed" });
  own(60_011, "election.role-changed", "holder -> handing-off", { from: "holder", to: "handing-off", reason: "this node is not eligible: service mn failed", epoch: 1 });
  mn2.push(peer(60_050, "election.role-changed", "standby -> receiving", { from: "standby", to: "receiving", reason: "taking the VIP from mn1", epoch: 1 }));
  own(60_300, "vip.changed", "VIP is gone from eth0", { present: false, role: "handing-off" });
  own(60_350, "election.role-changed", "handing-off -> standby", { from: "handing-off", to: "standby", reason: "handed the VIP to mn2", epoch: 2 });
  mn2.push(peer(60_380, "election.role-changed", "receiving -> holder", { from: "receiving", to: "holder", reason: "took the VIP from mn1 at epoch 2", epoch: 2 }));
  mn2.push(peer(60_420, "vip.changed", "VIP is now on eth0", { present: true, role: "holder" }));
  own(90_000, "check.changed", "service mn is healthy: HTTP 200", { service: "mn", healthy: true, critical: true, detail: "HTTP 200" }, "mn");
  // Operator demotes mn2: back to mn1 (epoch 3).
  mn2.push(peer(120_000, "operator.demote", "operator asked to demote this node", { requestId: "r1" }));
  mn2.push(peer(120_005, "election.handoff-offered", "offering the VIP to mn1 at epoch 3", { id: 8, epoch: 3, reason: "operator demote" }));
  mn2.push(peer(120_006, "election.role-changed", "holder -> handing-off", { from: "holder", to: "handing-off", reason: "operator demote", epoch: 2 }));
  own(120_050, "election.role-changed", "standby -> receiving", { from: "standby", to: "receiving", reason: "taking the VIP from mn2: operator demote", epoch: 2 });
  mn2.push(peer(120_200, "vip.changed", "VIP is gone from eth0", { present: false, role: "handing-off" }));
  own(120_250, "election.role-changed", "receiving -> holder", { from: "receiving", to: "holder", reason: "took the VIP from mn2 at epoch 3", epoch: 3 });
  own(120_260, "vip.changed", "VIP is now on eth0", { present: true, role: "holder" });
  mn2.push(peer(120_300, "operator.demote.result", "demote done", { ok: true, to: "mn1", tookMs: 300 }));
  // mn1 dies without a word (kill -9); mn2 claims (epoch 4).
  mn2.push(peer(181_000, "election.peer-lost", "peer mn1 lost: heartbeat timeout", { peer: "mn1", reason: "heartbeat timeout", lastHeardMsAgo: 400 }));
  mn2.push(peer(181_010, "election.role-changed", "standby -> claiming", { from: "standby", to: "claiming", reason: "holder gone", epoch: 3 }));
  mn2.push(peer(181_020, "election.claim-started", "claiming the VIP (peer lost)", { probeId: 2 }));
  mn2.push(peer(181_500, "election.role-changed", "claiming -> holder", { from: "claiming", to: "holder", reason: "claimed the VIP at epoch 4", epoch: 4 }));
  mn2.push(peer(181_600, "vip.changed", "VIP is now on eth0", { present: true, role: "holder" }));
  mn2.push(peer(200_000, "check.changed", "service db is failed: timed out", { service: "db", healthy: false, critical: true, detail: "timed out" }, "db"));
  // The peer's batches arrive out of order.
  await store.ingest(mn2.slice(10), []);
  await store.ingest(mn2.slice(0, 10), []);
  await durable(store, 16);

  for (let i = 1; i <= 9; i++) store.appendSamples([{ series: "cpu", value: [5, 1, 9, 3, 7, 2, 8, 4, 6][i - 1]!, wallMs: T + i * 1_000 }]);
  store.appendSamples([{ series: "mem", value: 10, wallMs: T + 1_000 }, { series: "mem", value: 20, wallMs: T + 2_000 }]);
  await store.ingest([], [peerSample(PEER, 1, { series: "cpu", value: 50, wallMs: T + 1_000 }), peerSample(PEER, 2, { series: "cpu", value: 70, wallMs: T + 2_000 })]);
}, 15_000);

afterAll(async () => {
  await stores.stopAll();
  removeDir(data);
});

describe("queryEvents", () => {
  it("returns the newest first, own and peer events together", async () => {
    const events = await store.queryEvents({ limit: 3 });
    expect(events.map((e) => [e.node, e.type, e.wallMs - T])).toEqual([
      ["mn2", "check.changed", 200_000],
      ["mn2", "vip.changed", 181_600],
      ["mn2", "election.role-changed", 181_500],
    ]);
    expect(events[0]).toMatchObject({ origin: PEER, service: "db", fields: { service: "db", healthy: false } });
    expect((await store.queryEvents({})).length).toBe(16 + 16);
  });

  it("filters by time (inclusive bounds)", async () => {
    const events = await store.queryEvents({ sinceMs: T + 60_300, untilMs: T + 60_420 });
    expect(events.map((e) => e.wallMs - T)).toEqual([60_420, 60_380, 60_350, 60_300]);
  });

  it("filters by node", async () => {
    const events = await store.queryEvents({ node: "mn2", limit: 1_000 });
    expect(events).toHaveLength(16);
    expect(new Set(events.map((e) => e.node))).toEqual(new Set(["mn2"]));
  });

  it("filters by exact type, and a type matches the types below it in the dotted hierarchy", async () => {
    expect((await store.queryEvents({ type: "vip.changed" })).map((e) => e.wallMs - T)).toEqual([181_600, 120_260, 120_200, 60_420, 60_300, 1_150]);
    expect((await store.queryEvents({ type: "operator.demote" })).map((e) => e.type)).toEqual(["operator.demote.result", "operator.demote"]);
    expect((await store.queryEvents({ type: "operator.demote.result" })).map((e) => e.type)).toEqual(["operator.demote.result"]);
    const election = await store.queryEvents({ type: "election", limit: 1_000 });
    expect(election.length).toBe(19);
    expect(election.every((e) => e.type.startsWith("election."))).toBe(true);
    expect(await store.queryEvents({ type: "election.", limit: 1_000 })).toEqual(election);
    // Only whole segments match: "elect" is no prefix of "election.role-changed".
    expect(await store.queryEvents({ type: "elect" })).toEqual([]);
    expect(await store.queryEvents({ type: "election.role" })).toEqual([]);
  });

  it("filters by service", async () => {
    expect((await store.queryEvents({ service: "mn" })).map((e) => e.message)).toEqual(["service mn is healthy: HTTP 200", "service mn is failed: connect ECONNREFUSED"]);
    expect((await store.queryEvents({ service: "db" })).map((e) => e.node)).toEqual(["mn2"]);
  });

  it("combines filters and honours the limit", async () => {
    const events = await store.queryEvents({ node: "mn1", type: "election.role-changed", sinceMs: T + 30_000, limit: 2 });
    expect(events.map((e) => [e.node, e.wallMs - T])).toEqual([
      ["mn1", 120_250],
      ["mn1", 120_050],
    ]);
  });
});

describe("failovers", () => {
  it("derives every take of the VIP from both nodes' events, with cause and unanswered time", async () => {
    const failovers = await store.failovers({});
    expect(failovers).toEqual([
      { atMs: T + 181_500, from: "mn1", to: "mn2", epoch: 4, cause: "claimed the VIP at epoch 4 (mn2: peer mn1 lost: heartbeat timeout)", unansweredMs: null },
      { atMs: T + 120_250, from: "mn2", to: "mn1", epoch: 3, cause: "took the VIP from mn2 at epoch 3 (mn2 offered it: operator demote; operator demote on mn2)", unansweredMs: 60 },
      {
        atMs: T + 60_380,
        from: "mn1",
        to: "mn2",
        epoch: 2,
        cause: "took the VIP from mn1 at epoch 2 (mn1 offered it: this node is not eligible: service mn failed; mn1: service mn is failed: connect ECONNREFUSED)",
        unansweredMs: 120,
      },
      { atMs: T + 1_000, from: null, to: "mn1", epoch: 1, cause: "claimed the VIP at epoch 1 (mn1: claiming the VIP (peer lost))", unansweredMs: null },
    ]);
  });

  it("filters by time and limit, still naming the previous holder", async () => {
    expect((await store.failovers({ sinceMs: T + 100_000 })).map((f) => [f.epoch, f.from])).toEqual([
      [4, "mn1"],
      [3, "mn2"],
    ]);
    expect((await store.failovers({ untilMs: T + 100_000 })).map((f) => f.epoch)).toEqual([2, 1]);
    expect((await store.failovers({ limit: 1 })).map((f) => [f.epoch, f.from])).toEqual([[4, "mn1"]]);
    expect((await store.failovers({ sinceMs: T + 60_000, untilMs: T + 61_000 })).map((f) => [f.epoch, f.from, f.to])).toEqual([[2, "mn1", "mn2"]]);
  });
});

describe("summarize", () => {
  it("gives count, min, median, max and last per node and series", async () => {
    const summary = await store.summarize({});
    expect(summary).toEqual([
      { node: "mn1", series: "cpu", count: 9, min: 1, median: 5, max: 9, last: 6, lastAtMs: T + 9_000 },
      { node: "mn1", series: "mem", count: 2, min: 10, median: 15, max: 20, last: 20, lastAtMs: T + 2_000 },
      { node: "mn2", series: "cpu", count: 2, min: 50, median: 60, max: 70, last: 70, lastAtMs: T + 2_000 },
    ]);
  });

  it("filters by node, series and time", async () => {
    expect(await store.summarize({ node: "mn2" })).toHaveLength(1);
    expect((await store.summarize({ series: "cpu" })).map((s) => s.node)).toEqual(["mn1", "mn2"]);
    const early = await store.summarize({ node: "mn1", series: "cpu", sinceMs: T + 2_000, untilMs: T + 4_000 });
    expect(early).toEqual([{ node: "mn1", series: "cpu", count: 3, min: 1, median: 3, max: 9, last: 3, lastAtMs: T + 4_000 }]);
    expect(await store.summarize({ sinceMs: T + 100_000 })).toEqual([]);
  });
});
