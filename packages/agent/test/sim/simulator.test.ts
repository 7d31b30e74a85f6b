import { parseConfig } from "@mnha/shared";
import { describe, expect, it, vi } from "vitest";
import { ElectionCore, type ElectionEffect, type ElectionInput, type ElectionSettings } from "../../src/core/election.js";
import { deriveBounds } from "../../src/sim/invariants.js";
import type { WorldOverrides } from "../../src/sim/pair-world.js";
import { SIM_SETTINGS, formatRun, runSchedule, runSeed } from "../../src/sim/runner.js";
import { faultEnd, generateSchedule, isLinkFault, type Fault, type Schedule } from "../../src/sim/schedule.js";

/**
 * Tests of the simulator itself: it is deterministic, its schedules keep their promises, its
 * timings are the product's, and -- the point of it -- its invariants do catch a broken core.
 */

function schedule(faults: Fault[], options: Partial<Schedule> = {}): Schedule {
  return {
    seed: 1,
    profile: "chaos",
    drift: { mn1: 0, mn2: 0 },
    bootAt: { mn1: 0, mn2: 0 },
    latency: { minMs: 1, maxMs: 3 },
    healAt: 20_000,
    ...options,
    faults: [...faults].sort((a, b) => a.at - b.at),
  };
}

/** All IP between the MNs (agent link and VRRP) cut both ways; ARP still flows. */
function ipCut(at: number, until: number): Fault[] {
  return [
    { kind: "link-cut", from: "both", at, until, mode: "drop" },
    { kind: "vrrp-cut", from: "both", at, until },
  ];
}

/** A core with something deliberately wrong: it sees rewritten inputs, returns rewritten effects, or starts with rewritten settings. */
function brokenCore(breakage: {
  input?: (input: ElectionInput) => ElectionInput;
  effects?: (effects: ElectionEffect[], input: ElectionInput) => ElectionEffect[];
  settings?: (settings: ElectionSettings) => ElectionSettings;
}): WorldOverrides {
  class BrokenCore extends ElectionCore {
    override step(now: number, input: ElectionInput): ElectionEffect[] {
      const effects = super.step(now, breakage.input ? breakage.input(input) : input);
      return breakage.effects ? breakage.effects(effects, input) : effects;
    }
  }
  return { coreFactory: (s, now) => new BrokenCore(breakage.settings ? breakage.settings(s) : s, now) };
}

describe("the simulator", () => {
  it("is deterministic: a seed gives the same run, event for event", () => {
    const a = runSeed({ seed: 4242, fullLog: true });
    const b = runSeed({ seed: 4242, fullLog: true });
    expect(a.steps).toBeGreaterThan(1_000);
    expect(b.steps).toBe(a.steps);
    expect(b.world.trace(1e9)).toBe(a.world.trace(1e9));
    expect(b.world.vipChanges).toEqual(a.world.vipChanges);
    expect(generateSchedule(4243)).not.toEqual(generateSchedule(4242));
  });

  it("generates bounded schedules: every fault over by the heal, benign ones touching nothing that may move the VIP", () => {
    let benign = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const s = generateSchedule(seed);
      expect(s.faults.length).toBeGreaterThan(0);
      for (const f of s.faults) {
        expect(f.at).toBeGreaterThanOrEqual(0);
        expect(faultEnd(f)).toBeLessThanOrEqual(s.healAt);
      }
      expect(Math.abs(s.drift.mn1 - s.drift.mn2)).toBeLessThan(SIM_SETTINGS.election.maxClockDrift);
      if (s.profile !== "benign") continue;
      benign++;
      const links = s.faults.filter(isLinkFault);
      for (const f of s.faults) {
        expect(["demote", "gateway-down", "stop-agent", "kill-agent", "crash", "gateway-cut"].includes(f.kind) && "node" in f && f.node === "mn1", JSON.stringify(f)).toBe(false);
        expect(f.kind === "demote" || f.kind === "gateway-down").toBe(false);
        if (f.kind === "pause" && f.node === "mn1") expect(f.until - f.at).toBeLessThan(SIM_SETTINGS.election.leaseMs - 2 * SIM_SETTINGS.election.heartbeatIntervalMs);
        if (f.kind === "services" && f.node === "mn1") expect(f.until - f.at).toBeLessThan(SIM_SETTINGS.services.intervalMs);
        if (f.kind === "arp-cut") expect(links.some((l) => l.at < f.until && f.at < l.until)).toBe(false);
      }
    }
    expect(benign).toBeGreaterThan(40);
  });

  it("uses the product's default timings", () => {
    const config = parseConfig({
      node: { name: "mn1", address: "10.0.0.11" },
      peers: [{ name: "mn2", address: "10.0.0.12" }],
      vip: { address: "10.0.0.100", interface: "eth0" },
      gateway: { address: "10.0.0.1" },
      auth: { secret: "0123456789abcdef0123" },
    });
    const t = config.timings;
    const e = SIM_SETTINGS.election;
    expect({ heartbeat: e.heartbeatIntervalMs, peerLoss: e.peerLossMs, lease: e.leaseMs, margin: e.takeoverMarginMs, drift: e.maxClockDrift, handoff: e.handoffTimeoutMs }).toEqual({
      heartbeat: t.heartbeatIntervalMs,
      peerLoss: t.heartbeatIntervalMs * t.heartbeatMisses,
      lease: t.leaseMs,
      margin: t.takeoverMarginMs,
      drift: t.maxClockDrift,
      handoff: t.handoffTimeoutMs,
    });
    expect(e.startupGraceMs).toBe(Math.max(e.peerLossMs * 2, Math.ceil(t.leaseMs * (1 + t.maxClockDrift)) + t.takeoverMarginMs));
    expect({ arpGuard: e.arpGuard, retry: e.arpRetryMs, probe: SIM_SETTINGS.probeTimeoutMs }).toEqual({ arpGuard: config.arpGuard.enabled, retry: config.arpGuard.retryIntervalMs, probe: config.arpGuard.probeTimeoutMs });
    const k = config.keepalived;
    const skew = ((256 - k.priority) * k.advertIntMs) / 256;
    expect({ down: SIM_SETTINGS.keepalivedDownTimerMs, skew: SIM_SETTINGS.keepalivedSkewMs }).toEqual({ down: k.downTimerAdverts * k.advertIntMs + skew, skew });
    const g = config.gateway;
    expect(SIM_SETTINGS.gateway).toEqual({ intervalMs: g.intervalMs, timeoutMs: g.timeoutMs, rise: g.rise, fall: g.fall });
    const check = config.services[0]?.check;
    expect(check).toBeDefined();
    expect(SIM_SETTINGS.services).toEqual({ intervalMs: check?.intervalMs, timeoutMs: check?.timeoutMs, rise: check?.rise, fall: check?.fall });
    expect(SIM_SETTINGS.peerLink).toMatchObject({ reconnectInitialMs: t.reconnectInitialMs, reconnectMaxMs: t.reconnectMaxMs });
    expect({ repair: e.vipRepairAfterMs, giveUp: e.vipGiveUpAfterMs, peer: e.peerVipUnansweredMs }).toEqual({ repair: t.vipRepairAfterMs, giveUp: t.vipGiveUpAfterMs, peer: t.peerVipUnansweredMs });
  });

  it("states its bounds from the settings", () => {
    const bounds = runSchedule(schedule([])).bounds;
    expect(bounds).toEqual(deriveBounds({ ...runSchedule(schedule([])).world.settings }));
    // Start-up, a lost peer's lease, a probe and the master-down timer fit well inside it.
    expect(bounds.livenessMs).toBeGreaterThan(SIM_SETTINGS.election.startupGraceMs + SIM_SETTINGS.election.leaseMs + SIM_SETTINGS.probeTimeoutMs + SIM_SETTINGS.keepalivedDownTimerMs);
    expect(bounds.livenessMs).toBeLessThan(10_000);
  });
});

describe("the invariants catch a broken core", () => {
  it("ARP guard off, IP between the MNs cut: two holders, reported as a safety violation", () => {
    const faults = ipCut(5_000, 15_000);
    const good = runSchedule(schedule(faults));
    expect(good.violations, formatRun(good)).toEqual([]);
    const broken = runSchedule(schedule(faults), { world: { election: { ...SIM_SETTINGS.election, arpGuard: false } } });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "safety" });
    expect(broken.violations[0]?.at).toBeGreaterThan(5_000);
    expect(broken.violations[0]?.at).toBeLessThan(15_000);
    expect(formatRun(broken)).toMatch(/\[safety\] at .* both mn1 and mn2 hold the VIP/);
  });

  it("ARP guard off in a benign schedule: the VIP moves when the link comes back, reported as flapping", () => {
    const faults: Fault[] = [{ kind: "link-cut", from: "both", at: 5_000, until: 8_000, mode: "drop" }];
    expect(runSchedule(schedule(faults, { profile: "benign" })).violations).toEqual([]);
    const broken = runSchedule(schedule(faults, { profile: "benign" }), { world: { election: { ...SIM_SETTINGS.election, arpGuard: false } } });
    expect(broken.violations.map((v) => v.invariant), formatRun(broken)).toContain("no-flapping");
  });

  it("a core that never persists its epoch breaks epoch durability", () => {
    const broken = runSchedule(schedule([]), { world: brokenCore({ effects: (effects) => effects.filter((e) => e.kind !== "persist-epoch") }) });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "epoch-durable" });
  });

  it("a core that ignores the epoch on disk goes back in epochs after a restart", () => {
    const faults: Fault[] = [{ kind: "kill-agent", node: "mn1", at: 5_000, until: 6_000 }];
    expect(runSchedule(schedule(faults)).violations).toEqual([]);
    const broken = runSchedule(schedule(faults), { world: brokenCore({ settings: (s) => ({ ...s, initialEpoch: 0 }) }) });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "epoch-monotonic" });
  });

  it("a holder that closes its gate for no reason loses the VIP with no cause: a causality violation", () => {
    let ticks = 0;
    // After 8 s of ticks (both nodes), every tick closes the gate behind the core's back.
    const whimsical = brokenCore({ effects: (effects, input) => (input.kind === "tick" && ++ticks >= 160 ? [...effects, { kind: "set-gate", open: false }] : effects) });
    const broken = runSchedule(schedule([]), { world: whimsical });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "causality" });
  });

  it("a core whose ARP probes never run leaves no holder: a liveness violation", () => {
    const broken = runSchedule(schedule([]), { world: brokenCore({ effects: (effects) => effects.filter((e) => e.kind !== "arp-probe") }) });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "liveness" });
  });

  it("a core deaf to the epochs in heartbeats claims at an epoch it has already heard: an epoch-order violation", () => {
    const faults: Fault[] = [{ kind: "crash", node: "mn1", at: 5_000, until: 8_000 }];
    expect(runSchedule(schedule(faults)).violations).toEqual([]);
    const deaf = brokenCore({ input: (i) => (i.kind === "peer-message" && i.message.type === "heartbeat" ? { ...i, message: { ...i.message, epoch: 0 } } : i) });
    const broken = runSchedule(schedule(faults), { world: deaf });
    expect(broken.violations[0], formatRun(broken)).toMatchObject({ invariant: "epoch-order" });
    expect(broken.violations[0]?.message).toMatch(/mn2 became holder at epoch 1, not above mn1's 1/);
  });
});

describe("time", () => {
  it("wall-clock jumps change nothing: the same run with and without them, and no wall clock read at all", () => {
    const seeds: number[] = [];
    for (let seed = 1; seeds.length < 3; seed++) if (generateSchedule(seed).faults.some((f) => f.kind === "wall-jump")) seeds.push(seed);
    for (const seed of seeds) {
      const s = generateSchedule(seed);
      const withJumps = runSchedule(s, { fullLog: true, keepGoing: true });
      // And again with every wall clock in the process jumping wildly (or refusing to be read).
      const dateNow = vi.spyOn(Date, "now").mockImplementation(() => {
        throw new Error("the simulation read Date.now()");
      });
      const perfNow = vi.spyOn(performance, "now").mockImplementation(() => {
        throw new Error("the simulation read performance.now()");
      });
      let withoutJumps;
      try {
        withoutJumps = runSchedule(s, { fullLog: true, keepGoing: true, withoutWallJumps: true });
      } finally {
        dateNow.mockRestore();
        perfNow.mockRestore();
      }
      const decisions = (trace: string) =>
        trace
          .split("\n")
          .filter((line) => !line.includes("wall clock"))
          .join("\n");
      expect(withJumps.world.log.some((e) => e.what.includes("wall clock jumped"))).toBe(true);
      expect(decisions(withoutJumps.world.trace(1e9))).toBe(decisions(withJumps.world.trace(1e9)));
      expect(withoutJumps.violations).toEqual(withJumps.violations);
    }
  });

  it("clock drift at both edges of the bound: a holder paused past its lease is replaced once, never doubled", () => {
    const bound = SIM_SETTINGS.election.maxClockDrift * 0.49;
    for (const drift of [
      { mn1: bound, mn2: -bound },
      { mn1: -bound, mn2: bound },
    ]) {
      const faults: Fault[] = [...ipCut(4_000, 12_000), { kind: "pause", node: "mn1", at: 6_000, until: 9_000 }];
      const result = runSchedule(schedule(faults, { drift }), { fullLog: true });
      expect(result.violations, formatRun(result)).toEqual([]);
      const moves = result.world.vipChanges.filter((c) => c.to !== null && c.at > 6_000 && c.at < 12_000);
      expect(moves.map((c) => c.to), formatRun(result)).toEqual(["mn2"]);
    }
  });
});
