/**
 * The witness in the simulated world: a third machine with its own clock and its own link to
 * each MN, which faults can cut (per node) or take down (a crash, then a restart that reads
 * the last grant it persisted). Its rules are the real witness's (witness/grant-table.ts):
 * one holder at a time, a different node only after the grant ran out by the witness's clock,
 * and after a restart nobody new for one lease.
 *
 * Requests and replies each take a latency; a request or reply that meets a cut or a downed
 * witness is lost, and the agent's client reports "unreachable" after its timeout, as the
 * daemon's client does.
 */
import { GrantTable } from "../witness/grant-table.js";
import { mulberry32 } from "./event-queue.js";
import type { SimNode } from "./pair-world.js";
import type { HostWitness, WitnessAnswer } from "../host/election-host.js";

export interface WitnessModelSettings {
  minLatencyMs: number;
  maxLatencyMs: number;
  /** The witness machine's clock rate error. */
  drift: number;
  /** The agent's client gives up on a request after this long. */
  requestTimeoutMs: number;
}

export const DEFAULT_WITNESS_MODEL: WitnessModelSettings = { minLatencyMs: 0.3, maxLatencyMs: 3, drift: 0, requestTimeoutMs: 500 };

/** What the world lends the model: its true time, and a way to run something later. */
export interface WitnessWorld {
  readonly now: number;
  at(at: number, node: SimNode, label: string, run: () => void): void;
}

/** A grant the witness gave, in true time (for the tests' record). */
export interface GrantRecord {
  at: number;
  node: string;
  epoch: number;
}

export class SimWitness {
  readonly grants: GrantRecord[] = [];
  private up = true;
  private readonly cut: Record<SimNode, boolean> = { mn1: false, mn2: false };
  private table: GrantTable;
  /** What the witness persisted (atomic file): survives a crash. */
  private persisted: ReturnType<GrantTable["persistable"]> = null;
  private readonly rng: () => number;
  /** One connection per node: frames arrive in the order they were sent, each way. */
  private readonly lastArrival: Record<"up" | "down", Record<SimNode, number>> = { up: { mn1: 0, mn2: 0 }, down: { mn1: 0, mn2: 0 } };

  constructor(
    private readonly world: WitnessWorld,
    readonly settings: WitnessModelSettings,
    seed: number,
  ) {
    this.rng = mulberry32(seed ^ 0x3717e55);
    this.table = new GrantTable(this.clock(), null);
  }

  /** The witness's monotonic clock. */
  clock(): number {
    return this.world.now * (1 + this.settings.drift);
  }

  isUp(): boolean {
    return this.up;
  }

  isCut(node: SimNode): boolean {
    return this.cut[node];
  }

  setCut(node: SimNode, cut: boolean): void {
    this.cut[node] = cut;
  }

  /** The witness machine stops: it forgets everything but its file. */
  crash(): void {
    this.up = false;
  }

  /** It comes back: reads the last grant it persisted and waits one lease before granting anew. */
  restart(): void {
    if (this.up) return;
    this.up = true;
    this.table = new GrantTable(this.clock(), this.persisted);
  }

  /** The holder as the witness sees it now (null: none, or down). */
  holder(): string | null {
    return this.up ? this.table.view(this.clock()).holder : null;
  }

  /** The host adapter for `node`'s agent; `deliver` runs a callback in that agent process after a delay (true ms). */
  adapterFor(node: SimNode, deliver: (delayMs: number, run: () => void) => void): HostWitness {
    return {
      request: (ask, done) => {
        let answered = false;
        const answer = (result: WitnessAnswer): void => {
          if (answered) return;
          answered = true;
          done(result);
        };
        // The client's own timeout: no answer in time is "unreachable".
        deliver(this.settings.requestTimeoutMs, () => answer({ reachable: false, reason: `no answer within ${this.settings.requestTimeoutMs} ms` }));
        if (!this.reachableFrom(node)) return;
        this.world.at(this.arrival("up", node), node, "witness request", () => {
          if (!this.reachableFrom(node)) return;
          const decision = this.table.acquire(this.clock(), node, ask.epoch, ask.leaseMs);
          if (decision.granted && decision.changed) {
            this.persisted = this.table.persistable();
            this.grants.push({ at: this.world.now, node, epoch: ask.epoch });
          }
          const reply: WitnessAnswer = { reachable: true, granted: decision.granted, holder: decision.holder, holderEpoch: decision.holderEpoch, remainingMs: decision.remainingMs, validMs: decision.granted ? ask.leaseMs : 0 };
          this.world.at(this.arrival("down", node), node, "witness reply", () => {
            if (!this.cut[node]) deliver(0, () => answer(reply));
          });
        });
      },
      release: (epoch) => {
        if (!this.reachableFrom(node)) return;
        this.world.at(this.arrival("up", node), node, "witness release", () => {
          if (!this.reachableFrom(node)) return;
          if (this.table.release(this.clock(), node, epoch)) this.persisted = this.table.persistable();
        });
      },
    };
  }

  private reachableFrom(node: SimNode): boolean {
    return this.up && !this.cut[node];
  }

  private arrival(direction: "up" | "down", node: SimNode): number {
    const at = Math.max(this.world.now + this.latency(), this.lastArrival[direction][node]);
    this.lastArrival[direction][node] = at;
    return at;
  }

  private latency(): number {
    const { minLatencyMs, maxLatencyMs } = this.settings;
    return minLatencyMs + this.rng() * (maxLatencyMs - minLatencyMs);
  }
}
