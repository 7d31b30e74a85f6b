/**
 * The `mariadb` check: a real query over the local socket. Healthy means the server answers;
 * the replication state goes in the detail (whether a lagging or broken replica may take
 * over is the election's decision, not this check's).
 */
import type { CheckConfig } from "@mnha/shared";
import { MariaDbDatabase } from "../db/mariadb.js";
import { readPasswordFile } from "../db/secret-file.js";
import type { DatabaseHealth } from "../db/types.js";

type MariaDbCheck = Extract<CheckConfig, { kind: "mariadb" }>;

export async function probeMariaDb(check: MariaDbCheck): Promise<{ ok: boolean; detail: string }> {
  let password: string | null = null;
  try {
    if (check.passwordFile !== undefined) password = readPasswordFile(check.passwordFile, "MariaDB password");
  } catch (error) {
    return { ok: false, detail: (error as Error).message };
  }
  // Connect and query timeouts bound a probe that runCheck has already given up on, so
  // probes of a hung server never pile up beyond two.
  const db = new MariaDbDatabase({ target: { socket: check.socket }, user: check.user, password, connectTimeoutMs: check.timeoutMs, queryTimeoutMs: check.timeoutMs, label: "local" });
  const health = await db.health();
  return { ok: health.alive, detail: describeHealth(health) };
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
