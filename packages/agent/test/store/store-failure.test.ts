import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { silentLogger } from "@mnha/shared";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SyncEvent } from "../../src/contracts.js";
import { SqliteStore, type StoreAlert } from "../../src/store/sqlite-store.js";
import { moveDamagedAside } from "../../src/store/store-db.js";
import { StoreSet, durable, removeDir, storeConfig, tempDir, waitFor } from "./helpers.js";

const dirs: string[] = [];
const stores = new StoreSet();
const FAST_RETRY = { initialMs: 40, maxMs: 150 };
function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}
afterEach(() => stores.stopAll());
afterAll(() => dirs.forEach(removeDir));

function append(store: SqliteStore, count: number, label: string): number {
  let seq = 0;
  for (let i = 0; i < count; i++) seq = store.appendEvent({ type: "check.changed", message: `${label} ${i}`, wallMs: Date.now(), monoMs: i });
  return seq;
}

/** Every seq 1..last is held, either as a record or under a gap marker; returns how many are under markers. */
async function coveredUpTo(store: SqliteStore, last: number): Promise<number> {
  const events = await store.queryEvents({ node: "mn1", limit: 10_000 });
  const held = new Set<number>();
  let underMarkers = 0;
  for (const e of events as SyncEvent[]) {
    if (e.type === "store.gap") {
      const from = e.fields["fromSeq"] as number;
      for (let s = from; s <= e.seq; s++) held.add(s);
      underMarkers += e.seq - from + 1;
    } else held.add(e.seq);
  }
  for (let s = 1; s <= last; s++) if (!held.has(s)) throw new Error(`seq ${s} is neither stored nor under a gap marker`);
  return underMarkers;
}

describe("a full disk", () => {
  const mountPoint = tempDir("tmpfs");
  const filler = join(mountPoint, "filler");

  beforeAll(() => {
    // A small file system of our own, filled up for real (root ignores permissions, not ENOSPC).
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", mountPoint]);
  });
  afterAll(async () => {
    await stores.stopAll();
    execFileSync("umount", [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  function fillUp(): void {
    const fd = openSync(filler, "w");
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (let i = 0; i < 1_000; i++) writeSync(fd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
    } finally {
      closeSync(fd);
    }
    // The last few bytes too.
    try {
      for (let i = 0; i < 1_000; i++) writeFileSync(join(mountPoint, `crumb-${i}`), Buffer.alloc(512, 1));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
    }
  }

  function freeUp(): void {
    for (const name of execFileSync("ls", [mountPoint], { encoding: "utf8" }).split("\n")) {
      if (name.startsWith("filler") || name.startsWith("crumb-")) unlinkSync(join(mountPoint, name));
    }
  }

  it("keeps accepting appends, reports why, drops the oldest beyond queueLimit, and writes the rest once space is back", async () => {
    const data = join(mountPoint, "data");
    mkdirSync(data);
    const store = await stores.open(data, { retry: FAST_RETRY, store: { queueLimit: 1_000 } });
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    await durable(store, append(store, 10, "before"));
    await store.runJob("optimize"); // the WAL starts empty: the next commit must grow it
    fillUp();

    const firstQueued = append(store, 5, "while full");
    expect(firstQueued).toBe(15);
    await waitFor(() => !store.health().ok, 5_000, "the store to notice the full disk");
    expect(store.health().reason).toMatch(/SQLITE_FULL|full/);
    expect(store.storedUpTo()).toBe(10);

    // Appends never throw and never block; beyond queueLimit the oldest give way.
    const started = performance.now();
    const last = append(store, 1_500, "overflow");
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(last).toBe(1_515);
    const health = store.health();
    expect(health.ok).toBe(false);
    expect(health.pending).toBeLessThanOrEqual(1_000);
    expect(health.dropped).toBeGreaterThanOrEqual(505);
    expect(alerts.map((a) => a.kind)).toEqual(["degraded", "dropping"]);

    freeUp();
    await durable(store, last, 8_000);
    expect(store.health()).toMatchObject({ ok: true, reason: null, pending: 0 });
    expect(alerts.map((a) => a.kind)).toEqual(["degraded", "dropping", "recovered"]);
    expect(await coveredUpTo(store, last)).toBe(store.health().dropped);
    expect((await store.watermarks()).events[store.origin]).toBe(last);
    const [marker] = await store.queryEvents({ type: "store.gap" });
    expect(marker?.fields).toMatchObject({ cause: "queue-overflow" });
    expect(marker?.message).toMatch(/dropped: the store could not write \(.*\) and its queue overflowed/);
    expect((await store.runJob("integrityCheck")).ok).toBe(true);
  });
});

describe("a read-only file system", () => {
  // A read-only bind mount of the data dir (a file system cannot be remounted read-only while
  // the store holds its file open for writing, and root ignores file permissions).
  const base = tempDir("rw");
  const view = tempDir("ro");
  let mounted = false;
  afterAll(async () => {
    await stores.stopAll();
    if (mounted) execFileSync("umount", [view]);
    rmSync(view, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  });

  it("queues while the file system is read-only and writes the queue once it is writable again", async () => {
    const before = await stores.open(base);
    await durable(before, append(before, 5, "before"));
    await stores.stopAll();
    execFileSync("mount", ["--bind", base, view]);
    mounted = true;
    execFileSync("mount", ["-o", "remount,bind,ro", view]);

    const store = await stores.open(view, { retry: FAST_RETRY });
    const last = append(store, 50, "read-only");
    await waitFor(() => !store.health().ok, 5_000, "the store to notice the read-only file system");
    expect(store.health().reason).toMatch(/read-only|readonly|CANTOPEN/i);
    expect(store.health().pending).toBe(50);

    execFileSync("mount", ["-o", "remount,bind,rw", view]);
    await durable(store, last, 8_000);
    expect(store.health()).toMatchObject({ ok: true, pending: 0, dropped: 0 });
    const events = await store.queryEvents({ limit: 100 });
    expect(events.filter((e) => e.message.startsWith("read-only")).map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => last - i));
    expect(events.filter((e) => e.message.startsWith("before"))).toHaveLength(5);
  });
});

describe("other failures", () => {
  it("a crashed worker is replaced and the queue written", async () => {
    const store = await stores.open(dir("crash"), { retry: FAST_RETRY });
    await durable(store, append(store, 3, "before"));
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    await (store as unknown as { worker: Worker }).worker.terminate();
    expect(store.health().ok).toBe(false);
    const last = append(store, 20, "after");
    await durable(store, last);
    expect(store.health().ok).toBe(true);
    expect(alerts.map((a) => a.kind)).toEqual(["degraded", "recovered"]);
    expect(await coveredUpTo(store, last)).toBe(0);
  });

  it("a store that started without its database adopts its origin once the file can be opened", async () => {
    const data = dir("late");
    // store.path outside the data dir: a damaged file there is left where it is (see below).
    const path = join(dir("late-elsewhere"), "mnha.db");
    writeFileSync(path, Buffer.alloc(4096, 0x33));
    const store = await stores.open(data, { retry: FAST_RETRY, store: { path } });
    expect(store.health().ok).toBe(false);
    const origin = store.origin;
    const last = append(store, 4, "early");
    // The operator moves the damaged file away.
    unlinkSync(path);
    await durable(store, last);
    expect(store.health().ok).toBe(true);
    expect((await store.queryEvents({})).map((e) => [e.origin, e.seq])).toEqual([
      [origin, 4],
      [origin, 3],
      [origin, 2],
      [origin, 1],
    ]);
    await stores.stopAll();
    const reopened = await stores.open(data, { store: { path } });
    expect(reopened.origin).toBe(origin);
    expect(reopened.appendEvent({ type: "agent.started", message: "next", wallMs: 1, monoMs: 1 })).toBe(5);
  });

  it("a damaged database in the data dir (not a database) is moved aside at start, kept as it was, and a new one is created; the alert names both", async () => {
    const data = dir("damaged");
    const path = join(data, "mnha.db");
    const garbage = Buffer.alloc(8192, 0x5a);
    writeFileSync(path, garbage);
    const store = new SqliteStore({ config: storeConfig(data), node: "mn1", logger: silentLogger(), scheduleJobs: false, flushIntervalMs: 5, retry: FAST_RETRY });
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    await store.start();
    try {
      expect(store.health().ok).toBe(true);
      expect(alerts.map((a) => a.kind)).toEqual(["moved-aside"]);
      const moved = alerts[0] as Extract<StoreAlert, { kind: "moved-aside" }>;
      expect(moved.path).toBe(path);
      expect(moved.reason).toMatch(/^SQLITE_NOTADB: /);
      // (SQLite itself deletes a WAL beside a file that is not a database when it gives up on it.)
      expect(moved.files).toHaveLength(1);
      expect(moved.files[0]).toMatch(new RegExp(`^${path.replace(/[.]/g, "\\.")}\\.damaged-\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z$`));
      expect(readFileSync(moved.files[0] as string).equals(garbage)).toBe(true);
      await durable(store, store.appendEvent({ type: "agent.started", message: "into the new file", wallMs: Date.now(), monoMs: 1 }));
      expect((await store.queryEvents({})).map((e) => e.message)).toEqual(["into the new file"]);
    } finally {
      await store.stop();
    }
  });

  it("a garbage file put in place of the open database by hand: noticed at the next write, moved aside at the reopen, and a new database takes the writes", async () => {
    const data = dir("damaged-live");
    const path = join(data, "mnha.db");
    const store = await stores.open(data, { retry: FAST_RETRY });
    await durable(store, append(store, 3, "before"));
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    const garbage = join(data, "garbage");
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    renameSync(garbage, path);
    await durable(store, append(store, 2, "after"));
    expect(alerts.map((a) => a.kind)).toEqual(["degraded", "moved-aside", "recovered"]);
    const moved = alerts[1] as Extract<StoreAlert, { kind: "moved-aside" }>;
    expect(moved.reason).toMatch(/^SQLITE_NOTADB: /);
    expect(readFileSync(moved.files[0] as string).equals(Buffer.alloc(8192, 0x5a))).toBe(true);
    expect(store.health().ok).toBe(true);
    // The records before went with the old file (the peer holds copies); the new file has the rest.
    expect((await store.queryEvents({})).map((e) => e.seq)).toEqual([5, 4]);
  });

  it("moving a damaged database aside takes its WAL and shared-memory files along, or nothing at all", () => {
    const data = dir("aside");
    const path = join(data, "mnha.db");
    const at = new Date("2026-12-04T03:00:00.123Z");
    const target = `${path}.damaged-2026-12-04T03-00-00-123Z`;
    for (const suffix of ["", "-wal", "-shm"]) writeFileSync(`${path}${suffix}`, `content${suffix}`);
    expect(moveDamagedAside(path, at)).toEqual([target, `${target}-wal`, `${target}-shm`]);
    expect(readdirSync(data).sort()).toEqual([target, `${target}-shm`, `${target}-wal`].map((f) => f.slice(data.length + 1)).sort());
    expect(readFileSync(`${target}-wal`, "utf8")).toBe("content-wal");

    // The WAL cannot follow (something is in the way): the database is put back, nothing moved.
    const other = join(dir("aside-blocked"), "mnha.db");
    const blocked = `${other}.damaged-2026-12-04T03-00-00-123Z`;
    for (const suffix of ["", "-wal"]) writeFileSync(`${other}${suffix}`, `content${suffix}`);
    mkdirSync(`${blocked}-wal`);
    writeFileSync(join(`${blocked}-wal`, "in-the-way"), "x");
    expect(() => moveDamagedAside(other, at)).toThrow(/cannot move .*mnha\.db-wal aside with its damaged database/);
    expect(readFileSync(other, "utf8")).toBe("content");
    expect(readFileSync(`${other}-wal`, "utf8")).toBe("content-wal");
    expect(existsSync(blocked)).toBe(false);
  });

  it("a damaged database outside the data dir (store.path) is never moved: the store is degraded, says why and how to fix it, and the file is untouched", async () => {
    const data = dir("damaged-elsewhere");
    const path = join(dir("not-ours"), "important.file");
    writeFileSync(path, "someone else's file\n");
    const store = await stores.open(data, { retry: FAST_RETRY, store: { path } });
    expect(store.health()).toMatchObject({ ok: false, reason: expect.stringMatching(/^SQLITE_NOTADB: /) as unknown });
    expect(readFileSync(path, "utf8")).toBe("someone else's file\n");
    expect(readdirSync(dirname(path))).toEqual(["important.file"]);
  });

  it("a database file removed by hand is created again under the same origin; nothing written after it is lost", async () => {
    const data = dir("removed");
    const path = join(data, "mnha.db");
    const store = await stores.open(data, { retry: FAST_RETRY });
    const origin = store.origin;
    await durable(store, append(store, 3, "before"));
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
    const last = append(store, 5, "after");
    await durable(store, last);
    expect(existsSync(path)).toBe(true);
    expect(alerts.map((a) => a.kind)).toEqual(["degraded", "recovered"]);
    expect(alerts[0]).toMatchObject({ reason: expect.stringContaining(`${path} was removed or renamed while the store had it open`) as unknown });
    await stores.stopAll();
    const reopened = await stores.open(data);
    expect(reopened.origin).toBe(origin);
    // 1-3 went with the removed file (the peer holds copies and sends them back); 4-8 are on disk.
    expect((await reopened.queryEvents({})).map((e) => e.seq)).toEqual([8, 7, 6, 5, 4]);
  });

  it("a database file renamed away by hand stays as it was; the store writes a new one at its path", async () => {
    const data = dir("renamed");
    const path = join(data, "mnha.db");
    const store = await stores.open(data, { retry: FAST_RETRY });
    await durable(store, append(store, 3, "before"));
    renameSync(path, `${path}.moved`);
    await durable(store, append(store, 2, "after"));
    expect(existsSync(path)).toBe(true);
    await stores.stopAll();
    expect((await (await stores.open(data)).queryEvents({})).map((e) => e.seq)).toEqual([5, 4]);
    const elsewhere = dir("renamed-copy");
    renameSync(`${path}.moved`, join(elsewhere, "mnha.db"));
    expect((await (await stores.open(elsewhere)).queryEvents({})).map((e) => e.seq)).toEqual([3, 2, 1]);
  });

  it("a database file replaced by hand with a copy of itself: the store writes into the file now at the path", async () => {
    const data = dir("replaced");
    const path = join(data, "mnha.db");
    const store = await stores.open(data, { retry: FAST_RETRY });
    const origin = store.origin;
    await durable(store, append(store, 3, "before"));
    // The operator puts a copy in its place (a restore from a file copy): another inode, the same records.
    const snapshot = join(dir("replaced-copy"), "snapshot.db");
    const reader = new Database(path, { readonly: true });
    reader.prepare("VACUUM INTO ?").run(snapshot);
    reader.close();
    renameSync(snapshot, path);
    const alerts: StoreAlert[] = [];
    store.onAlert((a) => alerts.push(a));
    await durable(store, append(store, 2, "after"));
    expect(alerts[0]).toMatchObject({ kind: "degraded", reason: expect.stringContaining(`${path} was replaced while the store had it open`) as unknown });
    await stores.stopAll();
    const reopened = await stores.open(data);
    expect(reopened.origin).toBe(origin);
    expect((await reopened.queryEvents({})).map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
  });

  it("stop() writes what is queued before it closes", async () => {
    const data = dir("stop");
    const store = await stores.open(data, { flushIntervalMs: 1_000 });
    const last = append(store, 50, "queued");
    expect(store.storedUpTo()).toBe(0);
    await store.stop();
    const reopened = await stores.open(data);
    expect(reopened.storedUpTo()).toBe(last);
  });
});
