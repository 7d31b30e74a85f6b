import { describe, expect, it, vi } from "vitest";
import { ElectionCore, type ElectionEffect } from "../../src/core/election.js";
import { PairWorld, type SimNode } from "../../src/sim/pair-world.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * Scenario tests for the election core, run against a simulated pair (real cores, modelled
 * Keepalived, peer link, gateway and ARP). Each scenario names the events and the expected
 * outcome; every scenario also checks that the VIP never had two owners.
 */

function steadyPair(): PairWorld {
  const world = new PairWorld();
  world.boot("mn1");
  world.boot("mn2");
  const took = world.runUntil(() => world.vipOwner() !== null && world.role("mn1") !== "starting" && world.role("mn2") !== "starting", 5_000);
  expect(took, world.trace()).not.toBeNull();
  world.run(1_000);
  return world;
}

function otherNode(name: SimNode | null): SimNode {
  return name === "mn1" ? "mn2" : "mn1";
}

interface Scenario {
  name: string;
  act: (world: PairWorld, holder: SimNode, standby: SimNode) => void;
  /** How long to let the world run after the fault. */
  runMs: number;
  expectOwner: "holder" | "standby" | "none";
  /** Upper bound on the VIP being unowned after the fault (ms), when it moves. */
  maxGapMs?: number;
  expectMoves: number;
}

const scenarios: Scenario[] = [
  { name: "holder's critical service fails: the VIP moves to the standby", act: (w, h) => w.setServices(h, false), runMs: 3_000, expectOwner: "standby", maxGapMs: 100, expectMoves: 1 },
  { name: "holder dies: the standby takes over after the lease", act: (w, h) => w.crash(h), runMs: 3_000, expectOwner: "standby", maxGapMs: 1_500, expectMoves: 1 },
  { name: "holder's agent is killed: the lease guard drops the VIP and the standby takes over", act: (w, h) => w.killAgent(h), runMs: 3_000, expectOwner: "standby", maxGapMs: 1_500, expectMoves: 1 },
  { name: "standby dies: nothing moves", act: (w, _h, s) => w.crash(s), runMs: 3_000, expectOwner: "holder", expectMoves: 0 },
  { name: "standby's service fails: nothing moves", act: (w, _h, s) => w.setServices(s, false), runMs: 3_000, expectOwner: "holder", expectMoves: 0 },
  { name: "peer link lost while both reach the gateway: nothing moves (ARP guard)", act: (w) => w.cutLink(), runMs: 5_000, expectOwner: "holder", expectMoves: 0 },
  { name: "peer link and VRRP lost while both reach the gateway: nothing moves (ARP guard)", act: (w) => w.cutLink({ vrrp: true }), runMs: 5_000, expectOwner: "holder", expectMoves: 0 },
  { name: "standby loses the gateway: nothing moves", act: (w, _h, s) => w.setGateway(s, false), runMs: 3_000, expectOwner: "holder", expectMoves: 0 },
  { name: "holder loses the gateway, peer healthy: the VIP moves", act: (w, h) => w.setGateway(h, false), runMs: 3_000, expectOwner: "standby", maxGapMs: 100, expectMoves: 1 },
  {
    name: "holder loses the gateway and the peer link: it steps down and the standby takes over",
    act: (w, h) => {
      w.setGateway(h, false);
      w.cutLink({ vrrp: true });
    },
    runMs: 5_000,
    expectOwner: "standby",
    maxGapMs: 2_000,
    expectMoves: 1,
  },
  {
    // Found by the simulator: the taker kept its gate open after losing the holder, and its
    // Keepalived (deaf to the holder's adverts) took the VIP after the master-down timer.
    name: "IP between the MNs cut while the failing holder's handoff offer is in flight: the taker closes its gate, one holder",
    act: (w, h) => {
      w.setServices(h, false);
      w.cutLink({ vrrp: true });
    },
    runMs: 5_000,
    expectOwner: "holder",
    expectMoves: 0,
  },
  {
    // Found by the simulator: the taker heard the holder (so it was not "lost") but the holder
    // never got its "ready"; the taker waited handoffTimeoutMs with its gate open, and its
    // Keepalived, deaf to the holder's adverts, took the VIP after the master-down timer.
    name: "handoff whose 'ready' never reaches the holder while VRRP is cut: the taker closes its gate within the receive window, one holder",
    act: (w, h, s) => {
      w.cutLink({ from: s });
      w.setCut("vrrp", h, true);
      w.setCut("vrrp", s, true);
      w.demote(h);
    },
    runMs: 5_000,
    expectOwner: "holder",
    expectMoves: 0,
  },
  { name: "a 300 ms pause of the holder's agent moves nothing", act: (w, h) => { w.pause(h); w.run(300); w.resume(h); }, runMs: 3_000, expectOwner: "holder", expectMoves: 0 },
  { name: "holder's agent paused past its lease: the standby takes over; the old holder steps down on resume", act: (w, h) => { w.pause(h); w.run(2_000); w.resume(h); }, runMs: 3_000, expectOwner: "standby", maxGapMs: 1_500, expectMoves: 1 },
];

describe("election scenarios", () => {
  for (const scenario of scenarios) {
    it(scenario.name, () => {
      const world = steadyPair();
      const holder = world.vipOwner() as SimNode;
      const standby = otherNode(holder);
      const epochBefore = world.epoch(holder);
      const changesBefore = world.vipChanges.length;
      const faultAt = world.now;
      scenario.act(world, holder, standby);
      world.run(scenario.runMs);

      const expected = scenario.expectOwner === "holder" ? holder : scenario.expectOwner === "standby" ? standby : null;
      expect(world.vipOwner(), world.trace()).toBe(expected);
      expect(world.splitBrainAt, world.trace()).toEqual([]);
      const moves = world.vipChanges.slice(changesBefore).filter((c) => c.to !== null);
      expect(moves.length, world.trace()).toBe(scenario.expectMoves);
      if (scenario.expectMoves > 0) {
        expect(world.epoch(standby)).toBeGreaterThan(epochBefore);
        const served = moves[0]!.at;
        const dropped = world.vipChanges.slice(changesBefore).find((c) => c.to === null)?.at ?? faultAt;
        expect(served - Math.max(dropped, faultAt), world.trace()).toBeLessThanOrEqual(scenario.maxGapMs ?? 0);
      }
    });
  }

  it("both nodes start at the same moment: exactly one holder, the lower name", () => {
    const world = new PairWorld();
    world.boot("mn1");
    world.boot("mn2");
    world.run(5_000);
    expect(world.vipOwner(), world.trace()).toBe("mn1");
    expect(world.splitBrainAt).toEqual([]);
    expect(world.vipChanges.filter((c) => c.to !== null)).toHaveLength(1);
  });

  it("a node started alone takes the VIP after the start-up grace period", () => {
    const world = new PairWorld();
    world.boot("mn2");
    const took = world.runUntil(() => world.vipOwner() === "mn2", 5_000);
    expect(took).not.toBeNull();
    expect(took!).toBeGreaterThanOrEqual(world.settings.election.startupGraceMs);
  });

  it("a claim whose ARP probe straddles a long pause of the claimant probes again: no second holder", () => {
    // Found by the simulator: the standby's probe found nobody, then its agent froze; the old
    // holder came back and took the VIP; on waking the standby trusted the stale "nobody"
    // and claimed, while IP between the MNs was cut (ARP flowing) -- two holders.
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.cutLink({ vrrp: true });
    world.run(1_500);
    world.pause(holder);
    expect(world.runUntil(() => !world.holdsVip(holder), 2_000), world.trace()).not.toBeNull();
    expect(world.runUntil(() => world.role(standby) === "claiming", 2_000), world.trace()).not.toBeNull();
    world.pause(standby);
    world.run(500);
    world.resume(holder);
    world.run(1_500);
    expect(world.holdsVip(holder), world.trace()).toBe(true);
    world.resume(standby);
    world.run(2_000);
    expect(world.splitBrainAt, world.trace()).toEqual([]);
    expect(world.holdsVip(standby), world.trace()).toBe(false);
  });

  it("recovered node rejoins: nothing moves", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.crash(holder);
    world.run(3_000);
    expect(world.vipOwner()).toBe(standby);
    const changes = world.vipChanges.length;
    world.boot(holder);
    world.run(5_000);
    expect(world.vipOwner(), world.trace()).toBe(standby);
    expect(world.vipChanges.length).toBe(changes);
    expect(world.role(holder)).toBe("standby");
    expect(world.epoch(holder)).toBe(world.epoch(standby));
  });

  it("a node that wakes from a pause does not claim on the stale news it finds queued", () => {
    // Found by the simulator: frozen before either node held the VIP, mn1 woke to heartbeats
    // queued while it slept (its peer "standby", "alive"), claimed on that stale view while
    // mn2 had claimed meanwhile, and IP between the MNs was cut: two holders.
    const world = new PairWorld({ ...SIM_SETTINGS, seed: 5153 });
    world.boot("mn1");
    world.boot("mn2");
    world.run(450);
    world.pause("mn1");
    world.run(70);
    world.cutLink({ mode: "hold" });
    world.run(380);
    world.setCut("vrrp", "mn1", true);
    world.setCut("vrrp", "mn2", true);
    expect(world.role("mn2"), world.trace()).toBe("holder");
    world.resume("mn1");
    world.run(3_000);
    expect(world.splitBrainAt, world.trace()).toEqual([]);
    expect(world.vipOwner()).toBe("mn2");
  });

  it("a node rejoining with a higher persisted epoch than the holder's does not unseat it", () => {
    // Found by the simulator: each node claimed alone while the other was down, so the
    // returning node's epoch on disk was above the holder's; the holder heard the higher
    // epoch, stepped down and claimed again: a VIP gap caused by a recovering standby.
    const world = steadyPair();
    expect(world.vipOwner()).toBe("mn1");
    world.crash("mn1");
    world.run(3_000);
    world.killAgent("mn2");
    world.startAgent("mn2");
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe("mn2");
    world.crash("mn2");
    world.boot("mn1");
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe("mn1");
    expect(world.epoch("mn1")).toBeLessThan(world.persistedEpoch("mn2"));
    const changes = world.vipChanges.length;
    world.boot("mn2");
    world.run(3_000);
    expect(world.vipChanges.slice(changes), world.trace()).toEqual([]);
    expect(world.role("mn2")).toBe("standby");
    expect(world.epoch("mn1")).toBe(world.epoch("mn2"));
  });

  it("demote with a healthy peer: the VIP moves with no gap longer than the VRRP skew time", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const id = world.demote(holder);
    world.run(1_000);
    expect(world.requestResult(holder, id)).toMatchObject({ ok: true });
    expect(world.vipOwner()).toBe(otherNode(holder));
    expect(world.splitBrainAt).toEqual([]);
    const lastDrop = world.vipChanges.filter((c) => c.to === null).at(-1);
    const lastTake = world.vipChanges.at(-1)!;
    // The taker's Keepalived is BACKUP with its gate open: a priority-0 advert moves it after the skew time.
    if (lastDrop) expect(lastTake.at - lastDrop.at).toBeLessThanOrEqual(world.settings.keepalivedSkewMs + world.settings.stepMs);
  });

  it("demote without a healthy peer is refused with the reason, and nothing moves", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    world.setServices(otherNode(holder), false);
    world.run(500);
    const id = world.demote(holder);
    world.run(500);
    expect(world.requestResult(holder, id)).toEqual({ ok: false, message: expect.stringMatching(/no healthy peer.*not eligible.*service mn failed/) });
    expect(world.vipOwner()).toBe(holder);
  });

  it("demote on the standby is refused: it does not hold the VIP", () => {
    const world = steadyPair();
    const standby = otherNode(world.vipOwner());
    const id = world.demote(standby);
    expect(world.requestResult(standby, id)).toEqual({ ok: false, message: expect.stringMatching(/does not hold the VIP/) });
  });

  it("holder's service fails while the peer is unhealthy too: the holder keeps the VIP (nowhere to go)", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    world.setServices(otherNode(holder), false);
    world.run(300);
    world.setServices(holder, false);
    world.run(2_000);
    expect(world.vipOwner()).toBe(holder);
    world.setServices(otherNode(holder), true);
    world.run(2_000);
    expect(world.vipOwner(), world.trace()).toBe(otherNode(holder));
  });
});

describe("maintenance mode and stopped nodes", () => {
  it("maintenance on the holder, its critical service fails: no handoff, no move; off: the failed holder hands over once", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    const changesBefore = world.vipChanges.length;
    world.operatorMode(holder, { kind: "maintenance", on: true });
    world.run(300);
    world.setServices(holder, false);
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe(holder);
    expect(world.role(holder)).toBe("holder");
    expect(world.vipChanges.length, world.trace()).toBe(changesBefore);
    world.operatorMode(holder, { kind: "maintenance", on: false });
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe(standby);
    const moves = world.vipChanges.slice(changesBefore).filter((c) => c.to !== null);
    expect(moves.map((m) => m.to), world.trace()).toEqual([standby]);
    expect(world.splitBrainAt).toEqual([]);
  });

  it("maintenance on the standby while the holder dies: the standby claims nothing; off: it claims", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.operatorMode(standby, { kind: "maintenance", on: true });
    world.run(300);
    world.crash(holder);
    world.run(4_000);
    expect(world.vipOwner(), world.trace()).toBeNull();
    expect(world.role(standby)).toBe("standby");
    world.operatorMode(standby, { kind: "maintenance", on: false });
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe(standby);
  });

  it("a standby in maintenance refuses a failing holder's handoff: the holder keeps the VIP (held degraded)", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.operatorMode(standby, { kind: "maintenance", on: true });
    world.run(300);
    world.setServices(holder, false);
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe(holder);
    expect(world.splitBrainAt).toEqual([]);
  });

  it("operator demote is refused in maintenance, naming the way out", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    world.operatorMode(holder, { kind: "maintenance", on: true });
    const id = world.demote(holder);
    world.run(500);
    expect(world.requestResult(holder, id)).toEqual({ ok: false, message: expect.stringMatching(/maintenance mode.*mnha maintenance off/) });
    expect(world.vipOwner()).toBe(holder);
  });

  it("maintenance does not suspend the safety rule: a holder cut off from the peer and the gateway steps down", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    world.operatorMode(holder, { kind: "maintenance", on: true });
    world.operatorMode(otherNode(holder), { kind: "maintenance", on: true });
    world.setGateway(holder, false);
    world.cutLink({ vrrp: true });
    world.run(4_000);
    expect(world.holdsVip(holder), world.trace()).toBe(false);
  });

  it("a stopped holder with no healthy peer gives the VIP up (stop-node -stopvip); a stopped standby never claims", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.setServices(standby, false);
    world.run(500);
    world.operatorMode(holder, { kind: "node-stopped", on: true });
    world.run(2_000);
    expect(world.vipOwner(), world.trace()).toBeNull();
    world.setServices(standby, true);
    world.run(3_000);
    expect(world.vipOwner(), world.trace()).toBe(standby);
    world.operatorMode(holder, { kind: "node-stopped", on: false });
    world.crash(standby);
    world.run(4_000);
    expect(world.vipOwner(), world.trace()).toBe(holder);
  });

  it("a stopped node stays out: the holder dying leaves the VIP unowned rather than on the stopped node", () => {
    const world = steadyPair();
    const holder = world.vipOwner() as SimNode;
    const standby = otherNode(holder);
    world.operatorMode(standby, { kind: "node-stopped", on: true });
    world.run(300);
    world.crash(holder);
    world.run(4_000);
    expect(world.vipOwner(), world.trace()).toBeNull();
  });
});

describe("election core messages", () => {
  // The defaults a real config gets (the simulator's test checks they equal parseConfig's).
  const settings = { ...SIM_SETTINGS.election, self: "mn2", peer: "mn1", initialEpoch: 7 };
  const heartbeat = (epoch: number, role: "holder" | "standby", holder: string | null) => ({
    type: "heartbeat" as const,
    seq: 1,
    node: "mn1",
    epoch,
    holder,
    role,
    eligible: true,
    reasons: [],
    gatewayReachable: true,
    leaseRemainingMs: role === "holder" ? 600 : 0,
    vipPresent: role === "holder",
    keepalived: role === "holder" ? ("master" as const) : ("fault" as const),
    services: [],
  });
  const healthy = (core: ElectionCore, now: number) => {
    core.step(now, { kind: "services", healthy: true, reasons: [] });
    core.step(now, { kind: "gateway", reachable: true });
  };
  const kinds = (effects: ElectionEffect[]) => effects.map((e) => (e.kind === "event" ? `event:${e.type}` : e.kind));

  it("refuses a handoff offer from a stale epoch", () => {
    const core = new ElectionCore(settings, 0);
    healthy(core, 0);
    core.step(10, { kind: "peer-up" });
    core.step(10, { kind: "peer-message", message: heartbeat(7, "holder", "mn1") });
    const effects = core.step(20, { kind: "peer-message", message: { type: "handoff-offer", id: "x", epoch: 7, from: "mn1", to: "mn2", reason: "test" } });
    expect(effects).toContainEqual({ kind: "send", message: { type: "handoff-reject", id: "x", epoch: 7, reason: expect.stringContaining("stale epoch") } });
    expect(kinds(effects)).not.toContain("set-gate");
  });

  it("a heartbeat claiming the VIP at an older epoch does not unseat the holder", () => {
    const core = new ElectionCore({ ...settings, arpGuard: false, startupGraceMs: 0 }, 0);
    healthy(core, 0);
    core.step(1_000, { kind: "tick" });
    expect(core.snapshot(1_000).role).toBe("holder");
    const epoch = core.snapshot(1_000).epoch;
    core.step(1_010, { kind: "peer-up" });
    const effects = core.step(1_020, { kind: "peer-message", message: heartbeat(epoch - 1, "holder", "mn1") });
    expect(kinds(effects)).toContain("event:stale-message");
    expect(kinds(effects)).not.toContain("set-gate");
    expect(core.snapshot(1_020).role).toBe("holder");
  });

  it("a holder that hears a newer epoch steps down at once", () => {
    const core = new ElectionCore({ ...settings, arpGuard: false, startupGraceMs: 0 }, 0);
    healthy(core, 0);
    core.step(1_000, { kind: "tick" });
    const epoch = core.snapshot(1_000).epoch;
    core.step(1_010, { kind: "peer-up" });
    const effects = core.step(1_020, { kind: "peer-message", message: heartbeat(epoch + 1, "holder", "mn1") });
    expect(effects).toContainEqual({ kind: "set-gate", open: false });
    expect(effects).toContainEqual({ kind: "persist-epoch", epoch: epoch + 1 });
    expect(core.snapshot(1_020)).toMatchObject({ role: "standby", epoch: epoch + 1, holder: "mn1" });
  });

  it("a holder woken from a pause longer than its lease closes its gate before anything else", () => {
    const core = new ElectionCore({ ...settings, arpGuard: false, startupGraceMs: 0 }, 0);
    healthy(core, 0);
    core.step(1_000, { kind: "tick" });
    expect(core.snapshot(1_000).gateOpen).toBe(true);
    const effects = core.step(1_000 + settings.leaseMs + 50, { kind: "tick" });
    expect(effects[0]).toMatchObject({ kind: "event", type: "lease-expired" });
    expect(effects[1]).toEqual({ kind: "set-gate", open: false });
  });

  it("never reads a wall clock (or any clock): a jump cannot change a decision", () => {
    // Any clock read inside the core would throw here; time comes only from the inputs.
    const dateNow = vi.spyOn(Date, "now").mockImplementation(() => {
      throw new Error("the core read Date.now()");
    });
    const perfNow = vi.spyOn(performance, "now").mockImplementation(() => {
      throw new Error("the core read performance.now()");
    });
    try {
      const core = new ElectionCore({ ...settings, arpGuard: false, startupGraceMs: 0 }, 0);
      healthy(core, 0);
      core.step(1_000, { kind: "tick" });
      // It decided (claimed and renewed its lease) without looking at any clock.
      expect(core.snapshot(1_000)).toMatchObject({ role: "holder", gateOpen: true, leaseRemainingMs: settings.leaseMs });
      expect(dateNow).not.toHaveBeenCalled();
      expect(perfNow).not.toHaveBeenCalled();
    } finally {
      dateNow.mockRestore();
      perfNow.mockRestore();
    }
  });
});
