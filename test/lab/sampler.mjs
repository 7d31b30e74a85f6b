#!/usr/bin/env node
// The client's view of the VIP, run inside the client namespace. Two samplers, each one JSON
// line per sample on stdout, timestamps in CLOCK_MONOTONIC milliseconds (comparable with
// every other process on the machine):
//  - http: GET http://VIP:PORT/ every --http-interval ms, --http-timeout ms each, a fresh
//    connection each time; records ok and which node served ({node} in the body).
//  - arp:  one ARP request for the VIP per sample (iputils arping), back to back; every
//    distinct MAC that answered within --arp-window ms. `arping -c 2 -w 1` waits for two
//    replies, so a second MAC answering is seen; one reply is cut off at the window by
//    SIGINT (arping then prints what it got and exits).
// Stops on SIGTERM/SIGINT, when stdin closes (the parent went away), or after --max-ms.
import console from "node:console";
import process from "node:process";
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { parseArgs } from "node:util";

let values;
try {
  ({ values } = parseArgs({
    options: {
      vip: { type: "string" },
      port: { type: "string", default: "8080" },
      iface: { type: "string", default: "eth0" },
      arping: { type: "string", default: "arping" },
      "http-interval": { type: "string", default: "50" },
      "http-timeout": { type: "string", default: "300" },
      "arp-window": { type: "string", default: "30" },
      "arp-period": { type: "string", default: "40" },
      "max-ms": { type: "string", default: "600000" },
    },
    strict: true,
  }));
} catch (error) {
  console.error(`usage: sampler.mjs --vip ADDRESS [--port 8080] [--iface eth0]\n${error.message}`);
  process.exit(2);
}
if (!values.vip) {
  console.error("usage: sampler.mjs --vip ADDRESS [--port 8080] [--iface eth0]");
  process.exit(2);
}
const num = (name) => {
  const v = Number.parseInt(values[name], 10);
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`sampler.mjs: --${name} must be a positive integer`);
    process.exit(2);
  }
  return v;
};
const port = num("port");
const httpIntervalMs = num("http-interval");
const httpTimeoutMs = num("http-timeout");
const arpWindowMs = num("arp-window");
const arpPeriodMs = num("arp-period");
const maxMs = num("max-ms");

const mono = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const emit = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);
let stopping = false;

function httpSample() {
  const t = mono();
  const req = request({ host: values.vip, port, path: "/", method: "GET", agent: false, timeout: httpTimeoutMs, headers: { connection: "close" } }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (chunk) => {
      if (body.length < 4096) body += chunk;
    });
    res.on("end", () => {
      let node = null;
      try {
        node = JSON.parse(body).node ?? null;
      } catch {
        node = null;
      }
      const ok = res.statusCode === 200 && node !== null;
      emit({ kind: "http", t, ok, node, status: res.statusCode, latencyMs: mono() - t, ...(ok ? {} : { error: `HTTP ${res.statusCode}` }) });
    });
    res.on("error", (error) => emit({ kind: "http", t, ok: false, node: null, latencyMs: mono() - t, error: error.message }));
  });
  req.on("timeout", () => req.destroy(new Error(`timed out after ${httpTimeoutMs} ms`)));
  req.on("error", (error) => emit({ kind: "http", t, ok: false, node: null, latencyMs: mono() - t, error: error.message }));
  req.end();
}

function arpSample() {
  return new Promise((resolveSample) => {
    const t = mono();
    const child = spawn(values.arping, ["-I", values.iface, "-c", "2", "-w", "1", values.vip], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    const cut = setTimeout(() => child.kill("SIGINT"), arpWindowMs);
    const hardStop = setTimeout(() => child.kill("SIGKILL"), arpWindowMs + 1000);
    const finish = (error) => {
      clearTimeout(cut);
      clearTimeout(hardStop);
      const macs = [...new Set([...out.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]/g)].map((m) => m[1].toLowerCase()))];
      // arping's closing "Sent N probes": cut off by the window before it sent its request (a
      // loaded machine slow to start it), it prints "Sent 0" or nothing at all: no probe went out.
      const sentLine = /Sent (\d+) probe/.exec(out);
      const sent = sentLine ? Number(sentLine[1]) : null;
      emit({ kind: "arp", t, macs, sent, windowMs: arpWindowMs, durationMs: mono() - t, ...(error ? { error } : {}) });
      resolveSample();
    };
    child.on("error", (error) => finish(error.message));
    child.on("close", () => finish(undefined));
  });
}

async function arpLoop() {
  const maxSamples = Math.ceil(maxMs / arpPeriodMs) + 1;
  for (let i = 0; i < maxSamples && !stopping; i++) {
    const started = mono();
    await arpSample();
    const rest = arpPeriodMs - (mono() - started);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  }
}

const httpTimer = setInterval(httpSample, httpIntervalMs);
const stopAt = setTimeout(stop, maxMs);
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(httpTimer);
  clearTimeout(stopAt);
  // Let requests in flight finish (bounded by their timeout), then exit.
  setTimeout(() => process.exit(0), httpTimeoutMs + 50).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
emit({ kind: "start", t: mono(), vip: values.vip, port, httpIntervalMs, httpTimeoutMs, arpWindowMs, arpPeriodMs });
arpLoop().catch((error) => {
  console.error(`sampler.mjs: ${error.message}`);
  process.exit(1);
});
