/**
 * Soak: the lab under CPU saturation (stress-ng) with seeded random faults, for mnha or
 * plain Keepalived. Needs root, the lab's packages (docs/lab.md) and `apt-get install -y
 * stress-ng`; see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/soak.ts --minutes 30 [--system mnha|keepalived-fast] [--seed 1]
 */
import { runSoak } from "../test/lab/soak.js";

runSoak(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`soak: ${(error as Error).message}`);
    const hint = (error as { hint?: string }).hint;
    if (hint) console.error(`hint: ${hint}`);
    process.exit(2);
  },
);
