import { describe, expect, it } from "vitest";
import { ServiceHealth, restoreBackoffMs, type HealthSnapshot, type RestoreOutcome, type ServiceHealthOptions } from "../../src/core/health.js";

/**
 * Each scenario is a list of steps against one ServiceHealth. A step feeds a check result
 * or a restore start/finish at a monotonic time and states what must come out.
 */
type Step =
  | { ok: boolean; at: number; transition: "healthy" | "failed" | null }
  | { restoreStart: number; attempt: number | null }
  | { restoreFinish: number; outcome: RestoreOutcome }
  | { expect: Partial<HealthSnapshot> };

interface Scenario {
  name: string;
  options: ServiceHealthOptions;
  steps: Step[];
}

const policy = (maxAttempts: number, backoffInitialMs = 100, backoffMaxMs = 300) => ({ maxAttempts, backoffInitialMs, backoffMaxMs });
const ok = (at: number, transition: "healthy" | "failed" | null = null): Step => ({ ok: true, at, transition });
const fail = (at: number, transition: "healthy" | "failed" | null = null): Step => ({ ok: false, at, transition });
const start = (at: number, attempt: number | null): Step => ({ restoreStart: at, attempt });
const finish = (at: number, outcome: RestoreOutcome): Step => ({ restoreFinish: at, outcome });
const expectState = (snapshot: Partial<HealthSnapshot>): Step => ({ expect: snapshot });

const scenarios: Scenario[] = [
  {
    // Regression: on a loaded machine a restore that worked was followed, after the 100 ms
    // backoff, by another one that replaced the fresh process before any check had seen it.
    name: "after a restore, the next waits until the checks could have seen the service healthy (settleMs), even past a shorter backoff",
    options: { rise: 2, fall: 1, restore: policy(5, 100, 300), settleMs: 1_200 },
    steps: [fail(0, "failed"), start(100, 1), finish(150, "scheduled"), expectState({ restoreDueAt: 1_350 }), start(300, null), start(1_350, 2)],
  },
  {
    name: "a backoff longer than settleMs still rules",
    options: { rise: 2, fall: 1, restore: policy(5, 2_000, 8_000), settleMs: 500 },
    steps: [fail(0, "failed"), start(2_000, 1), finish(2_100, "scheduled"), expectState({ restoreDueAt: 4_100 })],
  },
  {
    name: "starts unknown and not healthy",
    options: { rise: 2, fall: 2 },
    steps: [expectState({ verdict: "unknown", healthy: false, successes: 0, failures: 0, restoreState: "idle", restoreDueAt: null })],
  },
  {
    name: "rise reached: healthy after `rise` consecutive successes (first verdict reported)",
    options: { rise: 3, fall: 2 },
    steps: [ok(0), ok(10), expectState({ verdict: "unknown", successes: 2 }), ok(20, "healthy"), ok(30), expectState({ verdict: "healthy", successes: 4 })],
  },
  {
    name: "fall reached from unknown: the first verdict can be failed",
    options: { rise: 2, fall: 2 },
    steps: [fail(0), fail(10, "failed"), expectState({ verdict: "failed", healthy: false, failures: 2 })],
  },
  {
    name: "blip: one failure of a healthy service moves nothing",
    options: { rise: 2, fall: 2 },
    steps: [ok(0), ok(10, "healthy"), fail(20), expectState({ verdict: "healthy", healthy: true, failures: 1 }), ok(30), fail(40), ok(50), expectState({ verdict: "healthy", failures: 0, successes: 1 })],
  },
  {
    name: "fall reached: a healthy service fails after `fall` consecutive failures",
    options: { rise: 2, fall: 3 },
    steps: [ok(0), ok(10, "healthy"), fail(20), fail(30), fail(40, "failed"), fail(50), expectState({ verdict: "failed", failures: 4 })],
  },
  {
    name: "an interrupted run of successes does not recover a failed service",
    options: { rise: 2, fall: 1 },
    steps: [fail(0, "failed"), ok(10), fail(20), ok(30), expectState({ verdict: "failed", successes: 1 }), ok(40, "healthy")],
  },
  {
    name: "restore due immediately on failure, then backoff doubles and caps at backoffMax",
    options: { rise: 1, fall: 1, restore: policy(10, 100, 300) },
    steps: [
      fail(1_000, "failed"),
      expectState({ restoreState: "scheduled", restoreDueAt: 1_000 }),
      start(1_000, 1),
      expectState({ restoreState: "running", restoreDueAt: null, restoreAttempts: 1 }),
      finish(1_010, "scheduled"),
      expectState({ restoreDueAt: 1_110 }), // 100
      start(1_109, null), // not due yet
      start(1_110, 2),
      finish(1_120, "scheduled"),
      expectState({ restoreDueAt: 1_320 }), // 200
      start(1_320, 3),
      finish(1_330, "scheduled"),
      expectState({ restoreDueAt: 1_630 }), // 400 capped at 300
      start(1_630, 4),
      finish(1_640, "scheduled"),
      expectState({ restoreDueAt: 1_940 }), // still capped
    ],
  },
  {
    name: "max attempts reached while failed: gave-up, and no more restores",
    options: { rise: 1, fall: 1, restore: policy(2) },
    steps: [
      fail(0, "failed"),
      start(0, 1),
      finish(5, "scheduled"),
      start(105, 2),
      finish(110, "gave-up"),
      expectState({ restoreState: "gave-up", restoreAttempts: 2, restoreDueAt: null }),
      fail(120),
      start(10_000, null),
      expectState({ restoreState: "gave-up", restoreAttempts: 2 }),
    ],
  },
  {
    name: "a restore that succeeds but leaves the service failed still counts",
    options: { rise: 1, fall: 1, restore: policy(1) },
    steps: [fail(0, "failed"), start(0, 1), finish(5, "gave-up")],
  },
  {
    name: "reset on recovery: after gave-up, healthy again resets attempts; a new failure restores from attempt 1",
    options: { rise: 2, fall: 2, restore: policy(1) },
    steps: [
      fail(0),
      fail(10, "failed"),
      start(10, 1),
      finish(20, "gave-up"),
      ok(30),
      ok(40, "healthy"),
      expectState({ restoreState: "idle", restoreAttempts: 0, restoreDueAt: null }),
      fail(50),
      fail(60, "failed"),
      expectState({ restoreState: "scheduled", restoreDueAt: 60 }),
      start(60, 1),
    ],
  },
  {
    name: "recovery while a restore is scheduled cancels it",
    options: { rise: 1, fall: 1, restore: policy(5) },
    steps: [fail(0, "failed"), start(0, 1), finish(10, "scheduled"), ok(20, "healthy"), expectState({ restoreState: "idle", restoreDueAt: null, restoreAttempts: 0 }), start(1_000, null)],
  },
  {
    name: "recovery while a restore runs: it finishes as idle",
    options: { rise: 1, fall: 1, restore: policy(5) },
    steps: [fail(0, "failed"), start(0, 1), ok(5, "healthy"), expectState({ restoreState: "running", restoreAttempts: 0 }), finish(10, "idle"), expectState({ restoreState: "idle" })],
  },
  {
    name: "never two restores at once: a second start while one runs is refused",
    options: { rise: 1, fall: 1, restore: policy(5) },
    steps: [fail(0, "failed"), start(0, 1), start(0, null), fail(5), start(5, null), finish(10, "scheduled")],
  },
  {
    name: "maxAttempts 0 never restores",
    options: { rise: 1, fall: 1, restore: policy(0) },
    steps: [fail(0, "failed"), expectState({ restoreState: "idle", restoreDueAt: null }), start(0, null)],
  },
  {
    name: "no restore config: failure schedules nothing",
    options: { rise: 1, fall: 1 },
    steps: [fail(0, "failed"), expectState({ restoreState: "idle", restoreDueAt: null }), start(0, null), finish(1, "idle")],
  },
];

describe("ServiceHealth", () => {
  it.each(scenarios)("$name", ({ options, steps }) => {
    const health = new ServiceHealth(options);
    steps.forEach((step, index) => {
      const where = `step ${index}: ${JSON.stringify(step)}`;
      if ("ok" in step) {
        const transition = health.recordResult(step.ok, step.at);
        expect(transition?.to ?? null, where).toBe(step.transition);
      } else if ("restoreStart" in step) {
        expect(health.restoreStarted(step.restoreStart), where).toBe(step.attempt);
      } else if ("restoreFinish" in step) {
        expect(health.restoreFinished(true, step.restoreFinish), where).toBe(step.outcome);
      } else {
        expect(health.snapshot(), where).toMatchObject(step.expect);
      }
    });
  });

  it("reports where a transition came from", () => {
    const health = new ServiceHealth({ rise: 1, fall: 1 });
    expect(health.recordResult(true, 0)).toEqual({ from: "unknown", to: "healthy" });
    expect(health.recordResult(false, 1)).toEqual({ from: "healthy", to: "failed" });
    expect(health.recordResult(true, 2)).toEqual({ from: "failed", to: "healthy" });
  });
});

describe("restoreBackoffMs", () => {
  it.each([
    { attempt: 1, initial: 2_000, max: 60_000, delay: 2_000 },
    { attempt: 2, initial: 2_000, max: 60_000, delay: 4_000 },
    { attempt: 5, initial: 2_000, max: 60_000, delay: 32_000 },
    { attempt: 6, initial: 2_000, max: 60_000, delay: 60_000 },
    { attempt: 2_000, initial: 2_000, max: 60_000, delay: 60_000 },
    { attempt: 3, initial: 0, max: 60_000, delay: 0 },
  ])("attempt $attempt with initial $initial, cap $max: $delay ms", ({ attempt, initial, max, delay }) => {
    expect(restoreBackoffMs({ maxAttempts: 10, backoffInitialMs: initial, backoffMaxMs: max }, attempt)).toBe(delay);
  });
});
