/**
 * Time as mnha uses it. `now()` is monotonic milliseconds (never jumps, only durations
 * are meaningful); `wallNow()` is for display and audit records only and is never compared
 * across machines or used to decide anything.
 */
export interface Clock {
  now(): number;
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A stopped clock for tests: time moves only when the test says so. */
export class ManualClock implements Clock {
  private monotonic: number;
  private wall: number;
  constructor(start = 1_000, wallStart = Date.UTC(2026, 0, 1)) {
    this.monotonic = start;
    this.wall = wallStart;
  }
  now(): number {
    return this.monotonic;
  }
  wallNow(): number {
    return this.wall;
  }
  advance(ms: number): void {
    if (ms < 0) throw new Error("a monotonic clock cannot go back");
    this.monotonic += ms;
    this.wall += ms;
  }
  /** Wall-clock jumps (NTP step, operator) change nothing monotonic. */
  jumpWall(ms: number): void {
    this.wall += ms;
  }
}
