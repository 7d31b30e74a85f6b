/**
 * Running external commands for the lab: always execFile with an argument array, always
 * with a timeout, never a shell.
 */
import { execFile, spawn } from "node:child_process";
import { MnhaError } from "@mnha/shared";
import { LAB_STATE_DIR } from "./constants.js";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Return a failed result instead of throwing. */
  allowFailure?: boolean;
  /** Written to the command's stdin (for nft -f -). */
  input?: string;
  /** Signal sent at the timeout (default SIGKILL; SIGINT lets arping print what it got). */
  killSignal?: NodeJS.Signals;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].join(" ");
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const result = options.input === undefined ? await runExecFile(file, args, timeoutMs, options.killSignal ?? "SIGKILL") : await runWithInput(file, args, options.input, timeoutMs);
  if (result.code !== 0 && options.allowFailure !== true) {
    throw new MnhaError("INTERNAL", `lab command failed (exit ${result.code}): ${describeCommand(file, args)}: ${firstLine(result.stderr || result.stdout)}`, {
      hint: "run the lab as root with iproute2, iputils-arping, nftables and keepalived installed; `pnpm lab down` clears a half-built lab",
      fields: { command: [file, ...args], code: result.code },
    });
  }
  return result;
}

/** Runs a command inside a lab namespace (`ip netns exec NS ...`). */
export function runIn(namespace: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  return run("ip", ["netns", "exec", namespace, file, ...args], options);
}

function runExecFile(file: string, args: readonly string[], timeoutMs: number, killSignal: NodeJS.Signals): Promise<CommandResult> {
  return new Promise((resolveResult) => {
    execFile(file, [...args], { timeout: timeoutMs, killSignal, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) return resolveResult({ code: 0, stdout, stderr });
      const failure = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      const code = typeof failure.code === "number" ? failure.code : -1;
      const reason = failure.killed === true ? `timed out after ${timeoutMs} ms` : typeof failure.code === "string" ? failure.code : "";
      resolveResult({ code, stdout, stderr: stderr || reason || failure.message });
    });
  });
}

function runWithInput(file: string, args: readonly string[], input: string, timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolveResult) => {
    const child = spawn(file, [...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      resolveResult({ code: -1, stdout, stderr: error.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveResult({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** CLOCK_MONOTONIC in milliseconds: the same clock in every process on the machine. */
export function monoNow(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/**
 * Polls `probe` until it returns a value other than undefined; bounded by both a deadline
 * and a number of attempts. Throws MnhaError naming what was awaited.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, options: { timeoutMs: number; intervalMs?: number; hint?: string; describeLast?: () => string }): Promise<T> {
  const intervalMs = options.intervalMs ?? 100;
  const deadline = monoNow() + options.timeoutMs;
  const maxAttempts = Math.ceil(options.timeoutMs / Math.max(intervalMs, 1)) + 1;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    if (monoNow() >= deadline) break;
    await sleep(intervalMs);
  }
  const last = options.describeLast?.();
  throw new MnhaError("INTERNAL", `timed out after ${options.timeoutMs} ms waiting for ${what}${last ? ` (last seen: ${last})` : ""}`, {
    hint: options.hint ?? `see the logs in ${LAB_STATE_DIR}/<node>/; \`pnpm lab status\` shows the lab's state`,
  });
}
