/**
 * The audit events of a step plan run by a CLI command (upgrade-ha, upgrade-mn): one typed
 * catalog entry per kind, carried to the local agent's control API and stored with the pair's
 * other events. The CLI records best effort: the agent may be restarting (upgrade-ha restarts
 * it), and a missing audit line never stops an upgrade.
 */
import { z } from "zod";
import type { PlanEvent } from "./step-plan.js";

const name = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9_.:+ -]*$/, "a plan or step name");
const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "a node name");
const common = { plan: name, step: name, node: nodeName, title: z.string().max(300) };

/** The catalog: the type of each plan-step event and its fields. */
export const PlanStepEventSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("plan.step.started"), ...common }),
  z.strictObject({ type: z.literal("plan.step.finished"), ...common, tookMs: z.number().int().nonnegative().max(86_400_000) }),
  z.strictObject({ type: z.literal("plan.step.failed"), ...common, message: z.string().max(2_000) }),
]);
export type PlanStepEvent = z.infer<typeof PlanStepEventSchema>;
export const PLAN_STEP_EVENT_TYPES = PlanStepEventSchema.options.map((o) => o.shape.type.value);

/**
 * The audit event for a runner's progress event (start, done, fail; the rest are output only).
 * `node`: the node a step acts on when its name ends with one of the pair's names
 * (install-mn2), else the node the command runs on.
 */
export function planStepEvent(plan: string, nodes: { self: string; peer: string }, event: PlanEvent): PlanStepEvent | null {
  if (event.kind !== "start" && event.kind !== "done" && event.kind !== "fail") return null;
  const node = [nodes.peer, nodes.self].find((n) => event.step.endsWith(`-${n}`)) ?? nodes.self;
  const base = { plan: plan.slice(0, 128), step: event.step, node, title: event.title.slice(0, 300) };
  if (event.kind === "start") return { type: "plan.step.started", ...base };
  if (event.kind === "done") return { type: "plan.step.finished", ...base, tookMs: Math.max(0, Math.round(event.tookMs)) };
  return { type: "plan.step.failed", ...base, message: event.message.slice(0, 2_000) };
}

/** The sentence stored with the event. */
export function describePlanStepEvent(event: PlanStepEvent): string {
  const what = `${event.plan}: step ${event.step} (${event.title}) on ${event.node}`;
  if (event.type === "plan.step.started") return `${what} started`;
  if (event.type === "plan.step.finished") return `${what} finished in ${(event.tookMs / 1000).toFixed(1)} s`;
  return `${what} FAILED: ${event.message}`;
}

/**
 * An onEvent that also records start / finish / failure through `record` (the control API),
 * in order, each bounded by the recorder itself; failures to record are swallowed (counted).
 * `flush` waits for the records still under way.
 */
export function auditPlanEvents(plan: string, nodes: { self: string; peer: string }, record: (event: PlanStepEvent) => Promise<unknown>): { onEvent: (event: PlanEvent) => void; flush: () => Promise<{ recorded: number; lost: number }> } {
  let chain: Promise<unknown> = Promise.resolve();
  let recorded = 0;
  let lost = 0;
  return {
    onEvent: (event) => {
      const audit = planStepEvent(plan, nodes, event);
      if (audit === null) return;
      chain = chain.then(() => record(audit)).then(
        () => (recorded += 1),
        () => (lost += 1),
      );
    },
    flush: async () => {
      await chain;
      return { recorded, lost };
    },
  };
}
