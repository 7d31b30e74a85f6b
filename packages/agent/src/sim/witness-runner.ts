/**
 * Simulated runs with a witness: the seeded fault schedule of runner.ts, plus faults of the
 * witness itself (its machine down and back, its link to one node cut), in a world whose
 * agents claim only with the witness's grant. The promise checked is the witness mode's:
 * **no instant at which both nodes hold the VIP**, whatever the schedule (blind claims are no
 * excuse here), plus the usual liveness (with the witness's lease in its bound), causality
 * and epoch invariants.
 */
import { InvariantChecker, deriveBounds } from "./invariants.js";
import { mulberry32 } from "./event-queue.js";
import { PairWorld, SIM_NODES, type SimNode, type WorldOverrides, type WorldSettings } from "./pair-world.js";
import { STABLE_MS, worldSettingsFor } from "./runner.js";
import { ScheduleDriver } from "./schedule-driver.js";
import { generateSchedule, type GenerateOptions, type Schedule } from "./schedule.js";
import { DEFAULT_WITNESS_MODEL } from "./witness-model.js";
import type { Violation } from "./invariants.js";

/** The witness's lease as the daemon defaults it (config `witness.leaseMs`). */
export const SIM_WITNESS_LEASE_MS = 2_000;

export type WitnessFault = { kind: "witness-down"; at: number; until: number } | { kind: "witness-cut"; node: SimNode; at: number; until: number };

export interface WitnessRunResult {
  seed: number;
  schedule: Schedule;
  witnessFaults: WitnessFault[];
  violations: Violation[];
  /** Instants at which both nodes held the VIP (must be empty). */
  splitBrainAt: number[];
  grants: number;
  world: PairWorld;
}

/** Witness faults for a chaos schedule (benign ones get none: they must move nothing). */
export function witnessFaultsFor(schedule: Schedule): WitnessFault[] {
  if (schedule.profile === "benign") return [];
  const rng = mulberry32(schedule.seed ^ 0x7e57);
  const r = (min: number, max: number) => min + rng() * (max - min);
  const faults: WitnessFault[] = [];
  const count = Math.round(r(0, 6));
  for (let i = 0; i < count; i++) {
    const at = r(0, schedule.healAt);
    const until = Math.min(schedule.healAt, at + r(200, 8_000));
    if (rng() < 0.3) faults.push({ kind: "witness-down", at, until });
    else faults.push({ kind: "witness-cut", node: rng() < 0.5 ? "mn1" : "mn2", at, until });
  }
  return faults.sort((a, b) => a.at - b.at);
}

export function witnessWorldSettings(schedule: Schedule, overrides: WorldOverrides = {}): WorldOverrides {
  const base = worldSettingsFor(schedule, overrides);
  return {
    ...base,
    election: { ...base.election, witness: { leaseMs: SIM_WITNESS_LEASE_MS } },
    witness: { ...DEFAULT_WITNESS_MODEL, drift: ((schedule.seed % 97) / 97 - 0.5) * 0.0098 },
  };
}

export function runWitnessSeed(seed: number, generate: GenerateOptions = {}): WitnessRunResult {
  const schedule = generateSchedule(seed, { maxClockDrift: 0.01, ...generate });
  return runWitnessSchedule(schedule, witnessFaultsFor(schedule));
}

export function runWitnessSchedule(schedule: Schedule, witnessFaults: WitnessFault[], overrides: WorldOverrides = {}): WitnessRunResult {
  const world = new PairWorld(witnessWorldSettings(schedule, overrides));
  const witness = world.witness;
  if (!witness) throw new Error("the witness world has no witness");
  const driver = new ScheduleDriver(world, schedule);
  driver.install();
  // Witness faults are trouble "between the machines" for the causality check.
  const counts = { down: 0, mn1: 0, mn2: 0 };
  const apply = () => {
    if (counts.down > 0) witness.crash();
    else witness.restart();
    for (const node of SIM_NODES) witness.setCut(node, counts[node] > 0);
  };
  for (const fault of witnessFaults) {
    const key = fault.kind === "witness-down" ? "down" : fault.node;
    const what = fault.kind === "witness-down" ? "witness down" : `witness cut from ${fault.node}`;
    world.at(fault.at, "mn1", what, () => {
      driver.activity.push({ at: world.now, scope: "net", what: `start: ${what}` });
      counts[key]++;
      apply();
    });
    world.at(fault.until, "mn1", `end of ${what}`, () => {
      driver.activity.push({ at: world.now, scope: "net", what: `end: ${what}` });
      counts[key]--;
      apply();
    });
  }
  const plain = deriveBounds(world.settings as WorldSettings, schedule);
  // A restarted witness waits one lease; a holder's grant it did not release runs one lease out.
  const extra = 2 * SIM_WITNESS_LEASE_MS + DEFAULT_WITNESS_MODEL.requestTimeoutMs + world.settings.election.arpRetryMs;
  const bounds = { ...plain, livenessMs: plain.livenessMs + extra, causalityWindowMs: plain.causalityWindowMs + extra };
  const checker = new InvariantChecker(world, schedule, driver, bounds);
  world.observe(() => checker.check());
  world.runTo(schedule.healAt + bounds.livenessMs + STABLE_MS, () => checker.failed || world.splitBrainAt.length > 0);
  const violations = checker.failed ? checker.violations : checker.finish();
  if (world.splitBrainAt.length > 0 && !violations.some((v) => v.invariant === "safety")) {
    violations.unshift({ invariant: "safety", at: world.splitBrainAt[0] as number, step: world.steps, message: "both nodes held the VIP with a witness configured" });
  }
  return { seed: schedule.seed, schedule, witnessFaults, violations, splitBrainAt: [...world.splitBrainAt], grants: witness.grants.length, world };
}
