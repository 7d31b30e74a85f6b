/**
 * The `mariadb` check: a real query over the local socket. Healthy means the server answers;
 * the replication state goes in the detail (whether a lagging or broken replica may take
 * over is the election's decision, not this check's).
 */
import type { CheckConfig } from "@mnha/shared";
import type { Connection } from "mariadb";
import { KeptHealthReader } from "../db/kept-health.js";
import { MariaDbDatabase, isAccessRefused, sqlErrorText } from "../db/mariadb.js";
import { readPasswordFile } from "../db/secret-file.js";
import type { DatabaseHealth } from "../db/types.js";

type MariaDbCheck = Extract<CheckConfig, { kind: "mariadb" }>;

/**
 * How often a probe reads the full health (replica threads, lag, errors, semi-sync: three
 * statements) for the detail line; the probes in between run one cheap statement and reuse
 * it (issue 12: the full read every 200 ms was much of an idle agent's CPU).
 */
export const FULL_HEALTH_REFRESH_MS = 1_000;

/**
 * One kept connection per check target (socket, user), with the rules of db/kept-health.ts:
 * the check runs every 200 ms by default, and a new connection each time (login, handshake,
 * SET) was a large part of an idle agent's CPU (issue 12).
 */
interface CheckTarget {
  reader: KeptHealthReader;
  /** The adapter of the current connection (made with the password read at its connect). */
  db: MariaDbDatabase | null;
  /**
   * This probe's refusal, in its own words rather than "MariaDB down": the password file
   * unreadable (the connect could not even try), or the server up and refusing the check's user
   * (login or statement). Set during a probe, cleared at the start of the next.
   */
  refusal: { detail: string; passwordFile: boolean } | null;
  /** The last full health read on the current connection, for the detail line, and when. */
  full: DatabaseHealth | null;
  fullAtMs: number;
}

const targets = new Map<string, CheckTarget>();

/**
 * Probes the local server over the target's kept connection: one statement proves it answers
 * now. Connect and statement timeouts (the check's timeout) bound a probe that runCheck has
 * already given up on; an abort drops its connection.
 */
export async function probeMariaDb(check: MariaDbCheck, signal?: AbortSignal): Promise<{ ok: boolean; detail: string; notRestorable?: string }> {
  const key = JSON.stringify([check.socket, check.user]);
  let target = targets.get(key);
  if (target === undefined) {
    target = checkTarget(check);
    targets.set(key, target);
  }
  target.refusal = null;
  const health = await target.reader.health(signal);
  if (health.alive) return { ok: true, detail: describeHealth(health) };
  // Set by the probe just awaited (TypeScript still sees the null assigned before it).
  const refusal = (target as CheckTarget).refusal;
  if (refusal !== null) return { ok: false, detail: refusal.detail, notRestorable: notRestorableReason(check, refusal.passwordFile) };
  return { ok: false, detail: describeHealth(health) };
}

/** What status and the audit say when a restore is not tried for a refused check, with the fix. */
function notRestorableReason(check: MariaDbCheck, passwordFileProblem: boolean): string {
  const file = check.passwordFile === undefined ? "the check's passwordFile" : check.passwordFile;
  if (passwordFileProblem) return `restarting MariaDB cannot fix an unreadable password file: put the password of ${check.user} in ${file} (mode 0600); the check reads it at its next try`;
  return `MariaDB answers but refuses the check's user ${check.user}, and restarting it cannot change that: put ${check.user}'s password in ${file}, or unlock or grant the user in MariaDB; the check logs in again at its next try`;
}

function checkTarget(check: MariaDbCheck): CheckTarget {
  const target: CheckTarget = {
    db: null,
    refusal: null,
    full: null,
    fullAtMs: 0,
    reader: new KeptHealthReader({
      label: "local",
      connect: () => {
        // The password is read only when a connection is opened (first probe, reconnect, after
        // a refused login): a kept connection needs none. A changed password takes effect at
        // the next reconnect.
        let password: string | null = null;
        try {
          if (check.passwordFile !== undefined) password = readPasswordFile(check.passwordFile, "MariaDB password");
        } catch (error) {
          target.refusal = { detail: (error as Error).message, passwordFile: true };
          throw error;
        }
        target.db = new MariaDbDatabase({ target: { socket: check.socket }, user: check.user, password, connectTimeoutMs: check.timeoutMs, queryTimeoutMs: check.timeoutMs, label: "local" });
        return target.db.connect().catch((error: unknown) => {
          if (isAccessRefused(error)) target.refusal = { detail: (error as Error).message, passwordFile: false };
          throw error;
        });
      },
      read: (connection, fresh) =>
        readProbeHealth(target, target.db as MariaDbDatabase, connection, fresh).catch((error: unknown) => {
          if (isAccessRefused(error)) target.refusal = { detail: `MariaDB on local refused a statement of the check: ${sqlErrorText(error)}`, passwordFile: false };
          throw error;
        }),
    }),
  };
  return target;
}

/**
 * One statement on the kept connection proves the server answers now; the full health is
 * read again at most every FULL_HEALTH_REFRESH_MS (and on a fresh connection) and otherwise
 * reused for the detail, with read-only always from this probe.
 */
async function readProbeHealth(target: CheckTarget, db: MariaDbDatabase, connection: Connection, fresh: boolean): Promise<DatabaseHealth> {
  const now = performance.now();
  if (fresh || target.full === null || now - target.fullAtMs >= FULL_HEALTH_REFRESH_MS) {
    const full = await db.readHealth(connection);
    target.full = full;
    target.fullAtMs = now;
    return full;
  }
  const readOnly = await db.readReadOnly(connection);
  return { ...target.full, readOnly };
}

/** Closes the kept connections (the service monitor stopping). */
export async function closeMariaDbProbes(): Promise<void> {
  const all = [...targets.values()];
  targets.clear();
  await Promise.all(all.map((target) => target.reader.close()));
}

/** One line: alive or why not, read-only, then the replica's threads, lag and last error. */
export function describeHealth(h: DatabaseHealth): string {
  if (!h.alive) return `MariaDB down: ${h.error ?? "no answer"}`;
  const parts = [`MariaDB up${h.readOnly ? " read-only" : " writable"}`];
  if (!h.replicaConfigured) parts.push("no replica");
  else {
    parts.push(`IO ${h.slaveIoRunning ?? "?"} SQL ${h.slaveSqlRunning ?? "?"}`);
    if (h.secondsBehindMaster !== null) parts.push(`${h.secondsBehindMaster}s behind`);
    const error = h.lastSqlError ?? h.lastIoError;
    if (error !== null) parts.push(`error: ${error.slice(0, 120)}`);
  }
  if (h.semiSync?.masterEnabled) parts.push(`semi-sync ${h.semiSync.masterActive ? "on" : "off (asynchronous)"}`);
  return parts.join(", ");
}
