import { describe, expect, it } from "vitest";
import { decodeHandshake, encode, proofInput, type HandshakeMessage } from "@mnha/protocol";
import { DialerHandshake, ListenerHandshake, computeProof, randomNonce, type HandshakeIdentity, type HandshakeOutcome } from "../../src/peer/handshake-session.js";
import { SECRET, heartbeat } from "./helpers.js";

const dialerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: "mn-a", peer: "mn-b", secret: SECRET, supportedVersions: [2], ...over });
const listenerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: "mn-b", peer: "mn-a", secret: SECRET, supportedVersions: [2], ...over });

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
    const dialerVerdict = dialer.receiveFrame(welcome);
    expect(dialerVerdict).toMatchObject({ kind: "authenticated", peer: "mn-b", version: 2 });
    expect(dialer.done() && listener.done()).toBe(true);
    // Both hold the same session keys: what one seals, the other opens, in both directions.
    if (dialerVerdict.kind !== "authenticated" || welcomeOutcome.kind !== "authenticated") throw new Error("not authenticated");
    const sealed = dialerVerdict.cipher.seal('{"hi":1}');
    expect(welcomeOutcome.cipher.open(sealed)).toMatchObject({ ok: true, text: '{"hi":1}', seq: 0 });
    expect(dialerVerdict.cipher.open(welcomeOutcome.cipher.seal("back"))).toMatchObject({ ok: true, text: "back" });
    // A frame sealed for one direction does not open in the other (separate keys).
    expect(dialerVerdict.cipher.open(dialerVerdict.cipher.seal("mine"))).toMatchObject({ ok: false, fault: "forged" });
    // Every frame is a valid handshake message, and none carries the secret.
    for (const frame of frames) {
      expect(decodeHandshake(frame).ok).toBe(true);
      expect(frame).not.toContain(SECRET);
    }
  });

  it("proofs are HMAC-SHA256 over the documented transcript, bound to the side", () => {
    const fields = { dialer: "mn-a", listener: "mn-b", offered: [2], dialerNonce: randomNonce(), listenerNonce: randomNonce(), version: 2 };
    const listenerProof = computeProof(SECRET, "listener", fields);
    expect(listenerProof).toMatch(/^[0-9a-f]{64}$/);
    expect(computeProof(SECRET, "dialer", fields)).not.toBe(listenerProof);
    expect(computeProof("another-secret-entirely", "listener", fields)).not.toBe(listenerProof);
    expect(proofInput("listener", fields)).toContain(fields.dialerNonce);
  });

  it("nonces are 32 random bytes in base64 and differ every time", () => {
    const a = randomNonce();
    const b = randomNonce();
    expect(Buffer.from(a, "base64")).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it("the dialer proves first: a stranger's hello gets a challenge that carries nothing derived from the secret", () => {
    // Same nonces, different secrets: if the challenge depended on the secret, these would differ.
    const fixedNonce = (): string => "N".repeat(44);
    const hello = { type: "hello" as const, node: "mn-a", versions: [2], nonce: "S".repeat(44) };
    const one = sent(new ListenerHandshake(listenerIdentity({ newNonce: fixedNonce })).receive(hello));
    const other = sent(new ListenerHandshake(listenerIdentity({ secret: "an-entirely-different-secret-value", newNonce: fixedNonce })).receive(hello));
    expect(one).toEqual({ type: "challenge", node: "mn-b", version: 2, nonce: "N".repeat(44) });
    expect(other).toEqual(one);
    // A stranger who then guesses a proof is refused, and still has received no proof at all.
    const listener = new ListenerHandshake(listenerIdentity());
    listener.receive(hello);
    const verdict = listener.receive({ type: "auth", proof: "0".repeat(64) });
    expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
    expect(JSON.stringify(verdict)).not.toMatch(/[0-9a-f]{64}/);
  });

  it("a dialer with the wrong secret is refused by the listener, which never proves itself to it", () => {
    const dialer = new DialerHandshake(dialerIdentity({ secret: "not-the-shared-secret-at-all-no" }));
    const listener = new ListenerHandshake(listenerIdentity());
    const challenge = sent(listener.receiveFrame(wire(dialer.hello())));
    const auth = sent(dialer.receiveFrame(wire(challenge)));
    expect(auth.type).toBe("auth");
    const verdict = listener.receiveFrame(wire(auth));
    expect(verdict).toMatchObject({ kind: "refuse", send: { type: "refuse", code: "auth-failed" } });
    expect(JSON.stringify(verdict)).toContain("peer failed authentication");
  });

  it("a dialer refuses a welcome whose proof does not match (a listener without the secret)", () => {
    const dialer = new DialerHandshake(dialerIdentity());
    const impostor = new ListenerHandshake(listenerIdentity({ secret: "the-impostor-does-not-know-it!!" }));
    const challenge = sent(impostor.receiveFrame(wire(dialer.hello())));
    sent(dialer.receiveFrame(wire(challenge)));
    const verdict = dialer.receive({ type: "welcome", version: 2, proof: "f".repeat(64) });
    expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed", message: expect.stringContaining("listener's proof") } });
  });

  it("a listener refuses an auth whose proof does not match (a forged or reflected proof)", () => {
    const dialer = new DialerHandshake(dialerIdentity());
    const listener = new ListenerHandshake(listenerIdentity());
    const hello = dialer.hello();
    const challenge = sent(listener.receive(hello));
    if (challenge.type !== "challenge") throw new Error("expected a challenge");
    // A proof made for the listener's side of this very transcript: bound to the side, so it fails as the dialer's.
    const fields = { dialer: "mn-a", listener: "mn-b", offered: [2], version: 2, dialerNonce: hello.nonce, listenerNonce: challenge.nonce };
    const verdict = listener.receive({ type: "auth", proof: computeProof(SECRET, "listener", fields) });
    expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
    expect(listener.done()).toBe(true);
  });

  it("the offered version list is bound: a relay that trims the hello (a downgrade) makes the dialer's proof fail", () => {
    const dialer = new DialerHandshake(dialerIdentity({ supportedVersions: [1, 2] }));
    const listener = new ListenerHandshake(listenerIdentity({ supportedVersions: [1, 2] }));
    const hello = dialer.hello();
    // The relay removes version 2 from the offer: the listener, seeing only 1, chooses 1 ...
    const challenge = sent(listener.receive({ ...hello, versions: [1] }));
    expect(challenge).toMatchObject({ type: "challenge", version: 1 });
    // ... the dialer still speaks 1, so it answers, but its transcript has the real offer [1, 2].
    const auth = sent(dialer.receiveFrame(wire(challenge)));
    expect(listener.receiveFrame(wire(auth))).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });

    // Rewriting the chosen version in the challenge fails the same way.
    const dialer2 = new DialerHandshake(dialerIdentity({ supportedVersions: [1, 2] }));
    const listener2 = new ListenerHandshake(listenerIdentity({ supportedVersions: [1, 2] }));
    const challenge2 = sent(listener2.receive(dialer2.hello()));
    if (challenge2.type !== "challenge") throw new Error("expected a challenge");
    const auth2 = sent(dialer2.receive({ ...challenge2, version: 1 }));
    expect(listener2.receive(auth2 as never)).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });

    // Untouched, the same two agree on 2.
    const dialer3 = new DialerHandshake(dialerIdentity({ supportedVersions: [1, 2] }));
    const listener3 = new ListenerHandshake(listenerIdentity({ supportedVersions: [1, 2] }));
    const auth3 = sent(dialer3.receive(sent(listener3.receive(dialer3.hello())) as never));
    expect(listener3.receive(auth3 as never)).toMatchObject({ kind: "authenticated", version: 2 });
  });

  it("a listener refuses a hello from a node that is not its configured peer", () => {
    const stranger = new DialerHandshake({ self: "mallory", peer: "mn-b", secret: SECRET, supportedVersions: [1] });
    const listener = new ListenerHandshake(listenerIdentity());
    expect(listener.receiveFrame(wire(stranger.hello()))).toMatchObject({ kind: "refuse", send: { code: "unknown-peer" } });
  });

  it("a dialer refuses a listener that calls itself by another name", () => {
    const dialer = new DialerHandshake(dialerIdentity());
    const impostor = new ListenerHandshake({ self: "mn-c", peer: "mn-a", secret: SECRET, supportedVersions: [2] });
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
    const dialer = new DialerHandshake(dialerIdentity({ supportedVersions: [2] }));
    dialer.hello();
    const forged = { type: "challenge" as const, node: "mn-b", version: 7, nonce: randomNonce() };
    expect(dialer.receive(forged)).toMatchObject({ kind: "refuse", send: { code: "unsupported-version", versions: [2] } });
  });

  it("refuses a valid heartbeat before the handshake (not-ready), garbage (bad-frame) and steps out of order (protocol)", () => {
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame(JSON.stringify(heartbeat("mn-a", 1)))).toMatchObject({
      kind: "refuse",
      send: { code: "not-ready" },
    });
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame("{not json")).toMatchObject({ kind: "refuse", send: { code: "bad-frame" } });
    expect(new ListenerHandshake(listenerIdentity()).receiveFrame(JSON.stringify({ type: "hello", node: "mn-a", versions: [2], nonce: "short" }))).toMatchObject({
      kind: "refuse",
      send: { code: "bad-frame" },
    });
    expect(new ListenerHandshake(listenerIdentity()).receive({ type: "auth", proof: "a".repeat(64) })).toMatchObject({ kind: "refuse", send: { code: "protocol" } });
    const dialer = new DialerHandshake(dialerIdentity());
    dialer.hello();
    expect(dialer.receive({ type: "welcome", version: 2, proof: "a".repeat(64) })).toMatchObject({ kind: "refuse", send: { code: "protocol" } });
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
