/**
 * The agent's database health poll reads the local server every second: over one kept
 * connection rather than a new one each time (connect, login, statements, close was much of
 * an idle agent's CPU, issue 12). `MariaDbDatabase.health()` stays one-shot for the CLI.
 */
import type { Connection } from "mariadb";
import { DEAD_HEALTH, type MariaDbDatabase, sqlErrorText } from "./mariadb.js";
import type { DatabaseHealth } from "./types.js";

export class KeptHealthReader {
  private connection: Connection | null = null;
  /** A read is running on `connection`. */
  private busy = false;
  private closed = false;

  constructor(private readonly db: MariaDbDatabase) {}

  /**
   * The health report; never throws (a dead server is `alive: false`). A read that fails on
   * the kept connection tries once more on a fresh one, so a restarted server is seen as a
   * new connection would see it; a failed, aborted or still-busy connection is dropped and
   * the next read connects again. `signal`: the caller gave up (its timeout).
   */
  async health(signal?: AbortSignal): Promise<DatabaseHealth> {
    if (this.closed) return this.db.health();
    // Busy: the previous read is still waiting on it (its caller gave up): never queue behind it.
    if (this.connection !== null && this.busy) this.drop(this.connection);
    const reused = this.connection !== null;
    const health = await this.readOn(signal);
    if (!health.alive && reused && signal?.aborted !== true && !this.closed) return this.readOn(signal);
    return health;
  }

  private async readOn(signal: AbortSignal | undefined): Promise<DatabaseHealth> {
    let connection = this.connection;
    if (connection === null) {
      try {
        connection = await this.db.connect();
      } catch (error) {
        return { ...DEAD_HEALTH, error: error instanceof Error ? error.message : String(error) };
      }
      if (signal?.aborted === true || this.closed) {
        connection.destroy();
        return { ...DEAD_HEALTH, error: "health read aborted" };
      }
      const fresh = connection;
      // An idle connection gets an error event when the server goes away ("shutdown in
      // progress"): unheard, it would end the agent. Drop it; the next read connects again.
      fresh.on("error", () => this.drop(fresh));
      this.connection = fresh;
    }
    const current = connection;
    const onAbort = () => this.drop(current);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.busy = true;
    try {
      return await this.db.readHealth(current);
    } catch (error) {
      this.drop(current);
      return { ...DEAD_HEALTH, error: `MariaDB on ${this.db.label} refused a statement: ${sqlErrorText(error)}` };
    } finally {
      if (this.connection === current) this.busy = false;
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private drop(connection: Connection): void {
    if (this.connection === connection) {
      this.connection = null;
      this.busy = false;
    }
    connection.destroy();
  }

  /** Closes the kept connection (the agent stopping); later reads are one-shot. */
  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    if (connection === null) return;
    const busy = this.busy;
    this.connection = null;
    this.busy = false;
    if (busy) connection.destroy();
    else await connection.end().catch(() => connection.destroy());
  }
}
