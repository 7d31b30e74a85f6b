import { pino, type Logger, type LoggerOptions } from "pino";
import { createRequire } from "node:module";
import type PinoPretty from "pino-pretty";

export type { Logger } from "pino";

/** Paths whose values are replaced before any log line is written. */
export const REDACTED_PATHS = [
  "secret",
  "password",
  "token",
  "*.secret",
  "*.password",
  "*.token",
  "*.*.secret",
  "auth.secret",
  "config.auth.secret",
];

/**
 * JSON lines to stdout (journald keeps them as they are); human-readable when stdout is a
 * terminal or MNHA_LOG_PRETTY=1.
 */
export function createLogger(options: { level?: string; name?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const loggerOptions: LoggerOptions = {
    level: options.level ?? process.env["MNHA_LOG_LEVEL"] ?? "info",
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    base: options.name ? { node: options.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const wantPretty = options.pretty ?? (process.env["MNHA_LOG_PRETTY"] === "1" || (options.destination === undefined && process.stdout.isTTY === true));
  if (wantPretty) {
    // Required only when wanted: the agent under systemd logs JSON and need not hold
    // pino-pretty's modules in memory (issue 12).
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof PinoPretty;
    return pino(loggerOptions, pretty({ colorize: process.stdout.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", destination: options.destination ?? 1 }));
  }
  return pino(loggerOptions, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
