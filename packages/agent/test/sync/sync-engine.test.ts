import { MAX_FRAME_BYTES, type LinkMessage, type SyncAck, type SyncEvent } from "@mnha/protocol";
import { pino } from "pino";
import { Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { silentLogger } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { SyncEngine } from "../../src/sync/sync-engine.js";
import { FakeStore } from "./fake-store.js";
import { LinkPair, inSync, waitFor, type Side } from "./link-pair.js";

/** global.gc, made available at run time (vitest does not pass --expose-gc). */
function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

const pairs: LinkPair[] = [];
afterEach(async () => {
  for (const pair of pairs.splice(0)) await pair.close();
});

function stores(aOrigin = "a:1", bOrigin = "b:1"): Record<Side, FakeStore> {
  return { a: new FakeStore("mn-a", aOrigin), b: new FakeStore("mn-b", bOrigin) };
}

async function linkPair(s: Record<Side, FakeStore>, options: ConstructorParameters<typeof LinkPair>[1] = {}): Promise<LinkPair> {
  const pair = new LinkPair(s, options);
  pairs.push(pair);
  await pair.start();
  return pair;
}

function appendLive(store: FakeStore, count: number, label: string): void {
  for (let i = 0; i < count; i++) store.appendEvent({ type: "test.live", message: `${label} ${i}`, wallMs: Date.now(), monoMs: performance.now(), fields: { i } });
}

function expectIdentical(s: Record<Side, FakeStore>): void {
  expect(s.a.eventKeys()).toEqual(s.b.eventKeys());
  expect(s.a.sampleKeys()).toEqual(s.b.sampleKeys());
}

describe("SyncEngine between two stores", () => {
  it("after a partition in which both sides wrote, both stores hold exactly the same records", async () => {
    const s = stores();
    s.a.seed({ events: 300, samples: 120 });
    s.b.seed({ events: 200, samples: 80 });
    const pair = await linkPair(s);
    appendLive(s.a, 25, "a while partitioned");
    appendLive(s.b, 15, "b while partitioned");
    expect(pair.engines.a.status()).toMatchObject({ connected: false, lagEvents: null });

    pair.up();
    expect(await waitFor(() => inSync(s, { events: 540, samples: 200 }), 5_000)).toBe(true);
    expectIdentical(s);
    expect((await s.a.watermarks())).toEqual({ events: { "a:1": 325, "b:1": 215 }, samples: { "a:1": 120, "b:1": 80 } });
    expect(await s.b.watermarks()).toEqual(await s.a.watermarks());
    // Nothing was sent twice: what a side received is never echoed back.
    expect(s.a.duplicateRecordsIngested + s.b.duplicateRecordsIngested).toBe(0);
    expect(pair.invalidFrames).toEqual([]);
    expect(await waitFor(() => pair.engines.a.status().lagEvents === 0 && pair.engines.b.status().lagEvents === 0, 2_000)).toBe(true);
    const status = pair.engines.a.status();
    expect(status).toMatchObject({ connected: true, peerKnown: true, lagEvents: 0, lagSamples: 0, inFlight: 0, gapRepairs: 0 });
    expect(status.lastAckAt).toBeTypeOf("number");
    expect(status.batchesSent).toBeGreaterThan(0);

    // Live writes once linked, one side at a time (so no ack of the writer's watermarks comes
    // back first): pushed across, and never echoed back.
    appendLive(s.a, 30, "a live");
    expect(await waitFor(() => inSync(s, { events: 570, samples: 200 }), 5_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    appendLive(s.b, 30, "b live");
    s.b.appendSamples([{ series: "load.1m", value: 0.5, wallMs: Date.now() }]);
    expect(await waitFor(() => inSync(s, { events: 600, samples: 201 }), 5_000)).toBe(true);
    expectIdentical(s);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(s.a.duplicateRecordsIngested + s.b.duplicateRecordsIngested).toBe(0);
    expect(pair.engines.a.status().gapRepairs + pair.engines.b.status().gapRepairs).toBe(0);
  });

  it("gives a rebuilt node with an empty store (a new origin) the pair's whole history, its old origin included", async () => {
    const first = stores("a:old", "b:1");
    first.a.seed({ events: 400, samples: 50 });
    first.b.seed({ events: 100 });
    const before = await linkPair(first);
    before.up();
    expect(await waitFor(() => inSync(first, { events: 500, samples: 50 }), 5_000)).toBe(true);
    before.down();
    await before.close();

    // mn-a is reinstalled: a new, empty database with a new origin; mn-b kept everything.
    const rebuilt = { a: new FakeStore("mn-a", "a:new"), b: first.b };
    appendLive(rebuilt.a, 10, "after rebuild");
    const after = await linkPair(rebuilt);
    after.up();
    expect(await waitFor(() => inSync(rebuilt, { events: 510, samples: 50 }), 5_000)).toBe(true);
    expectIdentical(rebuilt);
    expect(await rebuilt.a.watermarks()).toEqual({ events: { "a:old": 400, "b:1": 100, "a:new": 10 }, samples: { "a:old": 50 } });
    expect(rebuilt.a.allEvents().filter((e) => e.origin === "a:old" && e.node === "mn-a")).toHaveLength(400);
  });

  it("announceAgain: a store that lost the peer's records (its file created again) gets them back; without it, nothing comes", async () => {
    const s = stores();
    s.a.seed({ events: 40, samples: 10 });
    s.b.seed({ events: 30, samples: 5 });
    const pair = await linkPair(s);
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 70, samples: 15 }), 5_000)).toBe(true);

    s.a.forgetOrigin("b:1");
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The peer still believes a holds them: no record of b:1 comes by itself.
    expect(s.a.allEvents().filter((e) => e.origin === "b:1")).toHaveLength(0);

    pair.engines.a.announceAgain("test: the store's file was created again");
    expect(await waitFor(() => inSync(s, { events: 70, samples: 15 }), 5_000)).toBe(true);
    expectIdentical(s);
    expect(s.b.duplicateRecordsIngested).toBe(0);
  });

  it("with slow, uneven delivery and acks arriving after the ack timeout: waits, sends nothing twice, watermarks right", async () => {
    const s = stores();
    s.a.seed({ events: 1_500, samples: 600 });
    s.b.seed({ events: 700 });
    let frameNo = 0;
    const pair = await linkPair(s, { ackTimeoutMs: 20, batch: { maxEvents: 100, maxSamples: 100, maxBytes: 16 * 1024 } });
    // Every 5th ack comes after the sender's ack timeout. One direction's frames keep their
    // order (as on a socket): a delay is never shorter than the one before it on that side.
    const lastAt: Record<Side, number> = { a: 0, b: 0 };
    pair.plan = (frame) => {
      frameNo += 1;
      const wanted = frame.type === "sync-ack" && frameNo % 5 === 0 ? 40 : Math.floor(Math.random() * 10);
      const at = Math.max(performance.now() + wanted, lastAt[frame.from]);
      lastAt[frame.from] = at;
      return [Math.max(0, Math.ceil(at - performance.now()))];
    };
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 2_200, samples: 600 }), 10_000)).toBe(true);
    expectIdentical(s);
    const have = { events: { "a:1": 1_500, "b:1": 700 }, samples: { "a:1": 600 } };
    expect(await s.a.watermarks()).toEqual(have);
    expect(await s.b.watermarks()).toEqual(have);
    // A late ack never made a side send a second batch: no protocol error, nothing resent.
    expect(s.a.duplicateRecordsIngested + s.b.duplicateRecordsIngested).toBe(0);
    expect(pair.batchFrames().every((f) => f.unackedBefore === 0)).toBe(true);
    for (const side of ["a", "b"] as const) expect(pair.engines[side].status()).toMatchObject({ protocolErrors: 0, resends: 0 });
    expect(pair.invalidFrames).toEqual([]);
  });

  it("treats a batch delivered twice (a second before the ack) as a protocol error: stores nothing of it and refuses the link", async () => {
    const s = stores();
    s.a.seed({ events: 300 });
    const pair = await linkPair(s, { batch: { maxEvents: 100, maxSamples: 100, maxBytes: 64 * 1024 } });
    let duplicated = false;
    pair.plan = (frame) => {
      if (frame.type === "sync-batch" && !duplicated) {
        duplicated = true;
        return [0, 0];
      }
      return [0];
    };
    pair.up();
    expect(await waitFor(() => pair.engines.b.status().protocolErrors === 1, 2_000)).toBe(true);
    expect(await waitFor(() => pair.frames.some((f) => f.from === "b" && f.type === "refuse"), 1_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The first copy was being stored; the second was not, and the session handles nothing more.
    expect(s.b.ingestCalls).toBe(1);
    expect(s.b.eventCount()).toBe(100 + 1);
    expect(pair.frames.filter((f) => f.from === "b" && f.type === "sync-ack")).toHaveLength(0);
    const recorded = s.b.allEvents().filter((e) => e.type === "sync.protocol-error");
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.message).toMatch(/before batch \d+ was acknowledged/);
  });

  it("loses nothing when the link drops mid-stream, twice, while both sides keep writing", async () => {
    const s = stores();
    s.a.seed({ events: 12_000, samples: 3_000 });
    s.b.seed({ events: 2_000 });
    const pair = await linkPair(s);
    pair.up();
    expect(await waitFor(() => s.b.eventCount() > 4_000, 5_000)).toBe(true);
    pair.down();
    const partial = s.b.eventCount();
    expect(partial).toBeLessThan(14_000);
    appendLive(s.a, 50, "a during outage 1");
    appendLive(s.b, 30, "b during outage 1");
    pair.up();
    expect(await waitFor(() => s.b.eventCount() > partial + 2_000, 5_000)).toBe(true);
    pair.down();
    appendLive(s.b, 20, "b during outage 2");
    await new Promise((resolve) => setTimeout(resolve, 50));
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 14_100, samples: 3_000 }), 10_000)).toBe(true);
    expectIdentical(s);
    expect(await s.a.watermarks()).toEqual({ events: { "a:1": 12_050, "b:1": 2_050 }, samples: { "a:1": 3_000 } });
  });

  it("keeps one batch in flight at most, every frame within the byte budget (a lone oversized record excepted)", async () => {
    const s = stores();
    const bigMessage = "x".repeat(1_900);
    s.a.seed({ events: 1_200, samples: 6_000 }, () => ({ message: bigMessage }));
    s.b.seed({ events: 300, samples: 200 });
    // One record above the budget (but below the frame limit) travels alone.
    s.a.appendEvent({ type: "test.big", message: "big", wallMs: Date.now(), monoMs: 1, fields: { blob: "y".repeat(100_000) } });
    const maxBytes = 32 * 1024;
    const pair = await linkPair(s, { batch: { maxEvents: 2_000, maxSamples: 10_000, maxBytes } });
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 1_501, samples: 6_200 }), 10_000)).toBe(true);
    expectIdentical(s);
    const batches = pair.batchFrames();
    expect(batches.length).toBeGreaterThan(50);
    for (const frame of batches) expect(frame.unackedBefore).toBe(0);
    const oversized = batches.filter((f) => f.bytes > maxBytes);
    expect(oversized).toHaveLength(1);
    expect(oversized[0]?.bytes).toBeGreaterThan(100_000);
    expect(oversized[0]?.bytes).toBeLessThan(MAX_FRAME_BYTES);
    // Batches are filled: most are near the budget, not one record each.
    const full = batches.filter((f) => f.bytes > maxBytes * 0.8).length;
    expect(full).toBeGreaterThan(batches.length / 2);
    // Records left out of a full batch are the next batch's first: no gap had to be repaired.
    expect(pair.engines.a.status().gapRepairs + pair.engines.b.status().gapRepairs).toBe(0);
    expect(s.a.duplicateRecordsIngested + s.b.duplicateRecordsIngested).toBe(0);
  });

  it("syncs a backlog of 50,000 events and 20,000 samples in bounded time", async () => {
    const s = stores();
    s.a.seed({ events: 50_000, samples: 20_000 });
    s.b.seed({ events: 5_000 });
    const pair = await linkPair(s);
    const startedAt = performance.now();
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 55_000, samples: 20_000 }), 15_000)).toBe(true);
    const tookMs = performance.now() - startedAt;
    expect(tookMs).toBeLessThan(15_000);
    expectIdentical(s);
    for (const frame of pair.frames) expect(frame.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(pair.invalidFrames).toEqual([]);
  }, 20_000);

  it("pushes a live event to the peer within a second (default push delay and poll interval)", async () => {
    const s = stores();
    const pair = await linkPair(s, { pushDelayMs: 150, pollIntervalMs: 1_000 });
    pair.up();
    expect(await waitFor(() => pair.engines.a.status().peerKnown && pair.engines.b.status().peerKnown, 2_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sentAt = performance.now();
    s.a.appendEvent({ type: "vip.acquired", message: "mn-a took the VIP", wallMs: Date.now(), monoMs: 1 });
    expect(await waitFor(() => s.b.eventCount() === 1, 2_000)).toBe(true);
    expect(performance.now() - sentAt).toBeLessThan(1_000);
    expect((await s.b.queryEvents({ type: "vip.acquired" }))[0]?.message).toBe("mn-a took the VIP");
  });

  it("resends when the peer's store fails (it says hello again instead of an ack), and retries a failed watermark read", async () => {
    const s = stores();
    s.a.seed({ events: 400 });
    s.b.failIngest = true;
    s.a.failWatermarks = true;
    const pair = await linkPair(s, { ackTimeoutMs: 100, retryDelayMs: 40 });
    pair.up();
    await new Promise((resolve) => setTimeout(resolve, 150));
    // a cannot even say hello yet; b's hello arrived but a sends nothing before its own hello.
    expect(pair.frames.filter((f) => f.from === "a")).toHaveLength(0);
    s.a.failWatermarks = false;
    expect(await waitFor(() => pair.engines.a.status().resends >= 2, 3_000)).toBe(true);
    expect(s.b.eventCount()).toBe(0);
    expect(pair.engines.a.status().lagEvents).toBe(400);
    s.b.failIngest = false;
    expect(await waitFor(() => inSync(s, { events: 400, samples: 0 }), 5_000)).toBe(true);
    expect(await waitFor(() => pair.engines.a.status().lagEvents === 0, 2_000)).toBe(true);
  });

  it("skips a record that can never fit a frame (logged), syncs the rest and reports it as lag without looping", async () => {
    const s = stores();
    s.a.seed({ events: 100 });
    s.a.appendEvent({ type: "test.huge", message: "huge", wallMs: Date.now(), monoMs: 1, fields: { blob: "z".repeat(MAX_FRAME_BYTES) } });
    appendLive(s.a, 20, "after the huge one");
    const lines: string[] = [];
    const logger = pino({ level: "error" }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const pair = await linkPair(s, { logger });
    pair.up();
    expect(await waitFor(() => s.b.eventCount() === 120, 5_000)).toBe(true);
    expect(await waitFor(() => pair.engines.a.status().lagEvents === 1, 2_000)).toBe(true);
    expect(lines.some((l) => l.includes("cannot be sent") && l.includes('"seq":101'))).toBe(true);
    // Caught up: only the idle poll reads the store (every 200 ms here), no busy loop.
    const readsBefore = s.a.readCalls;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(s.a.readCalls - readsBefore).toBeLessThan(12);
    expect(pair.engines.a.status()).toMatchObject({ lagEvents: 1, gapRepairs: 1 });
  });

  it("finds and sends a record a store read missed (a read racing a commit), once caught up", async () => {
    const s = stores();
    s.a.seed({ events: 50 });
    s.a.hideFromNextRead = new Set(["a:1#20"]);
    const pair = await linkPair(s);
    pair.up();
    expect(await waitFor(() => inSync(s, { events: 50, samples: 0 }), 3_000)).toBe(true);
    expectIdentical(s);
    expect(pair.engines.a.status()).toMatchObject({ gapRepairs: 1, lagEvents: 0 });
  });

  it("stop() leaves no timers behind", async () => {
    const timeoutsBefore = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const s = stores();
    s.a.seed({ events: 5_000 });
    const pair = await linkPair(s, { ackTimeoutMs: 5_000, pollIntervalMs: 100 });
    pair.up();
    expect(await waitFor(() => s.b.eventCount() > 0, 2_000)).toBe(true);
    await pair.close();
    await new Promise((resolve) => setImmediate(resolve));
    const timeoutsAfter = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    expect(timeoutsAfter).toBeLessThanOrEqual(timeoutsBefore);
    expect(pair.engines.a.status().connected).toBe(false);
  });
});

describe("SyncEngine as a receiver", () => {
  function receiver(): { engine: SyncEngine; store: FakeStore; sent: LinkMessage[] } {
    const store = new FakeStore("mn-b", "b:1");
    const sent: LinkMessage[] = [];
    const engine = new SyncEngine({ store, send: (m) => (sent.push(m), true), logger: silentLogger(), pollIntervalMs: 60_000 });
    return { engine, store, sent };
  }

  function events(origin: string, from: number, to: number): SyncEvent[] {
    const out: SyncEvent[] = [];
    for (let seq = from; seq <= to; seq++) out.push({ origin, seq, node: "mn-a", wallMs: 1_000 + seq, monoMs: seq, type: "t", service: null, message: `m${seq}`, fields: {} });
    return out;
  }

  it("stores out-of-order and duplicate batches once each, acking its true watermarks after each", async () => {
    const { engine, store, sent } = receiver();
    await engine.start();
    engine.onLinkUp();
    expect(await waitFor(() => sent.some((m) => m.type === "sync-hello"), 1_000)).toBe(true);
    engine.onMessage({ type: "sync-hello", have: { events: {}, samples: {} } });
    // One at a time, each after the previous ack, as the protocol requires.
    const batches = [
      { id: 7, events: events("a:1", 6, 10) },
      { id: 8, events: events("a:1", 1, 5) },
      { id: 7, events: events("a:1", 6, 10) },
      { id: 9, events: events("a:1", 3, 8) },
    ];
    for (const [i, batch] of batches.entries()) {
      engine.onMessage({ type: "sync-batch", id: batch.id, events: batch.events, samples: [] });
      expect(await waitFor(() => sent.filter((m) => m.type === "sync-ack").length === i + 1, 1_000)).toBe(true);
    }
    const acks = sent.filter((m): m is SyncAck => m.type === "sync-ack");
    expect(acks.map((a) => [a.id, a.have.events["a:1"] ?? 0])).toEqual([
      [7, 0],
      [8, 10],
      [7, 10],
      [9, 10],
    ]);
    expect(store.eventCount()).toBe(10);
    expect(store.duplicateRecordsIngested).toBe(5 + 6);
    // What the peer sent, it holds: nothing goes back, so lag is zero.
    expect(engine.status().lagEvents).toBe(0);
    await engine.stop();
  });

  it("refuses a second batch before the ack and keeps no queue: a flood of batches leaves one being stored and the heap flat", async () => {
    const { engine, store, sent } = receiver();
    const gc = exposeGc();
    await engine.start();
    engine.onLinkUp("mn-a");
    engine.onMessage({ type: "sync-hello", have: { events: {}, samples: {} } });
    let release = (): void => undefined;
    store.ingestGate = new Promise((resolve) => (release = resolve));
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    // 200 distinct batches of 1,000 events (about 60 MB if they were kept), as fast as they come.
    for (let id = 1; id <= 200; id++) engine.onMessage({ type: "sync-batch", id, events: events("a:1", (id - 1) * 1_000 + 1, id * 1_000), samples: [] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1_048_576;
    expect(grownMb).toBeLessThan(20);
    expect(engine.status()).toMatchObject({ receiving: 1, batchesReceived: 1, protocolErrors: 1 });
    expect(store.ingestCalls).toBe(1);
    expect(store.ingestSources).toEqual([{ peer: "mn-a" }]);
    const refusals = sent.filter((m) => m.type === "refuse");
    expect(refusals).toEqual([{ type: "refuse", code: "protocol", message: expect.stringMatching(/sync-batch 2 arrived before batch 1 was acknowledged/) }]);
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The broken session acknowledges nothing, and only the first batch reached the store.
    expect(sent.filter((m) => m.type === "sync-ack")).toHaveLength(0);
    expect(store.allEvents().filter((e) => e.origin === "a:1")).toHaveLength(1_000);
    await engine.stop();
  });

  it("closes the link through closeLink when given one, instead of sending a refuse", async () => {
    const store = new FakeStore("mn-b", "b:1");
    const sent: LinkMessage[] = [];
    const closed: string[] = [];
    const engine = new SyncEngine({ store, send: (m) => (sent.push(m), true), closeLink: (reason) => closed.push(reason), logger: silentLogger(), pollIntervalMs: 60_000 });
    await engine.start();
    engine.onLinkUp("mn-a");
    engine.onMessage({ type: "sync-hello", have: { events: {}, samples: {} } });
    engine.onMessage({ type: "sync-batch", id: 1, events: events("a:1", 1, 3), samples: [] });
    engine.onMessage({ type: "sync-batch", id: 2, events: events("a:1", 4, 6), samples: [] });
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatch(/one batch in flight at most/);
    expect(sent.some((m) => m.type === "refuse")).toBe(false);
    await engine.stop();
  });

  it("records refused and conflicting records in rate-limited events: one at once, then one summary per window", async () => {
    const store = new FakeStore("mn-b", "b:1");
    const sent: LinkMessage[] = [];
    const engine = new SyncEngine({ store, send: (m) => (sent.push(m), true), logger: silentLogger(), pollIntervalMs: 60_000, reportWindowMs: 150 });
    const refusing = store.ingest.bind(store);
    store.ingest = async (evs, samples, from) => {
      const report = await refusing(evs, samples, from);
      return { ...report, refusedCount: evs.length, issues: evs.map((e) => ({ kind: "event" as const, origin: e.origin, seq: e.seq, reason: "own-origin" as const, detail: "forged" })) };
    };
    await engine.start();
    engine.onLinkUp("mn-a");
    engine.onMessage({ type: "sync-hello", have: { events: {}, samples: {} } });
    for (let id = 1; id <= 5; id++) {
      engine.onMessage({ type: "sync-batch", id, events: events("a:1", id * 10, id * 10 + 1), samples: [] });
      expect(await waitFor(() => sent.filter((m) => m.type === "sync-ack").length === id, 1_000)).toBe(true);
    }
    const refusedEvents = (): SyncEvent[] => store.allEvents().filter((e) => e.type === "sync.ingest-refused");
    expect(await waitFor(() => refusedEvents().length === 1, 1_000)).toBe(true);
    expect(refusedEvents()[0]?.fields).toMatchObject({ count: 2, peer: "mn-a", reasons: ["own-origin"] });
    expect(await waitFor(() => refusedEvents().length === 2, 2_000)).toBe(true);
    expect(refusedEvents()[1]?.fields).toMatchObject({ count: 8, occurrences: 4, summary: true });
    expect(engine.status().refusedRecords).toBe(10);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(refusedEvents()).toHaveLength(2);
    await engine.stop();
  });

  it("sends nothing before the peer's hello and drops messages outside a link session", async () => {
    const { engine, store, sent } = receiver();
    store.seed({ events: 10 });
    await engine.start();
    engine.onMessage({ type: "sync-batch", id: 1, events: events("a:1", 1, 3), samples: [] });
    engine.onLinkUp();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sent.map((m) => m.type)).toEqual(["sync-hello"]);
    expect(store.eventCount()).toBe(10);
    engine.onMessage({ type: "sync-hello", have: { events: { "b:1": 4 }, samples: {} } });
    expect(await waitFor(() => sent.length === 2, 1_000)).toBe(true);
    const batch = sent[1];
    expect(batch?.type === "sync-batch" && batch.events.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    engine.onLinkDown();
    await engine.stop();
    expect(engine.status()).toMatchObject({ connected: false, inFlight: 0 });
  });
});
