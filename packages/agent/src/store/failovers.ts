/**
 * Failovers derived from the replicated audit events of both nodes. Pure: the store worker
 * reads the events, this decides what they mean.
 *
 * A "take" is a node's `election.role-changed` to `holder` from a role that did not already
 * hold the VIP (a holder that abandons a handoff and stays holder is no change). Every change
 * of holder carries a higher epoch, so takes are ordered by epoch, not by the two nodes'
 * wall clocks; the wall clocks only bound the windows searched for causes and VIP timings.
 */
import type { FailoverRecord } from "../contracts.js";

/** The event types the derivation reads. */
export const FAILOVER_EVENT_TYPES = [
  "election.role-changed",
  "election.handoff-offered",
  "election.claim-started",
  "election.peer-lost",
  "vip.changed",
  "check.changed",
  "gateway.changed",
  "operator.demote",
  "agent.stopping",
] as const;

/** Causes are looked for at most this long before a take (and never before the previous take). */
export const CAUSE_LOOKBACK_MS = 120_000;
/** The VIP shows up on the new holder within this long of the take (or it is reported unknown). */
export const VIP_LOOKAHEAD_MS = 30_000;
/** The taker may see the VIP arrive a little before its role changes (a handoff opens its gate early). */
const VIP_EARLY_MS = 10_000;

/** Roles in which a node holds (or is still releasing) the VIP. */
const HOLDING_ROLES = new Set(["holder", "handing-off"]);

export interface AuditEvent {
  node: string;
  wallMs: number;
  type: string;
  message: string;
  fields: Record<string, unknown>;
}

export interface HolderTake {
  node: string;
  wallMs: number;
  epoch: number;
  reason: string;
}

/** The take this event records, or null when it records none. */
export function takeOf(event: AuditEvent): HolderTake | null {
  if (event.type !== "election.role-changed") return null;
  const { from, to, reason, epoch } = event.fields;
  if (to !== "holder" || (typeof from === "string" && HOLDING_ROLES.has(from))) return null;
  return {
    node: event.node,
    wallMs: event.wallMs,
    epoch: typeof epoch === "number" ? epoch : 0,
    reason: typeof reason === "string" && reason !== "" ? reason : event.message,
  };
}

/** Oldest first: by epoch, then (same epoch, which should not happen) by wall clock. */
export function compareTakes(a: HolderTake, b: HolderTake): number {
  return a.epoch - b.epoch || a.wallMs - b.wallMs;
}

/** The window of events `describeFailover` needs for `take`. */
export function failoverWindow(take: HolderTake, previous: HolderTake | null): { sinceMs: number; untilMs: number } {
  const lookback = take.wallMs - CAUSE_LOOKBACK_MS;
  return {
    sinceMs: previous ? Math.max(Math.min(previous.wallMs, take.wallMs), lookback) : lookback,
    untilMs: take.wallMs + VIP_LOOKAHEAD_MS,
  };
}

function leftHolding(event: AuditEvent): boolean {
  if (event.type !== "election.role-changed") return false;
  const { from, to } = event.fields;
  return typeof from === "string" && HOLDING_ROLES.has(from) && !(typeof to === "string" && HOLDING_ROLES.has(to));
}

function vipChange(event: AuditEvent, present: boolean): boolean {
  return event.type === "vip.changed" && event.fields["present"] === present;
}

/**
 * One failover: `take` with the take before it (null: the first one known) and the events of
 * both nodes in `failoverWindow(take, previous)`, in any order.
 */
export function describeFailover(take: HolderTake, previous: HolderTake | null, nearby: readonly AuditEvent[]): FailoverRecord {
  const events = [...nearby].sort((a, b) => a.wallMs - b.wallMs);
  const oldHolder = previous?.node ?? null;
  const floor = previous ? Math.min(previous.wallMs, take.wallMs) : -Infinity;

  // When the VIP answered again: the new holder saw it arrive.
  const arrivedAt = events.find((e) => e.node === take.node && vipChange(e, true) && e.wallMs >= Math.max(floor, take.wallMs - VIP_EARLY_MS) && e.wallMs <= take.wallMs + VIP_LOOKAHEAD_MS)?.wallMs ?? null;

  // When it stopped answering: the old holder's last loss of the VIP before that.
  let goneAt: number | null = null;
  if (oldHolder !== null) {
    // Up to the take at least: with skewed clocks the loss may seem to follow the arrival.
    const horizon = Math.max(arrivedAt ?? take.wallMs, take.wallMs);
    const before = events.filter((e) => e.node === oldHolder && e.wallMs >= floor && e.wallMs <= horizon);
    const vipGone = before.filter((e) => vipChange(e, false)).at(-1);
    const roleGone = before.filter(leftHolding).at(-1);
    goneAt = (vipGone ?? roleGone)?.wallMs ?? null;
  }
  const unansweredMs = arrivedAt !== null && goneAt !== null ? Math.max(0, arrivedAt - goneAt) : null;

  return { atMs: take.wallMs, from: oldHolder, to: take.node, epoch: take.epoch, cause: describeCause(take, oldHolder, events, floor), unansweredMs };
}

function describeCause(take: HolderTake, oldHolder: string | null, events: readonly AuditEvent[], floor: number): string {
  const before = events.filter((e) => e.wallMs >= Math.max(floor, take.wallMs - CAUSE_LOOKBACK_MS) && e.wallMs <= take.wallMs);
  const latest = (node: string | null, match: (e: AuditEvent) => boolean): AuditEvent | undefined => (node === null ? undefined : before.filter((e) => e.node === node && match(e)).at(-1));
  const details: string[] = [];
  const add = (detail: string | undefined): void => {
    if (detail && !details.includes(detail)) details.push(detail);
  };

  // Why the old holder let go, or why the taker thought it had to claim.
  const offer = latest(oldHolder, (e) => e.type === "election.handoff-offered");
  if (offer) add(`${offer.node} offered it: ${stringField(offer, "reason") ?? offer.message}`);
  const demote = latest(oldHolder, (e) => e.type === "operator.demote");
  if (demote) add(`operator demote on ${demote.node}`);
  const stopping = latest(oldHolder, (e) => e.type === "agent.stopping");
  if (stopping) add(`${stopping.node}: ${stopping.message}`);
  const check = latest(oldHolder, (e) => e.type === "check.changed" && e.fields["healthy"] === false);
  if (check) add(`${check.node}: ${check.message}`);
  const gateway = latest(oldHolder, (e) => e.type === "gateway.changed" && e.fields["reachable"] === false);
  if (gateway) add(`${gateway.node}: ${gateway.message}`);
  const lost = latest(take.node, (e) => e.type === "election.peer-lost");
  if (lost) add(`${lost.node}: ${lost.message}`);
  const claim = latest(take.node, (e) => e.type === "election.claim-started");
  if (claim && !lost) add(`${claim.node}: ${claim.message}`);

  return details.length === 0 ? take.reason : `${take.reason} (${details.join("; ")})`;
}

function stringField(event: AuditEvent, name: string): string | undefined {
  const value = event.fields[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}
