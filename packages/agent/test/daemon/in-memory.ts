/** In-memory parts of an agent: the daemon's unit tests need no root, no Keepalived, no sockets. */
import { pino } from "pino";
import { deriveTimings, parseConfig, type LoadedConfig, type Logger, type MnhaConfigInput } from "@mnha/shared";
import type { ArpProbeResult, ControlHandlers, HealthEvent, KeepalivedState, LinkMessage, PeerLinkEvent, ServiceStatus, Startable, StoreHealth } from "../../src/contracts.js";
import type { AgentComponents, AgentControl, AgentStore, AgentSync } from "../../src/daemon/components.js";
import type { StoreAlert } from "../../src/store/sqlite-store.js";
import type { DialFailureReport } from "../../src/peer/dial-failure.js";

export const silentLogger = pino({ level: "silent" }) as unknown as Logger;

export function loadedConfig(overrides: Partial<MnhaConfigInput> = {}): LoadedConfig {
  const config = parseConfig({
    node: { name: "mn1", address: "10.0.0.11" },
    peers: [{ name: "mn2", address: "10.0.0.12" }],
    vip: { address: "10.0.0.100", interface: "eth0" },
    gateway: { address: "10.0.0.1" },
    auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
    dataDir: "/nonexistent/mnha-test",
    ...overrides,
  });
  return { file: "/etc/mnha/mnha.yaml", config, secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=", derived: deriveTimings(config) };
}

/** A part that writes its start and stop into a shared journal, and can be told to fail. */
class Part implements Startable {
  failStart: Error | null = null;
  constructor(
    readonly name: string,
    protected readonly journal: string[],
  ) {}
  async start(): Promise<void> {
    this.journal.push(`start ${this.name}`);
    if (this.failStart) throw this.failStart;
  }
  async stop(): Promise<void> {
    this.journal.push(`stop ${this.name}`);
  }
}

export class MemoryControl extends Part implements AgentControl {
  /** Set by a test: the next check finds the socket file gone and listens again. */
  socketRemoved = false;
  /** Set by a test: listening again fails this many times first. */
  failures = 0;
  async keepSocketFile(): Promise<boolean> {
    if (!this.socketRemoved) return false;
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error("cannot listen (test)");
    }
    this.socketRemoved = false;
    return true;
  }
}

export class MemoryKeepalived extends Part {
  gate = false;
  renewals = 0;
  vip = false;
  current: KeepalivedState = "backup";
  repairs: string[] = [];
  private readonly listeners: ((state: KeepalivedState) => void)[] = [];
  async setGate(open: boolean): Promise<void> {
    this.gate = open;
  }
  gateOpen(): boolean {
    return this.gate;
  }
  renewLease(): void {
    this.renewals++;
  }
  state(): KeepalivedState {
    return this.current;
  }
  onState(listener: (state: KeepalivedState) => void): void {
    this.listeners.push(listener);
  }
  emit(state: KeepalivedState): void {
    this.current = state;
    for (const l of this.listeners) l(state);
  }
  async vipPresent(): Promise<boolean> {
    return this.vip;
  }
  pid(): number | null {
    return 4242;
  }
  restarts(): number {
    return 0;
  }
  async repair(reason: string): Promise<{ actions: string[] }> {
    this.repairs.push(reason);
    this.journal.push("repair keepalived");
    return { actions: ["restarted keepalived"] };
  }
  /** As the driver's self-check would find its directory (set with `setUnwritable`). */
  unwritable: string | null = null;
  private readonly repairListeners: ((repair: { reason: string; actions: string[] }) => void)[] = [];
  onRepair(listener: (repair: { reason: string; actions: string[] }) => void): void {
    this.repairListeners.push(listener);
  }
  unwritableDir(): string | null {
    return this.unwritable;
  }
  /** Whether removeStrayVip manages to remove the VIP (false: as if `ip addr del` failed). */
  strayRemovable = true;
  strayRemovals = 0;
  async removeStrayVip(): Promise<boolean> {
    this.strayRemovals++;
    if (!this.vip || !this.strayRemovable) return false;
    this.vip = false;
    return true;
  }
  /** The self-check finding the directory (un)writable: told as a repair, as the driver does. */
  setUnwritable(problem: string | null): void {
    this.unwritable = problem;
    for (const listener of this.repairListeners) listener({ reason: "self-check", actions: [problem ?? "writable again"] });
  }
}

export class MemoryServices extends Part {
  healthy = true;
  private readonly listeners: ((event: HealthEvent) => void)[] = [];
  onEvent(listener: (event: HealthEvent) => void): void {
    this.listeners.push(listener);
  }
  statuses(): ServiceStatus[] {
    return [{ name: "mn", critical: true, healthy: this.healthy, successes: 1, failures: 0, lastDetail: "HTTP 200", lastLatencyMs: 1, restoreAttempts: 0, restoreState: "idle" }];
  }
  allCriticalHealthy(): boolean {
    return this.healthy;
  }
  /** Restore holds by key (maintenance, stop-node), as the real monitor keeps them. */
  readonly holds = new Map<string, readonly string[] | null>();
  holdRestores(key: string, services: readonly string[] | null): void {
    this.holds.set(key, services);
  }
  releaseRestores(key: string): void {
    this.holds.delete(key);
  }
  async checkNow(): Promise<void> {}
}

export class MemoryGateway extends Part {
  private readonly listeners: ((reachable: boolean, detail: string) => void)[] = [];
  up = true;
  onChange(listener: (reachable: boolean, detail: string) => void): void {
    this.listeners.push(listener);
  }
  override async start(): Promise<void> {
    await super.start();
    for (const l of this.listeners) l(this.up, "ping ok");
  }
  reachable(): boolean {
    return this.up;
  }
  lastRttMs(): number | null {
    return 0.5;
  }
}

export class MemoryLink extends Part {
  sent: LinkMessage[] = [];
  private readonly listeners: ((event: PeerLinkEvent) => void)[] = [];
  onEvent(listener: (event: PeerLinkEvent) => void): void {
    this.listeners.push(listener);
  }
  /** A link that is up (with the peer protocol version it negotiated) sends heartbeats. */
  up: { version: number } | null = null;
  send(message: LinkMessage): boolean {
    this.sent.push(message);
    return this.up !== null;
  }
  connected(): boolean {
    return this.up !== null;
  }
  /** As if the peer had sent or done this. */
  emit(event: PeerLinkEvent): void {
    for (const listener of this.listeners) listener(event);
  }
  version(): number | null {
    return this.up?.version ?? null;
  }
  /** What the link says about its last failed dial (set by a test). */
  failure: DialFailureReport | null = null;
  dialFailure(): DialFailureReport | null {
    return this.up ? null : this.failure;
  }
}

export class MemoryStore extends Part implements AgentStore {
  events: { type: string; message: string }[] = [];
  appendEvent(event: { type: string; message: string }): number {
    this.events.push({ type: event.type, message: event.message });
    return this.events.length;
  }
  appendSamples(): void {}
  async queryEvents() {
    return [];
  }
  async failovers() {
    return [];
  }
  async summarize() {
    return [];
  }
  health(): StoreHealth {
    return { ok: true, reason: null, sizeBytes: 4096, pending: 0, dropped: 0, lastIntegrityCheck: null };
  }
  private readonly alertListeners: ((alert: StoreAlert) => void)[] = [];
  onAlert(listener: (alert: StoreAlert) => void): void {
    this.alertListeners.push(listener);
  }
  /** What the real store reports when it fails and recovers. */
  alert(alert: StoreAlert): void {
    for (const listener of this.alertListeners) listener(alert);
  }
  onDailySummary(): void {}
}

export class MemorySync extends Part implements AgentSync {
  readonly announcements: string[] = [];
  handleLinkEvent(): void {}
  announceAgain(reason: string): void {
    this.announcements.push(reason);
  }
  isSyncMessage(): boolean {
    return false;
  }
  status() {
    return { lagEvents: 0, lagSamples: 0, lastAckAgoMs: null };
  }
}

export interface MemoryParts {
  journal: string[];
  keepalived: MemoryKeepalived;
  services: MemoryServices;
  gateway: MemoryGateway;
  link: MemoryLink;
  store: MemoryStore;
  sync: MemorySync;
  sampler: Part;
  control: MemoryControl;
  handlers: ControlHandlers | null;
  epochs: { value: number; writes: number[] };
  arp: ArpProbeResult;
  components: AgentComponents;
}

export function memoryParts(): MemoryParts {
  const journal: string[] = [];
  const parts = {
    journal,
    keepalived: new MemoryKeepalived("keepalived", journal),
    services: new MemoryServices("services", journal),
    gateway: new MemoryGateway("gateway", journal),
    link: new MemoryLink("peer link", journal),
    store: new MemoryStore("store", journal),
    sync: new MemorySync("sync", journal),
    sampler: new Part("sampler", journal),
    control: new MemoryControl("control", journal),
    handlers: null as ControlHandlers | null,
    epochs: { value: 0, writes: [] as number[] },
    arp: { occupied: false, macs: [], detail: "no answer" } as ArpProbeResult,
  };
  // The object returned: the control factory sets its `handlers` (a copy made before would keep null).
  const made = { ...parts } as typeof parts & { components: AgentComponents };
  const components: AgentComponents = {
    epochs: {
      get: () => parts.epochs.value,
      set: (epoch) => {
        parts.epochs.value = epoch;
        parts.epochs.writes.push(epoch);
      },
    },
    services: parts.services,
    gateway: parts.gateway,
    keepalived: parts.keepalived,
    arpGuard: { probe: async () => parts.arp, announce: async () => true, ownMac: async () => "02:00:00:00:00:01" },
    link: parts.link,
    store: parts.store,
    sync: parts.sync,
    sampler: parts.sampler,
    control: (handlers) => {
      made.handlers = handlers;
      return parts.control;
    },
    metrics: null,
  };
  made.components = components;
  return made;
}
