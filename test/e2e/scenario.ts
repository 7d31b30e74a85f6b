/**
 * One e2e scenario: the client samplers run throughout; a baseline, the fault, the expected
 * outcome (bounded wait), then more sampling to catch flaps and late split brain. And the
 * assertions every scenario makes about what the client saw.
 */
import { expect } from "vitest";
import { analyze, describeAnalysis, type Analysis, type SamplerRecord } from "../lab/analysis.js";
import { REPO_ROOT, type MnNode } from "../lab/constants.js";
import { monoNow, sleep } from "../lab/exec.js";
import { Lab, type StableState } from "../lab/lab.js";
import type { ClientSampler } from "../lab/sampler.js";

/** The client is served again within this bound after any fault (generous; the aim is ~1 s). */
export const SERVED_AGAIN_BOUND_MS = 10_000;
/** A planned switchover leaves the client unserved for at most this long. */
export const PLANNED_GAP_BOUND_MS = 2_000;
/**
 * The ARP sampler aims at 20+ samples per second; below this floor a "no two MACs" result
 * would mean little, so the scenario fails instead.
 */
export const MIN_ARP_SAMPLES_PER_SECOND = 15;

export interface ScenarioContext {
  lab: Lab;
  sampler: ClientSampler;
  before: StableState;
  /** When the fault was injected (CLOCK_MONOTONIC ms, the samplers' clock). */
  faultAt: number;
}

export interface ScenarioOptions {
  name: string;
  baselineMs?: number;
  fault: (ctx: Omit<ScenarioContext, "faultAt">) => Promise<void>;
  /** Waits (bounded) for the expected outcome; throws if it does not come. */
  outcome: (ctx: ScenarioContext) => Promise<void>;
  observeMs?: number;
}

export interface ScenarioRun {
  name: string;
  before: StableState;
  faultAt: number;
  records: SamplerRecord[];
  analysis: Analysis;
}

/** Where a test file's lab state (configs, agent and keepalived logs, samples) is kept after `down`. */
export function labArchiveDir(suite: string): string {
  return `${REPO_ROOT}/.lab/e2e/${suite}`;
}

export async function runScenario(lab: Lab, before: StableState, options: ScenarioOptions): Promise<ScenarioRun> {
  const sampler = lab.sampler(options.name);
  await sampler.start();
  let faultAt = monoNow();
  let failure: unknown = null;
  try {
    // A baseline: the client is served by the holder before anything happens.
    const baseline = await sampler.waitServedBy(before.holder, { since: monoNow(), count: 5, timeoutMs: 5_000 });
    if (baseline === null) throw new Error(`baseline: the client was not served by ${before.holder} before the fault`);
    await sleep(options.baselineMs ?? 300);
    faultAt = sampler.mark(`fault: ${options.name}`);
    await options.fault({ lab, sampler, before });
    await options.outcome({ lab, sampler, before, faultAt });
    sampler.mark("outcome reached");
    await sleep(options.observeMs ?? 2_000);
  } catch (error) {
    failure = error;
  }
  const records = await sampler.stop();
  const analysis = analyze(records, { faultAt });
  console.log([`--- ${options.name}`, ...describeAnalysis(analysis, faultAt)].join("\n"));
  if (failure !== null) throw failure;
  return { name: options.name, before, faultAt, records, analysis };
}

/** Promise 1, as the client sees it: never two MACs for the VIP, with enough samples to mean it. */
export function expectNeverTwoMacs(run: ScenarioRun): void {
  expect(run.analysis.arp.splitBrain, `ARP samples with two MACs in "${run.name}"`).toEqual([]);
  expect(run.analysis.arp.perSecond, "ARP samples per second").toBeGreaterThanOrEqual(MIN_ARP_SAMPLES_PER_SECOND);
}

/** The client was served after the fault, and never went unserved longer than the bound. */
export function expectServedWithin(run: ScenarioRun, boundMs = SERVED_AGAIN_BOUND_MS): void {
  const fault = run.analysis.fault;
  expect(fault?.servedBefore, "served before the fault").toBe(run.before.holder);
  expect(fault?.firstServed, "served after the fault").not.toBeNull();
  expect(fault?.firstServed?.afterMs ?? Infinity).toBeLessThanOrEqual(boundMs);
  expect(run.analysis.http.longestGapMs, "longest time the client went unserved").toBeLessThanOrEqual(boundMs);
}

/** Exactly one move, from `from` to `to`, after the fault (HTTP and ARP agree). */
export function expectMovedOnce(run: ScenarioRun, from: MnNode, to: MnNode): void {
  const httpMoves = run.analysis.http.moves.map((m) => `${m.from}->${m.to}`);
  const arpMoves = run.analysis.arp.moves.map((m) => `${m.from}->${m.to}`);
  expect(httpMoves, "who served the client, changes").toEqual([`${from}->${to}`]);
  expect(arpMoves, "who answered ARP, changes").toEqual([`${from}->${to}`]);
  for (const move of [...run.analysis.http.moves, ...run.analysis.arp.moves]) expect(move.at).toBeGreaterThanOrEqual(run.faultAt);
  const servedAfter = run.analysis.fault?.firstServedByOther;
  expect(servedAfter?.node).toBe(to);
  expect(servedAfter?.afterMs ?? Infinity).toBeLessThanOrEqual(SERVED_AGAIN_BOUND_MS);
}

/** Nothing moved: only `holder` served and answered ARP, from start to end. */
export function expectNoMove(run: ScenarioRun, holder: MnNode): void {
  expect(run.analysis.http.moves, "who served the client, changes").toEqual([]);
  expect(run.analysis.arp.moves, "who answered ARP, changes").toEqual([]);
  const servers = new Set(run.analysis.http.servedBy.map((s) => s.node).filter((n) => n !== null));
  const answerers = new Set(run.analysis.arp.answeredBy.map((s) => s.node).filter((n) => n !== null));
  expect([...servers]).toEqual([holder]);
  expect([...answerers]).toEqual([holder]);
}

/** Waits (bounded) until the client has been served by `node` several times in a row after the fault. */
export async function waitClientServedBy(ctx: ScenarioContext, node: MnNode, timeoutMs = SERVED_AGAIN_BOUND_MS + 2_000): Promise<void> {
  const first = await ctx.sampler.waitServedBy(node, { since: ctx.faultAt, count: 5, timeoutMs });
  if (first === null) throw new Error(`the client was not served by ${node} within ${timeoutMs} ms of the fault`);
}
