/**
 * The plan-step audit events (upgrade-ha, upgrade-mn): mapped from the runner's progress with
 * the node each step acts on, recorded in order and best effort, and carried by the real
 * control server and client, which refuse an event outside the catalog.
 */
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { ControlClient } from "../../src/control/control-client.js";
import { ControlServer } from "../../src/control/control-server.js";
import { MemoryPlanStore } from "../../src/plan/plan-state.js";
import { auditPlanEvents, describePlanStepEvent, planStepEvent, type PlanStepEvent } from "../../src/plan/plan-audit.js";
import { runPlan, type Plan } from "../../src/plan/step-plan.js";
import { capturingLogger, FakeHandlers, tempDir } from "../control/fake-control.js";

const nodes = { self: "mn1", peer: "mn2" };

function upgradeLikePlan(failOn: string | null): Plan {
  const step = (name: string) => ({ name, title: `do ${name}`, run: async () => {
    if (name === failOn) throw new MnhaError("OPERATION_FAILED", `${name} broke`, { hint: "h" });
  } });
  return { name: "upgrade-ha 0.2.0", steps: [step("check-pair"), step("install-mn2"), step("handover"), step("install-mn1")] };
}

describe("plan-step audit events", () => {
  it("start, finish and failure become catalog events naming the step's node; notes do not", () => {
    expect(planStepEvent("upgrade-ha 0.2.0", nodes, { kind: "start", step: "install-mn2", title: "install on mn2", index: 2, total: 4 })).toEqual({ type: "plan.step.started", plan: "upgrade-ha 0.2.0", step: "install-mn2", node: "mn2", title: "install on mn2" });
    expect(planStepEvent("upgrade-ha 0.2.0", nodes, { kind: "done", step: "handover", title: "hand over", index: 3, total: 4, tookMs: 1234.4 })).toMatchObject({ type: "plan.step.finished", node: "mn1", tookMs: 1234 });
    const failed = planStepEvent("upgrade-mn 5.1", nodes, { kind: "fail", step: "wait-mn1", title: "wait", index: 4, total: 4, message: "timed out" });
    expect(failed).toMatchObject({ type: "plan.step.failed", node: "mn1", message: "timed out" });
    expect(describePlanStepEvent(failed as PlanStepEvent)).toBe("upgrade-mn 5.1: step wait-mn1 (wait) on mn1 FAILED: timed out");
    expect(planStepEvent("p", nodes, { kind: "note", step: "x", text: "t" })).toBeNull();
  });

  it("a run that fails at a step records every start and finish before it and the failure, in order; a lost record does not stop the plan", async () => {
    const recorded: string[] = [];
    let calls = 0;
    const audit = auditPlanEvents("upgrade-ha 0.2.0", nodes, async (event) => {
      calls += 1;
      if (calls === 2) throw new MnhaError("CONTROL_UNREACHABLE", "agent restarting");
      recorded.push(`${event.type} ${event.step} ${event.node}`);
    });
    const error = await runPlan(upgradeLikePlan("handover"), { store: new MemoryPlanStore(), onEvent: audit.onEvent }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MnhaError);
    // The second record (check-pair's finish) was lost: the agent did not answer.
    expect(await audit.flush()).toEqual({ recorded: 5, lost: 1 });
    expect(recorded).toEqual(["plan.step.started check-pair mn1", "plan.step.started install-mn2 mn2", "plan.step.finished install-mn2 mn2", "plan.step.started handover mn1", "plan.step.failed handover mn1"]);
  });
});

describe("POST /v1/plan-event", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("the real server stores a catalog event through the handler and refuses one outside the catalog, storing nothing", async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const socketPath = join(dir.path, "run", "mnha.sock");
    const stored: PlanStepEvent[] = [];
    const handlers = Object.assign(new FakeHandlers(), { planEvent: async (event: PlanStepEvent) => (stored.push(event), { seq: stored.length }) });
    const server = new ControlServer({ socketPath, handlers, logger: capturingLogger().logger });
    await server.start();
    cleanups.push(() => server.stop());
    const client = new ControlClient({ socketPath, timeoutMs: 2_000 });
    const event: PlanStepEvent = { type: "plan.step.finished", plan: "upgrade-mn 5.1", step: "install-mn2", node: "mn2", title: "install on mn2", tookMs: 90 };
    expect(await client.planEvent(event)).toEqual({ seq: 1 });
    expect(stored).toEqual([event]);
    const wrong = client.planEvent({ ...event, type: "plan.step.exploded" } as unknown as PlanStepEvent);
    await expect(wrong).rejects.toMatchObject({ code: "CONTROL_REQUEST", message: expect.stringMatching(/invalid body for \/v1\/plan-event/) });
    expect(stored).toHaveLength(1);
  });
});
