/**
 * Monitoring data sync: the directories named in `dataSync.dirs` (e.g. Prometheus data) are
 * copied from the VIP holder to the standby with the real rsync over SSH, on a cron schedule
 * and right after this node becomes the holder. Never on the HA path: a child process with a
 * timeout, one sync at a time, and a failure is only an event.
 */
import { MnhaError, scheduleCron, type CronTask, type Logger, type MnhaConfig } from "@mnha/shared";
import type { Role } from "@mnha/protocol";
import { describeCommandResult, runCommand, type CommandOptions, type CommandResult } from "../checks/command.js";
import type { DataSyncStatus, Startable } from "../contracts.js";

/** How rsync reaches the destination. */
export interface SyncTransport {
  /** rsync options that pick the transport (e.g. ["-e", "ssh -i KEY ..."]); none for a local path. */
  args: string[];
  /** The destination of one directory (with its trailing slash). */
  destination(dir: string): string;
}

export type CommandRunner = (argv: readonly string[], options: CommandOptions) => Promise<CommandResult>;

export interface DataSyncOptions {
  dirs: readonly string[];
  transport: SyncTransport;
  rsync: string;
  timeoutMs: number;
  /** Cron expression, or null for no schedule (syncs only after a switchover or on demand). */
  schedule: string | null;
  logger: Logger;
  record(type: string, message: string, fields: Record<string, unknown>, level?: "info" | "warn" | "error"): void;
  wallNow(): number;
  run?: CommandRunner;
}

export type SyncTrigger = "schedule" | "switchover" | "manual";

export interface SyncOutcome {
  ok: boolean;
  skipped: boolean;
  detail: string;
}

/** Transport over the SSH trust that install-ha sets up; the host key must already be known. */
export function sshTransport(config: MnhaConfig["dataSync"], peerAddress: string): SyncTransport {
  for (const [field, path] of [["sshKey", config.sshKey], ["knownHostsFile", config.knownHostsFile]] as const) {
    // rsync splits -e on whitespace: a path with a space would become two arguments.
    if (path !== undefined && /\s/.test(path)) throw new MnhaError("CONFIG_INVALID", `dataSync.${field} ${JSON.stringify(path)} contains whitespace`, { hint: "use a path without spaces" });
  }
  const ssh = ["ssh", "-i", config.sshKey, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", ...(config.knownHostsFile ? ["-o", `UserKnownHostsFile=${config.knownHostsFile}`] : []), ...(config.sshPort !== 22 ? ["-o", `Port=${config.sshPort}`] : [])];
  return { args: ["-e", ssh.join(" ")], destination: (dir) => `${config.sshUser}@${peerAddress}:${withSlash(dir)}` };
}

/** rsync's argv for one directory (never a shell). */
export function rsyncArgv(rsync: string, transport: SyncTransport, dir: string): string[] {
  return [rsync, "-a", "--delete", ...transport.args, withSlash(dir), transport.destination(dir)];
}

function withSlash(dir: string): string {
  return dir.endsWith("/") ? dir : `${dir}/`;
}

export class DataSync implements Startable {
  private readonly options: DataSyncOptions;
  private readonly run: CommandRunner;
  private task: CronTask | null = null;
  private role: Role | null = null;
  private current: Promise<SyncOutcome> | null = null;
  private lastSuccessAtMs: number | null = null;
  private lastError: string | null = null;
  private lifetime = new AbortController();
  private running = false;

  constructor(options: DataSyncOptions) {
    this.options = options;
    this.run = options.run ?? runCommand;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    if (this.options.schedule !== null && this.options.dirs.length > 0) {
      this.task = scheduleCron(this.options.schedule, async () => {
        await this.syncNow("schedule");
      });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.task?.stop();
    this.task = null;
    this.lifetime.abort();
    await this.current?.catch(() => undefined);
  }

  /** Called with the role after each election step; becoming the holder starts a sync. */
  observeRole(role: Role): void {
    const was = this.role;
    this.role = role;
    if (role === "holder" && was !== null && was !== "holder") void this.syncNow("switchover");
  }

  /** Syncs every directory now, if this node holds the VIP. A sync under way is joined, not doubled. */
  syncNow(trigger: SyncTrigger): Promise<SyncOutcome> {
    if (this.current) return this.current;
    if (!this.running) return Promise.resolve({ ok: false, skipped: true, detail: "data sync is stopped" });
    if (this.role !== "holder") return Promise.resolve({ ok: true, skipped: true, detail: "not the holder: the holder pushes" });
    if (this.options.dirs.length === 0) return Promise.resolve({ ok: true, skipped: true, detail: "no directories configured" });
    const run = this.syncAll(trigger).finally(() => {
      this.current = null;
    });
    this.current = run;
    return run;
  }

  status(): DataSyncStatus {
    return { dirs: [...this.options.dirs], lastSuccessAtMs: this.lastSuccessAtMs, lastError: this.lastError, running: this.current !== null, direction: this.role === "holder" ? "push" : "idle" };
  }

  /** Seconds since the last successful sync (null: none yet), for Prometheus. */
  ageSeconds(): number | null {
    return this.lastSuccessAtMs === null ? null : Math.max(0, (this.options.wallNow() - this.lastSuccessAtMs) / 1000);
  }

  private async syncAll(trigger: SyncTrigger): Promise<SyncOutcome> {
    const started = this.options.wallNow();
    for (const dir of this.options.dirs) {
      const argv = rsyncArgv(this.options.rsync, this.options.transport, dir);
      const result = await this.run(argv, { timeoutMs: this.options.timeoutMs, signal: this.lifetime.signal, killGraceMs: 2_000, outputLimit: 2_048 });
      if (result.exitCode !== 0) {
        const detail = `${dir}: ${describeCommandResult(argv, result, this.options.timeoutMs)}`;
        const firstFailure = this.lastError === null;
        this.lastError = detail;
        this.options.logger.warn({ trigger, dir, detail }, "data sync failed");
        this.options.record("datasync.failed", `monitoring data sync (${trigger}) failed: ${detail}`, { trigger, dir, detail, firstFailure }, "warn");
        return { ok: false, skipped: false, detail };
      }
    }
    const tookMs = Math.round(this.options.wallNow() - started);
    const recovered = this.lastError !== null;
    this.lastError = null;
    this.lastSuccessAtMs = this.options.wallNow();
    this.options.logger.info({ trigger, dirs: this.options.dirs.length, tookMs }, "data sync done");
    // Routine scheduled syncs stay out of the audit trail; a switchover's or a recovery's do not.
    if (trigger !== "schedule" || recovered) this.options.record("datasync.done", `monitoring data synced to the standby (${trigger}${recovered ? ", after failures" : ""}) in ${tookMs} ms`, { trigger, tookMs, recovered });
    return { ok: true, skipped: false, detail: `synced ${this.options.dirs.length} directories in ${tookMs} ms` };
  }
}
