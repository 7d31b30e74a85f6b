#!/usr/bin/env node
/**
 * Entry point of the `mnha` and `zsha2` commands. `main()` is the whole CLI and returns the
 * exit code, so tests run it in-process; executed directly, it runs on process.argv.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { CliIo } from "./cli-io.js";
import { runCli } from "./program.js";

export type { CliIo } from "./cli-io.js";
export { ExitCode } from "./exit-codes.js";

export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  return runCli(argv, io);
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    // bin links (mnha, zsha2) point at this file; Node reports the resolved path.
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

/**
 * A reader that goes away early (`mnha --help | head -3`) makes the next write fail with EPIPE.
 * Unhandled, that is a stack trace and exit 1 for output nobody wanted any more; here the rest
 * of the output is dropped and the command ends with its own exit code. Any other stream error
 * is still thrown.
 */
export function dropOutputOnClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== "EPIPE") throw error;
}

if (invokedDirectly()) {
  process.stdout.on("error", dropOutputOnClosedPipe);
  process.stderr.on("error", dropOutputOnClosedPipe);
  process.exitCode = await main(process.argv);
}
