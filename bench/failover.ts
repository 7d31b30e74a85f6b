/**
 * Failover benchmark: mnha vs plain Keepalived (common and tuned for speed), same lab,
 * alternating trials. Needs root and the lab's packages (docs/lab.md); see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/failover.ts --trials 20
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runFailoverBenchmark } from "../test/lab/bench-failover.js";

runBenchmarkMain("failover", runFailoverBenchmark);
