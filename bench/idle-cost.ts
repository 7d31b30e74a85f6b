/**
 * What an idle agent costs at the documented defaults (issue 12: ≤ 1.5 % of one core and
 * ≤ 70 MB RSS per agent over 5 minutes). Brings up the lab with the checks at their default
 * timing (every 200 ms, timeout 1 s; heartbeats every 100 ms, gateway ping every 500 ms,
 * audit store and metrics on), waits, then measures each node's agent, lease guard and
 * keepalived from /proc: CPU as process CPU time (utime + stime, with reaped children) over
 * wall time — which a busy machine barely changes — and VmRSS sampled every 10 s.
 *
 *   pnpm build
 *   MNHA_LAB=hperf node --import tsx bench/idle-cost.ts --seconds 300 --label after
 *   MNHA_LAB=hperf node --import tsx bench/idle-cost.ts --seconds 60 --profile /tmp/prof
 *
 * --profile DIR runs the agents with --cpu-prof and --heapsnapshot-signal (profiles and a
 * heap snapshot of each agent land in DIR; profiling costs CPU, so such a run's numbers are
 * not the benchmark's). Results: bench/results/idle-cost-<date>-<label>.md|csv.
 */
import { runBenchmarkMain } from "../test/lab/bench-report.js";
import { runIdleCost } from "../test/lab/bench-idle.js";

runBenchmarkMain("idle-cost", runIdleCost);
