/**
 * What the store accepts from the peer: never a record under this node's own origin, never a
 * record whose origin belongs to another node than it names (or to neither pair node), a
 * different copy of a held record reported as a conflict, local-only events never offered to
 * the peer, and no control characters in anything stored.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StoreSet, durable, peerEvent, peerSample, removeDir, tempDir } from "./helpers.js";

const PEER = "mn2:0000000000aa";
const FROM_PEER = { peer: "mn2" };
const dirs: string[] = [];
const stores = new StoreSet();
function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}
afterEach(() => stores.stopAll());
afterAll(() => dirs.forEach(removeDir));

const ALL = { maxEvents: 10_000, maxSamples: 10_000, maxBytes: 10_000_000 };

describe("ingest refuses records the peer cannot own", () => {
  it("refuses records under this node's own origin: this node's real events stay, its numbering goes on", async () => {
    const store = await stores.open(dir("own-origin"));
    const seq = store.appendEvent({ type: "election.role-changed", message: "real event", wallMs: Date.now(), monoMs: 1 });
    await durable(store, seq);
    const own = store.origin;
    const report = await store.ingest(
      [peerEvent(own, 1, { node: "mn1", message: "forged 1" }), peerEvent(own, 2, { node: "mn1", message: "forged 2" }), peerEvent(PEER, 1)],
      [peerSample(own, 1, { node: "mn1" })],
      FROM_PEER,
    );
    expect(report).toMatchObject({ stored: 1, refusedCount: 3, conflictCount: 0 });
    expect(report.issues.map((issue) => issue.reason)).toEqual(["own-origin", "own-origin", "own-origin"]);
    // The next own event takes seq 2, which the forged copy did not occupy.
    const next = store.appendEvent({ type: "election.role-changed", message: "second real event", wallMs: Date.now(), monoMs: 2 });
    await durable(store, next);
    const mine = (await store.queryEvents({ node: "mn1" })).map((e) => e.message).sort();
    expect(mine).toEqual(["real event", "second real event"]);
    expect(await store.watermarks()).toEqual({ events: { [own]: 2, [PEER]: 1 }, samples: {} });
  });

  it("refuses records whose origin is another node's, or of a node outside the pair; accepts a rebuilt peer's new origin", async () => {
    const store = await stores.open(dir("owners"));
    const report = await store.ingest(
      [
        peerEvent("mn3:0000000000aa", 1, { node: "mn2" }),
        peerEvent("mn3:0000000000bb", 1, { node: "mn3" }),
        peerEvent(PEER, 1),
        peerEvent("mn2:0000000000cc", 1, { message: "from the rebuilt peer" }),
      ],
      [peerSample("mn1:00000000000d", 1, { node: "mn2" })],
      FROM_PEER,
    );
    expect(report.issues.map((issue) => [issue.origin, issue.reason])).toEqual([
      ["mn3:0000000000aa", "origin-not-of-node"],
      ["mn3:0000000000bb", "not-a-pair-node"],
      ["mn1:00000000000d", "origin-not-of-node"],
    ]);
    expect(report.stored).toBe(2);
    expect(Object.keys((await store.watermarks()).events).sort()).toEqual([PEER, "mn2:0000000000cc"]);
  });

  it("accepts this node's history under an older origin (a rebuild), but no record of this node dated after the store was created", async () => {
    const store = await stores.open(dir("own-history"));
    const old = "mn1:0000000000ee";
    const report = await store.ingest(
      [peerEvent(old, 1, { node: "mn1", wallMs: Date.now() - 86_400_000 }), peerEvent(old, 2, { node: "mn1", wallMs: Date.now() + 60_000, message: "made up" })],
      [],
      FROM_PEER,
    );
    expect(report.stored).toBe(1);
    expect(report.issues.map((issue) => issue.reason)).toEqual(["own-node-after-store-created"]);
    expect((await store.queryEvents({})).map((e) => e.message)).not.toContain("made up");
  });

  it("reports a different copy of a held record as a conflict and keeps the copy held; identical copies are duplicates", async () => {
    const store = await stores.open(dir("conflict"));
    const first = [peerEvent(PEER, 1), peerEvent(PEER, 2)];
    await store.ingest(first, [peerSample(PEER, 1)], FROM_PEER);
    const again = await store.ingest(first, [peerSample(PEER, 1)], FROM_PEER);
    expect(again).toMatchObject({ stored: 0, duplicates: 3, conflictCount: 0, refusedCount: 0 });
    const forged = await store.ingest([{ ...first[1]!, message: "rewritten history" }], [peerSample(PEER, 1, { value: 999 })], FROM_PEER);
    expect(forged).toMatchObject({ stored: 0, conflictCount: 2 });
    expect(forged.issues.map((issue) => [issue.kind, issue.seq, issue.reason])).toEqual([
      ["event", 2, "conflict"],
      ["sample", 1, "conflict"],
    ]);
    expect(forged.issues[0]?.detail).toMatch(/differs in message/);
    expect((await store.queryEvents({})).map((e) => e.message)).not.toContain("rewritten history");
    // A gap marker over a record held is not a conflict (retention removed the sender's copy).
    const marker = await store.ingest([peerEvent(PEER, 2, { type: "store.gap", message: "gone", fields: { fromSeq: 2, count: 1, cause: "retention" } })], [], FROM_PEER);
    expect(marker).toMatchObject({ conflictCount: 0, duplicates: 1 });
  });
});

describe("local-only events", () => {
  it("are stored and shown here but never announced nor read for the peer, and do not hole the replicated numbering", async () => {
    const path = dir("local-only");
    const store = await stores.open(path);
    store.appendEvent({ type: "peer.refusals", message: "12 connections refused from 10.0.0.99", wallMs: Date.now(), monoMs: 1 });
    const a = store.appendEvent({ type: "election.role-changed", message: "replicated 1", wallMs: Date.now(), monoMs: 2 });
    store.appendEvent({ type: "peer.refusals.summary", message: "summary", wallMs: Date.now(), monoMs: 3 });
    store.appendEvent({ type: "custom.thing", message: "flagged local", wallMs: Date.now(), monoMs: 4, localOnly: true });
    const b = store.appendEvent({ type: "election.role-changed", message: "replicated 2", wallMs: Date.now(), monoMs: 5 });
    expect([a, b]).toEqual([1, 2]);
    await durable(store, b);
    expect((await store.queryEvents({})).map((e) => e.message).sort()).toEqual(["12 connections refused from 10.0.0.99", "flagged local", "replicated 1", "replicated 2", "summary"]);
    expect(await store.watermarks()).toEqual({ events: { [store.origin]: 2 }, samples: {} });
    const forPeer = await store.readAfter({ events: {}, samples: {} }, ALL);
    expect(forPeer.events.map((e) => e.message)).toEqual(["replicated 1", "replicated 2"]);

    // The local numbering survives a restart (no collision with the rows already stored).
    await stores.stopAll();
    const reopened = await stores.open(path);
    reopened.appendEvent({ type: "peer.refusals", message: "after restart", wallMs: Date.now(), monoMs: 6 });
    const c = reopened.appendEvent({ type: "agent.started", message: "replicated 3", wallMs: Date.now(), monoMs: 7 });
    await durable(reopened, c);
    expect(c).toBe(3);
    expect((await reopened.queryEvents({ type: "peer.refusals" })).map((e) => e.message).sort()).toEqual(["12 connections refused from 10.0.0.99", "after restart", "summary"]);
    expect(reopened.health().ok).toBe(true);
  });

  it("are refused when a peer sends one", async () => {
    const store = await stores.open(dir("local-from-peer"));
    const report = await store.ingest([peerEvent(PEER, 1, { type: "peer.refusals" }), peerEvent(PEER, 2)], [], FROM_PEER);
    expect(report.issues.map((issue) => issue.reason)).toEqual(["local-only"]);
    expect((await store.queryEvents({})).map((e) => e.seq)).toEqual([2]);
  });
});

describe("control characters", () => {
  it("are stripped from the peer's records at ingest and from own records at append", async () => {
    const store = await stores.open(dir("escapes"));
    await store.ingest(
      [peerEvent(PEER, 1, { type: "check.changed\x07", service: "db\x1b[2J", message: "down\x1b]52;c;cm0gLXJmIC8K\x07 now\u009b31m", fields: { "k\x1b[1m": "v\x07", nested: { reason: "x\u009b2Jy" } } })],
      [peerSample(PEER, 1, { series: "cpu\x1b[2J" })],
      FROM_PEER,
    );
    const seq = store.appendEvent({ type: "check.changed", service: "web\x1b[2J", message: "check said \x1b]52;c;eA==\x07ok", fields: { output: "\x1b[31mred\x1b[0m" }, wallMs: Date.now(), monoMs: 1 });
    await durable(store, seq);
    const events = await store.queryEvents({});
    const peer = events.find((e) => e.node === "mn2");
    expect(peer).toMatchObject({ type: "check.changed", service: "db", message: "down now", fields: { k: "v", nested: { reason: "xy" } } });
    const own = events.find((e) => e.node === "mn1");
    expect(own).toMatchObject({ service: "web", message: "check said ok", fields: { output: "red" } });
    expect((await store.summarize({}))[0]?.series).toBe("cpu");
  });
});
