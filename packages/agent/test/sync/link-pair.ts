/**
 * Two sync engines joined by an in-memory link. Every frame goes through the real codec
 * (`encode` then `decodeLinkMessage`), so what arrives is what the wire would carry, and every
 * frame's size is recorded. Delivery is asynchronous (setImmediate, or a delay the test
 * plans); frames still on the way when the link drops are lost, as on a real socket.
 */
import { MAX_FRAME_BYTES, decodeLinkMessage, encode, type LinkMessage } from "@mnha/protocol";
import { silentLogger } from "@mnha/shared";
import type { SyncEngine, SyncEngineOptions } from "../../src/sync/sync-engine.js";
import { SyncEngine as Engine } from "../../src/sync/sync-engine.js";
import type { FakeStore } from "./fake-store.js";

export type Side = "a" | "b";

export interface Frame {
  from: Side;
  type: LinkMessage["type"];
  bytes: number;
  /** For sync-batch frames: batches this side had sent and not yet seen acknowledged, before this one. */
  unackedBefore?: number;
}

export class LinkPair {
  readonly engines: Record<Side, SyncEngine>;
  readonly frames: Frame[] = [];
  readonly invalidFrames: string[] = [];
  /** Delays (ms) at which to deliver a frame: [] drops it, [0, 0] delivers it twice. */
  plan: (frame: Frame, message: LinkMessage) => number[] = () => [0];
  private isUp = false;
  private generation = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly immediates = new Set<NodeJS.Immediate>();
  private readonly unacked: Record<Side, Set<number>> = { a: new Set(), b: new Set() };

  constructor(stores: Record<Side, FakeStore>, options: Partial<Omit<SyncEngineOptions, "store" | "send">> = {}) {
    const make = (side: Side): SyncEngine =>
      new Engine({ store: stores[side], send: (message) => this.send(side, message), logger: silentLogger(), pushDelayMs: 20, pollIntervalMs: 200, ...options });
    this.engines = { a: make("a"), b: make("b") };
  }

  async start(): Promise<void> {
    await this.engines.a.start();
    await this.engines.b.start();
  }

  up(): void {
    this.isUp = true;
    this.generation += 1;
    this.engines.a.onLinkUp();
    this.engines.b.onLinkUp();
  }

  down(): void {
    this.isUp = false;
    this.generation += 1;
    this.unacked.a.clear();
    this.unacked.b.clear();
    this.engines.a.onLinkDown();
    this.engines.b.onLinkDown();
  }

  connected(): boolean {
    return this.isUp;
  }

  batchFrames(from?: Side): Frame[] {
    return this.frames.filter((f) => f.type === "sync-batch" && (from === undefined || f.from === from));
  }

  async close(): Promise<void> {
    this.isUp = false;
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    for (const immediate of this.immediates) clearImmediate(immediate);
    await this.engines.a.stop();
    await this.engines.b.stop();
  }

  private send(from: Side, message: LinkMessage): boolean {
    if (!this.isUp) return false;
    const text = encode(message);
    const bytes = Buffer.byteLength(text);
    const decoded = decodeLinkMessage(text, MAX_FRAME_BYTES);
    if (!decoded.ok) {
      this.invalidFrames.push(`${message.type}: ${decoded.reason}`);
      return false;
    }
    const frame: Frame = { from, type: message.type, bytes };
    if (message.type === "sync-batch") {
      frame.unackedBefore = this.unacked[from].size;
      this.unacked[from].add(message.id);
    }
    this.frames.push(frame);
    const to: Side = from === "a" ? "b" : "a";
    const generation = this.generation;
    for (const delay of this.plan(frame, message)) {
      const deliver = (): void => {
        if (generation !== this.generation) return;
        const arrived = decodeLinkMessage(text, MAX_FRAME_BYTES);
        if (!arrived.ok) return;
        const received = arrived.message;
        if (received.type === "sync-ack") this.unacked[to].delete(received.id);
        if (Engine.isSyncMessage(received)) this.engines[to].onMessage(received);
      };
      if (delay <= 0) {
        const immediate = setImmediate(() => {
          this.immediates.delete(immediate);
          deliver();
        });
        this.immediates.add(immediate);
      } else {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          deliver();
        }, delay);
        this.timers.add(timer);
      }
    }
    return true;
  }
}

/** Waits until `condition` holds, polling every 10 ms, for at most `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return condition();
}

/** Both stores hold the same events and samples, and as many as expected. */
export function inSync(stores: Record<Side, FakeStore>, expected: { events: number; samples: number }): boolean {
  return (
    stores.a.eventCount() === expected.events &&
    stores.b.eventCount() === expected.events &&
    stores.a.sampleCount() === expected.samples &&
    stores.b.sampleCount() === expected.samples
  );
}
