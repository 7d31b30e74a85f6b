#!/usr/bin/env node
// A stranger on the segment attacking an agent's peer-link port, run inside the client
// namespace. Each attack is one WebSocket connection with a hard time limit; the attacks run
// one after another (never more than one connection open) and each prints one JSON line:
//   {attack, opened, received: [frames as text], close: {code, reason} | null, error, tookMs}
//
//   wrong-secret    hello as the agent's real peer, then an auth with a made-up proof
//   unknown-peer    hello under a name the agent does not know
//   future-version  hello offering only protocol version 99
//   oversized       one text frame above the 256 KiB limit
//   garbage         a text frame that is not JSON
//   binary          a binary frame
//   heartbeat       a valid-looking heartbeat without any handshake
//   half-http       a raw TCP connection that sends half an HTTP request and then nothing
//                   (records only how long the agent keeps it open)
//
// Run from an address other than the agent's configured peer, every attack is reset at the
// TCP level before anything is parsed (opened: false, nothing received). Run from the peer's
// own address (the lab runs it in the peer's namespace), the attacks reach the handshake.
//
// usage: hostile-peer.mjs --host ADDR --port 7946 --claim PEERNAME [--timeout-ms 5000] ATTACK...
import console from "node:console";
import process from "node:process";
import { clearTimeout, setTimeout } from "node:timers";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { parseArgs } from "node:util";

// ws is a dependency of the agent package; resolve it from there (the lab has no copy of its own).
const require = createRequire(new URL("../../packages/agent/package.json", import.meta.url));
const { WebSocket } = require("ws");

const ATTACKS = ["wrong-secret", "unknown-peer", "future-version", "oversized", "garbage", "binary", "heartbeat", "half-http"];
const PROTOCOL_VERSION = 2;
const MAX_FRAME_BYTES = 256 * 1024;

let parsed;
try {
  parsed = parseArgs({
    options: { host: { type: "string" }, port: { type: "string", default: "7946" }, claim: { type: "string" }, "timeout-ms": { type: "string", default: "5000" } },
    allowPositionals: true,
    strict: true,
  });
} catch (error) {
  console.error(`hostile-peer.mjs: ${error.message}`);
  process.exit(2);
}
const { values, positionals } = parsed;
const port = Number.parseInt(values.port, 10);
const timeoutMs = Number.parseInt(values["timeout-ms"], 10);
const unknown = positionals.filter((a) => !ATTACKS.includes(a));
if (!values.host || !values.claim || !Number.isInteger(port) || !Number.isInteger(timeoutMs) || timeoutMs <= 0 || positionals.length === 0 || unknown.length > 0) {
  console.error(`usage: hostile-peer.mjs --host ADDR --port 7946 --claim PEERNAME [--timeout-ms 5000] ATTACK...\nattacks: ${ATTACKS.join(", ")}${unknown.length > 0 ? `\nunknown: ${unknown.join(", ")}` : ""}`);
  process.exit(2);
}

const nonce = () => randomBytes(32).toString("base64");
const heartbeat = (node) => ({
  type: "heartbeat",
  seq: 1,
  node,
  epoch: 1_000_000,
  holder: node,
  role: "holder",
  eligible: true,
  reasons: [],
  gatewayReachable: true,
  leaseRemainingMs: 600,
  vipPresent: true,
  keepalived: "master",
  services: [],
});

/** What each attack sends: on open, and in answer to each frame the agent sends. */
const scripts = {
  "wrong-secret": {
    onOpen: (ws) => ws.send(JSON.stringify({ type: "hello", node: values.claim, versions: [PROTOCOL_VERSION], nonce: nonce() })),
    onFrame: (ws, frame) => {
      if (frame.type === "challenge") ws.send(JSON.stringify({ type: "auth", proof: randomBytes(32).toString("hex") }));
    },
  },
  "unknown-peer": { onOpen: (ws) => ws.send(JSON.stringify({ type: "hello", node: "intruder", versions: [PROTOCOL_VERSION], nonce: nonce() })) },
  "future-version": { onOpen: (ws) => ws.send(JSON.stringify({ type: "hello", node: values.claim, versions: [99], nonce: nonce() })) },
  oversized: { onOpen: (ws) => ws.send(JSON.stringify({ type: "hello", node: values.claim, versions: [PROTOCOL_VERSION], nonce: nonce(), pad: "x".repeat(MAX_FRAME_BYTES + 1024) })) },
  garbage: { onOpen: (ws) => ws.send("}} this is not JSON {{") },
  binary: { onOpen: (ws) => ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff])) },
  heartbeat: { onOpen: (ws) => ws.send(JSON.stringify(heartbeat(values.claim))) },
};

/** Half an HTTP request, then silence: how long does the agent hold the descriptor? */
function halfHttp() {
  const started = performance.now();
  return new Promise((resolve) => {
    const record = { attack: "half-http", opened: false, received: [], close: null, error: null, tookMs: 0 };
    const socket = connect({ host: values.host, port });
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      record.tookMs = Math.round(performance.now() - started);
      socket.destroy();
      resolve(record);
    };
    const timer = setTimeout(() => {
      record.error = record.error ?? `still open after ${timeoutMs} ms`;
      finish();
    }, timeoutMs);
    socket.on("connect", () => {
      record.opened = true;
      socket.write("GET / HTTP/1.1\r\nHost: mn\r\nUpgrade: websocket\r\nConnection: Up");
    });
    socket.on("data", (chunk) => record.received.push(chunk.toString("utf8")));
    socket.on("error", (error) => (record.error = record.error ?? error.code ?? error.message));
    socket.on("close", () => {
      record.close = { code: 0, reason: "tcp closed" };
      finish();
    });
  });
}

function attack(name) {
  if (name === "half-http") return halfHttp();
  const started = performance.now();
  return new Promise((resolve) => {
    const record = { attack: name, opened: false, received: [], close: null, error: null, tookMs: 0 };
    // The client's own limit is above the agent's, so the agent's refusal is what we see.
    const ws = new WebSocket(`ws://${values.host}:${port}/`, { perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 4 * MAX_FRAME_BYTES });
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      record.tookMs = Math.round(performance.now() - started);
      ws.terminate();
      resolve(record);
    };
    const timer = setTimeout(() => {
      record.error = record.error ?? `no close within ${timeoutMs} ms`;
      finish();
    }, timeoutMs);
    ws.on("open", () => {
      record.opened = true;
      try {
        scripts[name].onOpen(ws);
      } catch (error) {
        record.error = `send failed: ${error.message}`;
      }
    });
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? `<binary ${data.length} bytes>` : data.toString("utf8");
      record.received.push(text);
      let frame = null;
      try {
        frame = JSON.parse(text);
      } catch {
        return;
      }
      try {
        scripts[name].onFrame?.(ws, frame);
      } catch (error) {
        record.error = `send failed: ${error.message}`;
      }
    });
    ws.on("error", (error) => {
      record.error = record.error ?? error.message;
    });
    ws.on("close", (code, reason) => {
      record.close = { code, reason: reason.toString("utf8") };
      finish();
    });
  });
}

for (const name of positionals) {
  process.stdout.write(`${JSON.stringify(await attack(name))}\n`);
}
