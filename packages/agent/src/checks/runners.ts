import { readFile, readdir } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { CheckConfig } from "@mnha/shared";
import type { CheckResult } from "../contracts.js";
import { describeCommandResult, firstOutputLine, runCommand, type CommandResult } from "./command.js";
import { probeMariaDb } from "./mariadb-check.js";

/**
 * One run of one health check. Every runner releases its socket, child or file handle when
 * the check's signal aborts; `runCheck` aborts it at the timeout and settles at once, so a
 * hung target costs at most timeoutMs.
 */

export interface RunCheckOptions {
  /** Aborting ends the check early (agent stopping): it resolves as not ok, "check aborted". */
  signal?: AbortSignal | undefined;
}

interface Outcome {
  ok: boolean;
  detail: string;
  notRestorable?: string;
}

type HttpCheck = Extract<CheckConfig, { kind: "http" }>;
type ProcessCheck = Extract<CheckConfig, { kind: "process" }>;

/** Runs a check once. Never throws; resolves within check.timeoutMs (plus scheduling delay). */
export function runCheck(check: CheckConfig, options: RunCheckOptions = {}): Promise<CheckResult> {
  const started = performance.now();
  const probeController = new AbortController();
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome, probeFinished: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      // A probe cut short (timeout, abort) must release whatever it still holds. One that
      // finished has already: aborting it then would only build an AbortError (a DOMException
      // with a stack trace) five times a second per service for nothing (issue 12).
      if (!probeFinished) probeController.abort(PROBE_CUT_SHORT);
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      resolve(outcome.notRestorable === undefined ? { ok: outcome.ok, detail: outcome.detail, latencyMs } : { ok: outcome.ok, detail: outcome.detail, latencyMs, notRestorable: outcome.notRestorable });
    };
    const onAbort = () => settle({ ok: false, detail: "check aborted" }, false);
    const timer = setTimeout(() => settle({ ok: false, detail: `timed out after ${check.timeoutMs} ms` }, false), check.timeoutMs);
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    probe(check, probeController.signal).then(
      (outcome) => settle(outcome, true),
      (error: unknown) => settle({ ok: false, detail: `check error: ${errorText(error)}` }, true),
    );
  });
}

/** The abort reason given to a probe cut short (one object: no error built per check). */
const PROBE_CUT_SHORT = Object.freeze({ reason: "check settled before its probe finished" });

function probe(check: CheckConfig, signal: AbortSignal): Promise<Outcome> {
  switch (check.kind) {
    case "tcp":
      return probeTcp(check.host, check.port, signal);
    case "http":
      return probeHttp(check, signal);
    case "command":
      return probeCommand(check.command, check.timeoutMs, signal);
    case "systemd":
      return probeSystemd(check.unit, check.timeoutMs, signal);
    case "process":
      return probeProcess(check, signal);
    case "mariadb":
      return probeMariaDb(check, signal);
  }
}

function probeTcp(host: string, port: number, signal: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (outcome: Outcome) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = () => finish({ ok: false, detail: "aborted" });
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => finish({ ok: true, detail: `connected to ${host}:${port}` }));
    socket.on("error", (error: NodeJS.ErrnoException) => finish({ ok: false, detail: `connect ${error.code ?? error.message}` }));
  });
}

/** Matches a status against entries such as 200 or "2xx". */
export function statusMatches(status: number, expected: readonly (number | string)[]): boolean {
  return expected.some((pattern) => (typeof pattern === "number" ? pattern === status : /^[1-5]xx$/.test(pattern) && Math.floor(status / 100) === Number(pattern[0])));
}

/**
 * One kept connection per HTTP target (issue 12: a TCP connect and close every 200 ms per
 * service was the largest cost of an idle agent's checks). Each check still sends its own
 * request and passes only on a whole response within its timeout; any check that does not
 * pass destroys its connection, so the next one starts on a fresh connection. A request
 * that fails on a reused connection before any response (the server closed it while idle)
 * is tried once more on a fresh one, within the same timeout: a dead service fails, an idle
 * close does not.
 */
const httpAgents = new Map<string, http.Agent>();

function httpAgentFor(url: URL, check: HttpCheck): http.Agent {
  const key = `${url.protocol}//${url.host}|${check.insecure ? "insecure" : "verified"}`;
  let agent = httpAgents.get(key);
  if (agent === undefined) {
    const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
    agent = url.protocol === "https:" ? new https.Agent({ ...options, rejectUnauthorized: !check.insecure }) : new http.Agent(options);
    httpAgents.set(key, agent);
  }
  return agent;
}

/** Closes the kept HTTP connections (the service monitor stopping). */
export function closeHttpProbes(): void {
  for (const agent of httpAgents.values()) agent.destroy();
  httpAgents.clear();
}

async function probeHttp(check: HttpCheck, signal: AbortSignal): Promise<Outcome> {
  const url = new URL(check.url);
  const first = await probeHttpOnce(url, check, signal);
  if (first.retryFresh && !signal.aborted) return probeHttpOnce(url, check, signal);
  return first;
}

function probeHttpOnce(url: URL, check: HttpCheck, signal: AbortSignal): Promise<Outcome & { retryFresh?: boolean }> {
  return new Promise((resolve) => {
    const client = url.protocol === "https:" ? https : http;
    let status: number | null = null;
    let done = false;
    const finish = (outcome: Outcome & { retryFresh?: boolean }) => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      // Only a check that passed leaves its connection to the next one.
      if (!outcome.ok) request.destroy();
      resolve(outcome);
    };
    const onAbort = () => finish({ ok: false, detail: "aborted" });
    const request = client.get(url, { agent: httpAgentFor(url, check), rejectUnauthorized: !check.insecure, headers: { "user-agent": "mnha-check" } }, (response) => {
      status = response.statusCode ?? 0;
      const matched = statusMatches(status, check.expectStatus);
      const verdict: Outcome = matched ? { ok: true, detail: `HTTP ${status}` } : { ok: false, detail: `HTTP ${status} (expected ${check.expectStatus.join(", ")})` };
      // Read and drop the body; the check is complete when the whole response has arrived.
      response.resume();
      response.once("end", () => finish(verdict));
      response.once("error", (error: Error) => finish({ ok: false, detail: `HTTP ${status} but the body failed: ${errorText(error)}` }));
      response.once("aborted", () => finish({ ok: false, detail: `HTTP ${status} but the body was cut off` }));
    });
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (status !== null) finish({ ok: false, detail: `HTTP ${status} but the body failed: ${errorText(error)}` });
      else finish({ ok: false, detail: requestErrorText(error), retryFresh: request.reusedSocket });
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

function requestErrorText(error: NodeJS.ErrnoException): string {
  if (error.syscall !== undefined && error.code !== undefined) return `${error.syscall} ${error.code}`;
  if (error.code !== undefined) return `request failed: ${error.code}`;
  return `request failed: ${errorText(error)}`;
}

async function probeCommand(argv: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<Outcome> {
  // The check's own timer settles first; the command's limit is the same, as a backstop.
  const result = await runCommand(argv, { timeoutMs, signal, killGraceMs: 0 });
  const detail = describeCommandResult(argv, result, timeoutMs);
  if (result.exitCode === 0) return { ok: true, detail };
  const notRestorable = uncheckableReason(argv, result);
  return notRestorable === null ? { ok: false, detail } : { ok: false, detail, notRestorable };
}

/** Spawn errors that are the program's own: missing, not executable, not a program, a bad path. */
const PROGRAM_ERRORS: ReadonlySet<string> = new Set(["ENOENT", "EACCES", "ENOEXEC", "ENOTDIR", "ELOOP"]);
/** What sh, bash, env, docker exec and the like print when they cannot find or run a program. */
const SHELL_CANNOT_RUN = /not found|No such file or directory|Permission denied|cannot execute|not executable/i;

const UNCHECKABLE_FIX = "fix the service's check.command in the config (or install what it runs), then restart the agent (systemctl restart mnha)";

/**
 * A check whose own program cannot be run (a typo in check.command, a tool not installed)
 * fails whatever state the service is in: restarting a service that may be serving would only
 * cut its clients off, over and over. Exit 127 and 126 with a shell's words for it are what a
 * shell (or env, docker exec) says when a program it runs is not found or not executable
 * (`sh -c "curl ..."` without curl). Null: the check ran, or cannot tell.
 */
export function uncheckableReason(argv: readonly string[], result: Pick<CommandResult, "spawnError" | "exitCode" | "output">): string | null {
  const program = argv[0] ?? "";
  if (result.spawnError !== null) {
    // Only what is wrong with the program itself: EAGAIN, ENOMEM or EMFILE are this host's
    // trouble of the moment, and say nothing about the check or the service.
    if (!PROGRAM_ERRORS.has(result.spawnError)) return null;
    return `the check's program ${program} cannot be run (${result.spawnError === "ENOENT" ? "not found" : result.spawnError}), and restarting the service cannot change that: ${UNCHECKABLE_FIX}`;
  }
  // A program of the check's own that exits 126 or 127 for reasons of its own (rare: LSB and
  // Nagios codes stop at 4) does not count: the output must say what a shell says.
  if ((result.exitCode === 127 || result.exitCode === 126) && SHELL_CANNOT_RUN.test(result.output)) {
    const what = result.exitCode === 127 ? "a program it runs was not found" : "a program it runs is not executable";
    return `the check's command exited ${result.exitCode} (${what}), and restarting the service cannot change that: ${UNCHECKABLE_FIX}`;
  }
  return null;
}

async function probeSystemd(unit: string, timeoutMs: number, signal: AbortSignal): Promise<Outcome> {
  // Without --quiet, systemctl prints the state ("inactive", "failed"), which makes a better detail.
  const argv = ["systemctl", "is-active", unit];
  const result = await runCommand(argv, { timeoutMs, signal, killGraceMs: 0, env: { ...process.env, LC_ALL: "C" } });
  if (result.spawnError === "ENOENT") {
    return { ok: false, detail: `systemctl not found: cannot check unit ${unit} without systemd`, notRestorable: `systemctl is not installed, so no systemd check can pass, and restarting the service cannot change that: use another check kind (command, http, tcp, process) for ${unit} on this host, then restart the agent` };
  }
  const line = firstOutputLine(result.output);
  // A state is one word ("inactive", "failed"); anything else is systemctl explaining a problem.
  const state = /^[a-z-]+$/.test(line) ? line : null;
  if (result.exitCode === 0) return { ok: true, detail: `${unit} ${state ?? "active"}` };
  if (result.exitCode !== null) {
    if (state !== null) return { ok: false, detail: `${unit} ${state} (exit ${result.exitCode})` };
    return { ok: false, detail: `${unit} not active (exit ${result.exitCode})${line === "" ? "" : `: ${line}`}` };
  }
  return { ok: false, detail: describeCommandResult(argv, result, timeoutMs) };
}

async function probeProcess(check: ProcessCheck, signal: AbortSignal): Promise<Outcome> {
  if (check.pidFile !== undefined) return probePidFile(check.pidFile);
  if (check.name !== undefined) return probeProcessName(check.name, signal);
  return { ok: false, detail: "process check names neither pidFile nor name" };
}

async function probePidFile(pidFile: string): Promise<Outcome> {
  let text: string;
  try {
    text = await readFile(pidFile, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, detail: code === "ENOENT" ? `pid file ${pidFile} does not exist` : `pid file ${pidFile} unreadable (${code ?? "error"})` };
  }
  const match = /^\s*(\d+)\s*$/.exec(text);
  const pid = match?.[1] === undefined ? NaN : Number(match[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return { ok: false, detail: `pid file ${pidFile} holds no pid` };
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, owned by someone else; only ESRCH means it is gone.
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return { ok: false, detail: `pid ${pid} (from ${pidFile}) is not running` };
  }
  const state = await processState(pid);
  if (state === "gone") return { ok: false, detail: `pid ${pid} (from ${pidFile}) is not running` };
  if (state === "Z" || state === "X") return { ok: false, detail: `pid ${pid} (from ${pidFile}) is a zombie` };
  return { ok: true, detail: `pid ${pid} running` };
}

/** The one-letter state in /proc/PID/stat, "gone" if it has no entry, null if /proc cannot say. */
async function processState(pid: number): Promise<string | "gone" | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name in parentheses may itself hold ") "; the state follows the last ")".
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "" ? null : state;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? "gone" : null;
  }
}

/** Reads /proc in batches so a host with many processes cannot exhaust file descriptors. */
const PROC_SCAN_BATCH = 64;

async function probeProcessName(name: string, signal: AbortSignal): Promise<Outcome> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch (error) {
    return { ok: false, detail: `cannot list /proc (${(error as NodeJS.ErrnoException).code ?? "error"}): process checks by name need Linux` };
  }
  const pids = entries.filter((entry) => /^\d+$/.test(entry));
  let zombie: string | null = null;
  for (let i = 0; i < pids.length; i += PROC_SCAN_BATCH) {
    if (signal.aborted) return { ok: false, detail: "aborted" };
    const batch = pids.slice(i, i + PROC_SCAN_BATCH);
    const comms = await Promise.all(batch.map((pid) => readFile(`/proc/${pid}/comm`, "utf8").catch(() => null)));
    for (let j = 0; j < batch.length; j += 1) {
      const pid = batch[j] as string;
      if (comms[j]?.replace(/\n$/, "") !== name) continue;
      const state = await processState(Number(pid));
      if (state === "Z" || state === "X") zombie = pid;
      else if (state !== "gone") return { ok: true, detail: `${name} running as pid ${pid}` };
    }
  }
  return { ok: false, detail: zombie === null ? `no process named ${name}` : `${name} is a zombie (pid ${zombie})` };
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
