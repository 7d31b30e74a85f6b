/**
 * upgrade-mn's plan over an in-memory pair: standby first, switchover, then the former
 * holder, in maintenance throughout; a failed installer on the standby stops with the pair
 * served by the old holder and the step named; the same run resumes and finishes.
 */
import { describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { MemoryPlanStore } from "../../src/plan/plan-state.js";
import { runPlan } from "../../src/plan/step-plan.js";
import { upgradeMnPlan, type UpgradeMnActions } from "../../src/upgrade/upgrade-mn-plan.js";

function pair(options: { suite?: string } = {}) {
  const world = {
    holder: "mn1" as string | null,
    versions: new Map([["mn1", "4.8.0"], ["mn2", "4.8.0"]]),
    maintenance: false,
    failInstallOn: null as string | null,
    calls: [] as string[],
  };
  const actions: UpgradeMnActions = {
    installer: { kind: "bin", version: "4.9.0", requiresSuite: "0.1.0" },
    first: "mn2",
    second: "mn1",
    suiteVersions: async () => [{ node: "mn1", suite: options.suite ?? "0.1.0" }, { node: "mn2", suite: "0.1.0" }],
    maintenance: async (on) => {
      world.calls.push(`maintenance ${on ? "on" : "off"}`);
      world.maintenance = on;
      return `maintenance ${on ? "on" : "off"}`;
    },
    platformVersion: async (node) => world.versions.get(node) ?? null,
    stage: async (node) => {
      world.calls.push(`stage ${node}`);
      return `copied to ${node}`;
    },
    install: async (node, output) => {
      world.calls.push(`install ${node}`);
      if (world.failInstallOn === node) throw new MnhaError("REMOTE_COMMAND", `the installer failed on ${node} (exit 1): told to fail`, { hint: "see the installer's log" });
      output("installer: done");
      world.versions.set(node, "4.9.0");
    },
    waitHealthy: async (node) => {
      world.calls.push(`wait ${node}`);
      return `${node} healthy`;
    },
    holder: async () => world.holder,
    switchover: async (from, to) => {
      world.calls.push(`switchover ${from}->${to}`);
      world.holder = to;
      return `${to} holds the VIP`;
    },
  };
  return { world, actions };
}

describe("upgrade-mn plan", () => {
  it("upgrades the standby, switches over, upgrades the former holder, in maintenance throughout", async () => {
    const { world, actions } = pair();
    await runPlan(upgradeMnPlan(actions), { store: new MemoryPlanStore() });
    expect(world.calls).toEqual(["maintenance on", "stage mn2", "install mn2", "wait mn2", "switchover mn1->mn2", "stage mn1", "install mn1", "wait mn1", "maintenance off"]);
    expect([...world.versions.values()]).toEqual(["4.9.0", "4.9.0"]);
    expect(world.holder).toBe("mn2");
    expect(world.maintenance).toBe(false);
  });

  it("a failed installer on the standby stops there: the old holder still serves, the step is named; the rerun resumes and finishes", async () => {
    const { world, actions } = pair();
    world.failInstallOn = "mn2";
    const store = new MemoryPlanStore();
    const error = (await runPlan(upgradeMnPlan(actions), { store }).catch((e: unknown) => e)) as MnhaError;
    expect(error).toBeInstanceOf(MnhaError);
    expect(error.message).toMatch(/upgrade-mn 4\.9\.0 stopped at step 4\/10 "install platform 4\.9\.0 on mn2": the installer failed on mn2/);
    expect(world.holder).toBe("mn1");
    expect(world.calls).not.toContain("switchover mn1->mn2");
    world.failInstallOn = null;
    world.calls.length = 0;
    const result = await runPlan(upgradeMnPlan(actions), { store });
    expect(result.skipped).toEqual(["check-suite", "maintenance-on", "stage-mn2"]);
    expect(world.calls).toEqual(["install mn2", "wait mn2", "switchover mn1->mn2", "stage mn1", "install mn1", "wait mn1", "maintenance off"]);
    expect([...world.versions.values()]).toEqual(["4.9.0", "4.9.0"]);
  });

  it("a node upgraded by hand meanwhile is not installed again", async () => {
    const { world, actions } = pair();
    world.versions.set("mn2", "4.9.0");
    await runPlan(upgradeMnPlan(actions), { store: new MemoryPlanStore() });
    expect(world.calls).not.toContain("install mn2");
    expect(world.calls).not.toContain("stage mn2");
    expect(world.calls).toContain("install mn1");
  });

  it("a suite too old for the installer is refused before anything changes", async () => {
    const { world, actions } = pair({ suite: "0.0.9" });
    await expect(runPlan(upgradeMnPlan({ ...actions, installer: { ...actions.installer, requiresSuite: "0.1.0" } }), { store: new MemoryPlanStore() })).rejects.toThrow(/needs HA suite 0\.1\.0 or newer; mn1 has 0\.0\.9/);
    expect(world.calls).toEqual([]);
  });
});
