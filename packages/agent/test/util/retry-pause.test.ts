import { describe, expect, it } from "vitest";
import { RetryPause } from "../../src/util/retry-pause.js";

describe("RetryPause", () => {
  it("holds for its pause from the last begin; only the first begin of a streak is first; clear ends the streak", () => {
    const pause = new RetryPause(30_000);
    expect(pause.active(0)).toBe(false);
    expect(pause.begin(1_000)).toBe(true);
    expect(pause.active(30_999)).toBe(true);
    expect(pause.active(31_000)).toBe(false);
    // Failing again after the pause: not the first of the streak, and the pause starts over.
    expect(pause.begin(31_000)).toBe(false);
    expect(pause.active(60_000)).toBe(true);
    pause.clear();
    expect(pause.active(60_000)).toBe(false);
    expect(pause.begin(60_000)).toBe(true);
  });
});
