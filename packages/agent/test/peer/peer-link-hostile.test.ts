import { afterEach, describe, expect, it } from "vitest";
import { LOOPBACK, RawClient, RecordingRelay, SECRET, freePort, heartbeat, makeNode, makePair, sleep, waitFor, type TestNode } from "./helpers.js";

const MAX_FRAME = 4_096;
const running: TestNode[] = [];
const relays: RecordingRelay[] = [];

afterEach(async () => {
  await Promise.all([...running.splice(0).map((node) => node.link.stop()), ...relays.splice(0).map((relay) => relay.stop())]);
});

/** A dials B only through a recording relay; B cannot dial A (it points at a closed port). */
async function relayedPair(options: { secretOfA?: string } = {}): Promise<{ a: TestNode; b: TestNode; relay: RecordingRelay }> {
  const portA = await freePort();
  const portB = await freePort();
  const relayPort = await freePort();
  const nowhere = await freePort();
  const relay = await RecordingRelay.start(relayPort, portB);
  relays.push(relay);
  const a = makeNode({ name: "mn-a", port: portA, peerName: "mn-b", peerPort: relayPort, maxFrameBytes: MAX_FRAME, ...(options.secretOfA ? { secret: options.secretOfA } : {}) });
  const b = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: nowhere, maxFrameBytes: MAX_FRAME });
  running.push(a, b);
  await b.link.start();
  await a.link.start();
  return { a, b, relay };
}

describe("peer link against strangers and bad frames", () => {
  it("refuses and closes strangers (no handshake, garbage, binary, oversized, silent); the real link is unaffected", async () => {
    const { a, b, portB } = await makePair({ a: { maxFrameBytes: MAX_FRAME }, b: { maxFrameBytes: MAX_FRAME, handshakeTimeoutMs: 300 } });
    running.push(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "the real link");
    await sleep(200);
    const refusalsBefore = b.refusals().length;

    const attempts: { name: string; act: (client: RawClient) => void; code: string; closeCode: number }[] = [
      { name: "heartbeat without handshake", act: (c) => c.ws.send(JSON.stringify(heartbeat("mn-a", 1))), code: "not-ready", closeCode: 1008 },
      { name: "garbage text", act: (c) => c.ws.send("}} definitely not json"), code: "bad-frame", closeCode: 1008 },
      { name: "binary frame", act: (c) => c.ws.send(Buffer.from([1, 2, 3, 4])), code: "bad-frame", closeCode: 1008 },
      { name: "silent", act: () => {}, code: "protocol", closeCode: 1008 },
      {
        name: "hello then a heartbeat",
        act: (c) => {
          c.ws.send(JSON.stringify({ type: "hello", node: "mn-a", versions: [1], nonce: "B".repeat(44) }));
          c.ws.send(JSON.stringify(heartbeat("mn-a", 1)));
        },
        code: "not-ready",
        closeCode: 1008,
      },
    ];
    for (const attempt of attempts) {
      const stranger = new RawClient(portB);
      await stranger.opened;
      const localPort = (stranger.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
      attempt.act(stranger);
      const closed = await stranger.closed;
      expect(closed.code, attempt.name).toBe(attempt.closeCode);
      const frames = stranger.frames();
      const refuse = frames[frames.length - 1];
      expect(refuse, attempt.name).toMatchObject({ type: "refuse", code: attempt.code });
      // Nothing but the refusal (and, for the hello, the challenge) ever reached the stranger.
      expect(frames.every((f) => f["type"] === "refuse" || f["type"] === "challenge"), attempt.name).toBe(true);
      expect(b.refusals().some((r) => r.code === attempt.code && r.remote === `${LOOPBACK}:${localPort}`), attempt.name).toBe(true);
    }

    // Oversized: ws stops reading at maxPayload and closes with 1009 (message too big).
    const giant = new RawClient(portB);
    await giant.opened;
    giant.ws.send("x".repeat(MAX_FRAME + 100));
    expect((await giant.closed).code).toBe(1009);
    await waitFor(() => b.refusals().some((r) => r.code === "bad-frame" && r.reason.includes(`${MAX_FRAME}-byte limit`)), "the oversized refusal");
    expect(b.refusals().length - refusalsBefore).toBe(attempts.length + 1);

    // The real link never noticed.
    for (const node of [a, b]) {
      expect(node.count("up")).toBe(1);
      expect(node.count("down")).toBe(0);
      expect(node.link.connected()).toBe(true);
    }
    expect(a.link.send(heartbeat("mn-a", 42))).toBe(true);
    await waitFor(() => b.messages().some((m) => m.type === "heartbeat" && m.seq === 42), "a heartbeat after the strangers");
    expect(b.messages()).toHaveLength(1);
  });

  it("refuses connections beyond maxPendingHandshakes at once", async () => {
    const port = await freePort();
    const b = makeNode({ name: "mn-b", port, peerName: "mn-a", peerPort: await freePort(), maxPendingHandshakes: 2 });
    running.push(b);
    await b.link.start();
    const clients = [new RawClient(port), new RawClient(port), new RawClient(port)];
    await Promise.all(clients.map((c) => c.opened));
    const third = clients[2];
    if (!third) throw new Error("three clients");
    await third.closed;
    expect(third.frames()).toEqual([{ type: "refuse", code: "not-ready", message: expect.stringContaining("too many handshakes") }]);
    for (const client of clients) client.ws.terminate();
  });

  it("after authentication, a malformed frame closes that link and the link comes back by reconnect", async () => {
    const { a, b, relay } = await relayedPair();
    await waitFor(() => a.link.connected() && b.link.connected(), "the relayed link");

    // A corrupting middlebox (or a buggy peer) sends garbage on the authenticated link.
    expect(relay.injectToListener("{\"type\":\"heartbeat\",")).toBe(1);
    await waitFor(() => b.refusals().some((r) => r.code === "bad-frame"), "B refuses the bad frame");
    expect(b.refusals()[0]).toMatchObject({ code: "bad-frame", reason: expect.stringContaining("not valid JSON"), remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    await waitFor(() => a.count("down") === 1 && b.count("down") === 1, "down on both sides");
    await waitFor(() => a.count("up") === 2 && b.count("up") === 2, "the link back up", 3_000);
    expect(relay.connections).toBe(2);

    // A well-formed JSON frame that breaks the strict schema is just as bad.
    expect(relay.injectToListener(JSON.stringify({ ...heartbeat("mn-a", 1), sneaky: true }))).toBe(1);
    await waitFor(() => b.refusals().filter((r) => r.code === "bad-frame").length === 2, "the second refusal");
    await waitFor(() => a.count("up") === 3 && b.count("up") === 3, "the link back up again", 3_000);

    // A long non-ASCII field name ends up in the reason: still refused cleanly (close reasons are byte-limited).
    expect(relay.injectToListener(JSON.stringify({ ...heartbeat("mn-a", 1), ["ключ".repeat(100)]: 1 }))).toBe(1);
    await waitFor(() => b.refusals().filter((r) => r.code === "bad-frame").length === 3, "the third refusal");
    await waitFor(() => a.count("up") === 4 && b.count("up") === 4, "the link back up a third time", 3_000);

    // And the reconnected link carries traffic.
    expect(a.link.send(heartbeat("mn-a", 9))).toBe(true);
    await waitFor(() => b.messages().length === 1, "the heartbeat");
    // The refusal reached A as a refuse frame before the close.
    const toDialer = relay.frames.filter((f) => f.direction === "to-dialer").map((f) => JSON.parse(f.data) as { type: string; code?: string });
    expect(toDialer.filter((f) => f.type === "refuse").map((f) => f.code)).toEqual(["bad-frame", "bad-frame", "bad-frame"]);
  });

  it("the secret never appears in any frame of a handshake nor in any log line, whether it succeeds or fails", async () => {
    const good = await relayedPair();
    await waitFor(() => good.a.link.connected() && good.b.link.connected(), "the relayed link");
    good.a.link.send(heartbeat("mn-a", 1));
    good.b.link.send(heartbeat("mn-b", 1));
    await waitFor(() => good.a.messages().length === 1 && good.b.messages().length === 1, "heartbeats");
    const types = good.relay.frames.map((f) => (JSON.parse(f.data) as { type: string }).type);
    expect(types.slice(0, 4)).toEqual(["hello", "challenge", "auth", "welcome"]);

    const wrongSecret = "an-impostor-secret-that-is-long";
    const bad = await relayedPair({ secretOfA: wrongSecret });
    await waitFor(() => bad.b.refusals().length >= 1 && bad.a.refusals().length >= 1, "the failed handshake");
    expect(bad.a.count("up") + bad.b.count("up")).toBe(0);

    const forms = (secret: string): string[] => [secret, Buffer.from(secret).toString("base64"), Buffer.from(secret).toString("hex")];
    const frames = [...good.relay.frames, ...bad.relay.frames];
    expect(frames.length).toBeGreaterThanOrEqual(8);
    expect(frames.every((f) => !f.binary)).toBe(true);
    const logs = [good.a, good.b, bad.a, bad.b].flatMap((n) => n.rawLogs);
    expect(logs.length).toBeGreaterThan(0);
    for (const form of [...forms(SECRET), ...forms(wrongSecret)]) {
      for (const frame of frames) expect(frame.data).not.toContain(form);
      for (const line of logs) expect(line).not.toContain(form);
    }
  });
});
