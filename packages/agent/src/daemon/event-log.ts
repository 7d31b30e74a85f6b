import type { Logger } from "@mnha/shared";
import type { Clock } from "@mnha/shared";
import type { HaEvent } from "../contracts.js";

/**
 * Recent HA events in memory, newest last, each also written to the log. The durable,
 * replicated audit store builds on the same records.
 */
export class EventLog {
  private readonly events: HaEvent[] = [];
  private seq = 0;
  private readonly listeners: ((event: HaEvent, wallMs: number) => void)[] = [];

  constructor(
    private readonly node: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly startedAt: number,
    private readonly capacity = 2_000,
  ) {}

  /** `at`: when it happened, if not now (an event held back and recorded later: claim-retry-digest.ts). */
  record(type: string, message: string, fields: Record<string, unknown> = {}, level: "info" | "warn" | "error" = "info", at?: { wallMs: number; monoMs: number }): HaEvent {
    const wallMs = at?.wallMs ?? this.clock.wallNow();
    const event: HaEvent = {
      seq: ++this.seq,
      node: this.node,
      time: new Date(wallMs).toISOString(),
      uptimeMs: Math.round((at?.monoMs ?? this.clock.now()) - this.startedAt),
      type,
      message,
      fields,
    };
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    this.logger[level]({ event: type, ...fields }, message);
    for (const listener of this.listeners) listener(event, wallMs);
    return event;
  }

  /** `wallMs` is the instant `time` shows, as a number (no need to parse it back). */
  onEvent(listener: (event: HaEvent, wallMs: number) => void): void {
    this.listeners.push(listener);
  }

  /** Newest first. */
  recent(options: { limit?: number; type?: string } = {}): HaEvent[] {
    const limit = Math.max(1, Math.min(options.limit ?? 50, this.capacity));
    const matching = options.type ? this.events.filter((e) => e.type === options.type || e.type.startsWith(`${options.type}.`)) : this.events;
    return matching.slice(-limit).reverse();
  }
}
