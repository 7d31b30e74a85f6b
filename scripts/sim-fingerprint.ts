/**
 * A fingerprint of the simulator's verdicts: for each seed, the verdict (violations with their
 * invariant, step, time and message), the step count, simulated time, VIP changes, blind-claim
 * splits, heal-to-holder time and the last 80 world events of the trace, hashed. Used to show
 * that a speed-up of the simulator changes no run: same seeds, same fingerprint.
 *
 *   node --import tsx scripts/sim-fingerprint.ts --runs 3000 [--seed-start 1] [--strict] [--write FILE | --check FILE]
 *
 * --strict counts the blind claims docs/protocol.md does not name as failures too (as
 * simulate.ts --strict), so that failing verdicts are compared as well as passing ones.
 * --write FILE stores one hash per seed; --check FILE compares with such a file and names the
 * first seeds that differ (exit 1). Without either it prints the combined hash.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { runSeed } from "../packages/agent/src/sim/runner.js";

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? undefined : process.argv[at + 1];
}

const runs = Number(flag("runs") ?? 3000);
const seedStart = Number(flag("seed-start") ?? 1);
const writeTo = flag("write");
const checkAgainst = flag("check");
const strict = process.argv.includes("--strict");
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seedStart) || seedStart < 0) {
  console.error("usage: node --import tsx scripts/sim-fingerprint.ts --runs N [--seed-start S] [--strict] [--write FILE | --check FILE]");
  process.exit(2);
}

const lines: string[] = [];
const all = createHash("sha256");
const started = performance.now();
for (let seed = seedStart; seed < seedStart + runs; seed++) {
  const r = runSeed({ seed, strict });
  const facts = JSON.stringify({
    seed: r.seed,
    profile: r.profile,
    violations: r.violations.map((v) => [v.invariant, v.step, v.at, v.message]),
    steps: r.steps,
    simulatedMs: r.simulatedMs,
    vipChanges: r.vipChanges,
    blind: r.blindSplits,
    holderAfterHealMs: r.holderAfterHealMs,
    trace: r.world.trace(80),
  });
  const hash = createHash("sha256").update(facts).digest("hex").slice(0, 16);
  all.update(hash);
  lines.push(`${seed} ${r.violations.length === 0 ? "pass" : `FAIL:${r.violations[0]?.invariant ?? ""}`} ${hash}`);
}
const seconds = (performance.now() - started) / 1000;
const combined = all.digest("hex").slice(0, 16);
console.log(`${runs} seeds from ${seedStart}${strict ? " (strict)" : ""}: fingerprint ${combined}; ${lines.filter((l) => l.includes("FAIL")).length} failing; ${seconds.toFixed(1)} s (${(runs / seconds).toFixed(1)} schedules/s)`);
if (writeTo) writeFileSync(writeTo, `${lines.join("\n")}\n`);
if (checkAgainst) {
  const expected = readFileSync(checkAgainst, "utf8").trim().split("\n");
  const differ = lines.filter((line, i) => line !== expected[i]);
  if (expected.length !== lines.length || differ.length > 0) {
    console.log(`DIFFERENT from ${checkAgainst}: ${differ.length} seeds, first: ${differ.slice(0, 5).join("; ")}`);
    process.exit(1);
  }
  console.log(`same as ${checkAgainst}: every seed's verdict and trace hash match`);
}
