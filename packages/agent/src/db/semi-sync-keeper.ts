/**
 * Semi-sync is set with SET GLOBAL, which a MariaDB restart forgets (unless my.cnf has it). A
 * restarted server then commits asynchronously, and a holder that crashes next can take
 * acknowledged rows with it, while the replica it feeds no longer acknowledges the peer's
 * commits either. The keeper turns semi-sync back on as soon as the health poll sees it
 * forgotten, and restarts the replica's IO thread, since a replica registers as a semi-sync
 * one only when it connects. It never turns semi-sync off, and leaves alone a server without a
 * replica (replication not set up yet: `mnha db setup-replication` does it then).
 *
 * It restores what a restart undid, never what someone did on a running server: semi-sync
 * seen on, then off with no restart in between (the server's Uptime says), was turned off by
 * hand or by `setup-replication` with db.semiSync.enabled false while this agent still runs
 * with true. That is left off and said once.
 */
import { RetryPause } from "../util/retry-pause.js";
import { bounded } from "./role-switch.js";
import { MIN_RUN_SECONDS_TO_JUDGE, RETRY_AFTER_FAILURE_MS, RunMark, serverRunOf, type RestartKeeperOptions } from "./server-run.js";
import type { Database, DatabaseHealth } from "./types.js";

/** What a server forgot: the master side, the replica side, and whether its IO thread must reconnect. */
export interface SemiSyncRepair {
  master: boolean;
  replica: boolean;
  restartIo: boolean;
}

/** What to put right, or null: nothing forgotten, semi-sync not wanted, or nothing to judge by. */
export function semiSyncRepair(health: DatabaseHealth, wanted: boolean): SemiSyncRepair | null {
  if (!wanted || !health.alive || health.semiSync === null || !health.replicaConfigured) return null;
  const master = !health.semiSync.masterEnabled;
  const replica = !health.semiSync.slaveEnabled;
  if (!master && !replica) return null;
  // A thread still connecting picks the setting up when it connects; only a connected one must reconnect.
  return { master, replica, restartIo: replica && health.slaveIoRunning === "Yes" };
}

export interface SemiSyncKeeperOptions extends RestartKeeperOptions {
  settings: { enabled: boolean; timeoutMs: number };
  target: Pick<Database, "configureSemiSync" | "restartReplicaIo">;
}

export class SemiSyncKeeper {
  private readonly failures: RetryPause;
  /** The server run in which semi-sync was last seen on (or turned on). */
  private readonly on: RunMark;

  constructor(private readonly options: SemiSyncKeeperOptions) {
    this.failures = new RetryPause(options.retryAfterFailureMs ?? RETRY_AFTER_FAILURE_MS);
    this.on = new RunMark(options.minRunSecondsToJudge ?? MIN_RUN_SECONDS_TO_JUDGE);
  }

  /** One poll's look; resolves once any repair is done or has failed (never rejects). */
  async keep(health: DatabaseHealth): Promise<SemiSyncRepair | null> {
    const { settings, target, boundMs, now, record } = this.options;
    const run = serverRunOf(health, this.options.wallNow());
    const repair = semiSyncRepair(health, settings.enabled);
    if (repair === null) {
      this.failures.clear();
      if (health.semiSync?.masterEnabled && health.semiSync.slaveEnabled) this.on.saw(run);
      return null;
    }
    if (this.on.sameRun(run)) {
      if (this.on.tellOnce()) {
        record(
          "db.semi-sync-left-off",
          `semi-sync was turned off on the running server (no restart since it was on: by hand, or by mnha db setup-replication with db.semiSync.enabled false): left off, commits are asynchronous. This agent still runs with db.semiSync.enabled true: restart it (systemctl restart mnha) after changing the setting, or turn semi-sync on again with mnha db setup-replication`,
          { ...repair, uptimeSeconds: health.uptimeSeconds },
          "warn",
        );
      }
      return null;
    }
    if (this.failures.active(now())) return null;
    const forgotten = [repair.master ? "master" : null, repair.replica ? "replica" : null].filter((s) => s !== null).join(" and ");
    const fields = { ...repair, timeoutMs: settings.timeoutMs };
    try {
      await bounded(target.configureSemiSync({ enabled: true, timeoutMs: settings.timeoutMs }), boundMs, "turning semi-sync back on");
      if (repair.restartIo) await bounded(target.restartReplicaIo(), boundMs, "restarting the replica's IO thread");
    } catch (error) {
      if (this.failures.begin(now())) {
        record("db.semi-sync-failed", `MariaDB has semi-sync off on the ${forgotten} side (restarted without it in my.cnf?) and turning it back on failed: ${error instanceof Error ? error.message : String(error)}; commits are asynchronous until it is on (retried every ${Math.round(this.failures.pauseMs / 1000)} s; or add the rpl_semi_sync_* lines of docs/database.md to my.cnf)`, { ...fields, error: String(error) }, "warn");
      }
      return null;
    }
    this.failures.clear();
    const seenOnBefore = !this.on.empty;
    this.on.saw(run);
    record(
      "db.semi-sync-restored",
      `MariaDB had semi-sync off on the ${forgotten} side (${seenOnBefore ? "the server restarted: a restart forgets SET GLOBAL" : "found so at this agent's first look; a restart forgets SET GLOBAL"}): turned it back on (AFTER_SYNC, ${settings.timeoutMs} ms)${repair.restartIo ? " and restarted the replica's IO thread so the peer waits for it again" : ""}; add the rpl_semi_sync_* lines of docs/database.md to my.cnf to keep it across restarts`,
      fields,
      "warn",
    );
    return repair;
  }
}
