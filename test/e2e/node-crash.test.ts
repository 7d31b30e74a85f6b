/**
 * The holder dies as a whole (wire cut, every process killed), and later comes back: the
 * peer takes over, and the recovered node does not take the VIP back (nopreempt).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VIP_ADDRESS, peerOf, type MnNode } from "../lab/constants.js";
import { Lab, type StableState } from "../lab/lab.js";
import { hostAddresses, hostLinkUp } from "../lab/topology.js";
import { expectMovedOnce, expectNeverTwoMacs, expectNoMove, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

const lab = new Lab();

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("node-crash") });
});

/** A crashed node and the peer holding alone: left by the first test, else made here. */
async function crashedNodeAndHolder(): Promise<{ crashed: MnNode; holder: MnNode }> {
  for (const node of ["mn1", "mn2"] as const) {
    const holders = await lab.holders();
    if (!(await hostLinkUp(node)) && holders.length === 1 && holders[0] === peerOf(node)) return { crashed: node, holder: peerOf(node) };
  }
  const { holder } = await lab.reset();
  await lab.crash(holder);
  await lab.waitForHolder(peerOf(holder), { timeoutMs: 15_000 });
  return { crashed: holder, holder: peerOf(holder) };
}

describe("node crash and rejoin", () => {
  it("the holder crashes: the peer takes the VIP", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "holder node crashed",
      fault: async () => {
        await lab.crash(holder);
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectMovedOnce(run, holder, standby);
    expect(await lab.holders()).toEqual([standby]);
  });

  it("the crashed node boots again: it rejoins as standby and the VIP stays where it is", async () => {
    const { crashed, holder } = await crashedNodeAndHolder();
    const before: StableState = { holder, standby: crashed };
    const run = await runScenario(lab, before, {
      name: "recovered node rejoins",
      fault: async () => {
        await lab.boot(crashed);
      },
      outcome: async () => {
        const stable = await lab.waitForStable({ timeoutMs: 20_000 });
        expect(stable.holder).toBe(holder);
      },
      observeMs: 3_000,
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectNoMove(run, holder);
    expect(await lab.holders()).toEqual([holder]);
    expect(await hostAddresses(crashed)).not.toContain(VIP_ADDRESS);
    const status = await lab.agentStatus(crashed);
    expect(status.vipOwner).toBe(holder);
    expect(status.peer.connected).toBe(true);
  });
});
