import type { Logger } from "@mnha/shared";
import type { DuplicateCheckReport, DuplicateCheckStatus, DuplicateWatchApi } from "../contracts.js";
import { LineTool, RequestDeadline, type LineToolExit } from "../util/line-tool.js";
import { inNetns } from "./command.js";
import { DuplicateCheckStates } from "./duplicate-watch.js";

export interface ArpingMonitorOptions {
  iface: string;
  vip: string;
  /** The holder checks at least this often (ms); see arpingSchedule for how. */
  intervalMs: number;
  /** One probe's window: an answer later than this after its request counts as none. */
  timeoutMs: number;
  /** The resolved arping binary. Tests pass a fake. */
  command: string;
  netns?: string | undefined;
  ownMac: () => Promise<string>;
  logger: Logger;
  /** Each arping's own `-w` deadline, after which it is started again at once (default 600 s). */
  lifetimeSeconds?: number;
}

/** How the periodic check is spread over long-running arpings. */
export interface ArpingSchedule {
  /** How many arpings run side by side, started evenly staggered. */
  streams: number;
  /** Each one's `-i` (iputils arping takes whole seconds only, at least 1). */
  periodSeconds: number;
}

/** How often a failing own-MAC lookup is said again. */
const MAC_WARN_EVERY_MS = 60_000;

/** More staggered arpings than this for a short interval: fall back to one probe process per check. */
const MAX_STREAMS = 4;
/** Slack on a probe's deadline (its send time is estimated; see ArpingStream). */
const DEADLINE_SLACK_MS = 50;
const STARTUP_SLACK_MS = 250;
/** After the first other MAC answers a probe, wait this long for a second one, then report (as the one-shot probe did). */
const COLLECT_MS = 30;
const RESTART_MAX_MS = 5_000;
/**
 * arping's own deadline. The unit's KillMode=process leaves an agent's children running when
 * the agent dies, and an arping that nobody answers never writes to its broken pipe: the
 * deadline bounds such an orphan's life, at the cost of one fork per stream per 10 minutes.
 */
const DEFAULT_LIFETIME_SECONDS = 600;

/**
 * The long-running arpings that check at least every `intervalMs` with a `timeoutMs` window,
 * or null when that cannot be done (interval 0, below 1000/MAX_STREAMS ms, or a window that
 * does not end well before the same arping's next request): then the caller probes with one
 * process per check. 500 ms → two arpings, each sending every second, 500 ms apart.
 */
export function arpingSchedule(intervalMs: number, timeoutMs: number): ArpingSchedule | null {
  if (!(intervalMs > 0)) return null;
  const schedule = intervalMs >= 1_000 ? { streams: 1, periodSeconds: Math.floor(intervalMs / 1_000) } : { streams: Math.ceil(1_000 / intervalMs), periodSeconds: 1 };
  if (schedule.streams > MAX_STREAMS) return null;
  // A reply is tied to the latest request by its round trip: the window must close before the next one.
  if (timeoutMs + STARTUP_SLACK_MS >= schedule.periodSeconds * 1_000) return null;
  return schedule;
}

/** One reply line of iputils arping ("Unicast reply from 10.0.0.100 [02:00:00:00:00:01]  0.577ms") for `vip`, or null. */
export function parseArpingReplyLine(line: string, vip: string): { mac: string; rttMs: number | null } | null {
  const match = /reply from (\d{1,3}(?:\.\d{1,3}){3}) \[([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\](?:\s+([\d.]+)ms)?/.exec(line);
  if (match === null || match[1] !== vip || match[2] === undefined) return null;
  const rtt = match[3] === undefined ? null : Number(match[3]);
  return { mac: match[2].toLowerCase(), rttMs: rtt !== null && Number.isFinite(rtt) ? rtt : null };
}

/**
 * The holder's duplicate-address check (rule 7 of docs/protocol.md) without a process per
 * check: long-running iputils arpings (`arping -b -s 0.0.0.0 -i SECONDS -w 600 -I IFACE VIP`, the
 * same DAD-style broadcast request as the ARP guard's probe) send the requests, and their
 * reply lines are read as they come. Forking arping from a 100 MB agent twice a second was
 * the largest idle cost left (issue 12). arping's -i takes whole seconds, so a 500 ms
 * interval runs two of them, 500 ms apart.
 *
 * Each request is still judged on its own, as the one-shot probe judged it: the MACs other
 * than ours that answered within `timeoutMs` of the request (arping's printed round trip) are
 * reported, 30 ms after the first such answer or at the request's deadline (its estimated send
 * time + the timeout + slack); no answer by the deadline is reported as "nobody else" (the
 * keeper learns the other MAC is gone). A later answer counts as none. An arping that exits
 * before its deadline reports nothing (a broken tool must not take the VIP away) and is
 * started again after a backoff.
 */
export class ArpingMonitor implements DuplicateWatchApi {
  private readonly options: ArpingMonitorOptions;
  private readonly schedule: ArpingSchedule;
  private readonly listeners: ((check: DuplicateCheckReport) => void)[] = [];
  private readonly states = new DuplicateCheckStates();
  private streams: ArpingStream[] = [];
  private staggerTimers: NodeJS.Timeout[] = [];
  /** The next own-MAC lookup while it keeps failing: one handle, replaced, never piled up. */
  private retryTimer: NodeJS.Timeout | null = null;
  /** Failed own-MAC lookups in a row, and when that was last said (once a minute, not each try). */
  private macFailures = 0;
  private macWarnedAt = -Infinity;
  private macError = "";
  /** When the latest check was reported in this activation (for status). */
  private lastCheckAt: number | null = null;
  private active = false;
  private stopped = false;
  /** Bumped on every activation change: a pending own-MAC lookup for an older one is void. */
  private generation = 0;
  private mac: string | null = null;

  constructor(options: ArpingMonitorOptions, schedule: ArpingSchedule) {
    this.options = options;
    this.schedule = schedule;
  }

  onCheck(listener: (check: DuplicateCheckReport) => void): void {
    this.listeners.push(listener);
  }

  onStateChange(listener: (status: DuplicateCheckStatus) => void): void {
    this.states.listen(listener);
  }

  isActive(): boolean {
    return this.active;
  }

  /**
   * Running while at least one arping is judging requests; failing while our MAC is unknown
   * or every arping started has failed since it last judged one (each is retried meanwhile).
   */
  status(): DuplicateCheckStatus {
    if (!this.active) return { state: "idle", problem: null, lastCheckMsAgo: null };
    const lastCheckMsAgo = this.lastCheckAt === null ? null : Math.round(performance.now() - this.lastCheckAt);
    if (this.mac === null && this.macFailures > 0) {
      return { state: "failing", problem: `own MAC on ${this.options.iface} unknown (${this.macError}), ${this.macFailures} ${this.macFailures === 1 ? "try" : "tries"}`, lastCheckMsAgo };
    }
    const problems = this.streams.map((stream) => stream.problem()).filter((problem): problem is string => problem !== null);
    if (problems.length > 0 && problems.length === this.streams.length) return { state: "failing", problem: problems[0] ?? null, lastCheckMsAgo };
    return { state: "running", problem: problems.length > 0 ? `${problems.length} of ${this.streams.length} arpings failing (checks less often): ${problems[0]}` : null, lastCheckMsAgo };
  }

  /** Active while this node holds the VIP: the arpings run then, and only then. */
  setActive(active: boolean): void {
    if (this.stopped || active === this.active) return;
    this.active = active;
    this.lastCheckAt = null;
    const generation = ++this.generation;
    if (!active) {
      this.halt();
      this.states.note(this.status());
      return;
    }
    this.begin(generation);
    this.states.note(this.status());
  }

  /** Starts the arpings, once our MAC is known (the lookup is tried again every interval until it works). */
  private begin(generation: number): void {
    void this.ownMacOnce().then((own) => {
      if (generation !== this.generation || !this.active) return;
      this.states.note(this.status());
      if (own === null) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.begin(generation);
        }, this.options.intervalMs);
        return;
      }
      const periodMs = this.schedule.periodSeconds * 1_000;
      for (let i = 0; i < this.schedule.streams; i++) {
        const stream = new ArpingStream(this.options, this.schedule.periodSeconds, own, (check) => this.emit(check), () => this.states.note(this.status()));
        this.streams.push(stream);
        this.staggerTimers.push(setTimeout(() => stream.start(), Math.round((i * periodMs) / this.schedule.streams)));
      }
    });
  }

  stop(): void {
    this.stopped = true;
    this.active = false;
    this.generation++;
    this.halt();
  }

  /** The argument list of each long-running arping. */
  argv(): string[] {
    return arpingArgv(this.options, this.schedule.periodSeconds);
  }

  private halt(): void {
    for (const timer of this.staggerTimers) clearTimeout(timer);
    this.staggerTimers = [];
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const stream of this.streams) stream.stop();
    this.streams = [];
  }

  /**
   * Our MAC, looked up once (tried again each interval while it fails). A lookup that keeps
   * failing is said at once and then once a minute with the count, not at every try.
   */
  private async ownMacOnce(): Promise<string | null> {
    if (this.mac !== null) return this.mac;
    try {
      this.mac = (await this.options.ownMac()).toLowerCase();
      if (this.macFailures > 0) this.options.logger.info({ failures: this.macFailures }, "duplicate-address check: own MAC found; the check runs");
      this.macFailures = 0;
      return this.mac;
    } catch (error) {
      this.macFailures++;
      this.macError = error instanceof Error ? error.message : String(error);
      const now = performance.now();
      if (now - this.macWarnedAt >= MAC_WARN_EVERY_MS) {
        this.macWarnedAt = now;
        this.options.logger.warn({ err: error, failures: this.macFailures }, "duplicate-address check not running (own MAC unknown); keeping the VIP, trying again");
      }
      return null;
    }
  }

  private emit(check: DuplicateCheckReport): void {
    if (!this.active) return;
    this.lastCheckAt = performance.now();
    for (const listener of this.listeners) listener(check);
  }
}

function arpingArgv(options: ArpingMonitorOptions, periodSeconds: number): string[] {
  const lifetime = String(options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS);
  return inNetns([options.command, "-b", "-s", "0.0.0.0", "-i", String(periodSeconds), "-w", lifetime, "-I", options.iface, options.vip], options.netns);
}

/**
 * One long-running arping and the judging of its requests. arping prints nothing when it
 * sends, so request n's send time is estimated: from the latest answer (its arrival minus its
 * round trip) plus the whole periods since, or from arping's start. The round trip arping
 * prints is measured from its latest request, so an answer is tied to a request even when
 * this process reads it late.
 */
class ArpingStream {
  private readonly arping: LineTool;
  private readonly deadline = new RequestDeadline();
  private running = false;
  private readonly periodMs: number;
  private collectTimer: NodeJS.Timeout | null = null;
  /** The oldest request (counted from 1 since arping started) not yet judged, and the other MACs that answered it. */
  private expected = 1;
  private readonly answered = new Set<string>();
  private anchorSendMs = 0;
  private anchorSeq = 1;
  private anchoredByReply = false;
  private exitDetail = "";
  /** Why this arping is being restarted, until it judges a request again (for status). */
  private failure: string | null = null;

  constructor(
    private readonly options: ArpingMonitorOptions,
    private readonly periodSeconds: number,
    private readonly ownMac: string,
    private readonly report: (check: DuplicateCheckReport) => void,
    /** This arping started or stopped failing. */
    private readonly failureChanged: () => void,
  ) {
    this.periodMs = periodSeconds * 1_000;
    this.arping = new LineTool({
      argv: () => arpingArgv(this.options, this.periodSeconds),
      onStarted: () => this.onArpingStarted(),
      onLine: (line) => this.onLine(line),
      onExit: (exit) => this.onArpingExit(exit),
      onRestartScheduled: (restartInMs) => {
        const first = this.failure === null;
        this.failure = this.exitDetail;
        if (first) this.failureChanged();
        this.options.logger.warn({ detail: this.exitDetail, restartInMs }, "duplicate-address check failed; keeping the VIP");
      },
      backoff: { initialMs: 1_000, maxMs: RESTART_MAX_MS },
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arping.start();
  }

  stop(): void {
    this.running = false;
    this.clearTimers();
    void this.arping.stop();
  }

  problem(): string | null {
    return this.failure;
  }

  /** Every judged request goes out through here: the arping works again. */
  private reportCheck(check: DuplicateCheckReport): void {
    const recovered = this.failure !== null;
    this.failure = null;
    this.report(check);
    if (recovered) this.failureChanged();
  }

  /** A new arping counts its requests from 1 again, and its first send time is only estimated. */
  private onArpingStarted(): void {
    this.expected = 1;
    this.answered.clear();
    this.anchorSendMs = performance.now();
    this.anchorSeq = 1;
    this.anchoredByReply = false;
    this.armDeadline();
  }

  private onArpingExit({ code, signal, spawnError, stderrLine, livedMs }: LineToolExit): "now" | "backoff" {
    this.clearTimers();
    // What already answered is real; a request cut short is otherwise not judged.
    if (this.answered.size > 0) this.judge();
    // arping's own -w deadline (exit 0: answers came, 1: none): the planned end; start the next at once.
    const lifetimeMs = (this.options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS) * 1_000;
    if (spawnError === null && (code === 0 || code === 1) && stderrLine === "" && livedMs >= lifetimeMs / 2) {
      this.options.logger.debug({ code }, "duplicate-check arping reached its deadline; starting the next");
      return "now";
    }
    const file = this.options.command;
    this.exitDetail = spawnError !== null ? `${file} could not be run (${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message})` : `${file} exited (${signal === null ? `code ${code}` : `signal ${signal}`})${stderrLine ? `: ${stderrLine}` : ""}`;
    return "backoff";
  }

  private onLine(line: string): void {
    const reply = parseArpingReplyLine(line, this.options.vip);
    if (reply === null) return;
    this.arping.resetBackoff();
    const now = performance.now();
    const { timeoutMs } = this.options;
    if (reply.rttMs !== null && reply.rttMs > timeoutMs) return; // after the window: counts as none
    // The request this answers: the one sent `rtt` ago (the nearest estimated send time).
    let request = this.expected;
    if (reply.rttMs !== null) {
      const sendMs = now - reply.rttMs;
      request = this.anchorSeq + Math.round((sendMs - this.anchorSendMs) / this.periodMs);
      this.anchorSendMs = sendMs;
      this.anchorSeq = request;
      this.anchoredByReply = true;
    }
    const other = reply.mac !== this.ownMac;
    if (request < this.expected) {
      // A request already judged (the estimate ran late of arping's): the answer was in time, report it now.
      if (other) this.reportCheck(this.check([reply.mac]));
      this.armDeadline();
      return;
    }
    // Requests before this one whose deadline this process missed got no answer in time.
    while (this.expected < request) this.judge();
    if (other) {
      this.answered.add(reply.mac);
      if (this.collectTimer === null) {
        this.collectTimer = setTimeout(() => {
          this.collectTimer = null;
          if (this.arping.alive()) this.judgeAndArm();
        }, COLLECT_MS);
      }
    }
    this.armDeadline();
  }

  /** The deadline of the oldest request not yet judged: no answer by then is "nobody else". */
  private armDeadline(): void {
    if (!this.running || !this.arping.alive()) {
      this.deadline.clear();
      return;
    }
    const sendMs = this.anchorSendMs + (this.expected - this.anchorSeq) * this.periodMs;
    const request = this.expected;
    this.deadline.arm(sendMs + this.options.timeoutMs + (this.anchoredByReply ? DEADLINE_SLACK_MS : STARTUP_SLACK_MS), () => {
      if (request === this.expected && this.arping.alive()) this.judgeAndArm();
    });
  }

  private judgeAndArm(): void {
    this.judge();
    this.armDeadline();
  }

  /** Reports request `expected` with the MACs that answered it, and moves to the next. */
  private judge(): void {
    if (this.collectTimer !== null) clearTimeout(this.collectTimer);
    this.collectTimer = null;
    const macs = [...this.answered];
    this.answered.clear();
    this.expected++;
    this.reportCheck(this.check(macs));
  }

  private check(otherMacs: string[]): DuplicateCheckReport {
    const { vip, iface, timeoutMs } = this.options;
    const detail = otherMacs.length > 0 ? `${vip} answered by ${otherMacs.join(", ")} within ${timeoutMs} ms` : `no other answer for ${vip} on ${iface} within ${timeoutMs} ms`;
    return { ownMac: this.ownMac, otherMacs, detail };
  }

  private clearTimers(): void {
    this.deadline.clear();
    if (this.collectTimer !== null) clearTimeout(this.collectTimer);
    this.collectTimer = null;
  }
}
