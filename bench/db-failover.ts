/**
 * Database benchmark (issue 8): mnha vs a vendor-like set-up (plain Keepalived, unmanaged
 * master–master replication, both writable), real MariaDB in the lab; write unavailability
 * and acknowledged rows lost per fault, seeding speed, catch-up time. Needs root and the
 * lab's packages (docs/lab.md); see docs/benchmarks.md.
 *
 *   pnpm build
 *   MNHA_LAB=bench node --import tsx bench/db-failover.ts --trials 10 --seed-mb 1024
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runDbBenchmark } from "../test/lab/bench-db.js";

runBenchmarkMain("db-failover", runDbBenchmark);
