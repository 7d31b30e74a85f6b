/**
 * One node's part of `mnha collect-log`: its redacted config, Keepalived config and state,
 * status, log tails, journald lines and MariaDB replication state. Bounded in size (it may
 * travel over the peer link) and redacted before it leaves this module.
 */
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { basename } from "node:path";
import os from "node:os";
import { redactedConfig, type LoadedConfig } from "@mnha/shared";
import { runCommand } from "../checks/command.js";
import type { CollectedFile } from "../contracts.js";
import { redactObject, redactText, secretValuesIn } from "./redact.js";

/** A node's part stays under this (the peer link refuses frames over 256 KiB). */
export const NODE_PART_MAX_BYTES = 180 * 1024;
const LOG_TAIL_BYTES = 48 * 1024;
const COMMAND_TIMEOUT_MS = 10_000;
const JOURNALCTL = "/usr/bin/journalctl";

export interface NodePartOptions {
  loaded: LoadedConfig;
  /** This node's status report as JSON text, or null when it cannot be had. */
  statusJson: () => Promise<string | null>;
  sinceMs: number;
  maxBytes?: number;
}

/** Every secret this node knows: the pair secret and every secret-looking config value. */
export function knownSecrets(loaded: LoadedConfig): string[] {
  return [loaded.secret, ...secretValuesIn(loaded.config)];
}

export async function collectNodePart(options: NodePartOptions): Promise<CollectedFile[]> {
  const { loaded } = options;
  const config = loaded.config;
  const files: CollectedFile[] = [];
  files.push({ name: "node.txt", text: nodeSummary(loaded) });
  files.push({ name: "config.json", text: `${JSON.stringify(redactObject(redactedConfig(config)), null, 2)}\n` });
  const keepalivedConf = await readTail(loaded.derived.keepalivedConfigPath, LOG_TAIL_BYTES);
  files.push({ name: "keepalived.conf", text: keepalivedConf ?? `(not readable: ${loaded.derived.keepalivedConfigPath})\n` });
  files.push({ name: "status.json", text: (await options.statusJson().catch(() => null)) ?? "(the agent's status could not be had)\n" });
  for (const file of config.diagnostics.logFiles) {
    files.push({ name: `log-${safeName(basename(file))}`, text: (await readTail(file, LOG_TAIL_BYTES)) ?? `(not readable: ${file})\n` });
  }
  if (existsSync(JOURNALCTL)) {
    const since = `@${Math.floor(options.sinceMs / 1000)}`;
    const result = await runCommand([JOURNALCTL, "-u", "mnha", "--since", since, "--no-pager", "-o", "short-iso"], { timeoutMs: COMMAND_TIMEOUT_MS, outputLimit: LOG_TAIL_BYTES });
    files.push({ name: "journal-mnha.txt", text: `$ journalctl -u mnha --since ${since}\n${result.output || describe(result)}\n` });
  }
  const replication = config.diagnostics.replicationStatusCommand;
  if (replication) {
    const result = await runCommand(replication, { timeoutMs: COMMAND_TIMEOUT_MS, outputLimit: 32 * 1024 });
    files.push({ name: "mariadb-replication.txt", text: `$ ${replication[0]} ...\n${result.output}\n(${describe(result)})\n` });
  }
  if (config.diagnostics.mariadbErrorLog) {
    files.push({ name: "mariadb-error-log.txt", text: (await readTail(config.diagnostics.mariadbErrorLog, 32 * 1024)) ?? `(not readable: ${config.diagnostics.mariadbErrorLog})\n` });
  }
  const secrets = knownSecrets(loaded);
  return bound(
    files.map((f) => ({ name: f.name, text: redactText(f.text, secrets) })),
    options.maxBytes ?? NODE_PART_MAX_BYTES,
  );
}

function nodeSummary(loaded: LoadedConfig): string {
  const cpus = os.cpus();
  return [
    `node ${loaded.config.node.name} (${loaded.config.node.address})`,
    `hostname ${os.hostname()}`,
    `kernel ${os.release()} ${os.arch()}`,
    `cpus ${cpus.length} (${cpus[0]?.model ?? "unknown"})`,
    `memory ${Math.round(os.totalmem() / 1048576)} MiB total, ${Math.round(os.freemem() / 1048576)} MiB free`,
    `load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    `uptime ${Math.round(os.uptime())} s`,
    `node.js ${process.version}`,
    "",
  ].join("\n");
}

/** The last `maxBytes` of a file, or null when it cannot be read. */
async function readTail(path: string, maxBytes: number): Promise<string | null> {
  try {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      if (size <= maxBytes) return await readFile(path, "utf8");
      const buffer = Buffer.alloc(maxBytes);
      await handle.read(buffer, 0, maxBytes, size - maxBytes);
      return `(first ${size - maxBytes} bytes left out)\n${buffer.toString("utf8")}`;
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

function describe(result: { exitCode: number | null; timedOut: boolean; spawnError: string | null }): string {
  if (result.spawnError) return `could not run: ${result.spawnError}`;
  if (result.timedOut) return "timed out";
  return `exit ${result.exitCode ?? "signal"}`;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^[^A-Za-z0-9]/, "x").slice(0, 90);
}

/** A file's size as it travels: JSON-encoded (escapes can double a quote-heavy file). */
function wireBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}

/** Cuts the largest files first until the part fits (as JSON on the wire); says so in each file it cut. */
export function bound(files: CollectedFile[], maxBytes: number): CollectedFile[] {
  const out = files.map((f) => ({ ...f }));
  const total = (): number => out.reduce((sum, f) => sum + wireBytes(f.text) + f.name.length + 32, 0);
  for (let round = 0; round < 64 && total() > maxBytes; round += 1) {
    const largest = out.reduce((a, b) => (wireBytes(a.text) >= wireBytes(b.text) ? a : b));
    const size = wireBytes(largest.text);
    // Keep the tail (the newest lines), at most half of what would fit.
    const keepChars = Math.max(0, Math.floor((size - (total() - maxBytes) - 200) / 2));
    largest.text = `(cut to fit the bundle's bound of ${maxBytes} bytes)\n${largest.text.slice(Math.max(0, largest.text.length - keepChars))}`;
  }
  return out;
}
