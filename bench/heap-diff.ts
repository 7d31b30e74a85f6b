/**
 * What grew between two heap snapshots of one process: count and self size per kind of object,
 * largest change first, and with --retainers TYPE:NAME what holds the objects of that kind.
 *
 *   node --import tsx bench/heap-diff.ts /tmp/snaps/t04-mn1-main.heapsnapshot /tmp/snaps/t56-mn1-main.heapsnapshot
 *   node --import tsx bench/heap-diff.ts A B --retainers "hidden:system / WeakArrayList" --depth 4
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runHeapDiff } from "../test/lab/bench-heap.js";

runBenchmarkMain("heap-diff", runHeapDiff);
