#!/usr/bin/env node
// A database client of the VIP, run inside the client namespace: inserts numbered rows into
// appdb.acks through VIP:3306, one at a time (autocommit), and prints one JSON line per
// attempt: {"id":N,"ok":true,"at":ms,"sent":ms} only once the server answered the COMMIT (sent: when
// the INSERT left), else
// {"id":N,"ok":false,"error":"..."} (the row's fate unknown: never counted as acknowledged).
// The user's password comes in MNHA_TEST_DB_PASSWORD (never on the command line).
// Stops on SIGTERM/SIGINT, when stdin closes, or after --max-ms.
import console from "node:console";
import { createRequire } from "node:module";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const require = createRequire(new URL("../../packages/agent/package.json", import.meta.url));
const mariadb = require("mariadb");

const { values } = parseArgs({
  options: {
    host: { type: "string" },
    user: { type: "string" },
    "first-id": { type: "string", default: "1" },
    "max-ms": { type: "string", default: "120000" },
    "pause-ms": { type: "string", default: "5" },
  },
});
const started = performance.now();
const maxMs = Number(values["max-ms"]);
let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => (stopping = true));
// The connector sets a session timeout after connecting in a promise nobody awaits: a server that
// resets the connection at that moment (restarting, crashing) rejects it unhandled, which would
// end this writer. Say so on stderr and keep writing.
process.on("unhandledRejection", (reason) => console.error(`unhandled rejection (kept writing): ${String(reason?.message ?? reason).slice(0, 200)}`));
process.stdin.on("end", () => (stopping = true)).resume();

const now = () => Math.round(performance.timeOrigin + performance.now());

/** Every step is bounded here: the connector's own timeouts do not cover a handshake whose server vanished. */
async function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

let connection = null;
let id = Number(values["first-id"]);
while (!stopping && performance.now() - started < maxMs) {
  try {
    if (connection === null) {
      const pending = mariadb.createConnection({ host: values.host, port: 3306, user: values.user, password: process.env.MNHA_TEST_DB_PASSWORD, database: "appdb", connectTimeout: 500, queryTimeout: 3000 });
      // A connection that arrives after its deadline is closed, never used.
      pending.catch(() => undefined);
      connection = await withDeadline(pending, 1500, "connect").catch((error) => {
        pending.then((late) => late.destroy(), () => undefined);
        throw error;
      });
      // A server that dies between statements makes the connection emit "error": the next statement fails instead.
      connection.on("error", () => undefined);
    }
    const sent = now();
    await withDeadline(connection.query("INSERT INTO acks (id, server_id) VALUES (?, @@server_id)", [id]), 3000, "INSERT");
    console.log(JSON.stringify({ id, ok: true, at: now(), sent }));
  } catch (error) {
    console.log(JSON.stringify({ id, ok: false, at: now(), error: String(error?.message ?? error).slice(0, 200) }));
    try {
      connection?.destroy();
    } catch {
      // already gone
    }
    connection = null;
    await sleep(20);
  }
  id += 1;
  await sleep(Number(values["pause-ms"]));
}
if (connection !== null) await connection.end().catch(() => undefined);
