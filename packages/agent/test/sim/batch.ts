import { expect } from "vitest";
import { formatRun, runSeed, type RunResult } from "../../src/sim/runner.js";
import type { GenerateOptions } from "../../src/sim/schedule.js";

/** CI batches use a shorter fault window than the long batch: more schedules per second. */
export const CI_WINDOW_MS: [number, number] = [20_000, 50_000];

/**
 * Runs `count` seeded schedules from `first` and asserts that none broke an invariant; a
 * failure message carries the first failing seeds' traces and how to replay them.
 */
export function expectSeedsPass(first: number, count: number, generate: GenerateOptions = {}): RunResult[] {
  const failed: RunResult[] = [];
  let runs = 0;
  for (let seed = first; seed < first + count; seed++) {
    const result = runSeed({ seed, generate: { windowMs: CI_WINDOW_MS, ...generate } });
    runs++;
    if (result.violations.length > 0) failed.push(result);
  }
  const report = failed
    .slice(0, 3)
    .map((r) => formatRun(r, 40))
    .join("\n\n----\n\n");
  expect(runs).toBe(count);
  expect(failed.map((r) => r.seed), `${failed.length} of ${count} schedules broke an invariant\n\n${report}`).toEqual([]);
  return failed;
}
