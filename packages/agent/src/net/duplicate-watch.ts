import { readFile } from "node:fs/promises";
import type { Logger } from "@mnha/shared";
import type { ArpProbeResult, DuplicateCheckReport, DuplicateCheckStatus, DuplicateWatchApi } from "../contracts.js";

/** One duplicate-address check's outcome, as the election core takes it. */
export type DuplicateCheck = DuplicateCheckReport;

/** A duplicate check's state changes, told once each to its listeners (both watches use it). */
export class DuplicateCheckStates {
  private readonly listeners: ((status: DuplicateCheckStatus) => void)[] = [];
  private last: DuplicateCheckStatus["state"] | null = null;

  listen(listener: (status: DuplicateCheckStatus) => void): void {
    this.listeners.push(listener);
  }

  /** Tells the listeners when `status`'s state differs from the last one told. */
  note(status: DuplicateCheckStatus): void {
    if (status.state === this.last) return;
    this.last = status.state;
    for (const listener of this.listeners) listener(status);
  }
}

export interface DuplicateWatchOptions {
  /** How often the holder asks the segment who answers for the VIP (ms). */
  intervalMs: number;
  /** Asks the segment who answers for the VIP (the ARP guard's probe). */
  probe: () => Promise<ArpProbeResult>;
  /** This node's MAC on the VIP interface. */
  ownMac: () => Promise<string>;
  logger: Logger;
}

/** Reads an interface's MAC address from sysfs (`ip netns exec` mounts the namespace's own). */
export async function readInterfaceMac(iface: string): Promise<string> {
  const text = await readFile(`/sys/class/net/${iface}/address`, "utf8");
  return text.trim().toLowerCase();
}

/**
 * Duplicate address detection on the holder: while active, asks the segment every
 * `intervalMs` whether anyone else answers for the VIP and reports each answer. One probe at
 * a time, on its own timer, never on the decision path; a probe that fails reports nothing
 * (the holder keeps what it has: a failing arping must not take the VIP away). The daemon uses
 * it when the ARP guard has no long-running watch for the interval (see arping-monitor.ts).
 */
export class DuplicateWatch implements DuplicateWatchApi {
  private readonly options: DuplicateWatchOptions;
  private readonly listeners: ((check: DuplicateCheck) => void)[] = [];
  private readonly states = new DuplicateCheckStates();
  private active = false;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private stopped = false;
  private mac: string | null = null;
  /** Why the latest probe reported nothing (cleared by the next check that works), and when a check last worked. */
  private failure: string | null = null;
  private lastCheckAt: number | null = null;

  constructor(options: DuplicateWatchOptions) {
    this.options = options;
  }

  onCheck(listener: (check: DuplicateCheck) => void): void {
    this.listeners.push(listener);
  }

  onStateChange(listener: (status: DuplicateCheckStatus) => void): void {
    this.states.listen(listener);
  }

  /** Active while this node holds the VIP (role holder and the address on its interface). */
  setActive(active: boolean): void {
    if (this.stopped || this.options.intervalMs <= 0 || active === this.active) return;
    this.active = active;
    this.failure = null;
    this.lastCheckAt = null;
    if (active) this.schedule(0);
    else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.states.note(this.status());
  }

  isActive(): boolean {
    return this.active;
  }

  status(): DuplicateCheckStatus {
    if (this.options.intervalMs <= 0) return { state: "disabled", problem: null, lastCheckMsAgo: null };
    if (!this.active) return { state: "idle", problem: null, lastCheckMsAgo: null };
    const lastCheckMsAgo = this.lastCheckAt === null ? null : Math.round(performance.now() - this.lastCheckAt);
    return this.failure === null ? { state: "running", problem: null, lastCheckMsAgo } : { state: "failing", problem: this.failure, lastCheckMsAgo };
  }

  stop(): void {
    this.stopped = true;
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.timer || !this.active) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.checkOnce();
    }, delayMs);
  }

  private async checkOnce(): Promise<void> {
    if (this.probing || !this.active) return;
    this.probing = true;
    try {
      this.mac ??= await this.options.ownMac();
      const result = await this.options.probe();
      if (result.failed === true) {
        this.failure = `the ARP probe failed: ${result.detail}`;
        this.options.logger.warn({ detail: result.detail }, "duplicate-address check failed; keeping the VIP");
      } else if (this.active) {
        this.failure = null;
        this.lastCheckAt = performance.now();
        const own = this.mac;
        const check: DuplicateCheck = { ownMac: own, otherMacs: result.macs.map((m) => m.toLowerCase()).filter((m) => m !== own), detail: result.detail };
        for (const listener of this.listeners) listener(check);
      }
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.failure = this.mac === null ? `own MAC unknown: ${text}` : `the ARP probe failed: ${text}`;
      this.options.logger.warn({ err: error }, "duplicate-address check failed; keeping the VIP");
    } finally {
      this.probing = false;
      if (this.active) this.states.note(this.status());
      this.schedule(this.options.intervalMs);
    }
  }
}
