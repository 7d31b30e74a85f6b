/**
 * Scheduled backups: on each tick of `backup.schedule` (a cron expression), the node that holds the
 * VIP takes a backup, applies the local retention and copies it to the remote host if one is
 * configured. The standby does nothing (its database is a replica of the holder's). Every
 * backup and every failure is reported through `record`; `newestGoodAgeSeconds()` is what
 * the Prometheus gauge reads.
 */
import { MnhaError, cronExpressionProblem, scheduleCron } from "@mnha/shared";
import type { Startable } from "../contracts.js";
import type { BackupResult } from "./backup-files.js";

export type BackupEvent =
  | { kind: "backup-taken"; path: string; bytes: number; gtid: string; tookMs: number; deleted: string[]; remote: { copied: boolean; deleted: string[] } | null }
  | { kind: "backup-failed"; stage: "dump" | "retention" | "remote"; code: string; message: string };

export interface BackupJob {
  /** Dumps into the backup directory. */
  take(): Promise<BackupResult>;
  /** Local retention; returns the names it deleted. */
  retain(): string[];
  /** Null when no remote is configured. */
  copyRemote: ((path: string) => Promise<{ deleted: string[] }>) | null;
  /** Seconds since the newest good backup, from the directory (null: none). */
  newestGoodAgeSeconds(): number | null;
}

export interface ScheduleHandle {
  stop(): void | Promise<void>;
}

/** How a tick is scheduled; tests pass one they fire by hand. */
export type Schedule = (expression: string, tick: () => Promise<void>) => ScheduleHandle;

export const cronSchedule: Schedule = (expression, tick) => scheduleCron(expression, tick);

export interface BackupSchedulerOptions {
  expression: string;
  isHolder: () => boolean;
  record: (event: BackupEvent) => void;
  job: BackupJob;
  schedule?: Schedule;
  now?: () => number;
}

export class BackupScheduler implements Startable {
  private handle: ScheduleHandle | null = null;
  private running: Promise<BackupEvent | null> | null = null;
  private readonly schedule: Schedule;
  private readonly now: () => number;

  constructor(private readonly options: BackupSchedulerOptions) {
    const problem = cronExpressionProblem(options.expression);
    if (problem !== null) throw new MnhaError("CONFIG_INVALID", `backup.schedule ${JSON.stringify(options.expression)} is not a cron expression: ${problem}`, { hint: 'use five fields, e.g. "15 2 * * *" (minute hour day month weekday), or six with seconds first' });
    this.schedule = options.schedule ?? cronSchedule;
    this.now = options.now ?? (() => performance.now());
  }

  async start(): Promise<void> {
    if (this.handle !== null) return;
    this.handle = this.schedule(this.options.expression, async () => {
      await this.tick();
    });
  }

  async stop(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.stop();
    await this.running; // a backup in progress finishes (its files are renamed or removed)
  }

  /** One scheduled run: nothing on the standby, nothing while a backup still runs. */
  async tick(): Promise<BackupEvent | null> {
    if (!this.options.isHolder() || this.running !== null) return null;
    this.running = this.runOnce();
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  newestGoodAgeSeconds(): number | null {
    try {
      return this.options.job.newestGoodAgeSeconds();
    } catch {
      return null;
    }
  }

  private async runOnce(): Promise<BackupEvent> {
    const { job, record } = this.options;
    const started = this.now();
    let result: BackupResult;
    try {
      result = await job.take();
    } catch (error) {
      return emit(record, failure("dump", error));
    }
    let deleted: string[] = [];
    try {
      deleted = job.retain();
    } catch (error) {
      record(failure("retention", error));
    }
    let remote: { copied: boolean; deleted: string[] } | null = null;
    if (job.copyRemote !== null) {
      try {
        remote = { copied: true, deleted: (await job.copyRemote(result.path)).deleted };
      } catch (error) {
        remote = { copied: false, deleted: [] };
        record(failure("remote", error));
      }
    }
    return emit(record, { kind: "backup-taken", path: result.path, bytes: result.manifest.bytes, gtid: result.manifest.gtid, tookMs: Math.round(this.now() - started), deleted, remote });
  }
}

function failure(stage: "dump" | "retention" | "remote", error: unknown): BackupEvent {
  return { kind: "backup-failed", stage, code: error instanceof MnhaError ? error.code : "INTERNAL", message: error instanceof Error ? error.message : String(error) };
}

function emit(record: (event: BackupEvent) => void, event: BackupEvent): BackupEvent {
  record(event);
  return event;
}
