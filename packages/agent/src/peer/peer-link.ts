/**
 * The peer link: one authenticated WebSocket between the two agents.
 *
 * Each node both listens and dials, so the link comes up from either side and after either
 * side restarts. Every connection starts with the handshake of handshake-session.ts; until it
 * completes, any other frame is refused and the connection closed. After it, every frame is a
 * strict `LinkMessage` or the connection is refused with `bad-frame` and closed (the dialer
 * reconnects).
 *
 * Every frame after the handshake is sealed (AES-256-GCM, per-direction session keys from the
 * handshake, sequence numbers: @mnha/protocol framing.ts); a frame that is injected, replayed,
 * reordered or truncated is refused and closes the link.
 *
 * Strangers are kept out before they cost anything: the TCP connection event admits only the
 * configured peer address, a few connections at a time (connection-gate.ts), and a request that
 * has not become a WebSocket within the handshake timeout is cut. Refusals are counted and
 * reported as rate-limited summaries (refusal-ledger.ts), never one event each.
 *
 * One link at a time. When both nodes dial each other at once, the link dialled by the node
 * whose name sorts lower is kept. Only that lower node closes a surplus link (with refuse
 * `duplicate-link`); the higher node keeps both until told, so neither side ever sees its
 * link count drop to zero and `up`/`down` do not flap. Two authenticated links dialled by the
 * same node mean the older one is stale (its dialer keeps one connection at a time), so the
 * newer one replaces it on either side.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { everyOnBeat, type BeatApi, type CancelBeat } from "../util/beat.js";
import {
  FRAME_FAULT_CODES,
  LinkMessageSchema,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSIONS,
  SEALED_OVERHEAD_BYTES,
  decodeLinkMessage,
  encode,
  type HandshakeMessage,
  type LinkMessage,
  type Refuse,
} from "@mnha/protocol";
import { MnhaError, type Logger } from "@mnha/shared";
import type { PeerLinkApi, PeerLinkEvent } from "../contracts.js";
import { Backoff } from "../util/backoff.js";
import { ConnectionGate } from "./connection-gate.js";
import { DialerHandshake, ListenerHandshake, refusal, type HandshakeIdentity, type HandshakeOutcome, type RefuseCode } from "./handshake-session.js";
import { dialFailureHint, type DialFailure, type DialFailureReport } from "./dial-failure.js";
import { RefusalLedger } from "./refusal-ledger.js";
import type { SessionCipher } from "./session-cipher.js";

export interface PeerLinkOptions {
  /** `address`: this node's own address (node.address), the source of our dials; the peer admits only it. Defaults to listenAddress unless that is a wildcard. */
  self: { name: string; listenAddress: string; listenPort: number; address?: string };
  peer: { name: string; address: string; port: number };
  /** Shared secret: only ever an HMAC key, never sent, never logged. */
  secret: string;
  logger: Logger;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /** A connection that has not finished the handshake by then is closed. */
  handshakeTimeoutMs?: number;
  supportedVersions?: readonly number[];
  maxFrameBytes?: number;
  /** WebSocket ping period on an authenticated link (finds half-open TCP connections). */
  pingIntervalMs?: number;
  /** The agent's beat (util/beat.ts): a period that fits it rides it instead of waking the process on its own. */
  beat?: BeatApi;
  /** An authenticated link that delivered no frame and no pong for this long is closed. */
  idleTimeoutMs?: number;
  /** Connections still handshaking beyond this many are refused at once. */
  maxPendingHandshakes?: number;
  /** Open connections from the peer's address at most (more are reset at the TCP level). */
  maxConnectionsPerSource?: number;
  /** Open connections to the peer port at most. */
  maxConnections?: number;
  /** At most one refusal summary per this many ms (0: one per refusal, for tests). */
  refusalSummaryMs?: number;
}

interface Link {
  id: number;
  ws: WebSocket;
  direction: "inbound" | "outbound";
  remote: string;
  /** Name of the node that opened the connection. */
  dialledBy: string;
  session: DialerHandshake | ListenerHandshake;
  authenticated: boolean;
  /** Seals and opens every frame once authenticated. */
  cipher: SessionCipher | undefined;
  version: number;
  /** We started closing it (or it is gone); its frames are ignored from now on. */
  closing: boolean;
  lastHeardAt: number;
  handshakeTimer: NodeJS.Timeout | undefined;
  closeGuard: NodeJS.Timeout | undefined;
  closed: Promise<void>;
  markClosed: () => void;
  /** How an outbound link that never authenticated failed first (dial-failure.ts). */
  failure: DialFailure | undefined;
}

/** How long a closing handshake may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;
/** WebSocket close code for a policy violation (RFC 6455 §7.4.1). */
const CLOSE_POLICY = 1008;

export class PeerLink implements PeerLinkApi {
  /** Everything but the logger, the secret (which lives only in `identity`, the HMAC key holder) and the beat. */
  private readonly options: Required<Omit<PeerLinkOptions, "logger" | "secret" | "beat">>;
  private readonly beat: BeatApi | undefined;
  private readonly log: Logger;
  private readonly identity: HandshakeIdentity;
  private readonly backoff: Backoff;
  private readonly listeners: ((event: PeerLinkEvent) => void)[] = [];
  private readonly links = new Set<Link>();
  private readonly authenticated = new Set<Link>();
  private nextLinkId = 1;
  private outbound: Link | undefined;
  private dialTimer: NodeJS.Timeout | undefined;
  private stopKeepaliveTimer: CancelBeat | undefined;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private started = false;
  private stopped = false;
  private readonly gate: ConnectionGate;
  private readonly ledger: RefusalLedger;
  /** The last dial that ended without a link (cleared when a link comes up): for status. */
  private lastDialFailure: (DialFailure & { at: number }) | null = null;
  /** Admitted sockets not yet upgraded to a WebSocket: cut when the timer fires. */
  private readonly upgradeTimers = new WeakMap<Socket, NodeJS.Timeout>();

  constructor(options: PeerLinkOptions) {
    const { logger, secret, beat, ...settings } = options;
    this.beat = beat;
    this.options = {
      handshakeTimeoutMs: 2_000,
      supportedVersions: PROTOCOL_VERSIONS,
      maxFrameBytes: MAX_FRAME_BYTES,
      pingIntervalMs: 1_000,
      idleTimeoutMs: 5_000,
      maxPendingHandshakes: 8,
      maxConnectionsPerSource: 4,
      maxConnections: 16,
      refusalSummaryMs: 30_000,
      ...withoutUndefined(settings),
    };
    const { self, peer } = this.options;
    if (self.name === peer.name) {
      throw new MnhaError("INTERNAL", `peer link: node ${self.name} is configured as its own peer`, {
        hint: "give peers[0].name a name different from node.name",
      });
    }
    this.log = logger.child({ component: "peer-link", peer: peer.name });
    this.identity = {
      self: self.name,
      peer: peer.name,
      secret,
      supportedVersions: this.options.supportedVersions,
      maxFrameBytes: this.options.maxFrameBytes,
    };
    this.backoff = new Backoff({ initialMs: options.reconnectInitialMs, maxMs: options.reconnectMaxMs });
    this.gate = new ConnectionGate({ allowed: [peer.address], perSourceMax: this.options.maxConnectionsPerSource, globalMax: this.options.maxConnections });
    this.ledger = new RefusalLedger({
      intervalMs: this.options.refusalSummaryMs,
      emit: (summary) => {
        this.log.warn({ count: summary.count, byCode: summary.byCode, sources: summary.sources, otherSources: summary.otherSources, first: summary.first }, `peer link: ${summary.message}`);
        this.emit({ kind: "refusals", ...summary });
      },
    });
  }

  /** Refusals since start, per code (for the metric): TCP-gate codes, refuse codes, and `peer-refused:CODE` for refusals by the peer. */
  refusalCounts(): Record<string, number> {
    return this.ledger.counts();
  }

  onEvent(listener: (event: PeerLinkEvent) => void): void {
    this.listeners.push(listener);
  }

  connected(): boolean {
    return !this.stopped && this.authenticated.size > 0;
  }

  /** Why the last dial to the peer gave no link, with the likeliest fix; null once a link is up. */
  dialFailure(): DialFailureReport | null {
    const failure = this.lastDialFailure;
    if (failure === null || this.connected()) return null;
    const { name, address, port } = this.options.peer;
    return { code: failure.code, reason: failure.reason, msAgo: Math.round(performance.now() - failure.at), hint: dialFailureHint(failure.code, { peerName: name, peerAddress: address, peerPort: port }) };
  }

  /** How many authenticated connections are open (1 when settled; 2 only while a duplicate is being closed). */
  authenticatedLinkCount(): number {
    return this.authenticated.size;
  }

  /** The protocol versions this node offers (its hello) and accepts (as listener). */
  offeredVersions(): readonly number[] {
    return this.options.supportedVersions;
  }

  /** The negotiated protocol version of the active link, or null. */
  version(): number | null {
    return this.activeLink()?.version ?? null;
  }

  send(message: LinkMessage): boolean {
    const link = this.activeLink();
    if (!link || link.ws.readyState !== WebSocket.OPEN) return false;
    try {
      const checked = LinkMessageSchema.safeParse(message);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        this.log.error({ type: (message as { type?: unknown }).type, field: issue?.path.join("."), problem: issue?.message }, "peer link: refusing to send an invalid message");
        return false;
      }
      const frame = encode(checked.data);
      const bytes = Buffer.byteLength(frame);
      if (bytes > this.options.maxFrameBytes) {
        this.log.error({ type: message.type, bytes, limit: this.options.maxFrameBytes }, "peer link: refusing to send a frame above the size limit");
        return false;
      }
      this.sendSealed(link, frame);
      return true;
    } catch (error) {
      this.log.warn({ err: errorText(error) }, "peer link: send failed");
      return false;
    }
  }

  async start(): Promise<void> {
    if (this.started) {
      throw new MnhaError("INTERNAL", "peer link started twice", { hint: "create a new PeerLink for each start" });
    }
    this.started = true;
    const { listenAddress, listenPort } = this.options.self;
    const timeout = this.options.handshakeTimeoutMs;
    // Strangers must not hold HTTP connections open before the upgrade either: node checks these
    // timeouts every connectionsCheckingInterval (30 s by default), so check as often as they are short.
    const server = createServer({ headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: Math.max(100, Math.floor(timeout / 4)) }, (_request, response) => {
      response.writeHead(426, { "content-type": "text/plain", connection: "close" }).end("mnha peer link: WebSocket only\n");
    });
    // Before node's own HTTP handler sees the socket: strangers are reset here, unparsed.
    server.prependListener("connection", (socket: Socket) => this.admitSocket(socket));
    // Node's own header and request timeouts back up the upgrade timer below. On a loaded loop
    // their check can run first: such a connection is refused and counted the same way, once.
    // A malformed request (or a socket error) before the upgrade is reset, not answered.
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
      if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") this.refuseUpgradeTimeout(socket);
      else resetQuietly(socket);
    });
    const wss = new WebSocketServer({ server, maxPayload: this.options.maxFrameBytes + SEALED_OVERHEAD_BYTES, perMessageDeflate: false, clientTracking: false });
    wss.on("connection", (ws, request) => this.accept(ws, request));
    wss.on("error", (error) => this.log.error({ err: errorText(error) }, "peer link: listener error"));
    this.server = server;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.off("listening", onListening);
        reject(
          new MnhaError(listenErrorCode(error.code), `peer link cannot listen on ${hostPort(listenAddress, listenPort)}: ${error.code ?? error.message}`, {
            hint: listenErrorHint(error.code, this.options.self, this.options.peer),
            fields: { address: listenAddress, port: listenPort, code: error.code },
            cause: error,
          }),
        );
      };
      const onListening = (): void => {
        server.off("error", onError);
        resolve();
      };
      server.once("error", onError);
      server.once("listening", onListening);
      server.listen(listenPort, listenAddress);
    }).catch((error: unknown) => {
      this.stopped = true;
      wss.close();
      this.wss = undefined;
      this.server = undefined;
      throw error;
    });
    this.log.info({ address: listenAddress, port: this.listeningPort(), versions: this.options.supportedVersions }, "peer link listening");
    this.dial();
  }

  /** The port actually bound (useful when listenPort is 0). */
  listeningPort(): number | null {
    const address = this.server?.address();
    return address && typeof address === "object" ? address.port : null;
  }

  async stop(): Promise<void> {
    if (this.stopped && !this.server) return;
    this.stopped = true;
    clearTimeout(this.dialTimer);
    this.dialTimer = undefined;
    this.stopKeepalive();
    this.ledger.stop();
    const closing: Promise<void>[] = [];
    for (const link of this.links) {
      clearTimeout(link.handshakeTimer);
      clearTimeout(link.closeGuard);
      link.closing = true;
      link.ws.terminate();
      closing.push(link.closed);
    }
    this.authenticated.clear();
    const server = this.server;
    this.server = undefined;
    this.wss?.close();
    this.wss = undefined;
    if (server) {
      closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
      server.closeAllConnections();
    }
    await Promise.all(closing);
    this.log.info("peer link stopped");
  }

  // ---- connections -----------------------------------------------------------

  /** The TCP gate: see the module comment. Runs before the HTTP parser ever reads from the socket. */
  private admitSocket(socket: Socket): void {
    const verdict = this.gate.admit(socket.remoteAddress);
    if (!verdict.ok) {
      this.countRefusal(hostPort(socket.remoteAddress ?? "unknown", socket.remotePort ?? 0), verdict.code, verdict.reason);
      resetQuietly(socket);
      return;
    }
    socket.once("close", verdict.release);
    const timer = setTimeout(() => this.refuseUpgradeTimeout(socket), this.options.handshakeTimeoutMs);
    timer.unref();
    this.upgradeTimers.set(socket, timer);
    socket.once("close", () => clearTimeout(timer));
  }

  /** No WebSocket upgrade in time (the upgrade timer, or node's own timeout check): counted once, reset. */
  private refuseUpgradeTimeout(socket: Socket): void {
    clearTimeout(this.upgradeTimers.get(socket));
    this.upgradeTimers.delete(socket);
    if (socket.destroyed) return;
    this.countRefusal(hostPort(socket.remoteAddress ?? "unknown", socket.remotePort ?? 0), "upgrade-timeout", `no WebSocket upgrade within ${this.options.handshakeTimeoutMs} ms`);
    resetQuietly(socket);
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    clearTimeout(this.upgradeTimers.get(request.socket as Socket));
    const remote = hostPort(request.socket.remoteAddress ?? "unknown", request.socket.remotePort ?? 0);
    if (this.stopped) {
      ws.terminate();
      return;
    }
    const link = this.track(ws, "inbound", remote, this.options.peer.name, new ListenerHandshake(this.identity));
    const pending = [...this.links].filter((l) => !l.authenticated && !l.closing && l.direction === "inbound").length;
    if (pending > this.options.maxPendingHandshakes) {
      this.refuse(link, refusal("not-ready", `too many handshakes in progress (${this.options.maxPendingHandshakes}); try again later`));
      return;
    }
    this.log.debug({ remote }, "peer link: inbound connection");
  }

  private dial(): void {
    if (this.stopped || this.outbound || this.authenticated.size > 0) return;
    const { address, port } = this.options.peer;
    const remote = hostPort(address, port);
    // Dial from our own listen address (not, say, the VIP): the peer admits only that source.
    const local = this.options.self.address ?? this.options.self.listenAddress;
    const localAddress = local === "0.0.0.0" || local === "::" || local === "" ? {} : { localAddress: local };
    const ws = new WebSocket(`ws://${remote}/`, { maxPayload: this.options.maxFrameBytes + SEALED_OVERHEAD_BYTES, perMessageDeflate: false, followRedirects: false, ...localAddress });
    const session = new DialerHandshake(this.identity);
    const link = this.track(ws, "outbound", remote, this.options.self.name, session);
    this.outbound = link;
    ws.on("open", () => {
      if (!link.closing) this.sendFrame(link, session.hello());
    });
    this.log.debug({ remote }, "peer link: dialing");
  }

  private track(ws: WebSocket, direction: Link["direction"], remote: string, dialledBy: string, session: Link["session"]): Link {
    let markClosed = (): void => {};
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    const link: Link = {
      id: this.nextLinkId++,
      ws,
      direction,
      remote,
      dialledBy,
      session,
      authenticated: false,
      cipher: undefined,
      version: 0,
      closing: false,
      lastHeardAt: performance.now(),
      handshakeTimer: undefined,
      closeGuard: undefined,
      closed,
      markClosed,
      failure: undefined,
    };
    this.links.add(link);
    link.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(link), this.options.handshakeTimeoutMs);
    ws.on("message", (data, isBinary) => this.onFrame(link, data, isBinary));
    ws.on("pong", () => (link.lastHeardAt = performance.now()));
    ws.on("error", (error) => this.onSocketError(link, error));
    ws.on("close", (code, reason) => this.onClose(link, code, reason.toString("utf8")));
    return link;
  }

  private onFrame(link: Link, data: RawData, isBinary: boolean): void {
    if (link.closing) return;
    link.lastHeardAt = performance.now();
    if (isBinary && !link.authenticated) {
      this.refuse(link, refusal("bad-frame", "binary frames are not accepted before the handshake is complete"));
      return;
    }
    if (!link.authenticated) {
      this.apply(link, link.session.receiveFrame(rawText(data)));
      return;
    }
    // Only sealed (binary) frames from here on; a text frame can only have been written by someone else.
    if (!isBinary || !link.cipher) {
      this.refuse(link, refusal("forged-frame", "a plain-text frame after the handshake: every frame on the link is sealed"));
      return;
    }
    const opened = link.cipher.open(rawBytes(data));
    if (!opened.ok) {
      this.refuse(link, refusal(FRAME_FAULT_CODES[opened.fault], opened.reason));
      return;
    }
    const frame = opened.text;
    const decoded = decodeLinkMessage(frame, this.options.maxFrameBytes);
    if (!decoded.ok) {
      this.refuse(link, refusal("bad-frame", `bad frame: ${decoded.reason}`));
      return;
    }
    if (decoded.message.type === "refuse") {
      this.refusedByPeer(link, decoded.message.code, decoded.message.message);
      return;
    }
    this.emit({ kind: "message", message: decoded.message });
  }

  private apply(link: Link, outcome: HandshakeOutcome): void {
    switch (outcome.kind) {
      case "continue":
        this.sendFrame(link, outcome.send);
        return;
      case "refuse":
        this.refuse(link, outcome.send);
        return;
      case "refused":
        this.refusedByPeer(link, outcome.code, outcome.versions ? `${outcome.reason} (peer supports versions ${outcome.versions.join(", ")})` : outcome.reason);
        return;
      case "authenticated": {
        if (link.direction === "inbound" && this.selfSortsLower()) {
          const preferred = [...this.authenticated].find((l) => l.direction === "outbound");
          if (preferred) {
            // Usually the peer's simultaneous dial; if `preferred` is in fact half-open, the ping brings its RST now.
            pingQuietly(preferred.ws);
            this.refuse(link, refusal("duplicate-link", `a link dialled by ${this.options.self.name} (the lower name) is already open`));
            return;
          }
        }
        if (outcome.send) this.sendFrame(link, outcome.send);
        link.cipher = outcome.cipher;
        this.onAuthenticated(link, outcome.version);
        return;
      }
    }
  }

  private onAuthenticated(link: Link, version: number): void {
    clearTimeout(link.handshakeTimer);
    link.handshakeTimer = undefined;
    const wasConnected = this.authenticated.size > 0;
    link.authenticated = true;
    link.version = version;
    link.lastHeardAt = performance.now();
    this.authenticated.add(link);
    this.lastDialFailure = null;
    this.backoff.reset();
    clearTimeout(this.dialTimer);
    this.dialTimer = undefined;
    this.log.info({ remote: link.remote, direction: link.direction, version }, "peer link authenticated");
    this.closeDuplicates();
    this.startKeepalive();
    if (!wasConnected && link.authenticated) this.emit({ kind: "up", peer: this.options.peer.name, version, remote: link.remote });
  }

  /** Keep one link: see the module comment for the rule. */
  private closeDuplicates(): void {
    const byDialer = new Map<string, Link[]>();
    for (const link of this.authenticated) byDialer.set(link.dialledBy, [...(byDialer.get(link.dialledBy) ?? []), link]);
    for (const [dialer, links] of byDialer) {
      const newest = Math.max(...links.map((l) => l.id));
      for (const link of links) {
        if (link.id !== newest) this.refuse(link, refusal("duplicate-link", `replaced by a newer link dialled by ${dialer}`));
      }
    }
    if (this.selfSortsLower() && [...this.authenticated].some((l) => l.direction === "outbound")) {
      for (const link of this.authenticated) {
        if (link.direction === "inbound") {
          this.refuse(link, refusal("duplicate-link", `keeping the link dialled by ${this.options.self.name} (the lower name)`));
        }
      }
    }
  }

  /** The link `send` uses: the newest dialled by the lower name if any, else the newest. */
  private activeLink(): Link | undefined {
    if (this.stopped) return undefined;
    const lower = this.selfSortsLower() ? this.options.self.name : this.options.peer.name;
    let best: Link | undefined;
    for (const link of this.authenticated) {
      if (!best) best = link;
      else {
        const linkPreferred = link.dialledBy === lower;
        const bestPreferred = best.dialledBy === lower;
        if (linkPreferred !== bestPreferred ? linkPreferred : link.id > best.id) best = link;
      }
    }
    return best;
  }

  private selfSortsLower(): boolean {
    return this.options.self.name < this.options.peer.name;
  }

  // ---- refusals and closing ----------------------------------------------------

  /** We refuse the other end: tell it why, then close. */
  private refuse(link: Link, refuse: Refuse): void {
    if (link.closing) return;
    const fields = { remote: link.remote, direction: link.direction, code: refuse.code, reason: refuse.message };
    if (refuse.code === "duplicate-link") this.log.info(fields, "peer link: closing a duplicate link");
    else if (link.authenticated) this.log.warn(fields, "peer link: refused a frame on the authenticated link; closing it");
    // Anyone can cause a handshake refusal: logged one by one only at debug, summarised by the ledger.
    else this.log.debug(fields, refuse.code === "auth-failed" ? "peer failed authentication" : "peer link: refused a connection");
    if (refuse.code !== "duplicate-link") this.countRefusal(link.remote, refuse.code, refuse.message);
    noteFailure(link, `refused:${refuse.code}`, `this node refused the peer (${refuse.code}): ${refuse.message}`);
    this.sendFrame(link, refuse);
    this.close(link, `refused (${refuse.code}): ${refuse.message}`, refuse.code);
  }

  /** The other end refused us. */
  private refusedByPeer(link: Link, code: RefuseCode, reason: string): void {
    if (link.closing) return;
    const fields = { remote: link.remote, direction: link.direction, code, reason };
    if (code === "duplicate-link") this.log.info(fields, "peer link: peer closed a duplicate link");
    else {
      // Said once per cause: a peer on another secret refuses every retry, for as long as it lasts.
      const again = this.lastDialFailure?.code === `peer-refused:${code}`;
      if (again) this.log.debug(fields, "peer link: the peer refused the connection again");
      else this.log.warn(fields, "peer link: the peer refused the connection");
      this.countRefusal(link.remote, `peer-refused:${code}`, `refused by the peer: ${reason}`);
      noteFailure(link, `peer-refused:${code}`, `refused by the peer (${code}): ${reason}`);
    }
    this.close(link, `refused by the peer (${code}): ${reason}`, `peer refused: ${code}`);
  }

  private close(link: Link, why: string, closeReason = "closed"): void {
    if (link.closing) return;
    link.closing = true;
    this.retire(link, why);
    if (link.ws.readyState === WebSocket.CONNECTING) {
      link.ws.terminate();
      return;
    }
    try {
      // The refuse frame already said why; the close frame (at most 123 bytes) only names the code.
      link.ws.close(CLOSE_POLICY, closeReason);
    } catch {
      link.ws.terminate();
      return;
    }
    link.closeGuard = setTimeout(() => link.ws.terminate(), CLOSE_GRACE_MS);
  }

  /** The link no longer carries traffic: emit `down` if it was the last, and dial again. */
  private retire(link: Link, why: string): void {
    clearTimeout(link.handshakeTimer);
    link.handshakeTimer = undefined;
    if (!this.authenticated.delete(link)) return;
    if (this.authenticated.size > 0) return;
    this.stopKeepalive();
    if (this.stopped) return;
    this.log.warn({ remote: link.remote, reason: why }, "peer link down");
    this.emit({ kind: "down", peer: this.options.peer.name, reason: why });
    this.scheduleDial();
  }

  private onHandshakeTimeout(link: Link): void {
    link.handshakeTimer = undefined;
    if (link.closing || link.authenticated) return;
    if (link.ws.readyState === WebSocket.CONNECTING) {
      this.log.debug({ remote: link.remote }, "peer link: connect timed out");
      noteFailure(link, "connect-timeout", `no connection within ${this.options.handshakeTimeoutMs} ms`);
      this.close(link, `connect timed out after ${this.options.handshakeTimeoutMs} ms`);
      return;
    }
    this.refuse(link, refusal("protocol", `handshake not finished within ${this.options.handshakeTimeoutMs} ms`));
  }

  private onSocketError(link: Link, error: Error & { code?: string }): void {
    if (link.closing) return;
    if (typeof error.code === "string" && error.code.startsWith("WS_ERR_")) {
      // ws itself rejected a frame (too large, bad UTF-8, bad opcode) and is already closing.
      const reason =
        error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? `frame exceeds the ${this.options.maxFrameBytes}-byte limit` : `invalid WebSocket frame: ${error.message}`;
      const fields = { remote: link.remote, direction: link.direction, code: "bad-frame", reason };
      if (link.authenticated) this.log.warn(fields, "peer link: refused a frame on the authenticated link; closing it");
      else this.log.debug(fields, "peer link: refused a connection");
      this.countRefusal(link.remote, "bad-frame", reason);
      noteFailure(link, "bad-frame", reason);
      link.closing = true;
      this.retire(link, `refused (bad-frame): ${reason}`);
      link.closeGuard = setTimeout(() => link.ws.terminate(), CLOSE_GRACE_MS);
      return;
    }
    this.log.debug({ remote: link.remote, direction: link.direction, err: error.message }, "peer link: socket error");
    noteFailure(link, `socket:${error.code ?? "error"}`, `socket error: ${error.message}`);
    link.closing = true;
    this.retire(link, `socket error: ${error.message}`);
    link.ws.terminate();
  }

  private onClose(link: Link, code: number, reason: string): void {
    clearTimeout(link.handshakeTimer);
    clearTimeout(link.closeGuard);
    link.handshakeTimer = undefined;
    link.closeGuard = undefined;
    const wasClosing = link.closing;
    link.closing = true;
    this.links.delete(link);
    this.retire(link, `connection closed (code ${code}${reason ? `: ${reason}` : ""})`);
    if (!wasClosing) this.log.debug({ remote: link.remote, direction: link.direction, code, reason }, "peer link: connection closed");
    if (this.outbound === link) {
      this.outbound = undefined;
      if (!link.authenticated) {
        const failure = link.failure ?? { code: "closed", reason: `connection closed before the handshake finished (code ${code}${reason ? `: ${reason}` : ""})` };
        this.lastDialFailure = { ...failure, at: performance.now() };
      }
      this.scheduleDial();
    }
    link.markClosed();
  }

  // ---- dialing and keepalive -------------------------------------------------------

  private scheduleDial(): void {
    if (this.stopped || this.dialTimer || this.outbound || this.authenticated.size > 0) return;
    const delay = this.backoff.next();
    this.log.debug({ retryInMs: delay }, "peer link: next dial scheduled");
    this.dialTimer = setTimeout(() => {
      this.dialTimer = undefined;
      this.dial();
    }, delay);
  }

  private startKeepalive(): void {
    if (this.stopKeepaliveTimer) return;
    this.stopKeepaliveTimer = everyOnBeat(this.beat, this.options.pingIntervalMs, () => this.keepalive());
  }

  private stopKeepalive(): void {
    this.stopKeepaliveTimer?.();
    this.stopKeepaliveTimer = undefined;
  }

  private keepalive(): void {
    const now = performance.now();
    for (const link of [...this.authenticated]) {
      const silentMs = now - link.lastHeardAt;
      if (silentMs > this.options.idleTimeoutMs) {
        this.log.warn({ remote: link.remote, silentMs: Math.round(silentMs) }, "peer link: peer silent; closing the link");
        link.closing = true;
        this.retire(link, `nothing heard for ${Math.round(silentMs)} ms`);
        link.ws.terminate();
      } else {
        pingQuietly(link.ws);
      }
    }
  }

  // ---- plumbing ---------------------------------------------------------------------

  /** Sends one frame: sealed once the link is authenticated, plain text during the handshake. */
  private sendFrame(link: Link, message: HandshakeMessage | LinkMessage): void {
    if (link.ws.readyState !== WebSocket.OPEN) return;
    try {
      if (link.authenticated) this.sendSealed(link, encode(message));
      else link.ws.send(encode(message));
    } catch (error) {
      this.log.debug({ remote: link.remote, err: errorText(error) }, "peer link: could not send a frame");
    }
  }

  private sendSealed(link: Link, text: string): void {
    if (!link.cipher) throw new MnhaError("INTERNAL", "peer link: sealing a frame on a link without session keys", { hint: "only authenticated links carry link messages" });
    link.ws.send(link.cipher.seal(text), { binary: true });
  }

  private countRefusal(remote: string, code: string, reason: string): void {
    if (this.stopped) return;
    this.ledger.record(remote, code, reason);
  }

  private emit(event: PeerLinkEvent): void {
    if (this.stopped) return;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.log.error({ event: event.kind, err: errorText(error) }, "peer link: event listener threw");
      }
    }
  }
}

/** The first failure of an outbound link still handshaking is the one the operator needs. */
function noteFailure(link: Link, code: string, reason: string): void {
  if (link.direction === "outbound" && !link.authenticated && link.failure === undefined) link.failure = { code, reason };
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

function rawBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Closes a socket with a TCP reset: nothing lingers on our side for a stranger. */
function resetQuietly(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function pingQuietly(ws: WebSocket): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  try {
    ws.ping();
  } catch {
    // The close handler reports the dead socket.
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** A listen that fails for the config's sake (the address, the port) is a config error: the agent exits 2. */
function listenErrorCode(code: string | undefined): "PORT_IN_USE" | "CONFIG_INVALID" | "INTERNAL" {
  if (code === "EADDRINUSE") return "PORT_IN_USE";
  return code === "EADDRNOTAVAIL" || code === "EACCES" ? "CONFIG_INVALID" : "INTERNAL";
}

function listenErrorHint(code: string | undefined, self: PeerLinkOptions["self"], peer: PeerLinkOptions["peer"]): string {
  if (code === "EADDRINUSE") return `another process uses port ${self.listenPort} (is a second agent running?); stop it or change the listen port`;
  if (code !== "EADDRNOTAVAIL") return `check that ${self.listenAddress} is an address of this host and the port is allowed`;
  // The 3 a.m. case: the other node's config copied here (the two differ only in node and peers).
  return (
    `${self.listenAddress} is not an address of this host: if the network is still coming up, start the agent after it; ` +
    `if this is ${peer.name}'s host, the config here is ${self.name}'s: put this node's name and address under node: and ${self.name}'s under peers:`
  );
}
