/**
 * The V8 heaps of a running lab's agents, read through each agent's inspector (opened with
 * SIGUSR1 inside its namespace): heap used and physical per isolate (main and the store's
 * worker), and the process's private memory around the probe.
 *
 *   MNHA_LAB=soak18 node --import tsx bench/heap-probe.ts --gc
 *   MNHA_LAB=soak18 node --import tsx bench/heap-probe.ts --snapshot /tmp/snaps --tag t04
 *
 * --gc forces a full collection first, so "heap used" is the live heap; --snapshot DIR also
 * writes DIR/TAG-NODE-main.heapsnapshot and -worker.heapsnapshot for bench/heap-diff.ts (each
 * snapshot stops the isolate for about a second: a snapshotted holder loses the VIP). The
 * inspector stays open until the agent exits, and a forced GC or a snapshot changes the memory
 * a benchmark measures: probe diagnostic labs, not a benchmark's run.
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runHeapProbe } from "../test/lab/bench-heap.js";

runBenchmarkMain("heap-probe", runHeapProbe);
