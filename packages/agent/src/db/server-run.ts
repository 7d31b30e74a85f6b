/**
 * Which run of the MariaDB server a health report comes from. A restart forgets what was set
 * on the running server (SET GLOBAL, START SLAVE); the keepers give back what a restart undid
 * and leave alone what someone did on a running server, and this tells the two apart by the
 * server's Uptime. Pure (a RunMark's memory is given to it).
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

/** Defaults of RestartKeeperOptions. */
export const MIN_RUN_SECONDS_TO_JUDGE = 10;
export const RETRY_AFTER_FAILURE_MS = 30_000;

/** Where a RunMark is kept across agent restarts (the replica keeper's: a file in the data dir). */
export interface ServerRunMemory {
  load(): ServerRun | null;
  save(run: ServerRun): void;
}

/**
 * The server run in which a keeper last saw what it keeps (semi-sync on, the replica
 * running): a change within that run is someone's doing, to be left alone and said once; a
 * change in another run is a restart's, to be given back. With a memory, it survives an
 * agent restart, written only when the run changes (or first passes the judging age).
 */
export class RunMark {
  private last: ServerRun | null;
  private saved: ServerRun | null;
  private told = false;

  constructor(
    private readonly minRunSecondsToJudge: number,
    private readonly memory?: ServerRunMemory,
  ) {
    this.saved = memory?.load() ?? null;
    this.last = this.saved;
  }

  /** Nothing seen yet: this agent's first look, with no memory of an earlier one. */
  get empty(): boolean {
    return this.last === null;
  }

  /** Seen in `run`: a later change in it is someone's doing (and may be said again). */
  saw(run: ServerRun | null): void {
    this.last = run;
    this.told = false;
    if (this.memory === undefined || run === null) return;
    const saved = this.saved;
    if (saved !== null && sameServerRun(saved, run, 0) && !(saved.uptimeSeconds < this.minRunSecondsToJudge && run.uptimeSeconds >= this.minRunSecondsToJudge)) return;
    try {
      this.memory.save(run);
      this.saved = run;
    } catch {
      // A data dir that cannot be written is said at start and in status (READ-ONLY); the mark
      // goes on in memory, and a restarted agent judges its first look as a new one.
    }
  }

  /** Whether `run` is the one last seen in (no restart since). */
  sameRun(run: ServerRun | null): boolean {
    return sameServerRun(this.last, run, this.minRunSecondsToJudge);
  }

  /** True the first time it is asked after each sighting: "left alone" is said once. */
  tellOnce(): boolean {
    if (this.told) return false;
    this.told = true;
    return true;
  }
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
