/**
 * Failover benchmark: mnha vs plain Keepalived (common and tuned for speed), same lab,
 * alternating trials. Needs root and the lab's packages (docs/lab.md); see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/failover.ts --trials 20
 */
import { runFailoverBenchmark } from "../test/lab/bench-failover.js";

runFailoverBenchmark(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`failover: ${(error as Error).message}`);
    const hint = (error as { hint?: string }).hint;
    if (hint) console.error(`hint: ${hint}`);
    process.exit(2);
  },
);
