/**
 * `mnha witness --config FILE`: run the witness in the foreground until SIGTERM/SIGINT. Exit
 * codes as `mnha agent`: 2 for a config (or grant file) it refuses, 1 for a failed start.
 */
import { createLogger, isMnhaError, loadWitnessConfig, systemClock, type LoadedWitnessConfig } from "@mnha/shared";
import { WitnessServer } from "./witness-server.js";

const WITNESS_SIGHUP_IGNORED = "SIGHUP ignored: the witness reads its config only at start; restart it to apply a changed config";

export async function runWitness(options: { configPath: string }): Promise<number> {
  let loaded: LoadedWitnessConfig;
  let server: WitnessServer;
  const logger = createLogger({ name: "witness" });
  try {
    loaded = loadWitnessConfig(options.configPath);
    server = new WitnessServer({ config: loaded.config, secret: loaded.secret, now: () => systemClock.now(), log: logger });
  } catch (error) {
    if (isMnhaError(error)) {
      process.stderr.write(`mnha: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
      return 2;
    }
    throw error;
  }
  try {
    const bound = await server.listen();
    logger.info({ address: bound.address, port: bound.port, nodes: loaded.config.nodes.map((n) => `${n.name}@${n.address}`) }, "witness listening");
  } catch (error) {
    process.stderr.write(`mnha: ${error instanceof Error ? error.message : String(error)}\n${isMnhaError(error) && error.hint ? `hint: ${error.hint}\n` : ""}`);
    return 1;
  }
  // As for the agent (daemon/run.ts): a SIGHUP sent by habit must not end the witness.
  const onHangup = (): void => logger.warn({ signal: "SIGHUP" }, WITNESS_SIGHUP_IGNORED);
  process.on("SIGHUP", onHangup);
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGHUP", onHangup);
      logger.info({ signal }, "witness stopping");
      server.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}
