/**
 * A replica that a server restart left stopped is started again. A MariaDB restarted with
 * skip-slave-start (often set in my.cnf) comes back with both replica threads stopped and no
 * error, and stays so: its node then reads nothing from the peer, falls behind, and is never
 * eligible to take over (docs/database.md, catch-up-aware eligibility), until someone types
 * START SLAVE. The agent's own restore (restarting a failed server) ends the same way.
 * db.replication.startAfterRestart false leaves that to a person too (said once).
 *
 * Like the semi-sync keeper, it gives back what a restart undid and never undoes what someone
 * did on a running server: a replica seen running, then stopped with no restart in between
 * (the server's Uptime says: db/server-run.ts) was stopped by hand (STOP SLAVE). That is left
 * stopped and said once; maintenance mode is the way to keep the agent's hands off while a DBA
 * works. A replica stopped on an error is never restarted here: the error is the DBA's to read
 * (db status shows it; setup-replication or resync repairs it). A stop must be seen on two
 * polls in a row before anything is done or said, so a command's own STOP SLAVE ... START SLAVE
 * (setup-replication) passes unnoticed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "@mnha/shared";
import { replicaStoppedCleanly } from "./replica-state.js";
import { RetryPause } from "../util/retry-pause.js";
import { bounded } from "./role-switch.js";
import { MIN_RUN_SECONDS_TO_JUDGE, RETRY_AFTER_FAILURE_MS, RunMark, serverRunOf, type RestartKeeperOptions, type ServerRun, type ServerRunMemory } from "./server-run.js";
import type { Database, DatabaseHealth } from "./types.js";

/** What a look at the replica did: started it, left it (stopped by hand), or nothing to do. */
export type ReplicaKeeperOutcome = "started" | "left-stopped" | null;

export const REPLICA_RUN_FILE_NAME = "db.replica-run";

/**
 * The run in which the replica last ran, in a small JSON file in the data dir (0600, written
 * atomically, at most twice per server run): at its first look, an agent restarted by hand (a
 * config change) tells a replica a DBA stopped on the running server from one a restart left
 * stopped, as it does later on.
 */
export function replicaRunFile(dataDir: string): ServerRunMemory {
  const path = join(dataDir, REPLICA_RUN_FILE_NAME);
  return {
    load() {
      try {
        const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<ServerRun>;
        const { startedAt, uptimeSeconds } = parsed;
        // Unreadable or edited by hand: no memory, as on a new node (a stopped replica is started).
        return Number.isFinite(startedAt) && Number.isFinite(uptimeSeconds) ? { startedAt: startedAt as number, uptimeSeconds: uptimeSeconds as number } : null;
      } catch {
        return null;
      }
    },
    save(run) {
      writeFileAtomicSync(path, `${JSON.stringify(run)}\n`);
    },
  };
}

/** A failed start, or a start after which the replica was never seen running, waits `retryAfterFailureMs` before the next. */
export interface ReplicaKeeperOptions extends RestartKeeperOptions {
  target: Pick<Database, "startReplica">;
  /** db.replication.startAfterRestart: false leaves every stopped replica for a person (said once). */
  startAfterRestart: boolean;
  /** Where the run last seen running is kept across agent restarts (replicaRunFile; absent: memory only). */
  memory?: ServerRunMemory;
}

export class ReplicaKeeper {
  /** The server run in which the replica was last seen running. */
  private readonly running: RunMark;
  private stoppedLooks = 0;
  private readonly failures: RetryPause;
  /** From a START SLAVE that succeeded until the replica is seen running: one that never does is not started every other poll. */
  private readonly unconfirmedStart: RetryPause;

  constructor(private readonly options: ReplicaKeeperOptions) {
    const pauseMs = options.retryAfterFailureMs ?? RETRY_AFTER_FAILURE_MS;
    this.failures = new RetryPause(pauseMs);
    this.unconfirmedStart = new RetryPause(pauseMs);
    this.running = new RunMark(options.minRunSecondsToJudge ?? MIN_RUN_SECONDS_TO_JUDGE, options.memory);
  }

  /** One poll's look; resolves once any start is done or has failed (never rejects). */
  async keep(health: DatabaseHealth): Promise<ReplicaKeeperOutcome> {
    const { target, boundMs, now, record } = this.options;
    const run = serverRunOf(health, this.options.wallNow());
    if (!replicaStoppedCleanly(health)) {
      this.stoppedLooks = 0;
      this.failures.clear();
      // Running, or on its way (Connecting): a later clean stop in this run is someone's doing,
      // and a start that took is not held against the next restart.
      if (health.alive && health.replicaConfigured && (health.slaveIoRunning !== "No" || health.slaveSqlRunning !== "No")) {
        this.unconfirmedStart.clear();
        this.running.saw(run);
      }
      return null;
    }
    this.stoppedLooks += 1;
    if (this.stoppedLooks < 2) return null;
    const byHand = this.running.sameRun(run);
    if (byHand || !this.options.startAfterRestart) {
      if (this.running.tellOnce()) {
        const why = byHand
          ? "was stopped on the running server with no error (no restart since it ran: STOP SLAVE by hand?)"
          : "is stopped with no error (a restart with skip-slave-start?) and db.replication.startAfterRestart is false";
        record(
          "db.replica-left-stopped",
          `the replica ${why}: left stopped. This node reads nothing from its peer meanwhile and is not eligible to take over from a live holder; run START SLAVE to resume${byHand ? ", or use mnha maintenance on while working on the database" : ""}`,
          { uptimeSeconds: health.uptimeSeconds, byHand },
          "warn",
        );
      }
      return "left-stopped";
    }
    if (this.failures.active(now()) || this.unconfirmedStart.active(now())) return null;
    const firstLook = this.running.empty;
    try {
      await bounded(target.startReplica(), boundMs, "starting the replica");
    } catch (error) {
      if (this.failures.begin(now())) {
        record(
          "db.replica-start-failed",
          `the replica is stopped (no error; restarted with skip-slave-start?) and starting it failed: ${error instanceof Error ? error.message : String(error)}; this node is not eligible to take over until it runs (retried every ${Math.round(this.failures.pauseMs / 1000)} s; or run START SLAVE)`,
          { error: String(error) },
          "warn",
        );
      }
      return null;
    }
    this.failures.clear();
    // Not "seen running" yet: only a look at it running says so. A replica that stays stopped
    // after this start is then started again after the pause, never taken for a hand's STOP SLAVE.
    this.unconfirmedStart.begin(now());
    this.stoppedLooks = 0;
    record(
      "db.replica-started",
      `the replica was stopped with no error (${firstLook ? "found so at this agent's first look" : "the server restarted"}: skip-slave-start in my.cnf?): started it (START SLAVE), so this node reads from its peer again and can become eligible to take over`,
      { uptimeSeconds: health.uptimeSeconds, firstLook },
      "warn",
    );
    return "started";
  }
}
