/**
 * No lasting split brain. Both agents start while IP between the MNs is cut and ARP still
 * flows (a firewall on a freshly reinstalled MN that drops the peer-link port; a power cut
 * that brings both MNs back at once behind a half-configured switch). Neither can hear the
 * other, both pass their ARP probe at the same moment, and both may take the VIP; plain
 * Keepalived and mnha before holder-side duplicate detection kept two holders for as long as
 * the cut lasted. Now the holders see each other's ARP answers and the higher MAC releases.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyze, describeAnalysis, probed, type ArpSample } from "../lab/analysis.js";
import { MN_NODES } from "../lab/constants.js";
import { sleep } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { labArchiveDir } from "./scenario.js";

/** Two holders may answer for at most this long (generous; measured well under 1 s). */
const SPLIT_BRAIN_BOUND_MS = 2_500;
/** After this long every ARP sample must see exactly one MAC. */
const SETTLED_AFTER_MS = 4_000;

const lab = new Lab();

beforeAll(async () => {
  await lab.up({ fresh: true, agents: false });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("split-brain") });
});

describe("both agents start while the peer link is cut (ARP flows)", () => {
  it("two holders last less than the bound; then exactly one keeps the VIP and the other stays out", async () => {
    await lab.cutPeerLink();
    const sampler = lab.sampler("both start, peer link cut");
    await sampler.start();
    await sleep(500);
    const startAt = sampler.mark("start both agents");
    await Promise.all(MN_NODES.map((node) => lab.startAgent(node)));
    await sleep(SETTLED_AFTER_MS + 5_000);
    const endAt = sampler.mark("end");
    const records = await sampler.stop();
    const analysis = analyze(records, { from: startAt });
    console.log(["--- both start, peer link cut", ...describeAnalysis(analysis, startAt)].join("\n"));

    const arp = records.filter((r): r is ArpSample => r.kind === "arp" && r.t >= startAt && r.t <= endAt);
    expect(arp.length / ((endAt - startAt) / 1000), "ARP samples per second").toBeGreaterThanOrEqual(10);
    const twoMacs = arp.filter((s) => s.macs.length >= 2);
    const spanMs = twoMacs.length === 0 ? 0 : (twoMacs.at(-1) as ArpSample).t - (twoMacs[0] as ArpSample).t;
    console.log(`two-MAC samples: ${twoMacs.length}, spanning ${Math.round(spanMs)} ms`);
    expect(spanMs, "how long two MACs answered for the VIP").toBeLessThanOrEqual(SPLIT_BRAIN_BOUND_MS);

    // Samples cut off before their request went out are left out (as analyze() does), and counted.
    const afterSettling = arp.filter((s) => s.t >= startAt + SETTLED_AFTER_MS);
    const settled = afterSettling.filter(probed);
    console.log(`after settling: ${afterSettling.length} ARP samples, ${afterSettling.length - settled.length} without a request sent`);
    expect(settled.length).toBeGreaterThan(20);
    expect(settled.filter((s) => s.macs.length !== 1), "samples after settling without exactly one MAC").toEqual([]);
    expect(new Set(settled.map((s) => s.macs[0])).size, "one MAC answers throughout after settling").toBe(1);

    const holders = await lab.holders();
    expect(holders).toHaveLength(1);
    const holder = holders[0]!;
    const other = MN_NODES.find((n) => n !== holder)!;
    const [holderStatus, otherStatus] = await Promise.all([lab.agentStatus(holder), lab.agentStatus(other)]);
    expect(holderStatus.self.role).toBe("holder");
    expect(otherStatus.self.role).not.toBe("holder");
    expect(otherStatus.self.vipPresent).toBe(false);
    // Both nodes claim in most runs, not all (the fault suite: 15 of 20); the bound above holds
    // either way. When they did, the holder that stayed must be the lower MAC.
    if (twoMacs.length > 0) {
      const [lower] = [...(twoMacs[0] as ArpSample).macs].sort();
      expect(settled[0]?.macs[0]).toBe(lower);
    }

    // Healing the link changes nothing: the holder keeps the VIP.
    await lab.healPeerLink();
    const stable = await lab.waitForStable({ timeoutMs: 15_000 });
    expect(stable.holder).toBe(holder);
  });
});
