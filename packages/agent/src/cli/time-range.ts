/**
 * `--since` / `--until` values: a duration back from now ("90s", "15m", "2h", "3d", "1w") or
 * a moment ("2026-11-25T03:12:00Z", "2026-11-25 03:12" in local time, "03:12" today).
 */
import { MnhaError } from "@mnha/shared";
import { InvalidArgumentError } from "commander";

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseMoment(flag: string, value: string, nowMs: number = Date.now()): number {
  const text = value.trim();
  const duration = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/i.exec(text);
  if (duration) return Math.round(nowMs - Number(duration[1]) * (UNIT_MS[(duration[2] as string).toLowerCase()] as number));
  const timeToday = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (timeToday) {
    const d = new Date(nowMs);
    d.setHours(Number(timeToday[1]), Number(timeToday[2]), Number(timeToday[3] ?? 0), 0);
    if (!Number.isNaN(d.getTime()) && Number(timeToday[1]) < 24 && Number(timeToday[2]) < 60) return d.getTime();
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const parsed = Date.parse(text.replace(" ", "T"));
    if (!Number.isNaN(parsed)) return parsed;
  }
  throw new InvalidArgumentError(`${flag} takes a duration such as 90s, 15m, 2h, 3d, or a time such as "2026-11-25 03:12" or 03:12; got ${JSON.stringify(value)}.`);
}

/**
 * The window of `--since` / `--until`, refused when it ends before it starts: the two swapped
 * (`--since 1h --until 2h`) would otherwise show an empty list as if nothing had happened.
 * `defaultSpanMs` sets a missing `--since` that far before the window's end.
 */
export function timeWindow(sinceMs: number | undefined, untilMs: number | undefined, options: { defaultSpanMs?: number; nowMs?: number } = {}): { sinceMs?: number; untilMs?: number } {
  const since = sinceMs ?? (options.defaultSpanMs === undefined ? undefined : (untilMs ?? options.nowMs ?? Date.now()) - options.defaultSpanMs);
  if (since !== undefined && untilMs !== undefined && since > untilMs) {
    throw new MnhaError("USAGE", `--since (${new Date(since).toISOString()}) is after --until (${new Date(untilMs).toISOString()}): that window is empty`, {
      hint: "--since is the earlier moment: --since 2h --until 1h is from two hours ago to one hour ago",
    });
  }
  return { ...(since === undefined ? {} : { sinceMs: since }), ...(untilMs === undefined ? {} : { untilMs }) };
}
