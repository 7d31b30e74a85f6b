/**
 * The simulator's agenda: a binary min-heap of timed entries. Entries due at the same instant
 * come out in the order they were pushed, so a run is a pure function of its seed.
 */
export class EventQueue<T> {
  private readonly at: number[] = [];
  private readonly seq: number[] = [];
  private readonly items: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  push(at: number, item: T): void {
    this.at.push(at);
    this.seq.push(this.nextSeq++);
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  /** The instant of the earliest entry, or Infinity when empty. */
  peekAt(): number {
    return this.items.length === 0 ? Infinity : (this.at[0] as number);
  }

  /** Removes and returns the earliest entry (the queue must not be empty). */
  pop(): { at: number; item: T } {
    const at = this.at[0] as number;
    return { at, item: this.popItem() };
  }

  /** Removes and returns the earliest entry's item; its instant was peekAt() (no pair object per event). */
  popItem(): T {
    const item = this.items[0] as T;
    const last = this.items.length - 1;
    this.move(last, 0);
    this.at.pop();
    this.seq.pop();
    this.items.pop();
    if (this.items.length > 0) this.down(0);
    return item;
  }

  private less(i: number, j: number): boolean {
    const ai = this.at[i] as number;
    const aj = this.at[j] as number;
    return ai < aj || (ai === aj && (this.seq[i] as number) < (this.seq[j] as number));
  }

  private move(from: number, to: number): void {
    this.at[to] = this.at[from] as number;
    this.seq[to] = this.seq[from] as number;
    this.items[to] = this.items[from] as T;
  }

  private swap(i: number, j: number): void {
    const at = this.at[i] as number;
    const seq = this.seq[i] as number;
    const item = this.items[i] as T;
    this.move(j, i);
    this.at[j] = at;
    this.seq[j] = seq;
    this.items[j] = item;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.less(left, smallest)) smallest = left;
      if (right < n && this.less(right, smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}

/** Small, fast, seedable PRNG (mulberry32, public domain): numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
