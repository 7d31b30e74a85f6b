#!/usr/bin/env node
// Reads an agent's V8 heaps through its inspector, run inside the agent's namespace. The caller
// has already sent the agent SIGUSR1, which makes Node open its inspector on 127.0.0.1:9229
// there (the agent has no SIGUSR1 handler of its own; the inspector stays open until the agent
// exits, so this is for lab agents only). One JSON line per isolate, the main one and the store's
// worker (through the NodeWorker domain):
//   {isolate, physicalMb, totalMb, usedMb, mallocedMb, externalMb, spacesMb: {new, old, code, ...}}
// --gc forces a full collection in the isolate first (HeapProfiler.collectGarbage), so usedMb is
// the live heap; --snapshot PREFIX also writes PREFIX-main.heapsnapshot and
// PREFIX-worker.heapsnapshot (each stops that isolate for about a second).
//
// usage: heap-probe.mjs [--port 9229] [--gc] [--snapshot PREFIX] [--timeout-ms 120000]
import console from "node:console";
import process from "node:process";
import { setTimeout } from "node:timers";
import { createWriteStream, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

// ws is a dependency of the agent package; resolve it from there (the lab has no copy of its own).
const require = createRequire(new URL("../../packages/agent/package.json", import.meta.url));
const WebSocket = require("ws");

const { values } = parseArgs({
  options: { port: { type: "string", default: "9229" }, gc: { type: "boolean", default: false }, snapshot: { type: "string" }, "timeout-ms": { type: "string", default: "120000" } },
});
const port = Number(values.port);
const timeoutMs = Number(values["timeout-ms"]);
if (!Number.isInteger(port) || port < 1 || port > 65535 || !Number.isInteger(timeoutMs) || timeoutMs < 1_000) {
  console.error("heap-probe: --port must be 1-65535 and --timeout-ms at least 1000");
  process.exit(2);
}
// A hard stop: the probe never outlives its budget, whatever the agent does.
setTimeout(() => {
  console.error(`heap-probe: no answer within ${timeoutMs} ms`);
  process.exit(1);
}, timeoutMs).unref();

// Evaluated in each isolate: its own heap statistics (process.getBuiltinModule works in both).
const STATS_EXPRESSION = `JSON.stringify((() => {
  const v8 = process.getBuiltinModule("node:v8");
  const mb = (bytes) => Math.round(bytes / 1048576 * 100) / 100;
  const heap = v8.getHeapStatistics();
  const spacesMb = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace(/_space$/, ""), mb(s.physical_space_size)]));
  return { physicalMb: mb(heap.total_physical_size), totalMb: mb(heap.total_heap_size), usedMb: mb(heap.used_heap_size), mallocedMb: mb(heap.malloced_memory), externalMb: mb(process.memoryUsage().external), spacesMb };
})())`;

// The inspector opens a moment after SIGUSR1: ask for up to 5 s (25 tries, 200 ms apart).
async function inspectorTargets() {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    } catch (error) {
      if (attempt >= 25) throw new Error(`no inspector on 127.0.0.1:${port} (was the agent sent SIGUSR1?): ${error.cause?.code ?? error.message}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
const targets = await inspectorTargets();
if (!Array.isArray(targets) || targets.length === 0) throw new Error(`no inspector target on 127.0.0.1:${port}`);
const socket = new WebSocket(targets[0].webSocketDebuggerUrl, { perMessageDeflate: false, followRedirects: false });
await new Promise((resolve, reject) => {
  socket.once("open", resolve);
  socket.once("error", reject);
});

let nextId = 0;
const replies = new Map();
let snapshotSink = null;
let workerSession = null;
let workerAttached;
const attached = new Promise((resolve) => (workerAttached = resolve));

// Messages from the worker arrive wrapped in NodeWorker.receivedMessageFromWorker.
function dispatch(message) {
  if (message.id !== undefined && replies.has(message.id)) {
    replies.get(message.id)(message);
    replies.delete(message.id);
  } else if (message.method === "HeapProfiler.addHeapSnapshotChunk") {
    snapshotSink?.write(message.params.chunk);
  } else if (message.method === "NodeWorker.attachedToWorker") {
    workerSession = message.params.sessionId;
    workerAttached();
  } else if (message.method === "NodeWorker.receivedMessageFromWorker") {
    dispatch(JSON.parse(message.params.message));
  }
}
socket.on("message", (data) => dispatch(JSON.parse(data.toString())));

function call(method, params = {}, session = null) {
  const id = ++nextId;
  const reply = new Promise((resolve) => replies.set(id, resolve));
  const message = JSON.stringify({ id, method, params });
  if (session === null) socket.send(message);
  else socket.send(JSON.stringify({ id: ++nextId, method: "NodeWorker.sendMessageToWorker", params: { sessionId: session, message } }));
  return reply.then((answer) => {
    if (answer.error) throw new Error(`${method}: ${answer.error.message}`);
    return answer.result;
  });
}

async function probe(isolate, session) {
  if (values.gc || values.snapshot) await call("HeapProfiler.collectGarbage", {}, session);
  const evaluated = await call("Runtime.evaluate", { expression: STATS_EXPRESSION, returnByValue: true }, session);
  console.log(JSON.stringify({ isolate, ...JSON.parse(evaluated.result.value) }));
  if (values.snapshot) {
    // Written under a .partial name and renamed when whole: an interrupted probe never leaves a
    // truncated file under the name heap-diff reads.
    const file = `${values.snapshot}-${isolate === "main" ? "main" : "worker"}.heapsnapshot`;
    snapshotSink = createWriteStream(`${file}.partial`);
    await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, session);
    await new Promise((resolve) => snapshotSink.end(resolve));
    snapshotSink = null;
    renameSync(`${file}.partial`, file);
  }
}

await call("NodeWorker.enable", { waitForDebuggerOnStart: false });
// The store's worker attaches at once when it runs; an agent without a store has none.
await Promise.race([attached, new Promise((resolve) => setTimeout(resolve, 2_000))]);
await call("HeapProfiler.enable");
await probe("main", null);
if (workerSession !== null) {
  await call("HeapProfiler.enable", {}, workerSession);
  await probe("store-worker", workerSession);
}
await call("NodeWorker.disable");
socket.close();
process.exit(0);
