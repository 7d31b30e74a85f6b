/**
 * The reading side of sync: per origin, a lazy stream of the records after the receiver's
 * watermark (up to this store's own), with gap markers where records are known to be gone;
 * the streams are merged oldest first until a count or byte budget runs out. Rows are read
 * in growing pages, so that a small budget reads little.
 */

/** A stored row as the stream needs it. */
export interface StreamRow {
  seq: number;
  /** Set on gap markers: the first seq the marker stands for. */
  fromSeq: number | null;
  wallMs: number;
  /** Approximate size of the record as JSON. */
  bytes: number;
}

export interface StreamSource<R extends StreamRow, T> {
  /** Rows with afterSeq < seq <= upTo, by seq, at most `limit`. */
  fetch(afterSeq: number, upTo: number, limit: number): R[];
  record(row: R): T;
  /** A marker for seqs fromSeq..seq that no row covers (removed by retention). */
  marker(fromSeq: number, seq: number, wallMs: number): T;
  markerBytes: number;
}

interface Head<T> {
  wallMs: number;
  bytes: number;
  make: () => T;
  /** The next seq expected once this is taken. */
  next: number;
  fromRow: boolean;
}

const FIRST_PAGE = 64;
const MAX_PAGE = 2_048;

export class OriginStream<R extends StreamRow, T> {
  private rows: R[] = [];
  private at = 0;
  private fetchedTo: number;
  private exhausted = false;
  private page = FIRST_PAGE;
  private expected: number;
  private current: Head<T> | null = null;
  private lastWallMs: number | null = null;

  constructor(
    readonly origin: string,
    private readonly source: StreamSource<R, T>,
    /** The receiver holds every seq up to this one. */
    from: number,
    /** This store's own watermark for the origin: nothing past it is sent. */
    private readonly upTo: number,
  ) {
    this.fetchedTo = from;
    this.expected = from + 1;
  }

  peek(): Head<T> | null {
    if (this.current) return this.current;
    if (this.expected > this.upTo) return null;
    const row = this.nextRow();
    if (row === undefined) {
      // Nothing stored up to our watermark from here on: all of it was removed.
      this.current = this.markerHead(this.expected, this.upTo, this.lastWallMs ?? Date.now());
      return this.current;
    }
    const covers = row.fromSeq === null ? row.seq : Math.min(row.seq, row.fromSeq);
    if (covers > this.expected) this.current = this.markerHead(this.expected, covers - 1, row.wallMs);
    else this.current = { wallMs: row.wallMs, bytes: row.bytes, make: () => this.source.record(row), next: row.seq + 1, fromRow: true };
    return this.current;
  }

  take(): T {
    const head = this.peek();
    if (!head) throw new Error("take() on an exhausted stream");
    if (head.fromRow) {
      this.lastWallMs = head.wallMs;
      this.at += 1;
    }
    this.expected = head.next;
    this.current = null;
    return head.make();
  }

  private markerHead(fromSeq: number, seq: number, wallMs: number): Head<T> {
    return { wallMs, bytes: this.source.markerBytes, make: () => this.source.marker(fromSeq, seq, wallMs), next: seq + 1, fromRow: false };
  }

  private nextRow(): R | undefined {
    if (this.at < this.rows.length) return this.rows[this.at];
    if (this.exhausted) return undefined;
    this.rows = this.source.fetch(this.fetchedTo, this.upTo, this.page);
    this.at = 0;
    if (this.rows.length < this.page) this.exhausted = true;
    this.fetchedTo = this.rows.at(-1)?.seq ?? this.fetchedTo;
    this.page = Math.min(MAX_PAGE, this.page * 2);
    return this.rows[0];
  }
}

/**
 * Oldest first across the streams (each stream stays in seq order), while the count and the
 * byte budget last. `atLeastOne`: take the first record even when it alone is over budget
 * (a batch that carries nothing would stall the sync).
 */
export function takeOldestFirst<T>(streams: OriginStream<StreamRow, T>[], max: number, budget: { bytes: number }, atLeastOne: boolean): T[] {
  const out: T[] = [];
  while (out.length < max) {
    let best: OriginStream<StreamRow, T> | null = null;
    let bestHead: Head<T> | null = null;
    for (const stream of streams) {
      const head = stream.peek();
      if (!head) continue;
      if (!bestHead || head.wallMs < bestHead.wallMs || (head.wallMs === bestHead.wallMs && stream.origin < best!.origin)) {
        best = stream;
        bestHead = head;
      }
    }
    if (!best || !bestHead) break;
    if (bestHead.bytes > budget.bytes && !(atLeastOne && out.length === 0)) break;
    budget.bytes -= bestHead.bytes;
    out.push(best.take());
  }
  return out;
}
