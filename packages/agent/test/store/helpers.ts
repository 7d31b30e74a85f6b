import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, silentLogger, type Clock, type MnhaConfig } from "@mnha/shared";
import type { SyncEvent, SyncSample } from "../../src/contracts.js";
import { SqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite-store.js";

/** A config for node `node` whose data dir is `dataDir`; `store` overrides config.store. */
export function storeConfig(dataDir: string, store: Record<string, unknown> = {}, node = "mn1"): MnhaConfig {
  const peer = node === "mn1" ? "mn2" : "mn1";
  return parseConfig({
    node: { name: node, address: node === "mn1" ? "10.0.0.11" : "10.0.0.12" },
    peers: [{ name: peer, address: node === "mn1" ? "10.0.0.12" : "10.0.0.11" }],
    vip: { address: "10.0.0.10", interface: "eth0" },
    gateway: { address: "10.0.0.1" },
    auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
    services: [],
    dataDir,
    store,
  });
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `mnha-store-${name}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Stores started by a test, stopped by `stopAll` in afterEach. */
export class StoreSet {
  private readonly stores: SqliteStore[] = [];

  async open(dataDir: string, options: Partial<SqliteStoreOptions> & { store?: Record<string, unknown>; node?: string; clock?: Clock } = {}): Promise<SqliteStore> {
    const node = options.node ?? "mn1";
    const store = new SqliteStore({ config: storeConfig(dataDir, options.store ?? {}, node), node, logger: silentLogger(), scheduleJobs: false, flushIntervalMs: 5, ...options });
    this.stores.push(store);
    await store.start();
    return store;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.stores.splice(0).map((s) => s.stop()));
  }
}

/** Resolves once every own event appended so far is durable. */
export function durable(store: SqliteStore, seq: number, timeoutMs = 5_000): Promise<void> {
  if (store.storedUpTo() >= seq) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`seq ${seq} not durable within ${timeoutMs} ms (stored up to ${store.storedUpTo()}, health ${JSON.stringify(store.health())})`)), timeoutMs);
    store.onStored((upTo) => {
      if (upTo >= seq) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let peerSeq = 0;
/** An event as the peer's store would send it. */
export function peerEvent(origin: string, seq: number, over: Partial<SyncEvent> = {}): SyncEvent {
  peerSeq += 1;
  return { origin, seq, node: "mn2", wallMs: 1_700_000_000_000 + seq, monoMs: seq, type: "check.changed", service: null, message: `peer event ${seq}`, fields: { n: peerSeq }, ...over };
}

export function peerSample(origin: string, seq: number, over: Partial<SyncSample> = {}): SyncSample {
  return { origin, seq, node: "mn2", wallMs: 1_700_000_000_000 + seq, series: "cpu", value: seq, ...over };
}
