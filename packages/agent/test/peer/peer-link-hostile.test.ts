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
          c.ws.send(JSON.stringify({ type: "hello", node: "mn-a", versions: [2], nonce: "B".repeat(44) }));
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

  it("after authentication, an injected, replayed, reordered or truncated frame is refused, closes the link and says so; the link comes back", async () => {
    const { a, b, relay } = await relayedPair();
    await waitFor(() => a.link.connected() && b.link.connected(), "the relayed link");
    let ups = 1;
    const sentByA = (): Buffer[] => relay.frames.filter((f) => f.direction === "to-listener" && f.binary).map((f) => f.bytes);
    /** One heartbeat from A goes through untouched, so the relay holds a genuine sealed frame of this connection. */
    const genuineFrame = async (seq: number): Promise<Buffer> => {
      const before = sentByA().length;
      expect(a.link.send(heartbeat("mn-a", seq))).toBe(true);
      await waitFor(() => b.messages().some((m) => m.type === "heartbeat" && m.seq === seq), `heartbeat ${seq} delivered`);
      return sentByA()[before] as Buffer;
    };
    const expectRefusedAndBack = async (code: string, what: string): Promise<void> => {
      await waitFor(() => b.refusals().some((r) => r.code === code), `B refuses the ${what} with ${code}`);
      const down = b.events.filter((e) => e.kind === "down").at(-1);
      // The down event names the fault, so the operator sees why the link dropped.
      await waitFor(() => b.count("down") === ups && a.count("down") === ups, `down on both sides after the ${what}`);
      expect(b.events.filter((e) => e.kind === "down").at(-1) ?? down).toMatchObject({ reason: expect.stringContaining(code) });
      ups++;
      await waitFor(() => a.count("up") === ups && b.count("up") === ups, `the link back up after the ${what}`, 3_000);
    };
    const forgedOffer = { type: "handoff-offer", id: "forged", epoch: 999, from: "mn-a", to: "mn-b", reason: "forged by a relay" };

    // 1. Injected: a plain JSON handoff offer written into the stream, as in the reproduction.
    await genuineFrame(1);
    expect(relay.injectToListener(JSON.stringify(forgedOffer))).toBe(1);
    await expectRefusedAndBack("forged-frame", "plain-text injection");

    // 2. Injected in sealed form: a well-formed header with the next sequence number but no key.
    const genuine = await genuineFrame(2);
    const forged = Buffer.concat([genuine.subarray(0, 9), Buffer.from(JSON.stringify(forgedOffer)), Buffer.alloc(16)]);
    forged.writeUInt32BE(0, 1);
    forged.writeUInt32BE(1, 5); // frame 0 was the heartbeat: 1 is the next one B expects
    expect(relay.injectToListener(forged)).toBe(1);
    await expectRefusedAndBack("forged-frame", "sealed forgery");

    // 3. Replayed: a genuine frame of this connection, sent again.
    const replayed = await genuineFrame(3);
    expect(relay.injectToListener(replayed)).toBe(1);
    await expectRefusedAndBack("replayed-frame", "replayed frame");

    // 4. Reordered: the relay holds one frame back and delivers the next one first.
    await genuineFrame(4);
    let held: Buffer | undefined;
    relay.tamperToListener = (frame) => {
      if (!held) {
        held = frame;
        return [];
      }
      relay.tamperToListener = undefined;
      return [frame, held];
    };
    expect(a.link.send(heartbeat("mn-a", 5))).toBe(true);
    expect(a.link.send(heartbeat("mn-a", 6))).toBe(true);
    await expectRefusedAndBack("reordered-frame", "reordered frames");

    // 5. Truncated: a frame cut short, and a frame cut below its header and tag.
    await genuineFrame(7);
    relay.tamperToListener = (frame) => {
      relay.tamperToListener = undefined;
      return [frame.subarray(0, frame.length - 5)];
    };
    expect(a.link.send(heartbeat("mn-a", 8))).toBe(true);
    await expectRefusedAndBack("forged-frame", "cut frame");
    await genuineFrame(9);
    expect(relay.injectToListener(Buffer.from([1, 0, 0, 0]))).toBe(1);
    await expectRefusedAndBack("truncated-frame", "truncated frame");

    // Nothing forged, replayed or out of order ever reached the consumer: only each genuine heartbeat, once.
    expect(b.messages().some((m) => m.type === "handoff-offer")).toBe(false);
    expect(b.messages().map((m) => (m.type === "heartbeat" ? m.seq : -1))).toEqual([1, 2, 3, 4, 7, 9]);
    // And the refusals are counted for the metric.
    const counts = b.link.refusalCounts();
    expect(counts["forged-frame"]).toBe(3);
    expect(counts["replayed-frame"]).toBe(1);
    expect(counts["reordered-frame"]).toBe(1);
    expect(counts["truncated-frame"]).toBe(1);
    // The dialer was told why, in a sealed refuse it could authenticate.
    expect(a.refusals().map((r) => r.code)).toEqual(["peer-refused:forged-frame", "peer-refused:forged-frame", "peer-refused:replayed-frame", "peer-refused:reordered-frame", "peer-refused:forged-frame", "peer-refused:truncated-frame"]);
  });

  it("the secret never appears in any frame of a handshake nor in any log line, whether it succeeds or fails", async () => {
    const good = await relayedPair();
    await waitFor(() => good.a.link.connected() && good.b.link.connected(), "the relayed link");
    good.a.link.send(heartbeat("mn-a", 1));
    good.b.link.send(heartbeat("mn-b", 1));
    await waitFor(() => good.a.messages().length === 1 && good.b.messages().length === 1, "heartbeats");
    const handshake = good.relay.frames.filter((f) => !f.binary).map((f) => (JSON.parse(f.data) as { type: string }).type);
    expect(handshake).toEqual(["hello", "challenge", "auth", "welcome"]);
    // After the handshake everything is sealed: the heartbeats are not readable on the wire.
    const sealed = good.relay.frames.filter((f) => f.binary);
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    for (const frame of sealed) {
      expect(frame.data).not.toContain("heartbeat");
      expect(frame.data).not.toContain("mn-a");
    }

    const wrongSecret = "an-impostor-secret-that-is-long";
    const bad = await relayedPair({ secretOfA: wrongSecret });
    await waitFor(() => bad.b.refusals().length >= 1 && bad.a.refusals().length >= 1, "the failed handshake");
    expect(bad.a.count("up") + bad.b.count("up")).toBe(0);

    const forms = (secret: string): string[] => [secret, Buffer.from(secret).toString("base64"), Buffer.from(secret).toString("hex")];
    const frames = [...good.relay.frames, ...bad.relay.frames];
    expect(frames.length).toBeGreaterThanOrEqual(8);
    const logs = [good.a, good.b, bad.a, bad.b].flatMap((n) => n.rawLogs);
    expect(logs.length).toBeGreaterThan(0);
    for (const form of [...forms(SECRET), ...forms(wrongSecret)]) {
      for (const frame of frames) expect(frame.data).not.toContain(form);
      for (const line of logs) expect(line).not.toContain(form);
    }
  });
});
