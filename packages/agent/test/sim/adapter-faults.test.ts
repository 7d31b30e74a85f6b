import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionSettings } from "../../src/core/election.js";
import { deriveBounds, watchdogBoundMs } from "../../src/sim/invariants.js";
import type { WorldOverrides, WorldSettings } from "../../src/sim/pair-world.js";
import { formatRun, runSchedule, runSeed } from "../../src/sim/runner.js";
import { ADAPTER_FAULT_KINDS, generateSchedule, isAdapterFault, type Fault, type Schedule } from "../../src/sim/schedule.js";

/**
 * Adapter faults (what goes wrong around the core) in the simulated world, with the real host
 * and the real core: the liveness watchdog gets the VIP served again, never by two nodes; and
 * without the watchdog the same faults leave the pair without a holder, which the invariants
 * report.
 */

function schedule(faults: Fault[], healAt = 30_000): Schedule {
  return { seed: 7, profile: "chaos", drift: { mn1: 0, mn2: 0 }, bootAt: { mn1: 0, mn2: 0 }, latency: { minMs: 1, maxMs: 3 }, healAt, faults };
}

/** The fault of `kind` on mn1 (the holder after a calm start) at 5 s; timed ones last 6 s. */
function onHolder(kind: (typeof ADAPTER_FAULT_KINDS)[number]): Fault {
  return kind === "keepalived-stuck" || kind === "keepalived-refuses-start" ? { kind, node: "mn1", at: 5_000, until: 11_000 } : { kind, node: "mn1", at: 5_000 };
}

/** Cores whose watchdog never fires (on `nodes`): the pair as it was before the watchdog. */
function withoutWatchdog(nodes: string[] = ["mn1", "mn2"]): WorldOverrides {
  const off = (s: ElectionSettings): ElectionSettings => (nodes.includes(s.self) ? { ...s, vipRepairAfterMs: 1e12, vipGiveUpAfterMs: 2e12, peerVipUnansweredMs: 3e12 } : s);
  return { coreFactory: (s, now) => new ElectionCore(off(s), now) };
}

describe("adapter faults on the holder", () => {
  it.each(ADAPTER_FAULT_KINDS)("%s: the VIP is served again within the watchdog's bound, never by two nodes", (kind) => {
    const run = runSchedule(schedule([onHolder(kind)]), { fullLog: true });
    expect(run.violations, formatRun(run)).toEqual([]);
    expect(run.world.splitBrainAt).toEqual([]);
    // Served at the end, and from the fault's end on, the gap without a holder stays within the bound.
    expect(run.world.vipOwner()).not.toBeNull();
    const faultEnd = kind === "keepalived-stuck" || kind === "keepalived-refuses-start" ? 11_000 : 5_000;
    const back = run.world.vipChanges.find((c) => c.at > faultEnd && c.to !== null);
    const servedThroughout = run.world.vipChanges.every((c) => c.at <= 5_000 || c.to !== null);
    expect(servedThroughout || (back !== undefined && back.at - faultEnd <= watchdogBoundMs(run.world.settings as WorldSettings)), formatRun(run)).toBe(true);
  });

  it("the lease guard gone: the watchdog repairs it on the holder itself (no move of the VIP)", () => {
    const run = runSchedule(schedule([onHolder("lease-guard-gone")]), { fullLog: true });
    expect(run.violations, formatRun(run)).toEqual([]);
    const log = run.world.log.map((e) => `${e.node} ${e.what}`);
    expect(log.some((l) => l.startsWith("mn1 vip-repair:"))).toBe(true);
    expect(log.some((l) => l.startsWith("mn1 repaired:") && l.includes("started a new lease guard"))).toBe(true);
    expect(run.world.vipOwner()).toBe("mn1");
  });

  it("Keepalived stuck in FAULT past the give-up bound: the holder hands the role to the peer", () => {
    const run = runSchedule(schedule([{ kind: "keepalived-stuck", node: "mn1", at: 5_000, until: 25_000 }]), { fullLog: true });
    expect(run.violations, formatRun(run)).toEqual([]);
    const log = run.world.log.map((e) => `${e.node} ${e.what}`);
    expect(log.some((l) => l.startsWith("mn1 vip-gave-up:") && l.includes("handoff to mn2"))).toBe(true);
    // mn2 served the VIP while mn1's Keepalived was still stuck.
    expect(run.world.vipChanges.some((c) => c.to === "mn2" && c.at < 25_000)).toBe(true);
  });

  it("a holder whose watchdog never acts: the standby sees the VIP unanswered and claims it at a higher epoch", () => {
    const run = runSchedule(schedule([onHolder("lease-guard-gone")]), { fullLog: true, world: withoutWatchdog(["mn1"]) });
    expect(run.violations, formatRun(run)).toEqual([]);
    const log = run.world.log.map((e) => `${e.node} ${e.what}`);
    expect(log.some((l) => l.startsWith("mn2 peer-vip-unanswered:"))).toBe(true);
    expect(run.world.vipOwner()).toBe("mn2");
    expect(run.world.epoch("mn2")).toBeGreaterThan(1);
  });

  it.each(["lease-guard-gone", "vip-removed", "track-files-rewritten", "second-agent"] as const)("without the watchdog, %s leaves the pair with no holder: a liveness violation", (kind) => {
    const run = runSchedule(schedule([onHolder(kind)]), { world: withoutWatchdog() });
    expect(run.violations[0], formatRun(run)).toMatchObject({ invariant: "liveness" });
  });
});

describe("adapter faults in generated schedules", () => {
  it("come from their own random stream: a seed's other faults are unchanged, and only chaos schedules get them", () => {
    let withAdapter = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const all = generateSchedule(seed, { adapterFaultShare: 1 });
      const none = generateSchedule(seed, { adapterFaultShare: 0 });
      expect(all.faults.filter((f) => !isAdapterFault(f))).toEqual(none.faults);
      expect(none.faults.some(isAdapterFault)).toBe(false);
      if (all.profile === "benign") expect(all.faults.some(isAdapterFault)).toBe(false);
      else withAdapter++;
      for (const f of all.faults) expect("until" in f ? f.until : f.at).toBeLessThanOrEqual(all.healAt);
    }
    expect(withAdapter).toBeGreaterThan(150);
  });

  it("a schedule with adapter faults gets the watchdog's bound on top of the liveness bound", () => {
    const s = runSchedule(schedule([])).world.settings as WorldSettings;
    expect(deriveBounds(s, schedule([onHolder("vip-removed")])).livenessMs).toBeGreaterThanOrEqual(deriveBounds(s, schedule([])).livenessMs + watchdogBoundMs(s));
  });

  it("100 chaos schedules, every one with adapter faults, keep every invariant", { timeout: 120_000 }, () => {
    const failed = [];
    for (let seed = 1; seed <= 100; seed++) {
      const run = runSeed({ seed, generate: { profile: "chaos", adapterFaultShare: 1, windowMs: [20_000, 40_000] } });
      if (run.violations.length > 0) failed.push(formatRun(run, 40));
    }
    expect(failed.slice(0, 2).join("\n\n")).toBe("");
  });
});
