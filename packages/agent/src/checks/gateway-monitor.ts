import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { MnhaError, type Logger } from "@mnha/shared";
import type { GatewayMonitorApi } from "../contracts.js";
import { ServiceHealth } from "../core/health.js";
import { LineTool, RequestDeadline, type LineToolExit } from "../util/line-tool.js";

export interface GatewayMonitorOptions {
  address: string;
  intervalMs: number;
  /** How long one echo waits for its reply; a later reply counts as none. */
  timeoutMs: number;
  rise: number;
  fall: number;
  logger: Logger;
  /** The ping binary (default /usr/bin/ping or /bin/ping, whichever exists). Tests pass a fake. */
  pingCommand?: string;
}

/**
 * Slack on a probe's deadline beyond its timeout: ping's own send time is only estimated
 * (from the previous reply's arrival minus its round trip, or from the start of ping, which
 * takes a moment to send its first echo).
 */
const DEADLINE_SLACK_MS = 50;
const STARTUP_SLACK_MS = 250;
/** The longest wait before a ping that died is started again. */
const RESTART_MAX_MS = 5_000;
/** iputils prints icmp_seq as an unsigned 16-bit number: it wraps after 65535. */
const SEQ_MODULO = 65_536;

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

/** One reply line of iputils ping: its icmp_seq and round trip, or null for any other line. */
export function parsePingReply(line: string): { seq: number; rttMs: number | null } | null {
  const seqMatch = /icmp_seq=(\d+)/.exec(line);
  if (seqMatch?.[1] === undefined || !/ bytes from /.test(line)) return null;
  return { seq: Number(seqMatch[1]), rttMs: parsePingRtt(line) };
}

/**
 * Pings the gateway once per interval and keeps a reachable/unreachable verdict with
 * rise/fall, so one lost packet moves nothing. Starts unreachable: a node is not eligible
 * until the gateway has answered `rise` times.
 *
 * One long-running iputils ping (`ping -n -O -i INTERVAL ADDRESS`) sends the echoes and its
 * reply lines are read as they come, instead of one ping process per probe: forking from a
 * 100 MB agent was the largest part of its idle CPU (issue 12). Each echo is still judged on
 * its own, as a one-shot `ping -W TIMEOUT` judged it: a reply within the timeout is a
 * success; a reply later than that, or none by the echo's deadline (its send time + the
 * timeout), is a failure. If ping exits, that is a failure too, and ping is started again
 * after the agent's backoff (util/line-tool.ts runs the process and the deadlines).
 */
export class GatewayMonitor implements GatewayMonitorApi {
  private readonly options: GatewayMonitorOptions;
  private readonly pingCommand: string;
  private readonly health: ServiceHealth;
  private readonly listeners: ((reachable: boolean, detail: string) => void)[] = [];
  private readonly ping: LineTool;
  private readonly deadline = new RequestDeadline();
  private running = false;
  /** The oldest echo (counted from 1 since ping started, not wrapped) not yet judged. */
  private expected = 1;
  /** Echoes after `expected` already answered (replies can overtake a lost echo). */
  private readonly answeredAhead = new Set<number>();
  /** Estimated send time of echo `anchorSeq`: from the latest reply, or ping's start. */
  private anchorSendMs = 0;
  private anchorSeq = 1;
  private anchoredByReply = false;
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
    this.ping = new LineTool({
      argv: () => this.pingArgv(),
      onStarted: () => this.onPingStarted(),
      onLine: (line) => this.onLine(line),
      onExit: (exit) => this.onPingExit(exit),
      onRestartScheduled: (restartInMs) => this.options.logger.debug({ gateway: this.options.address, detail: this.lastDetail, restartInMs }, "gateway ping exited; starting it again"),
      backoff: { initialMs: Math.min(options.intervalMs, 1_000), maxMs: RESTART_MAX_MS },
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.options.logger.info({ gateway: this.options.address, intervalMs: this.options.intervalMs, timeoutMs: this.options.timeoutMs, ping: this.pingCommand }, "gateway monitor started");
    this.ping.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deadline.clear();
    await this.ping.stop();
  }

  onChange(listener: (reachable: boolean, detail: string) => void): void {
    this.listeners.push(listener);
  }

  reachable(): boolean {
    return this.health.snapshot().healthy;
  }

  /** Round trip of the latest echo, or null if it got no reply. */
  lastRttMs(): number | null {
    return this.rttMs;
  }

  /** The reason behind the latest result ("reply from … in 0.3 ms", "no reply from … within 400 ms"). */
  detail(): string {
    return this.lastDetail;
  }

  /**
   * The command line of the long-running ping. `-O` makes it print a line for every echo left
   * unanswered: a ping orphaned by a killed agent (the unit's KillMode=process leaves children
   * running) then dies of SIGPIPE within one interval even while the gateway is down. Without
   * it, a ping to a silent gateway prints nothing and would outlive the agent for good.
   */
  pingArgv(): string[] {
    return [this.pingCommand, "-n", "-O", "-i", secondsArgument(this.options.intervalMs), this.options.address];
  }

  /** A new ping counts its echoes from 1 again, and its first send time is only estimated. */
  private onPingStarted(): void {
    this.expected = 1;
    this.answeredAhead.clear();
    this.anchorSendMs = performance.now();
    this.anchorSeq = 1;
    this.anchoredByReply = false;
    this.armDeadline();
  }

  private onPingExit({ code, signal, spawnError, stderrLine }: LineToolExit): "backoff" {
    this.deadline.clear();
    const { address, timeoutMs } = this.options;
    // iputils: exit 1 is "no reply", exit 2 is any other error (printed on stderr).
    let detail: string;
    if (spawnError !== null) detail = `ping ${address} could not start: ${spawnError.message}`;
    else if (code === 1) detail = `no reply from ${address} within ${timeoutMs} ms`;
    else if (code === 2) detail = `ping ${address} failed: ${stderrLine || "exit 2"}`;
    else detail = `ping ${address} exited (${signal === null ? `code ${code}` : `signal ${signal}`})${stderrLine ? `: ${stderrLine}` : ""}`;
    this.record(false, null, detail);
    return "backoff";
  }

  private onLine(line: string): void {
    const reply = parsePingReply(line);
    if (reply === null) return;
    const now = performance.now();
    // Unwrap the 16-bit sequence number to the echo count nearest `expected`.
    const ahead = (reply.seq - (this.expected % SEQ_MODULO) + SEQ_MODULO) % SEQ_MODULO;
    const echo = ahead < SEQ_MODULO / 2 ? this.expected + ahead : this.expected - (SEQ_MODULO - ahead);
    if (reply.rttMs !== null) {
      this.anchorSendMs = now - reply.rttMs;
      this.anchorSeq = echo;
      this.anchoredByReply = true;
    }
    this.ping.resetBackoff();
    if (this.answeredAhead.has(echo)) return;
    const inTime = reply.rttMs === null || reply.rttMs <= this.options.timeoutMs;
    if (echo < this.expected) {
      // An echo already judged lost. A late reply changes nothing; one within the timeout
      // means the count ran ahead of ping's (its sends drift behind the estimate over a long
      // silence): take ping's count again and count the reply.
      if (!inTime) return;
      this.expected = echo + 1;
      for (const answered of this.answeredAhead) if (answered <= echo) this.answeredAhead.delete(answered);
    } else if (echo === this.expected) this.expected++;
    else this.answeredAhead.add(echo);
    this.skipAnswered();
    const { address, timeoutMs } = this.options;
    if (reply.rttMs !== null && reply.rttMs > timeoutMs) this.record(false, null, `no reply from ${address} within ${timeoutMs} ms (one came after ${reply.rttMs} ms)`);
    else this.record(true, reply.rttMs, reply.rttMs === null ? `reply from ${address}` : `reply from ${address} in ${reply.rttMs} ms`);
    this.armDeadline();
  }

  private skipAnswered(): void {
    while (this.answeredAhead.delete(this.expected)) this.expected++;
  }

  /** The deadline of the oldest echo not yet judged: no reply by then is a failure. */
  private armDeadline(): void {
    if (!this.running || !this.ping.alive()) {
      this.deadline.clear();
      return;
    }
    const { intervalMs, timeoutMs } = this.options;
    const sendMs = this.anchorSendMs + (this.expected - this.anchorSeq) * intervalMs;
    const echo = this.expected;
    this.deadline.arm(sendMs + timeoutMs + (this.anchoredByReply ? DEADLINE_SLACK_MS : STARTUP_SLACK_MS), () => {
      if (echo !== this.expected) return;
      this.expected++;
      this.skipAnswered();
      this.record(false, null, `no reply from ${this.options.address} within ${timeoutMs} ms`);
      this.armDeadline();
    });
  }

  private record(ok: boolean, rttMs: number | null, detail: string): void {
    const { address } = this.options;
    this.rttMs = rttMs;
    this.lastDetail = detail;
    const before = this.reachable();
    const transition = this.health.recordResult(ok, performance.now() - this.origin);
    if (this.options.logger.isLevelEnabled("trace")) this.options.logger.trace({ gateway: address, ok, rttMs, detail }, "gateway ping");
    const after = this.reachable();
    if (transition === null) return;
    const fields = { gateway: address, reachable: after, detail };
    if (after) this.options.logger.info(fields, "gateway reachable");
    else this.options.logger.warn(fields, "gateway unreachable");
    // The first verdict "unreachable" changes nothing: the monitor started unreachable.
    if (before !== after) this.emit(after, detail);
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

/** Milliseconds as ping's seconds argument: 500 → "0.5", 1000 → "1". */
function secondsArgument(ms: number): string {
  return (ms / 1000).toFixed(3).replace(/\.?0+$/, "");
}
