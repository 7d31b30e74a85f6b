/**
 * Soak: the lab under CPU saturation (stress-ng) with seeded random faults, for mnha or
 * plain Keepalived. Needs root, the lab's packages (docs/lab.md) and `apt-get install -y
 * stress-ng`; see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/soak.ts --minutes 30 [--system mnha|keepalived-fast] [--seed 1]
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runSoak } from "../test/lab/soak.js";

runBenchmarkMain("soak", runSoak);
