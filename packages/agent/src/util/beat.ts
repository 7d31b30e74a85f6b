/**
 * One timer for the agent's periodic work. An idle agent's cost is mostly wake-ups, not work:
 * on these VMs each wake-up of a sleeping process costs about 0.1 ms of CPU, more than most of
 * the callbacks it runs (docs/benchmarks.md, ninth round). The election's tick, the service
 * checks, the VIP and database polls, the Keepalived self-check and the peer link's ping each
 * had their own timer at unrelated phases: about 40 timer wake-ups a second where the tick
 * alone needs 10. On the beat they wake the process together.
 *
 * The beat runs on a grid of `periodMs` of the monotonic clock (performance.now(), the time
 * base timers run on; not an injected Clock, which a test may freeze). It runs only while it
 * has something to run; a beat that a stalled loop missed is skipped, not made up.
 */

/** Cancels what `every` or `after` scheduled; idempotent. */
export type CancelBeat = () => void;

export interface BeatApi {
  readonly periodMs: number;
  /** True when `periodMs` is a whole number of beats, so that work of that period can ride the beat. */
  fits(periodMs: number): boolean;
  /** `fn` on every beat (periodMs equal to the beat's) or every n-th beat (a multiple of it). */
  every(periodMs: number, fn: () => void): CancelBeat;
  /**
   * `fn` once, on the beat nearest to `delayMs` from now (at most half a beat early or late),
   * and never on a beat that has already begun: on the next one at the soonest.
   */
  after(delayMs: number, fn: () => void): CancelBeat;
}

interface Repeating {
  everyBeats: number;
  fn: () => void;
}

interface Once {
  dueAt: number;
  fn: () => void;
  /** Cancelled, possibly by a callback that ran before it on the same beat. */
  cancelled: boolean;
}

export interface BeatOptions {
  /** The clock the grid runs on (tests pass a fake one). */
  now?: () => number;
  /**
   * Called on every beat with how late it fired, in milliseconds after its grid time: the
   * event loop's delay as the agent's own periodic work sees it (the metrics' nodejs_eventloop_lag_*,
   * which so needs no sampling timer of its own).
   */
  onLateness?: (lateMs: number) => void;
}

export class Beat implements BeatApi {
  readonly periodMs: number;
  private readonly now: () => number;
  private readonly onLateness: ((lateMs: number) => void) | undefined;
  private readonly repeating = new Set<Repeating>();
  private readonly once = new Set<Once>();
  private timer: NodeJS.Timeout | null = null;
  /** The grid index (time ÷ period) of the beat the timer is set for, and of the last one run. */
  private nextIndex = 0;
  private lastIndex = -1;
  /** Beats run so far. */
  private beatCount = 0;

  constructor(periodMs: number, options: BeatOptions = {}) {
    if (!Number.isInteger(periodMs) || periodMs < 1) throw new RangeError(`beat period must be a whole number of milliseconds ≥ 1, not ${periodMs}`);
    this.periodMs = periodMs;
    this.now = options.now ?? (() => performance.now());
    this.onLateness = options.onLateness;
  }

  /** Beats run so far (a callback sees the count including its own beat). */
  get beats(): number {
    return this.beatCount;
  }

  fits(periodMs: number): boolean {
    return Number.isInteger(periodMs) && periodMs >= this.periodMs && periodMs % this.periodMs === 0;
  }

  every(periodMs: number, fn: () => void): CancelBeat {
    if (!this.fits(periodMs)) throw new RangeError(`a period of ${periodMs} ms is not a whole number of ${this.periodMs} ms beats`);
    const entry: Repeating = { everyBeats: periodMs / this.periodMs, fn };
    this.add(() => this.repeating.add(entry));
    return () => this.cancel(() => this.repeating.delete(entry));
  }

  after(delayMs: number, fn: () => void): CancelBeat {
    const entry: Once = { dueAt: this.now() + Math.max(0, delayMs), fn, cancelled: false };
    this.add(() => this.once.add(entry));
    return () =>
      this.cancel(() => {
        entry.cancelled = true;
        this.once.delete(entry);
      });
  }

  /** Stops the timer and drops everything scheduled (the agent's stop). */
  stop(): void {
    this.repeating.clear();
    this.once.clear();
    this.disarm();
  }

  /** Adds an entry; the timer is set again if the entry is due before the beat it is set for. */
  private add(insert: () => void): void {
    insert();
    if (this.timer !== null && this.plan(this.now()) < this.nextIndex) this.disarm();
    this.arm();
  }

  private cancel(remove: () => void): void {
    remove();
    // A cancelled entry may leave the timer set for a beat with nothing to run: one spare wake-up.
    if (this.repeating.size === 0 && this.once.size === 0) this.disarm();
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * The index of the next beat with something to run: after the last beat run and not in the
   * past (beats a stalled loop missed are skipped); a repeating entry's n-th beats are grid
   * indices divisible by n, so work of the same period shares its beats; a one-off's is the
   * beat nearest its due time.
   */
  private plan(now: number): number {
    const first = Math.max(this.lastIndex + 1, Math.floor(now / this.periodMs) + 1);
    let index = Number.POSITIVE_INFINITY;
    for (const r of this.repeating) index = Math.min(index, Math.ceil(first / r.everyBeats) * r.everyBeats);
    for (const o of this.once) index = Math.min(index, Math.max(first, this.onceIndex(o)));
    return index;
  }

  private onceIndex(entry: Once): number {
    return Math.ceil((entry.dueAt - this.periodMs / 2) / this.periodMs);
  }

  private arm(): void {
    if (this.timer !== null || (this.repeating.size === 0 && this.once.size === 0)) return;
    const now = this.now();
    this.nextIndex = this.plan(now);
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(this.nextIndex * this.periodMs - now)));
  }

  private fire(): void {
    this.timer = null;
    const index = this.nextIndex;
    this.lastIndex = index;
    this.beatCount++;
    this.onLateness?.(Math.max(0, this.now() - index * this.periodMs));
    const repeating = [...this.repeating].filter((r) => index % r.everyBeats === 0);
    const due = [...this.once].filter((o) => this.onceIndex(o) <= index);
    for (const o of due) this.once.delete(o);
    // Armed before the callbacks run: one that throws does not stop the beat.
    this.arm();
    // A callback may cancel one that was due on this beat too.
    for (const r of repeating) if (this.repeating.has(r)) r.fn();
    for (const o of due) if (!o.cancelled) o.fn();
  }
}

/**
 * `fn` every `periodMs`: on the beat when there is one and the period is a whole number of
 * beats, else on a timer of its own (unref'd if asked: it then keeps no process alive).
 */
export function everyOnBeat(beat: BeatApi | null | undefined, periodMs: number, fn: () => void, options: { unref?: boolean } = {}): CancelBeat {
  if (beat?.fits(periodMs)) return beat.every(periodMs, fn);
  const timer = setInterval(fn, periodMs);
  if (options.unref) timer.unref();
  return () => clearInterval(timer);
}
