/**
 * The benchmarks' own arithmetic, without a lab: how the soak judges a daemon's memory and
 * how result files are named. A wrong verdict here would make a committed result lie.
 */
import { describe, expect, it } from "vitest";
import { labelFlag } from "../lab/bench-report.js";
import { memoryParts, rssGrowth, type MemorySample } from "../lab/soak.js";

/** One sample every 10 s for `minutes`, RSS and private memory from `mb(t in s)`, the heap every minute. */
function series(minutes: number, mb: (s: number) => number, start = 0): MemorySample[] {
  const out: MemorySample[] = [];
  for (let s = 0; s <= minutes * 60; s += 10) {
    out.push({ t: start + s * 1000, rssMb: mb(s), privateMb: mb(s) / 2, heapUsedMb: s % 60 === 0 ? mb(s) / 4 : null });
  }
  return out;
}

describe("the soak's memory verdict", () => {
  it("passes a flat daemon and misses one that grew 20 %, with private memory and heap from the same windows", () => {
    const flat = series(30, () => 80);
    const growing = series(30, (s) => (s < 120 ? 80 : 80 + (16 * (s - 120)) / (30 * 60 - 120)));
    const one = rssGrowth(new Map([[1, { node: "mn1" as const, samples: flat }]]), 0);
    expect(one.rows[0]).toMatchObject({ pid: 1, startMb: 80, endMb: 80, growthPercent: 0, judged: true, privateMb: { start: 40, end: 40 }, heapUsedMb: { start: 20, end: 20 } });
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
    expect(rows).toEqual(["| 0–5 | 80.0 / 40.0 / 20.0 |", "| 5–10 | 82.0 / 41.0 / 20.5 |", "| 10–15 | 84.0 / 42.0 / 21.0 |", "| 15–20 | 86.0 / 43.0 / 21.5 |"]);
    expect(memoryParts(new Map([[3, { node: "mn2" as const, samples: climbing }]]), [], 0, 20 * 60_000)).toEqual([]);
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
});
