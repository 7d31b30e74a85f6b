/**
 * Long operations (install-ha, and next upgrade-ha, upgrade-mn, restore) as step plans: an
 * ordered list of named steps, each with a check ("already done?"), an action and an
 * optional rollback. The runner records where it is in a state file, so running the same
 * command again resumes after the last step that finished; it stops on the first failure,
 * naming the step and the cause; and it can undo the finished steps in reverse order.
 */
import { MnhaError } from "@mnha/shared";
import type { PlanState, PlanStateStore } from "./plan-state.js";

export interface StepContext {
  /** A line of detail under the step's progress line (never a secret). */
  note(text: string): void;
}

export interface PlanStep {
  /** Stable identifier, recorded in the state file: never rename a step that shipped. */
  name: string;
  /** What the operator reads in the progress output. */
  title: string;
  /** Already done? When present it is trusted over the state file (things get undone by hand). */
  check?: (context: StepContext) => Promise<boolean>;
  run: (context: StepContext) => Promise<void>;
  /** Undoes the step; must be safe to call when the step only half ran. */
  rollback?: (context: StepContext) => Promise<void>;
}

export interface Plan {
  /** Names the state file's plan: a state file of another plan is refused. */
  name: string;
  steps: readonly PlanStep[];
}

export type PlanEvent =
  | { kind: "resume"; plan: string; done: string[] }
  | { kind: "start"; step: string; title: string; index: number; total: number }
  | { kind: "skip"; step: string; title: string; index: number; total: number; reason: string }
  | { kind: "done"; step: string; title: string; index: number; total: number; tookMs: number }
  | { kind: "fail"; step: string; title: string; index: number; total: number; message: string }
  | { kind: "note"; step: string; text: string }
  | { kind: "rollback"; step: string; title: string; ok: boolean; message?: string };

export interface RunPlanOptions {
  store: PlanStateStore;
  /** Progress, for the terminal and the audit store. */
  onEvent?: (event: PlanEvent) => void;
  /** Undo every finished step (reverse order) when a step fails. Default: leave them, so a rerun resumes. */
  rollbackOnFailure?: boolean;
  /** Monotonic milliseconds, for step durations (tests pass a fake). */
  now?: () => number;
}

export interface PlanResult {
  ran: string[];
  skipped: string[];
}

const STATE_VERSION = 1;

/** Runs the plan from where its state file says it stopped. Throws PLAN_STEP_FAILED on the first failure. */
export async function runPlan(plan: Plan, options: RunPlanOptions): Promise<PlanResult> {
  assertUniqueNames(plan);
  const emit = options.onEvent ?? (() => undefined);
  const now = options.now ?? (() => performance.now());
  const state = loadState(plan, options.store);
  if (state.done.length > 0) emit({ kind: "resume", plan: plan.name, done: [...state.done] });
  const result: PlanResult = { ran: [], skipped: [] };
  const total = plan.steps.length;

  for (const [offset, step] of plan.steps.entries()) {
    const index = offset + 1;
    const context: StepContext = { note: (text) => emit({ kind: "note", step: step.name, text }) };
    const recorded = state.done.includes(step.name);
    let alreadyDone: boolean;
    try {
      alreadyDone = step.check ? await step.check(context) : recorded;
    } catch (error) {
      return fail(plan, step, index, error, state, options, emit);
    }
    if (alreadyDone) {
      if (!recorded) state.done.push(step.name);
      save(options.store, state);
      result.skipped.push(step.name);
      emit({ kind: "skip", step: step.name, title: step.title, index, total, reason: recorded ? "done in an earlier run" : "already done" });
      continue;
    }
    if (recorded) state.done = state.done.filter((name) => name !== step.name); // undone since: run it again
    emit({ kind: "start", step: step.name, title: step.title, index, total });
    const started = now();
    try {
      await step.run(context);
      if (step.check && !(await step.check(context))) {
        throw new MnhaError("PLAN_STEP_FAILED", `the step ran but its check still says it is not done`, { hint: "this is a bug in the step; rerun with MNHA_DEBUG=1 and report it" });
      }
    } catch (error) {
      return fail(plan, step, index, error, state, options, emit);
    }
    state.done.push(step.name);
    state.failed = null;
    save(options.store, state);
    result.ran.push(step.name);
    emit({ kind: "done", step: step.name, title: step.title, index, total, tookMs: Math.round(now() - started) });
  }
  return result;
}

/**
 * Undoes the steps the state file records as done, last first, then forgets the state.
 * A rollback that fails stops the clean-up (the state keeps the steps still to undo).
 */
export async function rollbackPlan(plan: Plan, options: Pick<RunPlanOptions, "store" | "onEvent">): Promise<string[]> {
  const emit = options.onEvent ?? (() => undefined);
  const state = loadState(plan, options.store);
  const undone = await undoSteps(plan, state, options.store, emit, null);
  options.store.clear();
  return undone;
}

async function fail(plan: Plan, step: PlanStep, index: number, error: unknown, state: PlanState, options: RunPlanOptions, emit: (event: PlanEvent) => void): Promise<never> {
  const message = error instanceof Error ? error.message : String(error);
  state.failed = { step: step.name, message };
  save(options.store, state);
  emit({ kind: "fail", step: step.name, title: step.title, index, total: plan.steps.length, message });
  const cause = error instanceof MnhaError ? error : null;
  if (options.rollbackOnFailure === true) {
    await undoSteps(plan, state, options.store, emit, step);
    options.store.clear();
  }
  throw new MnhaError("PLAN_STEP_FAILED", `${plan.name} stopped at step ${index}/${plan.steps.length} "${step.title}": ${message}`, {
    hint:
      (cause?.hint ? `${cause.hint}; then ` : "fix the cause above, then ") +
      (options.rollbackOnFailure === true ? "run the command again (the finished steps were undone)" : "run the same command again: it resumes at this step"),
    fields: { plan: plan.name, step: step.name, causeCode: cause?.code ?? null },
    cause: error,
  });
}

/** Rolls back `failedStep` (it may have half run) and then every recorded step, newest first. */
async function undoSteps(plan: Plan, state: PlanState, store: PlanStateStore, emit: (event: PlanEvent) => void, failedStep: PlanStep | null): Promise<string[]> {
  const order: PlanStep[] = [];
  if (failedStep?.rollback) order.push(failedStep);
  for (const name of [...state.done].reverse()) {
    const step = plan.steps.find((candidate) => candidate.name === name);
    if (step && step !== failedStep) order.push(step);
  }
  const undone: string[] = [];
  for (const step of order) {
    if (!step.rollback) {
      state.done = state.done.filter((name) => name !== step.name);
      continue;
    }
    const context: StepContext = { note: (text) => emit({ kind: "note", step: step.name, text }) };
    try {
      await step.rollback(context);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      emit({ kind: "rollback", step: step.name, title: step.title, ok: false, message });
      save(store, state);
      throw new MnhaError("PLAN_STEP_FAILED", `undoing step "${step.title}" failed: ${message}`, { hint: "fix the cause, then run the clean-up again (it continues with the steps still to undo)", cause: error });
    }
    state.done = state.done.filter((name) => name !== step.name);
    save(store, state);
    undone.push(step.name);
    emit({ kind: "rollback", step: step.name, title: step.title, ok: true });
  }
  return undone;
}

function loadState(plan: Plan, store: PlanStateStore): PlanState {
  const state = store.load();
  if (state === null) return { version: STATE_VERSION, plan: plan.name, done: [], failed: null };
  if (state.plan !== plan.name || state.version !== STATE_VERSION) {
    throw new MnhaError("PLAN_STATE", `the state file belongs to another operation (${state.plan}, version ${state.version}), not ${plan.name}`, {
      hint: `finish or clean up that operation first, or remove ${store.describe()} if it is stale`,
    });
  }
  const known = new Set(plan.steps.map((step) => step.name));
  return { ...state, done: state.done.filter((name) => known.has(name)) };
}

function save(store: PlanStateStore, state: PlanState): void {
  store.save({ ...state, done: [...state.done] });
}

function assertUniqueNames(plan: Plan): void {
  const seen = new Set<string>();
  for (const step of plan.steps) {
    if (seen.has(step.name)) throw new MnhaError("INTERNAL", `plan ${plan.name} has two steps named ${step.name}`, { hint: "this is a bug in mnha; report it" });
    seen.add(step.name);
  }
}

/** One progress line per event, for a terminal. */
export function renderPlanEvent(event: PlanEvent): string {
  switch (event.kind) {
    case "resume":
      return `resuming ${event.plan}: ${event.done.length} step(s) finished in an earlier run\n`;
    case "start":
      return `[${event.index}/${event.total}] ${event.title} ...\n`;
    case "skip":
      return `[${event.index}/${event.total}] ${event.title}: skipped (${event.reason})\n`;
    case "done":
      return `[${event.index}/${event.total}] ${event.title}: done (${(event.tookMs / 1000).toFixed(1)} s)\n`;
    case "fail":
      return `[${event.index}/${event.total}] ${event.title}: FAILED: ${event.message}\n`;
    case "note":
      return `      ${event.text}\n`;
    case "rollback":
      return event.ok ? `undone: ${event.title}\n` : `could not undo ${event.title}: ${event.message ?? ""}\n`;
  }
}
