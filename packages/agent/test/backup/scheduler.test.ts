/** The backup scheduler: only the VIP holder backs up, never two at once, every outcome an event. */
import { describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { MANIFEST_FORMAT } from "../../src/backup/manifest.js";
import { BackupScheduler, cronSchedule, type BackupEvent, type BackupJob, type Schedule } from "../../src/backup/scheduler.js";

function manualSchedule() {
  const ticks: (() => Promise<void>)[] = [];
  let stopped = 0;
  const schedule: Schedule = (_expression, tick) => {
    ticks.push(tick);
    return { stop: () => void (stopped += 1) };
  };
  return { schedule, fire: () => Promise.all(ticks.map((t) => t())), stopped: () => stopped, count: () => ticks.length };
}

function job(overrides: Partial<BackupJob> = {}): BackupJob & { taken: number } {
  const state: BackupJob & { taken: number } = {
    taken: 0,
    async take() {
      state.taken += 1;
      return { path: `/b/mnha-mn1-${state.taken}.sql.gz`, manifest: { format: MANIFEST_FORMAT, file: "f", node: "mn1", takenAt: "", finishedAt: "", gtid: "0-1-9", bytes: 123, sqlBytes: 456, sha256: "0".repeat(64), schemas: ["app"], excluded: [], tables: [] } };
    },
    retain: () => ["old.sql.gz"],
    copyRemote: null,
    newestGoodAgeSeconds: () => 42,
    ...overrides,
  };
  return state;
}

describe("BackupScheduler", () => {
  it("backs up on the holder only", async () => {
    let holder = false;
    const events: BackupEvent[] = [];
    const clock = manualSchedule();
    const j = job();
    const scheduler = new BackupScheduler({ expression: "*/5 * * * *", isHolder: () => holder, record: (e) => events.push(e), job: j, schedule: clock.schedule });
    await scheduler.start();
    await clock.fire();
    expect(j.taken).toBe(0);
    expect(events).toEqual([]);
    holder = true;
    await clock.fire();
    expect(j.taken).toBe(1);
    expect(events).toEqual([expect.objectContaining({ kind: "backup-taken", path: "/b/mnha-mn1-1.sql.gz", bytes: 123, gtid: "0-1-9", deleted: ["old.sql.gz"], remote: null })]);
    expect(scheduler.newestGoodAgeSeconds()).toBe(42);
    await scheduler.stop();
    expect(clock.stopped()).toBe(1);
  });

  it("never runs two backups at once", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const base = job();
    const j = job({
      take: async () => {
        await gate;
        return base.take();
      },
    });
    const scheduler = new BackupScheduler({ expression: "* * * * *", isHolder: () => true, record: () => undefined, job: j });
    const first = scheduler.tick();
    expect(await scheduler.tick()).toBeNull();
    release();
    expect((await first)?.kind).toBe("backup-taken");
    expect(base.taken).toBe(1);
  });

  it("reports a failed dump with its code, and a failed remote copy without losing the local backup", async () => {
    const events: BackupEvent[] = [];
    const failing = new BackupScheduler({
      expression: "* * * * *",
      isHolder: () => true,
      record: (e) => events.push(e),
      job: job({ take: () => Promise.reject(new MnhaError("BACKUP_FAILED", "mariadb-dump failed (exit 2)", { hint: "h" })) }),
    });
    expect(await failing.tick()).toEqual({ kind: "backup-failed", stage: "dump", code: "BACKUP_FAILED", message: "mariadb-dump failed (exit 2)" });

    const remoteFails = new BackupScheduler({
      expression: "* * * * *",
      isHolder: () => true,
      record: (e) => events.push(e),
      job: job({ copyRemote: () => Promise.reject(new MnhaError("BACKUP_REMOTE", "Host key verification failed", { hint: "h" })) }),
    });
    const result = await remoteFails.tick();
    expect(result).toMatchObject({ kind: "backup-taken", remote: { copied: false } });
    expect(events.map((e) => (e.kind === "backup-failed" ? `${e.kind}:${e.stage}:${e.code}` : e.kind))).toEqual(["backup-failed:dump:BACKUP_FAILED", "backup-failed:remote:BACKUP_REMOTE", "backup-taken"]);
  });

  it("refuses an invalid cron expression", () => {
    expect(() => new BackupScheduler({ expression: "every night", isHolder: () => true, record: () => undefined, job: job() })).toThrow(/not a cron expression/);
  });

  it("schedules with the real cron scheduler and stops cleanly", async () => {
    const scheduled: string[] = [];
    let stopped = 0;
    // The real cron schedule (croner), watched: it is given the expression and stopped once.
    const schedule: Schedule = (expression, tick) => {
      scheduled.push(expression);
      const handle = cronSchedule(expression, tick);
      return {
        stop: async () => {
          stopped += 1;
          await handle.stop();
        },
      };
    };
    const scheduler = new BackupScheduler({ expression: "0 3 * * *", isHolder: () => false, record: () => undefined, job: job(), schedule });
    await scheduler.start();
    expect(scheduled).toEqual(["0 3 * * *"]);
    await scheduler.stop();
    expect(stopped).toBe(1);
  });
});
