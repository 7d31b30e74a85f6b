/**
 * The client's view for benchmarks, measured on answers rather than on requests: a request
 * sent while the VIP was unreachable can wait in the client's neighbour queue and be
 * answered later, so "served" here means the time the answer arrived (t + latency).
 */
import type { HttpSample, SamplerRecord } from "./analysis.js";

export interface Answer {
  /** When the answer arrived (CLOCK_MONOTONIC ms). */
  at: number;
  node: string;
}

export function answers(records: readonly SamplerRecord[]): Answer[] {
  return records
    .filter((r): r is HttpSample => r.kind === "http" && r.ok && r.node !== null)
    .map((r) => ({ at: r.t + r.latencyMs, node: r.node as string }))
    .sort((a, b) => a.at - b.at);
}

/** The first answer at or after `after` from a node other than `notNode` (any node when null). */
export function firstAnswerAfter(all: readonly Answer[], after: number, notNode: string | null): Answer | null {
  return all.find((a) => a.at >= after && (notNode === null || a.node !== notNode)) ?? null;
}

/**
 * The longest time without an answer that reaches into [from, to]: between consecutive
 * answers (the first one may come before `from`, unless fromLastAnswerBefore is false),
 * and from the last answer to `to`.
 */
export function longestAnswerGap(all: readonly Answer[], from: number, to: number, options: { fromLastAnswerBefore?: boolean } = {}): { gapMs: number; start: number; end: number } {
  const before = all.filter((a) => a.at < from);
  const inside = all.filter((a) => a.at >= from && a.at <= to);
  // By default a stretch that began before `from` counts whole (the fault cut off a served VIP).
  const start = options.fromLastAnswerBefore !== false && before.length > 0 ? (before[before.length - 1] as Answer).at : from;
  const points = [start, ...inside.map((a) => a.at), to];
  let best = { gapMs: 0, start: from, end: from };
  for (let i = 1; i < points.length; i++) {
    const gap = (points[i] as number) - (points[i - 1] as number);
    if (gap > best.gapMs) best = { gapMs: gap, start: points[i - 1] as number, end: points[i] as number };
  }
  return best;
}

/** Changes of the answering node within [from, to] (stretches without answers in between do not count). */
export function answerMoves(all: readonly Answer[], from: number, to: number): { from: string; to: string; at: number }[] {
  const moves: { from: string; to: string; at: number }[] = [];
  let previous: string | null = null;
  for (const answer of all) {
    if (answer.at > to) break;
    if (previous !== null && answer.node !== previous && answer.at >= from) moves.push({ from: previous, to: answer.node, at: answer.at });
    previous = answer.node;
  }
  return moves;
}
