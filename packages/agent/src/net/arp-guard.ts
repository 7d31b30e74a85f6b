import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { isIPv4 } from "node:net";
import { MnhaError, type Logger } from "@mnha/shared";
import type { ArpGuardApi, ArpProbeResult, DuplicateWatchApi } from "../contracts.js";
import { ArpingMonitor, arpingSchedule } from "./arping-monitor.js";
import { inNetns, runCommand } from "./command.js";
import { readInterfaceMac } from "./duplicate-watch.js";


export interface ArpGuardOptions {
  /** The interface the VIP lives on. */
  iface: string;
  vip: string;
  /** How long to listen for answers; a free VIP costs this long, an occupied one less. */
  timeoutMs: number;
  /** iputils arping. Default: /usr/sbin/arping, else /usr/bin/arping (Debian 12 ships it there). */
  command?: string;
  logger: Logger;
  /** Probe from inside this network namespace (tests and the lab). */
  netns?: string;
  /** After the first answer, listen this much longer for a second MAC (default 30 ms). */
  collectMs?: number;
}

/** The probe's result, plus whether the probe itself failed (then `occupied` is false). */
export interface ArpGuardResult extends ArpProbeResult {
  failed: boolean;
  elapsedMs: number;
}

const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const DEFAULT_COMMANDS = ["/usr/sbin/arping", "/usr/bin/arping"];
// Slack past timeoutMs before the probe gives up on arping itself.
const KILL_SLACK_MS = 300;

/**
 * The arping to run. The config's default, /usr/sbin/arping, is where some distributions put
 * it; Debian 12's iputils-arping installs /usr/bin/arping. A default path that does not
 * exist falls back to the other; any other configured path is used as given.
 */
export function resolveArping(command?: string): string {
  if (command !== undefined && (existsSync(command) || !DEFAULT_COMMANDS.includes(command))) return command;
  return DEFAULT_COMMANDS.find((c) => existsSync(c)) ?? command ?? "arping";
}

/** Parses arping's "Unicast reply from 10.0.0.100 [02:00:00:00:00:01]  0.5ms" lines. */
export function parseArpingReplies(output: string, vip: string): string[] {
  const macs = new Set<string>();
  for (const match of output.matchAll(/reply from (\d{1,3}(?:\.\d{1,3}){3}) \[([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\]/g)) {
    const [, ip, mac] = match;
    if (ip === vip && mac !== undefined) macs.add(mac.toLowerCase());
  }
  return [...macs];
}

/**
 * Asks the segment "who has the VIP?" before this node claims it. Uses iputils arping with
 * sender address 0.0.0.0 (a DAD-style probe: it updates nobody's ARP cache) in broadcast
 * mode. arping's -D mode would stop at the first reply, hiding a second holder, and its
 * -w deadline counts whole seconds; so the probe reads arping's (line-buffered) output as it
 * comes, stops arping a moment after the first reply, and stops it at `timeoutMs` at the latest.
 */
export class ArpGuard implements ArpGuardApi {
  private readonly iface: string;
  private readonly vip: string;
  private readonly timeoutMs: number;
  private readonly command: string;
  private readonly logger: Logger;
  private readonly netns: string | undefined;
  private readonly collectMs: number;

  constructor(options: ArpGuardOptions) {
    if (!INTERFACE_NAME.test(options.iface)) {
      throw new MnhaError("INTERNAL", `ARP guard: interface name ${JSON.stringify(options.iface)} is not valid`, { hint: "set vip.interface to a name such as eth0" });
    }
    if (!isIPv4(options.vip)) throw new MnhaError("INTERNAL", `ARP guard: ${JSON.stringify(options.vip)} is not an IPv4 address`, { hint: "set vip.address to an IPv4 address" });
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 10) {
      throw new MnhaError("INTERNAL", `ARP guard: timeout ${options.timeoutMs} ms is too short`, { hint: "set arpGuard.probeTimeoutMs to at least 50" });
    }
    this.iface = options.iface;
    this.vip = options.vip;
    this.timeoutMs = options.timeoutMs;
    this.command = resolveArping(options.command);
    this.logger = options.logger;
    this.netns = options.netns;
    this.collectMs = options.collectMs ?? 30;
  }

  /** The argument list of one probe. */
  argv(): string[] {
    // -w is arping's own backstop (whole seconds); the probe normally stops it much sooner.
    const deadlineSeconds = Math.ceil(this.timeoutMs / 1000) + 1;
    return inNetns([this.command, "-b", "-s", "0.0.0.0", "-c", "1000", "-w", String(deadlineSeconds), "-I", this.iface, this.vip], this.netns);
  }

  /** Gratuitous ARP for the VIP (unsolicited, from this node, which must hold it). */
  announceArgv(): string[] {
    return inNetns([this.command, "-U", "-c", "2", "-w", "2", "-I", this.iface, this.vip], this.netns);
  }

  /** This node's MAC on the VIP interface (the namespace's own sysfs, or `ip -n` in tests). */
  async ownMac(): Promise<string> {
    if (this.netns === undefined) return readInterfaceMac(this.iface);
    const { stdout } = await runCommand(["ip", "-n", this.netns, "-o", "link", "show", this.iface], { timeoutMs: 2_000 });
    const mac = /link\/ether ([0-9a-f:]{17})/.exec(stdout)?.[1];
    if (!mac) throw new Error(`no MAC for ${this.iface} in ${this.netns}`);
    return mac;
  }

  /**
   * The holder's periodic duplicate check as long-running arpings (same request, same window
   * as probe()), or null when they cannot keep `intervalMs` (then the caller calls probe()).
   */
  duplicateWatch(intervalMs: number): DuplicateWatchApi | null {
    const schedule = arpingSchedule(intervalMs, this.timeoutMs);
    if (schedule === null) return null;
    const options = { iface: this.iface, vip: this.vip, intervalMs, timeoutMs: this.timeoutMs, command: this.command, netns: this.netns, ownMac: () => this.ownMac(), logger: this.logger.child({ component: "duplicate-watch" }) };
    return new ArpingMonitor(options, schedule);
  }

  /** Tells the segment that this node answers for the VIP. Never throws; false if arping failed. */
  async announce(): Promise<boolean> {
    const result = await runCommand(this.announceArgv(), { timeoutMs: 3_000 });
    return result.error === null && result.code === 0;
  }

  async probe(): Promise<ArpGuardResult> {
    const result = await this.run();
    const log = { vip: this.vip, iface: this.iface, occupied: result.occupied, macs: result.macs, elapsedMs: result.elapsedMs, detail: result.detail };
    if (result.failed) this.logger.warn(log, "ARP probe failed");
    else this.logger.debug(log, "ARP probe");
    return result;
  }

  private run(): Promise<ArpGuardResult> {
    const started = performance.now();
    const [file, ...args] = this.argv();
    return new Promise((resolve) => {
      let stdout = "";
      let stderr = "";
      let settled = false;
      let stopRequested = false;
      let collecting = false;
      const timers: NodeJS.Timeout[] = [];
      // LC_ALL=C: an arping built with translations (gettext) would say "reply from" in the
      // node's language (zh_CN on many MNs), and an answer not understood would read as "free".
      const child = spawn(file as string, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });

      const stopChild = (): void => {
        if (stopRequested) return;
        stopRequested = true;
        child.kill("SIGTERM");
      };
      const finish = (failure: string | null): void => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        const elapsedMs = Math.round(performance.now() - started);
        const macs = parseArpingReplies(stdout, this.vip);
        if (macs.length > 0) {
          resolve({ occupied: true, macs, failed: false, elapsedMs, detail: `${this.vip} answered by ${macs.join(", ")} after ${elapsedMs} ms` });
        } else if (failure !== null) {
          resolve({ occupied: false, macs: [], failed: true, elapsedMs, detail: `probe failed: ${failure}` });
        } else {
          resolve({ occupied: false, macs: [], failed: false, elapsedMs, detail: `no answer for ${this.vip} on ${this.iface} within ${this.timeoutMs} ms` });
        }
      };

      child.stdout.setEncoding("utf8");
      child.stderr.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        if (stdout.length < 64 * 1024) stdout += chunk;
        if (!collecting && parseArpingReplies(stdout, this.vip).length > 0) {
          // Someone answered: wait a moment for a second holder's answer, then stop.
          collecting = true;
          timers.push(setTimeout(stopChild, this.collectMs));
        }
      });
      child.stderr.on("data", (chunk: string) => {
        if (stderr.length < 4096) stderr += chunk;
      });
      child.on("error", (error) => finish(`${file} could not be run (${(error as NodeJS.ErrnoException).code ?? error.message})`));
      child.on("close", (code, signal) => {
        // Killed by us (timeout or enough answers) or a normal end: the output says it all.
        if (stopRequested || code === 0 || parseArpingReplies(stdout, this.vip).length > 0) {
          finish(null);
          return;
        }
        const message = stderr.trim().split("\n")[0] ?? "";
        if (code === 1 && message === "") finish(null); // arping's "no reply" status
        else finish(`${file} exited with ${code !== null ? `code ${code}` : `signal ${signal ?? "?"}`}${message ? `: ${message}` : ""}`);
      });
      timers.push(setTimeout(stopChild, this.timeoutMs));
      timers.push(setTimeout(() => finish(stopRequested ? null : "arping did not stop"), this.timeoutMs + KILL_SLACK_MS));
    });
  }
}
