/**
 * A health read of the local MariaDB over one kept connection, for the reads that repeat: the
 * `mariadb` check (every 200 ms, checks/mariadb-check.ts) and the agent's health poll (every
 * second). A new connection each time (connect, login, statements, close) was much of an idle
 * agent's CPU (issue 12). `MariaDbDatabase.health()` stays one-shot for the CLI.
 *
 * The rules, so that each read answers as a new connection would (is the server answering
 * now): a failed, aborted or still-busy connection is dropped; a read that fails on a reused
 * connection tries once more on a fresh one (a restarted server); an idle connection's error
 * event (the server going away) drops it instead of ending the agent.
 */
import type { Connection } from "mariadb";
import { DEAD_HEALTH, sqlErrorText } from "./mariadb.js";
import type { DatabaseHealth } from "./types.js";

export interface KeptHealthOptions {
  /** Names the server in a refused statement's error ("local"). */
  label: string;
  /** Opens a connection; throws what the connector throws. */
  connect(): Promise<Connection>;
  /** The health over an open connection (`fresh`: just opened); throws what the connector throws. */
  read(connection: Connection, fresh: boolean): Promise<DatabaseHealth>;
}

export class KeptHealthReader {
  private connection: Connection | null = null;
  /** A read is running on `connection`. */
  private busy = false;
  private closed = false;

  constructor(private readonly options: KeptHealthOptions) {}

  /**
   * The health report; never throws (a dead server is `alive: false`). `signal`: the caller
   * gave up (its timeout): the connection is dropped. After close(), reads connect each time
   * and keep nothing.
   */
  async health(signal?: AbortSignal): Promise<DatabaseHealth> {
    // Busy: the previous read is still waiting on it (its caller gave up): never queue behind it.
    if (this.connection !== null && this.busy) this.drop(this.connection);
    const reused = this.connection !== null;
    const health = await this.readOn(signal);
    if (!health.alive && reused && signal?.aborted !== true) return this.readOn(signal);
    return health;
  }

  private async readOn(signal: AbortSignal | undefined): Promise<DatabaseHealth> {
    let connection = this.connection;
    const fresh = connection === null;
    if (connection === null) {
      try {
        connection = await this.options.connect();
      } catch (error) {
        return { ...DEAD_HEALTH, error: error instanceof Error ? error.message : String(error) };
      }
      if (signal?.aborted === true) {
        connection.destroy();
        return { ...DEAD_HEALTH, error: "health read aborted" };
      }
      const opened = connection;
      opened.on("error", () => this.drop(opened));
      if (!this.closed) {
        // Two reads can connect at once (a check that gave up on a slow connect starts the
        // next): the newest connection is kept, the one it replaces closed.
        if (this.connection !== null) this.drop(this.connection);
        this.connection = opened;
      }
    }
    const current = connection;
    const onAbort = () => this.drop(current);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (this.connection === current) this.busy = true;
    try {
      return await this.options.read(current, fresh);
    } catch (error) {
      this.drop(current);
      return { ...DEAD_HEALTH, error: `MariaDB on ${this.options.label} refused a statement: ${sqlErrorText(error)}` };
    } finally {
      if (this.connection === current) this.busy = false;
      else if (this.closed) current.destroy();
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

  /** Closes the kept connection (the agent or the check stopping). */
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
