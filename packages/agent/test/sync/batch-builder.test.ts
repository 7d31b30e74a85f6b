import { MAX_FRAME_BYTES, encode, type SyncEvent, type SyncSample } from "@mnha/protocol";
import { describe, expect, it } from "vitest";
import { buildBatch } from "../../src/sync/batch-builder.js";
import { HeldSeqs } from "../../src/sync/held-seqs.js";

function event(origin: string, seq: number, message = `m${seq}`): SyncEvent {
  return { origin, seq, node: "mn-a", wallMs: 1_000 + seq, monoMs: seq, type: "t", service: null, message, fields: {} };
}

function sample(origin: string, seq: number): SyncSample {
  return { origin, seq, node: "mn-a", wallMs: 1_000 + seq, series: "cpu.load_percent", value: seq / 2 };
}

function nothingHeld(): { events: HeldSeqs; samples: HeldSeqs } {
  return { events: new HeldSeqs(), samples: new HeldSeqs() };
}

describe("HeldSeqs", () => {
  it("merges ranges into the floor and counts what is missing below a watermark", () => {
    const held = HeldSeqs.fromWatermarks({ x: 10 });
    held.addRange("x", 20, 25);
    held.addRange("x", 30, 30);
    expect(held.floor("x")).toBe(10);
    expect(held.holds("x", 10)).toBe(true);
    expect(held.holds("x", 11)).toBe(false);
    expect(held.holds("x", 22)).toBe(true);
    expect(held.missingUpTo("x", 30)).toBe(20 - 6 - 1);
    held.addRecords([11, 12, 19, 18, 13, 14, 15, 16, 17].map((seq) => ({ origin: "x", seq })));
    expect(held.floor("x")).toBe(25);
    expect(held.missingUpTo("x", 30)).toBe(4);
    held.raiseFloor("x", 29);
    expect(held.floor("x")).toBe(30);
    expect(held.missingUpTo("x", 30)).toBe(0);
    expect(held.floors()).toEqual({ x: 30 });
    expect(held.missingUpTo("y", 5)).toBe(5);
  });
});

describe("buildBatch", () => {
  it("fills the byte budget exactly as encoded, and leaves the cursor before the first record left out", () => {
    const events = Array.from({ length: 200 }, (_, i) => event(i % 2 === 0 ? "a" : "b", Math.floor(i / 2) + 1, "x".repeat(200)));
    const samples = [sample("a", 1)];
    const built = buildBatch({ id: 42, read: { events, samples }, cursor: { events: {}, samples: {} }, peerHolds: nothingHeld(), maxBytes: 8 * 1024 });
    expect(built.batch).not.toBeNull();
    const frame = encode(built.batch!);
    expect(Buffer.byteLength(frame)).toBe(built.bytes);
    expect(built.bytes).toBeLessThanOrEqual(8 * 1024);
    expect(built.bytes).toBeGreaterThan(7 * 1024);
    const sent = built.batch!.events;
    const lastA = Math.max(...sent.filter((e) => e.origin === "a").map((e) => e.seq));
    const lastB = Math.max(...sent.filter((e) => e.origin === "b").map((e) => e.seq));
    expect(built.cursor.events).toEqual({ a: lastA, b: lastB });
    // The batch was full before the samples: they wait, and their cursor has not moved.
    expect(built.batch!.samples).toEqual([]);
    expect(built.cursor.samples).toEqual({});
  });

  it("skips records the peer holds, and schema-invalid or frame-sized records (reported)", () => {
    const held = nothingHeld();
    held.events.addRange("a", 2, 3);
    const bad = { ...event("a", 4), type: "" };
    const huge = { ...event("a", 5), fields: { blob: "z".repeat(MAX_FRAME_BYTES) } };
    const built = buildBatch({ id: 1, read: { events: [huge, event("a", 1), event("a", 2), event("a", 3), bad, event("a", 6)], samples: [] }, cursor: { events: {}, samples: {} }, peerHolds: held, maxBytes: 64 * 1024 });
    expect(built.batch?.events.map((e) => e.seq)).toEqual([1, 6]);
    expect(built.unsendable.map((u) => u.seq)).toEqual([5, 4]);
    expect(built.unsendable[0]?.reason).toMatch(/^\d+ bytes encoded, above the 262144-byte frame limit$/);
    expect(built.unsendable[1]?.reason).toMatch(/^type: /);
    expect(built.cursor.events).toEqual({ a: 6 });
  });

  it("sends one record above the budget alone, and returns no batch when everything is held", () => {
    const big = { ...event("a", 1), fields: { blob: "y".repeat(50_000) } };
    const alone = buildBatch({ id: 1, read: { events: [big, event("a", 2)], samples: [] }, cursor: { events: {}, samples: {} }, peerHolds: nothingHeld(), maxBytes: 16 * 1024 });
    expect(alone.batch?.events.map((e) => e.seq)).toEqual([1]);
    expect(alone.bytes).toBeGreaterThan(50_000);
    expect(alone.cursor.events).toEqual({ a: 1 });

    const held = nothingHeld();
    held.events.raiseFloor("a", 10);
    const none = buildBatch({ id: 2, read: { events: [event("a", 9), event("a", 10)], samples: [] }, cursor: { events: { a: 8 }, samples: {} }, peerHolds: held, maxBytes: 16 * 1024 });
    expect(none.batch).toBeNull();
    expect(none.cursor.events).toEqual({ a: 10 });
  });
});

describe("buildBatch and local-only events", () => {
  it("never puts a peer.refusals event in a batch, even when a read returns one", () => {
    const local = { ...event("a:1", 2), type: "peer.refusals.summary" };
    const built = buildBatch({ id: 1, read: { events: [event("a:1", 1), local, event("a:1", 3)], samples: [] }, cursor: { events: {}, samples: {} }, peerHolds: nothingHeld(), maxBytes: 64 * 1024 });
    expect(built.batch?.events.map((e) => e.seq)).toEqual([1, 3]);
    expect(built.unsendable).toEqual([{ kind: "event", origin: "a:1", seq: 2, reason: expect.stringMatching(/local-only/) }]);
  });
});
