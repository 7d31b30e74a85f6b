/**
 * The liveness watchdog in the lab: mishaps on the holder that no election rule sees (the VIP
 * deleted by hand, the lease guard's pid file removed). The VIP is served again within the
 * watchdog's bound, never by two nodes at once; when it stayed away past
 * timings.vipRepairAfterMs, the holder's agent repaired Keepalived and the audit trail says so.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HaEvent } from "../../packages/agent/src/contracts.js";
import { existsSync, rmSync } from "node:fs";
import { HOST_INTERFACE, HOSTS, SUBNET_PREFIX, VIP_ADDRESS, nodePaths, type MnNode } from "../lab/constants.js";
import { run, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { expectNeverTwoMacs, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

/** vipRepairAfterMs (3 s) + the 1 s VIP poll + a Keepalived restart and its master-down timer, with room for a loaded machine. */
const WATCHDOG_BOUND_MS = 15_000;
/** timings.vipRepairAfterMs (the lab uses the default). */
const REPAIR_AFTER_MS = 3_000;

const lab = new Lab();

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

  it("the lease guard's pid file removed on the holder: the lease check fails for good; the watchdog repairs, the VIP is served again, never two MACs", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const pidFile = `${nodePaths(holder).dataDir}/keepalived/lease.guard.pid`;
    const scenario = await runScenario(lab, before, {
      name: "lease guard pid file removed on the holder",
      fault: async () => {
        expect(existsSync(pidFile)).toBe(true);
        rmSync(pidFile);
      },
      outcome: async (ctx) => {
        // First the lease check fails and Keepalived drops the VIP (the fault taking hold)...
        await waitFor("the VIP gone from the holder", async () => ((await lab.holders()).length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
        const goneAt = ctx.sampler.mark("VIP gone");
        // ...then the watchdog gets it served again.
        const now = await servedAgain();
        const first = await ctx.sampler.waitServedBy(now, { since: goneAt, count: 5, timeoutMs: WATCHDOG_BOUND_MS });
        if (first === null) throw new Error(`the client was not served by ${now} within ${WATCHDOG_BOUND_MS} ms of the VIP going`);
      },
      observeMs: 3_000,
    });
    expectNeverTwoMacs(scenario);
    expectServedWithin(scenario, WATCHDOG_BOUND_MS);
    expect(await lab.holders()).toHaveLength(1);
    await expectWatchdogStepsIfLong(holder, scenario.analysis.http.longestGapMs);
    const status = await lab.agentStatus((await lab.holders())[0]!);
    expect(status.vipUnansweredMs ?? null).toBeNull();
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
