/**
 * One workload of the idle floor benchmark (bench/idle-floor.ts): the work an idle agent must
 * do at the defaults, each part in its simplest Node.js form, in its own process, on
 * loopback only. Plain JavaScript, run by `node` with the agent's flags; it ends by itself
 * after --seconds.
 *
 *   node bench/floor/workload.mjs <mode> <role> <port> <seconds>
 *
 * Modes (role "server" is the far end, "client" is what is measured; both do the same work
 * where the agent's peers are symmetric):
 *   timers       a 100 ms timer that does nothing (the runtime's cost of waking up)
 *   tcp          a TCP connection, each side writes 300 bytes every 100 ms
 *   peer-link    a WebSocket, each side sends a heartbeat every 100 ms: JSON, sealed with
 *                AES-256-GCM; the receiver opens it, parses it and validates it with zod
 *   http-checks  HTTP/1.1 keep-alive GETs, two targets every 200 ms (10 requests a second),
 *                each answered in full; the server is another process
 *   modules      loads the agent's built module graph (packages/agent/dist/cli/main.js) and
 *                idles: the memory of the code alone
 *   store-worker an idle worker thread that opened a better-sqlite3 database (the store's shape)
 *   code-and-store  both of the last two in one process: the memory an agent has before it
 *                does any work
 */
// Built-in modules are imported by the modes that use them, so "timers" is the bare runtime.
import { createRequire } from "node:module";

const [mode, role, portText, secondsText] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
if (!mode || !role || !Number.isInteger(port) || !(seconds > 0 && seconds <= 3_600)) {
  console.error("usage: workload.mjs <mode> <server|client> <port> <seconds>");
  process.exit(2);
}
const agentRequire = createRequire(new URL("../../packages/agent/package.json", import.meta.url));
const HOST = "127.0.0.1";
const end = setTimeout(() => process.exit(0), seconds * 1000);
const every = (ms, fn) => setInterval(fn, ms);

if (mode === "timers") {
  every(100, () => undefined);
} else if (mode === "tcp") {
  const { default: net } = await import("node:net");
  const payload = Buffer.alloc(300, 0x61);
  const run = (socket) => {
    socket.on("data", () => undefined);
    socket.on("error", () => process.exit(1));
    every(100, () => socket.write(payload));
  };
  if (role === "server") net.createServer(run).listen(port, HOST);
  else {
    const socket = net.connect(port, HOST, () => run(socket));
  }
} else if (mode === "peer-link") {
  const { createCipheriv, createDecipheriv, randomBytes } = await import("node:crypto");
  const { WebSocket, WebSocketServer } = agentRequire("ws");
  const { z } = agentRequire("zod");
  const key = Buffer.alloc(32, 7);
  const Heartbeat = z.object({
    type: z.literal("heartbeat"),
    from: z.string(),
    term: z.number().int(),
    seq: z.number().int(),
    role: z.enum(["holder", "standby"]),
    leaseUntil: z.number(),
    health: z.object({ ok: z.boolean(), services: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string() })) }),
  });
  let seq = 0;
  const seal = (message) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(message)), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  };
  const open = (frame) => {
    const decipher = createDecipheriv("aes-256-gcm", key, frame.subarray(0, 12));
    decipher.setAuthTag(frame.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(frame.subarray(28)), decipher.final()]).toString("utf8"));
  };
  const services = [
    { name: "mn", ok: true, detail: "HTTP 200" },
    { name: "ui", ok: true, detail: "HTTP 200" },
    { name: "db", ok: true, detail: "MariaDB up writable, IO Yes SQL Yes" },
  ];
  const run = (socket) => {
    socket.on("message", (frame) => Heartbeat.parse(open(frame)));
    every(100, () => socket.send(seal({ type: "heartbeat", from: role, term: 7, seq: seq++, role: "holder", leaseUntil: Date.now() + 1_000, health: { ok: true, services } })));
  };
  if (role === "server") new WebSocketServer({ host: HOST, port }).on("connection", run);
  else {
    const socket = new WebSocket(`ws://${HOST}:${port}`);
    socket.on("open", () => run(socket));
    socket.on("error", () => process.exit(1));
  }
} else if (mode === "http-checks") {
  const { default: http } = await import("node:http");
  if (role === "server") http.createServer((_request, response) => response.end("ok\n")).listen(port, HOST);
  else {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const probe = (path) =>
      new Promise((resolve) => {
        const request = http.get({ host: HOST, port, path, agent }, (response) => {
          response.resume();
          response.on("end", resolve);
        });
        request.on("error", resolve);
      });
    every(200, () => void probe("/mn"));
    setTimeout(() => every(200, () => void probe("/ui")), 100);
  }
} else if (mode === "modules") {
  await import(new URL("../../packages/agent/dist/cli/main.js", import.meta.url).href);
  every(60_000, () => undefined);
} else if (mode === "store-worker" || mode === "code-and-store") {
  if (mode === "code-and-store") await import(new URL("../../packages/agent/dist/cli/main.js", import.meta.url).href);
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { Worker } = await import("node:worker_threads");
  const dir = mkdtempSync(join(tmpdir(), "mnha-floor-"));
  const sqlite = agentRequire.resolve("better-sqlite3");
  const source = `const Database = require(${JSON.stringify(sqlite)});
const db = new Database(${JSON.stringify(join(dir, "store.db"))});
db.pragma("journal_mode = WAL");
db.exec("CREATE TABLE IF NOT EXISTS events (at INTEGER, body TEXT)");
setInterval(() => undefined, 60000);`;
  new Worker(source, { eval: true });
  // The database goes with the process, however it ends (its time is up, or the runner's SIGTERM).
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  process.on("SIGTERM", () => process.exit(0));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
