/**
 * Whether this node's database has caught up with the peer's, from what `status` reports of
 * both (the peer's as its last heartbeat said). `start-node` waits for it before the node
 * may hold the VIP again, and shows the remaining lag meanwhile. Pure.
 */
import type { DbNodeStatus } from "../contracts.js";
import { parseGtidPosition, transactionsBehind } from "./gtid.js";

export interface CatchUpState {
  caughtUp: boolean;
  /** What stands in the way (or what was reached), for the operator. */
  detail: string;
  lagSeconds: number | null;
  /** Transactions of the peer's binary log not applied here yet (null: unknown). */
  transactionsBehind: number | null;
}

/**
 * Caught up: the replica runs (IO and SQL threads), reports no lag, and this server has
 * applied every transaction of the peer's last reported gtid_binlog_pos.
 */
export function catchUpWithPeer(local: DbNodeStatus | null, peer: DbNodeStatus | null, peerName: string): CatchUpState {
  const unknown = (detail: string): CatchUpState => ({ caughtUp: false, detail, lagSeconds: local?.secondsBehindMaster ?? null, transactionsBehind: null });
  if (local === null) return unknown("the local database has not been polled yet");
  if (!local.alive) return unknown(`the local MariaDB is down${local.error ? `: ${local.error}` : ""}`);
  if (local.seedIncomplete) return unknown("the local database seed is incomplete (run `mnha db seed` again)");
  if (local.broken !== null) return unknown(`replication from ${peerName} is not running: ${local.broken}`);
  if (peer === null || !peer.alive) return unknown(`${peerName}'s position is not known yet`);
  // A live server that has binary-logged nothing yet (a fresh install) has an empty
  // gtid_binlog_pos, which the health report carries as null: there is nothing to catch up
  // with. (Reading it as "not known yet" kept start-node waiting on such a pair forever.)
  const peerPosition = peer.gtidBinlogPos ?? "";
  let behind: number;
  try {
    behind = Number(transactionsBehind(parseGtidPosition(local.gtidCurrentPos), parseGtidPosition(peerPosition)));
  } catch (error) {
    return unknown(error instanceof Error ? error.message : String(error));
  }
  const lag = local.secondsBehindMaster;
  if (behind === 0 && lag === 0) return { caughtUp: true, detail: `caught up with ${peerName} (at ${local.gtidCurrentPos || "(empty)"})`, lagSeconds: 0, transactionsBehind: 0 };
  const parts = [lag === null ? "lag unknown" : `${lag} s behind`, `${behind} transactions to apply (here ${local.gtidCurrentPos || "(empty)"}, ${peerName} ${peerPosition || "(empty)"})`];
  return { caughtUp: false, detail: `catching up with ${peerName}: ${parts.join(", ")}`, lagSeconds: lag, transactionsBehind: behind };
}
