/**
 * The settings the two nodes of a pair must share, compared over the peer link.
 *
 * Each node reads its own config file, so a typo on one node (the VIP's prefix, the gateway,
 * a timing copied from an old file) went unnoticed until the day the VIP moved: the other node
 * then brought up another address, or waited on other timings than the ones the election's
 * safety argument assumes both use. On link up (peer protocol v5 on) each node sends these
 * settings by name (@mnha/protocol `pair-settings`); each compares the names both sent and
 * says any difference in status and in the audit. It does not decide which node is right.
 * No IO here.
 */
import type { MnhaConfig } from "@mnha/shared";
import { PAIR_SETTINGS_MIN_PROTOCOL_VERSION, type PairSettings } from "@mnha/protocol";

/** One setting that is not the same on both nodes. */
export interface SettingDifference {
  name: string;
  here: string;
  peer: string;
}

export interface PairSettingsStatus {
  /** False until the peer's settings came (its agent is older than protocol v5, or the link is not up). */
  compared: boolean;
  differences: SettingDifference[];
}

/** The shared settings of `config`, by the names the config file uses. */
export function pairSettingsOf(config: MnhaConfig): Record<string, string> {
  const t = config.timings;
  const k = config.keepalived;
  const w = config.witness;
  return {
    vip: `${config.vip.address}/${config.vip.prefix}`,
    "gateway.address": config.gateway.address,
    "timings.heartbeatIntervalMs": String(t.heartbeatIntervalMs),
    "timings.heartbeatMisses": String(t.heartbeatMisses),
    "timings.leaseMs": String(t.leaseMs),
    "timings.takeoverMarginMs": String(t.takeoverMarginMs),
    "timings.maxClockDrift": String(t.maxClockDrift),
    "timings.handoffTimeoutMs": String(t.handoffTimeoutMs),
    "keepalived.virtualRouterId": String(k.virtualRouterId),
    "keepalived.advertIntMs": String(k.advertIntMs),
    "keepalived.downTimerAdverts": String(k.downTimerAdverts),
    "arpGuard.enabled": String(config.arpGuard.enabled),
    witness: w ? `${w.address}:${w.port}, leaseMs ${w.leaseMs}` : "none",
    "db.enabled": String(config.db.enabled),
    // Both MNs run the same stack: a critical service missing on one is a config slip.
    "services.critical": config.services
      .filter((s) => s.critical)
      .map((s) => s.name)
      .sort()
      .join(","),
  };
}

/** Names both sides sent whose values differ, in this node's order. */
export function compareSettings(here: Record<string, string>, peer: Record<string, string>): SettingDifference[] {
  const differences: SettingDifference[] = [];
  for (const [name, value] of Object.entries(here)) {
    const theirs = peer[name];
    if (theirs !== undefined && theirs !== value) differences.push({ name, here: value, peer: theirs });
  }
  return differences;
}

/** What the operator does about a difference, in status and in the audit. */
export const PAIR_SETTINGS_FIX = "the two nodes must agree: fix the config file of the wrong node, then restart its agent";

/**
 * One line for status and the audit: "vip 10.0.0.100/24 here, 10.0.0.100/25 on mn2; ...".
 * `shorten` cuts each value (the peer's are its own words, shortened like every text a peer sends).
 */
export function describeDifferences(differences: SettingDifference[], peer: string, shorten: (value: string) => string = (v) => v): string {
  return differences.map((d) => `${d.name} ${shorten(d.here || "(none)")} here, ${shorten(d.peer || "(none)")} on ${peer}`).join("; ");
}

/** What this node sends and what it concluded from the peer's settings, per link. */
export class PairSettingsCheck {
  private readonly mine: Record<string, string>;
  /** Against the peer's settings on the current link (null: none came on it yet). */
  private differences: SettingDifference[] | null = null;
  private lastVerdict: string | null = null;

  constructor(config: MnhaConfig) {
    this.mine = pairSettingsOf(config);
  }

  /** The message to send on a link that came up at `version`; null for an older peer. */
  onLinkUp(version: number): PairSettings | null {
    this.differences = null;
    return version >= PAIR_SETTINGS_MIN_PROTOCOL_VERSION ? { type: "pair-settings", settings: { ...this.mine } } : null;
  }

  onLinkDown(): void {
    this.differences = null;
  }

  /**
   * The peer's settings arrived. Returns what to say in the audit: the differences when they
   * are new (first link, or changed since the last comparison), "agree" when an earlier
   * difference is gone, null when nothing changed.
   */
  onPeerSettings(message: PairSettings): { differences: SettingDifference[] } | { agree: true } | null {
    const differences = compareSettings(this.mine, message.settings);
    this.differences = differences;
    const verdict = JSON.stringify(differences);
    const previous = this.lastVerdict;
    this.lastVerdict = verdict;
    if (verdict === previous) return null;
    if (differences.length > 0) return { differences };
    return previous !== null ? { agree: true } : null;
  }

  status(): PairSettingsStatus {
    return this.differences === null ? { compared: false, differences: [] } : { compared: true, differences: this.differences };
  }
}
