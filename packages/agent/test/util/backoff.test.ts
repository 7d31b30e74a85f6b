import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/util/backoff.js";

describe("reconnect backoff", () => {
  it("doubles from the initial delay and stops at the cap", () => {
    const highest = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 1 });
    expect(Array.from({ length: 7 }, () => highest.next())).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it("jitters within the upper half of each step, never to zero", () => {
    const lowest = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0 });
    expect(Array.from({ length: 6 }, () => lowest.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const real = new Backoff({ initialMs: 100, maxMs: 1_000 });
    for (let step = 0; step < 40; step++) {
      const ceiling = Math.min(1_000, 100 * 2 ** step);
      const delay = real.next();
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });

  it("starts over after reset", () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 80, random: () => 1 });
    backoff.next();
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(10);
  });

  it("without jitter: exactly initial, 2x, 4x... up to the cap, and back to initial after reset (local restarts)", () => {
    const backoff = new Backoff({ initialMs: 250, maxMs: 1_000, jitter: false, random: () => 0 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([250, 500, 1_000, 1_000]);
    backoff.reset();
    expect(backoff.next()).toBe(250);
  });
});
