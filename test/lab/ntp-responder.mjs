#!/usr/bin/env node
/**
 * A tiny NTP (SNTP) server for the lab: answers client requests on ADDRESS:123 with this
 * machine's clock plus OFFSET_MS, so a test can present a time server the MNs agree with
 * (offset 0) or one they are far from. Runs inside a lab namespace only; never a real server.
 *
 *   node ntp-responder.mjs ADDRESS [OFFSET_MS]
 */
import { createSocket } from "node:dgram";

const [address, offsetArg] = process.argv.slice(2);
const offsetMs = Number(offsetArg ?? "0");
if (!address || !Number.isFinite(offsetMs)) {
  process.stderr.write("usage: ntp-responder.mjs ADDRESS [OFFSET_MS]\n");
  process.exit(2);
}
const NTP_UNIX_OFFSET_S = 2_208_988_800;

function writeTimestamp(buffer, at, unixMs) {
  const seconds = Math.floor(unixMs / 1000);
  buffer.writeUInt32BE((seconds + NTP_UNIX_OFFSET_S) >>> 0, at);
  buffer.writeUInt32BE(Math.floor(((unixMs - seconds * 1000) / 1000) * 2 ** 32) >>> 0, at + 4);
}

const socket = createSocket("udp4");
socket.on("message", (request, peer) => {
  if (request.length < 48 || (request[0] & 0x07) !== 3) return; // client requests only
  const received = Date.now() + offsetMs;
  const reply = Buffer.alloc(48);
  reply[0] = (0 << 6) | (4 << 3) | 4; // no leap warning, version 4, server
  reply[1] = 2; // stratum 2
  reply[2] = request[2] ?? 6;
  reply[3] = 0xec; // precision about 2^-20 s
  reply.write("LAB", 12, "latin1"); // reference id
  writeTimestamp(reply, 16, received);
  request.copy(reply, 24, 40, 48); // originate = the client's transmit time
  writeTimestamp(reply, 32, received);
  writeTimestamp(reply, 40, Date.now() + offsetMs);
  socket.send(reply, peer.port, peer.address);
});
socket.bind(123, address, () => process.stdout.write(`ntp responder on ${address}:123, offset ${offsetMs} ms\n`));
