/** Where the CLI reads and writes: the process's streams, or a test's buffers. */
import { MnhaError } from "@mnha/shared";
import { exitCodeFor, ExitCode, type ExitCodeValue } from "./exit-codes.js";

export interface TextSink {
  write(text: string): unknown;
}

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  /** For the demote confirmation; a TTY only when a person is at the keyboard. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Defaults to process.env (MNHA_CONFIG, MNHA_DEBUG). */
  env?: Record<string, string | undefined>;
  /** Loads the daemon module for `mnha agent`; tests replace it. */
  loadAgentModule?: () => Promise<unknown>;
  /** The control socket tried when neither --socket nor a readable config names one; tests replace it. */
  defaultSocketPath?: string;
}

/** Prints an error the operator can act on and returns the exit code that goes with it. */
export function reportError(io: CliIo, programName: string, error: unknown, json: boolean): ExitCodeValue {
  if (error instanceof MnhaError) {
    if (json) io.stdout.write(`${JSON.stringify({ error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } }, null, 2)}\n`);
    else io.stderr.write(`${programName}: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
    return exitCodeFor(error.code);
  }
  // The machine, not mnha: a file system full, read-only or closed to us, met where no adapter expected it.
  const environmental = environmentalError(error);
  if (environmental !== null) return reportError(io, programName, environmental, json);
  // Not an expected failure: one line, and the stack only when asked for.
  const message = error instanceof Error ? error.message : String(error);
  const debug = (io.env ?? process.env)["MNHA_DEBUG"] === "1";
  const hint = "this is a bug in mnha; rerun with MNHA_DEBUG=1 for details and report it";
  if (json) io.stdout.write(`${JSON.stringify({ error: { code: "INTERNAL", message, hint } }, null, 2)}\n`);
  else io.stderr.write(`${programName}: unexpected error: ${message}\nhint: ${hint}\n`);
  if (debug && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
  return ExitCode.failed;
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A Node.js system error that says the machine refused (full or read-only file system, no
 * permission) as an MnhaError with the fix; null for anything else.
 */
export function environmentalError(error: unknown): MnhaError | null {
  if (!(error instanceof Error)) return null;
  const { code, path } = error as NodeJS.ErrnoException;
  const where = typeof path === "string" ? path : null;
  const place = where ?? "the file system it writes to";
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return new MnhaError("DISK_FULL", `no space left on ${place} (${code}): ${error.message}`, { hint: `free space there (df -h${where ? ` ${where}` : ""}), then run the command again`, cause: error });
    case "EROFS":
      return new MnhaError("OPERATION_FAILED", `${place} is on a read-only file system (EROFS): ${error.message}`, { hint: "remount it read-write (or point the command elsewhere), then run the command again", cause: error });
    case "EACCES":
    case "EPERM":
      return new MnhaError("PERMISSION_DENIED", `not allowed to use ${place} (${code}): ${error.message}`, { hint: "run mnha as root, and check the file's owner and mode", cause: error });
    default:
      return null;
  }
}
