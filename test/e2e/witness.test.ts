/**
 * The witness (`mnha witness` in its own namespace): with it, a clean split between the MNs
 * never makes two holders. Checked from outside with the client's ARP sampler (two MACs
 * answering for the VIP is two holders) and from inside with each agent's status:
 * - both agents start with IP between the MNs cut and ARP flowing: one holder, never two;
 * - everything between the MNs cut (IP and ARP) under a holder: it keeps serving, never two;
 * - the witness killed: the healthy holder that reaches its peer keeps the VIP;
 * - the holder cut from both the peer and the witness: it gives the VIP up, and the other
 *   (which reaches the witness) takes it once the witness's lease has run out.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probed, type ArpSample, type SamplerRecord } from "../lab/analysis.js";
import { HOSTS, MN_NODES, type MnNode } from "../lab/constants.js";
import { sleep } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { LAB_WITNESS_LEASE_MS, addWitnessHost, cutMnToMn, cutWitnessFrom, healMnToMn, healWitnessFrom, killWitness, startWitness, withWitness, witnessPaths } from "../lab/witness-host.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ config: { customize: withWitness } });

function arpBetween(records: SamplerRecord[], from: number, to: number): ArpSample[] {
  return records.filter((r): r is ArpSample => r.kind === "arp" && probed(r) && r.t >= from && r.t <= to);
}

function macOf(node: MnNode): string {
  return HOSTS[node].mac.toLowerCase();
}

/**
 * Served by `holder` alone: no sample answered by another MAC (or by two), and at most a few
 * unanswered ones (one arping lost now and then on a loaded machine is not a failover).
 */
function expectServedBy(arp: ArpSample[], holder: MnNode): void {
  expect(arp.filter((s) => s.macs.some((m) => m !== macOf(holder))), "samples answered by another MAC").toEqual([]);
  const unanswered = arp.filter((s) => s.macs.length === 0).length;
  expect(unanswered, `${unanswered} of ${arp.length} samples unanswered`).toBeLessThanOrEqual(Math.ceil(arp.length * 0.05));
}

async function settledHolder(): Promise<MnNode> {
  const stable = await lab.waitForStable({ timeoutMs: 30_000 });
  return stable.holder;
}

beforeAll(async () => {
  await lab.up({ fresh: true, agents: false });
  await addWitnessHost();
  await startWitness();
}, 120_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("witness") });
});

describe("with a witness", () => {
  it("both agents start with IP between the MNs cut (ARP flows): never two holders, one serves", async () => {
    await lab.cutPeerLink();
    const sampler = lab.sampler("witness: both start, peer link cut");
    await sampler.start();
    await sleep(300);
    const startAt = sampler.mark("start both agents");
    await Promise.all(MN_NODES.map((node) => lab.startAgent(node)));
    await sleep(10_000);
    const endAt = sampler.mark("end");
    const arp = arpBetween(await sampler.stop(), startAt, endAt);
    expect(arp.length).toBeGreaterThan(50);
    expect(arp.filter((s) => s.macs.length >= 2), "samples answered by two MACs").toEqual([]);
    const holders = await lab.holders();
    expect(holders).toHaveLength(1);
    const holder = holders[0] as MnNode;
    // Served: the last 3 s of samples are all answered, by the holder.
    const tail = arp.filter((s) => s.t >= endAt - 3_000);
    expectServedBy(tail, holder);
    const status = await lab.agentStatus(holder);
    expect(status.witness).toMatchObject({ configured: true, connected: true, reachable: true, grantHeld: true, holder });
    await lab.healPeerLink();
    expect(await settledHolder()).toBe(holder);
  }, 90_000);

  it("everything between the MNs cut (IP and ARP) under a holder: it keeps serving, never two holders", async () => {
    const holder = await settledHolder();
    const sampler = lab.sampler("witness: MN-MN cut");
    await sampler.start();
    const cutAt = sampler.mark("cut everything between mn1 and mn2");
    await cutMnToMn();
    await sleep(10_000);
    const endAt = sampler.mark("end");
    const arp = arpBetween(await sampler.stop(), cutAt, endAt);
    await healMnToMn();
    expect(arp.length).toBeGreaterThan(50);
    expect(arp.filter((s) => s.macs.length >= 2), "samples answered by two MACs").toEqual([]);
    expectServedBy(arp, holder);
    expect(await settledHolder()).toBe(holder);
  }, 90_000);

  it("the witness killed: the holder that reaches its peer keeps the VIP", async () => {
    const holder = await settledHolder();
    const sampler = lab.sampler("witness: killed");
    await sampler.start();
    const from = sampler.mark("kill -9 the witness");
    let status: Awaited<ReturnType<Lab["agentStatus"]>> | null = null;
    let endAt = 0;
    try {
      await killWitness();
      // Past the holder's grant (it lapses one agent lease before the witness's lease ends).
      await sleep(LAB_WITNESS_LEASE_MS + 2_500);
      status = await lab.agentStatus(holder);
      endAt = sampler.mark("end");
    } finally {
      await startWitness();
    }
    const arp = arpBetween(await sampler.stop(), from, endAt);
    expect(status?.self.role).toBe("holder");
    expect(status?.witness).toMatchObject({ connected: false, grantHeld: false });
    expect(arp.length).toBeGreaterThan(20);
    expectServedBy(arp, holder);
    // The restarted witness grants the holder again (its grant file names it).
    let regained = false;
    for (let i = 0; i < 40 && !regained; i++) {
      await sleep(250);
      regained = (await lab.agentStatus(holder)).witness?.grantHeld === true;
    }
    expect(regained, "the holder holds the witness's grant again").toBe(true);
    expect(await lab.holders()).toEqual([holder]);
  }, 90_000);

  it("SIGHUP to the witness (a reload, by habit): ignored and logged; it keeps granting", async () => {
    const holder = await settledHolder();
    const pid = Number(readFileSync(witnessPaths.pid, "utf8").trim());
    const logFrom = readFileSync(witnessPaths.log, "utf8").length;
    process.kill(pid, "SIGHUP");
    await sleep(LAB_WITNESS_LEASE_MS + 500);
    expect(() => process.kill(pid, 0), "the witness still runs").not.toThrow();
    expect(readFileSync(witnessPaths.log, "utf8").slice(logFrom)).toContain("SIGHUP ignored");
    expect((await lab.agentStatus(holder)).witness).toMatchObject({ connected: true, grantHeld: true });
    expect(await lab.holders()).toEqual([holder]);
  }, 60_000);

  it("the holder cut from both the peer and the witness gives the VIP up; the other takes it after the lease", async () => {
    const holder = await settledHolder();
    const other = MN_NODES.find((n) => n !== holder) as MnNode;
    const sampler = lab.sampler("witness: holder isolated from peer and witness");
    await sampler.start();
    const cutAt = sampler.mark("cut the holder from the peer and the witness");
    await Promise.all([cutMnToMn(), cutWitnessFrom(holder)]);
    let moved = false;
    for (let i = 0; i < 100 && !moved; i++) {
      await sleep(200);
      moved = (await lab.holders()).join(",") === other;
    }
    await sleep(2_000);
    const endAt = sampler.mark("end");
    const arp = arpBetween(await sampler.stop(), cutAt, endAt);
    expect(moved, `${other} took the VIP`).toBe(true);
    expect(arp.filter((s) => s.macs.length >= 2), "samples answered by two MACs").toEqual([]);
    // Not before the holder's grant could have run out at the witness.
    const firstOther = arp.find((s) => s.macs.includes(macOf(other)));
    expect(firstOther).toBeDefined();
    expect((firstOther as ArpSample).t - cutAt).toBeGreaterThanOrEqual(LAB_WITNESS_LEASE_MS * 0.9);
    expect((await lab.agentStatus(holder)).self.role).not.toBe("holder");
    await Promise.all([healMnToMn(), healWitnessFrom(holder)]);
    expect(await settledHolder()).toBe(other);
  }, 90_000);
});
