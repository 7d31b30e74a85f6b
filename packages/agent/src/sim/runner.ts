/**
 * One simulated run: a seed becomes a schedule, the schedule is played into a world of two
 * real election cores, and every invariant is checked after every event. The same seed
 * always gives the same run, so a failing seed is a bug report that replays exactly.
 */
import { InvariantChecker, deriveBounds, type Bounds, type Violation } from "./invariants.js";
import { PairWorld, type WorldOverrides, type WorldSettings } from "./pair-world.js";
import { ScheduleDriver } from "./schedule-driver.js";
import { describeSchedule, generateSchedule, type GenerateOptions, type Profile, type Schedule } from "./schedule.js";

/** The product's default timings (packages/shared/src/config.ts), as the simulator uses them. */
export const SIM_SETTINGS = {
  election: {
    heartbeatIntervalMs: 100,
    // heartbeatIntervalMs × heartbeatMisses (3)
    peerLossMs: 300,
    leaseMs: 600,
    takeoverMarginMs: 150,
    maxClockDrift: 0.01,
    // max(peerLossMs × 2, ceil(leaseMs × (1 + maxClockDrift)) + takeoverMarginMs)
    startupGraceMs: 756,
    handoffTimeoutMs: 1_500,
    arpGuard: true,
    arpRetryMs: 500,
    // The liveness watchdog (timings.vipRepairAfterMs, vipGiveUpAfterMs, peerVipUnansweredMs).
    vipRepairAfterMs: 3_000,
    vipGiveUpAfterMs: 8_000,
    peerVipUnansweredMs: 12_000,
  },
  // VRRP: downTimerAdverts (3) × advertIntMs (100) + skew; skew = (256 - priority 200) × 100 / 256
  keepalivedDownTimerMs: 321.875,
  keepalivedSkewMs: 21.875,
  probeTimeoutMs: 200,
  duplicateCheckIntervalMs: 500,
  services: { intervalMs: 200, timeoutMs: 1_000, rise: 2, fall: 2 },
  gateway: { intervalMs: 500, timeoutMs: 400, rise: 2, fall: 3 },
  peerLink: { reconnectInitialMs: 100, reconnectMaxMs: 2_000, idleTimeoutMs: 5_000 },
} satisfies WorldOverrides;

/** After the liveness bound, the run goes on this long to see that the holder stays. */
export const STABLE_MS = 3_000;

export interface RunOptions {
  seed: number;
  generate?: GenerateOptions;
  /** Overrides of SIM_SETTINGS (a deliberately broken setting, for instance). */
  world?: WorldOverrides;
  /** Keep the whole log (replays); otherwise only the tail a trace needs. */
  fullLog?: boolean;
  /** Drop the schedule's wall-clock jumps (to show that they change nothing). */
  withoutWallJumps?: boolean;
  /** Go on after the first violation (to collect them all). */
  keepGoing?: boolean;
  /** Count the blind claims docs/protocol.md does not name as safety violations too. */
  strict?: boolean;
}

export interface RunResult {
  seed: number;
  profile: Profile;
  schedule: Schedule;
  bounds: Bounds;
  violations: Violation[];
  steps: number;
  simulatedMs: number;
  /** Splits excused as blind claims (the ARP guard's documented blind spot). */
  blindSplits: { count: number; totalMs: number; why: Record<string, number> };
  holderAfterHealMs: number | null;
  vipChanges: number;
  world: PairWorld;
  checker: InvariantChecker;
  /** How to replay this run (null: a hand-made schedule, not a seed). */
  replay: string | null;
}

export function worldSettingsFor(schedule: Schedule, overrides: WorldOverrides = {}, fullLog = false): WorldOverrides {
  return {
    ...SIM_SETTINGS,
    ...overrides,
    election: { ...SIM_SETTINGS.election, ...overrides.election },
    peerLink: { ...SIM_SETTINGS.peerLink, ...overrides.peerLink },
    drift: overrides.drift ?? schedule.drift,
    minLatencyMs: overrides.minLatencyMs ?? schedule.latency.minMs,
    maxLatencyMs: overrides.maxLatencyMs ?? schedule.latency.maxMs,
    seed: overrides.seed ?? schedule.seed,
    releaseStallMs: overrides.releaseStallMs ?? schedule.releaseStallMs ?? 0,
    logLimit: overrides.logLimit ?? (fullLog ? 10_000_000 : 300),
  };
}

export function runSeed(options: RunOptions): RunResult {
  const schedule = generateSchedule(options.seed, { maxClockDrift: options.world?.election?.maxClockDrift ?? SIM_SETTINGS.election.maxClockDrift, ...options.generate });
  const result = runSchedule(schedule, options);
  result.replay = replayCommand(options.seed, options.generate, options.strict);
  return result;
}

/** The one command that replays a seed with the same schedule options. */
export function replayCommand(seed: number, generate: GenerateOptions = {}, strict = false): string {
  const flags = [`--seed ${seed}`, "--trace"];
  if (strict) flags.push("--strict");
  if (generate.profile) flags.push(`--profile ${generate.profile}`);
  if (generate.windowMs) flags.push(`--window ${generate.windowMs[0]}-${generate.windowMs[1]}`);
  if (generate.adapterFaultShare !== undefined) flags.push(`--adapter-faults ${generate.adapterFaultShare}`);
  if (generate.releaseStallMaxMs) flags.push(`--release-stall ${generate.releaseStallMaxMs}`);
  return `node --import tsx scripts/simulate.ts ${flags.join(" ")}`;
}

export function runSchedule(schedule: Schedule, options: Omit<RunOptions, "seed" | "generate"> = {}): RunResult {
  const world = new PairWorld(worldSettingsFor(schedule, options.world, options.fullLog));
  const driver = new ScheduleDriver(world, schedule);
  driver.install({ withoutWallJumps: options.withoutWallJumps ?? false });
  const bounds = deriveBounds(world.settings as WorldSettings, schedule);
  const checker = new InvariantChecker(world, schedule, driver, bounds, { strict: options.strict ?? false });
  world.observe(() => checker.check());
  const end = schedule.healAt + bounds.livenessMs + STABLE_MS;
  world.runTo(end, options.keepGoing ? undefined : () => checker.failed);
  const violations = checker.failed && !options.keepGoing ? checker.violations : checker.finish();
  return {
    seed: schedule.seed,
    profile: schedule.profile,
    schedule,
    bounds,
    violations,
    steps: world.steps,
    simulatedMs: world.now,
    blindSplits: checker.blindSplits,
    holderAfterHealMs: checker.holderAfterHealMs,
    vipChanges: world.vipChanges.length,
    world,
    checker,
    replay: null,
  };
}

/** A short readable report: the violations, the last world events before the first one, the schedule. */
export function formatRun(result: RunResult, traceLines = 60): string {
  const lines: string[] = [];
  const first = result.violations[0];
  lines.push(
    first
      ? `seed ${result.seed} FAILED (${result.profile}): ${result.violations.length} violation(s)`
      : `seed ${result.seed} passed (${result.profile}): ${result.steps} steps, ${(result.simulatedMs / 1000).toFixed(1)} s simulated, ${result.vipChanges} VIP changes, holder ${result.holderAfterHealMs === null ? "never settled" : `settled ${Math.round(result.holderAfterHealMs)} ms after the heal`}`,
  );
  for (const v of result.violations.slice(0, 5)) lines.push(`  [${v.invariant}] at ${v.at.toFixed(1)} ms (step ${v.step}): ${v.message}`);
  const blind = result.blindSplits;
  lines.push(`bounds: liveness ${result.bounds.livenessMs} ms after the heal, causality window ${result.bounds.causalityWindowMs} ms, convergence ${result.bounds.convergenceMs} ms; blind-claim splits: ${blind.count} (${Math.round(blind.totalMs)} ms${blind.count > 0 ? `; ${Object.entries(blind.why).map(([k, v]) => `${k} ${v}`).join(", ")}` : ""})`);
  lines.push("", `last ${traceLines} world events${first ? " up to the first violation" : ""}:`, result.world.trace(traceLines), "", "schedule:", describeSchedule(result.schedule));
  if (result.replay) lines.push("", `replay: ${result.replay}`);
  return lines.join("\n");
}
