/**
 * Starts the store worker thread. From the built package it is `store-worker.js` beside this
 * file. From the TypeScript sources (vitest, `node --import tsx`), a worker thread does not
 * inherit the parent's TypeScript loader, so a tiny bootstrap loads the worker module through
 * tsx's scoped `tsImport` (tsx is a development dependency; the built agent never needs it).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { STORE_WORKER_ROLE, type WorkerStartData } from "./worker-protocol.js";

export function startStoreWorker(): Worker {
  const workerData: WorkerStartData = { role: STORE_WORKER_ROLE };
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./store-worker.js", here), { workerData });
  const entry = new URL("./store-worker.ts", here).href;
  const tsxApi = tsxEsmApi(here);
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}));`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** tsx's ESM API module, found through tsx's own exports map (require.resolve would pick its CJS build). */
function tsxEsmApi(from: string): string {
  const manifestPath = createRequire(from).resolve("tsx/package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { exports?: Record<string, { import?: { default?: string } | string }> };
  const entry = manifest.exports?.["./esm/api"];
  const file = typeof entry === "object" && typeof entry.import === "object" ? entry.import.default : undefined;
  if (!file) throw new Error(`cannot find tsx's ESM API in ${manifestPath}`);
  return pathToFileURL(join(dirname(manifestPath), file)).href;
}
