/**
 * The agent's side of the witness link: one authenticated, sealed WebSocket to `mnha witness`
 * (the agent dials, proves first, as on the peer link), kept open with reconnects. It answers
 * the host's grant requests: a request is answered by the witness's reply, or "unreachable"
 * at once when no link is up, or after `requestTimeoutMs` without a reply.
 */
import { PROTOCOL_VERSIONS, SEALED_OVERHEAD_BYTES, MAX_WITNESS_FRAME_BYTES, WITNESS_NAME, decodeWitnessMessage, encode } from "@mnha/protocol";
import { WebSocket, type RawData } from "ws";
import type { HostWitness, WitnessAnswer } from "../host/election-host.js";
import { DialerHandshake } from "../peer/handshake-session.js";
import type { SessionCipher } from "../peer/session-cipher.js";
import { Backoff } from "../util/backoff.js";

export interface WitnessClientOptions {
  self: { name: string; address?: string };
  witness: { address: string; port: number };
  secret: string;
  requestTimeoutMs: number;
  log: { info(fields: Record<string, unknown>, message: string): void; warn(fields: Record<string, unknown>, message: string): void };
}

export interface WitnessLinkState {
  connected: boolean;
  lastError: string | null;
}

export class WitnessClient implements HostWitness {
  private ws: WebSocket | null = null;
  private cipher: SessionCipher | null = null;
  private stopped = false;
  private nextId = 1;
  private readonly pending = new Map<number, { done: (answer: WitnessAnswer) => void; timer: NodeJS.Timeout }>();
  private readonly backoff = new Backoff({ initialMs: 200, maxMs: 2_000 });
  private retryTimer: NodeJS.Timeout | null = null;
  private lastError: string | null = "not connected yet";

  constructor(private readonly options: WitnessClientOptions) {}

  start(): void {
    this.stopped = false;
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.terminate();
    this.failAll("the agent is stopping");
  }

  state(): WitnessLinkState {
    return { connected: this.cipher !== null, lastError: this.cipher ? null : this.lastError };
  }

  request(ask: { epoch: number; leaseMs: number }, done: (answer: WitnessAnswer) => void): void {
    const ws = this.ws;
    const cipher = this.cipher;
    if (!ws || !cipher || ws.readyState !== WebSocket.OPEN) {
      done({ reachable: false, reason: `witness not connected (${this.lastError ?? "connecting"})` });
      return;
    }
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      done({ reachable: false, reason: `no answer from the witness within ${this.options.requestTimeoutMs} ms` });
    }, this.options.requestTimeoutMs);
    this.pending.set(id, { done, timer });
    ws.send(cipher.seal(JSON.stringify({ type: "witness-acquire", id, epoch: ask.epoch, leaseMs: ask.leaseMs })));
  }

  release(epoch: number): void {
    if (this.ws?.readyState === WebSocket.OPEN && this.cipher) this.ws.send(this.cipher.seal(JSON.stringify({ type: "witness-release", epoch })));
  }

  private dial(): void {
    if (this.stopped) return;
    const { address, port } = this.options.witness;
    const local = this.options.self.address;
    const ws = new WebSocket(`ws://${address}:${port}/`, { maxPayload: MAX_WITNESS_FRAME_BYTES + SEALED_OVERHEAD_BYTES, perMessageDeflate: false, followRedirects: false, handshakeTimeout: 2_000, ...(local ? { localAddress: local } : {}) });
    this.ws = ws;
    const session = new DialerHandshake({ self: this.options.self.name, peer: WITNESS_NAME, secret: this.options.secret, supportedVersions: PROTOCOL_VERSIONS, maxFrameBytes: MAX_WITNESS_FRAME_BYTES });
    const handshakeTimer = setTimeout(() => {
      if (!this.cipher) this.fail(ws, "handshake not finished within 2 s");
    }, 4_000);
    ws.on("open", () => ws.send(encode(session.hello())));
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (!this.cipher || this.ws !== ws) {
        if (isBinary) return this.fail(ws, "sealed frame before the handshake ended");
        const outcome = session.receiveFrame(bytes.toString("utf8"));
        if (outcome.kind === "continue") ws.send(encode(outcome.send));
        else if (outcome.kind === "authenticated") {
          clearTimeout(handshakeTimer);
          this.cipher = outcome.cipher;
          this.lastError = null;
          this.backoff.reset();
          this.options.log.info({ witness: `${address}:${port}` }, "witness link up");
        } else if (outcome.kind === "refuse") {
          ws.send(encode(outcome.send));
          this.fail(ws, `refused the witness: ${outcome.send.code}: ${outcome.send.message}`);
        } else this.fail(ws, `the witness refused us: ${outcome.code}: ${outcome.reason}`);
        return;
      }
      const opened = this.cipher.open(bytes);
      if (!opened.ok) return this.fail(ws, `bad frame from the witness: ${opened.reason}`);
      const decoded = decodeWitnessMessage(opened.text);
      if (!decoded.ok || decoded.message.type !== "witness-reply") return this.fail(ws, `bad message from the witness: ${decoded.ok ? decoded.message.type : decoded.reason}`);
      const reply = decoded.message;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      clearTimeout(waiter.timer);
      waiter.done({ reachable: true, granted: reply.granted, holder: reply.holder, holderEpoch: reply.holderEpoch, remainingMs: reply.remainingMs, validMs: reply.leaseMs });
    });
    ws.on("error", (error: Error) => this.fail(ws, error.message));
    ws.on("close", () => {
      clearTimeout(handshakeTimer);
      this.fail(ws, this.lastError ?? "connection closed");
    });
  }

  private fail(ws: WebSocket, reason: string): void {
    if (this.ws !== ws) return;
    const wasUp = this.cipher !== null;
    this.ws = null;
    this.cipher = null;
    this.lastError = reason;
    ws.terminate();
    this.failAll(`witness link lost: ${reason}`);
    if (wasUp) this.options.log.warn({ reason }, "witness link down");
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => this.dial(), this.backoff.next());
  }

  private failAll(reason: string): void {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      this.pending.delete(id);
      waiter.done({ reachable: false, reason });
    }
  }
}
