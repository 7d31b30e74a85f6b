import { describe, expect, it } from "vitest";
import { ElectionCore, type DbSummary, type ElectionEffect, type ElectionInput } from "../../src/core/election.js";
import { deriveBounds, InvariantChecker } from "../../src/sim/invariants.js";
import { PairWorld, type SimNode, type WorldSettings } from "../../src/sim/pair-world.js";
import { ScheduleDriver } from "../../src/sim/schedule-driver.js";
import { STABLE_MS, worldSettingsFor } from "../../src/sim/runner.js";
import { generateSchedule } from "../../src/sim/schedule.js";

/**
 * "Never both writable", checked by the simulator: random fault schedules (the chaos and
 * benign profiles) run with db settings on, the real host and core; each core's database
 * orders are applied to a model server at once (as the host does, in order with the gate).
 * After every step of the world: at most one node whose agent runs is writable, unless both
 * agents hold the role at that instant (the election's own split, judged by its checker: the
 * database never adds one). A paused or dead agent's server keeps what it was told: the
 * documented limit, docs/database.md.
 */
const DB = { catchUpTimeoutMs: 10_000, maxLagForFailoverMs: 5_000, availabilityOverCatchUp: true };

/** A sound replica, caught up (the simulator has no database: the poll's report is constant). */
const SOUND: DbSummary = { alive: true, readOnly: null, broken: null, seedIncomplete: false, lagSeconds: 0, gtidBinlogPos: null, gtidCurrentPos: null, semiSyncMasterActive: true };

class RecordingCore extends ElectionCore {
  writable = false;
  private polled = false;
  override step(now: number, input: ElectionInput): ElectionEffect[] {
    // The daemon's first poll comes right after start.
    const effects = this.polled ? [] : super.step(now, { kind: "db-health", summary: SOUND });
    this.polled = true;
    effects.push(...super.step(now, input));
    for (const e of effects) if (e.kind === "db-read-only") this.writable = !e.on;
    return effects;
  }
}

function run(seed: number): { bothWritable: { at: number; splitBrain: boolean }[]; writableTurns: number; excused: number; world: PairWorld; endState: { owner: SimNode | null; writable: SimNode[] } } {
  const schedule = generateSchedule(seed);
  const settings = worldSettingsFor(schedule, { coreFactory: (s, now) => new RecordingCore({ ...s, db: DB }, now) });
  const world = new PairWorld(settings);
  const driver = new ScheduleDriver(world, schedule);
  driver.install({ withoutWallJumps: false });
  const bounds = deriveBounds(world.settings as WorldSettings, schedule);
  const checker = new InvariantChecker(world, schedule, driver, bounds, { strict: false });
  const bothWritable: { at: number; splitBrain: boolean }[] = [];
  let writableTurns = 0;
  let excused = 0;
  const was: Record<SimNode, boolean> = { mn1: false, mn2: false };
  const writable = (node: SimNode): boolean => {
    const core = world.core(node);
    return core instanceof RecordingCore && core.writable && world.agentRunning(node) && !world.agentPaused(node);
  };
  world.observe(() => {
    checker.check();
    const now = { mn1: writable("mn1"), mn2: writable("mn2") };
    for (const node of ["mn1", "mn2"] as const) if (now[node] && !was[node]) writableTurns += 1;
    Object.assign(was, now);
    if (now.mn1 && now.mn2) {
      // Both agents hold the role at this instant (the ARP guard's blind claims, which the
      // election's own checker judges): the database follows the VIP and the role, and cannot
      // do better than the election. Counted apart; any other instant is a violation.
      const holding = (node: SimNode): boolean => world.role(node) === "holder" || world.role(node) === "handing-off";
      if (holding("mn1") && holding("mn2")) excused += 1;
      else bothWritable.push({ at: world.now, splitBrain: world.splitBrainAt.length > 0 });
    }
  });
  world.runTo(schedule.healAt + bounds.livenessMs + STABLE_MS);
  const owner = world.vipOwner();
  const endState = { owner, writable: (["mn1", "mn2"] as const).filter((n) => writable(n)) };
  return { bothWritable, writableTurns, excused, world, endState };
}

describe("the database follows the VIP, in the simulated pair", () => {
  it("200 random fault schedules: never two writable servers; the pair ends with one writable holder", () => {
    let turns = 0;
    let excused = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const result = run(seed);
      const first = result.bothWritable[0]?.at ?? 0;
      const around = result.world.log.filter((e) => e.at > first - 3_000 && e.at <= first + 50).map((e) => `${e.at.toFixed(1)} ${e.node} ${e.what}`).join("\n");
      expect(result.bothWritable, `seed ${seed}: both writable at ${result.bothWritable.slice(0, 3).map((b) => `${b.at.toFixed(1)}${b.splitBrain ? " (split brain)" : ""}`).join(", ")}\n${around}`).toEqual([]);
      // After the heal and the liveness bound: the VIP's owner, and it alone, is writable.
      expect(result.endState, `seed ${seed}`).toEqual({ owner: result.endState.owner, writable: result.endState.owner === null ? [] : [result.endState.owner] });
      turns += result.writableTurns;
      excused += result.excused;
    }
    // The check is not vacuous: servers did turn writable, many times.
    expect(turns).toBeGreaterThan(200);
    console.info(`200 schedules: ${turns} turns to writable; ${excused} world steps with both writable while both agents held the role`);
  });
});
