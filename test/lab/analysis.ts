/**
 * What the client saw, in numbers: when it was first served after a fault, the longest time
 * it went unserved, whether two MACs ever answered for the VIP, and who served over time.
 * Pure functions over the sampler's records.
 */
import { nodeOfMac } from "./constants.js";

export interface HttpSample {
  kind: "http";
  /** CLOCK_MONOTONIC ms when the request was sent. */
  t: number;
  ok: boolean;
  /** The node named in the answer (null when not served). */
  node: string | null;
  latencyMs: number;
  status?: number;
  error?: string;
}

export interface ArpSample {
  kind: "arp";
  /** CLOCK_MONOTONIC ms when arping was started. */
  t: number;
  /** Every distinct MAC (lower case) that answered this one request. */
  macs: string[];
  /** Requests arping said it sent (its closing line); 0 or null with no MAC: no probe went out. */
  sent?: number | null;
  windowMs: number;
  durationMs: number;
  error?: string;
}

/** A point the test marks on the same clock: a fault injected, a step taken. */
export interface Mark {
  kind: "mark";
  t: number;
  label: string;
}

export type SamplerRecord = HttpSample | ArpSample | Mark | { kind: "start"; t: number };

/**
 * The sample's request went out (a MAC answered, or arping said it sent one). An arping cut off
 * by its window before it sent anything (a loaded machine slow to start it) says nothing about
 * who answers the VIP: the analysis leaves such samples out rather than count them unanswered.
 */
export function probed(sample: ArpSample): boolean {
  return sample.macs.length > 0 || (sample.sent ?? 0) > 0;
}

/** A stretch of time during which the same node (or nobody: null) served / answered. */
export interface Segment {
  node: string | null;
  from: number;
  to: number;
  samples: number;
}

export interface Analysis {
  from: number;
  to: number;
  http: {
    total: number;
    ok: number;
    /** Longest time between two served requests (or from the window's start/end), ms. */
    longestGapMs: number;
    longestGapAt: { from: number; to: number } | null;
    servedBy: Segment[];
    /** Changes of the serving node (unserved stretches in between do not count). */
    moves: { from: string; to: string; at: number }[];
  };
  arp: {
    total: number;
    perSecond: number;
    /** Samples in which two or more distinct MACs answered: split brain as a client sees it. */
    splitBrain: ArpSample[];
    unanswered: number;
    answeredBy: Segment[];
    moves: { from: string; to: string; at: number }[];
  };
  /** Set when a fault time was given. */
  fault: {
    at: number;
    /** First served request sent at or after the fault. */
    firstServed: { t: number; node: string; afterMs: number } | null;
    /** First served request, after the fault, by a node other than the one serving before. */
    firstServedByOther: { t: number; node: string; afterMs: number } | null;
    /** Node that served last before the fault. */
    servedBefore: string | null;
  } | null;
}

export function macLabel(mac: string): string {
  return nodeOfMac(mac) ?? mac;
}

function segmentsOf<T extends { t: number }>(samples: readonly T[], who: (sample: T) => string | null): Segment[] {
  const segments: Segment[] = [];
  for (const sample of samples) {
    const node = who(sample);
    const last = segments[segments.length - 1];
    if (last && last.node === node) {
      last.to = sample.t;
      last.samples++;
    } else {
      segments.push({ node, from: sample.t, to: sample.t, samples: 1 });
    }
  }
  return segments;
}

function movesOf(segments: readonly Segment[]): { from: string; to: string; at: number }[] {
  const moves: { from: string; to: string; at: number }[] = [];
  let previous: string | null = null;
  for (const segment of segments) {
    if (segment.node === null) continue;
    if (previous !== null && segment.node !== previous) moves.push({ from: previous, to: segment.node, at: segment.from });
    previous = segment.node;
  }
  return moves;
}

export function analyze(records: readonly SamplerRecord[], options: { faultAt?: number; from?: number; to?: number } = {}): Analysis {
  const inWindow = (r: { t: number }) => (options.from === undefined || r.t >= options.from) && (options.to === undefined || r.t <= options.to);
  const http = records.filter((r): r is HttpSample => r.kind === "http" && inWindow(r)).sort((a, b) => a.t - b.t);
  const arp = records.filter((r): r is ArpSample => r.kind === "arp" && inWindow(r) && probed(r)).sort((a, b) => a.t - b.t);
  const all = [...http, ...arp];
  const from = options.from ?? Math.min(...all.map((r) => r.t), Infinity);
  const to = options.to ?? Math.max(...all.map((r) => r.t), -Infinity);

  const served = http.filter((s) => s.ok);
  let longestGapMs = 0;
  let longestGapAt: { from: number; to: number } | null = null;
  const points = [from, ...served.map((s) => s.t), to];
  for (let i = 1; i < points.length; i++) {
    const gap = (points[i] as number) - (points[i - 1] as number);
    if (gap > longestGapMs) {
      longestGapMs = gap;
      longestGapAt = { from: points[i - 1] as number, to: points[i] as number };
    }
  }
  const servedBy = segmentsOf(http, (s) => (s.ok ? s.node : null));
  const answeredBy = segmentsOf(arp, (s) => (s.macs.length === 0 ? null : s.macs.map(macLabel).sort().join("+")));
  const arpSpanS = arp.length > 1 ? ((arp[arp.length - 1] as ArpSample).t - (arp[0] as ArpSample).t) / 1000 : 0;

  let fault: Analysis["fault"] = null;
  if (options.faultAt !== undefined) {
    const at = options.faultAt;
    const before = served.filter((s) => s.t < at);
    const servedBefore = before.length > 0 ? ((before[before.length - 1] as HttpSample).node as string) : null;
    const after = served.filter((s) => s.t >= at);
    const first = after[0];
    const other = after.find((s) => s.node !== servedBefore);
    fault = {
      at,
      servedBefore,
      firstServed: first ? { t: first.t, node: first.node as string, afterMs: first.t - at } : null,
      firstServedByOther: other ? { t: other.t, node: other.node as string, afterMs: other.t - at } : null,
    };
  }

  return {
    from,
    to,
    http: { total: http.length, ok: served.length, longestGapMs, longestGapAt, servedBy, moves: movesOf(servedBy) },
    arp: {
      total: arp.length,
      perSecond: arpSpanS > 0 ? (arp.length - 1) / arpSpanS : 0,
      splitBrain: arp.filter((s) => s.macs.length >= 2),
      unanswered: arp.filter((s) => s.macs.length === 0).length,
      answeredBy,
      moves: movesOf(answeredBy),
    },
    fault,
  };
}

/** A few lines a person can read: who served when, gaps, split-brain samples. */
export function describeAnalysis(analysis: Analysis, origin = analysis.from): string[] {
  const rel = (t: number) => `${((t - origin) / 1000).toFixed(2)}s`;
  const lines: string[] = [];
  lines.push(`client HTTP: ${analysis.http.ok}/${analysis.http.total} served; longest unserved gap ${Math.round(analysis.http.longestGapMs)} ms`);
  for (const s of analysis.http.servedBy) lines.push(`  ${rel(s.from)}..${rel(s.to)}  ${s.node === null ? "not served" : `served by ${s.node}`} (${s.samples} requests)`);
  lines.push(`client ARP: ${analysis.arp.total} samples (${analysis.arp.perSecond.toFixed(1)}/s); ${analysis.arp.splitBrain.length} with two MACs; ${analysis.arp.unanswered} unanswered`);
  for (const s of analysis.arp.answeredBy) lines.push(`  ${rel(s.from)}..${rel(s.to)}  ${s.node === null ? "no answer" : `answered by ${s.node}`} (${s.samples} samples)`);
  if (analysis.fault) {
    const f = analysis.fault;
    const other = f.firstServedByOther;
    lines.push(
      `fault at ${rel(f.at)}: served before by ${f.servedBefore ?? "nobody"}; first served after it ${f.firstServed ? `${Math.round(f.firstServed.afterMs)} ms later by ${f.firstServed.node}` : "never"}` +
        (other && other.t !== f.firstServed?.t ? `; first served by ${other.node} ${Math.round(other.afterMs)} ms after it` : ""),
    );
  }
  return lines;
}
