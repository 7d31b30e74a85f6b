/**
 * `mnha witness`: the third vote, on a third machine. It listens on one port, admits only the
 * two nodes' source addresses (connection gate, before any parsing), authenticates each node
 * with the peer link's handshake (the witness is the listener, named "witness"; same secret),
 * seals every later frame the same way, and answers grant requests from one GrantTable.
 *
 * The last grant is written (atomically, before the answer leaves) whenever its holder or
 * epoch changes or it is released, so that a restarted witness waits one lease before it
 * grants to anyone else.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { PROTOCOL_VERSIONS, SEALED_OVERHEAD_BYTES, MAX_WITNESS_FRAME_BYTES, WITNESS_NAME, decodeHandshake, decodeWitnessMessage, encode, type WitnessMessage } from "@mnha/protocol";
import { MnhaError, writeFileAtomicSync, type WitnessServerConfig } from "@mnha/shared";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ConnectionGate, normalizeAddress } from "../peer/connection-gate.js";
import { ListenerHandshake, refusal } from "../peer/handshake-session.js";
import type { SessionCipher } from "../peer/session-cipher.js";
import { GrantTable, type PersistedGrant } from "./grant-table.js";

export interface WitnessLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface WitnessServerOptions {
  config: WitnessServerConfig;
  secret: string;
  /** Monotonic clock (ms). */
  now: () => number;
  log: WitnessLogger;
  handshakeTimeoutMs?: number;
}

/** Reads the last grant; a missing file is "none", a malformed one refuses to start. */
export function readPersistedGrant(file: string): PersistedGrant | null {
  if (!existsSync(file)) return null;
  try {
    const value = JSON.parse(readFileSync(file, "utf8")) as unknown;
    if (value === null) return null;
    const v = value as Partial<PersistedGrant>;
    if (typeof v.node === "string" && Number.isInteger(v.epoch) && Number.isInteger(v.leaseMs) && (v.leaseMs as number) > 0) return { node: v.node, epoch: v.epoch as number, leaseMs: v.leaseMs as number };
  } catch (error) {
    throw new MnhaError("WITNESS_STATE_INVALID", `the witness's grant file ${file} cannot be read: ${(error as Error).message}`, { hint: `stop both agents' witness use or wait one lease, then remove ${file} and start again` });
  }
  throw new MnhaError("WITNESS_STATE_INVALID", `the witness's grant file ${file} is malformed`, { hint: `wait one witness lease (witness.leaseMs on the agents), remove ${file}, and start again` });
}

export class WitnessServer {
  private readonly table: GrantTable;
  private readonly gate: ConnectionGate;
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly nodeByAddress: Map<string, string>;

  constructor(private readonly options: WitnessServerOptions) {
    const persisted = readPersistedGrant(options.config.stateFile);
    this.table = new GrantTable(options.now(), persisted);
    if (persisted) options.log.info({ holder: persisted.node, epoch: persisted.epoch, waitMs: persisted.leaseMs }, "witness: restarted with a grant on file; nobody else is granted for one lease");
    this.nodeByAddress = new Map(options.config.nodes.map((n) => [n.address, n.name]));
    this.gate = new ConnectionGate({ allowed: options.config.nodes.map((n) => n.address), perSourceMax: 4, globalMax: 16 });
  }

  /** Who holds the grant now (status, tests). */
  view(): ReturnType<GrantTable["view"]> {
    return this.table.view(this.options.now());
  }

  async listen(): Promise<{ address: string; port: number }> {
    const { address, port } = this.options.config.listen;
    const timeout = this.options.handshakeTimeoutMs ?? 2_000;
    const server = createServer({ headersTimeout: timeout, requestTimeout: timeout }, (_request, response) => {
      response.writeHead(426, { "content-type": "text/plain", connection: "close" }).end("mnha witness: WebSocket only\n");
    });
    this.server = server;
    server.on("connection", (socket: Socket) => {
      const verdict = this.gate.admit(socket.remoteAddress);
      if (!verdict.ok) {
        this.options.log.warn({ remote: socket.remoteAddress, code: verdict.code }, `witness: connection refused: ${verdict.reason}`);
        socket.resetAndDestroy();
        return;
      }
      socket.once("close", verdict.release);
    });
    const wss = new WebSocketServer({ server, maxPayload: MAX_WITNESS_FRAME_BYTES + SEALED_OVERHEAD_BYTES, perMessageDeflate: false, clientTracking: true });
    this.wss = wss;
    wss.on("connection", (ws, request) => this.accept(ws, normalizeAddress(request.socket.remoteAddress ?? "")));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(error.code === "EADDRINUSE" ? new MnhaError("PORT_IN_USE", `the witness port ${address}:${port} is in use`, { hint: "stop the other process, or choose another listen.port (and witness.port on both agents)" }) : error),
      );
      server.listen(port, address, () => resolve());
    });
    const bound = server.address();
    return { address, port: typeof bound === "object" && bound ? bound.port : port };
  }

  async close(): Promise<void> {
    for (const client of this.wss?.clients ?? []) client.terminate();
    this.wss?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(ws: WebSocket, address: string): void {
    const expected = this.nodeByAddress.get(address);
    let session: ListenerHandshake | null = null;
    let cipher: SessionCipher | null = null;
    let node = "";
    const timer = setTimeout(() => {
      if (!cipher) ws.terminate();
    }, this.options.handshakeTimeoutMs ?? 2_000);
    const refuse = (code: Parameters<typeof refusal>[0], message: string): void => {
      this.options.log.warn({ remote: address, code }, `witness: refused ${expected ?? address}: ${message}`);
      if (!cipher) ws.send(encode(refusal(code, message)));
      ws.close(1008);
    };
    ws.on("close", () => clearTimeout(timer));
    ws.on("error", () => ws.terminate());
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (!cipher) {
        if (isBinary) return refuse("not-ready", "a sealed frame before the handshake");
        const text = bytes.toString("utf8");
        if (!session) {
          const hello = decodeHandshake(text);
          if (!hello.ok || hello.message.type !== "hello") return refuse("bad-frame", "expected hello");
          // The name must be the one configured for this source address.
          if (hello.message.node !== expected) return refuse("unknown-peer", `node ${hello.message.node} is not configured at ${address}`);
          session = new ListenerHandshake({ self: WITNESS_NAME, peer: expected, secret: this.options.secret, supportedVersions: PROTOCOL_VERSIONS, maxFrameBytes: MAX_WITNESS_FRAME_BYTES });
        }
        const outcome = session.receiveFrame(text);
        if (outcome.kind === "continue") ws.send(encode(outcome.send));
        else if (outcome.kind === "authenticated") {
          if (outcome.send) ws.send(encode(outcome.send));
          cipher = outcome.cipher;
          node = outcome.peer;
          clearTimeout(timer);
          this.options.log.info({ node, remote: address }, "witness: node authenticated");
        } else if (outcome.kind === "refuse") refuse(outcome.send.code, outcome.send.message);
        else ws.close();
        return;
      }
      const opened = cipher.open(bytes);
      if (!opened.ok) return refuse("forged-frame", opened.reason);
      const decoded = decodeWitnessMessage(opened.text);
      if (!decoded.ok) return refuse("bad-frame", decoded.reason);
      const reply = this.handle(node, decoded.message);
      if (reply) ws.send(cipher.seal(JSON.stringify(reply)));
    });
  }

  private handle(node: string, message: WitnessMessage): WitnessMessage | null {
    const now = this.options.now();
    switch (message.type) {
      case "witness-acquire": {
        const decision = this.table.acquire(now, node, message.epoch, message.leaseMs);
        if (decision.changed) this.persist(node, decision.holderEpoch);
        return { type: "witness-reply", id: message.id, granted: decision.granted, holder: decision.holder, holderEpoch: decision.holderEpoch, remainingMs: Math.min(3_600_000, decision.remainingMs), leaseMs: decision.granted ? Math.min(3_600_000, message.leaseMs) : 0 };
      }
      case "witness-release":
        if (this.table.release(now, node, message.epoch)) this.persist(node, message.epoch, true);
        return null;
      case "witness-query": {
        const view = this.table.view(now);
        return { type: "witness-reply", id: message.id, granted: false, holder: view.holder, holderEpoch: view.epoch, remainingMs: Math.min(3_600_000, view.remainingMs), leaseMs: 0 };
      }
      case "witness-reply":
        return null;
    }
  }

  /** On disk before the answer leaves: a restart must know whom it may have granted. */
  private persist(node: string, epoch: number, released = false): void {
    writeFileAtomicSync(this.options.config.stateFile, `${JSON.stringify(this.table.persistable())}\n`);
    this.options.log.info({ node, epoch, released }, released ? `witness: ${node} released its grant` : `witness: grant to ${node} at epoch ${epoch}`);
  }
}
