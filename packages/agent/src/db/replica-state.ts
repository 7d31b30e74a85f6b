/**
 * Facts about a replica the election will need, derived from health reports. Pure.
 */
import { findGtidDivergence, gtidReached, parseGtidPosition, type GtidDivergence } from "./gtid.js";
import type { DatabaseHealth } from "./types.js";

/** The replica's threads run, it reports no lag, and it has applied everything it has read. */
export function replicaCaughtUp(h: DatabaseHealth): boolean {
  return (
    h.slaveIoRunning === "Yes" &&
    h.slaveSqlRunning === "Yes" &&
    h.secondsBehindMaster === 0 &&
    h.gtidIoPos !== null &&
    gtidReached(parseGtidPosition(h.gtidCurrentPos), parseGtidPosition(h.gtidIoPos))
  );
}

/** Both replica threads stopped, no error on either, on a live server with a replica configured: STOP SLAVE, or a restart with skip-slave-start. */
export function replicaStoppedCleanly(h: DatabaseHealth): boolean {
  return h.alive && h.replicaConfigured && h.slaveIoRunning === "No" && h.slaveSqlRunning === "No" && h.lastIoError === null && h.lastSqlError === null;
}

/** Why the replica is broken (a thread stopped, an error), null when it runs. */
export function replicaBroken(h: DatabaseHealth): string | null {
  if (!h.alive) return `MariaDB down${h.error === null ? "" : `: ${h.error}`}`;
  if (!h.replicaConfigured) return "no replica configured";
  if (h.lastSqlError !== null) return `SQL thread error: ${h.lastSqlError}`;
  // Said as what it is, with the fix: "Slave_SQL_Running No" sends a reader looking for an error there is none of.
  if (replicaStoppedCleanly(h)) return "both replica threads stopped with no error (STOP SLAVE, or a restart with skip-slave-start): START SLAVE resumes replication";
  if (h.slaveSqlRunning !== "Yes") return `Slave_SQL_Running ${h.slaveSqlRunning ?? "unknown"}`;
  if (h.lastIoError !== null && h.slaveIoRunning !== "Yes") return `IO thread error: ${h.lastIoError}`;
  if (h.slaveIoRunning !== "Yes") return `Slave_IO_Running ${h.slaveIoRunning ?? "unknown"}`;
  return null;
}

/** Errant transactions between two nodes' health reports (none when either is down). */
export function divergenceBetween(a: { node: string; health: DatabaseHealth }, b: { node: string; health: DatabaseHealth }): GtidDivergence[] {
  if (!a.health.alive || !b.health.alive || a.health.gtidDomainId === null || b.health.gtidDomainId === null) return [];
  const view = (n: { node: string; health: DatabaseHealth }) => ({
    node: n.node,
    domainId: n.health.gtidDomainId as number,
    current: parseGtidPosition(n.health.gtidCurrentPos),
    replicaCaughtUp: replicaCaughtUp(n.health),
  });
  return findGtidDivergence(view(a), view(b));
}
