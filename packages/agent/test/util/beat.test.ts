import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Beat, everyOnBeat } from "../../src/util/beat.js";

// Fake timers and a clock on the faked Date: which beat runs what is then exact.
let beat: Beat;
beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_030); // 30 ms past a grid point of the 100 ms beat
  beat = new Beat(100, { now: () => Date.now() });
});
afterEach(() => {
  beat.stop();
  vi.useRealTimers();
});

describe("beat", () => {
  it("runs on a grid of its period: the first beat at the next grid point, then every period", () => {
    const at: number[] = [];
    beat.every(100, () => at.push(Date.now()));
    vi.advanceTimersByTime(350);
    expect(at).toEqual([1_000_100, 1_000_200, 1_000_300]);
  });

  it("runs a multiple of the beat on the grid's n-th beats, so work of one period shares them; refuses a period that does not fit", () => {
    const first: number[] = [];
    const second: number[] = [];
    beat.every(300, () => first.push(Date.now()));
    vi.advanceTimersByTime(100);
    beat.every(300, () => second.push(Date.now()));
    vi.advanceTimersByTime(900);
    expect(first).toEqual([1_000_200, 1_000_500, 1_000_800]);
    expect(second).toEqual([1_000_200, 1_000_500, 1_000_800]);
    // Nothing else to run: it woke only on those beats.
    expect(beat.beats).toBe(3);
    expect(beat.fits(100)).toBe(true);
    expect(beat.fits(200)).toBe(true);
    expect(beat.fits(150)).toBe(false);
    expect(beat.fits(50)).toBe(false);
    expect(() => beat.every(150, () => undefined)).toThrow(/150 ms is not a whole number of 100 ms beats/);
  });

  it("wakes once for work scheduled at different moments that falls due near the same beat", () => {
    const ran: string[] = [];
    beat.after(190, () => ran.push(`a@${Date.now()}`)); // due at 220: nearest beat 200
    vi.advanceTimersByTime(25);
    beat.after(150, () => ran.push(`b@${Date.now()}`)); // due at 205: beat 200
    vi.advanceTimersByTime(15);
    beat.after(200, () => ran.push(`c@${Date.now()}`)); // due at 270: nearest beat 300
    vi.advanceTimersByTime(300);
    expect(ran).toEqual(["a@1000200", "b@1000200", "c@1000300"]);
    // Three callbacks, two wake-ups: none on the beat at 100, where nothing was due.
    expect(beat.beats).toBe(2);
  });

  it("never runs work on the beat that scheduled it: after(0) from a beat runs on the next one", () => {
    const ran: number[] = [];
    const stop = beat.every(100, () => {
      if (beat.beats === 1) beat.after(0, () => ran.push(beat.beats));
    });
    vi.advanceTimersByTime(250);
    stop();
    expect(ran).toEqual([2]);
  });

  it("runs nothing cancelled, stops its timer when nothing is left, and starts again on new work", () => {
    const ran: string[] = [];
    const cancelA = beat.after(100, () => ran.push("a"));
    const cancelB = beat.after(100, () => {
      ran.push("b");
      cancelC(); // due on the same beat: cancelled before its turn
    });
    const cancelC = beat.after(100, () => ran.push("c"));
    cancelA();
    vi.advanceTimersByTime(200);
    expect(ran).toEqual(["b"]);
    cancelB();
    expect(vi.getTimerCount()).toBe(0);
    beat.after(100, () => ran.push("d"));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(200);
    expect(ran).toEqual(["b", "d"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("skips the beats a stalled loop missed instead of running them late in a burst", () => {
    const at: number[] = [];
    beat.every(100, () => at.push(Date.now()));
    vi.advanceTimersByTime(80); // the first beat, at 1 000 100, fires on time
    // The loop stalls 350 ms: the clock moves, no timer runs.
    vi.setSystemTime(Date.now() + 350);
    vi.advanceTimersByTime(100);
    expect(at[0]).toBe(1_000_100);
    // One late beat, then back on the grid (no burst of the missed ones).
    expect(at.length).toBe(2);
    vi.advanceTimersByTime(200);
    expect(at).toEqual([1_000_100, 1_000_550, 1_000_600, 1_000_700]);
  });

  it("reports how late each beat fired, a stalled loop's delay among them", () => {
    const late: number[] = [];
    const timed = new Beat(100, { now: () => Date.now(), onLateness: (ms) => late.push(ms) });
    try {
      timed.every(100, () => undefined);
      vi.advanceTimersByTime(80); // the beat at 1 000 100, on time
      vi.setSystemTime(Date.now() + 350); // a 350 ms stall: the next timer fires at 1 000 550
      vi.advanceTimersByTime(100);
      expect(late).toEqual([0, 350]);
      vi.advanceTimersByTime(100); // back on the grid
      expect(late).toEqual([0, 350, 0]);
    } finally {
      timed.stop();
    }
  });

  it("everyOnBeat: on the beat when the period fits, else on a timer of its own", () => {
    const onBeat: number[] = [];
    const own: number[] = [];
    const stopA = everyOnBeat(beat, 200, () => onBeat.push(Date.now()));
    const stopB = everyOnBeat(beat, 150, () => own.push(Date.now()));
    const stopC = everyOnBeat(null, 100, () => own.push(-1));
    vi.advanceTimersByTime(400);
    expect(onBeat).toEqual([1_000_200, 1_000_400]);
    expect(own.filter((t) => t > 0)).toEqual([1_000_180, 1_000_330]);
    expect(own.filter((t) => t === -1)).toHaveLength(4);
    stopA();
    stopB();
    stopC();
    expect(vi.getTimerCount()).toBe(0);
  });
});
