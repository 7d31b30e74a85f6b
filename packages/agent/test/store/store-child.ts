/**
 * A store in a process of its own.
 *   node --import tsx store-child.ts DATA_DIR            appends as fast as it can and prints every
 *                                                        durable ack ("acked SEQ") until it is killed
 *   node --import tsx store-child.ts DATA_DIR stop N     appends N events, stops the store and prints
 *                                                        "stopped"; the process must then end by itself
 * (TSX_TSCONFIG_PATH=tsconfig.child.json resolves the workspace packages to their sources.)
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseConfig, silentLogger } from "@mnha/shared";
import { SqliteStore } from "../../src/store/sqlite-store.js";

const [dataDir, mode, countText] = process.argv.slice(2);
if (!dataDir) throw new Error("usage: store-child.ts DATA_DIR [stop N]");
const config = parseConfig({
  node: { name: "mn1", address: "10.0.0.11" },
  peers: [{ name: "mn2", address: "10.0.0.12" }],
  vip: { address: "10.0.0.10", interface: "eth0" },
  gateway: { address: "10.0.0.1" },
  auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
  services: [],
  dataDir,
  store: { queueLimit: 10_000_000 },
});
const stopAfter = mode === "stop" ? Number(countText) : null;
// With the cron schedules on when stopping: stop() must tear them down too.
const store = new SqliteStore({ config, node: "mn1", logger: silentLogger(), scheduleJobs: stopAfter !== null, flushIntervalMs: 2 });
await store.start();
store.onStored((seq) => process.stdout.write(`acked ${seq}\n`));
process.stdout.write(`origin ${store.origin}\n`);

if (stopAfter !== null) {
  for (let n = 1; n <= stopAfter; n++) store.appendEvent({ type: "check.changed", message: `event ${n}`, wallMs: Date.now(), monoMs: n });
  store.appendSamples([{ series: "cpu", value: 1, wallMs: Date.now() }]);
  await store.stop();
  process.stdout.write("stopped\n");
} else {
  const deadline = Date.now() + 30_000;
  let n = 0;
  while (Date.now() < deadline) {
    for (let i = 0; i < 500; i++) {
      n += 1;
      store.appendEvent({ type: "check.changed", service: "mn", message: `event ${n}`, fields: { n }, wallMs: Date.now(), monoMs: performance.now() });
    }
    store.appendSamples([{ series: "cpu", value: n, wallMs: Date.now() }]);
    // Let acks in; keep the queue from running far ahead of the disk.
    while (store.health().pending > 20_000) await new Promise((r) => setTimeout(r, 1));
    await nextTurn();
  }
  await store.stop();
}
