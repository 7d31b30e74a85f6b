import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MnhaError } from "@mnha/shared";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/store/schema.js";
import { StoreDatabase } from "../../src/store/store-db.js";
import { StoreSet, durable, removeDir, tempDir } from "./helpers.js";

const dirs: string[] = [];
const stores = new StoreSet();
function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}
afterEach(() => stores.stopAll());
afterAll(() => dirs.forEach(removeDir));

describe("opening the store", () => {
  it("creates a fresh database in the data dir: WAL, synchronous=FULL, incremental auto-vacuum, a bounded page cache, current schema", async () => {
    const data = dir("fresh");
    const store = await stores.open(data);
    expect(store.origin).toMatch(/^mn1:[0-9a-f]{12}$/);
    expect(store.databasePath).toBe(join(data, "mnha.db"));
    expect(store.health()).toMatchObject({ ok: true, reason: null, pending: 0, dropped: 0 });
    await stores.stopAll();

    const { store: db, opened } = StoreDatabase.open(join(data, "mnha.db"), "mn1");
    try {
      expect(opened).toMatchObject({ origin: store.origin, created: false, schemaVersion: SCHEMA_VERSION, lastEventSeq: 0 });
      // 2 = FULL (each commit syncs the WAL), 2 = INCREMENTAL; the page cache bounded at 2 MiB
      // (negative: KiB), not better-sqlite3's 16 MB, which an agent's RSS would grow into.
      expect(db.settings()).toEqual({ journalMode: "wal", synchronous: 2, autoVacuum: 2, cacheSize: -2048, schemaVersion: SCHEMA_VERSION });
    } finally {
      db.close();
    }
  });

  it("keeps its origin and its records across a reopen, and numbers on from the last seq", async () => {
    const data = dir("reopen");
    const first = await stores.open(data);
    const origin = first.origin;
    for (let i = 0; i < 5; i++) first.appendEvent({ type: "agent.started", message: `start ${i}`, wallMs: 1_000 + i, monoMs: i });
    await durable(first, 5);
    await stores.stopAll();

    const second = await stores.open(data);
    expect(second.origin).toBe(origin);
    expect(second.storedUpTo()).toBe(5);
    expect(second.appendEvent({ type: "agent.started", message: "again", wallMs: 2_000, monoMs: 0 })).toBe(6);
    await durable(second, 6);
    const events = await second.queryEvents({});
    expect(events.map((e) => e.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(events.every((e) => e.origin === origin)).toBe(true);
    expect(await second.watermarks()).toEqual({ events: { [origin]: 6 }, samples: {} });
  });

  it("gives a rebuilt (empty) store a new origin, so its seqs never collide with its old records", async () => {
    const a = await stores.open(dir("rebuilt-a"));
    const b = await stores.open(dir("rebuilt-b"));
    expect(a.origin).not.toBe(b.origin);
  });

  it("refuses a database written by a newer mnha, with a clear error and a hint", async () => {
    const data = dir("newer");
    const path = join(data, "mnha.db");
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const error = await stores.open(data).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MnhaError);
    expect((error as MnhaError).message).toBe(`database ${path} was written by a newer mnha (schema ${SCHEMA_VERSION + 1} > ${SCHEMA_VERSION}); upgrade mnha or move the file away`);
    expect((error as MnhaError).hint).toMatch(/move the file away/);
    // The file was not touched.
    const check = new Database(path, { readonly: true });
    expect(check.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION + 1);
    check.close();
  });

  it("starts degraded (never throws) when the file is not a database, and keeps accepting appends", async () => {
    const data = dir("garbage");
    // Outside the data dir, so that it is not moved aside (store-failure.test.ts: damaged databases).
    const path = join(dir("garbage-elsewhere"), "mnha.db");
    writeFileSync(path, Buffer.alloc(8192, 0x5a));
    const store = await stores.open(data, { retry: { initialMs: 50, maxMs: 100 }, store: { path } });
    expect(store.health().ok).toBe(false);
    expect(store.health().reason).toMatch(/not a database/);
    expect(store.origin).toMatch(/^mn1:/);
    expect(store.appendEvent({ type: "agent.started", message: "degraded", wallMs: 1, monoMs: 1 })).toBe(1);
    expect(store.health().pending).toBe(1);
    await expect(store.queryEvents({})).rejects.toBeInstanceOf(MnhaError);
  });

  it("keeps appended events within the sync protocol's limits", async () => {
    const store = await stores.open(dir("limits"));
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    store.appendEvent({ type: "t".repeat(100), message: "m".repeat(3_000), fields: { ["k".repeat(80)]: 1 }, wallMs: 1.7, monoMs: -5 });
    store.appendEvent({ type: "", message: "cyclic", fields: cyclic, wallMs: 2, monoMs: 1 });
    store.appendEvent({ type: "check.changed", message: "service from fields", fields: { service: "db", big: "x".repeat(40_000) }, wallMs: 3, monoMs: 1 });
    await durable(store, 3);
    const [third, second, first] = await store.queryEvents({});
    const { SyncEventSchema } = await import("@mnha/protocol");
    for (const e of [first, second, third]) expect(SyncEventSchema.safeParse(e).success).toBe(true);
    expect(first).toMatchObject({ type: "t".repeat(64), wallMs: 2, monoMs: 0, fields: { ["k".repeat(64)]: 1 } });
    expect(first?.message).toHaveLength(2_000);
    expect(second).toMatchObject({ type: "unknown", fields: { unserializable: expect.stringMatching(/circular/i) } });
    expect(third).toMatchObject({ service: "db", fields: { truncated: true } });
  });

  it("numbers appends made before start() once it has read the database", async () => {
    const data = dir("early");
    const first = await stores.open(data);
    first.appendEvent({ type: "agent.started", message: "one", wallMs: 1, monoMs: 1 });
    await durable(first, 1);
    await stores.stopAll();

    const { SqliteStore } = await import("../../src/store/sqlite-store.js");
    const { silentLogger } = await import("@mnha/shared");
    const { storeConfig } = await import("./helpers.js");
    const early = new SqliteStore({ config: storeConfig(data), node: "mn1", logger: silentLogger(), scheduleJobs: false });
    expect(early.appendEvent({ type: "config.loaded", message: "before start", wallMs: 2, monoMs: 2 })).toBe(0);
    await early.start();
    try {
      await durable(early, 2);
      const [latest] = await early.queryEvents({ limit: 1 });
      expect(latest).toMatchObject({ seq: 2, type: "config.loaded", message: "before start" });
    } finally {
      await early.stop();
    }
  });
});
