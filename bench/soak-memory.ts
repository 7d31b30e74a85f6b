/**
 * A committed soak's memory read again: the growth verdict, the 5-minute parts and the trend
 * after warm-up, from its `-memory.csv` (no lab, no root). See docs/benchmarks.md.
 *
 *   node --import tsx bench/soak-memory.ts bench/results/soak-mnha-2026-12-04-seed16-memory.csv
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runSoakMemory } from "../test/lab/soak.js";

runBenchmarkMain("soak-memory", runSoakMemory);
