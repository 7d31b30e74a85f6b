/**
 * Heap probes of a running lab's agents (bench/heap-probe.ts) and the diff of two heap
 * snapshots (bench/heap-diff.ts): the tools behind docs/benchmarks.md's statements about what
 * grows in an agent's memory. A probe opens the agent's inspector (SIGUSR1) inside its
 * namespace and leaves it open until the agent exits: lab agents only, and not during a run
 * whose figures are the benchmark's (a forced collection or a snapshot changes the memory it
 * measures, and a snapshot stops the isolate for about a second).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { MnhaError } from "@mnha/shared";
import { intFlag, labelFlag, markdownTable, parseFlags } from "./bench-report.js";
import { privateMb } from "./agent-memory.js";
import { HOSTS, LAB_DIR, LAB_PREFIX, MN_NODES, type MnNode } from "./constants.js";
import { runIn } from "./exec.js";
import { diffSummaries, retainerChains, summarizeSnapshot, totalSelfBytes, type HeapSnapshotJson } from "./heap-snapshot.js";
import { Lab } from "./lab.js";
import { signal } from "./procfs.js";

const HEAP_PROBE_SCRIPT = resolve(LAB_DIR, "heap-probe.mjs");

/** One isolate as heap-probe.mjs prints it. */
export interface IsolateHeap {
  isolate: "main" | "store-worker";
  physicalMb: number;
  totalMb: number;
  usedMb: number;
  mallocedMb: number;
  externalMb: number;
  spacesMb: Record<string, number>;
}

/** The probe's output: one JSON line per isolate; anything else is an error naming the line. */
export function parseProbeOutput(stdout: string): IsolateHeap[] {
  const lines = stdout.split("\n").filter((line) => line.trim() !== "");
  return lines.map((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new MnhaError("INTERNAL", `heap probe printed a line that is not JSON: ${line.slice(0, 120)}`);
    }
    const heap = parsed as Partial<IsolateHeap>;
    if ((heap.isolate !== "main" && heap.isolate !== "store-worker") || typeof heap.usedMb !== "number" || typeof heap.physicalMb !== "number") {
      throw new MnhaError("INTERNAL", `heap probe printed an unexpected line: ${line.slice(0, 120)}`);
    }
    return heap as IsolateHeap;
  });
}

const PROBE_USAGE = "MNHA_LAB=NAME node --import tsx bench/heap-probe.ts [--gc] [--snapshot DIR] [--tag NAME] [--timeout-ms 120000]";

/** One node's probe: its isolates' rows, or why it failed (the other node is still probed). */
async function probeNode(lab: Lab, node: MnNode, options: { gc: boolean; snapshotPrefix: string | null; timeoutMs: number }): Promise<string[][]> {
  const pid = await lab.agentPid(node);
  if (pid === null) throw new MnhaError("USAGE", `no agent running on ${node} in lab ${LAB_PREFIX}`, { hint: "start the lab first (MNHA_LAB=NAME pnpm -s lab up), or set MNHA_LAB to the running lab's name" });
  const before = privateMb(pid);
  // Node opens its inspector on SIGUSR1 (the probe waits for it to listen); a second signal to
  // an open inspector does nothing, so a probe run twice is harmless.
  signal(pid, "SIGUSR1");
  const args = [HEAP_PROBE_SCRIPT, "--timeout-ms", String(options.timeoutMs), ...(options.gc ? ["--gc"] : []), ...(options.snapshotPrefix !== null ? ["--snapshot", options.snapshotPrefix] : [])];
  const result = await runIn(HOSTS[node].namespace, process.execPath, args, { allowFailure: true, timeoutMs: options.timeoutMs + 5_000 });
  if (result.code !== 0) throw new MnhaError("INTERNAL", `heap probe of ${node} (pid ${pid}) failed: ${result.stderr.trim() || `exit ${result.code}`}`);
  const after = privateMb(pid);
  const mb = (value: number | null) => (value === null ? "-" : value.toFixed(1));
  return parseProbeOutput(result.stdout).map((heap) => [node, String(pid), heap.isolate, heap.usedMb.toFixed(2), heap.physicalMb.toFixed(2), (heap.spacesMb["code"] ?? 0).toFixed(2), heap.externalMb.toFixed(2), mb(before), mb(after)]);
}

export async function runHeapProbe(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { gc: "boolean", snapshot: "string", tag: "string", "timeout-ms": "string" }, PROBE_USAGE);
  const timeoutMs = intFlag(flags, "timeout-ms", 120_000, 600_000);
  const snapshotDir = typeof flags["snapshot"] === "string" ? flags["snapshot"] : null;
  const tag = labelFlag(flags, "tag") ?? new Date().toISOString().slice(11, 19).replaceAll(":", "");
  if (snapshotDir !== null) mkdirSync(snapshotDir, { recursive: true });
  const gc = flags["gc"] === true || snapshotDir !== null;
  const lab = new Lab();
  const rows: string[][] = [];
  const failures: string[] = [];
  for (const node of MN_NODES) {
    try {
      rows.push(...(await probeNode(lab, node, { gc, snapshotPrefix: snapshotDir !== null ? resolve(snapshotDir, `${tag}-${node}`) : null, timeoutMs })));
    } catch (error) {
      failures.push(`${node}: ${(error as Error).message}`);
    }
  }
  console.log(`lab ${LAB_PREFIX}, ${new Date().toISOString()}${gc ? ", after a forced full GC in each isolate" : ", no GC forced"}${snapshotDir !== null ? `, snapshots ${resolve(snapshotDir, tag)}-*` : ""}`);
  if (rows.length > 0) console.log(markdownTable(["node", "pid", "isolate", "heap used (MB)", "heap physical (MB)", "code (MB)", "external (MB)", "process private before (MB)", "after (MB)"], rows).join("\n"));
  for (const failure of failures) console.error(`heap-probe: ${failure}`);
  return failures.length === 0 ? 0 : 1;
}

const DIFF_USAGE = "node --import tsx bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--top 25] [--retainers TYPE:NAME] [--depth 4]";

function readSnapshot(file: string): HeapSnapshotJson {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as HeapSnapshotJson;
  } catch (error) {
    throw new MnhaError("USAGE", `cannot read heap snapshot ${file}: ${(error as Error).message}`, { hint: `usage: ${DIFF_USAGE}` });
  }
}

/** Two snapshot files and the flags, through node:util's parser (positionals and flags in any order). */
function parseDiffArgs(argv: readonly string[]): { files: [string, string]; flags: Record<string, string | boolean> } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { top: { type: "string" }, retainers: { type: "string" }, depth: { type: "string" } } });
  } catch (error) {
    throw new MnhaError("USAGE", (error as Error).message, { hint: `usage: ${DIFF_USAGE}` });
  }
  if (parsed.positionals.length !== 2) throw new MnhaError("USAGE", `expected two snapshot files, got ${parsed.positionals.length}`, { hint: `usage: ${DIFF_USAGE}` });
  return { files: parsed.positionals as [string, string], flags: parsed.values as Record<string, string> };
}

export async function runHeapDiff(argv: readonly string[]): Promise<number> {
  const { files, flags } = parseDiffArgs(argv);
  const top = intFlag(flags, "top", 25, 1_000);
  const depth = intFlag(flags, "depth", 4, 20);
  const before = readSnapshot(files[0]);
  const after = readSnapshot(files[1]);
  const a = summarizeSnapshot(before);
  const b = summarizeSnapshot(after);
  console.log(`self size of all objects: ${(totalSelfBytes(a) / 1048576).toFixed(2)} -> ${(totalSelfBytes(b) / 1048576).toFixed(2)} MB`);
  const rows = diffSummaries(a, b).slice(0, top).map((d) => [d.kind, String(d.before.count), String(d.after.count), `${d.after.count - d.before.count >= 0 ? "+" : ""}${d.after.count - d.before.count}`, `${((d.after.selfBytes - d.before.selfBytes) / 1024).toFixed(1)}`]);
  console.log(markdownTable(["kind", "count before", "count after", "change", "self size change (kB)"], rows).join("\n"));
  if (typeof flags["retainers"] === "string") {
    const kind = flags["retainers"];
    const chainsBefore = retainerChains(before, kind, depth);
    const chainsAfter = retainerChains(after, kind, depth);
    const chains = new Set([...chainsBefore.keys(), ...chainsAfter.keys()]);
    const changed = [...chains].map((chain) => ({ chain, before: chainsBefore.get(chain) ?? 0, after: chainsAfter.get(chain) ?? 0 })).filter((c) => c.before !== c.after).sort((x, y) => y.after - y.before - (x.after - x.before));
    console.log(`\nwhat holds ${kind} (first strong retainer, ${depth} steps up), where the count changed:`);
    console.log(markdownTable(["retainer chain", "before", "after"], changed.slice(0, top).map((c) => [c.chain, String(c.before), String(c.after)])).join("\n"));
  }
  return 0;
}
