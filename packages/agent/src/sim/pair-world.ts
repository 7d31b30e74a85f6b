/**
 * A simulated world for two election cores: their peer link, their gateways, their ARP
 * guard and a model of Keepalived. Pure and deterministic (time is a number the world
 * advances; randomness comes from a seeded generator), so scenario tests and the
 * simulator can run thousands of schedules in seconds against the REAL election core.
 *
 * The Keepalived model is what matters for safety:
 * - a node is *allowed* when its machine is up, its gate is open and its lease is fresh
 *   (the agent renewed the lease guard within leaseMs);
 * - an allowed node takes the VIP after the VRRP master-down timer, unless it hears the
 *   current VIP owner's adverts (VRRP flows between the nodes and the owner is allowed);
 * - an owner that stops being allowed drops the VIP at once, and a waiting allowed peer
 *   that hears it leave (priority-0 advert) takes over immediately.
 */
import type { LinkMessage } from "@mnha/protocol";
import { ElectionCore, type ElectionEffect, type ElectionSettings } from "../core/election.js";

export const SIM_NODES = ["mn1", "mn2"] as const;
export type SimNode = (typeof SIM_NODES)[number];

export interface WorldSettings {
  election: Omit<ElectionSettings, "self" | "peer" | "initialEpoch">;
  /** VRRP master-down timer (3 adverts + skew). */
  keepalivedDownTimerMs: number;
  stepMs: number;
  /** One-way message latency bounds for the peer link. */
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Probability that one peer-link message is lost / duplicated (chaos runs). */
  lossRate: number;
  duplicateRate: number;
  seed: number;
}

export const DEFAULT_WORLD: WorldSettings = {
  election: {
    heartbeatIntervalMs: 100,
    peerLossMs: 300,
    leaseMs: 600,
    takeoverMarginMs: 150,
    maxClockDrift: 0.01,
    startupGraceMs: 800,
    handoffTimeoutMs: 1500,
    arpGuard: true,
    arpRetryMs: 500,
  },
  keepalivedDownTimerMs: 300,
  stepMs: 10,
  minLatencyMs: 1,
  maxLatencyMs: 3,
  lossRate: 0,
  duplicateRate: 0,
  seed: 1,
};

interface SimNodeState {
  name: SimNode;
  core: ElectionCore | null;
  machineUp: boolean;
  agentRunning: boolean;
  paused: boolean;
  servicesHealthy: boolean;
  gatewayReachable: boolean;
  gateOpen: boolean;
  persistedEpoch: number;
  /** Lease guard: fresh until this instant. */
  leaseFreshUntil: number;
  nextTickAt: number;
  /** Keepalived: allowed since (null: not allowed). */
  allowedSince: number | null;
  holdsVip: boolean;
  /** Queued inputs while paused or undelivered probes. */
  pendingProbes: { probeId: number; at: number }[];
  lastServicesSent: boolean | null;
  lastGatewaySent: boolean | null;
  linkUp: boolean;
  requests: Map<string, { ok: boolean; message: string } | null>;
}

interface InFlight {
  at: number;
  to: SimNode;
  message: LinkMessage;
}

export interface WorldEvent {
  at: number;
  node: SimNode;
  what: string;
}

export class PairWorld {
  readonly settings: WorldSettings;
  now = 0;
  private readonly nodes: Record<SimNode, SimNodeState>;
  private inFlight: InFlight[] = [];
  /** Peer link (agent messages) and VRRP adverts can be cut separately, and one-way. */
  private linkCut: Record<SimNode, boolean> = { mn1: false, mn2: false };
  private vrrpCut: Record<SimNode, boolean> = { mn1: false, mn2: false };
  private rng: () => number;
  readonly log: WorldEvent[] = [];
  /** Instants at which both nodes held the VIP (must stay empty). */
  readonly splitBrainAt: number[] = [];
  readonly vipChanges: { at: number; from: SimNode | null; to: SimNode | null }[] = [];
  private lastVipOwner: SimNode | null = null;
  private requestSeq = 0;

  constructor(overrides: Partial<Omit<WorldSettings, "election">> & { election?: Partial<WorldSettings["election"]> } = {}) {
    this.settings = { ...DEFAULT_WORLD, ...overrides, election: { ...DEFAULT_WORLD.election, ...overrides.election } };
    this.rng = mulberry32(this.settings.seed);
    const blank = (name: SimNode): SimNodeState => ({
      name,
      core: null,
      machineUp: false,
      agentRunning: false,
      paused: false,
      servicesHealthy: true,
      gatewayReachable: true,
      gateOpen: false,
      persistedEpoch: 0,
      leaseFreshUntil: -1,
      nextTickAt: 0,
      allowedSince: null,
      holdsVip: false,
      pendingProbes: [],
      lastServicesSent: null,
      lastGatewaySent: null,
      linkUp: false,
      requests: new Map(),
    });
    this.nodes = { mn1: blank("mn1"), mn2: blank("mn2") };
  }

  // ---- faults and operations ------------------------------------------------------

  boot(name: SimNode): void {
    const n = this.nodes[name];
    n.machineUp = true;
    n.gateOpen = false;
    n.holdsVip = false;
    n.allowedSince = null;
    this.startAgent(name);
  }

  startAgent(name: SimNode): void {
    const n = this.nodes[name];
    const peer = other(name);
    n.agentRunning = true;
    n.paused = false;
    n.gateOpen = false; // the driver closes the gate at start
    n.core = new ElectionCore({ ...this.settings.election, self: name, peer, initialEpoch: n.persistedEpoch }, this.now);
    n.lastServicesSent = null;
    n.lastGatewaySent = null;
    n.linkUp = false;
    n.nextTickAt = this.now;
    n.leaseFreshUntil = this.now + this.settings.election.leaseMs;
    this.note(name, "agent started");
  }

  /** Power loss: every process gone, the VIP with it. */
  crash(name: SimNode): void {
    const n = this.nodes[name];
    n.machineUp = false;
    n.agentRunning = false;
    n.core = null;
    n.gateOpen = false;
    this.dropLink(name, "machine down");
    this.note(name, "crashed");
  }

  /** SIGKILL of the agent only: Keepalived stays, the lease guard sees EOF at once. */
  killAgent(name: SimNode): void {
    const n = this.nodes[name];
    n.agentRunning = false;
    n.core = null;
    n.leaseFreshUntil = Math.min(n.leaseFreshUntil, this.now);
    this.dropLink(name, "agent killed");
    this.note(name, "agent killed");
  }

  pause(name: SimNode): void {
    this.nodes[name].paused = true;
    this.note(name, "agent paused");
  }

  resume(name: SimNode): void {
    this.nodes[name].paused = false;
    this.note(name, "agent resumed");
  }

  setServices(name: SimNode, healthy: boolean): void {
    this.nodes[name].servicesHealthy = healthy;
    this.note(name, `services ${healthy ? "healthy" : "failed"}`);
  }

  setGateway(name: SimNode, reachable: boolean): void {
    this.nodes[name].gatewayReachable = reachable;
    this.note(name, `gateway ${reachable ? "reachable" : "lost"}`);
  }

  /** Drop agent traffic (and optionally VRRP) from `from` to its peer. */
  cutLink(options: { from?: SimNode; vrrp?: boolean } = {}): void {
    const sides = options.from ? [options.from] : [...SIM_NODES];
    for (const side of sides) {
      this.linkCut[side] = true;
      if (options.vrrp) this.vrrpCut[side] = true;
    }
    // A one-way cut is seen by TCP as a stall, not a close; a full cut likewise.
    this.note(sides[0] ?? "mn1", `link cut${options.from ? ` from ${options.from}` : ""}${options.vrrp ? " (VRRP too)" : ""}`);
  }

  healLink(): void {
    this.linkCut = { mn1: false, mn2: false };
    this.vrrpCut = { mn1: false, mn2: false };
    this.note("mn1", "link healed");
  }

  /** Operator demote on `name`; returns a handle whose result appears in requestResult(). */
  demote(name: SimNode): string {
    const id = `demote-${++this.requestSeq}`;
    const n = this.nodes[name];
    n.requests.set(id, null);
    if (n.core && !n.paused) this.apply(name, n.core.step(this.now, { kind: "demote", requestId: id }));
    return id;
  }

  requestResult(name: SimNode, id: string): { ok: boolean; message: string } | null {
    return this.nodes[name].requests.get(id) ?? null;
  }

  // ---- observation ----------------------------------------------------------------

  vipOwner(): SimNode | null {
    return this.lastVipOwner;
  }

  role(name: SimNode): string {
    const core = this.nodes[name].core;
    return core ? core.snapshot(this.now).role : "down";
  }

  epoch(name: SimNode): number {
    const core = this.nodes[name].core;
    return core ? core.snapshot(this.now).epoch : this.nodes[name].persistedEpoch;
  }

  holdsVip(name: SimNode): boolean {
    return this.nodes[name].holdsVip;
  }

  /** Advance simulated time by `ms`. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) this.step();
  }

  /** Run until `predicate` holds or `maxMs` passes; returns the time it took, or null. */
  runUntil(predicate: () => boolean, maxMs: number): number | null {
    const start = this.now;
    while (this.now - start <= maxMs) {
      if (predicate()) return this.now - start;
      this.step();
    }
    return null;
  }

  // ---- the step ---------------------------------------------------------------------

  private step(): void {
    this.now += this.settings.stepMs;
    this.deliverMessages();
    for (const name of SIM_NODES) this.stepNode(name);
    this.updateKeepalived();
  }

  private stepNode(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.core || !n.agentRunning || n.paused) return;
    const core = n.core;
    // Link comes up when both agents run and no cut: like the ws reconnect loop.
    const peer = this.nodes[other(name)];
    const canTalk = peer.agentRunning && !this.linkCut[name] && !this.linkCut[other(name)];
    if (canTalk && !n.linkUp && !peer.paused) {
      n.linkUp = true;
      this.apply(name, core.step(this.now, { kind: "peer-up" }));
    }
    if (n.lastServicesSent !== n.servicesHealthy) {
      n.lastServicesSent = n.servicesHealthy;
      this.apply(name, core.step(this.now, { kind: "services", healthy: n.servicesHealthy, reasons: n.servicesHealthy ? [] : ["service mn failed"] }));
    }
    const gateway = n.gatewayReachable && n.machineUp;
    if (n.lastGatewaySent !== gateway) {
      n.lastGatewaySent = gateway;
      this.apply(name, core.step(this.now, { kind: "gateway", reachable: gateway }));
    }
    for (const probe of n.pendingProbes.filter((p) => p.at <= this.now)) {
      const occupied = this.nodes[other(name)].holdsVip && this.nodes[other(name)].machineUp;
      this.apply(name, core.step(this.now, { kind: "arp-result", probeId: probe.probeId, occupied, detail: occupied ? `${other(name)} answers` : "no answer" }));
    }
    n.pendingProbes = n.pendingProbes.filter((p) => p.at > this.now);
    if (this.now >= n.nextTickAt) {
      n.nextTickAt = this.now + this.settings.election.heartbeatIntervalMs;
      this.apply(name, core.step(this.now, { kind: "tick" }));
      // The daemon renews the lease guard after the tick's effects, then sends a heartbeat.
      n.leaseFreshUntil = this.now + this.settings.election.leaseMs;
      this.sendHeartbeat(name);
    }
  }

  private apply(name: SimNode, effects: ElectionEffect[]): void {
    const n = this.nodes[name];
    for (const effect of effects) {
      switch (effect.kind) {
        case "set-gate":
          n.gateOpen = effect.open;
          this.updateKeepalived();
          break;
        case "persist-epoch":
          n.persistedEpoch = Math.max(n.persistedEpoch, effect.epoch);
          break;
        case "send":
          this.send(name, effect.message);
          break;
        case "heartbeat-now":
          this.sendHeartbeat(name);
          break;
        case "arp-probe":
          n.pendingProbes.push({ probeId: effect.probeId, at: this.now + 100 });
          break;
        case "event":
          this.note(name, `${effect.type}: ${effect.message}`);
          break;
        case "request-done":
          if (n.requests.has(effect.requestId)) n.requests.set(effect.requestId, { ok: effect.ok, message: effect.message });
          break;
      }
    }
  }

  private sendHeartbeat(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.core) return;
    const f = n.core.heartbeatFields(this.now);
    this.send(name, {
      type: "heartbeat",
      seq: 0,
      node: name,
      ...f,
      vipPresent: n.holdsVip,
      keepalived: n.holdsVip ? "master" : n.gateOpen ? "backup" : "fault",
      services: [{ name: "mn", healthy: n.servicesHealthy, critical: true }],
    });
  }

  private send(from: SimNode, message: LinkMessage): void {
    const n = this.nodes[from];
    if (!n.linkUp || this.linkCut[from]) return;
    const to = other(from);
    const copies = this.rng() < this.settings.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.rng() < this.settings.lossRate) continue;
      const latency = this.settings.minLatencyMs + this.rng() * (this.settings.maxLatencyMs - this.settings.minLatencyMs);
      this.inFlight.push({ at: this.now + latency, to, message });
    }
  }

  private deliverMessages(): void {
    const due = this.inFlight.filter((m) => m.at <= this.now).sort((a, b) => a.at - b.at);
    this.inFlight = this.inFlight.filter((m) => m.at > this.now);
    for (const m of due) {
      const n = this.nodes[m.to];
      if (!n.core || n.paused || !n.agentRunning || !n.linkUp) continue;
      this.apply(m.to, n.core.step(this.now, { kind: "peer-message", message: m.message }));
    }
  }

  private dropLink(name: SimNode, reason: string): void {
    const peer = this.nodes[other(name)];
    this.nodes[name].linkUp = false;
    if (peer.linkUp) {
      peer.linkUp = false;
      if (peer.core && !peer.paused) this.apply(other(name), peer.core.step(this.now, { kind: "peer-down", reason }));
    }
    this.inFlight = this.inFlight.filter((m) => m.to !== name && m.to !== other(name));
  }

  private updateKeepalived(): void {
    for (const name of SIM_NODES) {
      const n = this.nodes[name];
      const allowed = n.machineUp && n.gateOpen && this.now < n.leaseFreshUntil;
      if (!allowed) {
        n.allowedSince = null;
        if (n.holdsVip) {
          n.holdsVip = false;
          this.note(name, "keepalived dropped the VIP");
        }
      } else if (n.allowedSince === null) {
        n.allowedSince = this.now;
      }
    }
    for (const name of SIM_NODES) {
      const n = this.nodes[name];
      const peer = this.nodes[other(name)];
      if (n.allowedSince === null || n.holdsVip) continue;
      // A BACKUP that hears the owner's adverts stays BACKUP (nopreempt).
      const hearsOwner = peer.holdsVip && !this.vrrpCut[other(name)];
      if (hearsOwner) continue;
      const waitedFor = this.now - n.allowedSince;
      // A live Keepalived leaving MASTER sends a priority-0 advert; a crashed one sends nothing.
      const ownerJustLeft = !peer.holdsVip && peer.machineUp && this.lastVipOwner === other(name) && !this.vrrpCut[other(name)];
      if (waitedFor >= this.settings.keepalivedDownTimerMs || (ownerJustLeft && waitedFor > 0)) {
        n.holdsVip = true;
        this.note(name, "keepalived took the VIP");
      }
    }
    const owners = SIM_NODES.filter((name) => this.nodes[name].holdsVip);
    if (owners.length > 1) this.splitBrainAt.push(this.now);
    const owner = owners.length === 1 ? (owners[0] as SimNode) : owners.length === 0 ? null : this.lastVipOwner;
    if (owner !== this.lastVipOwner) {
      this.vipChanges.push({ at: this.now, from: this.lastVipOwner, to: owner });
      this.lastVipOwner = owner;
    }
  }

  private note(node: SimNode, what: string): void {
    this.log.push({ at: this.now, node, what });
  }

  /** The world's log as readable lines (for failing tests and seeds). */
  trace(last = 80): string {
    return this.log
      .slice(-last)
      .map((e) => `${String(e.at).padStart(7)} ms  ${e.node}  ${e.what}`)
      .join("\n");
  }
}

function other(name: SimNode): SimNode {
  return name === "mn1" ? "mn2" : "mn1";
}

/** Small, fast, seedable PRNG (public domain). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
