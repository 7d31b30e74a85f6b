import { openSync, readSync, statSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ManualClock } from "@mnha/shared";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { DailySummary, StoreAlert } from "../../src/store/sqlite-store.js";
import { StoreSet, durable, peerEvent, removeDir, tempDir, waitFor } from "./helpers.js";

const DAY = 86_400_000;
const MiB = 1_048_576;
const dirs: string[] = [];
const stores = new StoreSet();
function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}
afterEach(() => stores.stopAll());
afterAll(() => dirs.forEach(removeDir));

describe("retention", () => {
  it("deletes records older than maxAgeDays, and nothing else", async () => {
    const clock = new ManualClock(1_000, 1_760_000_000_000);
    const now = clock.wallNow();
    const store = await stores.open(dir("age"), { clock, store: { retention: { maxAgeDays: 7 } } });
    for (let i = 1; i <= 10; i++) store.appendEvent({ type: "check.changed", message: `old ${i}`, wallMs: now - 8 * DAY + i, monoMs: i });
    for (let i = 1; i <= 5; i++) store.appendEvent({ type: "check.changed", message: `new ${i}`, wallMs: now - 6 * DAY + i, monoMs: i });
    store.appendSamples([{ series: "cpu", value: 1, wallMs: now - 30 * DAY }, { series: "cpu", value: 2, wallMs: now }]);
    await durable(store, 15);
    expect(await store.runJob("retention")).toMatchObject({ job: "retention", deletedEvents: 10, deletedSamples: 1 });
    expect((await store.queryEvents({ limit: 100 })).map((e) => e.message)).toEqual(["new 5", "new 4", "new 3", "new 2", "new 1"]);
    expect(await store.summarize({})).toMatchObject([{ count: 1, last: 2 }]);
    // Watermarks never move back: the removed records stay accounted for.
    expect((await store.watermarks()).events[store.origin]).toBe(15);
    clock.advance(2 * DAY);
    expect(await store.runJob("retention")).toMatchObject({ deletedEvents: 5 });
  });

  it("then deletes the oldest records while the data exceeds maxBytes, and gives the space back", async () => {
    const data = dir("size");
    const store = await stores.open(data, { store: { retention: { maxBytes: MiB } } });
    const message = "m".repeat(1_900);
    const start = Date.now() - 60_000;
    for (let i = 1; i <= 3_000; i++) store.appendEvent({ type: "check.changed", message: `${i} ${message}`, wallMs: start + i, monoMs: i });
    await durable(store, 3_000, 10_000);
    const result = await store.runJob("retention");
    expect(result.sizeBytesBefore).toBeGreaterThan(5 * MiB);
    expect(result.deletedEvents).toBeGreaterThan(2_000);
    expect(result.deletedEvents).toBeLessThan(2_800);
    expect(result.sizeBytesAfter).toBeLessThanOrEqual(MiB);
    expect(statSync(join(data, "mnha.db")).size).toBeLessThanOrEqual(MiB);
    expect(store.health().sizeBytes).toBe(result.sizeBytesAfter);
    const kept = await store.queryEvents({ limit: 10_000 });
    expect(kept.length).toBe(3_000 - result.deletedEvents);
    // Oldest first: what is left is the newest, without holes.
    expect(kept[0]?.seq).toBe(3_000);
    expect(kept.at(-1)?.seq).toBe(3_000 - kept.length + 1);
    expect((await store.runJob("integrityCheck")).ok).toBe(true);
  });
});

describe("integrity check", () => {
  it("passes on a sound database", async () => {
    const store = await stores.open(dir("sound"));
    store.appendEvent({ type: "agent.started", message: "x", wallMs: 1, monoMs: 1 });
    await durable(store, 1);
    expect(await store.runJob("integrityCheck")).toMatchObject({ job: "integrityCheck", ok: true, detail: "ok" });
    expect(store.health()).toMatchObject({ ok: true, lastIntegrityCheck: { ok: true, detail: "ok" } });
  });

  it("reports a damaged database: health degraded with the detail, and an alert", async () => {
    const data = dir("damaged");
    const path = join(data, "mnha.db");
    const first = await stores.open(data);
    for (let i = 1; i <= 3_000; i++) first.appendEvent({ type: `check.t${i % 50}`, service: `s${i % 7}`, message: `event ${i}`, wallMs: i, monoMs: i });
    await durable(first, 3_000);
    await stores.stopAll();

    // Scribble over one leaf page of an index, as a failing disk would.
    const raw = new Database(path, { readonly: true });
    const page = raw.prepare("SELECT pageno FROM dbstat WHERE name = 'events_by_node' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 2").pluck().get() as number;
    const pageSize = raw.pragma("page_size", { simple: true }) as number;
    raw.close();
    const fd = openSync(path, "r+");
    const garbage = Buffer.alloc(pageSize - 200, 0xa7);
    writeSync(fd, garbage, 0, garbage.length, (page - 1) * pageSize + 100);
    const check = Buffer.alloc(4);
    readSync(fd, check, 0, 4, (page - 1) * pageSize + 100);
    closeSync(fd);
    expect(check.readUInt32BE(0)).toBe(0xa7a7a7a7);

    const store = await stores.open(data);
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    const result = await store.runJob("integrityCheck");
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/page/i);
    expect(store.health()).toMatchObject({ ok: false, lastIntegrityCheck: { ok: false, detail: result.detail } });
    expect(store.health().reason).toBe(`integrity check failed: ${result.detail}`);
    expect(alerts).toEqual([{ kind: "integrity-failed", detail: result.detail }]);
  });
});

describe("optimize and the daily summary", () => {
  it("optimize checkpoints the WAL to nothing", async () => {
    const data = dir("optimize");
    const store = await stores.open(data);
    for (let i = 1; i <= 200; i++) store.appendEvent({ type: "check.changed", message: `e${i}`, wallMs: i, monoMs: i });
    await durable(store, 200);
    expect(statSync(join(data, "mnha.db-wal")).size).toBeGreaterThan(0);
    expect(await store.runJob("optimize")).toMatchObject({ job: "optimize" });
    expect(statSync(join(data, "mnha.db-wal")).size).toBe(0);
  });

  it("the daily summary counts the last 24 h by type and node, with the failovers, and reaches the listener", async () => {
    const clock = new ManualClock(1_000, 1_760_000_000_000);
    const now = clock.wallNow();
    const store = await stores.open(dir("daily"), { clock });
    const summaries: DailySummary[] = [];
    store.onDailySummary((s) => summaries.push(s));
    store.appendEvent({ type: "check.changed", message: "too old", wallMs: now - 2 * DAY, monoMs: 1 });
    store.appendEvent({ type: "check.changed", message: "a", wallMs: now - 3_600_000, monoMs: 2 });
    store.appendEvent({ type: "check.changed", message: "b", wallMs: now - 3_500_000, monoMs: 3 });
    store.appendEvent({ type: "election.role-changed", message: "claimed", fields: { from: "claiming", to: "holder", reason: "claimed the VIP at epoch 5", epoch: 5 }, wallMs: now - 1_000, monoMs: 4 });
    store.appendSamples([{ series: "cpu", value: 3, wallMs: now - 10 }]);
    await durable(store, 4);
    await store.ingest([peerEvent("mn2:0000000000bb", 1, { wallMs: now - 500, type: "gateway.changed" })], []);
    const summary = await store.runJob("dailySummary");
    expect(summary).toMatchObject({
      job: "dailySummary",
      sinceMs: now - DAY,
      untilMs: now,
      events: 4,
      eventsByType: { "check.changed": 2, "election.role-changed": 1, "gateway.changed": 1 },
      eventsByNode: { mn1: 3, mn2: 1 },
      samples: 1,
      failovers: [{ to: "mn1", epoch: 5, cause: "claimed the VIP at epoch 5" }],
    });
    expect(summary.message).toMatch(/^last 24 h: 4 events \(check\.changed 2, .*\), 1 failover, 1 samples; database [\d.]+ MiB$/);
    expect(summaries).toEqual([summary]);
  });
});

describe("the schedule", () => {
  it("runs the jobs off config.store.schedules, in the worker, until stop()", async () => {
    const store = await stores.open(dir("cron"), { scheduleJobs: true, store: { schedules: { integrityCheck: "* * * * * *" } } });
    await waitFor(() => store.health().lastIntegrityCheck !== null, 3_500, "a scheduled integrity check");
    expect(store.health().lastIntegrityCheck).toMatchObject({ ok: true, detail: "ok" });
    await store.stop();
    const last = store.health().lastIntegrityCheck;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(store.health().lastIntegrityCheck).toBe(last);
  });
});
