import { describe, expect, it } from "vitest";
import { authTranscript, decodeHandshake, encode, type HandshakeMessage } from "@mnha/protocol";
import { DialerHandshake, ListenerHandshake, computeProof, randomNonce, type HandshakeIdentity, type HandshakeOutcome } from "../../src/peer/handshake-session.js";
import { SECRET, heartbeat } from "./helpers.js";

const dialerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: "mn-a", peer: "mn-b", secret: SECRET, supportedVersions: [1], ...over });
const listenerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: "mn-b", peer: "mn-a", secret: SECRET, supportedVersions: [1], ...over });

/** Carry frames as text between the two sessions, the way the socket layer does. */
function wire(message: HandshakeMessage): string {
  return encode(message);
}

function sent(outcome: HandshakeOutcome): HandshakeMessage {
  if (outcome.kind === "continue" || outcome.kind === "refuse") return outcome.send;
  if (outcome.kind === "authenticated" && outcome.send) return outcome.send;
  throw new Error(`outcome ${outcome.kind} sends nothing`);
}

describe("handshake sessions", () => {
  it("authenticate both sides with the same secret and agree on the version", () => {
    const dialer = new DialerHandshake(dialerIdentity({ supportedVersions: [1, 2] }));
    const listener = new ListenerHandshake(listenerIdentity({ supportedVersions: [1, 2, 3] }));
    const frames: string[] = [];
    const hello = wire(dialer.hello());
    frames.push(hello);
    const challengeOutcome = listener.receiveFrame(hello);
    expect(challengeOutcome.kind).toBe("continue");
    const challenge = wire(sent(challengeOutcome));
    frames.push(challenge);
    const authOutcome = dialer.receiveFrame(challenge);
    expect(authOutcome.kind).toBe("continue");
    const auth = wire(sent(authOutcome));
    frames.push(auth);
    const welcomeOutcome = listener.receiveFrame(auth);
    expect(welcomeOutcome).toMatchObject({ kind: "authenticated", peer: "mn-a", version: 2, send: { type: "welcome", version: 2 } });
    const welcome = wire(sent(welcomeOutcome));
    frames.push(welcome);
    expect(dialer.receiveFrame(welcome)).toEqual({ kind: "authenticated", peer: "mn-b", version: 2 });
    expect(dialer.done() && listener.done()).toBe(true);
    // Every frame is a valid handshake message, and none carries the secret.
    for (const frame of frames) {
      expect(decodeHandshake(frame).ok).toBe(true);
      expect(frame).not.toContain(SECRET);
    }
  });

  it("proofs are HMAC-SHA256 over the documented transcript, bound to the side", () => {
    const fields = { dialer: "mn-a", listener: "mn-b", dialerNonce: randomNonce(), listenerNonce: randomNonce(), version: 1 };
    const listenerProof = computeProof(SECRET, "listener", fields);
    expect(listenerProof).toMatch(/^[0-9a-f]{64}$/);
    expect(computeProof(SECRET, "dialer", fields)).not.toBe(listenerProof);
    expect(computeProof("another-secret-entirely", "listener", fields)).not.toBe(listenerProof);
    expect(authTranscript("listener", fields)).toContain(fields.dialerNonce);
  });

  it("nonces are 32 random bytes in base64 and differ every time", () => {
    const a = randomNonce();
    const b = randomNonce();
    expect(Buffer.from(a, "base64")).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it("a dialer with the wrong secret is refused with auth-failed", () => {
    const dialer = new DialerHandshake(dialerIdentity({ secret: "not-the-shared-secret!!" }));
    const listener = new ListenerHandshake(listenerIdentity());
    const challenge = sent(listener.receiveFrame(wire(dialer.hello())));
    // The dialer checks the listener first: the listener's proof fails with the dialer's secret.
    const verdict = dialer.receiveFrame(wire(challenge));
    expect(verdict).toMatchObject({ kind: "refuse", send: { type: "refuse", code: "auth-failed" } });
    expect(JSON.stringify(verdict)).toContain("peer failed authentication");
  });

  it("a listener refuses an auth whose proof does not match (a forged or reflected proof)", () => {
    const dialer = new DialerHandshake(dialerIdentity());
    const listener = new ListenerHandshake(listenerIdentity());
    const challenge = sent(listener.receiveFrame(wire(dialer.hello())));
    if (challenge.type !== "challenge") throw new Error("expected a challenge");
    // Reflect the listener's own proof back as the dialer's: bound to the side, so it fails.
    const verdict = listener.receive({ type: "auth", proof: challenge.proof });
    expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
    expect(listener.done()).toBe(true);
  });

  it("a listener refuses a hello from a node that is not its configured peer", () => {
    const stranger = new DialerHandshake({ self: "mallory", peer: "mn-b", secret: SECRET, supportedVersions: [1] });
    const listener = new ListenerHandshake(listenerIdentity());
    expect(listener.receiveFrame(wire(stranger.hello()))).toMatchObject({ kind: "refuse", send: { code: "unknown-peer" } });
  });

  it("a dialer refuses a listener that calls itself by another name", () => {
    const dialer = new DialerHandshake(dialerIdentity());
    const impostor = new ListenerHandshake({ self: "mn-c", peer: "mn-a", secret: SECRET, supportedVersions: [1] });
    const challenge = sent(impostor.receiveFrame(wire(dialer.hello())));
    expect(dialer.receiveFrame(wire(challenge))).toMatchObject({ kind: "refuse", send: { code: "unknown-peer" } });
  });

  it("no common version: refused with unsupported-version listing the supported versions", () => {
    const dialer = new DialerHandshake(dialerIdentity({ supportedVersions: [99] }));
    const listener = new ListenerHandshake(listenerIdentity({ supportedVersions: [1, 2] }));
    const verdict = listener.receiveFrame(wire(dialer.hello()));
    expect(verdict).toMatchObject({ kind: "refuse", send: { type: "refuse", code: "unsupported-version", versions: [1, 2] } });
    // The dialer learns the listener's versions from the refuse.
    expect(dialer.receiveFrame(wire(sent(verdict)))).toMatchObject({ kind: "refused", code: "unsupported-version", versions: [1, 2] });
  });

  it("a listener that picks a version the dialer did not offer is refused", () => {
    const dialer = new DialerHandshake(dialerIdentity({ supportedVersions: [1] }));
    dialer.hello();
    const forged = { type: "challenge" as const, node: "mn-b", version: 7, nonce: randomNonce(), proof: "0".repeat(64) };
    expect(dialer.receive(forged)).toMatchObject({ kind: "refuse", send: { code: "unsupported-version", versions: [1] } });
  });

  it("refuses a valid heartbeat before the handshake (not-ready), garbage (bad-frame) and steps out of order (protocol)", () => {
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame(JSON.stringify(heartbeat("mn-a", 1)))).toMatchObject({
      kind: "refuse",
      send: { code: "not-ready" },
    });
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame("{not json")).toMatchObject({ kind: "refuse", send: { code: "bad-frame" } });
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame(JSON.stringify({ type: "hello", node: "mn-a", versions: [1], nonce: "short" }))).toMatchObject({
      kind: "refuse",
      send: { code: "bad-frame" },
    });
    expect(new ListenerHandshake(listenerIdentity()).receive({ type: "auth", proof: "a".repeat(64) })).toMatchObject({ kind: "refuse", send: { code: "protocol" } });
    const dialer = new DialerHandshake(dialerIdentity());
    dialer.hello();
    expect(dialer.receive({ type: "welcome", version: 1 })).toMatchObject({ kind: "refuse", send: { code: "protocol" } });
    // A dialer fed a heartbeat instead of a challenge refuses it too.
    const early = new DialerHandshake(dialerIdentity());
    early.hello();
    expect(early.receiveFrame(JSON.stringify(heartbeat("mn-b", 1)))).toMatchObject({ kind: "refuse", send: { code: "not-ready" } });
  });

  it("refuses oversized handshake frames before parsing", () => {
    const listener = new ListenerHandshake(listenerIdentity({ maxFrameBytes: 64 }));
    const verdict = listener.receiveFrame(JSON.stringify({ type: "hello", pad: "x".repeat(100) }));
    expect(verdict).toMatchObject({ kind: "refuse", send: { code: "bad-frame" } });
    expect(JSON.stringify(verdict)).toContain("64-byte limit");
  });

  it("anything after the verdict is refused", () => {
    const listener = new ListenerHandshake(listenerIdentity());
    listener.receiveFrame("garbage");
    expect(listener.receive({ type: "hello", node: "mn-a", versions: [1], nonce: randomNonce() })).toMatchObject({ kind: "refuse", send: { code: "protocol" } });
  });

  it("a node cannot be its own peer", () => {
    expect(() => new ListenerHandshake({ self: "mn-a", peer: "mn-a", secret: SECRET, supportedVersions: [1] })).toThrow(/own peer/);
  });
});
