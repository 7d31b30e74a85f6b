/**
 * Parts of the database benchmark (bench/db-failover.ts): the writer through the VIP
 * (test/lab/db-writer.mjs in the client namespace), the 50 ms read-only sampler on both
 * servers, and the SQL helpers that set a pair up, compare it and count what was lost.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { copyFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { MnhaError } from "@mnha/shared";
import { AGENT_MAIN, HOSTS, LAB_DIR, MN_NODES, VIP_ADDRESS, nodePaths, type MnNode } from "./constants.js";
import { runIn, sleep, waitFor, type CommandResult } from "./exec.js";
import { labDatabase, mariaDbPaths } from "./mariadb.js";

type LabDb = ReturnType<typeof labDatabase>;
const databases = new Map<MnNode, LabDb>();

/** A root connection factory per node (built lazily: the root password exists once the lab is up). */
export function db(node: MnNode): LabDb {
  let found = databases.get(node);
  if (!found) {
    found = labDatabase(node);
    databases.set(node, found);
  }
  return found;
}

/** Forgets the cached connections (a fresh lab has new root passwords). */
export function forgetDatabases(): void {
  databases.clear();
}

export async function sql(node: MnNode, statement: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return db(node).withConnection(async (c) => (await c.query(statement, values)) as Record<string, unknown>[], { queryTimeoutMs: 600_000 });
}

/** `mnha ARGS --config <node's config>` in the node's namespace. */
export function mnhaCli(node: MnNode, args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  return runIn(HOSTS[node].namespace, process.execPath, [AGENT_MAIN, ...args, "--config", nodePaths(node).config], { allowFailure: true, timeoutMs });
}

/** The app user's password (lab only; handed to the writer through its environment). */
export const APP_PASSWORD = "app-password-for-the-db-bench";

/** Replication both ways (mnha db setup-replication on both), the app schema and user. */
export async function setUpPair(): Promise<void> {
  const first = await mnhaCli("mn1", ["db", "setup-replication"]);
  if (first.code !== 0) throw new MnhaError("INTERNAL", `db setup-replication on mn1: ${first.stderr.trim()}`, { hint: "see the lab's MariaDB error logs" });
  copyFileSync(mariaDbPaths("mn1").replicationPasswordFile, mariaDbPaths("mn2").replicationPasswordFile);
  const second = await mnhaCli("mn2", ["db", "setup-replication"]);
  if (second.code !== 0) throw new MnhaError("INTERNAL", `db setup-replication on mn2: ${second.stderr.trim()}`, { hint: "see the lab's MariaDB error logs" });
  await replicatingBothWays(60_000);
  await sql("mn1", "CREATE DATABASE appdb");
  await sql("mn1", "CREATE TABLE appdb.acks (id INT PRIMARY KEY, server_id INT NOT NULL) ENGINE=InnoDB");
  await sql("mn1", "CREATE USER app@'%' IDENTIFIED BY ?", [APP_PASSWORD]);
  await sql("mn1", "GRANT ALL ON appdb.* TO app@'%'");
  await caughtUp("mn2", "mn1", 30_000);
}

/** Waits until both replicas run; returns null, or what was last seen when they did not in time. */
export async function replicatingBothWays(timeoutMs: number): Promise<string | null> {
  for (const node of MN_NODES) {
    let last = "";
    try {
      await waitFor(
        `${node}'s replica running`,
        async () => {
          const h = await db(node).health();
          last = `${node}: IO ${h.slaveIoRunning} SQL ${h.slaveSqlRunning}${h.lastIoError ? ` IO error: ${h.lastIoError}` : ""}${h.lastSqlError ? ` SQL error: ${h.lastSqlError}` : ""}${h.error ? ` ${h.error}` : ""}`;
          return h.slaveIoRunning === "Yes" && h.slaveSqlRunning === "Yes" ? true : undefined;
        },
        { timeoutMs, intervalMs: 200, describeLast: () => last },
      );
    } catch {
      return last;
    }
  }
  return null;
}

/** `node` has applied everything `from` has; false when not within the bound. */
export async function caughtUp(node: MnNode, from: MnNode, timeoutMs: number): Promise<boolean> {
  try {
    const target = await db(from).gtidBinlogPos();
    return (await db(node).waitForGtid(target, timeoutMs)).reached;
  } catch {
    return false;
  }
}

export async function writable(node: MnNode): Promise<boolean> {
  return !(await db(node).readOnly());
}

/** Semi-sync on or off on both servers (as my.cnf would have it), the replica's IO thread restarted so it takes effect. */
export async function setSemiSync(enabled: boolean): Promise<void> {
  for (const node of MN_NODES) {
    await db(node).configureSemiSync({ enabled, timeoutMs: 1_000 });
    await sql(node, "STOP SLAVE IO_THREAD");
    await sql(node, "START SLAVE IO_THREAD");
  }
}

/** Whether the node's server waits for the peer's acknowledgement right now (semi-sync active as master). */
export async function semiSyncActive(node: MnNode): Promise<boolean | null> {
  const h = await db(node).health();
  return h.alive ? (h.semiSync?.masterActive ?? null) : null;
}

// ------------------------------------------------------------------------------ read-only sampler

export interface ReadOnlySample {
  at: number;
  /** Per node: true read-only, false writable, null no answer. */
  readOnly: Record<MnNode, boolean | null>;
}

/** Every 50 ms: is each server read-only? */
export class ReadOnlySampler {
  readonly samples: ReadOnlySample[] = [];
  private running = false;
  private loop: Promise<void> | null = null;

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const started = performance.now();
        const [a, b] = await Promise.all(MN_NODES.map((n) => db(n).readOnly().catch(() => null)));
        this.samples.push({ at: Date.now(), readOnly: { mn1: a ?? null, mn2: b ?? null } });
        await sleep(Math.max(0, 50 - (performance.now() - started)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  bothWritable(): number {
    return this.samples.filter((s) => s.readOnly.mn1 === false && s.readOnly.mn2 === false).length;
  }

  /**
   * Whether `node` was read-only for the whole life of a statement sent at `sent` and
   * acknowledged at `at`: in the last sample before it was sent, in every sample while it ran,
   * and in the first sample after its acknowledgement. (Only the acknowledgement's time would
   * not do: a COMMIT finishes before the client reads its answer, and a demote may set
   * read_only in between.)
   */
  readOnlyThroughout(node: MnNode, sent: number, at: number): boolean {
    let before: ReadOnlySample | undefined;
    let after: ReadOnlySample | undefined;
    for (const s of this.samples) {
      if (s.at <= sent) before = s;
      else if (s.at <= at) {
        if (s.readOnly[node] !== true) return false;
      } else {
        after = s;
        break;
      }
    }
    return before?.readOnly[node] === true && after?.readOnly[node] === true;
  }
}

// ------------------------------------------------------------------------------ writer through the VIP

export interface WriteRecord {
  id: number;
  ok: boolean;
  at: number;
  /** When the INSERT was sent (acknowledged rows only). */
  sent?: number;
  error?: string;
}

/** test/lab/db-writer.mjs in the client namespace, writing numbered rows through the VIP. */
export class VipWriter {
  readonly records: WriteRecord[] = [];
  private stderr = "";
  private child: ChildProcessWithoutNullStreams | null = null;
  private closed: Promise<void> | null = null;
  /** How the writer ended (null: still running). */
  exited: string | null = null;

  start(firstId: number, maxMs = 300_000): void {
    const script = resolve(LAB_DIR, "db-writer.mjs");
    const child = spawn("ip", ["netns", "exec", HOSTS.client.namespace, process.execPath, script, "--host", VIP_ADDRESS, "--user", "app", "--first-id", String(firstId), "--max-ms", String(maxMs)], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, MNHA_TEST_DB_PASSWORD: APP_PASSWORD },
    });
    this.child = child;
    this.closed = new Promise((r) =>
      child.once("close", (code, sig) => {
        this.exited = sig ?? `exit ${code}`;
        r();
      }),
    );
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        this.records.push(JSON.parse(line) as WriteRecord);
      } catch {
        // not a record: ignore
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (this.stderr.length < 4096) this.stderr += chunk;
    });
  }

  describe(): string {
    return `${JSON.stringify(this.records.slice(-1))}${this.exited !== null ? `; the writer exited (${this.exited})` : ""}${this.stderr ? ` stderr: ${this.stderr.slice(0, 300)}` : ""}`;
  }

  acked(): WriteRecord[] {
    return this.records.filter((r) => r.ok);
  }

  ackedSince(at: number): number {
    let n = 0;
    for (const r of this.records) if (r.ok && r.at > at) n++;
    return n;
  }

  lastId(): number {
    return this.records.reduce((m, r) => Math.max(m, r.id), 0);
  }

  async stop(): Promise<void> {
    this.child?.kill("SIGTERM");
    this.child?.stdin.end();
    await this.closed;
  }
}

/** The longest time without an acknowledged COMMIT, from the last acknowledgement before `from` to `to`. */
export function longestAckGap(records: readonly WriteRecord[], from: number, to: number): number {
  const times = records.filter((r) => r.ok).map((r) => r.at);
  const before = times.filter((t) => t <= from);
  let previous = before.length > 0 ? (before[before.length - 1] as number) : from;
  let longest = 0;
  for (const t of times) {
    if (t <= previous) continue;
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return Math.max(longest, to - previous);
}

/** id -> server_id of the rows in [low, high] on a node (null: the server did not answer). */
export async function rowsOn(node: MnNode, low: number, high: number): Promise<Map<number, number> | null> {
  try {
    const rows = await sql(node, "SELECT id, server_id FROM appdb.acks WHERE id BETWEEN ? AND ?", [low, high]);
    return new Map(rows.map((r) => [Number(r["id"]), Number(r["server_id"])]));
  } catch {
    return null;
  }
}

export async function checksum(node: MnNode): Promise<string | null> {
  try {
    const rows = await sql(node, "CHECKSUM TABLE appdb.acks EXTENDED");
    return String(rows[0]?.["Checksum"]);
  } catch {
    return null;
  }
}
