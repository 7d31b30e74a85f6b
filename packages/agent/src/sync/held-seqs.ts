/**
 * What one side is known to hold of one kind of record (events or samples): per origin, every
 * sequence number up to `floor` (its watermark), plus disjoint ranges above it (records it
 * holds past a gap). The sync engine keeps one per kind for the peer, fed by the peer's
 * watermarks, by the batches the peer acknowledged and by the batches the peer sent us.
 */
interface OriginHolding {
  floor: number;
  /** Sorted, disjoint, non-adjacent [lo, hi] ranges, every lo > floor + 1. */
  ranges: [number, number][];
}

export interface SeqRecord {
  origin: string;
  seq: number;
}

export class HeldSeqs {
  private readonly origins = new Map<string, OriginHolding>();

  static fromWatermarks(watermarks: Record<string, number>): HeldSeqs {
    const held = new HeldSeqs();
    for (const [origin, floor] of Object.entries(watermarks)) held.raiseFloor(origin, floor);
    return held;
  }

  /** Every seq up to this one is held (0: nothing known). */
  floor(origin: string): number {
    return this.origins.get(origin)?.floor ?? 0;
  }

  floors(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const [origin, holding] of this.origins) if (holding.floor > 0) result[origin] = holding.floor;
    return result;
  }

  holds(origin: string, seq: number): boolean {
    const holding = this.origins.get(origin);
    if (!holding) return false;
    if (seq <= holding.floor) return true;
    return holding.ranges.some(([lo, hi]) => seq >= lo && seq <= hi);
  }

  raiseFloor(origin: string, floor: number): void {
    if (!(floor > 0)) return;
    const holding = this.holding(origin);
    if (floor <= holding.floor) return;
    holding.floor = floor;
    this.normalize(holding);
  }

  raiseFloors(watermarks: Record<string, number>): void {
    for (const [origin, floor] of Object.entries(watermarks)) this.raiseFloor(origin, floor);
  }

  addRange(origin: string, lo: number, hi: number): void {
    if (hi < lo) return;
    const holding = this.holding(origin);
    if (hi <= holding.floor) return;
    const merged: [number, number][] = [];
    let next: [number, number] = [lo, hi];
    for (const range of holding.ranges) {
      if (range[1] + 1 < next[0]) merged.push(range);
      else if (next[1] + 1 < range[0]) {
        merged.push(next);
        next = range;
      } else next = [Math.min(range[0], next[0]), Math.max(range[1], next[1])];
    }
    merged.push(next);
    holding.ranges = merged;
    this.normalize(holding);
  }

  /** Marks records as held, in any order, grouped into runs of consecutive seqs. */
  addRecords(records: readonly SeqRecord[]): void {
    const byOrigin = new Map<string, number[]>();
    for (const record of records) {
      const seqs = byOrigin.get(record.origin);
      if (seqs) seqs.push(record.seq);
      else byOrigin.set(record.origin, [record.seq]);
    }
    for (const [origin, seqs] of byOrigin) {
      seqs.sort((a, b) => a - b);
      let lo = seqs[0] as number;
      let hi = lo;
      for (const seq of seqs) {
        if (seq <= hi + 1) hi = Math.max(hi, seq);
        else {
          this.addRange(origin, lo, hi);
          lo = seq;
          hi = seq;
        }
      }
      this.addRange(origin, lo, hi);
    }
  }

  /** How many seqs in (floor, upTo] are not known to be held. */
  missingUpTo(origin: string, upTo: number): number {
    const holding = this.origins.get(origin);
    const floor = holding?.floor ?? 0;
    if (upTo <= floor) return 0;
    let missing = upTo - floor;
    for (const [lo, hi] of holding?.ranges ?? []) {
      if (lo > upTo) break;
      missing -= Math.min(hi, upTo) - lo + 1;
    }
    return missing;
  }

  private holding(origin: string): OriginHolding {
    let holding = this.origins.get(origin);
    if (!holding) {
      holding = { floor: 0, ranges: [] };
      this.origins.set(origin, holding);
    }
    return holding;
  }

  /** Ranges that reach the floor become part of it. */
  private normalize(holding: OriginHolding): void {
    while (holding.ranges.length > 0) {
      const first = holding.ranges[0] as [number, number];
      if (first[0] > holding.floor + 1) break;
      holding.floor = Math.max(holding.floor, first[1]);
      holding.ranges.shift();
    }
    holding.ranges = holding.ranges.filter(([, hi]) => hi > holding.floor);
  }
}
