/**
 * `mnha agent`: load the config (refusing to start on any problem), take the instance lock
 * before anything else, compose and start the agent, run until SIGTERM or SIGINT, stop
 * cleanly. A start that fails has undone itself (Agent.start) and exits non-zero. A second
 * signal forces an immediate exit.
 */
import { createLogger, isMnhaError, loadConfig, MnhaError, systemClock, type LoadedConfig, type Logger } from "@mnha/shared";
import { ensurePrivateDataDir } from "../control/socket-file.js";
import { Agent } from "./agent.js";
import { composeAgent } from "./compose.js";
import { acquireInstanceLock, type InstanceLock } from "./instance-lock.js";

/** What the agent logs and audits when sent SIGHUP (Keepalived's reload habit). */
const SIGHUP_IGNORED =
  "SIGHUP ignored: mnha reads its config only at start; to apply a changed config, restart the agent (systemctl restart mnha: a holder hands the VIP to a healthy peer first)";

/** Exit codes: 2 for a config the agent refuses, 1 for any other failed start. */
export async function runAgent(options: { configPath: string }): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(options.configPath);
  } catch (error) {
    if (isMnhaError(error)) {
      process.stderr.write(`mnha: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
      return 2;
    }
    throw error;
  }
  const config = loaded.config;
  // First, before Keepalived, the lease guard, any file or socket: one agent per data dir.
  let lock: InstanceLock;
  try {
    // The data dir must be ours alone (root-owned, closed to others) before a lock file goes in it.
    ensurePrivateDataDir(config.dataDir);
    lock = acquireInstanceLock(config.dataDir);
  } catch (error) {
    writeStartFailure(error);
    // 3: another agent already runs for this data dir (docs/cli.md); nothing was changed.
    return isMnhaError(error) && error.code === "AGENT_ALREADY_RUNNING" ? 3 : 1;
  }
  const logger = createLogger({ level: config.log.level, name: config.node.name });
  let agent: Agent | null = null;
  // Keepalived reloads its config on SIGHUP, and operators send it to HA daemons by habit.
  // Node's default would end the agent, and a holder would lose the VIP after its lease.
  const onHangup = (): void => {
    logger.warn({ signal: "SIGHUP" }, SIGHUP_IGNORED);
    agent?.recordIgnoredSignal("SIGHUP", SIGHUP_IGNORED);
  };
  process.on("SIGHUP", onHangup);
  try {
    agent = new Agent({ loaded, logger, components: composeAgent(loaded, logger, systemClock), instanceLock: lock });
    await agent.start();
  } catch (error) {
    const mapped = operatorError(error);
    logger.fatal({ err: mapped }, `agent failed to start: ${describe(mapped)}`);
    writeStartFailure(mapped);
    process.off("SIGHUP", onHangup);
    lock.release();
    // A config the host cannot honour (node.address not here): a config error, as at load.
    return isMnhaError(mapped) && mapped.code === "CONFIG_INVALID" ? 2 : 1;
  }
  const code = await untilSignalled(agent, logger);
  process.off("SIGHUP", onHangup);
  lock.release();
  return code;
}

function untilSignalled(agent: Agent, logger: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting now");
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, "signal received: stopping");
      agent
        .stop(`signal ${signal}`)
        .then(() => resolve(0))
        .catch((error: unknown) => {
          logger.error({ err: error }, "stop failed");
          resolve(1);
        });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/**
 * The failures an operator can act on get their own code, whichever part met them: a port
 * taken, a full disk. Anything else is passed on as it is.
 */
export function operatorError(error: unknown): unknown {
  const errno = findErrno(error);
  if (errno === "EADDRINUSE" && !(isMnhaError(error) && error.code === "PORT_IN_USE")) {
    const message = error instanceof Error ? error.message : String(error);
    return new MnhaError("PORT_IN_USE", message, { hint: (isMnhaError(error) && error.hint) || "another process listens there (a second agent?); stop it or change the port in the config", fields: isMnhaError(error) ? error.fields : {}, cause: error });
  }
  if ((errno === "ENOSPC" || errno === "EDQUOT") && !(isMnhaError(error) && error.code === "DISK_FULL")) {
    const message = error instanceof Error ? error.message : String(error);
    return new MnhaError("DISK_FULL", `no space left for the agent's files: ${message}`, { hint: "free space on the file system of dataDir (df -h), then start the agent again", cause: error });
  }
  return error;
}

function findErrno(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === "EADDRINUSE" || code === "ENOSPC" || code === "EDQUOT") return code;
    const fieldCode = (e as { fields?: { code?: unknown } }).fields?.code;
    if (fieldCode === "EADDRINUSE" || fieldCode === "ENOSPC" || fieldCode === "EDQUOT") return fieldCode;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

function describe(error: unknown): string {
  return isMnhaError(error) ? `${error.message}${error.hint ? ` (hint: ${error.hint})` : ""}` : String(error);
}

function writeStartFailure(error: unknown): void {
  if (isMnhaError(error)) process.stderr.write(`mnha: agent failed to start: ${error.code}: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
  else process.stderr.write(`mnha: agent failed to start: ${String(error)}\n`);
}
