/**
 * What SQLite's page cache adds to a process's resident memory once it has read a large
 * store: the agent's store (StoreDatabase, whose cache is bounded) against a plain
 * better-sqlite3 connection at that library's default cache (16 MB). Each side runs in a
 * fresh child process that opens the same file, reads its RSS, runs the store's integrity
 * check (PRAGMA quick_check, which the agent schedules every 6 hours and which reads every
 * page), and reads its RSS again. Prints a Markdown table.
 *
 *   pnpm run build                       # the store imports @mnha/shared from its dist
 *   node --import tsx bench/store-page-cache.ts [--samples 400000] [--dir /path]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { StoreDatabase } from "../packages/agent/src/store/store-db.js";

const SELF = fileURLToPath(import.meta.url);
const BATCH = 10_000;
/** The little of better-sqlite3 used here: it is the agent package's dependency, not the root's. */
type PlainConnection = { pragma(source: string, options?: { simple: boolean }): unknown; close(): void };
const Database = createRequire(new URL("../packages/agent/package.json", import.meta.url))("better-sqlite3") as new (path: string) => PlainConnection;

const rssMib = (): number => process.memoryUsage().rss / 1_048_576;

/** In the child: open the file one way, check it, report RSS before and after and the cache size. */
function measure(mode: "store" | "library-default", path: string): void {
  let cacheSize: number;
  let check: () => void;
  let close: () => void;
  if (mode === "store") {
    const { store } = StoreDatabase.open(path, "mn1");
    cacheSize = store.settings().cacheSize;
    check = () => void store.integrityCheck();
    close = () => store.close();
  } else {
    const db = new Database(path);
    cacheSize = Number(db.pragma("cache_size", { simple: true }));
    check = () => void db.pragma("quick_check(20)");
    close = () => db.close();
  }
  const before = rssMib();
  check();
  const after = rssMib();
  close();
  process.stdout.write(JSON.stringify({ cacheSize, before, after }));
}

function fill(path: string, samples: number): void {
  const { store, opened } = StoreDatabase.open(path, "mn1");
  const origin = opened.origin;
  const series = ["cpu.percent", "mem.used", "load.1", "disk.used", "net.rx", "net.tx", "check.mn.latency", "check.ui.latency"];
  for (let start = 0; start < samples; start += BATCH) {
    const rows = [];
    for (let i = start; i < Math.min(samples, start + BATCH); i++) {
      rows.push({ origin, seq: i + 1, node: "mn1", wallMs: 1_700_000_000_000 + i * 10_000, series: series[i % series.length]!, value: Math.random() * 100, fromSeq: null });
    }
    store.write([], rows);
  }
  store.optimize();
  store.close();
}

function main(argv: string[]): void {
  if (argv[0] === "--child") return measure(argv[1] as "store" | "library-default", argv[2]!);
  let samples = 400_000;
  let dir = tmpdir();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--samples") samples = Number(argv[++i]);
    else if (argv[i] === "--dir") dir = argv[++i] ?? dir;
    else throw new Error(`unknown flag ${argv[i]} (see the usage at the top of bench/store-page-cache.ts)`);
  }
  if (!Number.isInteger(samples) || samples <= 0) throw new Error("--samples needs a positive integer");
  const root = mkdtempSync(join(dir, "mnha-page-cache-"));
  try {
    const path = join(root, "mnha.db");
    fill(path, samples);
    const sizeMib = statSync(path).size / 1_048_576;
    const rows = (["store", "library-default"] as const).map((mode) => {
      const out = execFileSync(process.execPath, [...process.execArgv, SELF, "--child", mode, path], { encoding: "utf8" });
      const r = JSON.parse(out) as { cacheSize: number; before: number; after: number };
      const label = mode === "store" ? "the agent's store (StoreDatabase)" : "better-sqlite3 at its default";
      return `| ${label} | ${r.cacheSize} | ${r.before.toFixed(1)} MiB | ${r.after.toFixed(1)} MiB | +${(r.after - r.before).toFixed(1)} MiB |`;
    });
    console.log(`### SQLite's page cache after a quick_check of a ${sizeMib.toFixed(1)} MiB store (${samples.toLocaleString("en-US")} samples; ${new Date().toISOString().slice(0, 10)})\n`);
    console.log("| connection | cache_size (negative: KiB) | RSS after open | RSS after quick_check | added |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const row of rows) console.log(row);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main(process.argv.slice(2));
