/**
 * `mnha preflight` and `mnha install-ha` (zsha2: install-ha -nic … -gateway … -vip …
 * -slave user:password@ip …): installing the pair from one MN over SSH. The work itself is
 * in provision/; this file parses flags and renders.
 */
import { Command, InvalidArgumentError } from "commander";
import { printJson, type CliIo } from "./cli-io.js";
import { runLocalPreflight, type PreflightOptions } from "../provision/preflight.js";
import { platformFiles } from "../provision/suite-info.js";

export const DEFAULT_PEER_PORT = 7946;
export const DEFAULT_METRICS_PORT = 9746;

interface RunState {
  exitCode: number;
  json: boolean;
}

export interface PreflightFlags {
  nic: string;
  vip: string;
  gateway: string;
  peerPort: number;
  metricsPort: number;
  minCpus: number;
  minMemoryGb: number;
  platformVersionFile?: string;
  licenseFile?: string;
}

/** "10.0.0.100" or "10.0.0.100/24"; the prefix defaults to the NIC's own. */
export function parseVip(value: string): { address: string; prefix: number | null } {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(value);
  if (!match || (match[2] !== undefined && Number(match[2]) > 32)) throw new InvalidArgumentError(`expected an IPv4 address such as 10.0.0.100 or 10.0.0.100/24, got ${JSON.stringify(value)}.`);
  return { address: match[1] as string, prefix: match[2] === undefined ? null : Number(match[2]) };
}

function ipv4(flag: string): (value: string) => string {
  return (value) => {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.split(".").some((p) => Number(p) > 255)) throw new InvalidArgumentError(`${flag} takes an IPv4 address, got ${JSON.stringify(value)}.`);
    return value;
  };
}

function number(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`${flag} takes a number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    return parsed;
  };
}

/** The flags both preflight and install-ha take. */
export function addPreflightFlags(command: Command): Command {
  return command
    .requiredOption("--nic <name>", "the NIC (bridge) that carries the VIP (zsha2: -nic)")
    .requiredOption("--vip <address[/prefix]>", "the VIP (zsha2: -vip); the prefix defaults to the NIC's")
    .requiredOption("--gateway <address>", "the management network's gateway (zsha2: -gateway)", ipv4("--gateway"))
    .option("--peer-port <port>", "the peer-link port", number("--peer-port", 1, 65535), DEFAULT_PEER_PORT)
    .option("--metrics-port <port>", "the metrics port", number("--metrics-port", 1, 65535), DEFAULT_METRICS_PORT)
    .option("--min-cpus <n>", "fail with fewer CPUs than this", number("--min-cpus", 1, 4096), 8)
    .option("--min-memory-gb <n>", "fail with less memory than this (GB)", number("--min-memory-gb", 0, 65536), 12)
    .option("--platform-version-file <file>", "where the platform's version is (env MNHA_PLATFORM_VERSION_FILE)")
    .option("--license-file <file>", "where the platform's license type is (env MNHA_LICENSE_FILE)");
}

export function preflightOptions(flags: PreflightFlags, env: Record<string, string | undefined>, vipPrefix: number): PreflightOptions {
  const vip = parseVip(flags.vip);
  return {
    nic: flags.nic,
    vipAddress: vip.address,
    vipPrefix: vip.prefix ?? vipPrefix,
    gateway: flags.gateway,
    peerPort: flags.peerPort,
    metricsPort: flags.metricsPort,
    minCpus: flags.minCpus,
    minMemoryGb: flags.minMemoryGb,
    platform: platformFiles(env, { ...(flags.platformVersionFile ? { versionFile: flags.platformVersionFile } : {}), ...(flags.licenseFile ? { licenseFile: flags.licenseFile } : {}) }),
  };
}

/** Adds preflight and install-ha to the program. */
export function registerInstallCommands(program: Command, io: CliIo, state: RunState): void {
  const env = io.env ?? process.env;
  addPreflightFlags(program.command("preflight").description("check this node for an HA install (install-ha runs it on both nodes and compares them)"))
    .option("--json", "print the checks as JSON (zsha2: -json)")
    .action(async (flags: PreflightFlags & { json?: boolean }) => {
      state.json = flags.json === true;
      const report = await runLocalPreflight(preflightOptions(flags, env, parseVip(flags.vip).prefix ?? 24));
      if (state.json) printJson(io, report);
      else {
        for (const check of report.checks) io.stdout.write(`${check.status.toUpperCase().padEnd(4)}  ${check.title}: ${check.value}${check.fix ? `\n      fix: ${check.fix}` : ""}\n`);
      }
      if (report.checks.some((check) => check.status === "fail")) state.exitCode = 1;
    });
}
