import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { readNtpTimestamp, sntpOffset, sntpRequest, sntpSample, writeNtpTimestamp } from "../../src/provision/sntp.js";
import { timeServerCheck } from "../../src/provision/preflight.js";

/** An SNTP server on loopback whose clock is `offsetMs` ahead; `mangle` can spoil its replies. */
async function server(offsetMs: number, mangle: (reply: Buffer) => void = () => undefined): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket("udp4");
  socket.on("message", (request, peer) => {
    const reply = Buffer.alloc(48);
    reply[0] = (4 << 3) | 4;
    reply[1] = 2;
    const now = Date.now() + offsetMs;
    request.copy(reply, 24, 40, 48);
    writeNtpTimestamp(reply, 32, now);
    writeNtpTimestamp(reply, 40, now);
    mangle(reply);
    socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, socket };
}

const open: Socket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

describe("SNTP", () => {
  it("timestamps round-trip through the NTP format to well under a millisecond", () => {
    const buffer = Buffer.alloc(8);
    for (const ms of [0, 1_700_000_000_123.5, Date.now()]) {
      writeNtpTimestamp(buffer, 0, ms);
      expect(Math.abs(readNtpTimestamp(buffer, 0) - ms)).toBeLessThan(0.001);
    }
  });

  it("computes the offset and delay from the four timestamps", () => {
    const request = sntpRequest(1_000_000);
    const reply = Buffer.alloc(48);
    reply[0] = (4 << 3) | 4;
    reply[1] = 1;
    request.copy(reply, 24, 40, 48);
    // The server is 5 s ahead; 10 ms each way, 2 ms inside the server.
    writeNtpTimestamp(reply, 32, 1_000_000 + 10 + 5_000);
    writeNtpTimestamp(reply, 40, 1_000_000 + 12 + 5_000);
    const sample = sntpSample(reply, request, 1_000_000, 1_000_022);
    expect(sample?.offsetMs).toBeCloseTo(5_000, 3);
    expect(sample?.delayMs).toBeCloseTo(20, 3);
    expect(sample?.stratum).toBe(1);
  });

  it("ignores a reply that does not echo this request, or has no time (stratum 0)", () => {
    const request = sntpRequest(2_000_000);
    const reply = Buffer.alloc(48);
    reply[0] = (4 << 3) | 4;
    reply[1] = 2;
    expect(sntpSample(reply, request, 2_000_000, 2_000_001)).toBeNull(); // originate not echoed
    request.copy(reply, 24, 40, 48);
    reply[1] = 0;
    expect(sntpSample(reply, request, 2_000_000, 2_000_001)).toBeNull();
    reply[1] = 2;
    reply[0] = (4 << 3) | 3; // a client's packet, not a server's
    expect(sntpSample(reply, request, 2_000_000, 2_000_001)).toBeNull();
  });

  it("measures a real server on loopback: 2 s ahead", async () => {
    const s = await server(2_000);
    open.push(s.socket);
    const sample = await sntpOffset("127.0.0.1", { port: s.port, timeoutMs: 1_000 });
    expect("error" in sample).toBe(false);
    if (!("error" in sample)) expect(Math.abs(sample.offsetMs - 2_000)).toBeLessThan(200);
  });

  it("a server that never answers validly is an error, not a time", async () => {
    const s = await server(0, (reply) => reply.fill(0, 24, 32));
    open.push(s.socket);
    expect(await sntpOffset("127.0.0.1", { port: s.port, timeoutMs: 200, attempts: 2 })).toEqual({ error: "no answer within 200 ms" });
    expect(await sntpOffset("ntp.example")).toEqual({ error: "ntp.example is not an IPv4 address" });
  });
});

describe("the time-server preflight check", () => {
  it("passes within the bound, fails beyond it naming the server and the fix, warns when the server does not answer", async () => {
    const ok = await timeServerCheck("10.0.0.1", 500, async () => ({ offsetMs: -120.4, delayMs: 3, stratum: 2 }));
    expect(ok).toMatchObject({ id: "time-server", status: "pass", title: "clock within 500 ms of 10.0.0.1", value: "-120 ms (±2, stratum 2)" });
    const off = await timeServerCheck("10.0.0.1", 500, async () => ({ offsetMs: 2_345, delayMs: 3, stratum: 2 }));
    expect(off.status).toBe("fail");
    expect(off.value).toMatch(/^\+2345 ms/);
    expect(off.fix).toContain("synchronise this clock with 10.0.0.1");
    const silent = await timeServerCheck("10.0.0.1", 500, async () => ({ error: "no answer within 1500 ms" }));
    expect(silent).toMatchObject({ status: "warn", value: "no NTP answer (no answer within 1500 ms)" });
    expect(silent.fix).toContain("10.0.0.1 is a time server");
  });
});
