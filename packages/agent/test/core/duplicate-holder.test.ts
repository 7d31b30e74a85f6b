import { describe, expect, it } from "vitest";
import { ElectionCore, type ElectionEffect } from "../../src/core/election.js";
import { SIM_SETTINGS } from "../../src/sim/runner.js";

/**
 * Holder-side duplicate address detection: two holders that cannot talk (peer link cut while
 * ARP flows, both started at once) settle it by MAC, which both see. The lower MAC keeps
 * the VIP; the higher releases at once and goes back to the standby rules.
 */
const LOW = "02:4d:4e:48:41:0b";
const HIGH = "02:4d:4e:48:41:0c";
const kinds = (effects: ElectionEffect[]) => effects.map((e) => (e.kind === "event" ? `event:${e.type}` : e.kind));

/** A core for mn2 that claimed the VIP alone (its peer never heard): the blind-claim case. */
function holderAlone(): ElectionCore {
  const core = new ElectionCore({ ...SIM_SETTINGS.election, self: "mn2", peer: "mn1", initialEpoch: 3, startupGraceMs: 0 }, 0);
  core.step(0, { kind: "services", healthy: true, reasons: [] });
  core.step(0, { kind: "gateway", reachable: true });
  const claim = core.step(1_000, { kind: "tick" });
  const probe = claim.find((e) => e.kind === "arp-probe");
  expect(probe, "the standby probes before claiming").toBeDefined();
  core.step(1_200, { kind: "arp-result", probeId: (probe as { probeId: number }).probeId, occupied: false, detail: "nobody" });
  expect(core.snapshot(1_200)).toMatchObject({ role: "holder", gateOpen: true, epoch: 4 });
  return core;
}

describe("duplicate address detection on the holder", () => {
  it("nobody else answers: nothing happens", () => {
    const core = holderAlone();
    const effects = core.step(1_300, { kind: "duplicate-check", ownMac: LOW, otherMacs: [], detail: "no answer" });
    expect(effects).toEqual([]);
    expect(core.snapshot(1_300).role).toBe("holder");
  });

  it("a higher MAC also answers: the lower keeps the VIP, once reported", () => {
    const core = holderAlone();
    const first = core.step(1_300, { kind: "duplicate-check", ownMac: LOW, otherMacs: [HIGH], detail: "answered by both" });
    expect(kinds(first)).toEqual(["event:duplicate-found"]);
    expect(first[0]).toMatchObject({ fields: { kept: true, otherMacs: [HIGH] } });
    expect(core.snapshot(1_300)).toMatchObject({ role: "holder", gateOpen: true });
    // Still there: no second event, nothing changes.
    core.step(1_500, { kind: "tick" });
    expect(core.step(1_800, { kind: "duplicate-check", ownMac: LOW, otherMacs: [HIGH], detail: "again" })).toEqual([]);
  });

  it("the other holder leaves: the keeper announces the VIP again (clients may point at the other MAC)", () => {
    const core = holderAlone();
    core.step(1_300, { kind: "duplicate-check", ownMac: LOW, otherMacs: [HIGH], detail: "both" });
    core.step(1_500, { kind: "tick" });
    const cleared = core.step(1_800, { kind: "duplicate-check", ownMac: LOW, otherMacs: [], detail: "only us" });
    expect(kinds(cleared)).toEqual(["announce-vip", "event:duplicate-cleared"]);
    core.step(2_000, { kind: "tick" });
    expect(core.step(2_300, { kind: "duplicate-check", ownMac: LOW, otherMacs: [], detail: "only us" })).toEqual([]);
  });

  it("a lower MAC also answers: this holder closes its gate at once and becomes a standby", () => {
    const core = holderAlone();
    const effects = core.step(1_300, { kind: "duplicate-check", ownMac: HIGH, otherMacs: [LOW.toUpperCase()], detail: "both" });
    expect(effects[0]).toMatchObject({ kind: "event", type: "duplicate-found", fields: { kept: false } });
    expect(effects).toContainEqual({ kind: "set-gate", open: false });
    // The gate closes before anything is said to anyone.
    expect(kinds(effects).indexOf("set-gate")).toBeLessThan(kinds(effects).indexOf("heartbeat-now"));
    expect(kinds(effects)).toContain("event:duplicate-yielded");
    expect(core.snapshot(1_300)).toMatchObject({ role: "standby", gateOpen: false, holder: null });
  });

  it("after yielding it does not claim again while the other holder answers (ARP guard)", () => {
    const core = holderAlone();
    core.step(1_300, { kind: "duplicate-check", ownMac: HIGH, otherMacs: [LOW], detail: "both" });
    // Within the retry interval nothing is tried.
    expect(kinds(core.step(1_400, { kind: "tick" }))).not.toContain("arp-probe");
    const retry = core.step(1_300 + SIM_SETTINGS.election.arpRetryMs, { kind: "tick" });
    const probe = retry.find((e) => e.kind === "arp-probe") as { probeId: number } | undefined;
    expect(probe, "probes before any claim").toBeDefined();
    const blocked = core.step(1_900, { kind: "arp-result", probeId: probe!.probeId, occupied: true, detail: `answered by ${LOW}` });
    expect(kinds(blocked)).toContain("event:claim-blocked");
    expect(core.snapshot(1_900)).toMatchObject({ role: "standby", gateOpen: false });
  });

  it("a standby ignores duplicate checks (only a holder acts on them)", () => {
    const core = new ElectionCore({ ...SIM_SETTINGS.election, self: "mn2", peer: "mn1", initialEpoch: 3 }, 0);
    expect(core.step(100, { kind: "duplicate-check", ownMac: HIGH, otherMacs: [LOW], detail: "x" })).toEqual([]);
    expect(core.snapshot(100).gateOpen).toBe(false);
  });

  it("its own MAC in the answers is not a duplicate", () => {
    const core = holderAlone();
    expect(core.step(1_300, { kind: "duplicate-check", ownMac: HIGH, otherMacs: [HIGH], detail: "x" })).toEqual([]);
    expect(core.snapshot(1_300).role).toBe("holder");
  });
});
