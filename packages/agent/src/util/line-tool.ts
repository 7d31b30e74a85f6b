/**
 * A long-running command-line tool whose output lines are read as they come, started again
 * when it ends: the gateway's `ping -i` and the duplicate check's `arping -i`. Both replace a
 * fork per probe (costly from a 100 MB agent, issue 12) with one process that keeps sending,
 * and both judge each request they sent on its own deadline (RequestDeadline below).
 *
 * What this holds once: spawning with LC_ALL=C (the tools print "0.29 ms" with the C decimal
 * point whatever the locale), reading stdout by line, keeping the first stderr line for the
 * exit's detail, telling a spawn error from an exit, ignoring a child that has been replaced,
 * restarting with the agent's Backoff, and killing the child on stop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { Backoff } from "./backoff.js";

/** How a run of the tool ended. */
export interface LineToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the tool could not be started at all (ENOENT, EACCES…). */
  spawnError: Error | null;
  /** The first non-empty line it wrote on stderr ("" for none). */
  stderrLine: string;
  /** How long this run lived. */
  livedMs: number;
}

export interface LineToolOptions {
  /** The command line, read at each start. */
  argv: () => readonly string[];
  /** Called as each run has been started, before any of its lines (reset the per-run state, arm deadlines). */
  onStarted: () => void;
  /** One stdout line of the current run. */
  onLine: (line: string) => void;
  /**
   * The current run ended while the tool should be running. Return "now" to start the next
   * run at once (a planned end such as the tool's own deadline), or "backoff" to start it
   * after the next backoff delay, which is passed to `onRestartScheduled`.
   */
  onExit: (exit: LineToolExit) => "now" | "backoff";
  onRestartScheduled?: (delayMs: number) => void;
  /** The restart backoff: exponential from `initialMs` to `maxMs`, no jitter (a local restart). */
  backoff: { initialMs: number; maxMs: number };
}

export class LineTool {
  private child: ChildProcess | null = null;
  private exited: Promise<void> | null = null;
  private running = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;

  constructor(private readonly options: LineToolOptions) {
    this.backoff = new Backoff({ ...options.backoff, jitter: false });
  }

  /** A run is alive now (false between an exit and its restart). */
  alive(): boolean {
    return this.child !== null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.spawnRun();
  }

  /** Stops restarting and kills the current run; resolves once it has exited. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const exited = this.exited;
    this.child?.kill("SIGKILL");
    this.child = null;
    if (exited !== null) await exited;
  }

  /** A line proved the tool works: the next failure starts again from the shortest delay. */
  resetBackoff(): void {
    this.backoff.reset();
  }

  private spawnRun(): void {
    if (!this.running) return;
    const [file, ...args] = this.options.argv();
    const child = spawn(file as string, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    this.child = child;
    const startedMs = performance.now();
    let stderrLine = "";
    let spawnError: Error | null = null;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (this.child === child) this.options.onLine(line);
    });
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (stderrLine === "" && line.trim() !== "") stderrLine = line.trim();
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        resolve();
        if (this.child !== child) return;
        this.child = null;
        this.exited = null;
        if (!this.running) return;
        const next = this.options.onExit({ code, signal, spawnError, stderrLine, livedMs: performance.now() - startedMs });
        if (!this.running) return;
        if (next === "now") {
          this.spawnRun();
          return;
        }
        const delayMs = this.backoff.next();
        this.options.onRestartScheduled?.(delayMs);
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          this.spawnRun();
        }, delayMs);
      });
    });
    // No line or exit of this run can be handled before this returns: they come as events.
    this.options.onStarted();
  }
}

/**
 * The deadline of the oldest request not yet judged. Re-arming or clearing voids a judgment
 * already queued. The judgment runs after the event loop's poll phase (setImmediate), so a
 * reply the tool already wrote while this process was not running (a loaded machine) is
 * read first and not counted as lost.
 */
export class RequestDeadline {
  private timer: NodeJS.Timeout | null = null;
  private generation = 0;

  /** Calls `judge` at `atMs` (performance.now() time) unless re-armed or cleared first. */
  arm(atMs: number, judge: () => void): void {
    this.clear();
    const generation = this.generation;
    this.timer = setTimeout(() => {
      this.timer = null;
      setImmediate(() => {
        if (generation === this.generation) judge();
      });
    }, Math.max(0, atMs - performance.now()));
  }

  clear(): void {
    this.generation++;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
