/**
 * The Database adapter for MariaDB 10.11, over the `mariadb` connector: the local server via
 * its Unix socket as root, or the peer's over TCP as the replication user. One short
 * connection per operation, so a restarted server never leaves a dead handle behind (the
 * check and the agent's health poll keep theirs: checks/mariadb-check.ts, kept-health.ts).
 */
import mariadb, { type Connection, type ConnectionConfig } from "mariadb";
import { MnhaError } from "@mnha/shared";
import { formatGtidPosition, gtidReached, parseGtidPosition, type GtidPosition } from "./gtid.js";
import type { ServerSettings } from "./settings.js";
import type { Database, DatabaseHealth, GtidWaitResult, ReplicationSetup, ThreadState } from "./types.js";

export type MariaDbTarget = { socket: string; host?: undefined; port?: undefined } | { host: string; port: number; socket?: undefined };

export interface MariaDbOptions {
  target: MariaDbTarget;
  user: string;
  /** Never logged; null: log in without a password (unix_socket authentication). */
  password: string | null;
  connectTimeoutMs: number;
  /** Bound on each statement (default none: MASTER_GTID_WAIT sets its own). */
  queryTimeoutMs?: number;
  /** For messages, e.g. "mn1 (local)". */
  label: string;
}

/** Privileges of mnha's replication user: replicate, watch replication, and dump for `db seed`. */
const REPLICATION_GRANTS = "REPLICATION SLAVE, SLAVE MONITOR, BINLOG MONITOR, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER";

type Row = Record<string, unknown>;

export class MariaDbDatabase implements Database {
  readonly label: string;
  private readonly options: MariaDbOptions;

  constructor(options: MariaDbOptions) {
    this.options = options;
    this.label = options.label;
  }

  private where(): string {
    const t = this.options.target;
    return t.socket !== undefined ? `socket ${t.socket}` : `${t.host}:${t.port}`;
  }

  /** Opens a connection, runs `work`, closes it; connector errors become MnhaErrors. */
  async withConnection<T>(work: (connection: Connection) => Promise<T>, options: { queryTimeoutMs?: number } = {}): Promise<T> {
    const connection = await this.connect({ connectOnly: true });
    try {
      const queryTimeoutMs = options.queryTimeoutMs ?? this.options.queryTimeoutMs;
      if (queryTimeoutMs !== undefined) await setStatementBound(connection, queryTimeoutMs);
      return await work(connection);
    } catch (error) {
      throw this.statementError(error);
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  }

  /**
   * Opens a connection the caller keeps (and ends), with the options' statement bound set;
   * connector errors become MnhaErrors. `connectOnly`: the caller sets the bound itself.
   */
  async connect(options: { connectOnly?: boolean } = {}): Promise<Connection> {
    const t = this.options.target;
    const config: ConnectionConfig = {
      ...(t.socket !== undefined ? { socketPath: t.socket } : { host: t.host, port: t.port }),
      user: this.options.user,
      ...(this.options.password === null ? {} : { password: this.options.password }),
      connectTimeout: this.options.connectTimeoutMs,
      bigIntAsNumber: false,
      insertIdAsNumber: true,
      decimalAsNumber: true,
    };
    let connection: Connection;
    try {
      connection = await mariadb.createConnection(config);
    } catch (error) {
      throw this.connectError(error);
    }
    if (options.connectOnly === true || this.options.queryTimeoutMs === undefined) return connection;
    try {
      await setStatementBound(connection, this.options.queryTimeoutMs);
      return connection;
    } catch (error) {
      connection.destroy();
      throw this.statementError(error);
    }
  }

  private statementError(error: unknown): MnhaError {
    if (error instanceof MnhaError) return error;
    return new MnhaError("DB_REPLICATION", `MariaDB on ${this.label} refused a statement: ${sqlErrorText(error)}`, { hint: "see the MariaDB error log of that node" });
  }

  private connectError(error: unknown): MnhaError {
    const e = error as { code?: string | null; errno?: number; message?: string };
    const code = e.code ?? "";
    if (e.errno === 1045 || code === "ER_ACCESS_DENIED_ERROR") {
      const local = this.options.target.socket !== undefined;
      return new MnhaError("DB_AUTH", `MariaDB on ${this.label} (${this.where()}) refused the login of ${this.options.user}: wrong password`, {
        hint: local
          ? "put the MariaDB root password in the file named by db.rootPasswordFile (mode 0600), or leave it out to log in through unix_socket"
          : `the replication password differs between the nodes or the user is missing there: copy db.replication.passwordFile from one node to the other, then run \`mnha db setup-replication\` on both`,
        fields: { where: this.where() },
      });
    }
    if (e.errno !== undefined && ACCESS_REFUSED_ERRNOS.has(e.errno))
      return new MnhaError("DB_AUTH", `MariaDB on ${this.label} (${this.where()}) refused the login of ${this.options.user}: ${sqlErrorText(error)}`, {
        hint: "unlock the account or renew its password in MariaDB (ALTER USER), or log in with a user that may",
        fields: { where: this.where() },
      });
    if (e.errno === 1130 || code === "ER_HOST_NOT_PRIVILEGED")
      return new MnhaError("DB_AUTH", `MariaDB on ${this.label} (${this.where()}) has no user ${this.options.user} for this host`, {
        hint: "run `mnha db setup-replication` on that node (it creates the replication user for its peer)",
      });
    return new MnhaError("DB_UNREACHABLE", `MariaDB on ${this.label} (${this.where()}) is not reachable: ${sqlErrorText(error)}`, {
      hint: this.options.target.socket !== undefined ? "start MariaDB (systemctl start mariadb) or fix db.socket in the config" : "is MariaDB running on the peer and listening on its address (bind_address), port db.peerPort?",
      fields: { where: this.where(), code },
    });
  }

  private async globals(connection: Connection, names: readonly string[]): Promise<Row> {
    const rows = (await connection.query(`SELECT ${names.map((n) => `@@GLOBAL.${n} AS ${n}`).join(", ")}`)) as Row[];
    return rows[0] ?? {};
  }

  async settings(): Promise<ServerSettings> {
    return this.withConnection(async (c) => {
      const g = await this.globals(c, ["version", "log_bin", "server_id", "gtid_domain_id", "gtid_strict_mode", "log_slave_updates", "binlog_format"]);
      return {
        version: String(g["version"]),
        logBin: truthy(g["log_bin"]),
        serverId: Number(g["server_id"]),
        gtidDomainId: Number(g["gtid_domain_id"]),
        gtidStrictMode: truthy(g["gtid_strict_mode"]),
        logSlaveUpdates: truthy(g["log_slave_updates"]),
        binlogFormat: String(g["binlog_format"]),
      };
    });
  }

  async replicationUserExists(user: string, fromHost: string): Promise<boolean> {
    return this.withConnection(async (c) => {
      const rows = (await c.query("SELECT COUNT(*) AS n FROM mysql.global_priv WHERE User = ? AND Host = ?", [user, fromHost])) as Row[];
      return Number(rows[0]?.["n"] ?? 0) > 0;
    });
  }

  async ensureReplicationUser(user: string, fromHost: string, password: string): Promise<void> {
    await this.withConnection(async (c) => {
      // Not binlogged: each node has its own user for its peer; replicated, the peer's copy would collide.
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?", [user, fromHost, password]);
      await c.query("ALTER USER ?@? IDENTIFIED BY ?", [user, fromHost, password]);
      await c.query(`GRANT ${REPLICATION_GRANTS} ON *.* TO ?@?`, [user, fromHost]);
    });
  }

  async configureSemiSync(options: { enabled: boolean; timeoutMs: number }): Promise<void> {
    await this.withConnection((c) => this.applySemiSync(c, options));
  }

  private async applySemiSync(c: Connection, options: { enabled: boolean; timeoutMs: number }): Promise<void> {
    const on = options.enabled ? "ON" : "OFF";
    await c.query("SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'");
    await c.query("SET GLOBAL rpl_semi_sync_master_timeout = ?", [options.timeoutMs]);
    await c.query(`SET GLOBAL rpl_semi_sync_master_enabled = ${on}`);
    await c.query(`SET GLOBAL rpl_semi_sync_slave_enabled = ${on}`);
  }

  async setupReplication(setup: ReplicationSetup): Promise<void> {
    await this.withConnection(async (c) => {
      await this.applySemiSync(c, setup.semiSync);
      await c.query("STOP SLAVE");
      await c.query("CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = ?", [
        setup.peer.host,
        setup.peer.port,
        setup.user,
        setup.password,
        setup.connectRetrySeconds,
      ]);
      await c.query("START SLAVE");
    });
  }

  async startReplica(): Promise<void> {
    await this.withConnection((c) => c.query("START SLAVE"));
  }

  async stopReplica(): Promise<void> {
    await this.withConnection((c) => c.query("STOP SLAVE"));
  }

  async restartReplicaIo(): Promise<void> {
    await this.withConnection(async (c) => {
      await c.query("STOP SLAVE IO_THREAD");
      await c.query("START SLAVE IO_THREAD");
    });
  }

  async setReadOnly(on: boolean): Promise<void> {
    await this.withConnection((c) => c.query(`SET GLOBAL read_only = ${on ? "ON" : "OFF"}`));
  }

  async readOnly(): Promise<boolean> {
    return this.withConnection(async (c) => truthy((await this.globals(c, ["read_only"]))["read_only"]));
  }

  async gtidCurrentPos(): Promise<GtidPosition> {
    return this.withConnection(async (c) => parseGtidPosition(String((await this.globals(c, ["gtid_current_pos"]))["gtid_current_pos"] ?? "")));
  }

  async gtidBinlogPos(): Promise<GtidPosition> {
    return this.withConnection(async (c) => parseGtidPosition(String((await this.globals(c, ["gtid_binlog_pos"]))["gtid_binlog_pos"] ?? "")));
  }

  async waitForGtid(target: GtidPosition, timeoutMs: number): Promise<GtidWaitResult> {
    const started = performance.now();
    return this.withConnection(
      async (c) => {
        const g = await this.globals(c, ["gtid_domain_id", "gtid_current_pos"]);
        const ownDomain = Number(g["gtid_domain_id"]);
        const current = parseGtidPosition(String(g["gtid_current_pos"] ?? ""));
        const own = target.get(ownDomain);
        const elapsed = () => Math.round(performance.now() - started);
        // Our own domain only grows by our own writes: waiting cannot make it reach.
        if (own !== undefined && !gtidReached(current, new Map([[ownDomain, own]]))) {
          return { reached: false, waitedMs: elapsed(), position: formatGtidPosition(current), impossible: `the target has transactions in this server's own domain ${ownDomain} that it never wrote (${own.domain}-${own.serverId}-${own.seq})` };
        }
        const rest = new Map([...target].filter(([domain]) => domain !== ownDomain));
        let reached = true;
        if (rest.size > 0) {
          const rows = (await c.query("SELECT MASTER_GTID_WAIT(?, ?) AS r", [formatGtidPosition(rest), Math.max(0, timeoutMs) / 1000])) as Row[];
          reached = Number(rows[0]?.["r"]) === 0;
        }
        const after = String((await this.globals(c, ["gtid_current_pos"]))["gtid_current_pos"] ?? "");
        return { reached, waitedMs: elapsed(), position: after, impossible: null };
      },
      { queryTimeoutMs: timeoutMs + 5_000 },
    );
  }

  async health(): Promise<DatabaseHealth> {
    try {
      return await this.withConnection((c) => this.readHealth(c));
    } catch (error) {
      return { ...DEAD_HEALTH, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** `@@GLOBAL.read_only` over an open connection, in one statement; throws what the connector throws. */
  async readReadOnly(c: Connection): Promise<boolean> {
    return truthy((await this.globals(c, ["read_only"]))["read_only"]);
  }

  /** The health report read over an open connection; throws what the connector throws. */
  async readHealth(c: Connection): Promise<DatabaseHealth> {
    const g = await this.globals(c, [
      "read_only", "server_id", "gtid_domain_id", "gtid_slave_pos", "gtid_binlog_pos", "gtid_current_pos", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled",
    ]);
    const slave = ((await c.query("SHOW SLAVE STATUS")) as Row[])[0];
    const status = new Map(((await c.query("SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Rpl_semi_sync_%' OR Variable_name = 'Uptime'")) as Row[]).map((r) => [String(r["Variable_name"]).toLowerCase(), String(r["Value"])]));
    return healthFromRows(g, slave, status);
  }

  async close(): Promise<void> {
    // One connection per operation: nothing is held open.
  }
}

/**
 * The statement bound, set with an awaited SET rather than the connector's `queryTimeout`
 * option: the connector sends that SET in a promise nobody awaits, and a server that resets
 * the connection at that instant (MariaDB restarting) made the rejection unhandled, which
 * ended the agent.
 */
async function setStatementBound(connection: Connection, queryTimeoutMs: number): Promise<void> {
  await connection.query("SET SESSION max_statement_time = ?", [queryTimeoutMs / 1000]);
}

export const DEAD_HEALTH: DatabaseHealth = {
  alive: false,
  error: null,
  readOnly: null,
  serverId: null,
  gtidDomainId: null,
  replicaConfigured: false,
  masterHost: null,
  slaveIoRunning: null,
  slaveSqlRunning: null,
  secondsBehindMaster: null,
  lastIoError: null,
  lastSqlError: null,
  gtidIoPos: null,
  gtidSlavePos: null,
  gtidBinlogPos: null,
  gtidCurrentPos: null,
  uptimeSeconds: null,
  semiSync: null,
};

/** Builds the health report from SELECT @@globals, SHOW SLAVE STATUS and the status variables (semi-sync, Uptime). */
export function healthFromRows(globals: Row, slave: Row | undefined, status: ReadonlyMap<string, string>): DatabaseHealth {
  const text = (v: unknown) => (v === null || v === undefined || String(v) === "" ? null : String(v));
  const thread = (v: unknown): ThreadState | null => {
    const s = text(v);
    return s === "Yes" || s === "No" || s === "Connecting" || s === "Preparing" ? s : s === null ? null : "No";
  };
  const num = (v: unknown) => (v === null || v === undefined || v === "" ? null : Number(v));
  return {
    alive: true,
    error: null,
    readOnly: truthy(globals["read_only"]),
    serverId: num(globals["server_id"]),
    gtidDomainId: num(globals["gtid_domain_id"]),
    replicaConfigured: slave !== undefined,
    masterHost: text(slave?.["Master_Host"]),
    slaveIoRunning: thread(slave?.["Slave_IO_Running"]),
    slaveSqlRunning: thread(slave?.["Slave_SQL_Running"]),
    secondsBehindMaster: num(slave?.["Seconds_Behind_Master"]),
    lastIoError: text(slave?.["Last_IO_Error"]),
    lastSqlError: text(slave?.["Last_SQL_Error"]),
    gtidIoPos: text(slave?.["Gtid_IO_Pos"]),
    gtidSlavePos: text(globals["gtid_slave_pos"]),
    gtidBinlogPos: text(globals["gtid_binlog_pos"]),
    gtidCurrentPos: text(globals["gtid_current_pos"]),
    uptimeSeconds: num(status.get("uptime")),
    semiSync: {
      masterEnabled: truthy(globals["rpl_semi_sync_master_enabled"]),
      masterActive: status.get("rpl_semi_sync_master_status") === "ON",
      slaveEnabled: truthy(globals["rpl_semi_sync_slave_enabled"]),
      slaveActive: status.get("rpl_semi_sync_slave_status") === "ON",
      masterClients: Number(status.get("rpl_semi_sync_master_clients") ?? 0),
      yesTx: Number(status.get("rpl_semi_sync_master_yes_tx") ?? 0),
      noTx: Number(status.get("rpl_semi_sync_master_no_tx") ?? 0),
    },
  };
}

function truthy(value: unknown): boolean {
  if (typeof value === "bigint") return value !== 0n;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "boolean") return value;
  const s = String(value ?? "").toUpperCase();
  return s === "1" || s === "ON" || s === "YES" || s === "TRUE";
}

/**
 * Server errors that mean "up, and refusing this user": access denied (1044, 1045, 1142, 1143,
 * 1227, 1370), password expired (1820, 1862), account locked (4151). Restarting the server
 * changes none of them: the grant tables survive it.
 */
const ACCESS_REFUSED_ERRNOS: ReadonlySet<number> = new Set([1044, 1045, 1142, 1143, 1227, 1370, 1820, 1862, 4151]);

/** Whether the server answered and refused the user (a login or a statement), rather than failed. */
export function isAccessRefused(error: unknown): boolean {
  if (error instanceof MnhaError) return error.code === "DB_AUTH";
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === "number" && ACCESS_REFUSED_ERRNOS.has(errno);
}

export function sqlErrorText(error: unknown): string {
  const e = error as { code?: string | null; sqlMessage?: string | null; message?: string };
  const message = e.sqlMessage ?? e.message ?? String(error);
  // The connector's messages carry "(conn:N, no: E, SQLState: S)" and may echo the SQL: keep the first line only.
  const first = message.split("\n")[0] ?? message;
  return `${e.code ? `${e.code}: ` : ""}${first}`.slice(0, 300);
}
