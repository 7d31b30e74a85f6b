/**
 * The store's maintenance schedules without ICU. node-cron works out every run time with
 * `Intl.DateTimeFormat`, and the first formatter pages in ICU's data and builds its calendars:
 * about 8 MB of resident memory that an idle agent keeps for the rest of its life (issue 12).
 * The store's schedules (and their defaults, "*\/15 * * * *", "30 3 * * *") restrict only the
 * minute and the hour, and such an expression needs nothing but local-time `Date` arithmetic.
 * `parseDailyCron` takes exactly that form; anything else (seconds, day, month or weekday
 * fields, names, nicknames) returns null and the caller keeps node-cron for it.
 */

/** The minutes and hours (local time, ascending) at which a daily expression fires. */
export interface DailyCron {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
}

/** "m h * * *" with numbers, ranges, steps and lists in m and h; null for any other form. */
export function parseDailyCron(expression: string): DailyCron | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 || fields[2] !== "*" || fields[3] !== "*" || fields[4] !== "*") return null;
  const minutes = parseField(fields[0] ?? "", 59);
  const hours = parseField(fields[1] ?? "", 23);
  return minutes && hours ? { minutes, hours } : null;
}

/** One field of numbers 0..max: items "*", "*\/n", "a", "a-b", "a-b/n", comma-separated. */
function parseField(field: string, max: number): number[] | null {
  const values = new Set<number>();
  for (const item of field.split(",")) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
    if (!match) return null;
    const from = match[1] === "*" ? 0 : Number(match[2]);
    const to = match[1] === "*" ? max : match[3] !== undefined ? Number(match[3]) : from;
    const step = match[4] !== undefined ? Number(match[4]) : 1;
    // "a/n" without a range is read differently by cron implementations: leave it to node-cron.
    if (match[4] !== undefined && match[1] !== "*" && match[3] === undefined) return null;
    if (from > to || to > max || step < 1) return null;
    for (let value = from; value <= to; value += step) values.add(value);
  }
  return [...values].sort((a, b) => a - b);
}

/**
 * The first time strictly after `after` (ms since the epoch) at a listed hour and minute of
 * local time, second 0. A local time that does not exist (a daylight-saving jump forward) is
 * skipped; one that occurs twice fires at its first occurrence.
 */
export function nextDailyRun(cron: DailyCron, after: number): number {
  const start = new Date(after);
  for (let dayOffset = 0; dayOffset <= 2; dayOffset++) {
    const year = start.getFullYear();
    const month = start.getMonth();
    const day = start.getDate() + dayOffset;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const candidate = new Date(year, month, day, hour, minute, 0, 0);
        if (candidate.getHours() !== hour || candidate.getMinutes() !== minute) continue;
        if (candidate.getTime() > after) return candidate.getTime();
      }
    }
  }
  // Unreachable for a parsed expression (every day has its listed times but at most one DST
  // gap); a safe answer all the same.
  return after + 24 * 3_600_000;
}

/** A late wake-up within this of the planned time still runs the job; later ones count as missed. */
const LATE_RUN_TOLERANCE_MS = 60_000;
/** Timers never sleep longer than this, so a stepped wall clock is noticed within a minute. */
const MAX_SLEEP_MS = 60_000;

export interface DailyCronTask {
  stop(): void;
}

/**
 * Calls `run` at each time of `cron`. Wakes at least once a minute and works from the wall
 * clock each time, so a clock set forward or back is followed (runs skipped by a jump forward
 * are missed, as node-cron misses them); `run` must not throw (the store's runScheduled logs).
 */
export function scheduleDailyCron(cron: DailyCron, run: () => void, now: () => number = Date.now): DailyCronTask {
  let next = nextDailyRun(cron, now());
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    timer = setTimeout(wake, Math.max(0, Math.min(MAX_SLEEP_MS, next - now())));
    timer.unref();
  };
  const wake = () => {
    const at = now();
    if (at >= next) {
      if (at - next <= LATE_RUN_TOLERANCE_MS) run();
      next = nextDailyRun(cron, at);
    } else if (next - at > 24 * 3_600_000 + MAX_SLEEP_MS) {
      // The clock was set back: plan from the new time.
      next = nextDailyRun(cron, at);
    }
    arm();
  };
  arm();
  return {
    stop: () => {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
