/**
 * The liveness watchdog in the lab: mishaps on the holder that no election rule sees. The VIP
 * deleted by hand is served again within the watchdog's bound (Keepalived usually puts it back
 * itself); a Keepalived that cannot run at all is what only the watchdog saves: it repairs in
 * vain, gives the role up, and the peer serves. Never two nodes at once, and the audit trail
 * says what the watchdog did. (Files of the driver removed or rewritten by hand are repaired by
 * the driver's own self-check before the watchdog is needed: test/e2e/never-wedge.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HaEvent } from "../../packages/agent/src/contracts.js";
import { HOST_INTERFACE, HOSTS, SUBNET_PREFIX, VIP_ADDRESS, type MnNode } from "../lab/constants.js";
import { run, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { signal } from "../lab/procfs.js";
import { breakableKeepalived, setBroken } from "../lab/wedge-faults.js";
import { expectNeverTwoMacs, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

/** vipRepairAfterMs (3 s) + the 1 s VIP poll + a Keepalived restart and its master-down timer, with room for a loaded machine. */
const WATCHDOG_BOUND_MS = 15_000;
/** vipGiveUpAfterMs (8 s) + the VIP poll + a handoff, with room for a loaded machine. */
const GIVE_UP_BOUND_MS = 20_000;
/** timings.vipRepairAfterMs (the lab uses the default). */
const REPAIR_AFTER_MS = 3_000;

// Keepalived runs through a wrapper that the give-up case can break (test/lab/wedge-faults.ts).
const lab = new Lab({ config: breakableKeepalived() });

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("watchdog") });
});

describe("liveness watchdog", () => {
  it("the VIP deleted by hand on the holder: served again within the bound, never two MACs", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const scenario = await runScenario(lab, before, {
      name: "VIP deleted by hand on the holder",
      fault: async () => {
        await run("ip", ["-n", HOSTS[holder].namespace, "address", "del", `${VIP_ADDRESS}/${SUBNET_PREFIX}`, "dev", HOST_INTERFACE]);
      },
      outcome: async (ctx) => {
        const now = await servedAgain();
        await waitClientServedBy(ctx, now, WATCHDOG_BOUND_MS);
      },
      observeMs: 3_000,
    });
    expectNeverTwoMacs(scenario);
    expectServedWithin(scenario, WATCHDOG_BOUND_MS);
    expect(await lab.holders()).toHaveLength(1);
    // (Keepalived 2 puts a deleted VIP back itself; when it does not, the watchdog's repair does.)
    await expectWatchdogStepsIfLong(holder, scenario.analysis.http.longestGapMs);
  });

  it("the holder's Keepalived stopped and unable to start again: the watchdog repairs in vain, gives the role up, and the peer serves; never two MACs", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const scenario = await runScenario(lab, before, {
      name: "holder's keepalived stopped, its binary broken",
      fault: async () => {
        // The driver's own restarts and the watchdog's repair all fail from now on.
        setBroken(holder, "keepalived", true);
        for (const pid of await lab.keepalivedPids(holder)) signal(pid, "SIGTERM");
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby, GIVE_UP_BOUND_MS);
      },
      observeMs: 3_000,
    });
    setBroken(holder, "keepalived", false);
    expectNeverTwoMacs(scenario);
    expectServedWithin(scenario, GIVE_UP_BOUND_MS);
    expect(await lab.holders()).toEqual([standby]);
    const events = await waitFor(
      "the watchdog's steps on the old holder",
      async () => {
        const result = await lab.agentCli(holder, ["events", "--type", "watchdog", "--limit", "20", "--json"]);
        if (result.code !== 0) return undefined;
        const list = JSON.parse(result.stdout) as HaEvent[];
        const types = list.map((e) => e.type);
        return types.includes("watchdog.vip-repair") && types.includes("watchdog.vip-gave-up") ? list : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    expect(events.find((e) => e.type === "watchdog.vip-gave-up")?.message).toMatch(/giving the role up \(handoff to /);
  });
});

/** Waits (bounded) until exactly one node has the VIP; returns it. */
async function servedAgain(): Promise<MnNode> {
  const holders = await waitFor(
    "the VIP on exactly one node",
    async () => {
      const now = await lab.holders();
      return now.length === 1 ? now : undefined;
    },
    { timeoutMs: WATCHDOG_BOUND_MS, intervalMs: 100 },
  );
  return holders[0]!;
}

/**
 * A VIP missing longer than the repair bound must have been acted on by the watchdog, and
 * the audit trail says so (the repair asked for, and its outcome).
 */
async function expectWatchdogStepsIfLong(holder: MnNode, longestGapMs: number): Promise<void> {
  if (longestGapMs < REPAIR_AFTER_MS) return;
  const events = await waitFor(
    "the watchdog's events",
    async () => {
      const result = await lab.agentCli(holder, ["events", "--type", "watchdog", "--limit", "20", "--json"]);
      if (result.code !== 0) return undefined;
      const list = JSON.parse(result.stdout) as HaEvent[];
      const types = list.map((e) => e.type);
      return types.includes("watchdog.vip-repair") && (types.includes("watchdog.repaired") || types.includes("watchdog.repair-failed")) ? list : undefined;
    },
    { timeoutMs: 5_000, intervalMs: 250 },
  );
  expect(events.find((e) => e.type === "watchdog.vip-repair")?.message).toMatch(/VIP has not been on its interface/);
}
