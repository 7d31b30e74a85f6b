import { access, constants as fsConstants, lstat, mkdir, statfs, unlink } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { dirname } from "node:path";
import type { KeepalivedState } from "@mnha/protocol";
import { MnhaError, type Logger, type MnhaConfig } from "@mnha/shared";
import type { KeepalivedDriverApi } from "../contracts.js";
import { addressOnInterface, hasAddress, removeAddress } from "../net/address.js";
import { describeFailure, runCommand } from "../net/command.js";
import { tempPathFor, writeFileAtomic } from "@mnha/shared";
import { readFileOrNull } from "./atomic-file.js";
import { LeaseGuard } from "./lease-guard.js";
import { NotifyFifoReader, parseNotifyLine } from "./notify-fifo.js";
import { defaultKeepalivedPaths, directoriesOf, type KeepalivedPaths } from "./paths.js";
import { INSTANCE_NAME, keepalivedParamsFromConfig, renderKeepalivedConfig } from "./render.js";
import { KeepalivedSupervisor } from "./supervisor.js";
import { everyOnBeat, type BeatApi, type CancelBeat } from "../util/beat.js";

const FAILURE_REPORT_EVERY_MS = 30_000;

export interface KeepalivedDriverOptions {
  config: MnhaConfig;
  logger: Logger;
  /** Override any of the driver's files (default: under `<dataDir>/keepalived`). */
  paths?: Partial<KeepalivedPaths>;
  /** Default: config.keepalived.binary. */
  keepalivedBinary?: string;
  /** Include the vrrp_script lease check (default true; needs root-owned scripts). */
  leaseCheck?: boolean;
  /**
   * Run keepalived, `keepalived -t` and `ip` inside this network namespace (`ip netns exec`).
   * For tests and labs that drive a namespaced node from outside it; an agent that itself
   * runs inside the namespace leaves this unset.
   */
  netns?: string;
  /** Service mode: the systemctl binary (default `systemctl`). */
  systemctlBinary?: string;
  /** Child mode: first restart delay after keepalived exits unexpectedly (default 250 ms). */
  restartInitialMs?: number;
  /** How long stop() waits for keepalived after SIGTERM before SIGKILL (default 3000 ms). */
  stopTimeoutMs?: number;
  /** How long start() waits for keepalived's first notification (default 5000 ms). */
  startTimeoutMs?: number;
  /**
   * How often the driver checks its own files (guard pid file, track files, keepalived.conf,
   * keepalived running) and repairs what someone changed (default 1000 ms; 0: never).
   */
  selfCheckIntervalMs?: number;
  /** The agent's beat (util/beat.ts): a period that fits it rides it instead of waking the process on its own. */
  beat?: BeatApi;
}

/** What one repair did, for the audit event. */
export interface KeepalivedRepair {
  reason: string;
  actions: string[];
}

/** Below this much free space the driver's files cannot be rewritten safely (each write is a temp file and a rename). */
const MIN_FREE_BYTES = 64 * 1024;

/**
 * Carries out the agent's decision about the VIP through Keepalived. Both nodes run
 * keepalived as BACKUP with nopreempt; two track files (weight 0) hold an instance in FAULT
 * unless the agent has elected this node (the gate) and is alive (the lease, kept by the
 * lease guard). notify_fifo lines say what keepalived did; `ip addr` says what is true.
 */
export class KeepalivedDriver implements KeepalivedDriverApi {
  readonly paths: KeepalivedPaths;
  private config: MnhaConfig;
  private readonly logger: Logger;
  private readonly options: KeepalivedDriverOptions;
  private readonly binary: string;
  private readonly mode: "child" | "service";
  private readonly fifo: NotifyFifoReader;
  private readonly guard: LeaseGuard;
  private readonly supervisor: KeepalivedSupervisor | null;
  private readonly listeners: ((state: KeepalivedState) => void)[] = [];
  private currentState: KeepalivedState = "stopped";
  private gate = false;
  private gateWrite: Promise<void> = Promise.resolve();
  private started = false;
  private renderedConfig: string | null = null;
  private servicePid: number | null = null;
  /** Whether keepalived ran since start(): only then can it have left a VIP behind. */
  private keepalivedRan = false;
  private firstNotification: (() => void) | null = null;
  private lastRenewAt = Number.NEGATIVE_INFINITY;
  private repairChain: Promise<void> = Promise.resolve();
  private stopSelfCheck: CancelBeat | null = null;
  private selfChecking = false;
  /** installConfig() calls in flight: keepalived.conf is ours to change then, not a repair's. */
  private configWrites = 0;
  private readonly repairListeners: ((repair: KeepalivedRepair) => void)[] = [];
  private failureReportedAt = Number.NEGATIVE_INFINITY;
  /** Why paths.dir is not writable (errno code), or null while it is. */
  private unwritable: string | null = null;
  private startupExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | null = null;

  constructor(options: KeepalivedDriverOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger.child({ component: "keepalived" });
    this.paths = defaultKeepalivedPaths(options.config, options.paths);
    this.binary = options.keepalivedBinary ?? options.config.keepalived.binary;
    this.mode = options.config.keepalived.mode;
    this.fifo = new NotifyFifoReader({ path: this.paths.notifyFifo, logger: this.logger, onLine: (line) => this.onNotifyLine(line) });
    this.guard = new LeaseGuard({
      script: this.paths.leaseGuardScript,
      leaseFile: this.paths.leaseFile,
      leaseMs: options.config.timings.leaseMs,
      logger: this.logger,
      onRespawn: (detail) => this.tellRepair({ reason: "the lease guard exited while the agent runs", actions: [detail] }),
    });
    this.supervisor =
      this.mode === "child"
        ? new KeepalivedSupervisor({
            binary: this.binary,
            configFile: this.paths.configFile,
            pidFile: this.paths.pidFile,
            vrrpPidFile: this.paths.vrrpPidFile,
            logger: this.logger,
            netns: options.netns,
            restartInitialMs: options.restartInitialMs,
            onRunning: (running) => {
              if (running) this.keepalivedRan = true;
              else void this.followNotifyFifo();
              this.setState(running ? "init" : "stopped");
            },
          })
        : null;
    this.supervisor?.onExit((code, signal) => this.startupExit?.(code, signal));
  }

  /** The config text this driver would write now. */
  renderConfig(): string {
    return renderKeepalivedConfig(keepalivedParamsFromConfig(this.config, this.paths, { leaseCheck: this.options.leaseCheck ?? true }));
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (!this.supervisor) this.setState("unknown");
    try {
      await this.prepareFiles();
      this.fifo.start();
      this.guard.start();
      const text = this.renderConfig();
      await this.installConfig(text, this.config);
      if (this.supervisor) {
        const first = this.waitForFirstNotification();
        first.catch(() => undefined); // awaited below; keepalived may die before then
        await this.supervisor.start();
        await first;
      } else {
        await this.systemctl(["reload-or-restart", this.config.keepalived.serviceName]);
        this.servicePid = await this.readServicePid();
      }
      this.startSelfCheck();
      this.logger.info({ mode: this.mode, pid: this.pid(), state: this.currentState, config: this.paths.configFile }, "keepalived driver started");
    } catch (error) {
      await this.stop().catch(() => undefined);
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.stopSelfCheck?.();
    this.stopSelfCheck = null;
    this.firstNotification?.();
    await this.setGate(false).catch((error: unknown) => this.logger.warn({ err: error }, "could not close the gate"));
    if (this.supervisor) {
      const killed = await this.supervisor.stop(this.options.stopTimeoutMs ?? 3_000);
      if (killed) this.logger.warn("keepalived had to be killed; removing the VIP by hand if it is still there");
      if (this.keepalivedRan) await this.removeStrayVip();
      this.keepalivedRan = false;
    }
    await this.guard.stop();
    // The guard marks the lease stale on its way out; make sure even if it could not.
    await this.writeFlag(this.paths.leaseFile, "1").catch(() => undefined);
    this.fifo.stop();
    this.setState("stopped");
    this.logger.info("keepalived driver stopped");
  }

  async setGate(open: boolean): Promise<void> {
    const changed = open !== this.gate;
    this.gate = open;
    // Serialized: the file always ends up holding the latest request.
    const write = this.gateWrite.then(() => this.writeFlag(this.paths.gateFile, this.gate ? "0" : "1"));
    this.gateWrite = write.catch(() => undefined);
    await write;
    if (changed) this.logger.info({ open }, open ? "gate opened: keepalived may become MASTER" : "gate closed: keepalived held in FAULT");
    // No keepalived to act on the closed gate (it died by SIGKILL and cannot start again):
    // a VIP it left on the interface would still answer ARP. Take it away by hand.
    if (!open && this.started && this.supervisor && !this.supervisor.running() && this.keepalivedRan) await this.removeStrayVip();
  }

  gateOpen(): boolean {
    return this.gate;
  }

  renewLease(): void {
    this.lastRenewAt = performance.now();
    this.guard.renew();
  }

  /** Not writable as the self-check last found it: what and why (null: writable, or not checked yet). */
  unwritableDir(): string | null {
    return this.unwritable === null ? null : `${this.paths.dir} is not writable (${this.unwritable})`;
  }

  /** Told after every repair that did something (the agent records it in the audit store). */
  onRepair(listener: (repair: KeepalivedRepair) => void): void {
    this.repairListeners.push(listener);
  }

  /**
   * Checks and restores everything the driver owns: the lease guard running and its pid file
   * naming it, the gate and lease track files holding what the agent last set, keepalived.conf
   * equal to the rendered config, keepalived running (and re-reading its config when this node
   * should be MASTER and is not). Never throws: a step that fails is reported as an action.
   * Repairs run one at a time. Returns what was done (empty: everything was right).
   */
  async repair(reason: string): Promise<{ actions: string[] }> {
    const run = this.repairChain.then(() => this.repairNow(reason, { selfCheck: false }));
    this.repairChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  state(): KeepalivedState {
    return this.currentState;
  }

  onState(listener: (state: KeepalivedState) => void): void {
    this.listeners.push(listener);
  }

  async vipPresent(): Promise<boolean> {
    // The agent polls this every second: read the addresses in-process when that can tell
    // (fork + exec of `ip` cost the idle agent more than its election); `ip` otherwise.
    if (this.options.netns === undefined) {
      const listed = addressOnInterface(listedInterfaces(), this.config.vip.interface, this.config.vip.address);
      if (listed !== null) return listed;
    }
    return hasAddress(this.config.vip.interface, this.config.vip.address, { netns: this.options.netns });
  }

  pid(): number | null {
    return this.supervisor ? this.supervisor.pid() : this.servicePid;
  }

  restarts(): number {
    return this.supervisor?.restarts() ?? 0;
  }

  /** The lease guard's pid (for status and tests). */
  leaseGuardPid(): number | null {
    return this.guard.pid();
  }

  /**
   * Re-renders the config (from `config` when given: a reloaded agent config); if the text
   * changed, validates it, writes it and tells keepalived (SIGHUP in child mode,
   * `systemctl reload` in service mode). Returns whether anything changed. A config that
   * keepalived rejects throws KEEPALIVED_CONFIG and changes nothing. The lease timeout,
   * keepalived mode, binary and data paths are fixed at construction.
   */
  async reload(config?: MnhaConfig): Promise<boolean> {
    const next = config ?? this.config;
    const text = renderKeepalivedConfig(keepalivedParamsFromConfig(next, this.paths, { leaseCheck: this.options.leaseCheck ?? true }));
    const onDisk = await readFileOrNull(this.paths.configFile);
    if (text === this.renderedConfig && text === onDisk) {
      this.config = next;
      return false;
    }
    await this.installConfig(text, next);
    this.config = next;
    if (this.supervisor) this.supervisor.reload();
    else await this.systemctl(["reload", this.config.keepalived.serviceName]);
    this.logger.info({ config: this.paths.configFile }, "keepalived config changed; reloaded");
    return true;
  }

  private async repairNow(reason: string, options: { selfCheck: boolean }): Promise<{ actions: string[] }> {
    const actions: string[] = [];
    if (!this.started) return { actions };
    const step = async (what: string, fix: () => Promise<string | null> | string | null): Promise<void> => {
      try {
        const action = await fix();
        if (action !== null) actions.push(action);
      } catch (error) {
        actions.push(`could not ${what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    // Everything below writes into these: removed by hand (the data dir cleaned), they come back first.
    await step("make the driver's directories again", async () => {
      const made = await this.makeDirectories();
      return made.length === 0 ? null : `made ${made.join(", ")} again (removed)`;
    });
    // keepalived opens the FIFO at its path when it starts and at each reload: the reader moves
    // to the one at the path, and keepalived is reloaded below (once its config is in place).
    let fifoMoved = false;
    await step("restore the notify FIFO", async () => {
      const followed = await this.readFifoAtPath();
      if (followed === null) return null;
      fifoMoved = followed.moved;
      const what = followed.found === "another FIFO" ? "found another notify FIFO at" : "made the notify FIFO";
      return `${what} ${this.paths.notifyFifo}${followed.found === "another FIFO" ? "" : ` again (it ${followed.found === "missing" ? "was missing" : "was not a FIFO"})`} and read it from now on`;
    });
    await step("restart the lease guard", () => this.guard.respawnNow());
    await step("restore the lease guard's pid file", () => this.guard.repairPidFile());
    await step("restore the gate file", async () => {
      await this.gateWrite;
      const wanted = this.gate ? "0" : "1";
      const onDisk = (await readFileOrNull(this.paths.gateFile))?.trim();
      if (onDisk === wanted) return null;
      await this.setGate(this.gate);
      return `rewrote the gate file ${this.paths.gateFile} to ${wanted} (${this.gate ? "open" : "closed"}; it ${describeFlag(onDisk)})`;
    });
    await step("restore the lease file", async () => {
      const onDisk = (await readFileOrNull(this.paths.leaseFile))?.trim();
      // 0 or 1 is the guard's to keep; anything else is not a value keepalived can use.
      if (onDisk === "0" || onDisk === "1") return null;
      const value = performance.now() - this.lastRenewAt < this.config.timings.leaseMs ? "0" : "1";
      await this.writeFlag(this.paths.leaseFile, value);
      return `rewrote the lease file ${this.paths.leaseFile} to ${value} (it ${describeFlag(onDisk)})`;
    });
    let configRewritten = false;
    await step("restore keepalived.conf", async () => {
      const expected = this.renderedConfig;
      if (expected === null || this.configWrites > 0) return null;
      const onDisk = await readFileOrNull(this.paths.configFile);
      if (onDisk === expected) return null;
      // This exact text passed `keepalived -t` when it was installed: no need to validate again.
      await writeFileAtomic(this.paths.configFile, expected, { mode: 0o600 });
      configRewritten = true;
      return `rewrote ${this.paths.configFile} with the rendered config (it ${onDisk === null ? "was missing" : `differed: ${onDisk.length} bytes instead of ${expected.length}`})`;
    });
    if (this.supervisor) {
      const supervisor = this.supervisor;
      await step("restart keepalived", async () => {
        if (supervisor.failingToStart()) {
          const started = await supervisor.ensureRunning();
          return `keepalived fails to start (${supervisor.lastFailure() ?? "no detail"}); ${started ?? "still retrying with backoff"}`;
        }
        if (supervisor.running()) {
          // Someone may have made keepalived load what they wrote (a reload, a restart): have it
          // read ours again. Same text as it loaded from us, so a reload changes nothing else.
          if (configRewritten && supervisor.reload()) return `told keepalived to re-read the restored config${fifoMoved ? " and open the notify FIFO again" : ""} (SIGHUP)`;
          if (fifoMoved && supervisor.reload()) return "told keepalived to open the notify FIFO again (SIGHUP)";
          // A holder must be MASTER; asked from outside (the watchdog), nudge one that is not.
          const stuck = this.gate && this.currentState !== "master";
          if (stuck && !options.selfCheck && supervisor.reload()) {
            return `told keepalived to re-read its config (SIGHUP): this node should be MASTER and keepalived is ${this.currentState}`;
          }
          return null;
        }
        const started = await supervisor.ensureRunning();
        if (started !== null) return started;
        const failure = supervisor.lastFailure();
        return `keepalived is not running and could not be started${failure ? ` (${failure})` : ""}; still retrying with backoff`;
      });
    } else if (configRewritten || fifoMoved) {
      await step("reload the keepalived service", async () => {
        await this.systemctl(["reload-or-restart", this.config.keepalived.serviceName]);
        return `reloaded the ${this.config.keepalived.serviceName} service`;
      });
    }
    if (actions.length > 0) {
      this.logger.warn({ reason, actions }, "keepalived driver repaired its files and processes");
      this.tellRepair({ reason, actions });
    }
    return { actions };
  }

  private tellRepair(repair: KeepalivedRepair): void {
    for (const listener of this.repairListeners) {
      try {
        listener(repair);
      } catch (error) {
        this.logger.error({ err: error }, "repair listener threw");
      }
    }
  }

  private startSelfCheck(): void {
    const interval = this.options.selfCheckIntervalMs ?? 1_000;
    if (interval <= 0) return;
    this.stopSelfCheck = everyOnBeat(this.options.beat, interval, () => void this.selfCheck(), { unref: true });
  }

  /** Cheap look at what someone else may have changed; repairs only when something is off. */
  private async selfCheck(): Promise<void> {
    if (!this.started || this.selfChecking) return;
    this.selfChecking = true;
    try {
      const problems: string[] = [];
      if ((await this.guard.pidFileRight()) === false) problems.push("the lease guard's pid file does not name the running guard");
      if (this.configWrites === 0 && this.renderedConfig !== null && (await readFileOrNull(this.paths.configFile)) !== this.renderedConfig) {
        problems.push("keepalived.conf differs from the rendered config");
      }
      const lease = (await readFileOrNull(this.paths.leaseFile))?.trim();
      if (lease !== "0" && lease !== "1") problems.push("the lease file holds no valid value");
      if (!this.fifo.readsPath()) problems.push("the notify FIFO is not the one the agent reads");
      await this.gateWrite;
      if ((await readFileOrNull(this.paths.gateFile))?.trim() !== (this.gate ? "0" : "1")) problems.push("the gate file differs from the agent's decision");
      await this.checkWritable();
      // A keepalived that dies at every start: said in the audit at most every 30 s.
      const now = performance.now();
      if (this.supervisor?.failingToStart() && now - this.failureReportedAt > FAILURE_REPORT_EVERY_MS) {
        this.failureReportedAt = now;
        problems.push("keepalived fails to start");
      }
      if (problems.length === 0) return;
      const reason = `self-check: ${problems.join("; ")}`;
      const run = this.repairChain.then(() => this.repairNow(reason, { selfCheck: true }));
      this.repairChain = run.then(
        () => undefined,
        () => undefined,
      );
      await run;
    } catch (error) {
      this.logger.error({ err: error }, "keepalived self-check failed");
    } finally {
      this.selfChecking = false;
    }
  }

  /**
   * The track files live in paths.dir: if it stops being writable (a read-only remount, a
   * full disk shows up at the write) the gate and lease can no longer change. Nothing here
   * can fix that; the operator must know, once when it happens and once when it is over.
   */
  private async checkWritable(): Promise<void> {
    let problem: string | null = null;
    try {
      await access(this.paths.dir, fsConstants.W_OK);
      // A full file system passes access(); the gate's atomic write then fails with ENOSPC.
      // Counted as root sees it (bfree: root may use the blocks reserved from other users).
      const space = await statfs(this.paths.dir);
      // One fixed text: the self-check reports a change of problem, not of the free byte count.
      if (space.bfree * space.bsize < MIN_FREE_BYTES) problem = `ENOSPC: less than ${MIN_FREE_BYTES / 1024} KiB free`;
    } catch (error) {
      problem = (error as NodeJS.ErrnoException).code ?? "not writable";
    }
    if (problem === this.unwritable) return;
    const previous = this.unwritable;
    this.unwritable = problem;
    const actions =
      problem !== null
        ? [`found ${this.paths.dir} not writable (${problem}): the gate and lease track files cannot change until it is; make it writable again (a read-only remount or a full disk?)`]
        : [`found ${this.paths.dir} writable again (it was ${previous ?? "not writable"})`];
    const reason = problem !== null ? "self-check: the driver's directory is not writable" : "self-check: the driver's directory is writable again";
    this.logger[problem !== null ? "error" : "warn"]({ dir: this.paths.dir, problem }, reason);
    this.tellRepair({ reason, actions });
  }

  private async prepareFiles(): Promise<void> {
    await this.makeDirectories();
    this.gate = false;
    await this.writeFlag(this.paths.gateFile, "1");
    await this.writeFlag(this.paths.leaseFile, "1");
    await this.makeFifo();
  }

  /**
   * keepalived stopped: its next start opens the FIFO at the path, so the reader moves there if
   * that is another FIFO (the first one was removed by hand and made again). Without this the
   * agent would read a FIFO nobody writes to, and miss every state change after the restart.
   */
  private async followNotifyFifo(): Promise<void> {
    if (!this.started) return;
    try {
      if ((await this.readFifoAtPath())?.moved) this.logger.warn({ fifo: this.paths.notifyFifo }, "keepalived stopped: now reading the notify FIFO made again at its path");
    } catch (error) {
      this.logger.error({ err: error, fifo: this.paths.notifyFifo }, "could not follow the notify FIFO");
    }
  }

  /** The driver's directories, made where missing; returns those it made. */
  private async makeDirectories(): Promise<string[]> {
    const made: string[] = [];
    for (const dir of [...directoriesOf(this.paths), dirname(this.paths.configFile)]) {
      if ((await lstat(dir).catch(() => null)) !== null) continue;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      made.push(dir);
    }
    return made;
  }

  /**
   * Has the reader read the FIFO now at the path, made again there if it is missing or not a
   * FIFO. Null when it already does; otherwise what was at the path and whether the reader moved.
   */
  private async readFifoAtPath(): Promise<{ found: "missing" | "not a FIFO" | "another FIFO"; moved: boolean } | null> {
    if (this.fifo.readsPath()) return null;
    const existing = await lstat(this.paths.notifyFifo).catch(() => null);
    if (!existing?.isFIFO()) await this.makeFifo();
    const found = existing === null ? "missing" : existing.isFIFO() ? "another FIFO" : "not a FIFO";
    return { found, moved: this.fifo.reopenIfReplaced() };
  }

  private async makeFifo(): Promise<void> {
    const path = this.paths.notifyFifo;
    const existing = await lstat(path).catch(() => null);
    if (existing?.isFIFO()) return;
    if (existing) await unlink(path);
    const argv = ["mkfifo", "-m", "0600", path];
    const result = await runCommand(argv, { timeoutMs: 3_000 });
    if (result.code !== 0) {
      throw new MnhaError("KEEPALIVED_START", `cannot create keepalived's notify FIFO: ${describeFailure(argv, result)}`, {
        hint: `check that ${dirname(path)} is writable by root and on a filesystem that supports FIFOs`,
      });
    }
  }

  private async writeFlag(path: string, value: "0" | "1"): Promise<void> {
    await writeFileAtomic(path, `${value}\n`, { mode: 0o600, sync: false });
  }

  /** Validates `text` with `keepalived -t`, then moves it into place atomically. */
  private async installConfig(text: string, config: MnhaConfig): Promise<void> {
    const target = this.paths.configFile;
    const temp = tempPathFor(target);
    this.configWrites += 1;
    try {
      await writeFileAtomic(temp, text, { mode: 0o600 });
      const argv = [this.binary, "-t", "-f", temp];
      const result = await runCommand(argv, { netns: this.options.netns, timeoutMs: 10_000 });
      if (result.code !== 0) {
        const output = (result.stderr + result.stdout)
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "")
          .map((l) => l.replaceAll(temp, target));
        const reason = result.error ?? (output.slice(0, 8).join("; ") || (result.timedOut ? "timed out" : `exit code ${result.code ?? result.signal ?? "?"}`));
        throw new MnhaError("KEEPALIVED_CONFIG", `keepalived rejected the generated config: ${reason}`, {
          hint: result.error
            ? `install keepalived or set keepalived.binary (tried ${this.binary})`
            : /insecure/i.test(reason)
              ? `${this.paths.leaseCheckScript ?? "the lease check script"} and every directory above it must be owned by root and writable by root only (keepalived's script security)`
              : `check that vip.interface (${config.vip.interface}) exists and holds node.address (${config.node.address}); then run: ${this.binary} -t -f ${target}`,
          fields: { output: output.slice(0, 20) },
        });
      }
      await writeFileAtomic(target, text, { mode: 0o600 });
      this.renderedConfig = text;
    } finally {
      this.configWrites -= 1;
      await unlink(temp).catch(() => undefined);
    }
  }

  private waitForFirstNotification(): Promise<void> {
    const supervisor = this.supervisor as KeepalivedSupervisor;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (error?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.firstNotification = null;
        this.startupExit = null;
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => {
        this.logger.warn({ timeoutMs: this.options.startTimeoutMs ?? 5_000 }, "keepalived sent no notification yet; continuing");
        finish();
      }, this.options.startTimeoutMs ?? 5_000);
      this.firstNotification = () => finish();
      this.startupExit = (code, signal) => {
        const output = supervisor.recentOutput().slice(-8);
        finish(
          new MnhaError("KEEPALIVED_START", `keepalived exited during startup (${code !== null ? `exit code ${code}` : `signal ${signal ?? "?"}`}): ${output.join("; ") || "no output"}`, {
            hint: `run ${this.binary} -n -l -D -f ${this.paths.configFile} by hand to see why`,
            fields: { output },
          }),
        );
      };
    });
  }

  private onNotifyLine(line: string): void {
    const state = parseNotifyLine(line, INSTANCE_NAME);
    this.logger.debug({ line: line.slice(0, 200), state }, "keepalived notification");
    if (state === null) return;
    // Last words of a keepalived we are not running (a leftover being stopped): not ours.
    if (this.supervisor && !this.supervisor.running()) return;
    this.setState(state);
    this.firstNotification?.();
    // A (re)started keepalived resets the gate to closed (init_file overwrite): re-assert ours.
    void this.reconcileGate();
  }

  private async reconcileGate(): Promise<void> {
    if (!this.started) return;
    const onDisk = (await readFileOrNull(this.paths.gateFile))?.trim();
    const wanted = this.gate ? "0" : "1";
    if (onDisk !== wanted) {
      this.logger.info({ onDisk, wanted }, "gate file differs from the agent's decision; rewriting it");
      await this.setGate(this.gate).catch((error: unknown) => this.logger.error({ err: error }, "could not rewrite the gate file"));
    }
  }

  private setState(state: KeepalivedState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const listener of this.listeners) {
      try {
        listener(state);
      } catch (error) {
        this.logger.error({ err: error }, "keepalived state listener threw");
      }
    }
  }

  /**
   * Takes the VIP off the interface by hand, for an address Keepalived does not own (left by
   * a killed Keepalived, or a stray the agent found on a standby). True if it was there and is
   * gone; never throws.
   */
  async removeStrayVip(): Promise<boolean> {
    const { interface: iface, address } = this.config.vip;
    try {
      const removed = await removeAddress(iface, address, { netns: this.options.netns });
      if (removed) this.logger.warn({ vip: address, iface }, "removed a VIP keepalived does not own");
      return removed;
    } catch (error) {
      this.logger.error({ err: error, vip: address, iface }, "could not remove a VIP keepalived does not own");
      return false;
    }
  }

  private async systemctl(args: string[]): Promise<string> {
    const argv = [this.options.systemctlBinary ?? "systemctl", ...args];
    const result = await runCommand(argv, { timeoutMs: 30_000 });
    if (result.code !== 0) {
      throw new MnhaError("KEEPALIVED_START", `cannot control the keepalived service: ${describeFailure(argv, result)}`, {
        hint: `check the unit: systemctl status ${this.config.keepalived.serviceName}; it must run keepalived with -f ${this.paths.configFile}`,
      });
    }
    return result.stdout;
  }

  private async readServicePid(): Promise<number | null> {
    try {
      const out = await this.systemctl(["show", "--property=MainPID", "--value", this.config.keepalived.serviceName]);
      const pid = Number(out.trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }
}

function describeFlag(value: string | undefined): string {
  return value === undefined ? "was missing" : `held ${JSON.stringify(value.slice(0, 40))}`;
}

/** os.networkInterfaces(), or null when getifaddrs(3) failed (the caller asks `ip` instead). */
function listedInterfaces(): ReturnType<typeof networkInterfaces> | null {
  try {
    return networkInterfaces();
  } catch {
    return null;
  }
}
