/**
 * What the benchmark and fault-suite reports share: statistics, the machine they ran on,
 * Markdown tables, CSV files, and where results go (bench/results/).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, release } from "node:os";
import { resolve } from "node:path";
import { MnhaError } from "@mnha/shared";
import { REPO_ROOT } from "./constants.js";

export const RESULTS_DIR = resolve(REPO_ROOT, "bench/results");

/** The p-th percentile (0..100) by the nearest-rank method; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export interface Summary {
  n: number;
  median: number;
  p90: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return { n: values.length, median: median(values), p90: percentile(values, 90), max: values.length > 0 ? Math.max(...values) : Number.NaN };
}

/** Milliseconds for a table: whole numbers, "–" for none. */
export function ms(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : String(Math.round(value));
}

export interface MachineDescription {
  date: string;
  nproc: number;
  cpuModel: string;
  kernel: string;
  keepalived: string;
  node: string;
  loadAverage: string;
  /** The commit checked out, and whether packages/ had uncommitted changes. */
  commit: string;
  /** When the agent the lab runs (packages/agent/dist) was last built. */
  agentBuilt: string;
}

function firstLineOf(file: string, args: string[]): string {
  // keepalived prints its version on stderr.
  const result = spawnSync(file, args, { encoding: "utf8", timeout: 5_000 });
  if (result.error) return "";
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n")[0] ?? "";
}

/** `git rev-parse` (read only), plus a note when packages/ has uncommitted changes. */
function describeCommit(): string {
  const head = spawnSync("git", ["-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8", timeout: 5_000 });
  if (head.status !== 0) return "unknown";
  const dirty = spawnSync("git", ["-C", REPO_ROOT, "status", "--porcelain", "--", "packages"], { encoding: "utf8", timeout: 5_000 });
  return `${head.stdout.trim()}${dirty.stdout.trim().length > 0 ? " (with uncommitted changes in packages/)" : ""}`;
}

/** The newest file of the built agent: the lab's agents run what was built then. */
function agentBuildTime(): string {
  const dir = resolve(REPO_ROOT, "packages/agent/dist");
  let newest = 0;
  const walk = (path: string, depth: number) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = resolve(path, entry.name);
      if (entry.isDirectory() && depth < 4) walk(full, depth + 1);
      else if (entry.isFile() && entry.name.endsWith(".js")) newest = Math.max(newest, statSync(full).mtimeMs);
    }
  };
  try {
    walk(dir, 0);
  } catch {
    return "not built";
  }
  return newest > 0 ? new Date(newest).toISOString() : "not built";
}

export function describeMachine(): MachineDescription {
  let cpuModel = "unknown";
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  } catch {
    // not Linux: keep "unknown"
  }
  const keepalived = firstLineOf("/usr/sbin/keepalived", ["--version"]) || "not installed";
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpuModel,
    kernel: release(),
    keepalived,
    node: process.version,
    loadAverage: loadavg().map((l) => l.toFixed(2)).join(" "),
    commit: describeCommit(),
    agentBuilt: agentBuildTime(),
  };
}

export function machineLines(machine: MachineDescription): string[] {
  return [
    `- date: ${machine.date}`,
    `- machine: ${machine.nproc} CPUs (nproc), ${machine.cpuModel}; kernel ${machine.kernel}`,
    `- ${machine.keepalived}; Node ${machine.node}`,
    `- load average at the start: ${machine.loadAverage}`,
    `- mnha: commit ${machine.commit}; agent built ${machine.agentBuilt}`,
  ];
}

/** A Markdown table from a header and rows of cells. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)];
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? "" : typeof value === "number" ? (Number.isFinite(value) ? String(Math.round(value * 10) / 10) : "") : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header.map(csvCell).join(","), ...rows.map((row) => row.map(csvCell).join(","))].join("\n") + "\n";
}

/** YYYY-MM-DD of today (UTC), for result file names. */
export function dateStamp(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Writes bench/results/<base>.md and .csv; returns their paths. */
export function writeResults(base: string, markdown: string, csvText: string): { md: string; csv: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const md = resolve(RESULTS_DIR, `${base}.md`);
  const csvFile = resolve(RESULTS_DIR, `${base}.csv`);
  writeFileSync(md, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
  writeFileSync(csvFile, csvText);
  return { md, csv: csvFile };
}

/** Writes bench/results/<base>.csv alone; returns its path. */
export function writeCsvResult(base: string, csvText: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = resolve(RESULTS_DIR, `${base}.csv`);
  writeFileSync(file, csvText);
  return file;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parses `--name value` / `--flag` arguments against known names; throws a clear error otherwise. */
export function parseFlags(argv: readonly string[], known: Record<string, "string" | "boolean">, usage: string): Record<string, string | boolean> {
  const fail = (message: string) => new MnhaError("USAGE", message, { hint: `usage: ${usage}` });
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const name = arg.startsWith("--") ? arg.slice(2) : null;
    if (name === null || !(name in known)) throw fail(`unknown argument ${JSON.stringify(arg)}; expected ${Object.keys(known).map((k) => `--${k}`).join(", ")}`);
    if (known[name] === "boolean") {
      out[name] = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) throw fail(`--${name} needs a value`);
    out[name] = value;
    i++;
  }
  return out;
}

/** A positive integer flag, with a default and an upper bound (every loop is bounded). */
export function intFlag(flags: Record<string, string | boolean>, name: string, fallback: number, max: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new MnhaError("USAGE", `--${name} must be a whole number from 1 to ${max}, not ${JSON.stringify(raw)}`, { hint: `for example --${name} ${fallback}` });
  }
  return value;
}

/**
 * --label NAME: a suffix for the result files, so two runs on one day keep both sets (without
 * it the second overwrites the first). Letters, digits and dashes only: it becomes a file name.
 * `name` is the flag's name where a runner calls it something else (heap-probe's --tag).
 */
export function labelFlag(flags: Record<string, string | boolean>, name = "label"): string | null {
  const raw = flags[name];
  if (raw === undefined) return null;
  if (typeof raw !== "string" || !/^[A-Za-z0-9][A-Za-z0-9-]{0,39}$/.test(raw)) {
    throw new MnhaError("USAGE", `--${name} must be 1 to 40 letters, digits and dashes (it names the result files), not ${JSON.stringify(raw)}`, { hint: `for example --${name} after-fix` });
  }
  return raw;
}

/**
 * A benchmark's command-line entry: runs it, exits with its code, or prints the error (and
 * its hint) under the benchmark's name and exits 2.
 */
export function runBenchmarkMain(name: string, run: (argv: readonly string[]) => Promise<number>): void {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`${name}: ${(error as Error).message}`);
      const hint = (error as { hint?: string }).hint;
      if (hint) console.error(`hint: ${hint}`);
      process.exit(2);
    },
  );
}
