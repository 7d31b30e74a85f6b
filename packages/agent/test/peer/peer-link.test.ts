import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { CURRENT_PROTOCOL_VERSION, PROTOCOL_VERSIONS } from "@mnha/protocol";
import { LOOPBACK, RawClient, SECRET, freePort, heartbeat, makeNode, makePair, sleep, waitFor, type TestNode } from "./helpers.js";

const running: TestNode[] = [];
function track<T extends TestNode[]>(...nodes: T): T {
  running.push(...nodes);
  return nodes;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.link.stop()));
});

describe("peer link between two agents", () => {
  it("connects with the shared secret, exchanges heartbeats both ways, comes up once on each side", async () => {
    const { a, b } = await makePair();
    track(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "both sides connected");
    await sleep(300); // let a simultaneous-dial duplicate settle

    for (const node of [a, b]) {
      expect(node.count("up")).toBe(1);
      expect(node.count("down")).toBe(0);
      expect(node.link.authenticatedLinkCount()).toBe(1);
      expect(node.link.version()).toBe(CURRENT_PROTOCOL_VERSION);
      expect(node.events.find((e) => e.kind === "up")).toMatchObject({ version: CURRENT_PROTOCOL_VERSION });
      // The only refusals allowed between two good agents are the closing of a surplus link.
      expect(node.refusals().every((r) => r.code === "duplicate-link")).toBe(true);
    }
    expect(a.events.find((e) => e.kind === "up")).toMatchObject({ peer: "mn-b" });
    expect(b.events.find((e) => e.kind === "up")).toMatchObject({ peer: "mn-a" });

    for (let seq = 1; seq <= 3; seq++) {
      expect(a.link.send(heartbeat("mn-a", seq))).toBe(true);
      expect(b.link.send(heartbeat("mn-b", seq))).toBe(true);
    }
    await waitFor(() => a.messages().length === 3 && b.messages().length === 3, "three heartbeats each way");
    expect(b.messages()).toEqual([1, 2, 3].map((seq) => heartbeat("mn-a", seq)));
    expect(a.messages()).toEqual([1, 2, 3].map((seq) => heartbeat("mn-b", seq)));
  });

  it("when both dial at once, keeps exactly one link, the one dialled by the lower name, and does not flap", async () => {
    const pairs = await Promise.all(Array.from({ length: 6 }, () => makePair()));
    track(...pairs.flatMap((p) => [p.a, p.b]));
    await Promise.all(pairs.flatMap((p) => [p.a.link.start(), p.b.link.start()]));
    await waitFor(() => pairs.every((p) => p.a.link.connected() && p.b.link.connected()), "every pair connected");
    await sleep(600);
    for (const { a, b } of pairs) {
      for (const node of [a, b]) {
        expect(node.count("up")).toBe(1);
        expect(node.count("down")).toBe(0);
        expect(node.link.authenticatedLinkCount()).toBe(1);
      }
      // Only the lower name (mn-a) closes a surplus link dialled by the other side.
      expect(b.logs.some((l) => l.msg === "peer link: closing a duplicate link")).toBe(false);
      const closedByA = a.logs.filter((l) => l.msg === "peer link: closing a duplicate link");
      expect(closedByA.every((l) => l["direction"] === "inbound")).toBe(true);
      // Traffic flows on the surviving link.
      expect(a.link.send(heartbeat("mn-a", 7))).toBe(true);
      expect(b.link.send(heartbeat("mn-b", 8))).toBe(true);
    }
    await waitFor(() => pairs.every((p) => p.a.messages().length === 1 && p.b.messages().length === 1), "a heartbeat each way on every pair");
  });

  it("a wrong secret: no up on either side, both refuse or are refused, nothing delivered", async () => {
    const { a, b } = await makePair({ a: { secret: "a-different-secret-of-length" } });
    track(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.refusals().length >= 2 && b.refusals().length >= 2, "refusals on both sides");
    await sleep(200);
    for (const node of [a, b]) {
      expect(node.count("up")).toBe(0);
      expect(node.count("message")).toBe(0);
      expect(node.link.connected()).toBe(false);
      // Each refuses the other's proof, or is told by the other that its proof failed.
      expect(node.refusals().every((r) => r.code === "auth-failed" || r.code === "peer-refused:auth-failed")).toBe(true);
      expect(node.logs.some((l) => l.msg === "peer failed authentication")).toBe(true);
      expect(node.rawLogs.join("\n")).not.toContain(SECRET);
      expect(node.rawLogs.join("\n")).not.toContain("a-different-secret-of-length");
    }
    expect(a.link.send(heartbeat("mn-a", 1))).toBe(false);
    expect(a.refusals()[0]?.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    // Every retry is refused the same way: warned once, not once per retry.
    await waitFor(() => a.refusals().length >= 6 && b.refusals().length >= 6, "more retries refused");
    for (const node of [a, b]) expect(node.logs.filter((l) => l.msg === "peer link: the peer refused the connection").length).toBeLessThanOrEqual(1);
    // What status shows on either node: the refusal and the fix, without either secret.
    for (const node of [a, b]) {
      const failure = node.link.dialFailure();
      expect(failure?.code).toMatch(/^(peer-refused|refused):auth-failed$/);
      expect(failure?.reason).toContain("authentication");
      expect(failure?.hint).toContain("same secret on both nodes");
      expect(JSON.stringify(failure)).not.toContain("a-different-secret-of-length");
      expect(JSON.stringify(failure)).not.toContain(SECRET);
    }
  });

  it("the last failed dial says why (nothing listening, then a wrong name) and is gone once the link is up", async () => {
    const portA = await freePort();
    const portB = await freePort();
    const a = makeNode({ name: "mn-a", port: portA, peerName: "mn-b", peerPort: portB });
    track(a);
    expect(a.link.dialFailure()).toBeNull();
    await a.link.start();
    await waitFor(() => a.link.dialFailure() !== null, "a failed dial");
    expect(a.link.dialFailure()).toMatchObject({ code: "socket:ECONNREFUSED", reason: expect.stringContaining("ECONNREFUSED"), hint: expect.stringContaining(`nothing listens on 127.0.0.1:${portB}`) });
    expect(a.link.dialFailure()?.msAgo).toBeGreaterThanOrEqual(0);

    // Something answers now, but under another name than the one mn-a expects.
    const wrongName = makeNode({ name: "mn-x", port: portB, peerName: "mn-a", peerPort: portA });
    track(wrongName);
    await wrongName.link.start();
    await waitFor(() => a.link.dialFailure()?.code.endsWith("unknown-peer") === true, "the name refusal as the last failure");
    expect(a.link.dialFailure()?.hint).toContain("peers[0].name");
    await wrongName.link.stop();

    const b = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: portA });
    track(b);
    await b.link.start();
    await waitFor(() => a.link.connected() && b.link.connected(), "the link up");
    expect(a.link.dialFailure()).toBeNull();
    expect(b.link.dialFailure()).toBeNull();
  });

  it("refuses a dialer whose name is not the configured peer (unknown-peer)", async () => {
    const portB = await freePort();
    const portMallory = await freePort();
    const nowhere = await freePort();
    const b = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: nowhere });
    const mallory = makeNode({ name: "mallory", port: portMallory, peerName: "mn-b", peerPort: portB });
    track(b, mallory);
    await b.link.start();
    await mallory.link.start();
    await waitFor(() => b.refusals().length >= 1 && mallory.refusals().length >= 1, "the refusal on both ends");
    expect(b.refusals()[0]).toMatchObject({ code: "unknown-peer", remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(b.refusals()[0]?.reason).toContain("mallory");
    expect(mallory.refusals()[0]).toMatchObject({ code: "peer-refused:unknown-peer", remote: `${LOOPBACK}:${portB}` });
    expect(b.count("up") + mallory.count("up")).toBe(0);
  });

  it("a peer offering only version 99 is refused with unsupported-version and the supported versions", async () => {
    const { a, b, portB } = await makePair({ a: { supportedVersions: [99] } });
    track(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.refusals().length >= 2 && b.refusals().length >= 2, "refusals on both sides");
    expect(a.count("up") + b.count("up")).toBe(0);
    for (const node of [a, b]) expect(node.refusals().every((r) => r.code === "unsupported-version" || r.code === "peer-refused:unsupported-version")).toBe(true);
    // A learns what B speaks from B's refusal.
    expect(a.refusals().some((r) => r.remote === `${LOOPBACK}:${portB}` && r.reason.includes("peer supports versions 2"))).toBe(true);

    // On the wire the refusal lists the versions.
    const stranger = new RawClient(portB);
    await stranger.opened;
    stranger.ws.send(JSON.stringify({ type: "hello", node: "mn-a", versions: [99], nonce: "A".repeat(44) }));
    await stranger.closed;
    expect(stranger.frames()).toEqual([{ type: "refuse", code: "unsupported-version", message: expect.stringContaining("99"), versions: [...PROTOCOL_VERSIONS] }]);
  });

  it("the dialer refuses a listener that sends link traffic instead of a challenge, and keeps retrying with backoff", async () => {
    const fakePort = await freePort();
    const fake = new WebSocketServer({ host: LOOPBACK, port: fakePort });
    await new Promise<void>((resolve) => fake.once("listening", () => resolve()));
    const seen: string[][] = [];
    fake.on("connection", (ws) => {
      const frames: string[] = [];
      seen.push(frames);
      ws.on("message", (data) => frames.push(String(data)));
      ws.send(JSON.stringify(heartbeat("mn-b", 1)));
    });
    try {
      const a = makeNode({ name: "mn-a", port: await freePort(), peerName: "mn-b", peerPort: fakePort });
      track(a);
      await a.link.start();
      await waitFor(() => seen.length >= 3, "three dial attempts");
      expect(a.count("up")).toBe(0);
      expect(a.count("message")).toBe(0);
      expect(a.refusals()[0]).toMatchObject({ code: "not-ready", remote: `${LOOPBACK}:${fakePort}` });
      // Each attempt: hello, then the refusal.
      const first = (seen[0] ?? []).map((f) => JSON.parse(f) as { type: string; code?: string });
      expect(first.map((f) => f.type)).toEqual(["hello", "refuse"]);
      expect(first[1]?.code).toBe("not-ready");
    } finally {
      for (const client of fake.clients) client.terminate();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it("a listener that never answers the hello is closed after handshakeTimeoutMs", async () => {
    const fakePort = await freePort();
    const fake = new WebSocketServer({ host: LOOPBACK, port: fakePort });
    await new Promise<void>((resolve) => fake.once("listening", () => resolve()));
    const closedAfter: number[] = [];
    fake.on("connection", (ws) => {
      const openedAt = Date.now();
      ws.on("close", () => closedAfter.push(Date.now() - openedAt));
    });
    try {
      const a = makeNode({ name: "mn-a", port: await freePort(), peerName: "mn-b", peerPort: fakePort, handshakeTimeoutMs: 200 });
      track(a);
      await a.link.start();
      await waitFor(() => closedAfter.length >= 1, "the silent connection closed", 3_000);
      expect(closedAfter[0]).toBeGreaterThanOrEqual(150);
      expect(closedAfter[0]).toBeLessThan(1_500);
      expect(a.refusals()[0]).toMatchObject({ code: "protocol", reason: expect.stringContaining("200 ms") });
    } finally {
      for (const client of fake.clients) client.terminate();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it("send() returns false without a link and refuses invalid messages without throwing", async () => {
    const { a, b } = await makePair();
    track(a, b);
    expect(a.link.send(heartbeat("mn-a", 1))).toBe(false);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "both sides connected");
    const invalid = { ...heartbeat("mn-a", 1), seq: -1 };
    expect(a.link.send(invalid)).toBe(false);
    expect(a.link.send({ ...heartbeat("mn-a", 2), extra: 1 } as never)).toBe(false);
    expect(a.link.connected()).toBe(true);
    expect(a.link.send(heartbeat("mn-a", 3))).toBe(true);
    await waitFor(() => b.messages().length === 1, "the valid heartbeat");
    expect(b.messages()[0]).toMatchObject({ seq: 3 });
  });
});
