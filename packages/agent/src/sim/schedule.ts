/**
 * Fault schedules for the simulator: a seed becomes a random but bounded sequence of faults
 * over a window, followed by a heal (every fault over, both machines up, agents running).
 *
 * Two profiles:
 * - chaos: any fault, anywhere, overlapping freely (checked for safety where the docs
 *   promise it, liveness after the heal, causality and epochs);
 * - benign: only faults that must move nothing (standby failures, short holder pauses and
 *   check blips, link trouble while ARP flows, wall-clock jumps...): checked for "no flapping".
 */
import type { CutMode, LinkConditions, SimNode } from "./pair-world.js";
import { mulberry32 } from "./event-queue.js";

export type Direction = SimNode | "both";
export type Profile = "chaos" | "benign";

export type Fault =
  | { kind: "crash"; node: SimNode; at: number; until: number }
  | { kind: "kill-agent"; node: SimNode; at: number; until: number }
  | { kind: "stop-agent"; node: SimNode; at: number; until: number }
  | { kind: "pause"; node: SimNode; at: number; until: number }
  | { kind: "services"; node: SimNode; at: number; until: number; state: "failed" | "hung" }
  | { kind: "gateway-cut"; node: SimNode; at: number; until: number }
  | { kind: "gateway-down"; at: number; until: number }
  | { kind: "link-cut"; from: Direction; at: number; until: number; mode: CutMode }
  | { kind: "link-impair"; from: SimNode; at: number; until: number; conditions: LinkConditions }
  | { kind: "vrrp-cut"; from: Direction; at: number; until: number }
  | { kind: "arp-cut"; from: Direction; at: number; until: number }
  | { kind: "keepalived-restart"; node: SimNode; at: number; until: number }
  | { kind: "demote"; node: SimNode; at: number }
  | { kind: "wall-jump"; node: SimNode; at: number; deltaMs: number }
  // ---- adapter faults: what goes wrong around the core (the watchdog's business)
  | { kind: "keepalived-stuck"; node: SimNode; at: number; until: number }
  | { kind: "keepalived-refuses-start"; node: SimNode; at: number; until: number }
  | { kind: "lease-guard-gone"; node: SimNode; at: number }
  | { kind: "vip-removed"; node: SimNode; at: number }
  | { kind: "track-files-rewritten"; node: SimNode; at: number }
  | { kind: "second-agent"; node: SimNode; at: number };

export type FaultKind = Fault["kind"];

export interface Schedule {
  seed: number;
  profile: Profile;
  /** Clock rate error of each node (within ± half the drift bound, so their relative drift is within it). */
  drift: Record<SimNode, number>;
  bootAt: Record<SimNode, number>;
  /** Baseline one-way latency of the peer link. */
  latency: { minMs: number; maxMs: number };
  /** Sorted by start. */
  faults: Fault[];
  /** Every fault is over by now: the heal. */
  healAt: number;
  /** How long a handoff's giver takes to act on "ready" (a loaded machine); absent: at once. */
  releaseStallMs?: number;
}

export interface GenerateOptions {
  profile?: Profile;
  /** Length of the fault window (before the heal), drawn from [min, max] ms. */
  windowMs?: [number, number];
  /** The pair's drift bound (maxClockDrift); each node drifts within ± bound × 0.49. */
  maxClockDrift?: number;
  /** Faults per simulated second, drawn from [min, max]. */
  faultRate?: [number, number];
  /** Share of chaos schedules that also get adapter faults (default 0.3; 0: none). */
  adapterFaultShare?: number;
  /** Slow handoff release: each schedule's giver takes a stall drawn from [0, this] ms to act on "ready" (default 0: none). */
  releaseStallMaxMs?: number;
}

export const ADAPTER_FAULT_KINDS = ["keepalived-stuck", "keepalived-refuses-start", "lease-guard-gone", "vip-removed", "track-files-rewritten", "second-agent"] as const;

export function isAdapterFault(f: Fault): boolean {
  return (ADAPTER_FAULT_KINDS as readonly string[]).includes(f.kind);
}

export const DEFAULT_WINDOW_MS: [number, number] = [30_000, 120_000];

/** What the schedule of `seed` is: the same seed gives the same schedule, always. */
export function generateSchedule(seed: number, options: GenerateOptions = {}): Schedule {
  const rng = mulberry32(seed ^ 0x5eed5eed);
  const r = (min: number, max: number) => min + rng() * (max - min);
  const chance = (p: number) => rng() < p;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
  const node = (): SimNode => (chance(0.5) ? "mn1" : "mn2");
  const direction = (): Direction => (chance(0.5) ? "both" : node());

  const profile: Profile = options.profile ?? (chance(0.2) ? "benign" : "chaos");
  const [wMin, wMax] = options.windowMs ?? DEFAULT_WINDOW_MS;
  const windowMs = Math.round(r(wMin, wMax));
  const bound = (options.maxClockDrift ?? 0.01) * 0.49;
  const drift = { mn1: r(-bound, bound), mn2: r(-bound, bound) };
  // Benign runs start together so that mn1 (the lower name) is the holder the faults avoid.
  const bootAt = profile === "benign" || chance(0.5) ? { mn1: 0, mn2: 0 } : chance(0.5) ? { mn1: 0, mn2: Math.round(r(0, 3_000)) } : { mn1: Math.round(r(0, 3_000)), mn2: 0 };
  const minMs = r(0.2, 2);
  const latency = { minMs, maxMs: minMs + r(0, 5) };
  const [rateMin, rateMax] = options.faultRate ?? [0.05, 0.6];
  const count = Math.max(1, Math.round((windowMs / 1000) * r(rateMin, rateMax)));
  const start = profile === "benign" ? 3_000 : 0;

  const faults: Fault[] = [];
  const span = (at: number, min: number, max: number) => Math.min(windowMs, at + r(min, max));
  for (let i = 0; i < count; i++) {
    const at = r(start, windowMs);
    const group = profile === "benign" ? benignFault(at) : chaosFault(at);
    faults.push(...group);
    // Faults that land together find the races: now and then, another one within 20 ms.
    if (profile === "chaos" && chance(0.15)) faults.push(...chaosFault(Math.min(windowMs, at + r(0, 20))));
  }
  if (profile === "chaos") faults.push(...adapterFaults(seed, windowMs, options.adapterFaultShare ?? 0.3));
  faults.sort((a, b) => a.at - b.at);
  // Its own stream, so that seeds without the option draw the very same schedules.
  const releaseStall = options.releaseStallMaxMs ? { releaseStallMs: Math.round(mulberry32(seed ^ 0x51a11)() * options.releaseStallMaxMs) } : {};
  return { seed, profile, drift, bootAt, latency, faults: profile === "benign" ? spaceHolderBlips(separateArpFromLink(faults)) : faults, healAt: windowMs, ...releaseStall };

  function impairment(): LinkConditions {
    const minLatencyMs = r(0, 50);
    return {
      minLatencyMs,
      maxLatencyMs: minLatencyMs + (chance(0.3) ? r(100, 800) : r(0, 60)),
      lossRate: chance(0.5) ? r(0, 0.5) : 0,
      duplicateRate: chance(0.3) ? r(0, 0.3) : 0,
      reorder: chance(0.5),
    };
  }

  function chaosFault(at: number): Fault[] {
    const kind = pick(CHAOS_KINDS);
    switch (kind) {
      case "crash":
        return [{ kind, node: node(), at, until: span(at, 300, 15_000) }];
      case "kill-agent":
      case "stop-agent":
        return [{ kind, node: node(), at, until: span(at, 100, 10_000) }];
      case "pause":
        // Shorter than the lease, longer than it, and longer than the link's idle timeout.
        return [{ kind, node: node(), at, until: span(at, ...pick<[number, number]>([[20, 550], [550, 3_000], [3_000, 9_000]])) }];
      case "services": {
        const n = node();
        if (chance(0.3)) return flap(n, at);
        return [{ kind, node: n, at, until: span(at, 50, 10_000), state: chance(0.3) ? "hung" : "failed" }];
      }
      case "gateway-cut":
        return [{ kind, node: node(), at, until: span(at, 100, 10_000) }];
      case "gateway-down":
        return [{ kind, at, until: span(at, 300, 8_000) }];
      case "link-cut":
        return [{ kind, from: direction(), at, until: span(at, 50, 10_000), mode: chance(0.5) ? "drop" : "hold" }];
      case "link-impair":
        return [{ kind, from: node(), at, until: span(at, 300, 15_000), conditions: impairment() }];
      case "vrrp-cut":
        return [{ kind, from: direction(), at, until: span(at, 50, 10_000) }];
      case "ip-cut": {
        // All IP between the MNs (agent link and VRRP), ARP still flowing.
        const from = direction();
        const until = span(at, 100, 10_000);
        return [
          { kind: "link-cut", from, at, until, mode: chance(0.5) ? "drop" : "hold" },
          { kind: "vrrp-cut", from, at, until },
        ];
      }
      case "arp-cut":
        // Rarer: with the agent link down too, no one-holder promise is made (docs/protocol.md).
        return chance(0.4) ? [{ kind, from: direction(), at, until: span(at, 50, 6_000) }] : [{ kind: "demote", node: node(), at }];
      case "keepalived-restart":
        return [{ kind, node: node(), at, until: span(at, 30, 1_500) }];
      case "demote":
        return [{ kind, node: node(), at }];
      case "wall-jump":
        return [{ kind, node: node(), at, deltaMs: (chance(0.5) ? 1 : -1) * r(1_000, 86_400_000) }];
    }
  }

  function flap(n: SimNode, at: number): Fault[] {
    const pulses: Fault[] = [];
    let t = at;
    for (let k = Math.floor(r(2, 8)); k > 0 && t < windowMs; k--) {
      const until = span(t, 20, 600);
      pulses.push({ kind: "services", node: n, at: t, until, state: "failed" });
      t = until + r(20, 600);
    }
    return pulses;
  }

  /** Faults that must not move the VIP from mn1 (the holder) to mn2. */
  function benignFault(at: number): Fault[] {
    const kind = pick(BENIGN_KINDS);
    switch (kind) {
      case "standby-crash":
        return [{ kind: "crash", node: "mn2", at, until: span(at, 300, 15_000) }];
      case "standby-kill":
        return [{ kind: "kill-agent", node: "mn2", at, until: span(at, 100, 10_000) }];
      case "standby-stop":
        return [{ kind: "stop-agent", node: "mn2", at, until: span(at, 100, 10_000) }];
      case "standby-pause":
        return [{ kind: "pause", node: "mn2", at, until: span(at, 20, 9_000) }];
      case "standby-services":
        return [{ kind: "services", node: "mn2", at, until: span(at, 50, 10_000), state: chance(0.3) ? "hung" : "failed" }];
      case "standby-gateway":
        return [{ kind: "gateway-cut", node: "mn2", at, until: span(at, 100, 10_000) }];
      case "standby-keepalived":
        return [{ kind: "keepalived-restart", node: "mn2", at, until: span(at, 30, 1_500) }];
      case "holder-short-pause":
        // Well under the lease (600 ms) less a tick: the lease guard never runs out.
        return [{ kind: "pause", node: "mn1", at, until: span(at, 20, 380) }];
      case "holder-check-blip":
        // Shorter than one check interval: at most one failed check, fewer than `fall`.
        return [{ kind: "services", node: "mn1", at, until: span(at, 10, 150), state: "failed" }];
      case "holder-keepalived":
        return [{ kind: "keepalived-restart", node: "mn1", at, until: span(at, 30, 1_500) }];
      case "link-cut":
        return [{ kind, from: direction(), at, until: span(at, 50, 10_000), mode: chance(0.5) ? "drop" : "hold" }];
      case "ip-cut": {
        const from = direction();
        const until = span(at, 100, 10_000);
        return [
          { kind: "link-cut", from, at, until, mode: chance(0.5) ? "drop" : "hold" },
          { kind: "vrrp-cut", from, at, until },
        ];
      }
      case "link-impair":
        return [{ kind, from: node(), at, until: span(at, 300, 15_000), conditions: impairment() }];
      case "vrrp-cut":
        return [{ kind, from: direction(), at, until: span(at, 50, 10_000) }];
      case "arp-cut":
        return [{ kind, from: direction(), at, until: span(at, 50, 6_000) }];
      case "wall-jump":
        return [{ kind, node: node(), at, deltaMs: (chance(0.5) ? 1 : -1) * r(1_000, 86_400_000) }];
    }
  }
}

const CHAOS_KINDS = [
  "crash",
  "kill-agent",
  "stop-agent",
  "pause",
  "pause",
  "services",
  "services",
  "gateway-cut",
  "gateway-down",
  "link-cut",
  "link-impair",
  "vrrp-cut",
  "ip-cut",
  "ip-cut",
  "arp-cut",
  "keepalived-restart",
  "demote",
  "demote",
  "wall-jump",
] as const;

const BENIGN_KINDS = [
  "standby-crash",
  "standby-kill",
  "standby-stop",
  "standby-pause",
  "standby-services",
  "standby-gateway",
  "standby-keepalived",
  "holder-short-pause",
  "holder-check-blip",
  "holder-keepalived",
  "link-cut",
  "ip-cut",
  "link-impair",
  "vrrp-cut",
  "arp-cut",
  "wall-jump",
] as const;

/**
 * Adapter faults come from their own random stream, so that a seed's other faults stay what
 * they were before adapter faults existed (pinned seeds keep their meaning).
 */
function adapterFaults(seed: number, windowMs: number, share: number): Fault[] {
  const rng = mulberry32(seed ^ 0x0ada9f17);
  if (rng() >= share) return [];
  const faults: Fault[] = [];
  for (let k = 1 + Math.floor(rng() * 3); k > 0; k--) {
    const kind = ADAPTER_FAULT_KINDS[Math.floor(rng() * ADAPTER_FAULT_KINDS.length)] as (typeof ADAPTER_FAULT_KINDS)[number];
    const node: SimNode = rng() < 0.5 ? "mn1" : "mn2";
    const at = rng() * windowMs;
    if (kind === "keepalived-stuck" || kind === "keepalived-refuses-start") faults.push({ kind, node, at, until: Math.min(windowMs, at + 500 + rng() * 15_000) });
    else faults.push({ kind, node, at });
  }
  return faults;
}

/**
 * Benign runs keep the ARP guard able to see the holder whenever the standby cannot hear it:
 * ARP cuts and Keepalived restarts on the holder (its VIP briefly gone) are dropped when they
 * come near anything that can make the standby lose its peer: link trouble, or the standby
 * paused, killed, stopped or crashed (it reconnects with a backoff), or the holder paused. Near: within the time a
 * lost peer's lease takes to run out and a probe to be retried, or a reconnect, either side.
 */
function separateArpFromLink(faults: Fault[]): Fault[] {
  // A holder pause loses the peer too when it outlasts peerLossMs (short pauses go up to
  // 380 ms): with its VIP down (Keepalived restarting) or unseen (ARP cut), the standby then
  // rightly claims, so those are not benign together.
  const peerLosers = faults.filter((f) => isLinkFault(f) || (["pause", "kill-agent", "stop-agent", "crash"].includes(f.kind) && "node" in f && f.node === "mn2") || (f.kind === "pause" && f.node === "mn1"));
  const margin = 3_000;
  const near = (f: Fault) => peerLosers.some((l) => l.at - margin < faultEnd(f) && f.at < faultEnd(l) + margin);
  return faults.filter((f) => !((f.kind === "arp-cut" || (f.kind === "keepalived-restart" && f.node === "mn1")) && near(f)));
}

/**
 * One check blip fails at most one check; two blips a check interval apart fail two in a
 * row, which is a real failure (fall = 2). Benign runs keep the holder's blips and short
 * pauses apart: a second one within 1.5 s of the last is dropped.
 */
function spaceHolderBlips(faults: Fault[]): Fault[] {
  let lastEnd = -Infinity;
  return faults.filter((f) => {
    if ((f.kind !== "services" && f.kind !== "pause") || f.node !== "mn1") return true;
    if (f.at < lastEnd + 1_500) return false;
    lastEnd = f.until;
    return true;
  });
}

export function isLinkFault(f: Fault): f is Extract<Fault, { kind: "link-cut" | "link-impair" }> {
  return f.kind === "link-cut" || f.kind === "link-impair";
}

export function faultEnd(f: Fault): number {
  return "until" in f ? f.until : f.at;
}

/** One line per fault, for traces. */
export function describeSchedule(s: Schedule): string {
  const lines = [
    `seed ${s.seed} (${s.profile}): drift mn1 ${(s.drift.mn1 * 100).toFixed(3)} %, mn2 ${(s.drift.mn2 * 100).toFixed(3)} %; boot mn1 @${s.bootAt.mn1} mn2 @${s.bootAt.mn2}; link ${s.latency.minMs.toFixed(1)}-${s.latency.maxMs.toFixed(1)} ms; heal @${s.healAt} ms${s.releaseStallMs ? `; handoff release stalls ${s.releaseStallMs} ms` : ""}`,
  ];
  for (const f of s.faults) lines.push(`  ${describeFault(f)}`);
  return lines.join("\n");
}

export function describeFault(f: Fault): string {
  const when = "until" in f ? `${f.at.toFixed(1)}..${f.until.toFixed(1)} ms` : `${f.at.toFixed(1)} ms`;
  switch (f.kind) {
    case "services":
      return `${when}  services ${f.state} on ${f.node}`;
    case "gateway-down":
      return `${when}  gateway down`;
    case "link-cut":
      return `${when}  agent link cut from ${f.from} (${f.mode})`;
    case "link-impair": {
      const c = f.conditions;
      return `${when}  agent link from ${f.from} impaired: ${c.minLatencyMs.toFixed(0)}-${c.maxLatencyMs.toFixed(0)} ms, loss ${c.lossRate.toFixed(2)}, dup ${c.duplicateRate.toFixed(2)}${c.reorder ? ", reordering" : ""}`;
    }
    case "vrrp-cut":
    case "arp-cut":
      return `${when}  ${f.kind} from ${f.from}`;
    case "wall-jump":
      return `${when}  wall clock of ${f.node} jumps ${Math.round(f.deltaMs)} ms`;
    default:
      return `${when}  ${f.kind} ${f.node}`;
  }
}
