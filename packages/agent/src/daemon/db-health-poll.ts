/**
 * Polls the local database's health off the election's path (one poll at a time, each
 * bounded), keeps the last report for status and metrics, and hands the election a summary
 * when it changes.
 */
import type { DbSummary } from "../core/election.js";
import type { ErrantMark, ErrantWriteWatch, StandbyPeriod } from "../db/errant-watch.js";
import { DEAD_HEALTH } from "../db/mariadb.js";
import { replicaBroken } from "../db/replica-state.js";
import type { DatabaseHealth } from "../db/types.js";
import type { AgentDatabase } from "./components.js";
import { everyOnBeat, type BeatApi, type CancelBeat } from "../util/beat.js";

export interface DbHealthPollOptions {
  database: AgentDatabase;
  intervalMs: number;
  /** The agent's beat (util/beat.ts): a period that fits it rides it instead of waking the process on its own. */
  beat?: BeatApi;
  timeoutMs: number;
  onSummary: (summary: DbSummary) => void;
  /**
   * Puts right what a restarted server forgot (semi-sync: db/semi-sync-keeper.ts), awaited
   * before the summary goes out, so a holder's server is made writable again only after it.
   * Skipped while a seed is incomplete.
   */
  repair?: (health: DatabaseHealth) => Promise<unknown>;
  /** Every poll, changed or not, after `onSummary` (the host checks the server's mode against what it asked). */
  onEveryPoll?: (summary: DbSummary) => void;
  /** Errant transactions: writes in this node's own domain while it was a read-only standby. */
  errant?: { watch: ErrantWriteWatch; standbyPeriod: () => StandbyPeriod | null; onFound: (mark: ErrantMark) => void };
}

export function summarizeDbHealth(health: DatabaseHealth, seedIncomplete: boolean, errant: string | null = null): DbSummary {
  return {
    errant,
    alive: health.alive,
    readOnly: health.readOnly,
    broken: replicaBroken(health),
    seedIncomplete,
    lagSeconds: health.secondsBehindMaster,
    gtidBinlogPos: health.gtidBinlogPos,
    gtidCurrentPos: health.gtidCurrentPos,
    semiSyncMasterActive: health.semiSync === null ? null : health.semiSync.masterActive,
    slaveIoRunning: health.slaveIoRunning,
    slaveSqlRunning: health.slaveSqlRunning,
    lastIoError: health.lastIoError,
    lastSqlError: health.lastSqlError,
  };
}

export class DbHealthPoll {
  private stopTimer: CancelBeat | null = null;
  private polling = false;
  private lastSummaryText: string | null = null;
  /** The last report (null: not polled yet). */
  last: DatabaseHealth | null = null;
  lastSeedIncomplete = false;
  /** The standing errant-transactions finding (null: none). */
  lastErrant: ErrantMark | null = null;

  constructor(private readonly options: DbHealthPollOptions) {}

  async start(): Promise<void> {
    await this.poll();
    this.stopTimer = everyOnBeat(this.options.beat, this.options.intervalMs, () => void this.poll());
  }

  async stop(): Promise<void> {
    this.stopTimer?.();
    this.stopTimer = null;
    await this.options.database.close();
  }

  /** One poll (skipped while the previous one is still running). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const { database, timeoutMs } = this.options;
      let timer: NodeJS.Timeout | undefined;
      // Aborted at the timeout: a database that keeps its connection across polls drops it.
      const gaveUp = new AbortController();
      const timedOut = new Promise<DatabaseHealth>((resolve) => {
        timer = setTimeout(() => {
          gaveUp.abort();
          resolve({ ...DEAD_HEALTH, error: `no answer within ${timeoutMs} ms` });
        }, timeoutMs);
      });
      const health = await Promise.race([database.health(gaveUp.signal), timedOut]);
      clearTimeout(timer);
      this.last = health;
      this.lastSeedIncomplete = database.seedIncomplete();
      const errant = this.options.errant;
      if (errant) {
        const seen = errant.watch.observe(health, errant.standbyPeriod(), this.lastSeedIncomplete);
        this.lastErrant = seen.mark;
        if (seen.found && seen.mark) errant.onFound(seen.mark);
      }
      // Not during a seed (its marker is written before it stops the replica): it sets up replication itself.
      if (this.options.repair && !this.lastSeedIncomplete) await this.options.repair(health);
      const summary = summarizeDbHealth(health, this.lastSeedIncomplete, this.lastErrant?.description ?? null);
      const text = JSON.stringify(summary);
      if (text !== this.lastSummaryText) {
        this.lastSummaryText = text;
        this.options.onSummary(summary);
      }
      this.options.onEveryPoll?.(summary);
    } finally {
      this.polling = false;
    }
  }
}
