import cron from "node-cron";
import { afterEach, describe, expect, it, vi } from "vitest";
import { nextDailyRun, parseDailyCron, scheduleDailyCron, type DailyCron } from "../../src/store/daily-cron.js";

/** node-cron's own answer for the next run after `at`: the oracle the store's scheduler must match. */
function nodeCronNext(expression: string, at: number, timezone?: string): number {
  vi.setSystemTime(at);
  // An explicit zone for node-cron: it caches its formatter of the default zone (set by TZ) per process.
  const task = cron.schedule(expression, () => undefined, timezone ? { timezone } : {});
  try {
    return task.getNextRun()?.getTime() ?? Number.NaN;
  } finally {
    void task.destroy();
  }
}

function parsed(expression: string): DailyCron {
  const daily = parseDailyCron(expression);
  if (!daily) throw new Error(`${expression} should parse`);
  return daily;
}

const originalTz = process.env["TZ"];

afterEach(() => {
  vi.useRealTimers();
  if (originalTz === undefined) delete process.env["TZ"];
  else process.env["TZ"] = originalTz;
});

describe("parseDailyCron", () => {
  it("takes minute and hour fields of numbers, ranges, steps and lists", () => {
    expect(parseDailyCron("*/15 * * * *")).toEqual({ minutes: [0, 15, 30, 45], hours: Array.from({ length: 24 }, (_, h) => h) });
    expect(parseDailyCron("30 3 * * *")).toEqual({ minutes: [30], hours: [3] });
    expect(parseDailyCron("0 */6 * * *")).toEqual({ minutes: [0], hours: [0, 6, 12, 18] });
    expect(parseDailyCron(" 5,1-3,50-59/5  22-23 * * * ")).toEqual({ minutes: [1, 2, 3, 5, 50, 55], hours: [22, 23] });
  });

  it("leaves every other form to node-cron (null)", () => {
    for (const expression of ["0 30 3 * * *", "30 3 1 * *", "30 3 * jan *", "30 3 * * mon", "30 3 * * 1-5", "@daily", "5/10 * * * *", "60 * * * *", "0 24 * * *", "30-10 * * * *", "*/0 * * * *", "a * * * *", ""]) {
      expect(parseDailyCron(expression), expression).toBeNull();
    }
  });
});

describe("nextDailyRun", () => {
  const expressions = ["*/15 * * * *", "30 3 * * *", "0 */6 * * *", "55 23 * * *", "0 0 * * *", "59 23 * * *", "1-3,40 2,14 * * *", "0-30/7 1,5-6 * * *", "* * * * *"];

  it("agrees with node-cron on the store's defaults and other daily forms (UTC)", () => {
    process.env["TZ"] = "UTC";
    vi.useFakeTimers({ toFake: ["Date"] });
    // Fixed pseudo-random instants over a year, plus exact run times (strictly after them).
    const instants = [Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2026, 1, 28, 3, 30, 0, 0), Date.UTC(2028, 1, 29, 23, 55)];
    let seed = 12345;
    for (let i = 0; i < 40; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      instants.push(Date.UTC(2026, 0, 1) + (seed % (366 * 86_400)) * 1_000 + (i % 3) * 17);
    }
    for (const expression of expressions) {
      for (const at of instants) {
        expect(new Date(nextDailyRun(parsed(expression), at)).toISOString(), `${expression} after ${new Date(at).toISOString()}`).toBe(new Date(nodeCronNext(expression, at)).toISOString());
      }
    }
  });

  it("follows local time across daylight-saving changes like node-cron (Europe/Berlin)", () => {
    process.env["TZ"] = "Europe/Berlin";
    vi.useFakeTimers({ toFake: ["Date"] });
    // 2026-03-29 02:00 -> 03:00 and 2026-10-25 03:00 -> 02:00, local time.
    const spring = [Date.UTC(2026, 2, 28, 23, 0), Date.UTC(2026, 2, 29, 0, 59), Date.UTC(2026, 2, 29, 1, 1)];
    const autumn = [Date.UTC(2026, 9, 24, 23, 0), Date.UTC(2026, 9, 25, 0, 15), Date.UTC(2026, 9, 25, 1, 15)];
    const cases: [string, number[]][] = [
      ["30 3 * * *", [...spring, ...autumn]],
      ["0 */6 * * *", [...spring, ...autumn]],
      ["55 23 * * *", [...spring, ...autumn]],
      ["*/15 * * * *", spring],
      ["0 1-4 * * *", spring],
    ];
    for (const [expression, instants] of cases) {
      for (const at of instants) {
        expect(new Date(nextDailyRun(parsed(expression), at)).toISOString(), `${expression} after ${new Date(at).toISOString()}`).toBe(new Date(nodeCronNext(expression, at, "Europe/Berlin")).toISOString());
      }
    }
  });

  it("runs a local time that occurs twice (the autumn hour) once, at its first occurrence", () => {
    process.env["TZ"] = "Europe/Berlin";
    // 02:30 CEST = 00:30Z; 02:30 CET (01:30Z) is not run again.
    expect(new Date(nextDailyRun(parsed("30 2 * * *"), Date.UTC(2026, 9, 24, 23, 0))).toISOString()).toBe("2026-10-25T00:30:00.000Z");
    expect(new Date(nextDailyRun(parsed("30 2 * * *"), Date.UTC(2026, 9, 25, 0, 30))).toISOString()).toBe("2026-10-26T01:30:00.000Z");
    expect(new Date(nextDailyRun(parsed("*/15 * * * *"), Date.UTC(2026, 9, 25, 0, 45))).toISOString()).toBe("2026-10-25T02:00:00.000Z");
  });

  it("skips a local time that does not exist (the spring-forward hour)", () => {
    process.env["TZ"] = "Europe/Berlin";
    const next = nextDailyRun(parsed("30 2 * * *"), Date.UTC(2026, 2, 28, 23, 0));
    expect(new Date(next).toISOString()).toBe("2026-03-30T00:30:00.000Z");
  });
});

describe("scheduleDailyCron", () => {
  it("runs at each listed time, and no more after stop", () => {
    process.env["TZ"] = "UTC";
    vi.useFakeTimers({ now: Date.UTC(2026, 5, 1, 3, 0, 0) });
    const runs: string[] = [];
    const task = scheduleDailyCron(parsed("*/15 3 * * *"), () => runs.push(new Date().toISOString()));
    vi.advanceTimersByTime(61 * 60_000);
    expect(runs).toEqual(["2026-06-01T03:15:00.000Z", "2026-06-01T03:30:00.000Z", "2026-06-01T03:45:00.000Z"]);
    task.stop();
    vi.advanceTimersByTime(24 * 3_600_000);
    expect(runs).toHaveLength(3);
  });

  it("misses the runs a clock set forward jumps over, then keeps the schedule; a clock set back is followed", () => {
    process.env["TZ"] = "UTC";
    vi.useFakeTimers({ now: Date.UTC(2026, 5, 1, 2, 0, 0) });
    const runs: string[] = [];
    const task = scheduleDailyCron(parsed("30 3 * * *"), () => runs.push(new Date().toISOString()));
    vi.setSystemTime(Date.UTC(2026, 5, 1, 5, 0, 0));
    vi.advanceTimersByTime(2 * 60_000);
    expect(runs).toEqual([]);
    // Set back to before today's run: it runs today at 03:30 after all.
    vi.setSystemTime(Date.UTC(2026, 5, 1, 3, 0, 0));
    vi.advanceTimersByTime(31 * 60_000);
    expect(runs).toEqual(["2026-06-01T03:30:00.000Z"]);
    vi.advanceTimersByTime(24 * 3_600_000);
    expect(runs).toEqual(["2026-06-01T03:30:00.000Z", "2026-06-02T03:30:00.000Z"]);
    task.stop();
  });
});
