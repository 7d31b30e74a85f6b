import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionEffect, type ElectionSettings } from "../../src/core/election.js";

/** The witness rules, on one core fed by hand (no world): what it asks for and when its gate moves. */
const base: ElectionSettings = {
  self: "mn1",
  peer: "mn2",
  heartbeatIntervalMs: 100,
  peerLossMs: 300,
  leaseMs: 600,
  takeoverMarginMs: 150,
  maxClockDrift: 0.01,
  startupGraceMs: 756,
  handoffTimeoutMs: 1_500,
  arpGuard: false,
  arpRetryMs: 500,
  initialEpoch: 0,
};

function healthy(core: ElectionCore, now: number): ElectionEffect[] {
  return [...core.step(now, { kind: "services", healthy: true, reasons: [] }), ...core.step(now, { kind: "gateway", reachable: true })];
}

function request(effects: ElectionEffect[]): Extract<ElectionEffect, { kind: "witness-request" }> | undefined {
  return effects.find((e): e is Extract<ElectionEffect, { kind: "witness-request" }> => e.kind === "witness-request");
}

function gate(effects: ElectionEffect[]): boolean | undefined {
  return effects.filter((e): e is Extract<ElectionEffect, { kind: "set-gate" }> => e.kind === "set-gate").at(-1)?.open;
}

/** A core alone after start-up (peer never heard), healthy, past the grace: it wants to claim. */
function claimingAlone(witness = true): { core: ElectionCore; effects: ElectionEffect[] } {
  const core = new ElectionCore({ ...base, ...(witness ? { witness: { leaseMs: 2_000 } } : {}) }, 0);
  healthy(core, 0);
  const effects = core.step(1_000, { kind: "tick" });
  return { core, effects };
}

describe("election core with a witness", () => {
  it("without witness settings nothing changes: a lone node claims with no witness effect", () => {
    const { core, effects } = claimingAlone(false);
    expect(effects.some((e) => e.kind === "witness-request" || e.kind === "witness-release")).toBe(false);
    expect(gate(effects)).toBe(true);
    expect(core.snapshot(1_000).witness).toBeUndefined();
  });

  it("a claim asks the witness and opens the gate only with its grant", () => {
    const { core, effects } = claimingAlone();
    const ask = request(effects);
    expect(ask).toMatchObject({ epoch: 1, leaseMs: 2_000 });
    expect(gate(effects)).toBeUndefined();
    expect(core.snapshot(1_000).role).not.toBe("holder");
    const granted = core.step(1_005, { kind: "witness-grant", requestId: ask!.requestId, granted: true, holder: "mn1", holderEpoch: 1, remainingMs: 2_000, validMs: 2_000 });
    expect(gate(granted)).toBe(true);
    expect(core.snapshot(1_005)).toMatchObject({ role: "holder", epoch: 1, witness: { grantHeld: true, holder: "mn1" } });
  });

  it("a denied claim ends, and no gate opens", () => {
    const { core, effects } = claimingAlone();
    const ask = request(effects)!;
    const denied = core.step(1_005, { kind: "witness-grant", requestId: ask.requestId, granted: false, holder: "mn2", holderEpoch: 3, remainingMs: 1_500, validMs: 0 });
    expect(gate(denied)).toBeUndefined();
    expect(denied.some((e) => e.kind === "event" && e.type === "witness-denied")).toBe(true);
    expect(core.snapshot(1_005)).toMatchObject({ role: "standby", epoch: 0, gateOpen: false, witness: { holder: "mn2", grantHeld: false } });
    // An unreachable witness is no grant either.
    const next = request(core.step(1_600, { kind: "tick" }))!;
    const lost = core.step(2_100, { kind: "witness-lost", requestId: next.requestId, reason: "no answer within 500 ms" });
    expect(gate(lost)).toBeUndefined();
    expect(core.snapshot(2_100).gateOpen).toBe(false);
  });

  it("a holder whose grant lapsed keeps the VIP while it hears its peer, and gives it up when it loses the peer too", () => {
    const { core, effects } = claimingAlone();
    const ask = request(effects)!;
    core.step(1_005, { kind: "witness-grant", requestId: ask.requestId, granted: true, holder: "mn1", holderEpoch: 1, remainingMs: 2_000, validMs: 2_000 });
    // The peer comes up and is heard every tick; the witness answers nothing from now on.
    core.step(1_010, { kind: "peer-up" });
    let now = 1_010;
    const heartbeat = (at: number) =>
      core.step(at, { kind: "peer-message", message: { type: "heartbeat", seq: at, node: "mn2", epoch: 1, holder: "mn1", role: "standby", eligible: true, reasons: [], leaseRemainingMs: 0, gatewayReachable: true, vipPresent: false, keepalived: "backup", services: [] } });
    const lapsedAt = 1_000 + 2_000 * 0.99 - 600;
    for (; now < lapsedAt + 1_000; now += 100) {
      heartbeat(now);
      const tick = core.step(now + 1, { kind: "tick" });
      const r = request(tick);
      if (r) core.step(now + 2, { kind: "witness-lost", requestId: r.requestId, reason: "witness down" });
    }
    expect(core.snapshot(now)).toMatchObject({ role: "holder", gateOpen: true, witness: { grantHeld: false } });
    // Now the peer goes quiet too: the gate closes once the peer is lost.
    const after = core.step(now + 350, { kind: "tick" });
    expect(gate(after)).toBe(false);
    expect(core.snapshot(now + 350)).toMatchObject({ role: "standby", gateOpen: false });
  });

  it("a holder alone gives the VIP up one agent lease before its grant ends, and tells the witness", () => {
    const { core, effects } = claimingAlone();
    const ask = request(effects)!;
    core.step(1_005, { kind: "witness-grant", requestId: ask.requestId, granted: true, holder: "mn1", holderEpoch: 1, remainingMs: 2_000, validMs: 2_000 });
    const lapsedAt = 1_000 + 2_000 * 0.99 - 600;
    // Ticks go on (the agent lease is renewed); the witness answers nothing.
    for (let now = 1_100; now < lapsedAt; now += 100) {
      const r = request(core.step(now, { kind: "tick" }));
      if (r) core.step(now + 1, { kind: "witness-lost", requestId: r.requestId, reason: "witness unreachable" });
    }
    expect(core.snapshot(lapsedAt - 1).gateOpen).toBe(true);
    expect(core.nextWakeAt(lapsedAt - 50)).toBeLessThanOrEqual(lapsedAt);
    const at = core.step(lapsedAt, { kind: "wake" });
    expect(gate(at)).toBe(false);
    // The grant was never renewed: the release still tells the witness at once.
    expect(at.some((e) => e.kind === "witness-release")).toBe(true);
    expect(at.some((e) => e.kind === "event" && e.type === "stepped-down")).toBe(true);
  });
});
