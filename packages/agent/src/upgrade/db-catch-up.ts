/**
 * upgrade-mn's wait for an upgraded standby's database: its replica threads run and it has
 * applied everything the holder had written when last asked (lag 0, by GTID), before the
 * VIP may move to it. Progress names the remaining lag; the wait is bounded and its error
 * says how far behind the standby stayed and why.
 */
import { MnhaError } from "@mnha/shared";
import { formatGtidPosition, parseGtidPosition, transactionsBehind, type GtidPosition } from "../db/gtid.js";
import { replicaBroken } from "../db/replica-state.js";
import type { DatabaseHealth } from "../db/types.js";

export interface CatchUpDatabase {
  health(): Promise<DatabaseHealth>;
  gtidBinlogPos(): Promise<GtidPosition>;
}

export interface CatchUpOptions {
  standbyName: string;
  standby: CatchUpDatabase;
  holderName: string;
  holder: CatchUpDatabase;
  timeoutMs: number;
  onProgress: (text: string) => void;
  /** Monotonic ms and a sleep (tests pass fakes). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  pollMs?: number;
  /** A progress line at most this often while the state stays the same. */
  progressEveryMs?: number;
}

export async function waitDatabaseCaughtUp(o: CatchUpOptions): Promise<string> {
  const now = o.now ?? (() => performance.now());
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = now() + o.timeoutMs;
  let last = "not asked yet";
  let reported = "";
  let reportedAt = -Infinity;
  for (let attempt = 0; ; attempt++) {
    const state = await lagOnce(o);
    if (state.caughtUp) return state.text;
    last = state.text;
    if (last !== reported || now() - reportedAt >= (o.progressEveryMs ?? 5_000)) {
      o.onProgress(`${o.standbyName}'s database: ${last}`);
      reported = last;
      reportedAt = now();
    }
    if (now() >= deadline || attempt > 1_000_000) break;
    await sleep(o.pollMs ?? 500);
  }
  throw new MnhaError("DB_TIMEOUT", `${o.standbyName}'s database did not catch up with ${o.holderName} within ${Math.round(o.timeoutMs / 1000)} s (${last}); the VIP stays on ${o.holderName}`, {
    hint: `see \`mnha db status\` on ${o.standbyName} (a replica stopped on an error needs \`mnha db resync\` there); then run the same command again: it resumes at this wait`,
  });
}

async function lagOnce(o: CatchUpOptions): Promise<{ caughtUp: boolean; text: string }> {
  let health: DatabaseHealth;
  let target: GtidPosition;
  try {
    health = await o.standby.health();
    if (!health.alive) return { caughtUp: false, text: `MariaDB does not answer${health.error ? ` (${health.error})` : ""}` };
    const broken = replicaBroken(health);
    if (broken !== null) return { caughtUp: false, text: `replication not running: ${broken}` };
    target = await o.holder.gtidBinlogPos();
  } catch (error) {
    return { caughtUp: false, text: `cannot be asked: ${error instanceof Error ? error.message : String(error)}` };
  }
  const behind = transactionsBehind(parseGtidPosition(health.gtidCurrentPos), target);
  if (behind === 0n) return { caughtUp: true, text: `${o.standbyName}'s database caught up with ${o.holderName}: replication running, lag 0 (GTID ${formatGtidPosition(target) || "empty"})` };
  const seconds = health.secondsBehindMaster === null ? "" : `, ${health.secondsBehindMaster} s behind`;
  return { caughtUp: false, text: `${behind} transaction(s) behind ${o.holderName}${seconds}` };
}
