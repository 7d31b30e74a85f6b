import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { DialerHandshake } from "../../src/peer/handshake-session.js";
import { LOOPBACK, RawClient, SECRET, canBind, freePort, heartbeat, makeNode, makePair, sleep, waitFor, type TestNode } from "./helpers.js";

const running: TestNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.link.stop()));
});

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe("peer link lifecycle", () => {
  it.each([
    ["the higher-named node", "b"],
    ["the lower-named node", "a"],
  ] as const)("comes back after %s restarts on the same port", async (_label, restarted) => {
    const { a, b, portA, portB } = await makePair();
    running.push(a, b);
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "the link");

    const [victim, survivor] = restarted === "b" ? [b, a] : [a, b];
    const stoppedAt = Date.now();
    await victim.link.stop();
    await waitFor(() => survivor.count("down") === 1, "down on the survivor", 2_000);
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    expect(survivor.link.connected()).toBe(false);
    expect(survivor.link.send(heartbeat("mn-x", 1))).toBe(false);

    const reborn =
      restarted === "b"
        ? makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: portA })
        : makeNode({ name: "mn-a", port: portA, peerName: "mn-b", peerPort: portB });
    running.push(reborn);
    await reborn.link.start();
    await waitFor(() => survivor.link.connected() && reborn.link.connected(), "the link back", 3_000);
    await sleep(200);
    expect(survivor.count("up")).toBe(2);
    expect(reborn.count("up")).toBe(1);
    expect(survivor.link.authenticatedLinkCount()).toBe(1);
    expect(reborn.link.send(heartbeat(restarted === "b" ? "mn-b" : "mn-a", 5))).toBe(true);
    await waitFor(() => survivor.messages().length === 1, "a heartbeat over the new link");
  });

  it("redials with backoff that grows from reconnectInitialMs and is capped at reconnectMaxMs", async () => {
    const nowhere = await freePort();
    const a = makeNode({ name: "mn-a", port: await freePort(), peerName: "mn-b", peerPort: nowhere, reconnectInitialMs: 10, reconnectMaxMs: 80 });
    running.push(a);
    await a.link.start();
    const delays = (): number[] => a.logs.flatMap((l) => (typeof l["retryInMs"] === "number" ? [l["retryInMs"]] : []));
    await waitFor(() => delays().length >= 7, "seven scheduled redials", 3_000);
    await a.link.stop();
    const seen = delays();
    seen.forEach((delay, step) => {
      const ceiling = Math.min(80, 10 * 2 ** step);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    });
    expect(Math.max(...seen)).toBeLessThanOrEqual(80);
    expect(seen.slice(4).every((d) => d >= 40)).toBe(true);
    // Nothing more is scheduled after stop.
    const afterStop = seen.length;
    await sleep(200);
    expect(delays().length).toBe(afterStop);
  });

  it("the backoff starts over once a link was up: the first redial after down is quick", async () => {
    const { a, b, portB } = await makePair({ a: { reconnectInitialMs: 20, reconnectMaxMs: 2_000 } });
    running.push(a, b);
    await b.link.stop(); // b never started: its port is free, so a's first dials fail
    await a.link.start();
    await waitFor(() => a.logs.filter((l) => typeof l["retryInMs"] === "number").length >= 4, "a few failed dials");
    const b2 = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: 1 });
    running.push(b2);
    await b2.link.start();
    await waitFor(() => a.link.connected(), "the link", 3_000);
    const before = a.logs.length;
    await b2.link.stop();
    await waitFor(() => a.count("down") === 1, "down");
    await waitFor(() => a.logs.slice(before).some((l) => typeof l["retryInMs"] === "number"), "the next redial");
    const firstRetry = a.logs.slice(before).find((l) => typeof l["retryInMs"] === "number");
    expect(firstRetry?.["retryInMs"]).toBeLessThanOrEqual(20);
  });

  it("closes an authenticated link whose peer went silent (no frames, no pongs) and reports down", async () => {
    const port = await freePort();
    const b = makeNode({ name: "mn-b", port, peerName: "mn-a", peerPort: await freePort(), pingIntervalMs: 50, idleTimeoutMs: 300 });
    running.push(b);
    await b.link.start();
    // A scripted peer that knows the secret, completes the handshake, then hangs (no pong: like a frozen host).
    const frozen = new WebSocket(`ws://${LOOPBACK}:${port}/`, { autoPong: false });
    const session = new DialerHandshake({ self: "mn-a", peer: "mn-b", secret: SECRET, supportedVersions: [2] });
    frozen.on("open", () => frozen.send(JSON.stringify(session.hello())));
    frozen.on("message", (data) => {
      const outcome = session.receiveFrame(String(data));
      if (outcome.kind === "continue") frozen.send(JSON.stringify(outcome.send));
    });
    const closed = new Promise<void>((resolve) => frozen.on("close", () => resolve()));
    await waitFor(() => b.link.connected(), "the scripted peer authenticated");
    const upAt = Date.now();
    await waitFor(() => b.count("down") === 1, "down after the silence", 3_000);
    const silentFor = Date.now() - upAt;
    expect(silentFor).toBeGreaterThanOrEqual(250);
    expect(silentFor).toBeLessThan(2_000);
    expect(b.events.find((e) => e.kind === "down")).toMatchObject({ reason: expect.stringContaining("nothing heard") });
    await closed;
  });

  it("stop() closes every socket and timer and releases the port", async () => {
    const baseline = resourceCounts();
    const { a, b, portA, portB } = await makePair({ a: { handshakeTimeoutMs: 10_000 }, b: { handshakeTimeoutMs: 10_000 } });
    await Promise.all([a.link.start(), b.link.start()]);
    await waitFor(() => a.link.connected() && b.link.connected(), "the link");
    // A stranger halfway through (holding a handshake timer) and a node dialing nowhere (holding a redial timer).
    const stranger = new RawClient(portB);
    await stranger.opened;
    const lonely = makeNode({ name: "mn-c", port: await freePort(), peerName: "mn-d", peerPort: await freePort(), reconnectInitialMs: 5_000, reconnectMaxMs: 10_000 });
    await lonely.link.start();
    await waitFor(() => lonely.logs.some((l) => typeof l["retryInMs"] === "number"), "a scheduled redial");

    await Promise.all([a.link.stop(), b.link.stop(), lonely.link.stop()]);
    await stranger.closed;
    expect(a.link.connected() || b.link.connected()).toBe(false);
    await sleep(50);
    const after = resourceCounts();
    for (const kind of ["TCPServerWrap", "TCPSocketWrap", "Timeout"]) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(baseline[kind] ?? 0);
    }
    expect(await canBind(portA)).toBe(true);
    expect(await canBind(portB)).toBe(true);
    // stop() is idempotent, and events stop with it.
    await a.link.stop();
    expect(a.events.filter((e) => e.kind === "down")).toHaveLength(0);
  });

  it("refuses to start on a port that is taken, naming the port and the fix", async () => {
    const { a } = await makePair();
    running.push(a);
    await a.link.start();
    const port = a.link.listeningPort();
    const clash = makeNode({ name: "mn-a", port: port ?? 0, peerName: "mn-b", peerPort: await freePort() });
    await expect(clash.link.start()).rejects.toMatchObject({ code: "PORT_IN_USE", message: expect.stringContaining(`${port}`), hint: expect.stringContaining("another process") });
    await clash.link.stop();
  });

  it("refuses to start on an address this host does not have as a config error, naming the likely mix-up of the two nodes' configs", async () => {
    // The other node's config copied here: its node.address is not on this host (no packet is sent: bind only).
    const notHere = makeNode({ name: "mn1", port: await freePort(), peerName: "mn2", peerPort: await freePort(), listenAddress: "192.0.2.11" });
    await expect(notHere.link.start()).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringMatching(/^peer link cannot listen on 192\.0\.2\.11:\d+: EADDRNOTAVAIL$/) as unknown,
      hint: expect.stringContaining("192.0.2.11 is not an address of this host: if the network is still coming up, start the agent after it; if this is mn2's host, the config here is mn1's: put this node's name and address under node: and mn1's under peers:") as unknown,
    });
    await notHere.link.stop();
  });
});
