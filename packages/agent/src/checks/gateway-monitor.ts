import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { MnhaError, type Logger } from "@mnha/shared";
import type { GatewayMonitorApi } from "../contracts.js";
import { ServiceHealth } from "../core/health.js";
import { describeCommandResult, firstOutputLine, runCommand } from "./command.js";

export interface GatewayMonitorOptions {
  address: string;
  intervalMs: number;
  /** How long one ping waits for its reply (passed to ping -W, fractions allowed). */
  timeoutMs: number;
  rise: number;
  fall: number;
  logger: Logger;
  /** The ping binary (default /usr/bin/ping or /bin/ping, whichever exists). Tests pass a fake. */
  pingCommand?: string;
}

/** Beyond -W, time for ping itself to start and exit before it is killed. */
const PING_STARTUP_SLACK_MS = 250;

export function defaultPingCommand(): string {
  return existsSync("/usr/bin/ping") ? "/usr/bin/ping" : "/bin/ping";
}

/** The round trip from ping's reply line ("time=0.293 ms", "time<1 ms"), or null. */
export function parsePingRtt(output: string): number | null {
  const match = /time[=<]\s*([\d.]+)\s*ms/.exec(output);
  if (match?.[1] === undefined) return null;
  const rtt = Number(match[1]);
  return Number.isFinite(rtt) ? rtt : null;
}

/**
 * Pings the gateway once per interval (iputils ping, one echo, -W timeout) and keeps a
 * reachable/unreachable verdict with rise/fall, so one lost packet moves nothing. Starts
 * unreachable: a node is not eligible until the gateway has answered `rise` times.
 */
export class GatewayMonitor implements GatewayMonitorApi {
  private readonly options: GatewayMonitorOptions;
  private readonly pingCommand: string;
  private readonly health: ServiceHealth;
  private readonly listeners: ((reachable: boolean, detail: string) => void)[] = [];
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private pingRun: Promise<void> | null = null;
  private lifetime = new AbortController();
  private rttMs: number | null = null;
  private lastDetail = "not pinged yet";
  /** A monotonic origin for the health core; only differences matter. */
  private readonly origin = performance.now();

  constructor(options: GatewayMonitorOptions) {
    // The address becomes an argument of ping: refuse anything that is not a plain IPv4 address.
    if (isIP(options.address) !== 4) {
      throw new MnhaError("CONFIG_INVALID", `gateway address ${JSON.stringify(options.address)} is not an IPv4 address`, {
        hint: "set gateway.address to the gateway's IPv4 address, such as 10.0.0.1",
      });
    }
    this.options = options;
    this.pingCommand = options.pingCommand ?? defaultPingCommand();
    this.health = new ServiceHealth({ rise: options.rise, fall: options.fall });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    this.options.logger.info({ gateway: this.options.address, intervalMs: this.options.intervalMs, timeoutMs: this.options.timeoutMs, ping: this.pingCommand }, "gateway monitor started");
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.lifetime.abort();
    if (this.pingRun !== null) await this.pingRun;
  }

  onChange(listener: (reachable: boolean, detail: string) => void): void {
    this.listeners.push(listener);
  }

  reachable(): boolean {
    return this.health.snapshot().healthy;
  }

  /** Round trip of the latest ping, or null if it got no reply. */
  lastRttMs(): number | null {
    return this.rttMs;
  }

  /** The reason behind the latest ping result ("reply in 0.3 ms", "no reply within 400 ms"). */
  detail(): string {
    return this.lastDetail;
  }

  /** Pings once now (awaiting a ping already under way instead). */
  pingNow(): Promise<void> {
    if (this.pingRun !== null) return this.pingRun;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    const startedAt = performance.now();
    const run = this.pingOnce()
      .catch((error: unknown) => this.options.logger.error({ err: error }, "gateway ping failed unexpectedly"))
      .finally(() => {
        this.pingRun = null;
        this.schedule(Math.max(0, this.options.intervalMs - (performance.now() - startedAt)));
      });
    this.pingRun = run;
    return run;
  }

  private schedule(delayMs: number): void {
    if (!this.running || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pingNow();
    }, delayMs);
  }

  private async pingOnce(): Promise<void> {
    const { address, timeoutMs } = this.options;
    const waitSeconds = (timeoutMs / 1000).toFixed(3).replace(/\.?0+$/, "");
    const argv = [this.pingCommand, "-n", "-c", "1", "-W", waitSeconds, address];
    const signal = this.lifetime.signal;
    // LC_ALL=C: ping reads -W with the C decimal point and prints "time=0.29 ms" whatever the locale.
    const result = await runCommand(argv, { timeoutMs: timeoutMs + PING_STARTUP_SLACK_MS, signal, killGraceMs: 0, env: { ...process.env, LC_ALL: "C" } });
    if (signal.aborted) return;
    let ok = false;
    if (result.exitCode === 0) {
      ok = true;
      this.rttMs = parsePingRtt(result.output);
      this.lastDetail = this.rttMs === null ? `reply from ${address}` : `reply from ${address} in ${this.rttMs} ms`;
    } else {
      this.rttMs = null;
      // iputils: exit 1 is "no reply", exit 2 is any other error (printed on stderr).
      if (result.exitCode === 1) this.lastDetail = `no reply from ${address} within ${timeoutMs} ms`;
      else if (result.exitCode === 2) this.lastDetail = `ping ${address} failed: ${firstOutputLine(result.output) || "exit 2"}`;
      else this.lastDetail = `ping ${address}: ${describeCommandResult(argv, result, timeoutMs + PING_STARTUP_SLACK_MS)}`;
    }
    const before = this.reachable();
    const transition = this.health.recordResult(ok, performance.now() - this.origin);
    this.options.logger.trace({ gateway: address, ok, rttMs: this.rttMs, detail: this.lastDetail }, "gateway ping");
    const after = this.reachable();
    if (transition === null) return;
    const fields = { gateway: address, reachable: after, detail: this.lastDetail };
    if (after) this.options.logger.info(fields, "gateway reachable");
    else this.options.logger.warn(fields, "gateway unreachable");
    // The first verdict "unreachable" changes nothing: the monitor started unreachable.
    if (before !== after) this.emit(after, this.lastDetail);
  }

  private emit(reachable: boolean, detail: string): void {
    for (const listener of this.listeners) {
      try {
        listener(reachable, detail);
      } catch (error) {
        this.options.logger.error({ err: error }, "gateway listener threw");
      }
    }
  }
}
