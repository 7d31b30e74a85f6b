/**
 * Property-based fuzzing of the handshake sessions (no sockets: frames in, outcomes out).
 * Whatever a stranger sends, at whatever step: the session never throws, never authenticates
 * a side that has not proved the secret, and ends in a refusal that names the reason. A
 * valid transcript made with the wrong secret is refused; the right secret always works.
 *
 * Replay: see fuzz-options.ts (MNHA_FUZZ_SEED, MNHA_FUZZ_PATH, MNHA_FUZZ_RUNS).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeHandshake, encode, type HandshakeMessage } from "@mnha/protocol";
import { DialerHandshake, ListenerHandshake, computeProof, type HandshakeIdentity, type HandshakeOutcome } from "../../src/peer/handshake-session.js";
import { fuzzParameters } from "./fuzz-options.js";
import { handshakeMessageArb, junkFrameArb, linkMessageArb, mutatedFrameArb, nodeNameArb, nonceArb, proofArb } from "./frames.js";

const SECRET = "correct-horse-battery-staple-42";
const DIALER = "mn-a";
const LISTENER = "mn-b";
const REFUSE_CODES = ["bad-frame", "unsupported-version", "auth-failed", "unknown-peer", "duplicate-link", "not-ready", "protocol", "truncated-frame", "forged-frame", "replayed-frame", "reordered-frame"];

const dialerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: DIALER, peer: LISTENER, secret: SECRET, supportedVersions: [2], ...over });
const listenerIdentity = (over: Partial<HandshakeIdentity> = {}): HandshakeIdentity => ({ self: LISTENER, peer: DIALER, secret: SECRET, supportedVersions: [2], ...over });

/** A secret as the config allows it: 16+ characters, any text. */
const secretArb = fc.string({ minLength: 16, maxLength: 64, unit: "grapheme" }).filter((s) => s.length >= 16);

/** Frames a stranger on the segment might send to either side. */
const strangerFrameArb: fc.Arbitrary<string> = fc.oneof(
  junkFrameArb,
  mutatedFrameArb(handshakeMessageArb).map((m) => m.frame),
  handshakeMessageArb.map(encode),
  linkMessageArb().map(encode),
  // Well-formed frames that name the right nodes: only the proof can stop them.
  fc.record({ nonce: nonceArb, versions: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }) }).map(({ nonce, versions }) => encode({ type: "hello", node: DIALER, versions, nonce })),
  fc.record({ nonce: nonceArb, version: fc.integer({ min: 1, max: 3 }) }).map(({ nonce, version }) => encode({ type: "challenge", node: LISTENER, version, nonce })),
  proofArb.map((proof) => encode({ type: "auth", proof })),
  fc.record({ proof: proofArb, version: fc.integer({ min: 1, max: 3 }) }).map(({ proof, version }) => encode({ type: "welcome", version, proof })),
);

/**
 * Checks one outcome against the session contract and returns it. `frame` is what was fed.
 * Every message the session asks to send is a valid handshake frame without the secret.
 */
function checkOutcome(outcome: HandshakeOutcome, frame: string, secret = SECRET): HandshakeOutcome {
  const sends = outcome.kind === "continue" || outcome.kind === "refuse" ? [outcome.send] : outcome.kind === "authenticated" && outcome.send ? [outcome.send] : [];
  for (const send of sends) {
    const text = encode(send);
    expect(decodeHandshake(text).ok, `the session would send an invalid frame: ${text}`).toBe(true);
    expect(text.includes(secret), "a frame carries the secret").toBe(false);
  }
  if (outcome.kind === "refuse") {
    expect(REFUSE_CODES).toContain(outcome.send.code);
    expect(outcome.send.message.trim().length, `a refusal without a reason for ${JSON.stringify(frame.slice(0, 200))}`).toBeGreaterThan(0);
    expect(outcome.send.message.length).toBeLessThanOrEqual(500);
  }
  if (outcome.kind === "refused") {
    // The other side refused us: only a decodable refuse frame can say so.
    const decoded = decodeHandshake(frame);
    expect(decoded.ok && decoded.message.type === "refuse", `refused without a refuse frame: ${frame.slice(0, 200)}`).toBe(true);
    expect(REFUSE_CODES).toContain(outcome.code);
  }
  return outcome;
}

/** Feeds frames to a session; checks the contract at every step and that a verdict is final. */
function feed(session: DialerHandshake | ListenerHandshake, frames: readonly string[]): HandshakeOutcome[] {
  const outcomes: HandshakeOutcome[] = [];
  let verdict = false;
  for (const frame of frames) {
    let outcome: HandshakeOutcome | undefined;
    expect(() => (outcome = session.receiveFrame(frame)), `receiveFrame threw on ${JSON.stringify(frame.slice(0, 200))}`).not.toThrow();
    checkOutcome(outcome as HandshakeOutcome, frame);
    if (verdict) expect(outcome, "a frame after the verdict").toMatchObject({ kind: "refuse", send: { code: "protocol" } });
    verdict ||= outcome!.kind !== "continue";
    expect(session.done()).toBe(verdict);
    outcomes.push(outcome!);
  }
  return outcomes;
}

describe("listener against strangers", () => {
  it("random and mutated frames at every step never throw, never authenticate, and end in a refusal with a reason", () => {
    fc.assert(
      fc.property(fc.boolean(), nonceArb, fc.array(strangerFrameArb, { minLength: 1, maxLength: 6 }), (startWithHello, nonce, frames) => {
        const listener = new ListenerHandshake(listenerIdentity());
        // Half the runs begin with a proper hello, so the junk lands in the await-auth step too.
        const all = startWithHello ? [encode({ type: "hello", node: DIALER, versions: [2], nonce }), ...frames] : frames;
        const outcomes = feed(listener, all);
        expect(outcomes.some((o) => o.kind === "authenticated")).toBe(false);
        const continued = outcomes.filter((o) => o.kind === "continue");
        expect(continued.length).toBeLessThanOrEqual(1);
        for (const o of continued) expect(o.kind === "continue" && o.send.type).toBe("challenge");
      }),
      fuzzParameters(2_000),
    );
  });

  it("an auth with any proof but the right one is refused as auth-failed", () => {
    fc.assert(
      fc.property(nonceArb, proofArb, (nonce, proof) => {
        const listener = new ListenerHandshake(listenerIdentity());
        const challenge = listener.receiveFrame(encode({ type: "hello", node: DIALER, versions: [2], nonce }));
        expect(challenge.kind).toBe("continue");
        const verdict = checkOutcome(listener.receiveFrame(encode({ type: "auth", proof })), "");
        expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
        expect(verdict.kind === "refuse" && verdict.send.message).toContain("proof does not match the shared secret");
      }),
      fuzzParameters(500),
    );
  });
});

describe("dialer against strangers", () => {
  it("random and mutated frames after hello never throw, never authenticate, and end in a refusal with a reason", () => {
    fc.assert(
      fc.property(fc.array(strangerFrameArb, { minLength: 1, maxLength: 6 }), (frames) => {
        const dialer = new DialerHandshake(dialerIdentity());
        dialer.hello();
        const outcomes = feed(dialer, frames);
        // The dialer proves first, so a well-formed challenge gets its auth; but without the
        // secret nobody can make a welcome the dialer accepts.
        expect(outcomes.some((o) => o.kind === "authenticated")).toBe(false);
        const continued = outcomes.filter((o) => o.kind === "continue");
        expect(continued.length).toBeLessThanOrEqual(1);
        for (const o of continued) expect(o.kind === "continue" && o.send.type).toBe("auth");
      }),
      fuzzParameters(2_000),
    );
  });
});

describe("secrets", () => {
  it("a valid transcript made with the wrong secret is refused on both sides; the right secret authenticates", () => {
    fc.assert(
      fc.property(secretArb, secretArb, nodeNameArb, nodeNameArb, fc.boolean(), (secretA, secretB, dialerName, listenerName, sameSecret) => {
        fc.pre(dialerName !== listenerName && secretA !== secretB);
        const dialerSecret = secretA;
        const listenerSecret = sameSecret ? secretA : secretB;
        const dialer = new DialerHandshake({ self: dialerName, peer: listenerName, secret: dialerSecret, supportedVersions: [2] });
        const listener = new ListenerHandshake({ self: listenerName, peer: dialerName, secret: listenerSecret, supportedVersions: [2] });
        const hello = encode(dialer.hello());
        const challenge = checkOutcome(listener.receiveFrame(hello), hello, listenerSecret);
        expect(challenge.kind).toBe("continue");
        if (challenge.kind !== "continue" || challenge.send.type !== "challenge") throw new Error("the listener answered the hello with no challenge");
        const afterChallenge = checkOutcome(dialer.receiveFrame(encode(challenge.send)), "", dialerSecret);
        expect(afterChallenge.kind).toBe("continue");
        if (afterChallenge.kind !== "continue") throw new Error("the dialer answered the challenge with no proof");
        if (!sameSecret) {
          // The listener refuses the dialer's proof and never proves itself.
          const verdict = checkOutcome(listener.receiveFrame(encode(afterChallenge.send)), "", listenerSecret);
          expect(verdict).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
          // And a listener with the wrong secret cannot make a welcome the dialer takes.
          const fields = { dialer: dialerName, listener: listenerName, offered: [2], version: 2, dialerNonce: JSON.parse(hello).nonce as string, listenerNonce: challenge.send.nonce };
          const forged = checkOutcome(dialer.receiveFrame(encode({ type: "welcome", version: 2, proof: computeProof(listenerSecret, "listener", fields) })), "", dialerSecret);
          expect(forged).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
          return;
        }
        const welcome = listener.receiveFrame(encode(afterChallenge.send));
        expect(welcome).toMatchObject({ kind: "authenticated", peer: dialerName, version: 2 });
        if (welcome.kind !== "authenticated" || !welcome.send) throw new Error("the listener authenticated the dialer but sent no welcome");
        expect(dialer.receiveFrame(encode(welcome.send))).toMatchObject({ kind: "authenticated", peer: listenerName, version: 2 });
      }),
      fuzzParameters(300),
    );
  });

  it("a recorded transcript replayed to a new listener is refused (the listener's nonce is fresh)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), (replays) => {
        const dialer = new DialerHandshake(dialerIdentity());
        const original = new ListenerHandshake(listenerIdentity());
        const hello = encode(dialer.hello());
        const challenge = original.receiveFrame(hello);
        if (challenge.kind !== "continue") throw new Error("no challenge");
        const auth = dialer.receiveFrame(encode(challenge.send));
        if (auth.kind !== "continue") throw new Error("no auth");
        expect(original.receiveFrame(encode(auth.send)).kind).toBe("authenticated");
        for (let i = 0; i < replays; i++) {
          const listener = new ListenerHandshake(listenerIdentity());
          expect(listener.receiveFrame(hello).kind).toBe("continue");
          expect(checkOutcome(listener.receiveFrame(encode(auth.send)), "")).toMatchObject({ kind: "refuse", send: { code: "auth-failed" } });
        }
      }),
      fuzzParameters(100),
    );
  });
});

describe("an honest exchange with one frame mutated in flight", () => {
  it("both sides authenticate only if the mutated frame still says the same thing; otherwise a side refuses with a reason", () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2, 3), fc.nat(), (mutateAt, pick) => {
        const dialer = new DialerHandshake(dialerIdentity());
        const listener = new ListenerHandshake(listenerIdentity());
        let changed = false;
        let outcomes: HandshakeOutcome[] = [];
        // The wire: frame i goes to the listener when i is even, to the dialer when odd.
        let next: HandshakeMessage | undefined = dialer.hello();
        for (let i = 0; next !== undefined && i < 4; i++) {
          let frame = encode(next);
          if (i === mutateAt) {
            frame = fc.sample(mutatedFrameArb(fc.constant(next)), { numRuns: 1, seed: pick })[0]!.frame;
            const decoded = decodeHandshake(frame);
            changed = !(decoded.ok && encode(decoded.message) === encode(next));
          }
          const receiver = i % 2 === 0 ? listener : dialer;
          let outcome: HandshakeOutcome | undefined;
          expect(() => (outcome = receiver.receiveFrame(frame)), `receiveFrame threw on ${frame.slice(0, 200)}`).not.toThrow();
          outcomes = [...outcomes, checkOutcome(outcome!, frame)];
          next = outcome!.kind === "continue" ? outcome!.send : outcome!.kind === "authenticated" ? outcome!.send : undefined;
        }
        const authenticated = outcomes.filter((o) => o.kind === "authenticated").length;
        if (!changed) {
          expect(authenticated, JSON.stringify(outcomes)).toBe(2);
          return;
        }
        // The listener may already have authenticated before the welcome was mutated; the dialer then refuses.
        expect(authenticated, JSON.stringify(outcomes)).toBeLessThan(2);
        const last = outcomes[outcomes.length - 1]!;
        expect(last.kind === "refuse" || last.kind === "refused", JSON.stringify(outcomes)).toBe(true);
      }),
      fuzzParameters(1_500),
    );
  });
});
