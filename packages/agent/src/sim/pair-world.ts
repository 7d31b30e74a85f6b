/**
 * A simulated world for two election cores: their clocks, their peer link, their gateway
 * and service monitors, their ARP guard and a model of Keepalived. Pure and deterministic:
 * a discrete-event simulation whose time is a number the world advances and whose every
 * random choice comes from one seeded generator, so scenario tests and the simulator can
 * run many thousands of schedules against the REAL election core and replay any of them.
 *
 * Time. The world keeps true time (`now`). Each agent process sees its own monotonic clock,
 * `offset + (now - startedAt) × (1 + drift)`, with a fresh offset at every start (as
 * performance.now() is), and every duration a machine measures (tick interval, lease guard,
 * VRRP timers, ping and probe timeouts) runs at that machine's rate. Wall clocks exist only
 * as an offset per node that nothing reads: a jump changes nothing by construction.
 *
 * Keepalived (the model that safety rests on), per node:
 * - FAULT unless the machine is up, Keepalived runs, the gate is open and the lease guard is
 *   fresh (renewed by the agent's tick within leaseMs; stale at once when the agent dies);
 * - BACKUP while allowed: becomes MASTER (takes the VIP) when its master-down timer runs out;
 *   the timer is held back for as long as it hears a MASTER's adverts (VRRP flowing from the
 *   peer), restarted when the adverts stop, and cut to the skew time by a priority-0 advert
 *   (a live MASTER leaving: gate closed, lease stale, Keepalived stopped);
 * - two MASTERs that hear each other: the lower address (mn1) yields (RFC 5798, equal
 *   priorities), only if it hears mn2.
 *
 * The agent's glue is the daemon's own: each agent process runs the real ElectionHost
 * (host/election-host.ts) with simulated adapters behind its interfaces (gate and lease
 * guard, peer link, ARP prober, timers, VIP observations).
 *
 * Adapter faults (what goes wrong around the core): Keepalived stuck in FAULT or refusing to
 * start, the lease guard gone, the VIP removed by hand, the gate file rewritten, a second
 * agent process that closes the gate and kills the lease guard. The agent's watchdog repairs
 * what a repair can (a fresh lease guard, the gate file rewritten, Keepalived restarted).
 *
 * The peer link is a TCP-like connection: both agents dial with backoff; frames flow in
 * order per direction unless a fault allows reordering; a cut either drops frames or holds
 * them until it heals (TCP retransmission); a side that hears nothing for idleTimeoutMs
 * closes; a killed agent's kernel sends a close, a crashed machine sends nothing.
 */
import type { LinkMessage, Role } from "@mnha/protocol";
import { ElectionCore, type ElectionInput, type ElectionSettings } from "../core/election.js";
import { ServiceHealth } from "../core/health.js";
import { ElectionHost, type HostAdapters } from "../host/election-host.js";
import { Backoff } from "../util/backoff.js";
import { EventQueue, mulberry32 } from "./event-queue.js";
import { SimWitness, type WitnessModelSettings } from "./witness-model.js";

export { mulberry32 } from "./event-queue.js";

export const SIM_NODES = ["mn1", "mn2"] as const;
export type SimNode = (typeof SIM_NODES)[number];
/** Each node's MAC on the VIP segment (mn1's is the lower, as in the lab). */
export const SIM_MACS: Record<SimNode, string> = { mn1: "02:4d:4e:48:41:0b", mn2: "02:4d:4e:48:41:0c" };

/** How one direction of the peer link treats frames (delay, loss, duplication, reordering). */
export interface LinkConditions {
  minLatencyMs: number;
  maxLatencyMs: number;
  lossRate: number;
  duplicateRate: number;
  /** Frames may overtake each other (each gets its own latency); otherwise FIFO. */
  reorder: boolean;
}

/** A check loop like the agent's monitors: a probe every intervalMs, rise/fall verdicts. */
export interface MonitorTiming {
  intervalMs: number;
  /** A probe that gets no answer reports a failure after this long. */
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface WorldSettings {
  election: Omit<ElectionSettings, "self" | "peer" | "initialEpoch">;
  /** VRRP master-down timer: downTimerAdverts × advert interval + skew. */
  keepalivedDownTimerMs: number;
  /** VRRP skew time: how soon a BACKUP takes over after a priority-0 advert. */
  keepalivedSkewMs: number;
  /** ARP guard: how long a probe listens when nobody answers. */
  probeTimeoutMs: number;
  /** The holder's duplicate-address check, every this long (arpGuard.duplicateCheckIntervalMs; 0: off). */
  duplicateCheckIntervalMs: number;
  /** Granularity at which runUntil() checks its predicate. */
  stepMs: number;
  /** Baseline conditions of both directions of the peer link. */
  minLatencyMs: number;
  maxLatencyMs: number;
  lossRate: number;
  duplicateRate: number;
  reorder: boolean;
  /** Service checks; null: the verdict follows the truth at once. */
  services: MonitorTiming | null;
  /** Gateway pings; null: the verdict follows the truth at once. */
  gateway: MonitorTiming | null;
  peerLink: { reconnectInitialMs: number; reconnectMaxMs: number; idleTimeoutMs: number };
  /** Clock rate error of each node (0.004: its clock runs 0.4 % fast). */
  drift: Record<SimNode, number>;
  seed: number;
  /** Keep at most this many log entries (older ones are dropped). */
  logLimit: number;
  /** How long a watchdog repair takes (a Keepalived restart with a fresh lease guard). */
  repairMs: number;
  /** How soon the agent looks at the VIP after it changed (a Keepalived notification, or the 1 s poll for a change Keepalived does not report). */
  vipLookMs: number;
  vipPollMs: number;
  /** Builds each agent's core (tests swap in a deliberately broken one); null: the real ElectionCore. */
  coreFactory: ((settings: ElectionSettings, now: number) => ElectionCore) | null;
  /** A witness on a third machine (witness-model.ts); absent or null: none (set election.witness too). */
  witness?: WitnessModelSettings | null;
  /**
   * A slow handoff giver (a loaded machine: its gate write and the epoch's fsync): it acts on
   * a "ready" this long after it arrives, so its gate closes and its release leaves that much
   * later. Absent or 0: at once.
   */
  releaseStallMs?: number;
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
  keepalivedDownTimerMs: 322,
  // (256 - priority 200) × 100 ms / 256
  keepalivedSkewMs: 22,
  probeTimeoutMs: 200,
  duplicateCheckIntervalMs: 500,
  stepMs: 10,
  minLatencyMs: 1,
  maxLatencyMs: 3,
  lossRate: 0,
  duplicateRate: 0,
  reorder: false,
  services: null,
  gateway: null,
  peerLink: { reconnectInitialMs: 100, reconnectMaxMs: 2_000, idleTimeoutMs: 5_000 },
  drift: { mn1: 0, mn2: 0 },
  seed: 1,
  logLimit: 100_000,
  repairMs: 300,
  vipLookMs: 5,
  vipPollMs: 1_000,
  coreFactory: null,
};

export type WorldOverrides = Partial<Omit<WorldSettings, "election" | "drift" | "peerLink">> & {
  election?: Partial<WorldSettings["election"]>;
  drift?: Partial<Record<SimNode, number>>;
  peerLink?: Partial<WorldSettings["peerLink"]>;
};

export type CutMode = "drop" | "hold";
export type ServicesState = "healthy" | "failed" | "hung";
export type Channel = "agent" | "vrrp" | "arp";
export type KeepalivedState = "stopped" | "fault" | "backup" | "master";

/** What was true when a node's gate opened (the invariant checker judges claims by it). */
export interface GateOpening {
  at: number;
  /** The role the step that opened the gate ended in: "holder" (a claim) or "receiving" (a handoff). */
  via: Role | null;
  peerAlive: boolean;
  /** When the newest heartbeat from the peer it had heard was sent, then (true time). */
  newsAt: number;
  /** The highest epoch the peer's heartbeats had told it, then. */
  heardEpoch: number;
}

/** A stretch during which a node's core is holder or handing-off (one holder tenure). */
export interface Tenure {
  at: number;
  epoch: number;
  /** The highest epoch the peer's heartbeats had told this node when the tenure began. */
  heardEpoch: number;
}

export interface WorldEvent {
  at: number;
  node: SimNode;
  what: string;
}

/** A frame on the peer link; `sentAt` (true time) lets the checker tell old news from new. */
type Frame = { kind: "message"; message: LinkMessage; sentAt: number } | { kind: "close" };
type Monitor = "services" | "gateway";

type AgentEvent =
  | { type: "tick" }
  /** A host timer or an adapter's answer (ARP probe, repair) coming due. */
  | { type: "callback"; run: () => void }
  /** A host timer: fires unless cancelled by then. */
  | { type: "timer"; fire: () => void; cancelled: boolean }
  | { type: "vip-look" }
  | { type: "dup-check" }
  | { type: "frame"; connGen: number; frame: Frame }
  | { type: "ping"; monitor: Monitor }
  | { type: "ping-result"; monitor: Monitor; ok: boolean; startedAt: number }
  | { type: "idle-check"; connGen: number }
  | { type: "dial" }
  | { type: "demote"; requestId: string }
  | { type: "shutdown"; requestId: string }
  | { type: "stop-deadline"; requestId: string };

type Entry =
  | { kind: "agent"; node: SimNode; gen: number; event: AgentEvent }
  | { kind: "keepalived"; node: SimNode }
  | { kind: "lease-check"; node: SimNode }
  | { kind: "keepalived-start"; node: SimNode; gen: number }
  | { kind: "deliver"; to: SimNode; connGen: number; frame: Frame }
  | { kind: "connect"; dialer: SimNode; gens: Record<SimNode, number> }
  | { kind: "action"; node: SimNode; label: string; run: () => void };

export interface NodeState {
  name: SimNode;
  peer: SimNode;
  rate: number;
  machineUp: boolean;
  // ---- the agent process
  agentRunning: boolean;
  /** Bumped at every start and death: events of an older process are dropped. */
  agentGen: number;
  core: ElectionCore | null;
  /** The daemon's glue around the core (null while no agent runs). */
  host: ElectionHost | null;
  paused: boolean;
  deferred: AgentEvent[];
  stopping: string | null;
  clockOffset: number;
  agentStartedAt: number;
  /** The VIP as this agent last reported it to its core, and whether a look is due. */
  vipFed: boolean | null;
  vipLookPending: boolean;
  /** The holder's duplicate check: one probe at a time, the next one interval after the last. */
  dupBusy: boolean;
  dupNextAt: number;
  requests: Map<string, { ok: boolean; message: string } | null>;
  // ---- what the monitors watch, and their verdict machines
  services: ServicesState;
  gatewayCut: boolean;
  servicesHealth: ServiceHealth;
  gatewayHealth: ServiceHealth;
  servicesFed: boolean | null;
  gatewayFed: boolean | null;
  // ---- Keepalived, the gate and the lease guard
  keepalivedRunning: boolean;
  keepalivedGen: number;
  ka: KeepalivedState;
  masterDownAt: number | null;
  gateOpen: boolean;
  leaseFreshUntil: number;
  leaseCheckPending: boolean;
  holdsVip: boolean;
  // ---- adapter faults
  /** What Keepalived reads from the gate file (the agent's gate unless rewritten behind its back). */
  gateFileOpen: boolean;
  /** Keepalived held in FAULT whatever its inputs (a broken config, a stuck process). */
  kaStuck: boolean;
  /** Keepalived does not start (a broken binary) while this holds. */
  kaRefusesStart: boolean;
  /** The lease guard is gone: renewals reach nobody until a repair or a new agent starts one. */
  leaseGuardGone: boolean;
  persistedEpoch: number;
  /** The highest epoch a heartbeat from the peer has told this node (over all its lives). */
  heardEpoch: number;
  /** When the newest heartbeat that reached this node's core was sent (true time). */
  newsAt: number;
  role: Role | "down";
  gateOpening: GateOpening | null;
  tenure: Tenure | null;
  // ---- this side of the peer link
  linkUp: boolean;
  connGen: number;
  lastFrameAt: number;
  /** The peer link's own reconnect backoff (util/backoff.ts), drawing from the world's random stream. */
  dial: Backoff;
  dialScheduled: boolean;
  wallOffsetMs: number;
}

export class PairWorld {
  readonly settings: WorldSettings;
  now = 0;
  /** Events processed so far (the simulator's "step" count). */
  steps = 0;
  readonly log: WorldEvent[] = [];
  /** Instants at which both nodes held the VIP (must stay empty where one holder is promised). */
  readonly splitBrainAt: number[] = [];
  readonly vipChanges: { at: number; from: SimNode | null; to: SimNode | null }[] = [];

  private readonly nodes: Record<SimNode, NodeState>;
  private readonly queue = new EventQueue<Entry>();
  private readonly rng: () => number;
  private lastVipOwner: SimNode | null = null;
  private requestSeq = 0;
  private connSeq = 0;
  private observer: ((world: PairWorld) => void) | null = null;
  // ---- the network between the MNs, per sending side
  private readonly cuts: Record<Channel, Record<SimNode, boolean>> = {
    agent: { mn1: false, mn2: false },
    vrrp: { mn1: false, mn2: false },
    arp: { mn1: false, mn2: false },
  };
  private readonly cutMode: Record<SimNode, CutMode> = { mn1: "drop", mn2: "drop" };
  private readonly held: Record<SimNode, { connGen: number; frame: Frame }[]> = { mn1: [], mn2: [] };
  private readonly impairment: Record<SimNode, LinkConditions | null> = { mn1: null, mn2: null };
  private readonly lastDeliveryAt: Record<SimNode, number> = { mn1: 0, mn2: 0 };
  private gatewayDown = false;
  /** The witness, when the settings model one. */
  readonly witness: SimWitness | null;

  constructor(overrides: WorldOverrides = {}) {
    this.settings = {
      ...DEFAULT_WORLD,
      ...overrides,
      election: { ...DEFAULT_WORLD.election, ...overrides.election },
      drift: { ...DEFAULT_WORLD.drift, ...overrides.drift },
      peerLink: { ...DEFAULT_WORLD.peerLink, ...overrides.peerLink },
    };
    this.rng = mulberry32(this.settings.seed);
    this.nodes = { mn1: this.blank("mn1"), mn2: this.blank("mn2") };
    this.witness = this.settings.witness ? new SimWitness(this, this.settings.witness, this.settings.seed) : null;
  }

  private blank(name: SimNode): NodeState {
    const monitor = (timing: MonitorTiming | null) => new ServiceHealth({ rise: timing?.rise ?? 1, fall: timing?.fall ?? 1 });
    return {
      name,
      peer: other(name),
      rate: 1 + this.settings.drift[name],
      machineUp: false,
      agentRunning: false,
      agentGen: 0,
      core: null,
      host: null,
      paused: false,
      deferred: [],
      stopping: null,
      clockOffset: 0,
      agentStartedAt: 0,
      vipFed: null,
      vipLookPending: false,
      dupBusy: false,
      dupNextAt: 0,
      requests: new Map(),
      services: "healthy",
      gatewayCut: false,
      servicesHealth: monitor(this.settings.services),
      gatewayHealth: monitor(this.settings.gateway),
      servicesFed: null,
      gatewayFed: null,
      keepalivedRunning: false,
      keepalivedGen: 0,
      ka: "stopped",
      masterDownAt: null,
      gateOpen: false,
      leaseFreshUntil: -1,
      leaseCheckPending: false,
      holdsVip: false,
      gateFileOpen: false,
      kaStuck: false,
      kaRefusesStart: false,
      leaseGuardGone: false,
      persistedEpoch: 0,
      heardEpoch: 0,
      newsAt: -Infinity,
      role: "down",
      gateOpening: null,
      tenure: null,
      linkUp: false,
      connGen: 0,
      lastFrameAt: 0,
      dial: this.dialBackoff(),
      dialScheduled: false,
      wallOffsetMs: 1_767_225_600_000,
    };
  }

  /** Called after every processed event (the invariant checker hooks in here). */
  observe(observer: ((world: PairWorld) => void) | null): void {
    this.observer = observer;
  }

  /** Runs `run` at simulated instant `at` as a world event (schedules of faults use this). */
  at(at: number, node: SimNode, label: string, run: () => void): void {
    this.queue.push(Math.max(at, this.now), { kind: "action", node, label, run });
  }

  // ---- machines and processes ----------------------------------------------------------

  /** Power on: the machine comes up and (by default) its agent starts, which starts Keepalived. */
  boot(name: SimNode, options: { startAgent?: boolean } = {}): void {
    const n = this.nodes[name];
    if (n.machineUp) return;
    n.machineUp = true;
    n.gateOpen = false;
    n.holdsVip = false;
    n.ka = "stopped";
    n.keepalivedRunning = false;
    this.note(name, "machine booted");
    if (options.startAgent ?? true) this.startAgent(name);
    this.settle();
  }

  /** Starts the agent: gate closed first, Keepalived started if it is not running, a fresh lease guard. */
  startAgent(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.machineUp || n.agentRunning) return;
    n.agentGen++;
    n.agentRunning = true;
    n.paused = false;
    n.deferred = [];
    n.stopping = null;
    n.agentStartedAt = this.now;
    // performance.now() starts near zero in every new process.
    n.clockOffset = 20 + this.rng() * 500;
    n.gateOpen = false;
    n.gateFileOpen = false;
    if (!n.keepalivedRunning) this.startKeepalived(n);
    // A new agent starts its own lease guard.
    n.leaseGuardGone = false;
    n.leaseFreshUntil = this.now + this.settings.election.leaseMs / n.rate;
    // As the daemon does: the core knows this world's VRRP timer and probe time (unless a test sets them).
    const coreSettings: ElectionSettings = {
      keepalivedDownTimerMs: this.settings.keepalivedDownTimerMs,
      arpProbeTimeoutMs: this.settings.probeTimeoutMs,
      ...this.settings.election,
      self: name,
      peer: n.peer,
      initialEpoch: n.persistedEpoch,
    };
    n.core = this.settings.coreFactory ? this.settings.coreFactory(coreSettings, this.local(n)) : new ElectionCore(coreSettings, this.local(n));
    n.host = new ElectionHost(n.core, this.hostAdapters(n), { self: name, heartbeatIntervalMs: this.settings.election.heartbeatIntervalMs });
    n.vipFed = null;
    n.vipLookPending = false;
    n.role = "starting";
    n.dupBusy = false;
    n.dupNextAt = 0;
    n.tenure = null;
    n.servicesHealth = new ServiceHealth({ rise: this.settings.services?.rise ?? 1, fall: this.settings.services?.fall ?? 1 });
    n.gatewayHealth = new ServiceHealth({ rise: this.settings.gateway?.rise ?? 1, fall: this.settings.gateway?.fall ?? 1 });
    n.servicesFed = null;
    n.gatewayFed = null;
    n.linkUp = false;
    n.dial = this.dialBackoff();
    n.dialScheduled = false;
    this.note(name, `agent started (epoch ${n.persistedEpoch})`);
    // The daemon feeds the (not yet checked) services, then ticks at once; the monitors and the link start.
    this.stepCore(n, { kind: "services", healthy: false, reasons: ["service mn not checked yet"] });
    this.agentEvent(n, this.now, { type: "tick" });
    if (this.settings.services) this.agentEvent(n, this.now, { type: "ping", monitor: "services" });
    if (this.settings.gateway) this.agentEvent(n, this.now, { type: "ping", monitor: "gateway" });
    this.feedInstantVerdicts(n);
    this.scheduleDial(n, 0);
    this.scheduleVipLook(n, 0);
    this.settle();
  }

  /** Power loss: every process gone, the VIP with it; no priority-0 advert, no TCP close. */
  crash(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.machineUp) return;
    n.machineUp = false;
    this.agentGone(n);
    n.keepalivedRunning = false;
    n.keepalivedGen++;
    n.ka = "stopped";
    n.masterDownAt = null;
    n.gateOpen = false;
    if (n.holdsVip) {
      n.holdsVip = false;
      this.note(name, "the VIP went down with the machine");
    }
    this.note(name, "machine crashed");
    this.settle();
  }

  /** SIGKILL of the agent only: Keepalived stays, the lease guard sees EOF at once, the kernel closes the socket. */
  killAgent(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.agentRunning) return;
    if (n.linkUp) this.transmit(n, n.connGen, { kind: "close" });
    this.agentGone(n);
    n.leaseFreshUntil = Math.min(n.leaseFreshUntil, this.now);
    this.note(name, "agent killed");
    this.settle();
  }

  /**
   * Clean stop (SIGTERM): the core hands the VIP to a healthy peer if it can; the agent exits
   * when the core reports the request done (or after handoffTimeoutMs + 1 s), stopping
   * Keepalived. Returns the request id.
   */
  stopAgent(name: SimNode): string {
    const n = this.nodes[name];
    const id = `stop-${++this.requestSeq}`;
    if (!n.agentRunning || n.stopping) return id;
    n.stopping = id;
    n.requests.set(id, null);
    this.note(name, "agent asked to stop");
    this.agentEvent(n, this.now + (this.settings.election.handoffTimeoutMs + 1_000) / n.rate, { type: "stop-deadline", requestId: id });
    if (n.paused) n.deferred.push({ type: "shutdown", requestId: id });
    else this.stepCore(n, { kind: "shutdown", requestId: id });
    this.settle();
    return id;
  }

  /** SIGSTOP / a long GC: the agent does nothing; its lease guard, Keepalived and kernel go on. */
  pause(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.agentRunning || n.paused) return;
    n.paused = true;
    this.note(name, "agent paused");
  }

  resume(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.paused) return;
    n.paused = false;
    this.note(name, "agent resumed");
    // Everything that came due while frozen now runs, in order (timers fire once).
    const gen = n.agentGen;
    const due = n.deferred;
    n.deferred = [];
    for (const event of due) {
      if (n.agentGen !== gen || n.paused) break;
      this.onAgentEvent(n, event);
    }
    this.feedInstantVerdicts(n);
    this.settle();
  }

  /** Keepalived restarted (reload, crash + supervisor): a clean exit, `downMs` without it, then BACKUP/FAULT again. */
  restartKeepalived(name: SimNode, downMs: number): void {
    const n = this.nodes[name];
    if (!n.machineUp || !n.keepalivedRunning) return;
    this.stopKeepalived(n, "keepalived stopped for a restart");
    const gen = n.keepalivedGen;
    this.queue.push(this.now + downMs / n.rate, { kind: "keepalived-start", node: name, gen });
    this.settle();
  }

  // ---- health, gateway, network ---------------------------------------------------------

  setServices(name: SimNode, healthy: boolean): void {
    this.setServicesState(name, healthy ? "healthy" : "failed");
  }

  /** failed: checks fail at once (connection refused); hung: checks time out. */
  setServicesState(name: SimNode, state: ServicesState): void {
    const n = this.nodes[name];
    if (n.services === state) return;
    n.services = state;
    this.note(name, `services ${state}`);
    this.feedInstantVerdicts(n);
    this.settle();
  }

  /** Partition of one node from the gateway (false) or its end (true). */
  setGateway(name: SimNode, reachable: boolean): void {
    const n = this.nodes[name];
    if (n.gatewayCut === !reachable) return;
    n.gatewayCut = !reachable;
    this.note(name, `gateway ${reachable ? "reachable" : "cut off"}`);
    this.feedInstantVerdicts(n);
    this.settle();
  }

  /** The gateway itself down (both nodes lose it) or back. */
  setGatewayDown(down: boolean): void {
    if (this.gatewayDown === down) return;
    this.gatewayDown = down;
    this.note("mn1", `gateway ${down ? "down" : "up again"}`);
    for (const name of SIM_NODES) this.feedInstantVerdicts(this.nodes[name]);
    this.settle();
  }

  /**
   * Cuts (or heals) one direction of one kind of traffic between the MNs: agent frames,
   * VRRP adverts or ARP. An agent-link cut either drops frames or holds them until it heals.
   */
  setCut(channel: Channel, from: SimNode, cut: boolean, mode: CutMode = "drop"): void {
    if (this.cuts[channel][from] === cut && (!cut || channel !== "agent" || this.cutMode[from] === mode)) return;
    this.cuts[channel][from] = cut;
    if (channel === "agent") this.cutMode[from] = mode;
    this.note(from, `${channel} ${from}->${other(from)} ${cut ? `cut${channel === "agent" ? ` (${mode})` : ""}` : "healed"}`);
    if (channel === "agent" && (!cut || mode === "drop")) this.releaseHeld(from, cut);
    this.settle();
  }

  /** Delay, loss, duplication and reordering on one direction of the peer link (null: baseline). */
  setLinkConditions(from: SimNode, conditions: LinkConditions | null): void {
    this.impairment[from] = conditions;
    this.note(from, conditions ? `link ${from}->${other(from)} impaired: ${conditions.minLatencyMs.toFixed(0)}-${conditions.maxLatencyMs.toFixed(0)} ms, loss ${conditions.lossRate.toFixed(2)}, dup ${conditions.duplicateRate.toFixed(2)}${conditions.reorder ? ", reordering" : ""}` : `link ${from}->${other(from)} back to normal`);
  }

  /** Drop agent traffic (and optionally VRRP) from `from` to its peer, or both ways. */
  cutLink(options: { from?: SimNode; vrrp?: boolean; arp?: boolean; mode?: CutMode } = {}): void {
    const sides = options.from ? [options.from] : [...SIM_NODES];
    for (const side of sides) {
      this.setCut("agent", side, true, options.mode ?? "drop");
      if (options.vrrp) this.setCut("vrrp", side, true);
      if (options.arp) this.setCut("arp", side, true);
    }
  }

  healLink(): void {
    for (const channel of ["agent", "vrrp", "arp"] as const) for (const side of SIM_NODES) this.setCut(channel, side, false);
  }

  /** Moves this node's wall clock; nothing in the agent's decisions reads it. */
  jumpWall(name: SimNode, deltaMs: number): void {
    this.nodes[name].wallOffsetMs += deltaMs;
    this.note(name, `wall clock jumped ${deltaMs >= 0 ? "+" : ""}${Math.round(deltaMs)} ms`);
  }

  wallNow(name: SimNode): number {
    return this.now + this.nodes[name].wallOffsetMs;
  }

  /** Operator demote on `name`; returns a handle whose result appears in requestResult(). */
  demote(name: SimNode): string {
    const id = `demote-${++this.requestSeq}`;
    const n = this.nodes[name];
    if (!n.agentRunning) return id;
    n.requests.set(id, null);
    this.note(name, "operator demote");
    if (n.paused) n.deferred.push({ type: "demote", requestId: id });
    else this.stepCore(n, { kind: "demote", requestId: id });
    this.settle();
    return id;
  }

  /** An operator mode change on `name` (maintenance on/off, node stopped), fed to its core at once. */
  operatorMode(name: SimNode, input: Extract<ElectionInput, { kind: "maintenance" | "node-stopped" }>): void {
    const n = this.nodes[name];
    if (!n.agentRunning || n.paused) return;
    this.note(name, `operator: ${input.kind} ${input.on ? "on" : "off"}`);
    this.stepCore(n, input);
    this.settle();
  }

  requestResult(name: SimNode, id: string): { ok: boolean; message: string } | null {
    return this.nodes[name].requests.get(id) ?? null;
  }

  // ---- observation ---------------------------------------------------------------------

  vipOwner(): SimNode | null {
    return this.lastVipOwner;
  }

  role(name: SimNode): Role | "down" {
    const core = this.nodes[name].core;
    return core ? core.snapshot(this.local(this.nodes[name])).role : "down";
  }

  epoch(name: SimNode): number {
    const n = this.nodes[name];
    return n.core ? n.core.currentEpoch() : n.persistedEpoch;
  }

  persistedEpoch(name: SimNode): number {
    return this.nodes[name].persistedEpoch;
  }

  /** The highest epoch the peer's heartbeats have told this node. */
  heardEpoch(name: SimNode): number {
    return this.nodes[name].heardEpoch;
  }

  /** When the newest heartbeat from the peer that reached this node's core was sent (true time; -Infinity: never). */
  newsAt(name: SimNode): number {
    return this.nodes[name].newsAt;
  }

  holdsVip(name: SimNode): boolean {
    return this.nodes[name].holdsVip;
  }

  /** What was true when this node's gate last opened. */
  gateOpening(name: SimNode): GateOpening | null {
    return this.nodes[name].gateOpening;
  }

  /** This node's current holder tenure (its core holder or handing-off), if any. */
  tenure(name: SimNode): Tenure | null {
    return this.nodes[name].tenure;
  }

  /** The gate as the agent last set it (open: its Keepalived may hold the VIP). */
  gateOpen(name: SimNode): boolean {
    return this.nodes[name].gateOpen;
  }

  /**
   * A node's state as it is, for the invariant checker: it reads a dozen facts after every one
   * of millions of events, and plain reads of these objects (which live as long as the world)
   * cost a fraction of a lookup by name each time. Read only.
   */
  nodeState(name: SimNode): Readonly<NodeState> {
    return this.nodes[name];
  }

  /** The cuts and impairments between the MNs as they are (read only; see nodeState). */
  networkState(): { readonly cuts: Readonly<Record<Channel, Readonly<Record<SimNode, boolean>>>>; readonly impairment: Readonly<Record<SimNode, LinkConditions | null>> } {
    return { cuts: this.cuts, impairment: this.impairment };
  }

  /** No cut and no impairment on the agent link, either way. */
  agentLinkClean(): boolean {
    return !this.cuts.agent.mn1 && !this.cuts.agent.mn2 && this.impairment.mn1 === null && this.impairment.mn2 === null;
  }

  /** Is `channel` from `from` to its peer cut? */
  isCut(channel: Channel, from: SimNode): boolean {
    return this.cuts[channel][from];
  }

  keepalivedState(name: SimNode): KeepalivedState {
    return this.nodes[name].ka;
  }

  machineUp(name: SimNode): boolean {
    return this.nodes[name].machineUp;
  }

  agentRunning(name: SimNode): boolean {
    return this.nodes[name].agentRunning;
  }

  agentPaused(name: SimNode): boolean {
    return this.nodes[name].paused;
  }

  core(name: SimNode): ElectionCore | null {
    return this.nodes[name].core;
  }

  /** This node's own monotonic clock now (what its core is given). */
  localNow(name: SimNode): number {
    return this.local(this.nodes[name]);
  }

  // ---- running -------------------------------------------------------------------------

  /** Advance simulated time by `ms`. */
  run(ms: number): void {
    this.runTo(this.now + ms);
  }

  /** Process every event due up to `end`, then stand at `end`; or stop after the event at which `stop()` first holds. */
  runTo(end: number, stop?: () => boolean): void {
    while (this.queue.peekAt() <= end) {
      this.processNext();
      if (stop?.()) return;
    }
    if (end > this.now) this.now = end;
  }

  /** Run until `predicate` holds (checked every stepMs) or `maxMs` passes; returns the time it took, or null. */
  runUntil(predicate: () => boolean, maxMs: number): number | null {
    const start = this.now;
    while (this.now - start <= maxMs) {
      if (predicate()) return this.now - start;
      this.runTo(this.now + this.settings.stepMs);
    }
    return null;
  }

  private processNext(): void {
    this.now = this.queue.peekAt();
    const item = this.queue.popItem();
    this.handle(item);
    this.settle();
    this.steps++;
    if (this.observer) this.observer(this);
  }

  private handle(entry: Entry): void {
    switch (entry.kind) {
      case "action":
        entry.run();
        return;
      case "agent": {
        const n = this.nodes[entry.node];
        if (!n.agentRunning || n.agentGen !== entry.gen) return;
        if (n.paused) n.deferred.push(entry.event);
        else this.onAgentEvent(n, entry.event);
        return;
      }
      case "keepalived":
        return; // settle() re-evaluates the timers
      case "lease-check": {
        const n = this.nodes[entry.node];
        n.leaseCheckPending = false;
        if (this.now < n.leaseFreshUntil) this.scheduleLeaseCheck(n);
        return;
      }
      case "keepalived-start": {
        const n = this.nodes[entry.node];
        if (n.keepalivedGen === entry.gen && n.machineUp && !n.keepalivedRunning) this.startKeepalived(n);
        return;
      }
      case "deliver": {
        const n = this.nodes[entry.to];
        if (!n.agentRunning || !n.linkUp || n.connGen !== entry.connGen) return;
        const event: AgentEvent = { type: "frame", connGen: entry.connGen, frame: entry.frame };
        if (n.paused) n.deferred.push(event);
        else this.onAgentEvent(n, event);
        return;
      }
      case "connect":
        this.onConnect(entry.dialer, entry.gens);
        return;
    }
  }

  private onAgentEvent(n: NodeState, event: AgentEvent): void {
    if (!n.core) return;
    switch (event.type) {
      case "tick":
        this.stepCore(n, { kind: "tick" });
        if (n.core) this.agentEvent(n, this.now + this.settings.election.heartbeatIntervalMs / n.rate, { type: "tick" });
        this.maybeDuplicateCheck(n);
        return;
      case "callback":
        event.run();
        return;
      case "timer":
        if (!event.cancelled) event.fire();
        return;
      case "vip-look":
        this.lookAtVip(n);
        return;
      case "dup-check":
        this.runDuplicateCheck(n);
        return;
      case "frame":
        if (!n.linkUp || n.connGen !== event.connGen) return;
        n.lastFrameAt = this.now;
        if (event.frame.kind === "close") {
          this.linkDown(n, "closed by the peer");
        } else {
          if (event.frame.message.type === "heartbeat") {
            n.heardEpoch = Math.max(n.heardEpoch, event.frame.message.epoch);
            n.newsAt = Math.max(n.newsAt, event.frame.sentAt);
          }
          const message = event.frame.message;
          const stallMs = this.settings.releaseStallMs ?? 0;
          if (message.type === "handoff-ready" && stallMs > 0) {
            const connGen = event.connGen;
            this.agentEvent(n, this.now + stallMs / n.rate, { type: "callback", run: () => (n.linkUp && n.connGen === connGen ? this.stepCore(n, { kind: "peer-message", message }) : undefined) });
            return;
          }
          this.stepCore(n, { kind: "peer-message", message });
        }
        return;
      case "ping":
        this.ping(n, event.monitor);
        return;
      case "ping-result":
        this.onPingResult(n, event.monitor, event.ok, event.startedAt);
        return;
      case "idle-check": {
        if (!n.linkUp || n.connGen !== event.connGen) return;
        const idleUntil = n.lastFrameAt + this.settings.peerLink.idleTimeoutMs / n.rate;
        if (this.now >= idleUntil) this.closeLink(n, `no frame for ${this.settings.peerLink.idleTimeoutMs} ms`);
        else this.agentEvent(n, idleUntil, { type: "idle-check", connGen: n.connGen });
        return;
      }
      case "dial":
        this.dial(n);
        return;
      case "demote":
        this.stepCore(n, { kind: "demote", requestId: event.requestId });
        return;
      case "shutdown":
        this.stepCore(n, { kind: "shutdown", requestId: event.requestId });
        return;
      case "stop-deadline":
        if (n.stopping === event.requestId) this.exitAgent(n, "stop timed out");
        return;
    }
  }

  /** One input for this agent: the host steps the core and carries out its effects, as in the daemon. */
  private stepCore(n: NodeState, input: ElectionInput): void {
    n.host?.input(input);
  }

  /** The simulated adapters behind the host's interfaces, for the agent process now running on `n`. */
  private hostAdapters(n: NodeState): HostAdapters {
    const gen = n.agentGen;
    const live = () => n.agentRunning && n.agentGen === gen;
    return {
      now: () => this.local(n),
      keepalived: {
        setGate: (open) => {
          if (!live()) return;
          if (open && !n.gateOpen && n.core) {
            n.gateOpening = { at: this.now, via: null, peerAlive: n.core.peerAlive(this.local(n)), newsAt: n.newsAt, heardEpoch: n.heardEpoch };
          }
          n.gateOpen = open;
          n.gateFileOpen = open;
          this.settle();
        },
        renewLease: () => {
          if (!live() || n.leaseGuardGone) return;
          n.leaseFreshUntil = this.now + this.settings.election.leaseMs / n.rate;
          this.scheduleLeaseCheck(n);
        },
        repair: (reason, done) => {
          this.note(n.name, `watchdog repair: ${reason}`);
          this.agentEvent(n, this.now + this.settings.repairMs / n.rate, { type: "callback", run: () => done(this.repairKeepalived(n)) });
        },
        state: () => (n.ka === "stopped" ? "stopped" : n.ka),
      },
      link: {
        send: (message: LinkMessage) => {
          if (!live() || !n.linkUp) return false;
          this.transmit(n, n.connGen, { kind: "message", message, sentAt: this.now });
          return true;
        },
        connected: () => live() && n.linkUp,
      },
      arp: {
        // Asks the segment who has the VIP; the peer answers if it holds it and ARP flows both ways.
        probe: (done) => {
          const p = this.nodes[n.peer];
          const occupied = p.holdsVip && !this.cuts.arp[n.name] && !this.cuts.arp[p.name];
          const took = occupied ? 2 + 30 : this.settings.probeTimeoutMs;
          this.agentEvent(n, this.now + took / n.rate, { type: "callback", run: () => done({ occupied, detail: occupied ? `${p.name} answers` : "no answer" }) });
        },
        // Neighbours' ARP caches are not modelled: who answers is who holds.
        announce: () => this.note(n.name, "gratuitous ARP for the VIP"),
      },
      ...(this.witness ? { witness: this.witness.adapterFor(n.name, (delayMs, run) => this.agentEvent(n, this.now + delayMs, { type: "callback", run })) } : {}),
      persistEpoch: (epoch) => {
        n.persistedEpoch = Math.max(n.persistedEpoch, epoch);
      },
      recordEvent: (type, message, fields) => {
        if (type === "role-changed") this.onRoleChanged(n, fields);
        this.note(n.name, `${type}: ${message}`);
      },
      requestDone: (result) => {
        if (n.requests.has(result.requestId)) n.requests.set(result.requestId, { ok: result.ok, message: result.message });
        if (n.stopping === result.requestId) this.exitAgent(n, result.message);
      },
      heartbeatFacts: () => ({
        vipPresent: n.holdsVip,
        keepalived: n.ka === "stopped" ? "stopped" : n.ka,
        services: [{ name: "mn", healthy: n.services === "healthy", critical: true }],
      }),
      setTimer: (delayMs, fire) => {
        // The event itself carries the cancellation (no closure per timer: the host re-arms one after every step).
        const timer: AgentEvent = { type: "timer", fire, cancelled: false };
        this.agentEvent(n, this.now + delayMs / n.rate, timer);
        return () => {
          timer.cancelled = true;
        };
      },
      onError: (error) => {
        throw error;
      },
    };
  }

  private onRoleChanged(n: NodeState, fields: Record<string, unknown>): void {
    const to = fields.to as Role;
    const epoch = typeof fields.epoch === "number" ? fields.epoch : 0;
    // A gate opened in this very step: the role it led to says whether it was a claim or a handoff.
    const opening = n.gateOpening;
    if (opening && opening.at === this.now && opening.via === null) opening.via = to;
    const holding = (r: Role | "down") => r === "holder" || r === "handing-off";
    if (holding(to) && !holding(n.role)) n.tenure = { at: this.now, epoch, heardEpoch: n.heardEpoch };
    else if (!holding(to)) n.tenure = null;
    n.role = to;
  }

  // ---- the agent's surroundings ----------------------------------------------------------

  private ping(n: NodeState, monitor: Monitor): void {
    const timing = monitor === "services" ? this.settings.services : this.settings.gateway;
    if (!timing) return;
    const ok = monitor === "services" ? n.services === "healthy" : this.gatewayTruth(n);
    // A refused connection fails at once; a hung service or an unanswered ping waits for the timeout.
    const took = ok ? 1 : monitor === "services" && n.services === "failed" ? 2 : timing.timeoutMs;
    this.agentEvent(n, this.now + took / n.rate, { type: "ping-result", monitor, ok, startedAt: this.now });
  }

  private onPingResult(n: NodeState, monitor: Monitor, ok: boolean, startedAt: number): void {
    const timing = monitor === "services" ? this.settings.services : this.settings.gateway;
    if (!timing) return;
    const health = monitor === "services" ? n.servicesHealth : n.gatewayHealth;
    const transition = health.recordResult(ok, this.local(n));
    if (transition) {
      const healthy = transition.to === "healthy";
      if (monitor === "services") this.stepCore(n, { kind: "services", healthy, reasons: healthy ? [] : ["service mn failed"] });
      else this.stepCore(n, { kind: "gateway", reachable: healthy });
    }
    if (n.core) this.agentEvent(n, Math.max(this.now, startedAt + timing.intervalMs / n.rate), { type: "ping", monitor });
  }

  private gatewayTruth(n: NodeState): boolean {
    return n.machineUp && !this.gatewayDown && !n.gatewayCut;
  }

  /** Monitors with no timing: the core hears the truth as soon as the agent can. */
  private feedInstantVerdicts(n: NodeState): void {
    if (!n.core || n.paused) return;
    if (!this.settings.services) {
      const healthy = n.services === "healthy";
      if (n.servicesFed !== healthy) {
        n.servicesFed = healthy;
        this.stepCore(n, { kind: "services", healthy, reasons: healthy ? [] : ["service mn failed"] });
      }
    }
    if (!this.settings.gateway && n.core) {
      const reachable = this.gatewayTruth(n);
      if (n.gatewayFed !== reachable) {
        n.gatewayFed = reachable;
        this.stepCore(n, { kind: "gateway", reachable });
      }
    }
  }

  private agentEvent(n: NodeState, at: number, event: AgentEvent): void {
    this.queue.push(at, { kind: "agent", node: n.name, gen: n.agentGen, event });
  }

  /** The agent process is gone (killed, crashed, exited): its core, timers and side of the link. */
  private agentGone(n: NodeState): void {
    n.role = "down";
    n.tenure = null;
    n.agentRunning = false;
    n.agentGen++;
    n.host?.close();
    n.host = null;
    n.core = null;
    n.paused = false;
    n.deferred = [];
    n.stopping = null;
    n.linkUp = false;
    n.dialScheduled = false;
  }

  private exitAgent(n: NodeState, why: string): void {
    if (n.linkUp) this.transmit(n, n.connGen, { kind: "close" });
    this.agentGone(n);
    n.leaseFreshUntil = Math.min(n.leaseFreshUntil, this.now);
    this.note(n.name, `agent stopped (${why})`);
    this.stopKeepalived(n, "keepalived stopped with the agent");
  }

  // ---- the peer link ---------------------------------------------------------------------

  private scheduleDial(n: NodeState, delay: number): void {
    if (n.dialScheduled || !n.agentRunning) return;
    n.dialScheduled = true;
    this.agentEvent(n, this.now + delay, { type: "dial" });
  }

  private dialBackoff(): Backoff {
    const { reconnectInitialMs, reconnectMaxMs } = this.settings.peerLink;
    return new Backoff({ initialMs: reconnectInitialMs, maxMs: reconnectMaxMs, random: this.rng });
  }

  /** The next reconnect delay, measured on this machine's clock. */
  private nextBackoff(n: NodeState): number {
    return n.dial.next() / n.rate;
  }

  private dial(n: NodeState): void {
    n.dialScheduled = false;
    if (n.linkUp) return;
    const p = this.nodes[n.peer];
    if (p.agentRunning && !p.paused && !this.cuts.agent.mn1 && !this.cuts.agent.mn2) {
      // TCP connect plus the two round trips of the handshake.
      const took = this.latency(n.name) + this.latency(p.name) + this.latency(n.name) + this.latency(p.name);
      this.queue.push(this.now + took, { kind: "connect", dialer: n.name, gens: { mn1: this.nodes.mn1.agentGen, mn2: this.nodes.mn2.agentGen } });
    } else {
      this.scheduleDial(n, this.nextBackoff(n));
    }
  }

  private onConnect(dialer: SimNode, gens: Record<SimNode, number>): void {
    const a = this.nodes.mn1;
    const b = this.nodes.mn2;
    const alive = (n: NodeState) => n.agentRunning && n.agentGen === gens[n.name] && !n.paused;
    if (!alive(a) || !alive(b) || this.cuts.agent.mn1 || this.cuts.agent.mn2) {
      const d = this.nodes[dialer];
      if (d.agentRunning && d.agentGen === gens[dialer]) this.scheduleDial(d, this.nextBackoff(d));
      return;
    }
    if (a.linkUp && b.linkUp && a.connGen === b.connGen) return; // the other side's dial won
    const gen = ++this.connSeq;
    this.lastDeliveryAt.mn1 = this.now;
    this.lastDeliveryAt.mn2 = this.now;
    this.held.mn1 = [];
    this.held.mn2 = [];
    this.note(dialer, `peer link connected (#${gen})`);
    const replaced: Record<SimNode, boolean> = { mn1: a.linkUp, mn2: b.linkUp };
    for (const n of [a, b]) {
      n.linkUp = true;
      n.connGen = gen;
      n.lastFrameAt = this.now;
      n.dial.reset();
      this.agentEvent(n, this.now + this.settings.peerLink.idleTimeoutMs / n.rate, { type: "idle-check", connGen: gen });
    }
    for (const n of [a, b]) {
      if (!n.core || n.connGen !== gen) continue;
      // A side that still had a (half-open) connection sees it replaced: down, then up.
      if (replaced[n.name]) this.stepCore(n, { kind: "peer-down", reason: "connection replaced" });
      this.stepCore(n, { kind: "peer-up" });
      // The daemon tells the peer its state at once rather than at the next tick.
      n.host?.heartbeatNow();
    }
  }

  /** This side gives up the connection (idle): tells the peer if it can, reconnects later. */
  private closeLink(n: NodeState, why: string): void {
    this.transmit(n, n.connGen, { kind: "close" });
    this.linkDown(n, why);
  }

  private linkDown(n: NodeState, reason: string): void {
    n.linkUp = false;
    this.note(n.name, `peer link down: ${reason}`);
    this.stepCore(n, { kind: "peer-down", reason });
    this.scheduleDial(n, this.nextBackoff(n));
  }

  private latency(from: SimNode): number {
    const c = this.impairment[from];
    const min = c ? c.minLatencyMs : this.settings.minLatencyMs;
    const max = c ? c.maxLatencyMs : this.settings.maxLatencyMs;
    return min + this.rng() * (max - min);
  }

  /** Puts a frame on the wire from `n` to its peer, under the cuts and conditions of that direction. */
  private transmit(n: NodeState, connGen: number, frame: Frame): void {
    const from = n.name;
    if (this.cuts.agent[from]) {
      if (this.cutMode[from] === "hold") this.held[from].push({ connGen, frame });
      return;
    }
    const c = this.impairment[from];
    const lossRate = c ? c.lossRate : this.settings.lossRate;
    const duplicateRate = c ? c.duplicateRate : this.settings.duplicateRate;
    const reorder = c ? c.reorder : this.settings.reorder;
    // A close (FIN) is neither lost nor duplicated by a lossy link: TCP retransmits it.
    const reliable = frame.kind === "close";
    const copies = !reliable && duplicateRate > 0 && this.rng() < duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (!reliable && lossRate > 0 && this.rng() < lossRate) continue;
      let at = this.now + this.latency(from);
      if (!reorder) {
        at = Math.max(at, this.lastDeliveryAt[from]);
        this.lastDeliveryAt[from] = at;
      }
      this.queue.push(at, { kind: "deliver", to: n.peer, connGen, frame });
    }
  }

  /** A "hold" cut healed: the held frames go out in order (retransmission). A "drop" cut forgets them. */
  private releaseHeld(from: SimNode, stillCut: boolean): void {
    const frames = this.held[from];
    this.held[from] = [];
    if (stillCut) return;
    for (const { connGen, frame } of frames) this.transmit(this.nodes[from], connGen, frame);
  }

  // ---- Keepalived ------------------------------------------------------------------------

  private startKeepalived(n: NodeState): boolean {
    if (n.kaRefusesStart) {
      this.note(n.name, "keepalived failed to start");
      return false;
    }
    n.keepalivedRunning = true;
    n.keepalivedGen++;
    n.ka = "fault";
    n.masterDownAt = null;
    this.note(n.name, "keepalived started");
    return true;
  }

  private stopKeepalived(n: NodeState, why: string): void {
    if (!n.keepalivedRunning) return;
    if (n.ka === "master") this.leaveMaster(n, true);
    n.keepalivedRunning = false;
    n.keepalivedGen++;
    n.ka = "stopped";
    n.masterDownAt = null;
    this.note(n.name, why);
  }

  private leaveMaster(n: NodeState, clean: boolean): void {
    n.holdsVip = false;
    n.ka = "fault";
    this.note(n.name, "keepalived dropped the VIP");
    const p = this.nodes[n.peer];
    // A live Keepalived leaving MASTER sends a priority-0 advert: a waiting BACKUP takes over after the skew time.
    if (clean && p.ka === "backup" && !this.cuts.vrrp[n.name]) {
      p.masterDownAt = this.now + this.settings.keepalivedSkewMs / p.rate;
      this.queue.push(p.masterDownAt, { kind: "keepalived", node: p.name });
    }
  }

  private scheduleLeaseCheck(n: NodeState): void {
    if (n.leaseCheckPending) return;
    n.leaseCheckPending = true;
    this.queue.push(n.leaseFreshUntil, { kind: "lease-check", node: n.name });
  }

  /** Brings every Keepalived up to date with its inputs and timers, then records who holds the VIP. */
  private settle(): void {
    // Runs after every event: the two nodes by reference, in the order a loop over SIM_NODES takes.
    const a = this.nodes.mn1;
    const b = this.nodes.mn2;
    this.settleInputs(a);
    this.settleInputs(b);
    this.settleTimer(a, b);
    this.settleTimer(b, a);
    if (a.ka === "master" && b.ka === "master" && !this.cuts.vrrp.mn2) {
      // Equal priorities: the higher address (mn2) stays MASTER; mn1 hears it and yields.
      a.ka = "backup";
      a.holdsVip = false;
      a.masterDownAt = null;
      this.note("mn1", "keepalived yielded to mn2's adverts (two masters)");
    }
    const both = a.holdsVip && b.holdsVip;
    if (both && this.splitBrainAt[this.splitBrainAt.length - 1] !== this.now) this.splitBrainAt.push(this.now);
    const owner: SimNode | null = both ? this.lastVipOwner : a.holdsVip ? "mn1" : b.holdsVip ? "mn2" : null;
    if (owner !== this.lastVipOwner) {
      this.vipChanges.push({ at: this.now, from: this.lastVipOwner, to: owner });
      this.lastVipOwner = owner;
    }
    // Keepalived reports every move of the VIP it makes; the agent looks at once.
    if (a.host && a.vipFed !== null && a.vipFed !== a.holdsVip) this.scheduleVipLook(a, this.settings.vipLookMs);
    if (b.host && b.vipFed !== null && b.vipFed !== b.holdsVip) this.scheduleVipLook(b, this.settings.vipLookMs);
  }

  /** Keepalived's state from its inputs: FAULT unless allowed (up, gate file open, not stuck, lease fresh). */
  private settleInputs(n: NodeState): void {
    if (!n.keepalivedRunning) return;
    const allowed = n.machineUp && n.gateFileOpen && !n.kaStuck && this.now < n.leaseFreshUntil;
    if (!allowed) {
      if (n.ka === "master") this.leaveMaster(n, true);
      n.ka = "fault";
      n.masterDownAt = null;
    } else if (n.ka === "fault") {
      n.ka = "backup";
      n.masterDownAt = null;
    }
  }

  /** A BACKUP's master-down timer: held while it hears the peer MASTER, else started, else run out (it takes the VIP). */
  private settleTimer(n: NodeState, p: NodeState): void {
    if (n.ka !== "backup") return;
    if (p.ka === "master" && !this.cuts.vrrp[p.name]) {
      // Hears the MASTER's adverts: stays BACKUP (nopreempt); the timer restarts when they stop.
      n.masterDownAt = null;
      return;
    }
    if (n.masterDownAt === null) {
      n.masterDownAt = this.now + this.settings.keepalivedDownTimerMs / n.rate;
      this.queue.push(n.masterDownAt, { kind: "keepalived", node: n.name });
    } else if (this.now >= n.masterDownAt) {
      n.ka = "master";
      n.masterDownAt = null;
      n.holdsVip = true;
      this.note(n.name, "keepalived took the VIP");
    }
  }

  private scheduleVipLook(n: NodeState, delayMs: number): void {
    if (n.vipLookPending || !n.agentRunning) return;
    n.vipLookPending = true;
    this.agentEvent(n, this.now + delayMs / n.rate, { type: "vip-look" });
  }

  /** The agent looks at its interface (as `ip addr` does) and tells its core when the VIP came or went. */
  private lookAtVip(n: NodeState): void {
    n.vipLookPending = false;
    if (n.vipFed === n.holdsVip) return;
    n.vipFed = n.holdsVip;
    this.stepCore(n, { kind: "vip-observed", present: n.holdsVip });
    this.maybeDuplicateCheck(n);
  }

  /** Like the daemon's DuplicateWatch: active while the agent holds the role and has seen its VIP. */
  private duplicateWatchActive(n: NodeState): boolean {
    return this.settings.duplicateCheckIntervalMs > 0 && n.core !== null && n.vipFed === true && (n.role === "holder" || n.role === "handing-off");
  }

  private maybeDuplicateCheck(n: NodeState): void {
    if (n.dupBusy || !this.duplicateWatchActive(n)) return;
    n.dupBusy = true;
    this.agentEvent(n, Math.max(this.now, n.dupNextAt), { type: "dup-check" });
  }

  /** One probe from the holder: the peer's MAC answers if it holds the VIP and ARP flows both ways. */
  private runDuplicateCheck(n: NodeState): void {
    if (!this.duplicateWatchActive(n)) {
      n.dupBusy = false;
      return;
    }
    const p = this.nodes[n.peer];
    const answered = p.holdsVip && !this.cuts.arp[n.name] && !this.cuts.arp[p.name];
    const took = answered ? 2 + 30 : this.settings.probeTimeoutMs;
    this.agentEvent(n, this.now + took / n.rate, {
      type: "callback",
      run: () => {
        n.dupBusy = false;
        n.dupNextAt = this.now + this.settings.duplicateCheckIntervalMs / n.rate;
        if (!this.duplicateWatchActive(n)) return;
        // Whoever answers at the end of the listening window is what the probe reports.
        const other = p.holdsVip && !this.cuts.arp[n.name] && !this.cuts.arp[p.name];
        this.stepCore(n, { kind: "duplicate-check", ownMac: SIM_MACS[n.name], otherMacs: other ? [SIM_MACS[p.name]] : [], detail: other ? `${p.name} answers` : "no answer" });
        this.maybeDuplicateCheck(n);
      },
    });
  }

  // ---- adapter faults and the watchdog's repair --------------------------------------------

  /** Keepalived held in FAULT (on) whatever its gate and lease, or released (off). */
  setKeepalivedStuck(name: SimNode, stuck: boolean): void {
    const n = this.nodes[name];
    if (n.kaStuck === stuck) return;
    n.kaStuck = stuck;
    this.note(name, stuck ? "keepalived stuck in FAULT" : "keepalived no longer stuck");
    this.settle();
  }

  /** Keepalived's binary broken (on): the running one exits and no start succeeds; off: the supervisor starts it again. */
  setKeepalivedRefusesStart(name: SimNode, refuses: boolean): void {
    const n = this.nodes[name];
    if (n.kaRefusesStart === refuses) return;
    n.kaRefusesStart = refuses;
    this.note(name, refuses ? "keepalived binary broken" : "keepalived binary fixed");
    if (refuses) this.stopKeepalived(n, "keepalived exited (binary broken)");
    else if (n.machineUp && n.agentRunning && !n.keepalivedRunning) {
      // The supervisor's next restart attempt.
      this.queue.push(this.now + 1_000 / n.rate, { kind: "keepalived-start", node: name, gen: n.keepalivedGen });
    }
    this.settle();
  }

  /** The lease guard is gone (killed, its pid file removed): the lease goes stale; only a repair or a new agent brings one back. */
  killLeaseGuard(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.machineUp) return;
    n.leaseGuardGone = true;
    n.leaseFreshUntil = Math.min(n.leaseFreshUntil, this.now);
    this.note(name, "lease guard gone");
    this.settle();
  }

  /** `ip addr del` of the VIP: Keepalived stays MASTER (it does not notice) and nobody serves the VIP. */
  removeVipByHand(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.holdsVip) return;
    n.holdsVip = false;
    this.note(name, "VIP removed by hand");
    this.settle();
    // Keepalived does not report it: the agent's 1 s poll does.
    this.scheduleVipLook(n, this.settings.vipPollMs);
  }

  /** The gate file rewritten behind the agent's back (closed). */
  rewriteTrackFiles(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.machineUp) return;
    n.gateFileOpen = false;
    this.note(name, "gate file rewritten (closed)");
    this.settle();
  }

  /**
   * A second agent process for the same node, as it behaved before the instance lock: it
   * writes a closed gate, replaces (and on exit removes) the lease guard, and restarts
   * Keepalived as a "leftover". Then it exits.
   */
  secondAgent(name: SimNode): void {
    const n = this.nodes[name];
    if (!n.machineUp) return;
    this.note(name, "a second agent process started");
    n.gateFileOpen = false;
    this.killLeaseGuard(name);
    if (n.keepalivedRunning) this.restartKeepalived(name, 200);
  }

  /** The watchdog's repair: a fresh lease guard, the gate file rewritten, Keepalived restarted. */
  private repairKeepalived(n: NodeState): { actions: string[] } | { error: string } {
    if (!n.machineUp) return { error: "machine down" };
    const actions: string[] = [];
    if (n.leaseGuardGone) {
      n.leaseGuardGone = false;
      actions.push("started a new lease guard");
    }
    n.leaseFreshUntil = this.now + this.settings.election.leaseMs / n.rate;
    this.scheduleLeaseCheck(n);
    if (n.gateFileOpen !== n.gateOpen) {
      n.gateFileOpen = n.gateOpen;
      actions.push("rewrote the gate file");
    }
    this.stopKeepalived(n, "keepalived stopped for a repair");
    if (!this.startKeepalived(n)) {
      this.settle();
      return { error: "keepalived does not start" };
    }
    actions.push("restarted keepalived");
    this.note(n.name, `repaired: ${actions.join(", ")}`);
    this.settle();
    return { actions };
  }

  // ---- clocks and the log ----------------------------------------------------------------

  private local(n: NodeState): number {
    return n.clockOffset + (this.now - n.agentStartedAt) * n.rate;
  }

  private note(node: SimNode, what: string): void {
    this.log.push({ at: this.now, node, what });
    if (this.log.length > this.settings.logLimit * 2) this.log.splice(0, this.log.length - this.settings.logLimit);
  }

  /** The world's log as readable lines (for failing tests and seeds). */
  trace(last = 80): string {
    return this.log
      .slice(-last)
      .map((e) => `${e.at.toFixed(1).padStart(9)} ms  ${e.node}  ${e.what}`)
      .join("\n");
  }
}

function other(name: SimNode): SimNode {
  return name === "mn1" ? "mn2" : "mn1";
}
