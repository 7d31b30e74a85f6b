/**
 * The peer port against strangers at the TCP level: a source other than the configured peer
 * is reset before any HTTP parsing or upgrade; the peer's own address gets a few connections
 * at a time; a request that does not become a WebSocket in time is cut; every refusal is
 * counted, and reported as rate-limited summaries.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LOOPBACK, freePort, makeNode, makePair, sleep, waitFor, type TestNode } from "./helpers.js";

const running: TestNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.link.stop()));
});

/** A raw TCP client; records what it receives and how it ends. */
function rawTcp(port: number, localAddress = LOOPBACK): { socket: Socket; received: Buffer[]; ended: Promise<{ error: string | null; afterMs: number }> } {
  const started = Date.now();
  const socket = connect({ host: LOOPBACK, port, localAddress });
  const received: Buffer[] = [];
  socket.on("data", (chunk) => received.push(chunk));
  const ended = new Promise<{ error: string | null; afterMs: number }>((resolve) => {
    let error: string | null = null;
    socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on("close", () => resolve({ error, afterMs: Date.now() - started }));
  });
  return { socket, received, ended };
}

const UPGRADE = (key = "dGhlIHNhbXBsZSBub25jZQ=="): string =>
  `GET / HTTP/1.1\r\nHost: mn\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

async function lonelyNode(extra: Parameters<typeof makeNode>[0] extends infer T ? Partial<T> : never = {}): Promise<{ node: TestNode; port: number }> {
  const port = await freePort();
  const node = makeNode({ name: "mn-b", port, peerName: "mn-a", peerPort: await freePort(), reconnectInitialMs: 5_000, reconnectMaxMs: 10_000, ...extra });
  running.push(node);
  await node.link.start();
  return { node, port };
}

describe("peer port: the TCP gate", () => {
  it("resets a connection from any address but the configured peer's before the upgrade: no HTTP answer, no handshake", async () => {
    const { node, port } = await lonelyNode();
    const stranger = rawTcp(port, "127.0.0.2");
    stranger.socket.on("connect", () => stranger.socket.write(UPGRADE()));
    const end = await stranger.ended;
    expect(Buffer.concat(stranger.received).length).toBe(0);
    expect(end.error === null || end.error === "ECONNRESET" || end.error === "EPIPE").toBe(true);
    await waitFor(() => node.refusals().length === 1, "the refusal counted");
    expect(node.refusals()[0]).toMatchObject({ code: "stranger-address", remote: expect.stringMatching(/^127\.0\.0\.2:\d+$/) });
    expect(node.link.refusalCounts()).toEqual({ "stranger-address": 1 });
    // Nothing reached the handshake layer: no inbound connection was ever logged.
    expect(node.logs.some((l) => l.msg === "peer link: inbound connection")).toBe(false);

    // The configured peer's address (127.0.0.1) gets the WebSocket answer.
    const peer = rawTcp(port);
    peer.socket.on("connect", () => peer.socket.write(UPGRADE()));
    await waitFor(() => Buffer.concat(peer.received).toString().includes("101 Switching Protocols"), "the upgrade for the peer's address");
    peer.socket.destroy();
  });

  it("limits connections per source and in total, resetting the excess at once", async () => {
    const { node, port } = await lonelyNode({ maxConnectionsPerSource: 2, maxConnections: 16 });
    const held = [rawTcp(port), rawTcp(port)];
    await Promise.all(held.map((c) => new Promise((resolve) => c.socket.once("connect", resolve))));
    await sleep(50);
    const third = rawTcp(port);
    const end = await third.ended;
    expect(end.afterMs).toBeLessThan(1_000);
    await waitFor(() => node.refusals().some((r) => r.code === "source-limit"), "the source limit");
    for (const c of held) c.socket.destroy();
    // Once they are gone, the source may connect again.
    await sleep(50);
    const again = rawTcp(port);
    again.socket.on("connect", () => again.socket.write(UPGRADE()));
    await waitFor(() => Buffer.concat(again.received).toString().includes("101"), "a new connection after the others closed");
    again.socket.destroy();

    const { node: tight, port: tightPort } = await lonelyNode({ maxConnectionsPerSource: 4, maxConnections: 1 });
    const first = rawTcp(tightPort);
    await new Promise((resolve) => first.socket.once("connect", resolve));
    await sleep(50);
    await rawTcp(tightPort).ended;
    await waitFor(() => tight.refusals().some((r) => r.code === "connection-limit"), "the global limit");
    first.socket.destroy();
  });

  it("cuts a half-sent HTTP request and a silent connection after the handshake timeout, not after node's 30 s", async () => {
    const { node, port } = await lonelyNode({ handshakeTimeoutMs: 300 });
    const halfSent = rawTcp(port);
    halfSent.socket.on("connect", () => halfSent.socket.write("GET / HTTP/1.1\r\nHost: mn\r\nUpgrade: websock"));
    const silent = rawTcp(port);
    const [a, b] = await Promise.all([halfSent.ended, silent.ended]);
    for (const end of [a, b]) {
      expect(end.afterMs).toBeGreaterThanOrEqual(250);
      expect(end.afterMs).toBeLessThan(3_000);
    }
    await waitFor(() => (node.link.refusalCounts()["upgrade-timeout"] ?? 0) + (node.link.refusalCounts()["bad-frame"] ?? 0) >= 2, "both counted");
  });

  it("node's own request timeout firing before the upgrade timer (a loaded loop): the connection is still counted, once, and reset", async () => {
    const { node, port } = await lonelyNode({ handshakeTimeoutMs: 1_000 });
    // On a loaded loop node's timeout check can run just before the upgrade timer falls due;
    // here node's timeouts are made shorter so that it always does.
    const server = (node.link as unknown as { server: { headersTimeout: number; requestTimeout: number } }).server;
    server.headersTimeout = 150;
    server.requestTimeout = 150;
    const halfSent = rawTcp(port);
    halfSent.socket.on("connect", () => halfSent.socket.write("GET / HTTP/1.1\r\nHost: mn\r\nUpgrade: websock"));
    const silent = rawTcp(port);
    const ends = await Promise.all([halfSent.ended, silent.ended]);
    for (const end of ends) expect(end.afterMs, "cut by node's check, before the 1 s upgrade timer").toBeLessThan(900);
    expect(Buffer.concat(halfSent.received).toString(), "reset, not answered with node's 408").toBe("");
    await sleep(1_200);
    expect(node.link.refusalCounts()).toEqual({ "upgrade-timeout": 2 });
  });

  it("a malformed request from the peer's address is reset at once, not answered (no 400 to read)", async () => {
    const { node, port } = await lonelyNode({ handshakeTimeoutMs: 5_000 });
    const garbled = rawTcp(port);
    garbled.socket.on("connect", () => garbled.socket.write("NOT HTTP AT ALL\r\n\r\n"));
    const end = await garbled.ended;
    expect(end.afterMs, "at once, not after the 5 s upgrade timeout").toBeLessThan(2_000);
    expect(end.error).toBe("ECONNRESET");
    expect(Buffer.concat(garbled.received).toString()).toBe("");
    // The peer port still works for the real peer afterwards.
    const again = rawTcp(port);
    again.socket.on("connect", () => again.socket.write(UPGRADE()));
    await waitFor(() => Buffer.concat(again.received).toString().includes("101"), "an upgrade after the reset");
    again.socket.destroy();
    expect(node.link.refusalCounts()).toEqual({});
  });
});

describe("refusal summaries", () => {
  it("reports the first refusal at once, then at most one summary per interval for the rest, with counts by code", async () => {
    const { node, port } = await lonelyNode({ refusalSummaryMs: 400 });
    const strangers = Array.from({ length: 12 }, () => rawTcp(port, "127.0.0.2"));
    await Promise.all(strangers.map((s) => s.ended));
    await waitFor(() => node.count("refusals") >= 1, "the first report");
    expect(node.events.filter((e) => e.kind === "refusals")).toHaveLength(1);
    await waitFor(() => node.count("refusals") === 2, "the summary", 3_000);
    await sleep(600);
    const summaries = node.events.flatMap((e) => (e.kind === "refusals" ? [e] : []));
    expect(summaries).toHaveLength(2);
    expect(summaries.reduce((sum, s) => sum + s.count, 0)).toBe(12);
    expect(summaries[0]?.count).toBe(1);
    expect(summaries[1]).toMatchObject({ count: 11, byCode: { "stranger-address": 11 }, sources: ["127.0.0.2"], otherSources: 0 });
    expect(summaries[1]?.message).toMatch(/^refused 11 peer connections or frames \(stranger-address ×11\) from 127\.0\.0\.2/);
    expect(node.link.refusalCounts()).toEqual({ "stranger-address": 12 });
  });

  it("a pair that connects normally reports no refusal at all", async () => {
    const { a, b } = await makePair();
    running.push(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "the link");
    await sleep(300);
    expect(a.count("refusals") + b.count("refusals")).toBe(0);
  });
});
