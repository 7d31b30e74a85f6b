/**
 * Service failures and planned switchover, in the namespace lab with real agents and real
 * Keepalived: the holder's MN service dies (the VIP moves, the agent restores the service),
 * the standby's service dies (nothing moves), `mnha demote` (the VIP moves, a tiny gap).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import {
  PLANNED_GAP_BOUND_MS,
  SERVED_AGAIN_BOUND_MS,
  expectMovedOnce,
  expectNeverTwoMacs,
  expectNoMove,
  expectServedWithin,
  labArchiveDir,
  runScenario,
  waitClientServedBy,
} from "./scenario.js";

const lab = new Lab();

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("service-failover") });
});

async function serviceHealthyAgain(node: "mn1" | "mn2", service: "mn"): Promise<void> {
  await waitFor(
    `${node}/${service} restored by the agent and reported healthy`,
    async () => {
      if (!(await lab.serviceListening(node, service))) return undefined;
      const { status } = await lab.tryAgentStatus(node);
      return status?.self.services.find((s) => s.name === service)?.healthy === true ? true : undefined;
    },
    { timeoutMs: SERVED_AGAIN_BOUND_MS, intervalMs: 200 },
  );
}

describe("service failures", () => {
  it("the holder's MN service dies: the VIP moves to the peer, and the agent restores the service", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "holder MN service killed",
      fault: async () => {
        expect(await lab.killService(holder, "mn")).not.toEqual([]);
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
        await serviceHealthyAgain(holder, "mn");
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectMovedOnce(run, holder, standby);
    expect(await lab.holders()).toEqual([standby]);
  });

  it("the standby's MN service dies: nothing moves, the holder keeps serving", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "standby MN service killed",
      fault: async () => {
        expect(await lab.killService(standby, "mn")).not.toEqual([]);
      },
      outcome: async () => {
        await serviceHealthyAgain(standby, "mn");
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectNoMove(run, holder);
    expect(await lab.holders()).toEqual([holder]);
  });
});

describe("planned switchover", () => {
  it("`mnha demote --yes` on the holder moves the VIP to the peer with a tiny gap", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "planned demote",
      fault: async () => {
        const result = await lab.demote(holder);
        expect(result.code, `mnha demote: ${result.stderr}${result.stdout}`).toBe(0);
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run, PLANNED_GAP_BOUND_MS);
    expectMovedOnce(run, holder, standby);
    expect(await lab.holders()).toEqual([standby]);
    // The demoted node stays a healthy standby: the lab settles with the peer holding.
    expect((await lab.waitForStable()).holder).toBe(standby);
  });
});
