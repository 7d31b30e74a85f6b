/**
 * The `mnha` / `zsha2` command line: a thin client of the agent's control API, plus the
 * commands that need no agent (show-config) and the one that is the agent (agent).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { loadConfig, MnhaError, redactedConfig } from "@mnha/shared";
import { ControlClient, type AgentVersion } from "../control/control-client.js";
import { MAX_DEMOTE_TIMEOUT_MS, MAX_EVENTS_LIMIT, definedOnly } from "../control/control-api.js";
import { printJson, reportError, type CliIo } from "./cli-io.js";
import { askYesNo } from "./confirm.js";
import { registerBackupCommands } from "./backup.js";
import { registerDbCommands } from "./db.js";
import { registerRestoreCommand } from "./restore.js";
import { registerUpgradeMnCommand } from "./upgrade-mn.js";
import { registerUpgradeHaCommand } from "./upgrade-ha.js";
import { EXIT_CODES_HELP, ExitCode } from "./exit-codes.js";
import { newestFirst, renderEvents } from "./render-events.js";
import { renderFailovers, renderMetrics } from "./render-history.js";
import { renderStatus } from "./render-status.js";
import { terminalSafe } from "./render-table.js";
import { parseMoment, timeWindow } from "./time-range.js";
import { NOT_AVAILABLE_COMMANDS, rewriteSingleDashFlags, SINGLE_DASH_LONG_FLAGS } from "./zsha2-compat.js";
import { platformFiles, readPlatform, readSuiteInfo } from "../provision/suite-info.js";
import { registerInstallCommands } from "./install.js";
import { registerOpsCommands } from "./ops-commands.js";

export const DEFAULT_CONFIG_PATH = "/etc/mnha/mnha.yaml";
export const DEFAULT_SOCKET_PATH = "/run/mnha/mnha.sock";
const DAEMON_MODULE = "../daemon/run.js";
const WITNESS_MODULE = "../witness/run-witness.js";
const IMPLEMENTED_COMMANDS = ["status", "show-config", "demote", "events", "failovers", "metrics", "version", "db", "agent", "preflight", "install-ha", "maintenance", "stop-node", "start-node", "collect-log", "backup", "restore", "upgrade-mn", "upgrade-ha", "witness"];

interface GlobalOptions {
  config: string;
  socket?: string;
}

/** What a run of the CLI decided: its exit code, and whether errors go out as JSON. */
interface RunState {
  exitCode: number;
  json: boolean;
  /** Set when the config could not be read and the default control socket was tried instead. */
  configProblem?: string;
}

type RunAgent = (options: { configPath: string }) => Promise<number>;

export function cliVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return packageJson.version ?? "unknown";
}

/** The name the CLI answers to: zsha2 when invoked as zsha2, mnha otherwise. */
export function programNameFor(argv1: string | undefined): "mnha" | "zsha2" {
  return argv1 !== undefined && basename(argv1).replace(/\.(c|m)?js$/, "") === "zsha2" ? "zsha2" : "mnha";
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const name = programNameFor(argv[1]);
  const state: RunState = { exitCode: ExitCode.ok, json: false };
  const program = buildProgram(name, io, state);
  try {
    await program.parseAsync(rewriteSingleDashFlags(argv.slice(2)), { from: "user" });
    return state.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end the parse with an "error"; they are successes.
      const helpOrVersion = error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help";
      if (helpOrVersion && error.exitCode === 0) return ExitCode.ok;
      return ExitCode.usage;
    }
    return reportError(io, name, withConfigProblem(error, state.configProblem), state.json);
  }
}

/**
 * "The agent is not running" is the wrong lead when the socket was a guess because the config
 * could not be read (a typo in --config, a file deleted by hand): the hint then names the config.
 */
function withConfigProblem(error: unknown, configProblem: string | undefined): unknown {
  if (configProblem === undefined || !(error instanceof MnhaError) || error.code !== "CONTROL_UNREACHABLE") return error;
  return new MnhaError(error.code, error.message, {
    hint: `the control socket is the default because ${configProblem}; pass the right --config (or --socket), or start the agent: systemctl start mnha`,
    fields: error.fields,
    cause: error.cause,
  });
}

function buildProgram(name: string, io: CliIo, state: RunState): Command {
  const env = io.env ?? process.env;
  const program = new Command(name);
  program
    .description("mnha: keeps one of the two management nodes holding the VIP (a zsha2-compatible CLI)")
    .version(cliVersion(), "-V, --version", "print the CLI's version")
    .option("--config <file>", "the agent's config file (zsha2: -config)", env["MNHA_CONFIG"] ?? DEFAULT_CONFIG_PATH)
    .option("--socket <path>", `the agent's control socket (zsha2: -socket; default: controlSocket from the config, else ${DEFAULT_SOCKET_PATH})`)
    .exitOverride()
    .showHelpAfterError(true)
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
      outputError: (text, write) => write(text.replace(/^error: /, `${name}: `)),
    })
    .addHelpText("after", `\nSingle-dash long flags work as in zsha2: ${SINGLE_DASH_LONG_FLAGS.map((flag) => `-${flag}`).join(", ")}.\n\n${EXIT_CODES_HELP}\n\nExamples:\n  ${name} status\n  ${name} status -json\n  ${name} demote -yes\n  ${name} events --since 2h --type election\n  ${name} failovers --since 1d\n  ${name} maintenance on -reason "kernel update"\n  ${name} stop-node -keepui\n  ${name} collect-log -since 2d\n  ${name} show-config --config /etc/mnha/mnha.yaml\n\nSee docs/cli.md for every command.`);

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const client = (timeoutMs?: number): ControlClient => new ControlClient({ socketPath: resolveSocketPath(globals(), state, io.defaultSocketPath ?? DEFAULT_SOCKET_PATH), ...(timeoutMs === undefined ? {} : { timeoutMs }) });

  program
    .command("status")
    .description("show both nodes: role, epoch, VIP owner, reachability, keepalived, services")
    .option("--json", "print the status report as JSON (zsha2: -json)")
    .action(async (options: { json?: boolean }) => {
      state.json = options.json === true;
      const report = await client().status();
      if (state.json) printJson(io, report);
      else io.stdout.write(renderStatus(report));
    });

  program
    .command("show-config")
    .description("print the effective config as JSON, secrets redacted (no agent needed)")
    .option("--json", "JSON output (the default; accepted for zsha2 habits)")
    .action((options: { json?: boolean }) => {
      state.json = options.json === true;
      const loaded = loadConfig(globals().config);
      printJson(io, redactedConfig(loaded.config));
    });

  program
    .command("demote")
    .description("planned switchover: move the VIP from this node to the peer")
    .option("--yes", "do not ask for confirmation (zsha2: -yes); required when stdin is not a terminal")
    .option("--timeout <ms>", "give up the switchover after this many milliseconds (zsha2: -timeout)", positiveInteger("--timeout", MAX_DEMOTE_TIMEOUT_MS))
    .option("--json", "print the result as JSON (zsha2: -json)")
    .action(async (options: { yes?: boolean; timeout?: number; json?: boolean }) => {
      state.json = options.json === true;
      const control = client();
      if (options.yes !== true) {
        if (io.stdin?.isTTY !== true || state.json) {
          throw new MnhaError("USAGE", "demote moves the VIP to the peer and needs a confirmation, but there is no terminal to ask on", {
            hint: `pass --yes (zsha2: -yes) to confirm: ${name} demote --yes`,
          });
        }
        const report = await control.status();
        const confirmed = await askYesNo(`Move the VIP ${report.vip.address} from ${report.self.node} to the peer ${report.peer.node}? [y/N] `, io.stdin, io.stderr);
        if (!confirmed) {
          io.stderr.write(`${name}: demote cancelled; nothing was changed\n`);
          state.exitCode = ExitCode.failed;
          return;
        }
      }
      const result = await control.demote(options.timeout === undefined ? {} : { timeoutMs: options.timeout });
      if (state.json) printJson(io, result);
      else if (result.ok) io.stdout.write(`VIP moved from ${terminalSafe(result.from)} to ${terminalSafe(result.to ?? "the peer")} in ${result.tookMs} ms (epoch ${result.epoch}): ${terminalSafe(result.message)}\n`);
      // A switchover that started but did not end on the peer failed (the message says where the VIP is); anything else was refused.
      else io.stderr.write(`${name}: demote ${result.message.startsWith("switchover ") ? "failed" : "refused"}: ${terminalSafe(result.message)}\n`);
      if (!result.ok) state.exitCode = ExitCode.failed;
    });

  const since = (flag: string) => (value: string) => parseMoment(flag, value);
  program
    .command("events")
    .description("HA events of both nodes (the replicated audit store), newest first")
    .option("--limit <n>", `how many events (1-${MAX_EVENTS_LIMIT}; zsha2: -limit)`, positiveInteger("--limit", MAX_EVENTS_LIMIT), 50)
    .option("--type <type>", "only this type, or a dotted prefix such as election (zsha2: -type)")
    .option("--since <when>", "from this moment: 2h, 30m, 3d, or \"2026-11-25 03:12\" (zsha2: -since)", since("--since"))
    .option("--until <when>", "up to this moment, same forms as --since (zsha2: -until)", since("--until"))
    .option("--node <name>", "only events that happened on this node (zsha2: -node)")
    .option("--service <name>", "only events about this service, such as mn (zsha2: -service)")
    .option("--json", "print the events as JSON (zsha2: -json)")
    .action(async (options: { limit: number; type?: string; since?: number; until?: number; node?: string; service?: string; json?: boolean }) => {
      state.json = options.json === true;
      const query = definedOnly({ limit: options.limit, type: options.type, ...timeWindow(options.since, options.until), node: options.node, service: options.service });
      const events = newestFirst(await client().events(query));
      if (state.json) printJson(io, events);
      else io.stdout.write(renderEvents(events, filtersText({ "--type": options.type, "--node": options.node, "--service": options.service })));
    });

  program
    .command("failovers")
    .description("each change of VIP holder: when, from, to, the cause, and how long the VIP went unanswered")
    .option("--limit <n>", `how many (1-${MAX_EVENTS_LIMIT}; zsha2: -limit)`, positiveInteger("--limit", MAX_EVENTS_LIMIT), 50)
    .option("--since <when>", "from this moment: 2h, 30m, 3d, or \"2026-11-25 03:12\"", since("--since"))
    .option("--until <when>", "up to this moment", since("--until"))
    .option("--json", "print as JSON (zsha2: -json)")
    .action(async (options: { limit: number; since?: number; until?: number; json?: boolean }) => {
      state.json = options.json === true;
      const failovers = await client().failovers(definedOnly({ limit: options.limit, ...timeWindow(options.since, options.until) }));
      if (state.json) printJson(io, failovers);
      else io.stdout.write(renderFailovers(failovers));
    });

  program
    .command("metrics")
    .description("monitoring samples of both nodes summarised per series (min / median / max) over a window")
    .option("--since <when>", "window start (default 1h): 15m, 2h, 3d, or a time", since("--since"))
    .option("--until <when>", "window end (default now)", since("--until"))
    .option("--node <name>", "only this node")
    .option("--series <prefix>", "only series starting with this, such as cpu or check.mn")
    .option("--json", "print as JSON (zsha2: -json)")
    .action(async (options: { since?: number; until?: number; node?: string; series?: string; json?: boolean }) => {
      state.json = options.json === true;
      // Without --since, the hour before the window's end (before --until, when given).
      const window = timeWindow(options.since, options.until, { defaultSpanMs: 3_600_000 });
      const report = await client().metrics(definedOnly({ sinceMs: window.sinceMs, untilMs: window.untilMs, node: options.node, series: options.series }));
      if (state.json) printJson(io, report);
      else io.stdout.write(renderMetrics(report, filtersText({ "--node": options.node, "--series": options.series })));
    });

  program
    .command("version")
    .description("the CLI's version and, if the agent answers, the agent's version and protocol")
    .option("--json", "print the versions as JSON (zsha2: -json)")
    .action(async (options: { json?: boolean }) => {
      state.json = options.json === true;
      const cli = { name, version: cliVersion(), nodejs: process.version };
      const suite = readSuiteInfo();
      const platform = readPlatform(platformFiles(env));
      let agent: AgentVersion | null = null;
      let agentError: MnhaError | null = null;
      try {
        agent = await client(2_000).version();
      } catch (error) {
        if (!(error instanceof MnhaError)) throw error;
        agentError = error;
      }
      if (state.json) {
        printJson(io, { cli, suite, platform, agent, ...(agentError ? { agentError: { code: agentError.code, message: agentError.message } } : {}) });
        return;
      }
      io.stdout.write(`${name} CLI ${cli.version} (Node.js ${cli.nodejs})\n`);
      io.stdout.write(`suite ${suite.suite}${suite.bundled ? "" : " (source build)"}, peer protocol ${suite.protocol}${suite.protocols.length > 1 ? ` (offers ${suite.protocols.join(",")})` : ""}${suite.testBuild === true ? ", TEST BUILD" : ""}\n`);
      io.stdout.write(`platform ${platform.version ?? "unknown (no version file)"}, license ${platform.license ?? "unknown"}\n`);
      io.stdout.write(agent ? terminalSafe(`agent ${agent.version} on ${agent.node} (peer protocol ${agent.protocol}${agentLinkText(agent)})`) + "\n" : `agent: not answering (${terminalSafe(agentError?.message ?? "unknown")})\n`);
    });

  registerDbCommands(program, { io, name, state, configPath: () => globals().config, client });

  program
    .command("agent")
    .description("run the HA agent daemon in the foreground (what the systemd unit runs)")
    .action(async () => {
      const runAgent = await loadRunAgent(io);
      state.exitCode = await runAgent({ configPath: globals().config });
    });

  program
    .command("witness")
    .description("run the witness (the third vote, on a third machine) in the foreground; --config names the witness's own config")
    .action(async () => {
      // A computed specifier, as for the agent: the CLI builds and tests without the server module.
      const module = (await import(WITNESS_MODULE)) as { runWitness: (options: { configPath: string }) => Promise<number> };
      state.exitCode = await module.runWitness({ configPath: globals().config });
    });

  registerInstallCommands(program, io, state);
  registerOpsCommands(program, { name, io, state, client, configPath: () => globals().config });
  registerBackupCommands(program, { io, state, configPath: () => globals().config });
  registerRestoreCommand(program, { io, name, state, configPath: () => globals().config, client });
  registerUpgradeMnCommand(program, { io, state, configPath: () => globals().config, client });
  registerUpgradeHaCommand(program, { io, state, configPath: () => globals().config, client });

  for (const unavailable of NOT_AVAILABLE_COMMANDS) {
    program
      .command(unavailable)
      .description("zsha2 command, not available in this version of mnha")
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new MnhaError("USAGE", `${unavailable} is not available in this version of mnha`, {
          hint: `the available commands are: ${IMPLEMENTED_COMMANDS.join(", ")}; see docs/cli.md`,
        });
      });
  }
  return program;
}

/** ", offers 2,3, negotiated 2 with the peer": what an upgrade between versions shows. */
function agentLinkText(agent: AgentVersion): string {
  if (agent.offered === undefined) return "";
  return `, offers ${agent.offered.join(",")}, ${agent.negotiated === null || agent.negotiated === undefined ? "no link to the peer" : `negotiated v${agent.negotiated} with the peer`}`;
}

/** The filters given, for an empty answer ("no HA events match --node mn3"), so a typo shows; null when none. */
function filtersText(filters: Record<string, string | undefined>): string | null {
  const given = Object.entries(filters).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return given.length === 0 ? null : given.map(([flag, value]) => `${flag} ${terminalSafe(value)}`).join(" ");
}

/** --socket, else the config's controlSocket, else the standard path. */
function resolveSocketPath(options: GlobalOptions, state: RunState, defaultSocketPath: string): string {
  if (options.socket !== undefined) return options.socket;
  try {
    return loadConfig(options.config).config.controlSocket;
  } catch (error) {
    // status and the other agent commands still work with a broken config (the agent runs on
    // the one it loaded at start), so the default socket is tried; a failure then says why.
    const firstLine = (error instanceof Error ? error.message : String(error)).split("\n")[0]!.replace(/:$/, "");
    state.configProblem = `${options.config} could not be read (${firstLine})`;
    return defaultSocketPath;
  }
}

function positiveInteger(flag: string, max: number): (value: string) => number {
  return (value) => {
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < 1 || parsed > max) throw new InvalidArgumentError(`${flag} takes a whole number from 1 to ${max}, got ${JSON.stringify(value)}.`);
    return parsed;
  };
}

async function loadRunAgent(io: CliIo): Promise<RunAgent> {
  let module: unknown;
  try {
    // A computed specifier: the CLI builds and tests without the daemon module.
    module = await (io.loadAgentModule ?? (() => import(DAEMON_MODULE)))();
  } catch (error) {
    throw new MnhaError("INTERNAL", `the mnha agent daemon cannot be loaded: ${error instanceof Error ? error.message : String(error)}`, {
      hint: "reinstall mnha (the package is incomplete), or run the CLI from a complete build (pnpm run build)",
    });
  }
  const runAgent = (module as { runAgent?: unknown } | null)?.runAgent;
  if (typeof runAgent !== "function") {
    throw new MnhaError("INTERNAL", "the mnha agent daemon module does not export runAgent", {
      hint: "reinstall mnha, or rebuild it (pnpm run build)",
    });
  }
  return runAgent as RunAgent;
}
