/**
 * A minimal SNTP client (RFC 4330): how far this node's clock is from a time server.
 * install-ha's preflight runs it on both MNs against `-time-server`. No npm NTP client
 * here is maintained (@hapi/sntp is archived), and chrony/ntpdate are not always
 * installed; one UDP request and the four timestamps are all that is needed.
 */
import { createSocket } from "node:dgram";
import { isIPv4 } from "node:net";

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;
export const NTP_PORT = 123;

export interface SntpSample {
  /** Server clock minus this node's clock (positive: this node is behind). */
  offsetMs: number;
  /** Round trip minus the server's own processing time. */
  delayMs: number;
  stratum: number;
}

export interface SntpOptions {
  port?: number;
  timeoutMs?: number;
  /** Requests sent; the sample with the smallest delay is kept. */
  attempts?: number;
  /** This node's clock, for tests. */
  now?: () => number;
}

/** Reads a 64-bit NTP timestamp as Unix milliseconds. */
export function readNtpTimestamp(buffer: Buffer, at: number): number {
  const seconds = buffer.readUInt32BE(at);
  const fraction = buffer.readUInt32BE(at + 4);
  return (seconds - NTP_UNIX_OFFSET_S) * 1000 + (fraction / 2 ** 32) * 1000;
}

export function writeNtpTimestamp(buffer: Buffer, at: number, unixMs: number): void {
  const seconds = Math.floor(unixMs / 1000);
  buffer.writeUInt32BE((seconds + NTP_UNIX_OFFSET_S) >>> 0, at);
  buffer.writeUInt32BE(Math.floor(((unixMs - seconds * 1000) / 1000) * 2 ** 32) >>> 0, at + 4);
}

/** A client request: version 4, mode 3, our transmit time (echoed back as the originate time). */
export function sntpRequest(nowMs: number): Buffer {
  const packet = Buffer.alloc(48);
  packet[0] = (0 << 6) | (4 << 3) | 3;
  writeNtpTimestamp(packet, 40, nowMs);
  return packet;
}

/**
 * The offset from one reply: t1 our send, t2 the server's receive, t3 its send, t4 our
 * receive. Null when the reply is not an answer to this request (wrong mode, no time, or
 * not echoing our transmit time), so a stray packet never passes for the server's time.
 */
export function sntpSample(reply: Buffer, request: Buffer, t1: number, t4: number): SntpSample | null {
  if (reply.length < 48) return null;
  const mode = (reply[0] as number) & 0x07;
  const stratum = reply[1] as number;
  if ((mode !== 4 && mode !== 5) || stratum === 0 || stratum > 15) return null;
  if (!reply.subarray(24, 32).equals(request.subarray(40, 48))) return null;
  const t2 = readNtpTimestamp(reply, 32);
  const t3 = readNtpTimestamp(reply, 40);
  return { offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: t4 - t1 - (t3 - t2), stratum };
}

function queryOnce(server: string, port: number, timeoutMs: number, now: () => number): Promise<SntpSample | string> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    let t1 = 0;
    let request: Buffer = Buffer.alloc(0);
    const done = (result: SntpSample | string) => {
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on("error", (error) => done(error.message));
    socket.on("message", (reply) => {
      const sample = sntpSample(reply, request, t1, now());
      if (sample !== null) done(sample);
    });
    t1 = now();
    request = sntpRequest(t1);
    socket.send(request, port, server, (error) => {
      if (error) done(error.message);
    });
  });
}

/** Queries the server a few times; the best sample, or why there is none. */
export async function sntpOffset(server: string, options: SntpOptions = {}): Promise<SntpSample | { error: string }> {
  if (!isIPv4(server)) return { error: `${server} is not an IPv4 address` };
  const now = options.now ?? Date.now;
  let best: SntpSample | null = null;
  let lastError = "no answer";
  for (let attempt = 0; attempt < (options.attempts ?? 3); attempt++) {
    const result = await queryOnce(server, options.port ?? NTP_PORT, options.timeoutMs ?? 1_500, now);
    if (typeof result === "string") lastError = result;
    else if (best === null || result.delayMs < best.delayMs) best = result;
  }
  return best ?? { error: lastError };
}
