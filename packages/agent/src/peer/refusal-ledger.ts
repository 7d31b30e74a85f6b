/**
 * Refusals on the peer link — strangers at the TCP gate, failed handshakes, bad frames —
 * are counted (for the metric) and reported as summaries: the first refusal after a quiet
 * spell at once, then at most one summary per `intervalMs` for everything refused meanwhile.
 * Whatever a stranger does, it makes at most 3 600 000 / intervalMs + 1 summaries an hour,
 * each of bounded size (a few sources listed, one reason of at most 200 characters).
 */
export interface RefusalSummary {
  /** Refusals covered by this summary. */
  count: number;
  /** Count per refusal code. */
  byCode: Record<string, number>;
  /** Up to MAX_LISTED_SOURCES distinct source addresses (without ports), in order of first refusal. */
  sources: string[];
  /** Refusals from sources not listed. */
  otherSources: number;
  /** The first refusal of the period, as it happened (reason cleaned and shortened). */
  first: { remote: string; code: string; reason: string };
  /** One line for operators. */
  message: string;
}

export const MAX_LISTED_SOURCES = 4;
const MAX_REASON_CHARS = 200;

export interface RefusalLedgerOptions {
  /** At most one summary per this many ms (0: every refusal is reported on its own, for tests). */
  intervalMs: number;
  emit: (summary: RefusalSummary) => void;
  now?: () => number;
}

export class RefusalLedger {
  private readonly totals: Record<string, number> = {};
  private pending: { count: number; byCode: Record<string, number>; sources: string[]; otherSources: number; first: RefusalSummary["first"] } | null = null;
  private lastFlushAt: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: RefusalLedgerOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  record(remote: string, code: string, reason: string): void {
    this.totals[code] = (this.totals[code] ?? 0) + 1;
    const source = hostOf(remote);
    if (!this.pending) this.pending = { count: 0, byCode: {}, sources: [], otherSources: 0, first: { remote: clean(remote, 64), code, reason: clean(reason, MAX_REASON_CHARS) } };
    const pending = this.pending;
    pending.count++;
    pending.byCode[code] = (pending.byCode[code] ?? 0) + 1;
    if (!pending.sources.includes(source)) {
      if (pending.sources.length < MAX_LISTED_SOURCES) pending.sources.push(source);
      else pending.otherSources++;
    }
    if (this.timer) return;
    const wait = this.lastFlushAt === null ? 0 : Math.max(0, this.lastFlushAt + this.options.intervalMs - this.now());
    if (wait === 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  /** Refusals since start, per code (never reset: a counter). */
  counts(): Record<string, number> {
    return { ...this.totals };
  }

  /** Reports what is pending now (on stop). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    this.lastFlushAt = this.now();
    const codes = Object.entries(pending.byCode)
      .map(([code, n]) => `${code} ×${n}`)
      .join(", ");
    const from = `${pending.sources.join(", ")}${pending.otherSources > 0 ? ` and ${pending.otherSources} more` : ""}`;
    const message =
      pending.count === 1
        ? `refused a peer connection from ${pending.first.remote}: ${pending.first.code}: ${pending.first.reason}`
        : `refused ${pending.count} peer connections or frames (${codes}) from ${from}; first: ${pending.first.code}: ${pending.first.reason}`;
    this.options.emit({ ...pending, message });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** "10.0.0.5:41234" → "10.0.0.5"; "[::1]:80" → "::1". */
function hostOf(remote: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(remote);
  if (bracketed?.[1]) return clean(bracketed[1], 64);
  const plain = /^([^:]+):\d+$/.exec(remote);
  return clean(plain?.[1] ?? remote, 64);
}

/** Control characters out (they may come from a stranger), and a bounded length. */
function clean(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const printable = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "?");
  return printable.length > max ? `${printable.slice(0, max - 3)}...` : printable;
}
