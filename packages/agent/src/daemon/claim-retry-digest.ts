/**
 * A standby that cannot hear its peer tries to claim the VIP about twice a second, and each try
 * is blocked while the old holder still answers ARP for it: a peer link cut by a firewall, the
 * two nodes holding different secrets, an agent of a protocol the other does not speak. Each
 * try is four election events (standby -> claiming, claim-started, claiming -> standby,
 * claim-blocked): 8 a second, which would fill the audit store's 1 GiB in days, push its
 * history out, and bury every other event in `mnha events`. The tries themselves stay (they
 * are how the standby takes over at once if the holder dies in the partition); their record
 * is digested here, in the agent's glue, so the election core is untouched:
 *
 * - the first blocked try is recorded in full, and so is one try a minute after it, each with
 *   a summary of the tries left out since (`election.claim-retries`);
 * - the tries in between that end the same way (the same address and MAC answering) are
 *   counted, not recorded;
 * - a try that ends any other way (the claim goes through, another MAC answers, the try is
 *   abandoned), and any other election event, ends the digest: the summary comes first, then
 *   the held events of that try with the times they happened, then the new event.
 */

/** One election event as the core emits it (type without the `election.` prefix). */
export interface ElectionEventRecord {
  type: string;
  message: string;
  fields: Record<string, unknown>;
  /** When it happened: wall-clock and monotonic milliseconds. */
  wallMs: number;
  monoMs: number;
}

/** A full try at least this often while tries keep being blocked the same way. */
export const CLAIM_RETRY_FULL_RECORD_MS = 60_000;

interface Streak {
  /** The blocked outcome, without the probe's timing: tries that end with it are counted. */
  key: string;
  detail: string;
  /** Tries counted, not recorded, since the last one recorded in full. */
  left: number;
  firstLeftWallMs: number | null;
  lastLeftWallMs: number | null;
  lastFullMonoMs: number;
}

const isTryStart = (e: ElectionEventRecord) => e.type === "role-changed" && e.fields["from"] === "standby" && e.fields["to"] === "claiming";
const isTryBlocked = (e: ElectionEventRecord) => e.type === "role-changed" && e.fields["from"] === "claiming" && e.fields["to"] === "standby" && e.fields["reason"] === "claim blocked by ARP guard";

/** "10.0.0.100 answered by 02:…:0b after 47 ms" without the probe's own timing. */
export function blockedOutcomeKey(detail: string): string {
  return detail.replace(/ after \d+(\.\d+)? ms/g, "").trim();
}

export class ClaimRetryDigest {
  private streak: Streak | null = null;
  /** The events of a try in progress that will be dropped if it ends blocked the same way (empty: no try held). */
  private held: ElectionEventRecord[] = [];

  constructor(private readonly fullRecordMs = CLAIM_RETRY_FULL_RECORD_MS) {}

  /** The events to record now, in order, for one event the core emitted (none: held or left out). */
  offer(event: ElectionEventRecord): ElectionEventRecord[] {
    if (this.held.length > 0) return this.continueHeldTry(event);
    const streak = this.streak;
    if (streak !== null && isTryStart(event) && event.monoMs - streak.lastFullMonoMs < this.fullRecordMs) {
      this.held = [event];
      return [];
    }
    if (streak !== null && isTryStart(event)) {
      // A minute since the last full try: this one is recorded in full, after the count of those left out.
      const out = this.summary(event);
      streak.lastFullMonoMs = event.monoMs;
      return [...out, event];
    }
    if (event.type === "claim-blocked") {
      const detail = typeof event.fields["detail"] === "string" ? event.fields["detail"] : "";
      const key = blockedOutcomeKey(detail);
      if (streak === null || streak.key !== key) {
        const out = streak === null ? [] : this.summary(event);
        this.streak = { key, detail, left: 0, firstLeftWallMs: null, lastLeftWallMs: null, lastFullMonoMs: event.monoMs };
        return [...out, event];
      }
      return [event];
    }
    // The rest of a try recorded in full.
    if (streak !== null && (event.type === "claim-started" || isTryBlocked(event))) return [event];
    // Any other election event: the digest ends.
    const out = streak === null ? [] : this.summary(event);
    this.streak = null;
    return [...out, event];
  }

  /** Tries left out and not yet said (for a summary at stop). */
  pendingSummary(now: { wallMs: number; monoMs: number }): ElectionEventRecord[] {
    if (this.streak === null) return [];
    const out = this.summary(now);
    return [...out, ...this.flushHeld()];
  }

  private continueHeldTry(event: ElectionEventRecord): ElectionEventRecord[] {
    const streak = this.streak as Streak;
    if (event.type === "claim-started" || isTryBlocked(event)) {
      this.held.push(event);
      return [];
    }
    if (event.type === "claim-blocked" && blockedOutcomeKey(typeof event.fields["detail"] === "string" ? event.fields["detail"] : "") === streak.key) {
      // Blocked the same way again: counted, not recorded.
      streak.left += 1;
      streak.firstLeftWallMs ??= this.held[0]?.wallMs ?? event.wallMs;
      streak.lastLeftWallMs = event.wallMs;
      this.held = [];
      return [];
    }
    // The try ended some other way: everything it did is recorded, with the times it happened.
    const out = [...this.summary(event), ...this.flushHeld()];
    this.streak = null;
    return [...out, ...this.offer(event)];
  }

  private flushHeld(): ElectionEventRecord[] {
    const held = this.held;
    this.held = [];
    return held;
  }

  private summary(at: { wallMs: number; monoMs: number }): ElectionEventRecord[] {
    const streak = this.streak;
    if (streak === null || streak.left === 0) return [];
    const first = new Date(streak.firstLeftWallMs ?? at.wallMs).toISOString();
    const last = new Date(streak.lastLeftWallMs ?? at.wallMs).toISOString();
    const event: ElectionEventRecord = {
      type: "claim-retries",
      message: `${streak.left} more claim ${streak.left === 1 ? "try" : "tries"} from ${first} to ${last} were blocked the same way (someone answers for the VIP: ${blockedOutcomeKey(streak.detail)}) and are not recorded one by one; the peer link is down while the holder still answers: see mnha status for why the link is down`,
      fields: { count: streak.left, first, last, detail: streak.detail },
      wallMs: at.wallMs,
      monoMs: at.monoMs,
    };
    streak.left = 0;
    streak.firstLeftWallMs = null;
    streak.lastLeftWallMs = null;
    return [event];
  }
}
