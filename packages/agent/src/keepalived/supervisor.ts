import { spawn, type ChildProcessByStdio } from "node:child_process";
import { Backoff } from "../util/backoff.js";
import { readFile, unlink } from "node:fs/promises";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@mnha/shared";
import { inNetns } from "../net/command.js";
import { processAlive } from "../util/process-alive.js";

export interface KeepalivedSupervisorOptions {
  binary: string;
  configFile: string;
  pidFile: string;
  vrrpPidFile: string;
  logger: Logger;
  /** Run keepalived inside this network namespace (`ip netns exec`). */
  netns?: string | undefined;
  /** First restart delay after an unexpected exit; doubles up to restartMaxMs. */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** Told whenever keepalived starts running (true) or stops running (false). */
  onRunning?: (running: boolean) => void;
}

type KeepalivedChild = ChildProcessByStdio<null, Readable, Readable>;

// Up this long, keepalived counts as healthy again: the next restart starts from the first delay.
const STABLE_MS = 30_000;
const OUTPUT_LINES_KEPT = 30;
// Dead within this long after spawning: it failed to start rather than crashed.
const FAILED_START_MS = 2_000;

/** The pid in a pid file, if that pid is a live keepalived started with this very pid file. */
export async function keepalivedFromPidFile(pidFile: string, marker: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(pidFile, "utf8");
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return null;
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    // A recycled pid belongs to something else: only kill a keepalived that names our files.
    if (args.some((a) => a.endsWith("keepalived")) && args.includes(marker)) return pid;
  } catch {
    // gone
  }
  return null;
}

async function waitForExit(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (pids.every((pid) => !processAlive(pid))) return true;
    await sleep(25);
  }
  return pids.every((pid) => !processAlive(pid));
}

/**
 * Runs keepalived in the foreground as the agent's child, restarts it with backoff when it
 * exits unexpectedly, and stops it (SIGTERM, then SIGKILL) on request. Keepalived is not
 * detached: if the agent is SIGKILLed it keeps running, and the lease guard makes it drop
 * the VIP.
 */
export class KeepalivedSupervisor {
  private readonly options: KeepalivedSupervisorOptions;
  private child: KeepalivedChild | null = null;
  private wanted = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly restartBackoff: Backoff;
  private restartCount = 0;
  private spawnedAt = 0;
  private output: string[] = [];
  private failure: string | null = null;
  private quickFailure = false;
  private exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];

  constructor(options: KeepalivedSupervisorOptions) {
    this.options = options;
    this.restartBackoff = new Backoff({ initialMs: options.restartInitialMs ?? 250, maxMs: options.restartMaxMs ?? 10_000, jitter: false });
  }

  argv(): string[] {
    const o = this.options;
    // -n foreground, -l log to our pipe, -D details, -P VRRP only; pid files per node.
    return inNetns([o.binary, "-n", "-l", "-D", "-P", "-f", o.configFile, "-p", o.pidFile, "-r", o.vrrpPidFile], o.netns);
  }

  /** Stops a keepalived left over from a previous run of the agent, then starts ours. */
  async start(): Promise<void> {
    if (this.wanted) return;
    this.wanted = true;
    this.failure = null;
    this.quickFailure = false;
    await this.stopLeftovers();
    await this.removeStalePidFiles();
    if (this.wanted) this.spawnChild();
  }

  pid(): number | null {
    return this.child?.pid ?? null;
  }

  running(): boolean {
    return this.child !== null;
  }

  restarts(): number {
    return this.restartCount;
  }

  /** How the last unexpected exit looked (for repair reports), or null if none since the last start. */
  lastFailure(): string | null {
    return this.failure;
  }

  /**
   * Whether keepalived keeps dying right after it is spawned (its last exit came within
   * FAILED_START_MS of its start and no keepalived has stayed up that long since).
   */
  failingToStart(): boolean {
    if (!this.quickFailure) return false;
    return this.child === null || performance.now() - this.spawnedAt < FAILED_START_MS;
  }

  /**
   * Starts keepalived now if it should run and does not (skipping the backoff wait). Returns
   * what it did, or null when keepalived runs (or is not wanted).
   */
  async ensureRunning(): Promise<string | null> {
    if (!this.wanted || this.child) return null;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    await this.restartNow();
    return this.child ? `restarted keepalived (pid ${(this.child as KeepalivedChild).pid ?? "?"})` : null;
  }

  /** keepalived's latest output lines (for error messages). */
  recentOutput(): string[] {
    return [...this.output];
  }

  /** Called once per exit of the keepalived process (expected or not). */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }

  /** Sends SIGHUP (keepalived re-reads its config). False when it is not running. */
  reload(): boolean {
    const child = this.child;
    if (!child || child.pid === undefined) return false;
    return child.kill("SIGHUP");
  }

  /**
   * SIGTERM (keepalived removes its VIP and sends a priority-0 advert), wait up to
   * `timeoutMs`, then SIGKILL it and its VRRP child. Returns true if it had to be killed.
   */
  async stop(timeoutMs = 3_000): Promise<boolean> {
    this.wanted = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child || child.pid === undefined) return false;
    const vrrpPid = await keepalivedFromPidFile(this.options.vrrpPidFile, this.options.pidFile);
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    child.kill("SIGTERM");
    const stoppedInTime = await Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    let killed = false;
    if (!stoppedInTime) {
      this.options.logger.warn({ pid: child.pid, timeoutMs }, "keepalived did not stop after SIGTERM; killing it");
      child.kill("SIGKILL");
      killed = true;
      await exited;
    }
    if (vrrpPid !== null && processAlive(vrrpPid)) {
      // Its VRRP child normally follows the parent; do not leave one behind.
      if (!(await waitForExit([vrrpPid], killed ? 200 : 1_000))) {
        process.kill(vrrpPid, "SIGKILL");
        killed = true;
        await waitForExit([vrrpPid], 1_000);
      }
    }
    return killed;
  }

  private spawnChild(): void {
    const [file, ...args] = this.argv();
    const child = spawn(file as string, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.spawnedAt = performance.now();
    const logLines = (chunk: string): void => {
      for (const raw of chunk.split("\n")) {
        // keepalived prefixes each line with a wall-clock date; pino has its own timestamps.
        const line = raw.replace(/^\w{3} \w{3} +\d+ [\d:]+ \d{4}: /, "").trim();
        if (line === "") continue;
        this.output.push(line.slice(0, 500));
        if (this.output.length > OUTPUT_LINES_KEPT) this.output.shift();
        this.options.logger.debug({ keepalived: line.slice(0, 500) }, "keepalived");
      }
    };
    child.stdout.setEncoding("utf8").on("data", logLines);
    child.stderr.setEncoding("utf8").on("data", logLines);
    child.on("error", (error) => this.options.logger.error({ err: error, binary: file }, "keepalived could not be started"));
    child.on("close", (code, signal) => this.onChildExit(child, code, signal));
    this.options.logger.info({ pid: child.pid, argv: this.argv() }, "keepalived started");
    if (child.pid !== undefined) this.options.onRunning?.(true);
  }

  private onChildExit(child: KeepalivedChild, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = null;
    this.options.onRunning?.(false);
    for (const listener of this.exitListeners) listener(code, signal);
    if (!this.wanted) {
      this.options.logger.info({ code, signal }, "keepalived stopped");
      return;
    }
    const upMs = performance.now() - this.spawnedAt;
    if (upMs > STABLE_MS) this.restartBackoff.reset();
    const delay = this.restartBackoff.next();
    const how = code !== null ? `exit code ${code}` : `signal ${signal ?? "?"}`;
    this.failure = `keepalived (${this.options.binary}) exited after ${Math.round(upMs)} ms with ${how}: ${this.output.slice(-3).join("; ") || "no output"}`;
    this.quickFailure = upMs < FAILED_START_MS;
    if (this.quickFailure) {
      // Dies at once: the binary or its config is broken. Say so plainly; keep retrying with backoff.
      this.options.logger.error({ code, signal, upMs: Math.round(upMs), restartInMs: delay, lastOutput: this.output.slice(-3), binary: this.options.binary }, `keepalived fails to start (${how}); retrying in ${delay} ms`);
    } else {
      this.options.logger.warn({ code, signal, upMs: Math.round(upMs), restartInMs: delay, lastOutput: this.output.slice(-3) }, "keepalived exited unexpectedly; restarting it");
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.restartNow();
    }, delay);
  }

  private async restartNow(): Promise<void> {
    if (!this.wanted) return;
    // A VRRP child whose parent was killed lingers briefly; a new keepalived must not meet it.
    await this.stopLeftovers();
    await this.removeStalePidFiles();
    if (!this.wanted || this.child) return;
    this.restartCount += 1;
    this.spawnChild();
  }

  /**
   * Removes pid files that name a dead or zombie process. Keepalived refuses to start
   * ("daemon is already running") while its pid file names any existing pid, and the VRRP
   * child of a SIGKILLed keepalived stays a zombie until init reaps it, seconds later.
   */
  private async removeStalePidFiles(): Promise<void> {
    for (const file of [this.options.pidFile, this.options.vrrpPidFile]) {
      let pid: number;
      try {
        pid = Number((await readFile(file, "utf8")).trim());
      } catch {
        continue;
      }
      if (Number.isInteger(pid) && pid > 1 && processAlive(pid)) continue;
      await unlink(file).catch(() => undefined);
      this.options.logger.debug({ file, pid }, "removed a stale keepalived pid file");
    }
  }

  /**
   * Stops any keepalived still running with our pid files (a previous agent, or a killed parent's
   * child). Only ever called by the agent that holds the node's instance lock (runAgent takes it
   * before the driver exists), so the keepalived found here is never a live agent's.
   */
  private async stopLeftovers(): Promise<void> {
    const marker = this.options.pidFile;
    const pids = (await Promise.all([keepalivedFromPidFile(this.options.pidFile, marker), keepalivedFromPidFile(this.options.vrrpPidFile, marker)])).filter(
      (pid): pid is number => pid !== null && pid !== this.child?.pid,
    );
    if (pids.length === 0) return;
    this.options.logger.warn({ pids }, "stopping a keepalived left over from an earlier run");
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    if (await waitForExit(pids, 3_000)) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await waitForExit(pids, 1_000);
  }
}
