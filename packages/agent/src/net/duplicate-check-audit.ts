import type { Clock } from "@mnha/shared";
import type { DuplicateCheckStatus } from "../contracts.js";
import { formatDuration } from "../util/format.js";

/** How long the check must run again, without failing, before the outage is closed in the audit. */
export const DUPLICATE_CHECK_SETTLE_MS = 10_000;

export type AuditRecord = (type: string, message: string, fields: Record<string, unknown>, level: "info" | "warn" | "error") => void;

/**
 * The audit trail of the holder's duplicate-address check not running (rule 7 of
 * docs/protocol.md): `duplicate-check.failing` when a holder's check stops, and one event when
 * the outage ends: `duplicate-check.running` once the check has run for
 * DUPLICATE_CHECK_SETTLE_MS without failing again, or `duplicate-check.ended` when this node
 * stops holding the VIP (or the agent stops) first. Both say how long the holder was blind.
 * A tool that fails every few seconds makes one pair of events with a count, not a pair per
 * restart.
 */
export class DuplicateCheckAudit {
  private outage: { since: number; problem: string; flaps: number } | null = null;
  /** While an outage is open and the check runs again: since when, and the timer that closes it. */
  private runningSince: number | null = null;
  private settleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly record: AuditRecord,
    private readonly clock: Pick<Clock, "now">,
    private readonly settleMs = DUPLICATE_CHECK_SETTLE_MS,
  ) {}

  /** The check's new state (DuplicateWatchApi.onStateChange). */
  onState(status: DuplicateCheckStatus): void {
    if (status.state === "failing") {
      if (this.outage === null) {
        const problem = status.problem ?? "no reason given";
        this.outage = { since: this.clock.now(), problem, flaps: 0 };
        this.record("duplicate-check.failing", `duplicate-address check NOT RUNNING while this node holds the VIP: ${problem}; a second holder would go unnoticed (keeping the VIP, retrying)`, { problem }, "warn");
      } else if (this.runningSince !== null) {
        this.outage.flaps++;
      }
      this.clearSettle();
      return;
    }
    if (this.outage === null) return;
    if (status.state === "running") {
      if (this.runningSince !== null) return;
      this.runningSince = this.clock.now();
      this.settleTimer = setTimeout(() => this.close("running"), this.settleMs);
      this.settleTimer.unref();
      return;
    }
    this.close("ended");
  }

  /**
   * The agent is stopping: an open outage is closed now, so the audit never shows a blind
   * holder without its end. Running again but not yet settled counts as running.
   */
  stop(): void {
    if (this.outage !== null) this.close(this.runningSince !== null ? "running" : "agent-stopped");
    this.clearSettle();
  }

  private close(how: "running" | "ended" | "agent-stopped"): void {
    const outage = this.outage;
    if (outage === null) return;
    const blindUntil = how === "running" && this.runningSince !== null ? this.runningSince : this.clock.now();
    const blindMs = Math.round(blindUntil - outage.since);
    this.clearSettle();
    this.outage = null;
    const flaps = outage.flaps > 0 ? `, after ${outage.flaps} more ${outage.flaps === 1 ? "failure" : "failures"}` : "";
    const fields = { blindMs, flaps: outage.flaps, problem: outage.problem };
    if (how === "running") this.record("duplicate-check.running", `duplicate-address check running again after ${formatDuration(blindMs)} not running${flaps} (it had failed: ${outage.problem})`, fields, "info");
    else if (how === "ended") this.record("duplicate-check.ended", `duplicate-address check no longer due: this node stopped holding the VIP after ${formatDuration(blindMs)} without it${flaps} (it had failed: ${outage.problem})`, fields, "info");
    else this.record("duplicate-check.ended", `duplicate-address check still not running when the agent stopped, after ${formatDuration(blindMs)}${flaps} (it had failed: ${outage.problem})`, { ...fields, agentStopped: true }, "info");
  }

  private clearSettle(): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.runningSince = null;
  }
}
