/**
 * The health state machine of one checked thing (a service, or the gateway), and the restore
 * policy of a service. Pure: results and times go in (`now` is monotonic milliseconds),
 * verdicts and due times come out. No IO, no timers, no clock of its own.
 */

/** "unknown" until the first verdict: neither healthy nor failed yet. */
export type HealthVerdict = "unknown" | "healthy" | "failed";

export type RestoreState = "idle" | "scheduled" | "running" | "gave-up";

export interface RestorePolicy {
  /** Attempts while the service stays failed; 0 never restores. */
  maxAttempts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export interface ServiceHealthOptions {
  /** Consecutive successes that make a service healthy. */
  rise: number;
  /** Consecutive failures that make a service failed. */
  fall: number;
  restore?: RestorePolicy | undefined;
  /**
   * How long the checks need to see a restored service healthy (rise × interval + timeout).
   * The next restore never comes sooner after one finished, whatever the backoff: otherwise,
   * on a slow machine, a restore that worked is followed by another that replaces the fresh
   * process before a check could see it, and the service never comes back.
   */
  settleMs?: number;
}

/** A change of verdict; reported once, on the result that caused it. */
export interface HealthTransition {
  from: HealthVerdict;
  to: "healthy" | "failed";
}

/** What follows a finished restore: another one later, nothing (recovered), or no more tries. */
export type RestoreOutcome = "scheduled" | "idle" | "gave-up";

export interface HealthSnapshot {
  verdict: HealthVerdict;
  healthy: boolean;
  /** Consecutive successes / failures of the latest results. */
  successes: number;
  failures: number;
  restoreAttempts: number;
  restoreState: RestoreState;
  /** When the next restore is due (monotonic ms), or null if none is. */
  restoreDueAt: number | null;
}

/**
 * Delay before the restore that follows attempt number `attempt` (1-based):
 * initial, doubling each attempt, never above the cap.
 */
export function restoreBackoffMs(policy: RestorePolicy, attempt: number): number {
  const exponent = Math.max(0, attempt - 1);
  // 2^exponent overflows to Infinity long before it matters; the cap keeps it finite.
  return Math.min(policy.backoffInitialMs * 2 ** exponent, policy.backoffMaxMs);
}

export class ServiceHealth {
  private readonly rise: number;
  private readonly fall: number;
  private readonly restore: RestorePolicy | undefined;
  private readonly settleMs: number;
  private verdict: HealthVerdict = "unknown";
  private successes = 0;
  private failures = 0;
  private attempts = 0;
  private restoreState: RestoreState = "idle";
  private dueAt: number | null = null;

  constructor(options: ServiceHealthOptions) {
    this.rise = Math.max(1, Math.floor(options.rise));
    this.fall = Math.max(1, Math.floor(options.fall));
    this.restore = options.restore;
    this.settleMs = Math.max(0, options.settleMs ?? 0);
  }

  /** Feeds one check result; returns the transition it caused, if any. */
  recordResult(ok: boolean, now: number): HealthTransition | null {
    const from = this.verdict;
    if (ok) {
      this.successes += 1;
      this.failures = 0;
      if (from === "healthy" || this.successes < this.rise) return null;
      this.verdict = "healthy";
      // Recovered: the next failure starts a fresh series of attempts.
      this.attempts = 0;
      this.dueAt = null;
      if (this.restoreState !== "running") this.restoreState = "idle";
      return { from, to: "healthy" };
    }
    this.failures += 1;
    this.successes = 0;
    if (from === "failed" || this.failures < this.fall) return null;
    this.verdict = "failed";
    if (this.restoreEnabled() && this.restoreState === "idle") {
      this.restoreState = "scheduled";
      this.dueAt = now;
    }
    return { from, to: "failed" };
  }

  /** When the next restore should start (it may be in the past), or null if none is due. */
  restoreDueAt(): number | null {
    return this.restoreState === "scheduled" ? this.dueAt : null;
  }

  /**
   * Marks a due restore as running; returns its attempt number (1-based), or null if no
   * restore is due (the service recovered, or one is already running).
   */
  restoreStarted(now: number): number | null {
    if (this.restoreState !== "scheduled" || this.dueAt === null || now < this.dueAt) return null;
    this.attempts += 1;
    this.restoreState = "running";
    this.dueAt = null;
    return this.attempts;
  }

  /**
   * Marks the running restore as finished. Its exit status does not decide anything: only
   * the checks say whether the service is back. While the service stays failed, the next
   * attempt follows after the backoff, until maxAttempts.
   */
  restoreFinished(_ok: boolean, now: number): RestoreOutcome {
    // Nothing was running: report the state as it is.
    if (this.restoreState !== "running") return this.restoreState;
    const policy = this.restore;
    if (this.verdict !== "failed" || policy === undefined) {
      this.restoreState = "idle";
      return "idle";
    }
    if (this.attempts >= policy.maxAttempts) {
      this.restoreState = "gave-up";
      return "gave-up";
    }
    this.restoreState = "scheduled";
    this.dueAt = now + Math.max(restoreBackoffMs(policy, Math.max(1, this.attempts)), this.settleMs);
    return "scheduled";
  }

  snapshot(): HealthSnapshot {
    return {
      verdict: this.verdict,
      healthy: this.verdict === "healthy",
      successes: this.successes,
      failures: this.failures,
      restoreAttempts: this.attempts,
      restoreState: this.restoreState,
      restoreDueAt: this.restoreDueAt(),
    };
  }

  private restoreEnabled(): boolean {
    return this.restore !== undefined && this.restore.maxAttempts > 0;
  }
}
