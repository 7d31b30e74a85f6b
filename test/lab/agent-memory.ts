/**
 * An agent's memory as the idle benchmark and the soak read it: private pages from /proc and
 * the main thread's V8 heap from the agent's own metrics endpoint.
 */
import { heapFromMetrics, memorySplit, type HeapFigures } from "./bench-procstat.js";
import { HOSTS, type MnNode } from "./constants.js";
import { runIn } from "./exec.js";

/** The agent's metrics endpoint at its default address, inside the node's namespace. */
const METRICS_URL = "http://127.0.0.1:9746/metrics";

/** The process's private memory (MB: pages no other process maps); null when it is gone. */
export function privateMb(pid: number): number | null {
  const split = memorySplit(pid);
  return split ? split.privateKb / 1024 : null;
}

/**
 * Reads the agent's heap figures from its Prometheus endpoint (loopback inside its namespace).
 * A node child in the namespace does the fetch, so the agent pays only for the scrape itself.
 */
export async function scrapeHeap(node: MnNode): Promise<HeapFigures | null> {
  const script = `fetch(${JSON.stringify(METRICS_URL)}).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))`;
  const result = await runIn(HOSTS[node].namespace, process.execPath, ["-e", script], { allowFailure: true, timeoutMs: 5_000 });
  return result.code === 0 ? heapFromMetrics(result.stdout) : null;
}
