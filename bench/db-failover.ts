/**
 * Database benchmark (issue 8): mnha vs a vendor-like set-up (plain Keepalived, unmanaged
 * master–master replication, both writable), real MariaDB in the lab; write unavailability
 * and acknowledged rows lost per fault, seeding speed, catch-up time. Needs root and the
 * lab's packages (docs/lab.md); see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/db-failover.ts --trials 10 --seed-mb 1024
 */
import { runDbBenchmark } from "../test/lab/bench-db.js";

runDbBenchmark(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`db-failover: ${(error as Error).message}`);
    const hint = (error as { hint?: string }).hint;
    if (hint) console.error(`hint: ${hint}`);
    process.exit(2);
  },
);
