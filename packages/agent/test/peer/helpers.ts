/** Test plumbing for the peer link: loopback ports, captured logs and events, raw clients, a recording relay. */
import { createServer } from "node:net";
import { pino } from "pino";
import type { Logger } from "@mnha/shared";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { Heartbeat } from "@mnha/protocol";
import type { PeerLinkEvent } from "../../src/contracts.js";
import { PeerLink, type PeerLinkOptions } from "../../src/peer/peer-link.js";

export const LOOPBACK = "127.0.0.1";
/** 32 random bytes' worth, as the config now demands (base64 of 32 bytes). */
export const SECRET = "q3HfU0Jc1m8yR2wKp5sXo7ZtVb9eLd4NgAiC6uEjMrY=";

/*
 * Ports for test listeners come from below the kernel's ephemeral range (32768-60999 by default),
 * and each vitest worker has its own block. A port from listen(0) is ephemeral: between closing
 * it and the node binding it, another worker's listen(0) or any outgoing connection's source
 * port could take it (CI once failed on EADDRINUSE exactly so). Here only this worker hands out
 * ports of its block, and nothing else picks them by itself.
 */
const PORT_BASE = 20_000;
const PORT_BLOCK = 500;
const PORT_BLOCKS = 24; // 20000-31999, below the ephemeral range
const workerBlock = (Number(process.env["VITEST_POOL_ID"] ?? "1") - 1 + PORT_BLOCKS) % PORT_BLOCKS;
// A random start, so two files that run one after the other in a worker do not begin on the same port.
let nextInBlock = Math.floor(Math.random() * PORT_BLOCK);

/** A port of this worker's block that nothing is bound to on 127.0.0.1; no two calls in a file return the same one. */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < PORT_BLOCK; tried++) {
    const port = PORT_BASE + workerBlock * PORT_BLOCK + (nextInBlock++ % PORT_BLOCK);
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE + workerBlock * PORT_BLOCK}-${PORT_BASE + (workerBlock + 1) * PORT_BLOCK - 1} on ${LOOPBACK}`);
}

/** Binding the port works (nothing of ours is left on it). */
export async function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, LOOPBACK, () => server.close(() => resolve(true)));
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger: Logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines, raw };
}

export interface TestNode {
  link: PeerLink;
  events: PeerLinkEvent[];
  logs: LogLine[];
  rawLogs: string[];
  messages: () => Extract<PeerLinkEvent, { kind: "message" }>["message"][];
  count: (kind: PeerLinkEvent["kind"]) => number;
  /** Each refusal (the helper sets refusalSummaryMs 0, so every summary covers exactly one). */
  refusals: () => { remote: string; code: string; reason: string }[];
}

type NodeOptions = Partial<Omit<PeerLinkOptions, "logger" | "self" | "peer">> & {
  name: string;
  port: number;
  peerName: string;
  peerPort: number;
  /** Default loopback. */
  listenAddress?: string;
};

export function makeNode(options: NodeOptions): TestNode {
  const { name, port, peerName, peerPort, listenAddress, ...rest } = options;
  const { logger, lines, raw } = captureLogger();
  const link = new PeerLink({
    self: { name, listenAddress: listenAddress ?? LOOPBACK, listenPort: port },
    peer: { name: peerName, address: LOOPBACK, port: peerPort },
    secret: SECRET,
    logger,
    reconnectInitialMs: 20,
    reconnectMaxMs: 100,
    handshakeTimeoutMs: 1_000,
    refusalSummaryMs: 0,
    ...rest,
  });
  const events: PeerLinkEvent[] = [];
  link.onEvent((event) => events.push(event));
  return {
    link,
    events,
    logs: lines,
    rawLogs: raw,
    messages: () => events.flatMap((e) => (e.kind === "message" ? [e.message] : [])),
    count: (kind) => events.filter((e) => e.kind === kind).length,
    refusals: () => events.flatMap((e) => (e.kind === "refusals" ? [e.first] : [])),
  };
}

/**
 * Sends `text` as one sealed frame on `link`'s active connection, unchecked: what a buggy or
 * compromised peer that holds the session key could send. Test-only reach into the link.
 */
export function sendSealedUnchecked(link: PeerLink, text: string): boolean {
  const inner = link as unknown as { activeLink(): unknown; sendSealed(l: unknown, t: string): void };
  const active = inner.activeLink();
  if (!active) return false;
  inner.sendSealed(active, text);
  return true;
}

/** Two nodes that point at each other on two fresh loopback ports. */
export async function makePair(
  overrides: { a?: Partial<NodeOptions>; b?: Partial<NodeOptions> } = {},
): Promise<{ a: TestNode; b: TestNode; portA: number; portB: number }> {
  const portA = await freePort();
  const portB = await freePort();
  const a = makeNode({ name: "mn-a", port: portA, peerName: "mn-b", peerPort: portB, ...overrides.a });
  const b = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: portA, ...overrides.b });
  return { a, b, portA, portB };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function heartbeat(node: string, seq: number): Heartbeat {
  return {
    type: "heartbeat",
    seq,
    node,
    epoch: 3,
    holder: "mn-a",
    role: "standby",
    eligible: true,
    reasons: [],
    gatewayReachable: true,
    leaseRemainingMs: 0,
    vipPresent: false,
    keepalived: "backup",
    services: [{ name: "mn", healthy: true, critical: true }],
  };
}

/** A raw WebSocket client: what a stranger could do. */
export class RawClient {
  readonly received: string[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(port: number, options: { maxPayload?: number } = {}) {
    this.ws = new WebSocket(`ws://${LOOPBACK}:${port}/`, { perMessageDeflate: false, ...options });
    this.ws.on("error", () => {});
    this.ws.on("message", (data: RawData) => this.received.push(String(data)));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("close", () => reject(new Error("closed before open")));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => this.ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })));
  }

  frames(): Record<string, unknown>[] {
    return this.received.map((text) => JSON.parse(text) as Record<string, unknown>);
  }
}

/**
 * A relay between a dialer and a listener that records every frame in both directions and
 * can inject, replay, hold back and cut frames: the wire as an on-path attacker sees it.
 */
export class RecordingRelay {
  readonly frames: { direction: "to-listener" | "to-dialer"; data: string; bytes: Buffer; binary: boolean }[] = [];
  private readonly server: WebSocketServer;
  private readonly pairs = new Set<{ dialer: WebSocket; listener: WebSocket }>();
  /** When set, decides what to forward for each binary frame towards the listener (default: the frame itself). */
  tamperToListener: ((frame: Buffer) => Buffer[]) | undefined;
  connections = 0;

  private constructor(server: WebSocketServer) {
    this.server = server;
  }

  static async start(port: number, targetPort: number): Promise<RecordingRelay> {
    const server = new WebSocketServer({ host: LOOPBACK, port, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      server.once("listening", () => resolve());
      server.once("error", reject);
    });
    const relay = new RecordingRelay(server);
    server.on("connection", (dialer) => relay.bridge(dialer, targetPort));
    return relay;
  }

  private bridge(dialer: WebSocket, targetPort: number): void {
    this.connections++;
    const listener = new WebSocket(`ws://${LOOPBACK}:${targetPort}/`, { perMessageDeflate: false });
    const pair = { dialer, listener };
    this.pairs.add(pair);
    const queued: { data: Buffer; binary: boolean }[] = [];
    const toListener = (data: Buffer, binary: boolean): void => {
      if (listener.readyState === WebSocket.OPEN) listener.send(data, { binary });
      else queued.push({ data, binary });
    };
    dialer.on("message", (data, binary) => {
      const bytes = asBuffer(data);
      this.frames.push({ direction: "to-listener", data: bytes.toString("utf8"), bytes, binary });
      if (binary && this.tamperToListener) for (const out of this.tamperToListener(bytes)) toListener(out, true);
      else toListener(bytes, binary);
    });
    listener.on("open", () => {
      for (const item of queued.splice(0)) listener.send(item.data, { binary: item.binary });
    });
    listener.on("message", (data, binary) => {
      const bytes = asBuffer(data);
      this.frames.push({ direction: "to-dialer", data: bytes.toString("utf8"), bytes, binary });
      if (dialer.readyState === WebSocket.OPEN) dialer.send(bytes, { binary });
    });
    const end = (): void => {
      this.pairs.delete(pair);
      dialer.terminate();
      listener.terminate();
    };
    dialer.on("close", end);
    listener.on("close", end);
    dialer.on("error", end);
    listener.on("error", end);
  }

  /** Send `data` to the listener side of every relayed connection, as if the dialer had sent it (a string as text, a Buffer as binary). */
  injectToListener(data: string | Buffer): number {
    let sent = 0;
    for (const { listener } of this.pairs) {
      if (listener.readyState === WebSocket.OPEN) {
        listener.send(data, { binary: typeof data !== "string" });
        sent++;
      }
    }
    return sent;
  }

  async stop(): Promise<void> {
    for (const { dialer, listener } of this.pairs) {
      dialer.terminate();
      listener.terminate();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
