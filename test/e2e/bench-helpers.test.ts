/**
 * The benchmarks' own arithmetic, without a lab: how the soak judges a daemon's memory and
 * how result files are named. A wrong verdict here would make a committed result lie.
 */
import { describe, expect, it } from "vitest";
import { parseProbeOutput } from "../lab/bench-heap.js";
import { labelFlag } from "../lab/bench-report.js";
import { diffSummaries, retainerChains, summarizeSnapshot, totalSelfBytes, type HeapSnapshotJson } from "../lab/heap-snapshot.js";
import { memoryParts, memoryTrends, readMemoryCsv, rssGrowth, trendMbPerHour, type MemorySample } from "../lab/soak.js";

/** One sample every 10 s for `minutes`, RSS and private memory from `mb(t in s)`, the heap every minute. */
function series(minutes: number, mb: (s: number) => number, start = 0): MemorySample[] {
  const out: MemorySample[] = [];
  for (let s = 0; s <= minutes * 60; s += 10) {
    out.push({ t: start + s * 1000, rssMb: mb(s), privateMb: mb(s) / 2, heapUsedMb: s % 60 === 0 ? mb(s) / 4 : null, heapTotalMb: s % 60 === 0 ? mb(s) / 3 : null, externalMb: s % 60 === 0 ? 2 : null });
  }
  return out;
}

describe("the soak's memory verdict", () => {
  it("passes a flat daemon and misses one that grew 20 %, with private memory and heap from the same windows", () => {
    const flat = series(30, () => 80);
    const growing = series(30, (s) => (s < 120 ? 80 : 80 + (16 * (s - 120)) / (30 * 60 - 120)));
    const one = rssGrowth(new Map([[1, { node: "mn1" as const, samples: flat }]]), 0);
    expect(one.rows[0]).toMatchObject({ pid: 1, startMb: 80, endMb: 80, growthPercent: 0, judged: true, privateMb: { start: 40, end: 40 }, heapUsedMb: { start: 20, end: 20 } });
    expect(one.rows[0]?.heapTotalMb?.start).toBeCloseTo(26.7, 1);
    expect(one.verdict).toContain("**pass**");
    const two = rssGrowth(
      new Map([
        [1, { node: "mn1" as const, samples: flat }],
        [2, { node: "mn2" as const, samples: growing }],
      ]),
      0,
    );
    const worst = two.rows.find((r) => r.pid === 2);
    expect(worst?.growthPercent).toBeCloseTo(20, 0);
    expect(worst?.privateMb?.end).toBeCloseTo(48, 0);
    expect(worst?.heapUsedMb?.end).toBeCloseTo(24, 0);
    expect(worst?.heapTotalMb?.end).toBeCloseTo(32, 0);
    expect(two.verdict).toMatch(/: (19\.[5-9]|20\.[0-4]) % \(mn2, pid 2, 30\.0 min\): \*\*miss\*\*/);
  });

  it("does not judge a daemon that lived under 10 minutes, however much it grew", () => {
    const short = series(9, (s) => 80 + s);
    const result = rssGrowth(new Map([[7, { node: "mn1" as const, samples: short }]]), 0);
    expect(result.rows[0]?.judged).toBe(false);
    expect(result.verdict).toContain("growth not judged");
  });

  it("cuts the soak into 5-minute parts of medians, so a climb shows part after part", () => {
    const climbing = series(20, (s) => 80 + Math.floor(s / 300) * 2);
    const lines = memoryParts(new Map([[3, { node: "mn2" as const, samples: climbing }]]), [3], 0, 20 * 60_000);
    const rows = lines.filter((l) => /^\| \d/.test(l));
    expect(rows).toEqual(["| 0–5 | 80.0 / 40.0 / 20.0 / 26.7 |", "| 5–10 | 82.0 / 41.0 / 20.5 / 27.3 |", "| 10–15 | 84.0 / 42.0 / 21.0 / 28.0 |", "| 15–20 | 86.0 / 43.0 / 21.5 / 28.7 |"]);
    expect(memoryParts(new Map([[3, { node: "mn2" as const, samples: climbing }]]), [], 0, 20 * 60_000)).toEqual([]);
  });
});

describe("the soak's memory trend", () => {
  it("fits the slope in MB an hour, and has none with fewer than three readings", () => {
    // 2 MB an hour of RSS, with a GC's saw-tooth of ±3 MB on top that least squares averages out.
    const climbing = series(60, (s) => 80 + (2 * s) / 3600 + (s % 120 === 0 ? 3 : s % 120 === 60 ? -3 : 0));
    expect(trendMbPerHour(climbing, 0, 3_600_000, (x) => x.rssMb)).toBeCloseTo(2, 0);
    expect(trendMbPerHour(series(60, () => 80), 0, 3_600_000, (x) => x.rssMb)).toBe(0);
    expect(trendMbPerHour(climbing, 0, 15_000, (x) => x.rssMb)).toBeNull();
    // The heap is read once a minute: two minutes hold three readings (0, 60, 120 s) ...
    expect(trendMbPerHour(climbing, 0, 121_000, (x) => x.heapUsedMb)).not.toBeNull();
    // ... and one minute two, too few.
    expect(trendMbPerHour(climbing, 0, 61_000, (x) => x.heapUsedMb)).toBeNull();
  });

  it("tells a leak (same slope in both halves) from memory that levels off (second half flat)", () => {
    const leak = series(70, (s) => 80 + (6 * s) / 3600);
    const settling = series(70, (s) => 80 + 12 * (1 - Math.exp(-s / 900)));
    const rows = (samples: MemorySample[]) =>
      memoryTrends(new Map([[5, { node: "mn1" as const, samples }]]), [5], 0, 70 * 60_000).filter((l) => l.startsWith("| mn1 pid 5 | RSS |"));
    expect(rows(leak)).toEqual(["| mn1 pid 5 | RSS | +6.0 | +6.0 |"]);
    const [settled] = rows(settling);
    const [first, second] = (settled ?? "").split("|").slice(3, 5).map(Number);
    expect(first).toBeGreaterThan(1);
    expect(Math.abs(second ?? Number.NaN)).toBeLessThan((first ?? 0) / 4);
    expect(memoryTrends(new Map([[5, { node: "mn1" as const, samples: leak }]]), [5], 0, 70 * 60_000)).toContain("| process | figure | minutes 10–40 (MB an hour) | minutes 40–70 (MB an hour) |");
    // A process restarted at minute 5 has not warmed up by minute 10: named, not fitted.
    const late = series(65, (s) => 80 + s / 60, 5 * 60_000);
    expect(memoryTrends(new Map([[6, { node: "mn2" as const, samples: late }]]), [6], 0, 70 * 60_000)).toContain("| mn2 pid 6 | (started during the soak: not fitted) | – | – |");
    // Under 20 minutes after warm-up: nothing to compare.
    expect(memoryTrends(new Map([[5, { node: "mn1" as const, samples: leak }]]), [5], 0, 29 * 60_000)).toEqual([]);
  });
});

describe("a soak's memory file read again", () => {
  it("reads what the soak writes, per process, an old file's missing columns as null", () => {
    const now = readMemoryCsv("t_s,node,pid,rss_mb,private_mb,heap_used_mb,heap_total_mb,external_mb\n0.3,mn1,11,88.1,42.3,23.5,30.2,1.9\n10.5,mn1,11,81.7,35.4,,,\n10.6,mn2,12,80.0,40.0,,,\n");
    expect(now.get(11)).toEqual({
      node: "mn1",
      samples: [
        { t: 300, rssMb: 88.1, privateMb: 42.3, heapUsedMb: 23.5, heapTotalMb: 30.2, externalMb: 1.9 },
        { t: 10_500, rssMb: 81.7, privateMb: 35.4, heapUsedMb: null, heapTotalMb: null, externalMb: null },
      ],
    });
    expect(now.get(12)?.node).toBe("mn2");
    const old = readMemoryCsv("t_s,node,pid,rss_mb,private_mb,heap_used_mb\n0.3,mn1,11,88.1,42.3,23.5\n");
    expect(old.get(11)?.samples[0]).toMatchObject({ heapUsedMb: 23.5, heapTotalMb: null, externalMb: null });
  });

  it("refuses a file that is not a soak's memory file, naming what is wrong", () => {
    expect(() => readMemoryCsv("index,at_s,kind\n1,9,peer-link-cut\n")).toThrow(/no t_s column/);
    expect(() => readMemoryCsv("t_s,node,pid,rss_mb\n1,mn9,3,80\n")).toThrow(/bad memory sample: 1,mn9,3,80/);
  });
});

describe("result file labels", () => {
  it("accepts letters, digits and dashes, and nothing when the flag is absent", () => {
    expect(labelFlag({})).toBeNull();
    expect(labelFlag({ label: "after-fix2" })).toBe("after-fix2");
  });

  it.each(["../x", "a b", "-lead", "x".repeat(41), "é"])("refuses %j with a usage error naming the rule", (bad) => {
    expect(() => labelFlag({ label: bad })).toThrow(/--label must be 1 to 40 letters, digits and dashes/);
  });

  it("checks a flag of another name the same way, naming that flag (heap-probe's --tag)", () => {
    expect(labelFlag({ tag: "t04", label: "x y" }, "tag")).toBe("t04");
    expect(() => labelFlag({ tag: "../t04" }, "tag")).toThrow(/--tag must be 1 to 40 letters/);
  });
});

/**
 * A heap snapshot in V8's layout: a root that holds an EventLog, whose `events` array holds
 * `events` plain objects of 48 bytes; plus `strings` strings of 32 bytes held by the root.
 */
function snapshotOf(events: number, strings: number): HeapSnapshotJson {
  const nodeTypes = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number", "native", "synthetic", "concatenated string", "sliced string", "symbol", "bigint", "object shape"];
  const edgeTypes = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"];
  const names = ["(root)", "EventLog", "events", "log", "Array", "Object", "x", "cache"];
  const F = 5; // type, name, id, self_size, edge_count
  const nodes: number[] = [];
  const edges: number[] = [];
  const add = (type: string, name: string, size: number, out: [string, number, number][]) => {
    const at = nodes.length;
    nodes.push(nodeTypes.indexOf(type), names.indexOf(name), at / F + 1, size, out.length);
    for (const [edgeType, nameOrIndex, to] of out) edges.push(edgeTypes.indexOf(edgeType), nameOrIndex, to);
    return at;
  };
  // Fixed positions: root 0, EventLog 1, array 2, then the events, then the strings.
  const eventAt = (i: number) => (3 + i) * F;
  const stringAt = (i: number) => (3 + events + i) * F;
  // The weak edge comes first: a retainer chain must skip it.
  add("synthetic", "(root)", 0, [["weak", names.indexOf("cache"), 1 * F], ["property", names.indexOf("log"), 1 * F], ...Array.from({ length: strings }, (_, i) => ["element", i, stringAt(i)] as [string, number, number])]);
  add("object", "EventLog", 32, [["property", names.indexOf("events"), 2 * F]]);
  add("array", "Array", 16, Array.from({ length: events }, (_, i) => ["element", i, eventAt(i)] as [string, number, number]));
  for (let i = 0; i < events; i += 1) add("object", "Object", 48, []);
  for (let i = 0; i < strings; i += 1) add("string", "x", 32, []);
  return {
    snapshot: { meta: { node_fields: ["type", "name", "id", "self_size", "edge_count"], node_types: [nodeTypes], edge_fields: ["type", "name_or_index", "to_node"], edge_types: [edgeTypes] } },
    nodes,
    edges,
    strings: names,
  };
}

describe("heap snapshot diffs", () => {
  it("counts and sizes each kind of object, strings by type alone", () => {
    const summary = summarizeSnapshot(snapshotOf(3, 2));
    expect(summary.get("object:Object")).toEqual({ count: 3, selfBytes: 144 });
    expect(summary.get("string")).toEqual({ count: 2, selfBytes: 64 });
    expect(summary.get("object:EventLog")).toEqual({ count: 1, selfBytes: 32 });
    expect(totalSelfBytes(summary)).toBe(144 + 64 + 32 + 16);
  });

  it("lists what grew, largest change first, and leaves out what did not change", () => {
    const rows = diffSummaries(summarizeSnapshot(snapshotOf(3, 2)), summarizeSnapshot(snapshotOf(10, 3)));
    expect(rows.map((r) => r.kind)).toEqual(["object:Object", "string"]);
    expect(rows[0]).toEqual({ kind: "object:Object", before: { count: 3, selfBytes: 144 }, after: { count: 10, selfBytes: 480 } });
  });

  it("names the structure that holds the objects of a kind, through strong edges only", () => {
    const chains = retainerChains(snapshotOf(4, 1), "object:Object", 3);
    // One chain for the array's four slots: a growing array shows as one line whose count grows.
    expect([...chains]).toEqual([["array:Array.[] <- object:EventLog.events <- synthetic:(root).log", 4]]);
    expect(retainerChains(snapshotOf(1, 0), "object:EventLog", 1)).toEqual(new Map([["synthetic:(root).log", 1]]));
  });

  it("refuses a file that is not a heap snapshot it can read", () => {
    const broken = snapshotOf(1, 0);
    broken.snapshot.meta.node_fields = ["type", "name"];
    expect(() => summarizeSnapshot(broken)).toThrow(/no self_size field/);
  });
});

describe("the heap probe's output", () => {
  it("reads one JSON line per isolate and refuses anything else", () => {
    const main = { isolate: "main", physicalMb: 21.2, totalMb: 22, usedMb: 19.7, mallocedMb: 0.5, externalMb: 2.5, spacesMb: { code: 0.95 } };
    const worker = { ...main, isolate: "store-worker", usedMb: 4.4 };
    expect(parseProbeOutput(`${JSON.stringify(main)}\n${JSON.stringify(worker)}\n`).map((h) => [h.isolate, h.usedMb])).toEqual([["main", 19.7], ["store-worker", 4.4]]);
    expect(() => parseProbeOutput("Debugger listening on ws://127.0.0.1:9229\n")).toThrow(/not JSON/);
    expect(() => parseProbeOutput(JSON.stringify({ isolate: "other", usedMb: 1, physicalMb: 1 }))).toThrow(/unexpected line/);
  });
});
