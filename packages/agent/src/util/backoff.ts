/**
 * The agent's one backoff for retrying IO (peer redials, Keepalived restarts, lease-guard
 * respawns, the store's reopen): exponential from `initialMs`, capped at `maxMs`. With
 * jitter (the default) each delay is drawn from the upper half of its step ("equal jitter"),
 * so that two nodes restarted together do not dial in lockstep, yet no delay ever collapses
 * to zero; without it the delays are exactly initial, 2×, 4×… (local restarts, where
 * nobody else retries in step with us).
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  private readonly jitter: boolean;

  constructor(options: { initialMs: number; maxMs: number; random?: () => number; jitter?: boolean }) {
    this.initialMs = Math.max(1, options.initialMs);
    this.maxMs = Math.max(this.initialMs, options.maxMs);
    this.random = options.random ?? Math.random;
    this.jitter = options.jitter ?? true;
  }

  /** The ceiling of the next delay: initial · 2^attempt, capped. */
  ceilingMs(): number {
    // Beyond 2^30 the cap has long been reached; stop doubling to stay finite.
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
  }

  /** The next delay, in [ceiling/2, ceiling] (exactly the ceiling without jitter); each call moves one step up. */
  next(): number {
    const ceiling = this.ceilingMs();
    this.attempt++;
    return this.jitter ? Math.round(ceiling / 2 + this.random() * (ceiling / 2)) : ceiling;
  }

  /** After a success: start again from `initialMs`. */
  reset(): void {
    this.attempt = 0;
  }
}
