import { afterEach, describe, expect, it, vi } from "vitest";
import { cronExpressionProblem, nextCronRun, scheduleCron } from "../src/cron.js";

const originalTz = process.env["TZ"];

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  if (originalTz === undefined) delete process.env["TZ"];
  else process.env["TZ"] = originalTz;
});

describe("cronExpressionProblem", () => {
  it("accepts the forms the config documents, with the optional seconds field", () => {
    for (const expression of ["*/15 * * * *", "30 3 * * *", "15 2 * * *", "0 0 1 * 1", "0 0 * * SUN", "*/5 * * * * *"]) {
      expect(cronExpressionProblem(expression), expression).toBeNull();
    }
  });

  it("names what is wrong with a bad expression", () => {
    expect(cronExpressionProblem("61 * * * *")).toMatch(/minute: 61/);
    expect(cronExpressionProblem("* * * *")).toMatch(/five, six, or seven/);
    expect(cronExpressionProblem("every night")).not.toBeNull();
  });
});

describe("nextCronRun", () => {
  it("works in the node's local time, across a DST change", () => {
    process.env["TZ"] = "Europe/Berlin";
    // 2026-10-25 03:00 CEST becomes 02:00 CET: a 02:30 job still runs once that night.
    const night = nextCronRun("30 2 * * *", new Date("2026-10-24T12:00:00Z"));
    expect(night?.toISOString()).toBe("2026-10-25T00:30:00.000Z");
    // Every 15 minutes stays 15 minutes of real time through the hour that repeats.
    let at = new Date("2026-10-24T23:50:00Z");
    const steps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const next = nextCronRun("*/15 * * * *", at);
      if (next === null) throw new Error("no next run");
      steps.push(next.getTime() - at.getTime());
      at = next;
    }
    expect(steps.slice(1).every((ms) => ms === 15 * 60_000)).toBe(true);
  });

  it("ORs day of month and day of week, as crontab does", () => {
    process.env["TZ"] = "UTC";
    // 2027-01-01 is a Friday: "the 1st or any Monday" includes it.
    const runs: string[] = [];
    let at = new Date("2026-12-27T12:00:00Z");
    for (let i = 0; i < 3; i++) {
      const next = nextCronRun("0 0 1 * 1", at);
      if (next === null) throw new Error("no next run");
      runs.push(next.toISOString().slice(0, 10));
      at = next;
    }
    expect(runs).toEqual(["2026-12-28", "2027-01-01", "2027-01-04"]);
  });

  it("never builds an Intl.DateTimeFormat (that would page ICU's data into the agent)", () => {
    const formatter = vi.spyOn(Intl, "DateTimeFormat");
    expect(cronExpressionProblem("*/5 * * * *")).toBeNull();
    expect(nextCronRun("15 2 * * *", new Date())).not.toBeNull();
    scheduleCron("*/5 * * * *", () => undefined).stop();
    expect(formatter).not.toHaveBeenCalled();
  });
});

describe("scheduleCron", () => {
  it("runs on each tick, skips a tick while the last run is still going, and keeps going after a failure", async () => {
    vi.useFakeTimers({ now: new Date("2026-12-02T00:00:00.500Z") });
    let calls = 0;
    let release: (() => void) | null = null;
    const task = scheduleCron("* * * * * *", () => {
      calls += 1;
      if (calls === 1) return new Promise<void>((resolve) => (release = resolve));
      if (calls === 2) throw new Error("a failing run");
      return undefined;
    });
    try {
      await vi.advanceTimersByTimeAsync(1_000);
      expect(calls).toBe(1);
      // The first run is still going: the next ticks are skipped.
      await vi.advanceTimersByTimeAsync(2_000);
      expect(calls).toBe(1);
      (release as (() => void) | null)?.();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(calls).toBe(2);
      // The second run threw; the schedule goes on.
      await vi.advanceTimersByTimeAsync(1_000);
      expect(calls).toBe(3);
    } finally {
      task.stop();
    }
    await vi.advanceTimersByTimeAsync(3_000);
    expect(calls).toBe(3);
  });
});
