/** The restore plan's order, its resume after a failure and what it leaves when it stops. */
import { describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { MemoryPlanStore } from "../../src/plan/plan-state.js";
import { runPlan } from "../../src/plan/step-plan.js";
import { restorePlan, undoRestoreBeforeData, type RestoreActions } from "../../src/backup/restore-plan.js";

function fakeServer(failures: { load?: number; verify?: boolean; stopServices?: boolean; reseed?: number } = {}) {
  const calls: string[] = [];
  let readOnly = false;
  let loadFailures = failures.load ?? 0;
  let reseedFailures = failures.reseed ?? 0;
  const actions: RestoreActions = {
    maintenance: async (on) => {
      calls.push(`maintenance ${on ? "on" : "off"}`);
      return `maintenance ${on ? "on" : "off"} on both`;
    },
    services: async (action) => {
      calls.push(`services ${action}`);
      if (failures.stopServices === true && action === "stop") throw new MnhaError("OPERATION_FAILED", "mn2: FAILED to stop mn", { hint: "h" });
      return `${action} mn on both`;
    },
    verifyBackup: async () => void calls.push("verify"),
    safetyBackup: async () => {
      calls.push("safety");
      return "/b/safety.sql.gz";
    },
    readOnly: async () => readOnly,
    setReadOnly: async (on) => {
      calls.push(`read-only ${on ? "on" : "off"}`);
      readOnly = on;
    },
    dropSchemasNotInBackup: async () => {
      calls.push("drop");
      return ["junk"];
    },
    loadBackup: async (progress) => {
      calls.push("load");
      if (loadFailures > 0) {
        loadFailures -= 1;
        throw new MnhaError("DB_REPLICATION", "loading the backup failed (mariadb exit 1): ERROR 2013 lost connection", { hint: "h" });
      }
      progress("loaded 100%");
    },
    reseedPeer: async () => {
      calls.push("reseed");
      if (reseedFailures > 0) {
        reseedFailures -= 1;
        throw new MnhaError("DB_SEED_FAILED", "mn2 could not copy this node's database: mariadb-dump on the peer failed (exit 2)", { hint: "h" });
      }
      return "mn2 is a copy of mn1's database at GTID 1-1-40";
    },
    waitForPeer: async () => void calls.push("wait"),
    verifyRestored: async () => {
      calls.push("check");
      if (failures.verify === true) throw new MnhaError("DB_REPLICATION", "app.t: CHECKSUM 1 here, 2 on the peer", { hint: "h" });
      return "all equal";
    },
  };
  return { actions, calls, readOnly: () => readOnly };
}

describe("restore plan", () => {
  it("verifies, backs up, goes read-only, loads, re-seeds the peer, waits for it, checks both, and ends writable", async () => {
    const server = fakeServer();
    const notes: string[] = [];
    await runPlan(restorePlan(server.actions), { store: new MemoryPlanStore(), onEvent: (e) => e.kind === "note" && notes.push(e.text) });
    expect(server.calls).toEqual(["verify", "safety", "maintenance on", "services stop", "read-only on", "drop", "load", "reseed", "wait", "check", "read-only off", "services start", "maintenance off"]);
    expect(server.readOnly()).toBe(false);
    expect(notes).toEqual(["safety backup: /b/safety.sql.gz", "maintenance on on both", "stop mn on both", "dropped junk", "loaded 100%", "mn2 is a copy of mn1's database at GTID 1-1-40", "all equal", "start mn on both", "maintenance off on both"]);
  });

  it("stops at a failed load naming the step, stays read-only, and the rerun resumes at the load (no second safety backup)", async () => {
    const server = fakeServer({ load: 1 });
    const store = new MemoryPlanStore();
    const error = await runPlan(restorePlan(server.actions), { store }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MnhaError);
    expect((error as MnhaError).message).toMatch(/stopped at step 7\/13 "load the backup": loading the backup failed/);
    expect(server.readOnly()).toBe(true);
    server.calls.length = 0;
    const result = await runPlan(restorePlan(server.actions), { store });
    expect(server.calls).toEqual(["load", "reseed", "wait", "check", "read-only off", "services start", "maintenance off"]);
    expect(result.skipped).toEqual(["verify-backup", "safety-backup", "maintenance-on", "stop-services", "read-only", "drop-extra-schemas"]);
    expect(server.readOnly()).toBe(false);
  });

  it("a failed check after the load leaves the node read-only rather than serving unverified data", async () => {
    const server = fakeServer({ verify: true });
    await expect(runPlan(restorePlan(server.actions), { store: new MemoryPlanStore() })).rejects.toThrow(/verify row counts, CHECKSUM TABLE on both nodes and replication.*CHECKSUM 1 here/);
    expect(server.readOnly()).toBe(true);
    expect(server.calls.at(-1)).toBe("check");
    expect(server.calls).not.toContain("maintenance off");
    expect(server.calls).not.toContain("services start"); // unverified data is not served
  });

  it("a failure before any data changed is undone: services started, maintenance left, state forgotten", async () => {
    const server = fakeServer({ stopServices: true });
    const store = new MemoryPlanStore();
    const plan = restorePlan(server.actions);
    const error = (await runPlan(plan, { store }).catch((e: unknown) => e)) as MnhaError;
    expect(error.fields?.["step"]).toBe("stop-services");
    expect(await undoRestoreBeforeData(plan, "stop-services", { store, onEvent: () => undefined })).toBe(true);
    // The half-run stop is undone first (start), then maintenance left; the data never touched.
    expect(server.calls).toEqual(["verify", "safety", "maintenance on", "services stop", "services start", "maintenance off"]);
    expect(store.load()).toBeNull();
  });

  it("a failure once the data was touched is not undone: the services stay stopped, the rerun resumes", async () => {
    const server = fakeServer({ load: 1 });
    const store = new MemoryPlanStore();
    const plan = restorePlan(server.actions);
    await runPlan(plan, { store }).catch(() => undefined);
    const calls = [...server.calls];
    expect(await undoRestoreBeforeData(plan, "load", { store, onEvent: () => undefined })).toBe(false);
    expect(server.calls).toEqual(calls);
    expect(store.load()?.failed?.step).toBe("load");
    expect(server.readOnly()).toBe(true);
    // A rerun whose re-checked early step fails after the data was touched in the first run: not undone either.
    expect(await undoRestoreBeforeData(plan, "read-only", { store, onEvent: () => undefined })).toBe(false);
    expect(server.calls).toEqual(calls);
  });

  it("a new server with no application data (disaster recovery) needs no safety backup, and says so", async () => {
    const server = fakeServer();
    const notes: string[] = [];
    await runPlan(restorePlan({ ...server.actions, safetyBackup: async () => null }), { store: new MemoryPlanStore(), onEvent: (e) => e.kind === "note" && notes.push(e.text) });
    expect(notes[0]).toBe("no application data here (a new server): no safety backup needed");
    expect(server.calls.at(-1)).toBe("maintenance off");
  });

  it("a failed re-seed of the peer stops there (read-only, services down) and the rerun re-seeds again, not reloading", async () => {
    const server = fakeServer({ reseed: 1 });
    const store = new MemoryPlanStore();
    const plan = restorePlan(server.actions);
    const error = (await runPlan(plan, { store }).catch((e: unknown) => e)) as MnhaError;
    expect(error.fields?.["step"]).toBe("reseed-peer");
    expect(error.message).toMatch(/re-seed the peer from this node.*mn2 could not copy/);
    expect(await undoRestoreBeforeData(plan, "reseed-peer", { store, onEvent: () => undefined })).toBe(false);
    expect(server.readOnly()).toBe(true);
    expect(server.calls).not.toContain("services start");
    server.calls.length = 0;
    await runPlan(restorePlan(server.actions), { store });
    expect(server.calls).toEqual(["reseed", "wait", "check", "read-only off", "services start", "maintenance off"]);
  });

  it("without agents (--no-maintenance) the peer is not re-seeded: replication carries the load, and the note says so", async () => {
    const server = fakeServer();
    const notes: string[] = [];
    await runPlan(restorePlan({ ...server.actions, reseedPeer: null }), { store: new MemoryPlanStore(), onEvent: (e) => e.kind === "note" && notes.push(e.text) });
    expect(server.calls).not.toContain("reseed");
    expect(notes).toContain("no agents: the peer gets the load through replication");
  });

  it("leaves a maintenance mode the operator had set alone", async () => {
    const server = fakeServer();
    await runPlan(restorePlan({ ...server.actions, maintenance: null }), { store: new MemoryPlanStore() });
    expect(server.calls.filter((c) => c.startsWith("maintenance"))).toEqual([]);
  });
});
