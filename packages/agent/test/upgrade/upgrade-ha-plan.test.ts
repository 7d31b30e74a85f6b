/**
 * upgrade-ha's plan over an in-memory pair: the standby first (stage, install, restart,
 * rejoin), the handover, then the former holder. A failure while installing or restarting a
 * node rolls that node back to its previous suite (and restarts its agent when it ran the new
 * one) before the error names the step; the holder keeps the VIP; the rerun resumes there.
 * And the database gate.
 */
import { describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import type { DbNodeStatus, StatusReport } from "../../src/contracts.js";
import { MemoryPlanStore } from "../../src/plan/plan-state.js";
import { runPlan, type PlanEvent } from "../../src/plan/step-plan.js";
import { databaseSyncProblem, upgradeHaPlan, type UpgradeHaActions } from "../../src/upgrade/upgrade-ha-plan.js";

interface NodeState {
  installed: string;
  releases: Set<string>;
  running: string | null;
  staged: boolean;
}

function pair() {
  const world = {
    holder: "mn1" as string | null,
    nodes: new Map<string, NodeState>([
      ["mn1", { installed: "0.1.0", releases: new Set(["0.1.0"]), running: "0.1.0", staged: false }],
      ["mn2", { installed: "0.1.0", releases: new Set(["0.1.0"]), running: "0.1.0", staged: false }],
    ]),
    failInstallOn: null as string | null,
    /** The agent of this node's new suite never rejoins. */
    failRejoinOn: null as string | null,
    pairReady: true,
    calls: [] as string[],
  };
  const node = (name: string): NodeState => world.nodes.get(name) as NodeState;
  const offered = (version: string | null) => (version === "0.2.0" ? [2, 3] : [2]);
  const negotiated = () => Math.max(...offered(node("mn1").running).filter((v) => offered(node("mn2").running).includes(v)));
  const actions: UpgradeHaActions = {
    target: "0.2.0",
    first: "mn2",
    second: "mn1",
    previous: { mn1: "0.1.0", mn2: "0.1.0" },
    assertPairReady: async () => {
      if (!world.pairReady) throw new MnhaError("OPERATION_REFUSED", "the pair is not ready for an upgrade step: the peer is not connected", { hint: "see mnha status" });
      return "the pair is healthy";
    },
    installedSuite: async (name) => node(name).installed,
    runningAgent: async (name) => {
      const running = node(name).running;
      return running === null ? null : { version: running, offered: offered(running), negotiated: negotiated() };
    },
    staged: async (name) => node(name).staged,
    stage: async (name) => {
      world.calls.push(`stage ${name}`);
      node(name).staged = true;
      return `copied to ${name}`;
    },
    install: async (name) => {
      world.calls.push(`install ${name}`);
      // Like install.sh: the release is copied and `current` switched before the step that fails.
      node(name).releases.add("0.2.0");
      node(name).installed = "0.2.0";
      if (world.failInstallOn === name) throw new MnhaError("REMOTE_COMMAND", `install.sh failed on ${name} (exit 1): told to fail`, { hint: `fix install.sh on ${name}` });
      return "installed";
    },
    activate: async (name, version) => {
      world.calls.push(`activate ${name} ${version}`);
      if (!node(name).releases.has(version)) throw new Error(`no release ${version}`);
      node(name).installed = version;
      return `back on ${version}`;
    },
    restartAgent: async (name) => {
      world.calls.push(`restart ${name}`);
      if (world.holder === name) throw new MnhaError("OPERATION_REFUSED", `${name} holds the VIP`, { hint: "hand over first" });
      node(name).running = node(name).installed;
      return `${name} restarted`;
    },
    waitRejoined: async (name, version) => {
      world.calls.push(`wait ${name} ${version}`);
      if (node(name).running !== version) throw new Error(`${name} runs ${node(name).running}`);
      if (world.failRejoinOn === name && version === "0.2.0") throw new MnhaError("OPERATION_FAILED", `${name} did not rejoin the pair on suite 0.2.0 within 120 s (no protocol version negotiated yet)`, { hint: `see the agent log on ${name}` });
      return `${name} rejoined on suite ${version}: peer link protocol v${negotiated()} negotiated`;
    },
    holder: async () => world.holder,
    handover: async (from, to) => {
      world.calls.push(`handover ${from}->${to}`);
      world.holder = to;
      return `${to} holds the VIP`;
    },
    cleanStage: async (name) => {
      node(name).staged = false;
    },
  };
  return { world, actions, node };
}

async function failure(promise: Promise<unknown>): Promise<MnhaError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MnhaError);
  return error as MnhaError;
}

describe("upgrade-ha plan", () => {
  it("upgrades the standby, hands the VIP over, upgrades the former holder; the negotiated protocol goes from v2 (mixed) to v3", async () => {
    const { world, actions, node } = pair();
    const events: PlanEvent[] = [];
    await runPlan(upgradeHaPlan(actions), { store: new MemoryPlanStore(), onEvent: (event) => events.push(event) });
    expect(world.calls).toEqual(["stage mn2", "install mn2", "restart mn2", "wait mn2 0.2.0", "handover mn1->mn2", "stage mn1", "install mn1", "restart mn1", "wait mn1 0.2.0"]);
    expect(world.holder).toBe("mn2");
    for (const name of ["mn1", "mn2"]) expect(node(name)).toMatchObject({ installed: "0.2.0", running: "0.2.0", staged: false });
    const notes = events.flatMap((event) => (event.kind === "note" ? [event.text] : []));
    expect(notes).toContain("mn2 rejoined on suite 0.2.0: peer link protocol v2 negotiated");
    expect(notes).toContain("mn1 rejoined on suite 0.2.0: peer link protocol v3 negotiated");
    expect(notes).toContain("mn1: agent 0.2.0, offers protocol 2,3, link v3");
  });

  it("the install failing on the standby rolls it back to its suite, the holder keeps the VIP, the step is named; the rerun resumes and finishes", async () => {
    const { world, actions, node } = pair();
    world.failInstallOn = "mn2";
    const store = new MemoryPlanStore();
    const error = await failure(runPlan(upgradeHaPlan(actions), { store }));
    expect(error.message).toBe('upgrade-ha 0.2.0 stopped at step 3/9 "install suite 0.2.0 on mn2 (suite 0.1.0 kept for rollback)": install.sh failed on mn2 (exit 1): told to fail; mn2 was rolled back to suite 0.1.0 and rejoined the pair');
    expect(error.hint).toBe("fix install.sh on mn2; then run the same command again: it resumes at this step");
    expect(error.fields["causeCode"]).toBe("UPGRADE_ROLLED_BACK");
    // Its agent never left 0.1.0: put back on the old release, not restarted.
    expect(world.calls).toEqual(["stage mn2", "install mn2", "activate mn2 0.1.0", "wait mn2 0.1.0"]);
    expect(node("mn2")).toMatchObject({ installed: "0.1.0", running: "0.1.0" });
    expect(world.holder).toBe("mn1");

    world.failInstallOn = null;
    world.calls.length = 0;
    const result = await runPlan(upgradeHaPlan(actions), { store });
    expect(result.skipped).toEqual(["check-pair", "stage-mn2"]);
    expect(world.calls).toEqual(["install mn2", "restart mn2", "wait mn2 0.2.0", "handover mn1->mn2", "stage mn1", "install mn1", "restart mn1", "wait mn1 0.2.0"]);
    expect(world.holder).toBe("mn2");
  });

  it("the new agent not rejoining rolls its node back and restarts it on the old suite; the rerun installs it again", async () => {
    const { world, actions, node } = pair();
    world.failRejoinOn = "mn2";
    const store = new MemoryPlanStore();
    const error = await failure(runPlan(upgradeHaPlan(actions), { store }));
    expect(error.message).toContain('stopped at step 4/9 "restart mn2\'s agent on suite 0.2.0 and wait until it rejoins": mn2 did not rejoin the pair on suite 0.2.0 within 120 s');
    expect(error.message).toContain("mn2 was rolled back to suite 0.1.0 and rejoined the pair");
    expect(world.calls).toEqual(["stage mn2", "install mn2", "restart mn2", "wait mn2 0.2.0", "activate mn2 0.1.0", "restart mn2", "wait mn2 0.1.0"]);
    expect(node("mn2")).toMatchObject({ installed: "0.1.0", running: "0.1.0" });
    expect(world.holder).toBe("mn1");

    world.failRejoinOn = null;
    world.calls.length = 0;
    await runPlan(upgradeHaPlan(actions), { store });
    // The install was recorded, but the node is back on 0.1.0: the check says so and it runs again.
    expect(world.calls.slice(0, 3)).toEqual(["install mn2", "restart mn2", "wait mn2 0.2.0"]);
    expect(node("mn1").running).toBe("0.2.0");
  });

  it("a failure on the former holder (after the handover) rolls only that node back; the upgraded node keeps serving", async () => {
    const { world, actions, node } = pair();
    world.failInstallOn = "mn1";
    const error = await failure(runPlan(upgradeHaPlan(actions), { store: new MemoryPlanStore() }));
    expect(error.message).toContain('stopped at step 7/9 "install suite 0.2.0 on mn1');
    expect(node("mn1")).toMatchObject({ installed: "0.1.0", running: "0.1.0" });
    expect(node("mn2")).toMatchObject({ installed: "0.2.0", running: "0.2.0" });
    expect(world.holder).toBe("mn2");
  });

  it("a failed rollback says so, with what to do by hand", async () => {
    const { world, actions, node } = pair();
    world.failInstallOn = "mn2";
    node("mn2").releases.delete("0.1.0");
    const error = await failure(runPlan(upgradeHaPlan(actions), { store: new MemoryPlanStore() }));
    expect(error.message).toContain("install.sh failed on mn2 (exit 1): told to fail; rolling mn2 back to suite 0.1.0 failed too: no release 0.1.0");
    expect(error.hint).toContain("/opt/mnha/releases/0.1.0/install.sh");
  });

  it("an unhealthy pair stops the run before any node is touched", async () => {
    const { world, actions } = pair();
    world.pairReady = false;
    const error = await failure(runPlan(upgradeHaPlan(actions), { store: new MemoryPlanStore() }));
    expect(error.message).toContain('stopped at step 1/9 "check the pair is healthy and the databases in sync": the pair is not ready for an upgrade step');
    expect(world.calls).toEqual([]);
  });

  it("started on the other node after the handover, it upgrades what is left without handing the VIP back", async () => {
    const { world, actions, node } = pair();
    // mn2 already upgraded and holding the VIP; mn1 still on 0.1.0. The run is started on mn2: mn1 is the standby.
    Object.assign(node("mn2"), { installed: "0.2.0", running: "0.2.0" });
    node("mn2").releases.add("0.2.0");
    world.holder = "mn2";
    const fromMn2 = { ...actions, first: "mn1", second: "mn2" };
    const result = await runPlan(upgradeHaPlan(fromMn2), { store: new MemoryPlanStore() });
    expect(world.calls).toEqual(["stage mn1", "install mn1", "restart mn1", "wait mn1 0.2.0"]);
    expect(result.skipped).toEqual(["handover", "stage-mn2", "install-mn2", "restart-mn2"]);
    expect(world.holder).toBe("mn2");
  });
});

function dbNode(overrides: Partial<DbNodeStatus> = {}): DbNodeStatus {
  return {
    alive: true,
    error: null,
    readOnly: false,
    slaveIoRunning: "Yes",
    slaveSqlRunning: "Yes",
    secondsBehindMaster: 0,
    lastIoError: null,
    lastSqlError: null,
    gtidBinlogPos: "1-1-10",
    gtidCurrentPos: "1-1-10",
    gtidSlavePos: "1-1-10",
    semiSync: null,
    broken: null,
    seedIncomplete: false,
    ...overrides,
  };
}

function report(db: StatusReport["db"] | undefined): StatusReport {
  return { vipOwner: "mn1", self: { node: "mn1" }, peer: { node: "mn2" }, ...(db === undefined ? {} : { db }) } as unknown as StatusReport;
}

describe("the database gate of upgrade-ha", () => {
  it("no database configured: nothing to wait for", () => {
    expect(databaseSyncProblem(report(undefined))).toBeNull();
  });

  it("both up, replicas running, no lag: in sync", () => {
    expect(databaseSyncProblem(report({ self: dbNode(), peer: dbNode() }))).toBeNull();
  });

  it("names what is wrong, and on which node", () => {
    expect(databaseSyncProblem(report({ self: dbNode(), peer: null }))).toBe("mn2's database state is not known yet");
    expect(databaseSyncProblem(report({ self: dbNode({ alive: false, error: "connect ECONNREFUSED" }), peer: dbNode() }))).toBe("mn1's database is down (connect ECONNREFUSED)");
    expect(databaseSyncProblem(report({ self: dbNode(), peer: dbNode({ broken: "SQL thread error: duplicate key" }) }))).toBe("mn2's replication is broken: SQL thread error: duplicate key");
    expect(databaseSyncProblem(report({ self: dbNode(), peer: dbNode({ seedIncomplete: true }) }))).toBe("mn2's database seed is incomplete (mnha db seed)");
    expect(databaseSyncProblem(report({ self: dbNode(), peer: dbNode({ slaveIoRunning: "Connecting" }) }))).toBe("mn2's replica does not run (IO Connecting, SQL Yes)");
    expect(databaseSyncProblem(report({ self: dbNode(), peer: dbNode({ secondsBehindMaster: 7 }) }))).toBe("mn2's replica is 7 s behind");
  });
});
