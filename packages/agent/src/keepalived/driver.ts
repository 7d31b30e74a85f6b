import { lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { KeepalivedState } from "@mnha/protocol";
import { MnhaError, type Logger, type MnhaConfig } from "@mnha/shared";
import type { KeepalivedDriverApi } from "../contracts.js";
import { hasAddress, removeAddress } from "../net/address.js";
import { describeFailure, runCommand } from "../net/command.js";
import { tempPathFor, writeFileAtomic } from "@mnha/shared";
import { readFileOrNull } from "./atomic-file.js";
import { LeaseGuard } from "./lease-guard.js";
import { NotifyFifoReader, parseNotifyLine } from "./notify-fifo.js";
import { defaultKeepalivedPaths, directoriesOf, type KeepalivedPaths } from "./paths.js";
import { INSTANCE_NAME, keepalivedParamsFromConfig, renderKeepalivedConfig } from "./render.js";
import { KeepalivedSupervisor } from "./supervisor.js";

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
}

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
  private startupExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | null = null;

  constructor(options: KeepalivedDriverOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger.child({ component: "keepalived" });
    this.paths = defaultKeepalivedPaths(options.config, options.paths);
    this.binary = options.keepalivedBinary ?? options.config.keepalived.binary;
    this.mode = options.config.keepalived.mode;
    this.fifo = new NotifyFifoReader({ path: this.paths.notifyFifo, logger: this.logger, onLine: (line) => this.onNotifyLine(line) });
    this.guard = new LeaseGuard({ script: this.paths.leaseGuardScript, leaseFile: this.paths.leaseFile, leaseMs: options.config.timings.leaseMs, logger: this.logger });
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
      this.logger.info({ mode: this.mode, pid: this.pid(), state: this.currentState, config: this.paths.configFile }, "keepalived driver started");
    } catch (error) {
      await this.stop().catch(() => undefined);
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
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
  }

  gateOpen(): boolean {
    return this.gate;
  }

  renewLease(): void {
    this.guard.renew();
  }

  state(): KeepalivedState {
    return this.currentState;
  }

  onState(listener: (state: KeepalivedState) => void): void {
    this.listeners.push(listener);
  }

  async vipPresent(): Promise<boolean> {
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

  private async prepareFiles(): Promise<void> {
    for (const dir of directoriesOf(this.paths)) await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(this.paths.configFile), { recursive: true, mode: 0o700 });
    this.gate = false;
    await this.writeFlag(this.paths.gateFile, "1");
    await this.writeFlag(this.paths.leaseFile, "1");
    await this.makeFifo();
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
    await writeFileAtomic(temp, text, { mode: 0o600 });
    try {
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

  private async removeStrayVip(): Promise<void> {
    const { interface: iface, address, prefix } = this.config.vip;
    try {
      if (await removeAddress(iface, address, prefix, { netns: this.options.netns })) {
        this.logger.warn({ vip: address, iface }, "removed the VIP keepalived left behind");
      }
    } catch (error) {
      this.logger.error({ err: error, vip: address, iface }, "could not remove the VIP keepalived left behind");
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
