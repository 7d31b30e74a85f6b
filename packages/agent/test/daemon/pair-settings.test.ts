/**
 * The settings both nodes must share: what is compared, what a difference says, and when the
 * audit hears of it (once per new verdict, not once per link up).
 */
import { describe, expect, it } from "vitest";
import { PAIR_SETTINGS_MIN_PROTOCOL_VERSION, PairSettingsSchema } from "@mnha/protocol";
import { PairSettingsCheck, compareSettings, describeDifferences, pairSettingsOf } from "../../src/daemon/pair-settings.js";
import { loadedConfig } from "./in-memory.js";

const config = (overrides: Parameters<typeof loadedConfig>[0] = {}) => loadedConfig(overrides).config;

describe("pair settings", () => {
  it("names the VIP with its prefix, the gateway, the election's timings, Keepalived's router, the witness, the database and the critical services; valid on the wire", () => {
    const settings = pairSettingsOf(config());
    expect(Object.keys(settings)).toEqual([
      "vip",
      "gateway.address",
      "timings.heartbeatIntervalMs",
      "timings.heartbeatMisses",
      "timings.leaseMs",
      "timings.takeoverMarginMs",
      "timings.maxClockDrift",
      "timings.handoffTimeoutMs",
      "keepalived.virtualRouterId",
      "keepalived.advertIntMs",
      "keepalived.downTimerAdverts",
      "arpGuard.enabled",
      "witness",
      "db.enabled",
      "services.critical",
    ]);
    expect(settings["vip"]).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    expect(PairSettingsSchema.safeParse({ type: "pair-settings", settings }).success).toBe(true);
  });

  it("compares only the names both sent; a difference names the setting and both values", () => {
    const here = { vip: "10.0.0.100/24", "timings.leaseMs": "600", "only.here": "x" };
    const peer = { vip: "10.0.0.100/25", "timings.leaseMs": "600", "only.there": "y" };
    const differences = compareSettings(here, peer);
    expect(differences).toEqual([{ name: "vip", here: "10.0.0.100/24", peer: "10.0.0.100/25" }]);
    expect(describeDifferences(differences, "mn2")).toBe("vip 10.0.0.100/24 here, 10.0.0.100/25 on mn2");
    expect(describeDifferences([{ name: "services.critical", here: "mn,ui", peer: "" }], "mn2")).toBe("services.critical mn,ui here, (none) on mn2");
  });

  it("is sent only on a link of protocol v5 on; says a difference once, says nothing for the same again, and says when they agree again", () => {
    const check = new PairSettingsCheck(config());
    expect(check.onLinkUp(PAIR_SETTINGS_MIN_PROTOCOL_VERSION - 1)).toBeNull();
    expect(check.status()).toEqual({ compared: false, differences: [] });
    const sent = check.onLinkUp(PAIR_SETTINGS_MIN_PROTOCOL_VERSION);
    expect(sent?.type).toBe("pair-settings");
    const mine = sent?.settings ?? {};

    // The same settings on the first link: nothing to say.
    expect(check.onPeerSettings({ type: "pair-settings", settings: { ...mine } })).toBeNull();
    expect(check.status()).toEqual({ compared: true, differences: [] });

    const other = { ...mine, "timings.leaseMs": "900" };
    expect(check.onPeerSettings({ type: "pair-settings", settings: other })).toEqual({ differences: [{ name: "timings.leaseMs", here: mine["timings.leaseMs"], peer: "900" }] });
    // The link comes back with the same difference: not said again.
    check.onLinkDown();
    expect(check.status().compared).toBe(false);
    check.onLinkUp(PAIR_SETTINGS_MIN_PROTOCOL_VERSION);
    expect(check.onPeerSettings({ type: "pair-settings", settings: other })).toBeNull();
    expect(check.status().differences).toHaveLength(1);
    // Fixed on the peer.
    expect(check.onPeerSettings({ type: "pair-settings", settings: { ...mine } })).toEqual({ agree: true });
    expect(check.status()).toEqual({ compared: true, differences: [] });
  });
});
