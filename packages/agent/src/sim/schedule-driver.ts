/**
 * Plays a fault schedule into a PairWorld: each fault's start and end become world events.
 * Overlapping faults of one kind are counted, so the world sees a fault end only when the
 * last of them ends. It also keeps the record the causality check needs: when something
 * happened to which node (or to the network between them), and what is wrong right now.
 */
import type { CutMode, LinkConditions, PairWorld, SimNode } from "./pair-world.js";
import { SIM_NODES } from "./pair-world.js";
import { describeFault, type Direction, type Fault, type Schedule } from "./schedule.js";

/** Something that happened to one node or to the network between them. */
export interface Activity {
  at: number;
  scope: SimNode | "net";
  what: string;
}

type Counter = "crash" | "kill-agent" | "stop-agent" | "pause" | "failed" | "hung" | "gateway-cut" | "keepalived" | "keepalived-stuck" | "keepalived-refuses-start";

export class ScheduleDriver {
  readonly activity: Activity[] = [];
  private readonly count: Record<SimNode, Record<Counter, number>> = { mn1: blankCounts(), mn2: blankCounts() };
  private gatewayDown = 0;
  private readonly cuts = { agent: { mn1: [] as CutMode[], mn2: [] as CutMode[] }, vrrp: { mn1: 0, mn2: 0 }, arp: { mn1: 0, mn2: 0 } };
  private readonly impairments: Record<SimNode, LinkConditions[]> = { mn1: [], mn2: [] };
  /** The last agent-down fault to start on each node: it says how the agent goes (kill or stop). */
  private readonly agentDownKind: Record<SimNode, "kill-agent" | "stop-agent"> = { mn1: "kill-agent", mn2: "kill-agent" };

  constructor(
    private readonly world: PairWorld,
    private readonly schedule: Schedule,
  ) {}

  /** Registers every fault with the world; call before running it. */
  install(options: { withoutWallJumps?: boolean } = {}): void {
    const w = this.world;
    for (const name of SIM_NODES) {
      w.at(this.schedule.bootAt[name], name, "boot", () => {
        this.record(name, "machine booted");
        this.reconcile(name);
      });
    }
    for (const fault of this.schedule.faults) {
      if (options.withoutWallJumps && fault.kind === "wall-jump") continue;
      const scope = scopeOf(fault);
      w.at(fault.at, scope === "net" ? "mn1" : scope, describeFault(fault), () => {
        // A wall-clock jump is no cause for anything: the decisions never read the wall clock.
        if (fault.kind !== "wall-jump") this.record(scope, `start: ${describeFault(fault)}`);
        this.begin(fault);
      });
      if ("until" in fault && fault.kind !== "keepalived-restart") {
        w.at(fault.until, scope === "net" ? "mn1" : scope, `end of ${describeFault(fault)}`, () => {
          this.record(scope, `end: ${describeFault(fault)}`);
          this.end(fault);
        });
      }
    }
    // The heal: whatever a fault left behind (an agent that finished stopping late) is put right.
    const heal = this.schedule.healAt;
    for (const at of [heal, heal + 100, heal + 2_700]) {
      for (const name of SIM_NODES) w.at(at, name, "heal", () => this.reconcile(name));
    }
  }

  /** Any fault active on `node` right now (or the gateway down for both)? */
  faultyNow(node: SimNode): boolean {
    const c = this.count[node];
    return this.gatewayDown > 0 || c.crash + c["kill-agent"] + c["stop-agent"] + c.pause + c.failed + c.hung + c["gateway-cut"] + c.keepalived + c["keepalived-stuck"] + c["keepalived-refuses-start"] > 0;
  }

  /** Any cut or impairment between the MNs right now? */
  netFaultyNow(): boolean {
    return SIM_NODES.some((n) => this.cuts.agent[n].length > 0 || this.cuts.vrrp[n] > 0 || this.cuts.arp[n] > 0 || this.impairments[n].length > 0);
  }

  private record(scope: SimNode | "net", what: string): void {
    this.activity.push({ at: this.world.now, scope, what });
  }

  private begin(fault: Fault): void {
    const w = this.world;
    switch (fault.kind) {
      case "crash":
      case "kill-agent":
      case "stop-agent":
      case "pause":
      case "gateway-cut":
        this.count[fault.node][fault.kind]++;
        if (fault.kind === "kill-agent" || fault.kind === "stop-agent") this.agentDownKind[fault.node] = fault.kind;
        this.reconcile(fault.node);
        return;
      case "services":
        this.count[fault.node][fault.state]++;
        this.reconcile(fault.node);
        return;
      case "gateway-down":
        this.gatewayDown++;
        w.setGatewayDown(true);
        return;
      case "link-cut":
        for (const from of sides(fault.from)) this.cuts.agent[from].push(fault.mode);
        this.applyCuts();
        return;
      case "vrrp-cut":
      case "arp-cut":
        for (const from of sides(fault.from)) this.cuts[fault.kind === "vrrp-cut" ? "vrrp" : "arp"][from]++;
        this.applyCuts();
        return;
      case "link-impair":
        this.impairments[fault.from].push(fault.conditions);
        w.setLinkConditions(fault.from, fault.conditions);
        return;
      case "keepalived-restart": {
        this.count[fault.node].keepalived++;
        w.restartKeepalived(fault.node, fault.until - fault.at);
        w.at(fault.until, fault.node, "keepalived back", () => {
          this.count[fault.node].keepalived--;
          this.record(fault.node, "end: keepalived restart");
        });
        return;
      }
      case "demote":
        w.demote(fault.node);
        return;
      case "wall-jump":
        w.jumpWall(fault.node, fault.deltaMs);
        return;
      case "keepalived-stuck":
        this.count[fault.node][fault.kind]++;
        w.setKeepalivedStuck(fault.node, true);
        return;
      case "keepalived-refuses-start":
        this.count[fault.node][fault.kind]++;
        w.setKeepalivedRefusesStart(fault.node, true);
        return;
      case "lease-guard-gone":
        w.killLeaseGuard(fault.node);
        return;
      case "vip-removed":
        w.removeVipByHand(fault.node);
        return;
      case "track-files-rewritten":
        w.rewriteTrackFiles(fault.node);
        return;
      case "second-agent":
        w.secondAgent(fault.node);
        return;
    }
  }

  private end(fault: Fault): void {
    const w = this.world;
    switch (fault.kind) {
      case "crash":
      case "kill-agent":
      case "stop-agent":
      case "pause":
      case "gateway-cut":
        this.count[fault.node][fault.kind]--;
        this.reconcile(fault.node);
        if (fault.kind === "stop-agent") {
          // A clean stop may still be handing off; start the agent once it has exited.
          const grace = w.settings.election.handoffTimeoutMs + 1_100;
          w.at(fault.until + grace, fault.node, "restart after stop", () => this.reconcile(fault.node));
        }
        return;
      case "services":
        this.count[fault.node][fault.state]--;
        this.reconcile(fault.node);
        return;
      case "gateway-down":
        this.gatewayDown--;
        if (this.gatewayDown === 0) w.setGatewayDown(false);
        return;
      case "link-cut":
        for (const from of sides(fault.from)) removeOne(this.cuts.agent[from], fault.mode);
        this.applyCuts();
        return;
      case "vrrp-cut":
      case "arp-cut":
        for (const from of sides(fault.from)) this.cuts[fault.kind === "vrrp-cut" ? "vrrp" : "arp"][from]--;
        this.applyCuts();
        return;
      case "link-impair": {
        removeOne(this.impairments[fault.from], fault.conditions);
        w.setLinkConditions(fault.from, this.impairments[fault.from].at(-1) ?? null);
        return;
      }
      case "keepalived-stuck":
        if (--this.count[fault.node][fault.kind] === 0) w.setKeepalivedStuck(fault.node, false);
        return;
      case "keepalived-refuses-start":
        if (--this.count[fault.node][fault.kind] === 0) w.setKeepalivedRefusesStart(fault.node, false);
        return;
      default:
        return;
    }
  }

  private applyCuts(): void {
    for (const from of SIM_NODES) {
      const modes = this.cuts.agent[from];
      this.world.setCut("agent", from, modes.length > 0, modes.at(-1) ?? "drop");
      this.world.setCut("vrrp", from, this.cuts.vrrp[from] > 0);
      this.world.setCut("arp", from, this.cuts.arp[from] > 0);
    }
  }

  /** Brings a node to the state its active faults call for. */
  private reconcile(name: SimNode): void {
    const w = this.world;
    const c = this.count[name];
    if (this.world.now < this.schedule.bootAt[name]) return;
    w.setServicesState(name, c.hung > 0 ? "hung" : c.failed > 0 ? "failed" : "healthy");
    w.setGateway(name, c["gateway-cut"] === 0);
    if (c.crash > 0) {
      w.crash(name);
      return;
    }
    if (!w.machineUp(name)) w.boot(name, { startAgent: false });
    if (c["kill-agent"] + c["stop-agent"] > 0) {
      if (w.agentRunning(name)) {
        if (this.agentDownKind[name] === "kill-agent") w.killAgent(name);
        else w.stopAgent(name);
      }
      return;
    }
    if (!w.agentRunning(name)) w.startAgent(name);
    if (c.pause > 0) w.pause(name);
    else w.resume(name);
  }
}

function blankCounts(): Record<Counter, number> {
  return { crash: 0, "kill-agent": 0, "stop-agent": 0, pause: 0, failed: 0, hung: 0, "gateway-cut": 0, keepalived: 0, "keepalived-stuck": 0, "keepalived-refuses-start": 0 };
}

function sides(direction: Direction): SimNode[] {
  return direction === "both" ? [...SIM_NODES] : [direction];
}

function removeOne<T>(items: T[], item: T): void {
  const i = items.lastIndexOf(item);
  if (i >= 0) items.splice(i, 1);
}

function scopeOf(f: Fault): SimNode | "net" {
  return "node" in f ? f.node : "net";
}
