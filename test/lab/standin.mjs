#!/usr/bin/env node
// A stand-in for one management-node service inside a lab namespace: the MN service or the
// UI (HTTP, answering 200 with {node, service} so a client learns who served) or the
// database (TCP, accepting connections). Plain JS so that it starts fast.
//   node standin.mjs --lab LAB --node mn1 --service mn --port 8080 --kind http|tcp
// --lab only names the lab in the command line, where processes are found by it.
import { Buffer } from "node:buffer";
import console from "node:console";
import process from "node:process";
import { setTimeout } from "node:timers";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

let values;
try {
  ({ values } = parseArgs({
    options: {
      lab: { type: "string" },
      node: { type: "string" },
      service: { type: "string" },
      port: { type: "string" },
      kind: { type: "string", default: "http" },
      host: { type: "string", default: "0.0.0.0" },
      // The MN's platform version, read from this file at each request (the stand-in installer writes it).
      "version-file": { type: "string" },
    },
    strict: true,
  }));
} catch (error) {
  console.error(`usage: standin.mjs [--lab LAB] --node NAME --service NAME --port PORT --kind http|tcp\n${error.message}`);
  process.exit(2);
}

const port = Number.parseInt(values.port ?? "", 10);
if (!values.node || !values.service || !Number.isInteger(port) || port < 1 || port > 65535 || !["http", "tcp"].includes(values.kind)) {
  console.error("usage: standin.mjs [--lab LAB] --node NAME --service NAME --port PORT --kind http|tcp");
  process.exit(2);
}

const identity = { node: values.node, service: values.service };
const versionFile = values["version-file"];
/** The body, with the platform version when this stand-in reports one. */
function bodyNow() {
  if (!versionFile) return JSON.stringify(identity);
  let version = "unknown";
  try {
    version = readFileSync(versionFile, "utf8").trim() || "unknown";
  } catch {
    version = "unknown";
  }
  return JSON.stringify({ ...identity, version });
}

/** A loopback address, as a socket reports it (IPv4, IPv6 or IPv4-mapped). */
function isLoopback(address) {
  return address !== undefined && (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."));
}

const server =
  values.kind === "http"
    ? createHttpServer((request, response) => {
        request.resume();
        const body = bodyNow();
        // Connection: close for clients that came through the VIP, so none keeps talking to a
        // node that lost it. Local clients (the agent's health check on 127.0.0.1) may keep
        // their connection, as with a real MN's web server.
        const local = isLoopback(request.socket.localAddress);
        response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...(local ? {} : { connection: "close" }) });
        response.end(body);
      })
    : createTcpServer((socket) => {
        socket.on("error", () => socket.destroy());
        socket.end(`${bodyNow()}\n`);
      });

// A restart right after a kill may find the port not yet released: retry, bounded.
const MAX_LISTEN_ATTEMPTS = 60;
let attempts = 0;
server.on("error", (error) => {
  if (error.code === "EADDRINUSE" && ++attempts < MAX_LISTEN_ATTEMPTS) {
    setTimeout(() => server.listen(port, values.host), 50);
    return;
  }
  console.error(`standin ${values.node}/${values.service}: ${error.message}`);
  process.exit(1);
});
server.on("listening", () => console.log(`${new Date().toISOString()} standin ${values.node}/${values.service} (${values.kind}) listening on ${values.host}:${port} pid ${process.pid}`));
server.listen(port, values.host);

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
