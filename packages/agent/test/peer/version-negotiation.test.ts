/**
 * Mixed versions during upgrade-ha: a node of the current build (offering the code's
 * PROTOCOL_VERSIONS) and a test build of the next one (offering [current, current+1]) must
 * agree on the current version, whichever side dials, and exchange sealed traffic; two next
 * builds agree on the next version. Also which lists a build's suite.json may declare.
 */
import { afterEach, describe, expect, it } from "vitest";
import { PROTOCOL_VERSIONS } from "@mnha/protocol";
import { DialerHandshake, ListenerHandshake, type HandshakeIdentity, type HandshakeOutcome } from "../../src/peer/handshake-session.js";
import { offeredProtocolVersions } from "../../src/provision/suite-info.js";
import { SECRET, heartbeat, makePair, sleep, waitFor, type TestNode } from "./helpers.js";

const CURRENT = [...PROTOCOL_VERSIONS];
const CURRENT_MAX = Math.max(...CURRENT);
const NEXT = [...CURRENT, CURRENT_MAX + 1];

const running: TestNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.link.stop()));
});

function identity(self: string, peer: string, supportedVersions: number[]): HandshakeIdentity {
  return { self, peer, secret: SECRET, supportedVersions };
}

/** One handshake between the two state machines; returns both verdicts. */
function handshake(dialerVersions: number[], listenerVersions: number[]): { dialer: HandshakeOutcome; listener: HandshakeOutcome } {
  const dialer = new DialerHandshake(identity("mn1", "mn2", dialerVersions));
  const listener = new ListenerHandshake(identity("mn2", "mn1", listenerVersions));
  const challenge = listener.receive(dialer.hello());
  if (challenge.kind !== "continue") throw new Error(`listener: ${challenge.kind}`);
  const auth = dialer.receive(challenge.send);
  if (auth.kind !== "continue") throw new Error(`dialer: ${auth.kind}`);
  const welcome = listener.receive(auth.send);
  if (welcome.kind !== "authenticated" || welcome.send === undefined) throw new Error(`listener: ${welcome.kind}`);
  return { dialer: dialer.receive(welcome.send), listener: welcome };
}

async function connectedPair(a: number[], b: number[]): Promise<{ a: TestNode; b: TestNode }> {
  const pair = await makePair({ a: { supportedVersions: a }, b: { supportedVersions: b } });
  running.push(pair.a, pair.b);
  await Promise.all([pair.a.link.start(), pair.b.link.start()]);
  await waitFor(() => pair.a.link.connected() && pair.b.link.connected(), "both sides connected");
  await sleep(200); // a simultaneous-dial duplicate settles
  return pair;
}

describe(`protocol negotiation across an upgrade (current ${CURRENT.join(",")} / next ${NEXT.join(",")})`, () => {
  it("a current and a next build agree on the current version, whichever side dials", () => {
    for (const [dialer, listener] of [
      [CURRENT, NEXT],
      [NEXT, CURRENT],
    ] as const) {
      const verdict = handshake([...dialer], [...listener]);
      expect(verdict.dialer).toMatchObject({ kind: "authenticated", version: CURRENT_MAX });
      expect(verdict.listener).toMatchObject({ kind: "authenticated", version: CURRENT_MAX });
    }
  });

  it("two next builds agree on the next version", () => {
    const verdict = handshake(NEXT, NEXT);
    expect(verdict.dialer).toMatchObject({ kind: "authenticated", version: CURRENT_MAX + 1 });
    expect(verdict.listener).toMatchObject({ kind: "authenticated", version: CURRENT_MAX + 1 });
  });

  it("over real sockets, a mixed pair links on the current version and exchanges sealed heartbeats both ways", async () => {
    const { a, b } = await connectedPair(CURRENT, NEXT);
    expect(a.link.version()).toBe(CURRENT_MAX);
    expect(b.link.version()).toBe(CURRENT_MAX);
    expect(b.link.offeredVersions()).toEqual(NEXT);
    expect(a.link.send(heartbeat("mn-a", 1))).toBe(true);
    expect(b.link.send(heartbeat("mn-b", 1))).toBe(true);
    await waitFor(() => a.messages().length === 1 && b.messages().length === 1, "a heartbeat each way");
    expect(b.messages()).toEqual([heartbeat("mn-a", 1)]);
    for (const node of [a, b]) expect(node.refusals().every((r) => r.code === "duplicate-link")).toBe(true);
  });

  it("over real sockets, two next builds link on the next version", async () => {
    const { a, b } = await connectedPair(NEXT, NEXT);
    expect(a.link.version()).toBe(CURRENT_MAX + 1);
    expect(b.link.version()).toBe(CURRENT_MAX + 1);
    expect(a.link.send(heartbeat("mn-a", 1))).toBe(true);
    await waitFor(() => b.messages().length === 1, "the heartbeat");
  });
});

describe("the protocol versions a build's suite.json may declare", () => {
  it("the code's own list when nothing (or something damaged) is declared", () => {
    for (const declared of [undefined, null, "2,3", [], [0], [1.5], ["2"], new Array(17).fill(CURRENT_MAX)]) expect(offeredProtocolVersions(declared)).toEqual(CURRENT);
  });

  it("a test build may add the next version, never drop one the code speaks", () => {
    expect(offeredProtocolVersions([CURRENT_MAX + 1, ...CURRENT])).toEqual(NEXT);
    expect(offeredProtocolVersions([CURRENT_MAX + 1])).toEqual(CURRENT);
  });
});
