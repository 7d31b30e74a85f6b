/**
 * The peer-link handshake as two small state machines, one per side, with no sockets and
 * no timers: they are fed frames (text) and answer with what to send and whether the link
 * is authenticated, refused or still going. The socket layer (peer-link.ts) only carries
 * out their answers. The exchange itself is documented in @mnha/protocol handshake.ts:
 *
 *   dialer   → hello     {node, versions, nonce_d}
 *   listener → challenge {node, version, nonce_l}
 *   dialer   → auth      {proof_d}
 *   listener → welcome   {version, proof_l}
 *
 * The dialer proves first: the listener gives nothing derived from the secret to anyone who
 * has not proved it. On success both sides hold a SessionCipher keyed from the transcript.
 * The secret is only ever an HMAC/HKDF key here; it is never put in a frame, a reason or a log.
 */
import { createHmac, randomBytes } from "node:crypto";
import {
  MAX_FRAME_BYTES,
  chooseVersion,
  decodeHandshake,
  decodeLinkMessage,
  proofInput,
  proofsEqual,
  type Auth,
  type Challenge,
  type HandshakeMessage,
  type Hello,
  type Refuse,
  type TranscriptFields,
  type Welcome,
} from "@mnha/protocol";
import { MnhaError } from "@mnha/shared";
import { SessionCipher, deriveSessionKeys } from "./session-cipher.js";

export type RefuseCode = Refuse["code"];

/** What a handshake step asks the socket layer to do. */
export type HandshakeOutcome =
  /** Send `send` and wait for the next frame. */
  | { kind: "continue"; send: HandshakeMessage }
  /** Both sides proved the secret. The listener still has to send `send` (welcome); every later frame is sealed with `cipher`. */
  | { kind: "authenticated"; peer: string; version: number; cipher: SessionCipher; send?: Welcome }
  /** We refuse the other side: send `send`, then close. */
  | { kind: "refuse"; send: Refuse }
  /** The other side refused us (it sent a refuse): close. */
  | { kind: "refused"; code: RefuseCode; reason: string; versions?: number[] };

export interface HandshakeIdentity {
  /** This node's name. */
  self: string;
  /** The only node name this side accepts on the other end. */
  peer: string;
  /** The shared secret; used only as an HMAC and HKDF key. */
  secret: string;
  supportedVersions: readonly number[];
  maxFrameBytes?: number;
  /** Replaceable for tests; defaults to 32 random bytes in base64. */
  newNonce?: () => string;
}

/** 32 random bytes, base64: fits the protocol's nonce pattern (16-128 base64 characters). */
export function randomNonce(): string {
  return randomBytes(32).toString("base64");
}

/** HMAC-SHA256(secret, proofInput(side, transcript)) in hex: the proof that one side knows the secret. */
export function computeProof(secret: string, side: "dialer" | "listener", fields: TranscriptFields): string {
  return createHmac("sha256", secret).update(proofInput(side, fields)).digest("hex");
}

const REFUSE_MESSAGE_MAX = 500;

export function refusal(code: RefuseCode, message: string, versions?: readonly number[]): Refuse {
  const text = message.length > REFUSE_MESSAGE_MAX ? `${message.slice(0, REFUSE_MESSAGE_MAX - 3)}...` : message;
  return versions === undefined ? { type: "refuse", code, message: text } : { type: "refuse", code, message: text, versions: [...versions] };
}

/** Common to both sides: decoding, and refusing anything that is not the expected handshake frame. */
abstract class HandshakeSession {
  protected finished = false;
  protected readonly identity: HandshakeIdentity;
  protected readonly newNonce: () => string;

  constructor(identity: HandshakeIdentity) {
    if (identity.self === identity.peer) {
      throw new MnhaError("INTERNAL", `node ${identity.self} is configured as its own peer`, { hint: "give peers[0].name a name different from node.name" });
    }
    this.identity = identity;
    this.newNonce = identity.newNonce ?? randomNonce;
  }

  /** True once the session reached a verdict (authenticated, refuse or refused). */
  done(): boolean {
    return this.finished;
  }

  /** Feed one text frame received before the link is authenticated. */
  receiveFrame(frame: string): HandshakeOutcome {
    if (this.finished) return this.finish({ kind: "refuse", send: refusal("protocol", "the handshake is already over") });
    const decoded = decodeHandshake(frame, this.identity.maxFrameBytes ?? MAX_FRAME_BYTES);
    if (!decoded.ok) {
      // A well-formed link message (a heartbeat, say) is still refused: nothing passes before authentication.
      const asLink = decoded.code === "invalid" ? decodeLinkMessage(frame, this.identity.maxFrameBytes ?? MAX_FRAME_BYTES) : null;
      if (asLink?.ok) {
        return this.finish({ kind: "refuse", send: refusal("not-ready", `${asLink.message.type} refused: the handshake is not complete`) });
      }
      return this.finish({ kind: "refuse", send: refusal("bad-frame", `bad handshake frame: ${decoded.reason}`) });
    }
    return this.receive(decoded.message);
  }

  /** Feed one decoded handshake message. */
  receive(message: HandshakeMessage): HandshakeOutcome {
    if (this.finished) return this.finish({ kind: "refuse", send: refusal("protocol", "the handshake is already over") });
    if (message.type === "refuse") {
      return this.finish({
        kind: "refused",
        code: message.code,
        reason: message.message,
        ...(message.versions === undefined ? {} : { versions: message.versions }),
      });
    }
    return this.step(message);
  }

  protected abstract step(message: Exclude<HandshakeMessage, Refuse>): HandshakeOutcome;

  protected finish(outcome: HandshakeOutcome): HandshakeOutcome {
    if (outcome.kind !== "continue") this.finished = true;
    return outcome;
  }

  protected unexpected(message: HandshakeMessage, expected: string): HandshakeOutcome {
    return this.finish({ kind: "refuse", send: refusal("protocol", `expected ${expected}, got ${message.type}`) });
  }
}

/** The side that opened the connection. */
export class DialerHandshake extends HandshakeSession {
  private readonly dialerNonce: string;
  private state: "start" | "await-challenge" | "await-welcome" = "start";
  private fields: TranscriptFields | null = null;

  constructor(identity: HandshakeIdentity) {
    super(identity);
    this.dialerNonce = this.newNonce();
  }

  /** The first frame, sent as soon as the connection is open. */
  hello(): Hello {
    if (this.state !== "start") throw new MnhaError("INTERNAL", "the dialer's hello was requested twice", { hint: "call hello() once, when the connection opens" });
    this.state = "await-challenge";
    return { type: "hello", node: this.identity.self, versions: [...this.identity.supportedVersions], nonce: this.dialerNonce };
  }

  protected step(message: Exclude<HandshakeMessage, Refuse>): HandshakeOutcome {
    if (this.state === "await-challenge") {
      if (message.type !== "challenge") return this.unexpected(message, "challenge");
      return this.onChallenge(message);
    }
    if (this.state === "await-welcome") {
      if (message.type !== "welcome") return this.unexpected(message, "welcome");
      return this.onWelcome(message);
    }
    return this.unexpected(message, "nothing before hello");
  }

  private onChallenge(challenge: Challenge): HandshakeOutcome {
    const { self, peer, secret, supportedVersions } = this.identity;
    if (challenge.node !== peer) {
      return this.finish({ kind: "refuse", send: refusal("unknown-peer", `listener calls itself ${challenge.node}; expected ${peer}`) });
    }
    if (!supportedVersions.includes(challenge.version)) {
      return this.finish({
        kind: "refuse",
        send: refusal("unsupported-version", `listener chose version ${challenge.version}, which was not offered`, supportedVersions),
      });
    }
    this.fields = { dialer: self, listener: peer, offered: [...supportedVersions], version: challenge.version, dialerNonce: this.dialerNonce, listenerNonce: challenge.nonce };
    this.state = "await-welcome";
    const auth: Auth = { type: "auth", proof: computeProof(secret, "dialer", this.fields) };
    return { kind: "continue", send: auth };
  }

  private onWelcome(welcome: Welcome): HandshakeOutcome {
    const fields = this.fields as TranscriptFields;
    if (welcome.version !== fields.version) {
      return this.finish({ kind: "refuse", send: refusal("protocol", `welcome names version ${welcome.version}, the challenge chose ${fields.version}`) });
    }
    if (!proofsEqual(computeProof(this.identity.secret, "listener", fields), welcome.proof)) {
      return this.finish({ kind: "refuse", send: refusal("auth-failed", "peer failed authentication: the listener's proof does not match the shared secret") });
    }
    const cipher = new SessionCipher(deriveSessionKeys(this.identity.secret, fields), "dialer");
    return this.finish({ kind: "authenticated", peer: this.identity.peer, version: fields.version, cipher });
  }
}

/** The side that accepted the connection. */
export class ListenerHandshake extends HandshakeSession {
  private state: "await-hello" | "await-auth" = "await-hello";
  private fields: TranscriptFields | null = null;

  protected step(message: Exclude<HandshakeMessage, Refuse>): HandshakeOutcome {
    if (this.state === "await-hello") {
      if (message.type !== "hello") return this.unexpected(message, "hello");
      return this.onHello(message);
    }
    if (message.type !== "auth") return this.unexpected(message, "auth");
    const fields = this.fields as TranscriptFields;
    const { secret } = this.identity;
    if (!proofsEqual(computeProof(secret, "dialer", fields), message.proof)) {
      return this.finish({ kind: "refuse", send: refusal("auth-failed", "peer failed authentication: the dialer's proof does not match the shared secret") });
    }
    const cipher = new SessionCipher(deriveSessionKeys(secret, fields), "listener");
    const welcome: Welcome = { type: "welcome", version: fields.version, proof: computeProof(secret, "listener", fields) };
    return this.finish({ kind: "authenticated", peer: this.identity.peer, version: fields.version, cipher, send: welcome });
  }

  private onHello(hello: Hello): HandshakeOutcome {
    const { self, peer, supportedVersions } = this.identity;
    if (hello.node !== peer) {
      return this.finish({ kind: "refuse", send: refusal("unknown-peer", `node ${hello.node} is not the configured peer`) });
    }
    const version = chooseVersion(hello.versions, supportedVersions);
    if (version === null) {
      return this.finish({
        kind: "refuse",
        send: refusal("unsupported-version", `no common protocol version: offered ${hello.versions.join(", ")}; supported ${supportedVersions.join(", ")}`, supportedVersions),
      });
    }
    const listenerNonce = this.newNonce();
    // The offered list goes into the transcript as received: if a relay trimmed it, the dialer's proof will not match.
    this.fields = { dialer: peer, listener: self, offered: [...hello.versions], version, dialerNonce: hello.nonce, listenerNonce };
    this.state = "await-auth";
    const challenge: Challenge = { type: "challenge", node: self, version, nonce: listenerNonce };
    return { kind: "continue", send: challenge };
  }
}
