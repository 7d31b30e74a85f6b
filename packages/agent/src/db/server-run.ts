/**
 * Which run of the MariaDB server a health report comes from. A restart forgets what was set
 * on the running server (SET GLOBAL, START SLAVE); the keepers give back what a restart undid
 * and leave alone what someone did on a running server, and this tells the two apart by the
 * server's Uptime. Pure.
 */
import type { DatabaseHealth } from "./types.js";

/**
 * One server run: when it started, on the wall clock, and its Uptime when seen. MariaDB counts
 * Uptime on the wall clock (the query's start time minus the server's), so a step of the wall
 * clock (NTP after a VM pause) moves it and `wallNow` alike and the estimated start stays put;
 * on a monotonic axis it would jump, and a running server would look restarted.
 */
export interface ServerRun {
  startedAt: number;
  uptimeSeconds: number;
}

/** Uptime is whole seconds and read at poll time: two estimates of one start may differ by this much. */
const SAME_START_TOLERANCE_MS = 2_500;

/** The run a report comes from (null: a dead server, or no Uptime to judge by). `wallNow`: Date.now() when the report was read. */
export function serverRunOf(health: DatabaseHealth, wallNow: number): ServerRun | null {
  if (!health.alive || health.uptimeSeconds === null) return null;
  return { startedAt: wallNow - health.uptimeSeconds * 1000, uptimeSeconds: health.uptimeSeconds };
}

/**
 * Whether the server has kept running since `earlier`: its Uptime went on growing and its
 * start did not move. Any doubt counts as a restart (no run to compare, or `earlier` seen in
 * the run's first `minRunSecondsToJudge` seconds, when a server restarted within seconds of
 * its start would look like one that kept running): what a restart undid is then given back
 * rather than wrongly left alone.
 */
export function sameServerRun(earlier: ServerRun | null, current: ServerRun | null, minRunSecondsToJudge: number): boolean {
  if (earlier === null || current === null) return false;
  if (earlier.uptimeSeconds < minRunSecondsToJudge) return false;
  return current.uptimeSeconds >= earlier.uptimeSeconds && Math.abs(current.startedAt - earlier.startedAt) <= SAME_START_TOLERANCE_MS;
}

/** What both keepers of a restarted server's settings (semi-sync, the replica) are given. */
export interface RestartKeeperOptions {
  /** Bound on each statement group (the poll waits for it before the host reconciles the server's mode). */
  boundMs: number;
  /** After a failed repair, the next attempt waits this long (a server that refuses is not asked every second). Default 30 s. */
  retryAfterFailureMs?: number;
  /**
   * A run seen only younger than this is never judged "the same run": a server restarted
   * within seconds of its start would look like one that kept running, and what the restart
   * undid would be wrongly left alone. Default 10 s.
   */
  minRunSecondsToJudge?: number;
  /** Monotonic milliseconds: the retry pauses. */
  now: () => number;
  /** Wall-clock milliseconds (Date.now()): server runs are judged on the wall clock, as MariaDB counts Uptime. */
  wallNow: () => number;
  record: (type: string, message: string, fields: Record<string, unknown>, level: "info" | "warn") => void;
}
