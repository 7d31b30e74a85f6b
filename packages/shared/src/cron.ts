/**
 * Cron schedules (the store's jobs, data sync, backups), on croner. Chosen over node-cron
 * because node-cron works out every run time with `Intl.DateTimeFormat`, and the first
 * formatter pages ICU's data into the process: about 8 MB of an idle agent's resident memory
 * (issue 12). croner uses plain local `Date` arithmetic unless given a time zone, which we
 * never give it (schedules run in the node's local time, as crontab's do).
 */
import { Cron } from "croner";

/** A running schedule. */
export interface CronTask {
  stop(): void;
}

/**
 * Croner's reading of an expression, with the day-of-month and day-of-week fields ORed
 * as crontab does ("0 0 1 * 1" is the 1st and every Monday).
 */
const CRON_OPTIONS = { domAndDow: false } as const;

/** Why `expression` is not a cron expression, or null when it is one. */
export function cronExpressionProblem(expression: string): string | null {
  try {
    new Cron(expression, { ...CRON_OPTIONS, paused: true }).stop();
    return null;
  } catch (error) {
    return error instanceof Error ? error.message.replace(/^CronPattern: /, "") : String(error);
  }
}

/**
 * Runs `run` on each tick of `expression` (already validated by the config schema). A tick
 * that comes while the previous run is still going is skipped (`run` returns its promise for
 * that), and `run` failing never stops the schedule. The timer does not keep the process
 * alive.
 */
export function scheduleCron(expression: string, run: () => void | Promise<void>): CronTask {
  // No croner `name`: named jobs share one process-wide registry and must be unique.
  const job = new Cron(expression, { ...CRON_OPTIONS, protect: true, catch: true, unref: true }, run);
  return { stop: () => job.stop() };
}

/** The next run after `from` (null: the expression never runs again), read as scheduleCron reads it: how the tests check local time and DST. */
export function nextCronRun(expression: string, from: Date): Date | null {
  const job = new Cron(expression, { ...CRON_OPTIONS, paused: true });
  try {
    return job.nextRun(from);
  } finally {
    job.stop();
  }
}
