/**
 * The agent or its Keepalived dies on the holder, or the agent stalls briefly: the lease
 * makes Keepalived drop the VIP when nobody renews it, the peer takes over only after the
 * lease ran out, and a short pause moves nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { hostAddresses } from "../lab/topology.js";
import { VIP_ADDRESS } from "../lab/constants.js";
import { agentEvents } from "../lab/wedge-faults.js";
import { PLANNED_GAP_BOUND_MS, expectMovedOnce, expectNeverTwoMacs, expectNoMove, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

const lab = new Lab();

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("agent-failure") });
});

describe("the holder's agent dies", () => {
  it("SIGKILL of the holder's agent: its keepalived drops the VIP through the lease, the peer takes over", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "holder agent killed",
      fault: async () => {
        expect(await lab.killAgent(holder)).not.toBeNull();
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectMovedOnce(run, holder, standby);
    // The orphaned keepalived is still running, and yet the VIP is gone from the old holder.
    expect((await lab.keepalivedPids(holder)).length).toBeGreaterThan(0);
    expect(await hostAddresses(holder)).not.toContain(VIP_ADDRESS);
    expect(await lab.holders()).toEqual([standby]);
  });

  it("SIGTERM of the holder's agent (systemctl stop): it hands the VIP to the peer first, with a short gap", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "holder agent stopped cleanly",
      fault: async () => {
        expect(await lab.stopAgent(holder)).not.toBeNull();
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run, PLANNED_GAP_BOUND_MS);
    expectMovedOnce(run, holder, standby);
    // A clean stop takes keepalived down with the agent: nothing is left on the old holder.
    expect(await lab.keepalivedPids(holder)).toEqual([]);
    expect(await hostAddresses(holder)).not.toContain(VIP_ADDRESS);
    expect(await lab.holders()).toEqual([standby]);
  });

  it("SIGHUP of the holder's agent (a reload, by Keepalived habit): ignored and said in the audit; the agent and the VIP stay", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const pid = await lab.agentPid(holder);
    expect(pid).not.toBeNull();
    const run = await runScenario(lab, before, {
      name: "holder agent sent SIGHUP",
      fault: async () => {
        process.kill(pid!, "SIGHUP");
      },
      outcome: async () => {
        await waitFor("an agent.signal-ignored event on the holder", async () => (await agentEvents(lab, holder, "agent.signal-ignored")).find((e) => e.message.startsWith("SIGHUP ignored")), { timeoutMs: 10_000, intervalMs: 250 });
        await sleep(1_500);
      },
    });
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    expect(await lab.agentPid(holder)).toBe(pid);
    expect(await lab.holders()).toEqual([holder]);
  });

  it("SIGKILL of the holder's keepalived: never two MACs, the VIP is served again", async () => {
    const before = await lab.reset();
    const { holder } = before;
    let killed: number[] = [];
    const run = await runScenario(lab, before, {
      name: "holder keepalived killed",
      fault: async () => {
        killed = await lab.killKeepalived(holder);
        expect(killed).not.toEqual([]);
      },
      outcome: async () => {
        // The agent runs a new keepalived, and the lab settles with one holder (either node).
        await waitFor(
          `a new keepalived on ${holder}`,
          async () => ((await lab.keepalivedPids(holder)).some((pid) => !killed.includes(pid)) ? true : undefined),
          { timeoutMs: 15_000, intervalMs: 100 },
        );
        await lab.waitForStable({ timeoutMs: 15_000 });
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expect((await lab.holders()).length).toBe(1);
    // No back and forth: at most one change of who serves.
    expect(run.analysis.http.moves.length).toBeLessThanOrEqual(1);
    expect(run.analysis.arp.moves.length).toBeLessThanOrEqual(1);
  });
});

describe("transient blips move nothing", () => {
  it("a 300 ms pause (SIGSTOP) of the holder's agent: the VIP stays", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "holder agent paused 300 ms",
      fault: async () => {
        await lab.pauseAgent(holder);
        await sleep(300);
        await lab.resumeAgent(holder);
      },
      outcome: async () => {
        // Both agents are talking again and agree that the holder still holds.
        await waitFor("the agents to agree again", async () => ((await lab.waitForStable({ timeoutMs: 5_000 })).holder === holder ? true : undefined), {
          timeoutMs: 6_000,
        });
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectNoMove(run, holder);
    expect(await lab.holders()).toEqual([holder]);
    expect(await hostAddresses(standby)).not.toContain(VIP_ADDRESS);
  });
});
