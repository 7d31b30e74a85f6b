import { spawn, type ChildProcessByStdio } from "node:child_process";
import { Backoff } from "../util/backoff.js";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "@mnha/shared";
import { writeFileAtomic } from "@mnha/shared";
import { readFileOrNull } from "./atomic-file.js";
import { formatSeconds } from "./render.js";

export interface LeaseGuardOptions {
  /** packages/agent/scripts/mnha-lease-guard (root-owned, 0755). */
  script: string;
  leaseFile: string;
  /** How long one renewal keeps the lease fresh (config timings.leaseMs). */
  leaseMs: number;
  logger: Logger;
  /** First respawn delay after the guard dies while the agent runs (doubles up to 5 s). */
  respawnDelayMs?: number;
  /**
   * Told when a guard that died while the agent runs was started again (for the audit): after
   * a guard that had run a while, and once more if the new one dies young too; a guard that
   * keeps dying young is then only logged, until one runs for 10 s.
   */
  onRespawn?: (detail: string) => void;
}

type GuardChild = ChildProcessByStdio<Writable, null, Readable>;

const RESPAWN_MAX_MS = 5_000;
// A guard this young may not have written its pid file yet: leave the file alone.
const PID_FILE_GRACE_MS = 2_000;
const STABLE_MS = 10_000;
// A renewal is one byte; more than this queued means the guard stopped reading.
const MAX_QUEUED_BYTES = 4096;

/**
 * Runs mnha-lease-guard and feeds it the agent's renewals through a pipe. The guard is its
 * own process group (detached), so a kill of the agent's process group leaves it alive to
 * see the pipe close and mark the lease stale. If it dies while the agent runs, it is
 * respawned; until then renewals are dropped (the lease goes stale, which is the safe side).
 */
export class LeaseGuard {
  private readonly options: LeaseGuardOptions;
  private child: GuardChild | null = null;
  private running = false;
  private respawnTimer: NodeJS.Timeout | null = null;
  private readonly respawnBackoff: Backoff;
  private spawnedAt = 0;
  private respawnCount = 0;
  /** Deaths told through onRespawn since a guard last ran STABLE_MS (at most two in a row). */
  private toldInRow = 0;
  private exitWaiters: (() => void)[] = [];

  constructor(options: LeaseGuardOptions) {
    this.options = options;
    this.respawnBackoff = new Backoff({ initialMs: options.respawnDelayMs ?? 100, maxMs: RESPAWN_MAX_MS, jitter: false });
  }

  /** The guard's argument list: the script, the lease file, the timeout in seconds. */
  argv(): string[] {
    return [this.options.script, this.options.leaseFile, formatSeconds(this.options.leaseMs)];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.spawnGuard();
  }

  /** Tells the guard the agent is alive. Never blocks and never throws. */
  renew(): void {
    const stdin = this.child?.stdin;
    if (!stdin || !stdin.writable || stdin.writableLength > MAX_QUEUED_BYTES) return;
    try {
      stdin.write("\n");
    } catch {
      // EPIPE and friends: the exit handler respawns the guard.
    }
  }

  pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** `LEASE_FILE.guard.pid`: written by the guard, read by mnha-lease-check. */
  pidFile(): string {
    return `${this.options.leaseFile}.guard.pid`;
  }

  /**
   * Whether the pid file names our running guard. Null when there is nothing to judge (no
   * guard, or one too young to have written it yet).
   */
  async pidFileRight(): Promise<boolean | null> {
    const pid = this.child?.pid;
    if (pid === undefined || performance.now() - this.spawnedAt < PID_FILE_GRACE_MS) return null;
    return (await readFileOrNull(this.pidFile()))?.trim() === String(pid);
  }

  /**
   * Restores the pid file to name our running guard when someone removed or replaced it
   * (mnha-lease-check fails without it and keepalived holds the VIP back). Returns what it
   * did, or null when the file was right. The guard itself removes the file only while it
   * still names the guard, so this never fights it.
   */
  async repairPidFile(): Promise<string | null> {
    if ((await this.pidFileRight()) !== false) return null;
    const pid = this.child?.pid as number;
    const before = (await readFileOrNull(this.pidFile()))?.trim();
    await writeFileAtomic(this.pidFile(), `${pid}\n`, { mode: 0o600, sync: false });
    const action = `rewrote ${this.pidFile()} with the running guard's pid ${pid} (it was ${before === undefined ? "missing" : `holding ${JSON.stringify(before.slice(0, 40))}`})`;
    this.options.logger.warn({ pidFile: this.pidFile(), pid, before: before?.slice(0, 40) ?? null }, "lease guard pid file was wrong; rewrote it");
    return action;
  }

  /** Respawns the guard now if it is down while it should run (skipping the backoff). */
  respawnNow(): string | null {
    if (!this.running || this.child) return null;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
    this.respawnCount += 1;
    this.spawnGuard();
    return `restarted the lease guard (pid ${this.pid() ?? "?"})`;
  }

  /** How many times the guard was respawned after dying on its own. */
  respawns(): number {
    return this.respawnCount;
  }

  /** Closes the guard's stdin (it marks the lease stale and exits); kills it if it lingers. */
  async stop(timeoutMs = 2_000): Promise<void> {
    this.running = false;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut && this.child === child) {
      this.options.logger.warn({ pid: child.pid }, "lease guard did not exit after its input closed; killing it");
      child.kill("SIGKILL");
      await exited;
    }
  }

  private spawnGuard(): void {
    const [file, ...args] = this.argv();
    const child = spawn(file as string, args, { detached: true, stdio: ["pipe", "ignore", "pipe"] });
    this.child = child;
    this.spawnedAt = performance.now();
    child.stdin.on("error", () => undefined);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      for (const line of chunk.split("\n").filter((l) => l.trim() !== "")) this.options.logger.warn({ leaseGuard: line.slice(0, 500) }, "lease guard says");
    });
    child.on("error", (error) => {
      this.options.logger.error({ err: error, script: file }, "lease guard could not be started");
    });
    child.on("close", (code, signal) => this.onExit(child, code, signal));
    this.options.logger.debug({ pid: child.pid, argv: this.argv() }, "lease guard started");
  }

  private onExit(child: GuardChild, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = null;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const resolve of waiters) resolve();
    if (!this.running) return;
    const livedMs = performance.now() - this.spawnedAt;
    if (livedMs > STABLE_MS) {
      this.respawnBackoff.reset();
      this.toldInRow = 0;
    }
    const delay = this.respawnBackoff.next();
    this.options.logger.warn({ code, signal, livedMs: Math.round(livedMs), respawnInMs: delay }, "lease guard exited while the agent runs; respawning it");
    const how = signal === null ? `with code ${code ?? "unknown"}` : `on ${signal}`;
    const lived = `${(livedMs / 1_000).toFixed(1)} s`;
    const young = livedMs > STABLE_MS ? "" : `, within ${STABLE_MS / 1_000} s of its start`;
    const last = this.toldInRow === 1 ? ` (if it keeps exiting, it is restarted with backoff up to ${RESPAWN_MAX_MS / 1_000} s and said again only once one has run ${STABLE_MS / 1_000} s)` : "";
    const detail = `the lease guard exited ${how} after ${lived}${young}; started it again, the VIP's lease was stale meanwhile${last}`;
    const say = this.toldInRow < 2;
    if (say) this.toldInRow += 1;
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = null;
      if (!this.running) return;
      this.respawnCount += 1;
      this.spawnGuard();
      if (say) this.options.onRespawn?.(detail);
    }, delay);
  }
}
