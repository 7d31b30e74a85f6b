import { rmSync } from "node:fs";
import { join } from "node:path";
import { ManualClock } from "@mnha/shared";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { SyncEvent, SyncSample, Watermarks } from "../../src/contracts.js";
import type { SqliteStore } from "../../src/store/sqlite-store.js";
import { StoreSet, durable, peerEvent, peerSample, removeDir, tempDir } from "./helpers.js";

const PEER = "mn2:0000000000aa";
const dirs: string[] = [];
const stores = new StoreSet();
function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}
afterEach(() => stores.stopAll());
afterAll(() => dirs.forEach(removeDir));

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const LIMITS = { maxEvents: 2_000, maxSamples: 10_000, maxBytes: 200_000 };

/** Pulls everything `from` has beyond what `to` holds into `to`, batch by batch, as the sync engine would. */
async function pull(from: SqliteStore, to: SqliteStore, limits = LIMITS): Promise<number> {
  let batches = 0;
  for (;;) {
    const batch = await from.readAfter(await to.watermarks(), limits);
    if (batch.events.length === 0 && batch.samples.length === 0) return batches;
    await to.ingest(batch.events, batch.samples);
    batches += 1;
    if (batches > 1_000) throw new Error("sync does not converge");
  }
}

describe("watermarks", () => {
  it("track the highest seq with no gap below it, per origin and kind, whatever order batches arrive in", async () => {
    const store = await stores.open(dir("marks"));
    await store.ingest(range(5, 7).map((s) => peerEvent(PEER, s)), [peerSample(PEER, 3)]);
    expect(await store.watermarks()).toEqual({ events: {}, samples: {} });
    await store.ingest(range(1, 2).map((s) => peerEvent(PEER, s)), [peerSample(PEER, 1)]);
    expect(await store.watermarks()).toEqual({ events: { [PEER]: 2 }, samples: { [PEER]: 1 } });
    await store.ingest([peerEvent(PEER, 4)], [peerSample(PEER, 2)]);
    expect(await store.watermarks()).toEqual({ events: { [PEER]: 2 }, samples: { [PEER]: 3 } });
    await store.ingest([peerEvent(PEER, 3)], []);
    expect(await store.watermarks()).toEqual({ events: { [PEER]: 7 }, samples: { [PEER]: 3 } });

    const seq = store.appendEvent({ type: "agent.started", message: "own", wallMs: 1, monoMs: 1 });
    store.appendSamples([{ series: "cpu", value: 1, wallMs: 1 }]);
    await durable(store, seq);
    expect(await store.watermarks()).toEqual({ events: { [PEER]: 7, [store.origin]: 1 }, samples: { [PEER]: 3, [store.origin]: 1 } });
  });

  it("ingest is idempotent: duplicates change nothing and the first copy of a record wins (a different copy is reported)", async () => {
    const store = await stores.open(dir("dupes"));
    const batch = range(1, 20).map((s) => peerEvent(PEER, s));
    await store.ingest(batch, [peerSample(PEER, 1)]);
    expect(await store.ingest(batch, [peerSample(PEER, 1)])).toMatchObject({ stored: 0, duplicates: 21, conflictCount: 0 });
    expect(await store.ingest([peerEvent(PEER, 5, { message: "a different copy" })], [peerSample(PEER, 1, { value: 999 })])).toMatchObject({ conflictCount: 2 });
    const events = await store.queryEvents({ limit: 1_000 });
    expect(events).toHaveLength(20);
    expect(events.find((e) => e.seq === 5)?.message).toBe("peer event 5");
    expect((await store.summarize({}))[0]).toMatchObject({ count: 1, last: 1 });
    expect(await store.watermarks()).toEqual({ events: { [PEER]: 20 }, samples: { [PEER]: 1 } });
  });

  it("refuses a malformed record without storing any of its batch", async () => {
    const store = await stores.open(dir("malformed"));
    await expect(store.ingest([peerEvent(PEER, 1), { ...peerEvent(PEER, 2), seq: -1 }], [])).rejects.toThrow(/malformed event/);
    expect(await store.queryEvents({})).toEqual([]);
    expect(store.health().ok).toBe(true);
  });
});

describe("readAfter", () => {
  it("returns what lies beyond the given watermarks, oldest first, within the count limit", async () => {
    const store = await stores.open(dir("after"));
    // Own events at odd milliseconds, the peer's at even ones: the answer interleaves them.
    for (let i = 1; i <= 30; i++) store.appendEvent({ type: "check.changed", message: `own ${i}`, wallMs: 1_000 + 2 * i + 1, monoMs: i });
    await durable(store, 30);
    await store.ingest(
      range(1, 30).map((s) => peerEvent(PEER, s, { wallMs: 1_000 + 2 * s })),
      range(1, 5).map((s) => peerSample(PEER, s)),
    );
    const first = await store.readAfter({ events: {}, samples: {} }, { maxEvents: 10, maxSamples: 3, maxBytes: 1_000_000 });
    expect(first.events.map((e) => e.wallMs - 1_000)).toEqual(range(2, 11));
    expect(first.samples.map((s) => s.seq)).toEqual([1, 2, 3]);

    const next = await store.readAfter({ events: { [PEER]: 5, [store.origin]: 25 }, samples: { [PEER]: 4 } }, { maxEvents: 100, maxSamples: 100, maxBytes: 1_000_000 });
    expect(next.events.filter((e) => e.origin === PEER).map((e) => e.seq)).toEqual(range(6, 30));
    expect(next.events.filter((e) => e.origin === store.origin).map((e) => e.seq)).toEqual(range(26, 30));
    expect(next.samples.map((s) => s.seq)).toEqual([5]);
  });

  it("keeps to the byte budget, but always returns at least one record", async () => {
    const store = await stores.open(dir("bytes"));
    await store.ingest(range(1, 50).map((s) => peerEvent(PEER, s, { message: "x".repeat(1_000) })), []);
    const small = await store.readAfter({ events: {}, samples: {} }, { maxEvents: 2_000, maxSamples: 0, maxBytes: 10_000 });
    expect(small.events.length).toBeGreaterThanOrEqual(5);
    expect(small.events.length).toBeLessThan(10);
    expect(JSON.stringify(small.events).length).toBeLessThanOrEqual(10_000);
    const tiny = await store.readAfter({ events: {}, samples: {} }, { maxEvents: 2_000, maxSamples: 0, maxBytes: 1 });
    expect(tiny.events.map((e) => e.seq)).toEqual([1]);
  });

  it("never goes past its own watermark: records beyond a gap wait until the gap is filled", async () => {
    const store = await stores.open(dir("gap"));
    await store.ingest([1, 2, 4, 5].map((s) => peerEvent(PEER, s)), []);
    expect((await store.readAfter({ events: {}, samples: {} }, LIMITS)).events.map((e) => e.seq)).toEqual([1, 2]);
    await store.ingest([peerEvent(PEER, 3)], []);
    expect((await store.readAfter({ events: { [PEER]: 2 }, samples: {} }, LIMITS)).events.map((e) => e.seq)).toEqual([3, 4, 5]);
  });
});

describe("two stores syncing through readAfter and ingest", () => {
  it("end up holding the same records, both ways, in small batches", async () => {
    const a = await stores.open(dir("sync-a"), { node: "mn1" });
    const b = await stores.open(dir("sync-b"), { node: "mn2" });
    for (let i = 1; i <= 300; i++) a.appendEvent({ type: "check.changed", message: `a${i}`, fields: { i }, wallMs: 10_000 + i, monoMs: i });
    for (let i = 1; i <= 200; i++) b.appendEvent({ type: "gateway.changed", message: `b${i}`, wallMs: 10_000 + 2 * i, monoMs: i });
    a.appendSamples(range(1, 500).map((i) => ({ series: "cpu", value: i, wallMs: 10_000 + i })));
    await Promise.all([durable(a, 300), durable(b, 200)]);

    const small = { maxEvents: 64, maxSamples: 100, maxBytes: 16_000 };
    expect(await pull(a, b, small)).toBeGreaterThan(5);
    await pull(b, a, small);
    const key = (e: SyncEvent): string => `${e.origin}/${e.seq}/${e.message}`;
    const all = async (s: SqliteStore): Promise<string[]> => (await s.queryEvents({ limit: 10_000 })).map(key).sort();
    expect(await all(a)).toEqual(await all(b));
    expect((await all(a)).length).toBe(500);
    const marks: Watermarks = { events: { [a.origin]: 300, [b.origin]: 200 }, samples: { [a.origin]: 500 } };
    expect(await a.watermarks()).toEqual(marks);
    expect(await b.watermarks()).toEqual(marks);
    expect(await b.summarize({ node: "mn1" })).toEqual(await a.summarize({ node: "mn1" }));
    // Nothing left to send either way.
    expect(await pull(a, b)).toBe(0);
    expect(await pull(b, a)).toBe(0);
  });

  it("go on after a node's database file is removed by hand: its new records reach the peer, and what it had sent stays there", async () => {
    const a = await stores.open(dir("removed-a"), { node: "mn1" });
    const bDir = dir("removed-b");
    const b = await stores.open(bDir, { node: "mn2", retry: { initialMs: 20, maxMs: 100 } });
    for (let i = 1; i <= 5; i++) b.appendEvent({ type: "check.changed", message: `before ${i}`, wallMs: 10_000 + i, monoMs: i });
    b.appendSamples(range(1, 4).map((i) => ({ series: "cpu", value: i, wallMs: 10_000 + i })));
    for (let i = 1; i <= 3; i++) a.appendEvent({ type: "gateway.changed", message: `a ${i}`, wallMs: 10_000 + i, monoMs: i });
    await Promise.all([durable(b, 5), durable(a, 3)]);
    await pull(b, a);
    await pull(a, b);
    expect((await a.watermarks()).events[b.origin]).toBe(5);

    for (const file of ["mnha.db", "mnha.db-wal", "mnha.db-shm"]) rmSync(join(bDir, file), { force: true });
    for (let i = 6; i <= 8; i++) b.appendEvent({ type: "check.changed", message: `after ${i}`, wallMs: 20_000 + i, monoMs: i });
    b.appendSamples([{ series: "cpu", value: 5, wallMs: 20_005 }]);
    await durable(b, 8);
    // The new file starts at the old one's watermarks, so the sync has something to send.
    expect(await b.watermarks()).toMatchObject({ events: { [b.origin]: 8 }, samples: { [b.origin]: 5 } });
    await pull(b, a);
    expect(await a.watermarks()).toMatchObject({ events: { [b.origin]: 8 }, samples: { [b.origin]: 5 } });
    expect((await a.queryEvents({ node: "mn2", limit: 100 })).map((e) => e.message)).toEqual(["after 8", "after 7", "after 6", "before 5", "before 4", "before 3", "before 2", "before 1"]);
    // The peer sends back what the removed file held of the peer's own records; none in mn2's name.
    expect(await pull(a, b)).toBeGreaterThan(0);
    expect((await b.queryEvents({ limit: 100 })).map((e) => e.message)).toEqual(["after 8", "after 7", "after 6", "a 3", "a 2", "a 1"]);
  });

  it("send a gap marker for records their retention removed, so the receiver's watermark moves past them", async () => {
    const DAY = 86_400_000;
    const clock = new ManualClock(1_000, 1_760_000_000_000);
    const now = clock.wallNow();
    const a = await stores.open(dir("pruned-a"), { clock, store: { retention: { maxAgeDays: 30 } } });
    for (let i = 1; i <= 100; i++) a.appendEvent({ type: "check.changed", message: `e${i}`, wallMs: i <= 60 ? now - 40 * DAY + i : now - DAY + i, monoMs: i });
    a.appendSamples(range(1, 10).map((i) => ({ series: "cpu", value: i, wallMs: i <= 4 ? now - 40 * DAY : now })));
    await durable(a, 100);
    const retention = await a.runJob("retention");
    expect(retention).toMatchObject({ deletedEvents: 60, deletedSamples: 4 });

    const c = await stores.open(dir("pruned-c"), { node: "mn2" });
    const first = await a.readAfter(await c.watermarks(), LIMITS);
    expect(first.events[0]).toMatchObject({ origin: a.origin, seq: 60, type: "store.gap", fields: { fromSeq: 1, count: 60, cause: "retention" } });
    expect(first.events.slice(1).map((e) => e.seq)).toEqual(range(61, 100));
    expect(first.samples[0]).toMatchObject({ seq: 4, series: "store.gap", value: 4 });
    // What readAfter returns goes on the wire as it is.
    const { SyncEventSchema, SyncSampleSchema } = await import("@mnha/protocol");
    for (const e of first.events) SyncEventSchema.parse(e);
    for (const s of first.samples) SyncSampleSchema.parse(s);
    await c.ingest(first.events, first.samples);
    expect(await c.watermarks()).toEqual({ events: { [a.origin]: 100 }, samples: { [a.origin]: 10 } });
    expect(await pull(a, c)).toBe(0);
    // The marker is an audit record on the receiver: it says what is missing and why.
    const [gap] = await c.queryEvents({ type: "store.gap" });
    expect(gap?.message).toBe("60 events of mn1 (seq 1-60) removed by retention before they were copied");
    // ...and it is not mistaken for a series.
    expect((await c.summarize({})).map((s) => s.series)).toEqual(["cpu"]);
  });

  it("send one marker for a tail that retention removed entirely", async () => {
    const clock = new ManualClock(1_000, 1_760_000_000_000);
    const a = await stores.open(dir("tail-a"), { clock, store: { retention: { maxAgeDays: 1 } } });
    for (let i = 1; i <= 10; i++) a.appendEvent({ type: "check.changed", message: `e${i}`, wallMs: clock.wallNow() - 3 * 86_400_000, monoMs: i });
    await durable(a, 10);
    expect(await a.runJob("retention")).toMatchObject({ deletedEvents: 10 });
    const c = await stores.open(dir("tail-c"), { node: "mn2" });
    const batch = await a.readAfter(await c.watermarks(), LIMITS);
    expect(batch.events.map((e) => [e.seq, e.type, e.fields["fromSeq"]])).toEqual([[10, "store.gap", 1]]);
    await c.ingest(batch.events, batch.samples);
    expect(await c.watermarks()).toEqual({ events: { [a.origin]: 10 }, samples: {} });
    expect(await pull(a, c)).toBe(0);
  });

  it("cross a marker that lands on a record the receiver already holds", async () => {
    const c = await stores.open(dir("collide"));
    await c.ingest([peerEvent(PEER, 9)], []);
    const marker: SyncEvent = peerEvent(PEER, 9, { type: "store.gap", message: "gone", fields: { fromSeq: 1, count: 9, cause: "retention" } });
    const sample: SyncSample = peerSample(PEER, 2, { series: "store.gap", value: 2 });
    await c.ingest([marker, peerEvent(PEER, 10)], [sample]);
    expect(await c.watermarks()).toEqual({ events: { [PEER]: 10 }, samples: { [PEER]: 2 } });
    expect((await c.queryEvents({ limit: 100 })).map((e) => [e.seq, e.type])).toEqual([
      [10, "check.changed"],
      [9, "check.changed"],
    ]);
  });
});
