import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";

/**
 * The agent's one way to run an external command (argv, never a shell) with a hard time
 * limit: checks, restores, gateway pings, and (through net/command.ts) ip, systemctl and
 * the rest. The child leads its own process group, so a timeout or an abort kills everything
 * it started that is still in that group. Never throws; always settles shortly after the
 * limit, even if the child ignores signals.
 */
export interface CommandOptions {
  timeoutMs: number;
  /** Aborting kills the command the same way a timeout does. */
  signal?: AbortSignal | undefined;
  /** SIGTERM first and SIGKILL this long after; 0 sends SIGKILL at once. */
  killGraceMs?: number;
  /** Bytes of combined stdout and stderr kept for the result (the rest is read and dropped). */
  outputLimit?: number;
  env?: NodeJS.ProcessEnv;
}

export interface CommandResult {
  /** Exit status, or null if the command was killed by a signal or never ran. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** Why the command could not be started ("ENOENT", "EACCES"), or null. */
  spawnError: string | null;
  /** The first `outputLimit` bytes of stdout and stderr, interleaved as they came. */
  output: string;
  /** Each stream on its own, each up to `outputLimit` bytes (for commands whose stdout is data, such as `ip -j`). */
  stdout: string;
  stderr: string;
  durationMs: number;
}

const DEFAULT_OUTPUT_LIMIT = 4_096;
/** After the child exits, how long to wait for its pipes to close before moving on. */
const PIPE_CLOSE_GRACE_MS = 50;
/** After SIGKILL, how long to wait for the exit to be reported before settling anyway. */
const EXIT_REPORT_GRACE_MS = 200;

export function runCommand(argv: readonly string[], options: CommandOptions): Promise<CommandResult> {
  const started = performance.now();
  const killGraceMs = Math.max(0, options.killGraceMs ?? 0);
  const outputLimit = options.outputLimit ?? DEFAULT_OUTPUT_LIMIT;
  const [file, ...args] = argv;

  return new Promise<CommandResult>((resolve) => {
    const base = { exitCode: null, signal: null, timedOut: false, aborted: false, spawnError: null, output: "", stdout: "", stderr: "", durationMs: 0 };
    if (file === undefined) {
      resolve({ ...base, spawnError: "EINVAL" });
      return;
    }
    if (options.signal?.aborted) {
      resolve({ ...base, aborted: true });
      return;
    }

    const chunks: Buffer[] = [];
    let kept = 0;
    const streams = { stdout: { chunks: [] as Buffer[], kept: 0 }, stderr: { chunks: [] as Buffer[], kept: 0 } };
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let timedOut = false;
    let aborted = false;
    let spawnError: string | null = null;
    let settled = false;
    let exited = false;
    const timers: NodeJS.Timeout[] = [];

    let child: ChildProcess;
    try {
      // detached: the child leads a new process group (and session), so -pid reaches its children.
      child = spawn(file, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
    } catch (error) {
      resolve({ ...base, spawnError: (error as NodeJS.ErrnoException).code ?? "ERROR", durationMs: performance.now() - started });
      return;
    }

    const collect = (name: "stdout" | "stderr") => (chunk: Buffer) => {
      const own = streams[name];
      if (own.kept < outputLimit) {
        const part = chunk.subarray(0, outputLimit - own.kept);
        own.chunks.push(part);
        own.kept += part.length;
      }
      if (kept >= outputLimit) return;
      const part = chunk.subarray(0, outputLimit - kept);
      chunks.push(part);
      kept += part.length;
    };
    child.stdout?.on("data", collect("stdout"));
    child.stderr?.on("data", collect("stderr"));
    // A pipe error (EPIPE, reset) changes nothing about the verdict; listen so it cannot crash us.
    child.stdout?.on("error", () => undefined);
    child.stderr?.on("error", () => undefined);

    const settle = () => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      releasePipes(child);
      resolve({
        exitCode,
        signal: exitSignal,
        timedOut,
        aborted,
        spawnError,
        output: Buffer.concat(chunks).toString("utf8"),
        stdout: Buffer.concat(streams.stdout.chunks).toString("utf8"),
        stderr: Buffer.concat(streams.stderr.chunks).toString("utf8"),
        durationMs: performance.now() - started,
      });
    };

    const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      if (!running()) return;
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        // The group may already be gone, or the child not yet a group leader: signal it alone.
        try {
          child.kill(signal);
        } catch {
          /* already gone */
        }
      }
    };
    const terminate = () => {
      if (killGraceMs > 0) {
        killGroup("SIGTERM");
        timers.push(setTimeout(() => killGroup("SIGKILL"), killGraceMs));
      } else {
        killGroup("SIGKILL");
      }
      // A child stuck in the kernel (state D) may never report its exit; do not wait for it.
      timers.push(setTimeout(settle, killGraceMs + EXIT_REPORT_GRACE_MS));
    };

    const onAbort = () => {
      if (settled || exited || timedOut || aborted) return;
      aborted = true;
      terminate();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });

    timers.push(
      setTimeout(() => {
        if (settled || exited || aborted) return;
        timedOut = true;
        terminate();
      }, options.timeoutMs),
    );

    child.on("error", (error: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT, EACCES) come here with no pid and no exit event.
      if (child.pid === undefined) {
        spawnError = error.code ?? "ERROR";
        settle();
      }
    });
    child.on("exit", (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      // Give the pipes a moment to deliver the last output, but do not wait for
      // a background process that inherited them.
      timers.push(setTimeout(settle, PIPE_CLOSE_GRACE_MS));
    });
    child.on("close", settle);
  });
}

/**
 * Once the result is in, stop holding the child's pipes open for the event loop. A background
 * process the command left behind (a daemon a restore started) may still hold the write end:
 * keep draining it so it never blocks or dies of SIGPIPE, but let the agent exit regardless.
 */
function releasePipes(child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null || stream.destroyed || stream.readableEnded) continue;
    stream.removeAllListeners("data");
    stream.resume();
    (stream as Readable & { unref?: () => void }).unref?.();
  }
  if (child.exitCode === null && child.signalCode === null) child.unref();
}

/** A short, readable reason for a command's result: "exit 0", "exit 1: No such file", "timed out after 500 ms". */
export function describeCommandResult(argv: readonly string[], result: CommandResult, timeoutMs: number): string {
  if (result.spawnError === "ENOENT") return `command not found: ${argv[0] ?? ""}`;
  if (result.spawnError !== null) return `cannot run ${argv[0] ?? ""} (${result.spawnError})`;
  if (result.timedOut) return `timed out after ${timeoutMs} ms`;
  if (result.aborted) return "aborted";
  const firstLine = firstOutputLine(result.output);
  const suffix = firstLine === "" ? "" : `: ${firstLine}`;
  if (result.exitCode !== null) return `exit ${result.exitCode}${suffix}`;
  return `killed by ${result.signal ?? "signal"}${suffix}`;
}

/** The first non-empty line of a command's output, shortened for a status line. */
export function firstOutputLine(output: string, maxLength = 160): string {
  const line = output.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  return line.length > maxLength ? `${line.slice(0, maxLength - 3)}...` : line;
}
