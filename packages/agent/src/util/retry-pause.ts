/**
 * A fixed pause after a failure (or an action not yet confirmed) before the next try, for
 * work retried from a periodic poll rather than from its own timer (util/backoff.ts computes
 * delays for those). The first failure of a streak is the one to say; the rest only wait.
 */
export class RetryPause {
  private since: number | null = null;

  constructor(readonly pauseMs: number) {}

  /** Still within the pause at `now`. */
  active(now: number): boolean {
    return this.since !== null && now - this.since < this.pauseMs;
  }

  /** A pause starts (again) at `now`; true when none was running: the first of a streak. */
  begin(now: number): boolean {
    const first = this.since === null;
    this.since = now;
    return first;
  }

  clear(): void {
    this.since = null;
  }
}
