import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_LISTED_SOURCES, RefusalLedger, type RefusalSummary } from "../../src/peer/refusal-ledger.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("refusal ledger", () => {
  it("bounds what a flood can make it emit: one summary per interval, sources and reasons bounded, control characters out", () => {
    vi.useFakeTimers();
    let now = 0;
    const out: RefusalSummary[] = [];
    const ledger = new RefusalLedger({ intervalMs: 30_000, emit: (s) => out.push(s), now: () => now });
    const hostileReason = `\u001b[31mred\u0007${"x".repeat(1_000)}`;
    // An hour of a flood: 100 refusals a second from 50 addresses.
    for (let second = 0; second < 3_600; second++) {
      for (let i = 0; i < 100; i++) ledger.record(`10.0.${i % 50}.1:${40_000 + i}`, i % 2 ? "auth-failed" : "stranger-address", hostileReason);
      now += 1_000;
      vi.advanceTimersByTime(1_000);
    }
    ledger.flush();
    // At most one per 30 s window, plus the first at once and the final flush.
    expect(out.length).toBeLessThanOrEqual(3_600 / 30 + 2);
    expect(out.reduce((sum, s) => sum + s.count, 0)).toBe(360_000);
    const bytes = out.reduce((sum, s) => sum + JSON.stringify(s).length, 0);
    expect(bytes).toBeLessThan(out.length * 1_200);
    for (const summary of out) {
      expect(summary.sources.length).toBeLessThanOrEqual(MAX_LISTED_SOURCES);
      expect(summary.first.reason.length).toBeLessThanOrEqual(200);
      expect(JSON.stringify(summary.message)).not.toMatch(/\\u00(1b|07)/);
      expect([...summary.message].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
    }
    expect(out[1]?.otherSources).toBeGreaterThan(0);
    expect(ledger.counts()).toEqual({ "auth-failed": 180_000, "stranger-address": 180_000 });
  });
});
