/**
 * The node lifecycle and diagnostics commands: `maintenance on|off`, `stop-node`,
 * `start-node` and `collect-log`. Thin clients of the control API like the rest of the CLI;
 * collect-log also gathers what only the CLI process should (a system inventory).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { Command, InvalidArgumentError } from "commander";
import { loadConfig, MnhaError, type LoadedConfig } from "@mnha/shared";
import type { CollectResult, CollectedFile, MaintenanceResult, StatusReport } from "../contracts.js";
import type { ControlClient } from "../control/control-client.js";
import { catchUpWithPeer } from "../db/catch-up.js";
import { collectNodePart, knownSecrets } from "../ops/diagnostics.js";
import { redactText } from "../ops/redact.js";
import { printJson, type CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { makeTempDir, removeOnExit, tempDirError } from "../util/temp-files.js";
import { parseMoment } from "./time-range.js";
import { formatBytes } from "../util/format.js";

const execFileAsync = promisify(execFile);

export interface OpsCommandContext {
  name: string;
  io: CliIo;
  state: { exitCode: number; json: boolean };
  client: (timeoutMs?: number) => ControlClient;
  configPath: () => string;
  /** Wait between status polls (tests shorten it). */
  pollMs?: number;
}

/**
 * Who runs the command, for the audit trail. The control socket is root-only, so this is
 * the invoking user as the CLI sees it (SUDO_USER when run through sudo).
 */
export function invokingUser(env: Record<string, string | undefined> = process.env): string {
  let user = "unknown";
  let uid = -1;
  try {
    const info = userInfo();
    user = info.username;
    uid = info.uid;
  } catch {
    uid = typeof process.getuid === "function" ? process.getuid() : -1;
  }
  const sudo = env["SUDO_USER"];
  const text = sudo && sudo !== user ? `${sudo} via sudo as ${user} (uid ${uid})` : `${user} (uid ${uid})`;
  return text.replace(/[^A-Za-z0-9_.@:() -]/g, "_").slice(0, 64);
}

export function registerOpsCommands(program: Command, ctx: OpsCommandContext): void {
  const { io, state, name } = ctx;
  const by = (): string => invokingUser(io.env ?? process.env);

  program
    .command("maintenance")
    .description("maintenance mode on|off: the agent keeps watching and recording but acts on nothing (no restore, no failover)")
    .argument("<mode>", "on or off", (value: string) => {
      if (value !== "on" && value !== "off") throw new InvalidArgumentError(`the mode is on or off, got ${JSON.stringify(value)}.`);
      return value;
    })
    .option("--reason <text>", "why (kept in the audit trail; zsha2: -reason)", "")
    .option("--node <which>", "this, peer or both (default this; zsha2: -node)", (value: string) => {
      if (value !== "this" && value !== "peer" && value !== "both") throw new InvalidArgumentError(`--node takes this, peer or both, got ${JSON.stringify(value)}.`);
      return value;
    }, "this")
    .option("--json", "print the result as JSON (zsha2: -json)")
    .action(async (mode: "on" | "off", options: { reason: string; node: "this" | "peer" | "both"; json?: boolean }) => {
      state.json = options.json === true;
      if (options.reason.length > 500) throw new MnhaError("USAGE", "--reason is longer than 500 characters", { hint: "say it in fewer words; details belong in your ticket" });
      const result = await ctx.client().maintenance({ on: mode === "on", node: options.node, reason: options.reason, by: by() });
      if (state.json) printJson(io, result);
      else io.stdout.write(renderMaintenance(result));
      if (result.peer && !result.peer.ok) state.exitCode = ExitCode.failed;
      if (result.hook && !result.hook.ok) state.exitCode = ExitCode.failed;
    });

  program
    .command("stop-node")
    .description("stop this node's MN service (and UI) and keep the agent from restoring them; the VIP goes to the peer first")
    .option("--keepui", "leave the UI running (zsha2: -keepui)")
    .option("--stopvip", "give the VIP up even when no healthy peer can take it (zsha2: -stopvip)")
    .option("--json", "print the result as JSON (zsha2: -json)")
    .action(async (options: { keepui?: boolean; stopvip?: boolean; json?: boolean }) => {
      state.json = options.json === true;
      const control = ctx.client();
      if (!state.json) {
        const report = await control.status();
        if (report.vipOwner === report.self.node) io.stdout.write(`${report.self.node} holds the VIP: handing it to ${report.peer.node} first...\n`);
      }
      const result = await control.stopNode({ keepUi: options.keepui === true, stopVip: options.stopvip === true, by: by() });
      if (state.json) printJson(io, result);
      else {
        for (const command of result.commands) io.stdout.write(`  stop ${command.name}: ${command.ok ? "ok" : `FAILED: ${command.detail}`}\n`);
        io.stdout.write(`${result.ok ? "" : `${name}: `}${result.message}\n`);
      }
      if (!result.ok) state.exitCode = ExitCode.failed;
    });

  program
    .command("start-node")
    .description("start this node's services, wait until its database has caught up with the peer's (the node stays stopped until then), then until it is healthy and eligible to hold the VIP again")
    .option("--timeout <s>", "give up waiting after this many seconds (default 300; zsha2: -timeout)", (value: string) => {
      const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1 || n > 86_400) throw new InvalidArgumentError(`--timeout takes seconds from 1 to 86400, got ${JSON.stringify(value)}.`);
      return n;
    }, 300)
    .option("--json", "print the result as JSON (zsha2: -json)")
    .action(async (options: { timeout: number; json?: boolean }) => {
      state.json = options.json === true;
      const control = ctx.client();
      const startedAt = performance.now();
      const timeoutMs = options.timeout * 1000;
      // The agent waits for the database to catch up (bounded by --timeout); the remaining lag
      // is shown meanwhile from its status. Ctrl-C leaves the node as safe as the agent keeps it.
      const progress = state.json ? null : showCatchUpProgress(control, ctx.pollMs ?? 500, (line) => io.stdout.write(`  ${line}\n`));
      const onInterrupt = (): void => {
        io.stderr.write(`\n${name}: interrupted; the agent goes on waiting (up to ${options.timeout} s) for this node's database to catch up, and the node becomes eligible to hold the VIP only once it has (or stays stopped); follow it with mnha status, or run mnha start-node again\n`);
        process.exit(130);
      };
      process.once("SIGINT", onInterrupt);
      let result: Awaited<ReturnType<ControlClient["startNode"]>>;
      try {
        result = await control.startNode({ by: by(), dbCatchUpTimeoutMs: timeoutMs });
      } finally {
        progress?.stop();
        process.removeListener("SIGINT", onInterrupt);
      }
      if (!state.json) {
        for (const command of result.commands) io.stdout.write(`  start ${command.name}: ${command.ok ? "ok" : `FAILED: ${command.detail}`}\n`);
        io.stdout.write(`${result.ok ? "" : `${name}: `}${result.message}\n`);
      }
      if (result.db?.outcome === "behind") {
        if (state.json) printJson(io, { ...result, ready: false, readyMessage: result.db.detail });
        state.exitCode = ExitCode.failed;
        return;
      }
      const ready = await waitUntilReady(control, Math.max(1_000, timeoutMs - (performance.now() - startedAt)), ctx.pollMs ?? 500, state.json ? null : (line) => io.stdout.write(`  ${line}\n`));
      if (state.json) printJson(io, { ...result, ready: ready.ok, readyMessage: ready.message });
      else io.stdout.write(`${ready.ok ? "" : `${name}: `}${ready.message}\n`);
      if (!result.ok || !ready.ok) state.exitCode = ExitCode.failed;
    });

  program
    .command("collect-log")
    .description("one tarball with both nodes' logs, redacted configs, Keepalived state, status, audit events and a system inventory")
    .option("--since <when>", "from this moment (default 1d): 2h, 3d, or \"2026-11-25 03:12\" (zsha2: -since)", (value: string) => parseMoment("--since", value), undefined)
    .option("--out <file>", "where to write the tarball, a file that must not exist yet (default ./mnha-collect-NODE-TIME.tar.gz; zsha2: -out)")
    .option("--json", "print {path, bytes, missing} as JSON (zsha2: -json)")
    .action(async (options: { since?: number; out?: string; json?: boolean }) => {
      state.json = options.json === true;
      const sinceMs = options.since ?? Date.now() - 86_400_000;
      const result = await collectLog({ client: ctx.client, configPath: ctx.configPath(), sinceMs, by: by(), ...(options.out === undefined ? {} : { out: options.out }) });
      if (state.json) printJson(io, result);
      else {
        io.stdout.write(`${result.path} (${formatBytes(result.bytes)})\n`);
        for (const missing of result.missing) io.stdout.write(`  missing: ${missing}\n`);
      }
    });
}

function renderMaintenance(result: MaintenanceResult): string {
  const lines = [result.message];
  if (result.hook) lines.push(`  hook ${result.hook.name}: ${result.hook.ok ? "ok" : `FAILED: ${result.hook.detail}`}`);
  if (result.peer) lines.push(`  peer ${result.peer.node}: ${result.peer.ok ? "" : "FAILED: "}${result.peer.message}`);
  if (result.reminder) lines.push(`REMINDER: ${result.reminder}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Hook for the database catch-up (the database issue's work): while a `db` service is
 * configured, start-node waits for it to be healthy before it calls the node ready.
 */
export function databaseCaughtUp(report: StatusReport): { ok: boolean; detail: string } {
  const db = report.self.services.find((s) => s.name === "db");
  if (!db) return { ok: true, detail: "no db check configured" };
  return db.healthy ? { ok: true, detail: "db healthy" } : { ok: false, detail: `db not healthy yet${db.detail ? ` (${db.detail})` : ""}` };
}

/** Prints the database's remaining lag (from status) while start-node waits; a line only when it changes. */
function showCatchUpProgress(control: ControlClient, pollMs: number, print: (line: string) => void): { stop(): void } {
  let stopped = false;
  let last = "";
  const loop = async (): Promise<void> => {
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(pollMs, 1_000)));
      if (stopped) return;
      try {
        const report = await control.status();
        if (stopped || !report.db || !report.peer.connected) continue;
        const catchUp = catchUpWithPeer(report.db.self, report.db.peer, report.peer.node);
        const line = `database: ${catchUp.detail}`;
        if (line !== last && !catchUp.caughtUp) print(line);
        last = line;
      } catch {
        // The status call failing says nothing about the wait: start-node's own answer will.
      }
    }
  };
  void loop();
  return { stop: () => void (stopped = true) };
}

async function waitUntilReady(control: ControlClient, timeoutMs: number, pollMs: number, progress: ((line: string) => void) | null): Promise<{ ok: boolean; message: string }> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (;;) {
    let line: string;
    try {
      const report = await control.status();
      const down = report.self.services.filter((s) => !s.healthy).map((s) => s.name);
      const db = databaseCaughtUp(report);
      if (down.length === 0 && db.ok && report.self.eligible) return { ok: true, message: `${report.self.node} is healthy and eligible to hold the VIP (role ${report.self.role})` };
      line = [down.length > 0 ? `waiting for ${down.join(", ")}` : "services healthy", db.ok ? "" : db.detail, report.self.eligible ? "eligible" : `not eligible: ${report.self.reasons.join("; ")}`].filter(Boolean).join("; ");
    } catch (error) {
      line = `agent not answering: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (line !== last && progress) progress(line);
    last = line;
    if (performance.now() >= deadline) return { ok: false, message: `not ready within ${Math.round(timeoutMs / 1000)} s: ${line}` };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export interface CollectLogResult {
  path: string;
  bytes: number;
  missing: string[];
}

const STAGE_WHAT = "stage the bundle's files";

/** Gathers both nodes' parts, redacts everything once more, and writes one tar.gz. */
export async function collectLog(options: { client: (timeoutMs?: number) => ControlClient; configPath: string; sinceMs: number; by: string; out?: string; nowMs?: number }): Promise<CollectLogResult> {
  const now = options.nowMs ?? Date.now();
  // Never over an existing file: a typo in --out must not replace a config or an earlier bundle.
  const refuseExisting = (path: string): void => {
    if (existsSync(path)) throw new MnhaError("USAGE", `${path} exists already; collect-log does not overwrite it`, { hint: "choose another --out, or move the file away first" });
  };
  if (options.out !== undefined) refuseExisting(resolve(options.out));
  const missing: string[] = [];
  let loaded: LoadedConfig | null = null;
  try {
    loaded = loadConfig(options.configPath);
  } catch (error) {
    missing.push(`local config (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
  }
  const control = options.client(10_000);
  let collected: CollectResult | null = null;
  try {
    collected = await control.collect({ sinceMs: options.sinceMs, by: options.by });
  } catch (error) {
    // Both nodes' parts come through the agent: without it, say so rather than half a bundle.
    if (error instanceof MnhaError && (error.code === "CONTROL_UNREACHABLE" || error.code === "CONTROL_PERMISSION")) throw error;
    missing.push(`the agent's part (${error instanceof Error ? error.message : String(error)})`);
  }
  const selfNode = collected?.self.node ?? loaded?.config.node.name ?? "this-node";
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const top = `mnha-collect-${selfNode}-${stamp}`;
  const out = resolve(options.out ?? `${top}.tar.gz`);
  refuseExisting(out);
  const staging = makeTempDir("mnha-collect-", STAGE_WHAT);
  const work = staging.path;
  try {
    const root = join(work, top);
    const write = (dir: string, file: CollectedFile): void => {
      mkdirSync(join(root, dir), { recursive: true, mode: 0o700 });
      writeFileSync(join(root, dir, file.name.replace(/[^A-Za-z0-9_.-]/g, "_")), file.text, { mode: 0o600 });
    };
    if (collected) {
      for (const file of collected.self.files) write(collected.self.node, file);
      if ("files" in collected.peer) for (const file of collected.peer.files) write(collected.peer.node, file);
      else missing.push(`${collected.peer.node}'s part (${collected.peer.missing})`);
    } else if (loaded) {
      // The agent does not answer: what this node can give without it.
      for (const file of await collectNodePart({ loaded, statusJson: async () => null, sinceMs: options.sinceMs })) write(selfNode, file);
      missing.push(`${loaded.config.peers[0]?.name ?? "the peer"}'s part (fetched through the agent, which did not answer)`);
    }
    try {
      write("pair", { name: "status.json", text: `${JSON.stringify(await control.status(), null, 2)}\n` });
    } catch (error) {
      missing.push(`status --json (${error instanceof Error ? error.message : String(error)})`);
    }
    try {
      const events = await control.events({ sinceMs: options.sinceMs, limit: 10_000 });
      write("pair", { name: "events.json", text: `${JSON.stringify(events, null, 2)}\n` });
    } catch (error) {
      missing.push(`audit events (${error instanceof Error ? error.message : String(error)})`);
    }
    write(selfNode, { name: "inventory.json", text: `${JSON.stringify(await systemInventory(), null, 2)}\n` });
    write("", {
      name: "MANIFEST.txt",
      text: [`mnha collect-log on ${selfNode} at ${new Date(now).toISOString()} by ${options.by}`, `events since ${new Date(options.sinceMs).toISOString()}`, "secrets, passwords and tokens are redacted", "", missing.length > 0 ? "missing:" : "nothing missing", ...missing.map((m) => `  - ${m}`), ""].join("\n"),
    });
    // A last pass over every file with the secrets this node knows (the peer's part was redacted there).
    const secrets = loaded ? knownSecrets(loaded) : [];
    for (const file of listFiles(root)) writeFileSync(file, redactText(readFileSync(file, "utf8"), secrets));
    // Written beside its final name and renamed: a full disk or an interruption leaves no half archive.
    const partial = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
    const untrackPartial = removeOnExit(partial);
    try {
      await execFileAsync("tar", ["-czf", partial, "-C", work, top], { timeout: 120_000 });
      renameSync(partial, out);
      untrackPartial();
    } catch (error) {
      untrackPartial();
      try {
        rmSync(partial, { force: true });
      } catch {
        // Its directory is not one (ENOTDIR): there is nothing to remove.
      }
      // tar's first line names the cause ("No space left on device", "Cannot open: ..."); its last only says it gave up.
      const stderr = String((error as { stderr?: unknown }).stderr ?? "").split("\n").map((line) => line.trim()).find((line) => line !== "") ?? "";
      throw new MnhaError("OPERATION_FAILED", `cannot write the archive ${out}${stderr ? `: ${stderr}` : ""}`, { hint: `check that ${dirname(out)} exists, is writable and has free space (df -h ${dirname(out)}), or pass another --out` });
    }
    return { path: out, bytes: statSync(out).size, missing };
  } catch (error) {
    throw tempDirError(error, STAGE_WHAT);
  } finally {
    staging.remove();
  }
}

/** The system inventory, read with systeminformation in the CLI process (never in the agent). */
async function systemInventory(): Promise<Record<string, unknown>> {
  const si = await import("systeminformation");
  const read = async (what: string, fn: () => Promise<unknown>): Promise<[string, unknown]> => {
    const timeout = new Promise<unknown>((resolveTimeout) => setTimeout(() => resolveTimeout({ error: "timed out after 15 s" }), 15_000).unref());
    try {
      return [what, await Promise.race([fn(), timeout])];
    } catch (error) {
      return [what, { error: error instanceof Error ? error.message : String(error) }];
    }
  };
  return Object.fromEntries(
    await Promise.all([
      read("system", () => si.system()),
      read("osInfo", () => si.osInfo()),
      read("cpu", () => si.cpu()),
      read("mem", () => si.mem()),
      read("fsSize", () => si.fsSize()),
      read("networkInterfaces", () => si.networkInterfaces()),
    ]),
  );
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)]));
}

