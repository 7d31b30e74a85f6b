import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { FilePlanStore, MemoryPlanStore } from "../../src/plan/plan-state.js";
import { renderPlanEvent, rollbackPlan, runPlan, type PlanEvent, type PlanStep } from "../../src/plan/step-plan.js";

/** A little world: a set of things that exist, steps that create them, a log of every call. */
function world(options: { failOnce?: string; failRollback?: string } = {}) {
  const exists = new Set<string>();
  const calls: string[] = [];
  let failing = options.failOnce;
  const step = (name: string, withRollback = true): PlanStep => ({
    name,
    title: `make ${name}`,
    check: async () => exists.has(name),
    run: async () => {
      calls.push(`run ${name}`);
      if (failing === name) {
        failing = undefined;
        exists.add(`${name}-half`);
        throw new MnhaError("REMOTE_COMMAND", `${name} broke`, { hint: `repair ${name}` });
      }
      exists.add(name);
    },
    ...(withRollback
      ? {
          rollback: async () => {
            calls.push(`rollback ${name}`);
            if (options.failRollback === name) throw new Error(`cannot undo ${name}`);
            exists.delete(name);
            exists.delete(`${name}-half`);
          },
        }
      : {}),
  });
  return { exists, calls, step };
}

describe("runPlan", () => {
  it("runs every step in order and records them", async () => {
    const w = world();
    const store = new MemoryPlanStore();
    const events: PlanEvent[] = [];
    const result = await runPlan({ name: "demo", steps: [w.step("a"), w.step("b"), w.step("c")] }, { store, onEvent: (e) => events.push(e) });
    expect(result).toEqual({ ran: ["a", "b", "c"], skipped: [] });
    expect(w.calls).toEqual(["run a", "run b", "run c"]);
    expect(store.state?.done).toEqual(["a", "b", "c"]);
    expect(events.filter((e) => e.kind === "done").map((e) => (e as { index: number }).index)).toEqual([1, 2, 3]);
  });

  it("stops on the first failure naming the step and the cause, then resumes at that step", async () => {
    const w = world({ failOnce: "b" });
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b"), w.step("c")] };
    const failure = await runPlan(plan, { store }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MnhaError);
    expect((failure as MnhaError).code).toBe("PLAN_STEP_FAILED");
    expect((failure as MnhaError).message).toContain('step 2/3 "make b": b broke');
    expect((failure as MnhaError).hint).toContain("repair b");
    expect((failure as MnhaError).hint).toContain("resumes at this step");
    expect(w.calls).toEqual(["run a", "run b"]); // c never ran
    expect(store.state).toMatchObject({ done: ["a"], failed: { step: "b", message: "b broke" } });

    const events: PlanEvent[] = [];
    const rerun = await runPlan(plan, { store, onEvent: (e) => events.push(e) });
    expect(rerun).toEqual({ ran: ["b", "c"], skipped: ["a"] });
    expect(w.calls).toEqual(["run a", "run b", "run b", "run c"]);
    expect(events[0]).toEqual({ kind: "resume", plan: "demo", done: ["a"] });
    expect(store.state?.failed).toBeNull();
  });

  it("is idempotent: a second run after success runs nothing", async () => {
    const w = world();
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b")] };
    await runPlan(plan, { store });
    const again = await runPlan(plan, { store });
    expect(again).toEqual({ ran: [], skipped: ["a", "b"] });
    expect(w.calls).toEqual(["run a", "run b"]);
  });

  it("runs a recorded step again when its check says it was undone since", async () => {
    const w = world();
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b")] };
    await runPlan(plan, { store });
    w.exists.delete("a");
    const again = await runPlan(plan, { store });
    expect(again).toEqual({ ran: ["a"], skipped: ["b"] });
  });

  it("trusts the state file for steps without a check", async () => {
    const calls: string[] = [];
    const plain: PlanStep = { name: "p", title: "plain", run: async () => void calls.push("p") };
    const store = new MemoryPlanStore();
    await runPlan({ name: "demo", steps: [plain] }, { store });
    await runPlan({ name: "demo", steps: [plain] }, { store });
    expect(calls).toEqual(["p"]);
  });

  it("fails a step whose check is still false after it ran", async () => {
    const store = new MemoryPlanStore();
    const liar: PlanStep = { name: "l", title: "lie", check: async () => false, run: async () => undefined };
    await expect(runPlan({ name: "demo", steps: [liar] }, { store })).rejects.toThrow(/its check still says it is not done/);
    expect(store.state?.done).toEqual([]);
  });

  it("rolls back on failure when asked: the failed step first, then the finished ones newest first", async () => {
    const w = world({ failOnce: "c" });
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b", false), w.step("c"), w.step("d")] };
    const failure = await runPlan(plan, { store, rollbackOnFailure: true }).catch((error: unknown) => error as MnhaError);
    expect(failure).toBeInstanceOf(MnhaError);
    expect((failure as MnhaError).hint).toContain("were undone");
    expect(w.calls).toEqual(["run a", "run b", "run c", "rollback c", "rollback a"]);
    expect([...w.exists]).toEqual(["b"]); // b has no rollback: it stays
    expect(store.state).toBeNull();
  });

  it("rollbackPlan undoes the recorded steps in reverse order and forgets the state", async () => {
    const w = world();
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b"), w.step("c")] };
    await runPlan(plan, { store });
    const undone = await rollbackPlan(plan, { store });
    expect(undone).toEqual(["c", "b", "a"]);
    expect(w.calls.slice(3)).toEqual(["rollback c", "rollback b", "rollback a"]);
    expect(w.exists.size).toBe(0);
    expect(store.state).toBeNull();
  });

  it("a failing rollback stops the clean-up and keeps the steps still to undo", async () => {
    const w = world({ failRollback: "b" });
    const store = new MemoryPlanStore();
    const plan = { name: "demo", steps: [w.step("a"), w.step("b"), w.step("c")] };
    await runPlan(plan, { store });
    await expect(rollbackPlan(plan, { store })).rejects.toThrow(/undoing step "make b" failed: cannot undo b/);
    expect(store.state?.done).toEqual(["a", "b"]);
  });

  it("refuses a state file of another plan", async () => {
    const store = new MemoryPlanStore();
    store.save({ version: 1, plan: "upgrade-ha", done: ["x"], failed: null });
    await expect(runPlan({ name: "install-ha", steps: [] }, { store })).rejects.toMatchObject({ code: "PLAN_STATE" });
  });

  it("renders progress lines an operator can follow", () => {
    expect(renderPlanEvent({ kind: "start", step: "a", title: "make a", index: 1, total: 3 })).toBe("[1/3] make a ...\n");
    expect(renderPlanEvent({ kind: "done", step: "a", title: "make a", index: 1, total: 3, tookMs: 1234 })).toBe("[1/3] make a: done (1.2 s)\n");
    expect(renderPlanEvent({ kind: "fail", step: "a", title: "make a", index: 1, total: 3, message: "no" })).toBe("[1/3] make a: FAILED: no\n");
  });
});

describe("FilePlanStore", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "plan-"));
    dirs.push(dir);
    return dir;
  }

  it("persists across stores (a rerun is a new process) with mode 0600", async () => {
    const file = join(tempDir(), "sub", "install-ha.json");
    const w = world({ failOnce: "b" });
    const plan = { name: "demo", steps: [w.step("a"), w.step("b")] };
    await expect(runPlan(plan, { store: new FilePlanStore(file) })).rejects.toThrow(/make b/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ plan: "demo", done: ["a"], failed: { step: "b" } });
    const rerun = await runPlan(plan, { store: new FilePlanStore(file) });
    expect(rerun.ran).toEqual(["b"]);
  });

  it("names a corrupt state file and how to recover", () => {
    const dir = tempDir();
    const store = new FilePlanStore(join(dir, "s.json"));
    store.save({ version: 1, plan: "x", done: [], failed: null });
    writeFileSync(join(dir, "s.json"), "{not json");
    expect(() => store.load()).toThrow(/cannot be read.*/);
    try {
      store.load();
    } catch (error) {
      expect((error as MnhaError).hint).toContain("remove");
    }
  });
});
