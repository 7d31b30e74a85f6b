import { MnhaError } from "@mnha/shared";
import { runCommand as runOne } from "../checks/command.js";

/** What one run of an external command produced. Never thrown: callers decide what failure means. */
export interface CommandResult {
  /** Exit code; null when the command was killed or could not be started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be run at all ("spawn /usr/sbin/ip ENOENT"). */
  error: string | null;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  netns?: string | undefined;
}

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks a network namespace name before it is put in an argument list. */
export function assertNetnsName(netns: string): void {
  if (!NETNS_NAME.test(netns)) {
    throw new MnhaError("INTERNAL", `network namespace name ${JSON.stringify(netns)} is not valid`, {
      hint: "use 1-64 letters, digits, '.', '_' or '-'",
    });
  }
}

/** The argument list that runs `argv` inside `netns` (or `argv` itself when none is given). */
export function inNetns(argv: readonly string[], netns?: string): string[] {
  if (netns === undefined) return [...argv];
  assertNetnsName(netns);
  // `ip netns exec` execs the command in place: the pid stays the command's own pid.
  return ["ip", "netns", "exec", netns, ...argv];
}

/**
 * Runs a command from an argument list (no shell), with a timeout: the agent's one
 * runCommand (checks/command.ts), its result in this module's shape (stdout and stderr apart,
 * up to 1 MiB each).
 */
export async function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const full = inNetns(argv, options.netns);
  const [file] = full;
  if (file === undefined) return { code: null, signal: null, stdout: "", stderr: "", timedOut: false, error: "empty command" };
  const result = await runOne(full, { timeoutMs: options.timeoutMs ?? 5_000, killGraceMs: 0, outputLimit: 1024 * 1024 });
  if (result.spawnError !== null) return { code: null, signal: null, stdout: "", stderr: "", timedOut: false, error: `${file} could not be run (${result.spawnError})` };
  return { code: result.exitCode, signal: result.signal, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut, error: null };
}

/** A one-line description of a failed run, for logs and error messages. */
export function describeFailure(argv: readonly string[], result: CommandResult): string {
  const what = argv.join(" ");
  if (result.error !== null) return result.error;
  if (result.timedOut) return `${what} timed out`;
  const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(0, 5).join("; ");
  const status = result.code !== null ? `exit code ${result.code}` : `signal ${result.signal ?? "?"}`;
  return `${what} failed (${status})${output ? `: ${output}` : ""}`;
}
