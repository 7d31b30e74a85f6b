import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StoreSet, removeDir, tempDir } from "./helpers.js";

const data = tempDir("kill9");
const stores = new StoreSet();
afterEach(() => stores.stopAll());
afterAll(() => removeDir(data));

const childArgs = (...args: string[]): [string, string[], { env: NodeJS.ProcessEnv; stdio: ["ignore", "pipe", "pipe"] }] => [
  process.execPath,
  ["--import", "tsx", fileURLToPath(new URL("./store-child.ts", import.meta.url)), ...args],
  { env: { ...process.env, TSX_TSCONFIG_PATH: fileURLToPath(new URL("./tsconfig.child.json", import.meta.url)) }, stdio: ["ignore", "pipe", "pipe"] },
];

/** Runs store-child.ts until it has acknowledged at least `atLeast` events, then SIGKILLs it. */
function appendUntilKilled(atLeast: number): Promise<{ origin: string; lastAcked: number; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...childArgs(data));
    let origin = "";
    let lastAcked = 0;
    let buffered = "";
    let stderr = "";
    const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const [word, value] = line.split(" ");
        if (word === "origin") origin = value ?? "";
        if (word === "acked") lastAcked = Math.max(lastAcked, Number(value));
      }
      // Kill in the middle of the stream: more is queued and a commit is likely under way.
      if (lastAcked >= atLeast && child.exitCode === null && !child.killed) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL" || lastAcked < atLeast) reject(new Error(`child ended with ${signal ?? _code} after ${lastAcked} acks: ${stderr.slice(-2_000)}`));
      else resolve({ origin, lastAcked, signal });
    });
  });
}

describe("kill -9", () => {
  it("loses no acknowledged event and leaves a sound database, twice over", async () => {
    const path = join(data, "mnha.db");
    let previousLast = 0;
    for (let round = 1; round <= 2; round++) {
      const { origin, lastAcked } = await appendUntilKilled(previousLast + 20_000);
      expect(origin).toMatch(/^mn1:/);

      const db = new Database(path);
      try {
        expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
        const originId = db.prepare("SELECT id FROM origins WHERE origin = ?").pluck().get(origin) as number;
        const held = db.prepare("SELECT count(*) FROM events WHERE origin_id = ? AND seq <= ?").pluck().get(originId, lastAcked) as number;
        expect(held).toBe(lastAcked);
        const mark = db.prepare("SELECT seq FROM watermarks WHERE origin_id = ? AND kind = 'events'").pluck().get(originId) as number;
        expect(mark).toBeGreaterThanOrEqual(lastAcked);
        // No holes beyond the acks either: what was committed is a prefix.
        const max = db.prepare("SELECT max(seq) FROM events WHERE origin_id = ?").pluck().get(originId) as number;
        expect(db.prepare("SELECT count(*) FROM events WHERE origin_id = ?").pluck().get(originId)).toBe(max);
      } finally {
        db.close();
      }
      previousLast = lastAcked;
    }

    // The store opens on it and numbers on, never reusing a seq.
    const store = await stores.open(data);
    const next = store.appendEvent({ type: "agent.started", message: "after the crashes", wallMs: Date.now(), monoMs: 0 });
    expect(next).toBeGreaterThan(previousLast);
    expect((await store.runJob("integrityCheck")).ok).toBe(true);
  });
});

describe("stop()", () => {
  it("writes the queue and leaves nothing running: the process ends by itself", async () => {
    const dir = tempDir("exit");
    try {
      const child = spawn(...childArgs(dir, "stop", "5000"));
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      clearTimeout(guard);
      expect(code, out).toBe(0);
      expect(out).toMatch(/acked 5000\nstopped\n$/);
      const db = new Database(join(dir, "mnha.db"), { readonly: true });
      expect(db.prepare("SELECT count(*) FROM events").pluck().get()).toBe(5_000);
      expect(db.prepare("SELECT count(*) FROM samples").pluck().get()).toBe(1);
      db.close();
    } finally {
      removeDir(dir);
    }
  });
});
