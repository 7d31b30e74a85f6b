/**
 * The `mariadb` check: a real query over the local socket. Healthy means the server answers;
 * the replication state goes in the detail (whether a lagging or broken replica may take
 * over is the election's decision, not this check's).
 */
import type { CheckConfig } from "@mnha/shared";
import type { Connection } from "mariadb";
import { DEAD_HEALTH, MariaDbDatabase, sqlErrorText } from "../db/mariadb.js";
import { readPasswordFile } from "../db/secret-file.js";
import type { DatabaseHealth } from "../db/types.js";

type MariaDbCheck = Extract<CheckConfig, { kind: "mariadb" }>;

/**
 * One kept connection per check target (socket, user): the check runs every 200 ms by
 * default, and a new connection each time (login, handshake, SET) was a large part of an
 * idle agent's CPU (issue 12).
 */
interface KeptConnection {
  db: MariaDbDatabase;
  connection: Connection;
  /** A probe is running on it. */
  busy: boolean;
  /** The last full health read on this connection, for the detail line (null: none yet). */
  full: DatabaseHealth | null;
  /** When `full` was read (performance.now()). */
  fullAtMs: number;
}

/**
 * How often a probe reads the full health (replica threads, lag, errors, semi-sync: three
 * statements) for the detail line; the probes in between run one cheap statement and reuse
 * it (issue 12: the full read every 200 ms was much of an idle agent's CPU).
 */
export const FULL_HEALTH_REFRESH_MS = 1_000;

const kept = new Map<string, KeptConnection>();

/**
 * Probes the local server over a kept connection. A failed, aborted (timed-out) or still-busy
 * connection is dropped, and a probe that failed on a reused connection tries once more on
 * a fresh one, so each check answers as a new connection would: is the server answering
 * now. Connect and statement timeouts (the check's timeout) bound a probe that runCheck has
 * already given up on; an abort destroys its connection.
 */
export async function probeMariaDb(check: MariaDbCheck, signal?: AbortSignal): Promise<{ ok: boolean; detail: string }> {
  const key = JSON.stringify([check.socket, check.user]);
  let entry = kept.get(key);
  // Busy: the previous probe is still waiting on it (runCheck gave up): never queue behind it.
  if (entry !== undefined && entry.busy) {
    drop(key, entry);
    entry = undefined;
  }
  const reused = entry !== undefined;
  try {
    let health = await probeOn(key, entry, check, signal);
    if (!health.alive && reused && signal?.aborted !== true) health = await probeOn(key, undefined, check, signal);
    return { ok: health.alive, detail: describeHealth(health) };
  } catch (error) {
    // The password file is missing, empty or readable by others: its own message.
    if (error instanceof PasswordFileError) return { ok: false, detail: error.message };
    throw error;
  }
}

/** Reading the password file failed (the probe reports its message as it is). */
class PasswordFileError extends Error {}

/**
 * The password, read from its file only when a connection is opened: a kept connection
 * needs none, so the file is read at the first probe, after a dropped connection (a
 * restart, a failure, an access-denied login) and not on every probe. A changed password
 * takes effect at the next reconnect.
 */
function passwordForConnect(check: MariaDbCheck): string | null {
  if (check.passwordFile === undefined) return null;
  try {
    return readPasswordFile(check.passwordFile, "MariaDB password");
  } catch (error) {
    throw new PasswordFileError((error as Error).message);
  }
}

async function probeOn(key: string, existing: KeptConnection | undefined, check: MariaDbCheck, signal: AbortSignal | undefined): Promise<DatabaseHealth> {
  let entry = existing;
  if (entry === undefined) {
    const password = passwordForConnect(check);
    const db = new MariaDbDatabase({ target: { socket: check.socket }, user: check.user, password, connectTimeoutMs: check.timeoutMs, queryTimeoutMs: check.timeoutMs, label: "local" });
    let connection: Connection;
    try {
      connection = await db.connect();
    } catch (error) {
      return { ...DEAD_HEALTH, error: error instanceof Error ? error.message : String(error) };
    }
    if (signal?.aborted === true) {
      connection.destroy();
      return { ...DEAD_HEALTH, error: "check aborted" };
    }
    const previous = kept.get(key);
    if (previous !== undefined) drop(key, previous);
    const fresh: KeptConnection = { db, connection, busy: false, full: null, fullAtMs: 0 };
    // An idle connection gets an error event when the server goes away (an error packet
    // such as "shutdown in progress"): unheard, it would end the agent. Drop it; the next
    // check connects again.
    connection.on("error", () => drop(key, fresh));
    entry = fresh;
    kept.set(key, entry);
  }
  const current = entry;
  const onAbort = () => drop(key, current);
  signal?.addEventListener("abort", onAbort, { once: true });
  current.busy = true;
  try {
    return await readProbeHealth(current);
  } catch (error) {
    drop(key, current);
    return { ...DEAD_HEALTH, error: `MariaDB on local refused a statement: ${sqlErrorText(error)}` };
  } finally {
    current.busy = false;
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * One statement on the kept connection proves the server answers now; the full health is
 * read again at most every FULL_HEALTH_REFRESH_MS and otherwise reused for the detail, with
 * read-only always from this probe.
 */
async function readProbeHealth(entry: KeptConnection): Promise<DatabaseHealth> {
  const now = performance.now();
  if (entry.full === null || now - entry.fullAtMs >= FULL_HEALTH_REFRESH_MS) {
    const full = await entry.db.readHealth(entry.connection);
    entry.full = full;
    entry.fullAtMs = now;
    return full;
  }
  const readOnly = await entry.db.readReadOnly(entry.connection);
  return { ...entry.full, readOnly };
}

function drop(key: string, entry: KeptConnection): void {
  if (kept.get(key) === entry) kept.delete(key);
  entry.connection.destroy();
}

/** Closes the kept connections (the service monitor stopping). */
export async function closeMariaDbProbes(): Promise<void> {
  const entries = [...kept.values()];
  kept.clear();
  await Promise.all(entries.map((entry) => (entry.busy ? Promise.resolve(entry.connection.destroy()) : entry.connection.end().catch(() => entry.connection.destroy()))));
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
