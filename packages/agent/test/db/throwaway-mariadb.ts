import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MariaDbDatabase } from "../../src/db/mariadb.js";
import { allThreadsStopped, execFileAsync, waitFor } from "../checks/helpers.js";

/**
 * A real, throwaway MariaDB server on a Unix socket in a temporary directory (no network),
 * logged in to as root through unix_socket authentication (the tests run as root).
 */
export class ThrowawayMariaDb {
  readonly socket: string;
  private child: ChildProcess | null = null;

  private constructor(readonly dir: string) {
    this.socket = join(dir, "mariadb.sock");
  }

  /** Installs a data directory and starts the server (up to a few minutes on a busy machine). */
  static async create(prefix: string): Promise<ThrowawayMariaDb> {
    const server = new ThrowawayMariaDb(mkdtempSync(join(tmpdir(), prefix)));
    await execFileAsync("/usr/bin/mariadb-install-db", ["--no-defaults", "--user=root", `--datadir=${server.dir}/data`, `--tmpdir=${server.dir}`, "--skip-test-db", "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"], { timeout: 120_000 });
    await server.start();
    return server;
  }

  /** Starts the server and waits until it answers. */
  async start(): Promise<void> {
    const d = this.dir;
    this.child = spawn(
      "/usr/sbin/mariadbd",
      ["--no-defaults", "--user=root", `--datadir=${d}/data`, `--socket=${this.socket}`, `--pid-file=${d}/mariadb.pid`, `--log-error=${d}/error.log`, `--tmpdir=${d}`, "--skip-networking", "--innodb-buffer-pool-size=32M", "--performance-schema=OFF"],
      { stdio: "ignore" },
    );
    if (!(await waitFor(() => this.answers(), 60_000, 100))) throw new Error(`the throwaway MariaDB in ${d} did not start (see ${d}/error.log)`);
  }

  /** Kills the server (SIGKILL: as a crash; its clients' connections die). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** Hangs the server: SIGSTOP, and back once every one of its threads has stopped. */
  async pause(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error("the throwaway MariaDB is not running");
    this.signal("SIGSTOP");
    if (!(await waitFor(() => allThreadsStopped(pid), 10_000, 5))) throw new Error(`mariadbd ${pid} did not stop within 10 s of SIGSTOP`);
  }

  /** Sends the server a signal (SIGSTOP: it hangs; SIGCONT: it goes on). */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  async destroy(): Promise<void> {
    this.signal("SIGCONT");
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A one-shot observer (a new connection for each of its operations). */
  observer(): MariaDbDatabase {
    return new MariaDbDatabase({ target: { socket: this.socket }, user: "root", password: null, connectTimeoutMs: 2_000, label: "test" });
  }

  async answers(): Promise<boolean> {
    return (await this.observer().health()).alive;
  }

  /** The server's global status counters named (e.g. Connections: opened since it started, the observer's own included). */
  async statusCounters(names: readonly string[]): Promise<Record<string, number>> {
    return this.observer().withConnection(async (c) => {
      const rows = (await c.query(`SHOW GLOBAL STATUS WHERE Variable_name IN (${names.map(() => "?").join(", ")})`, [...names])) as { Variable_name: string; Value: string }[];
      return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
    });
  }

  async run(statement: string): Promise<void> {
    await this.observer().withConnection((c) => c.query(statement));
  }
}
