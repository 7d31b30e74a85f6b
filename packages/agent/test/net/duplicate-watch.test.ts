import { silentLogger } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArpGuard } from "../../src/net/arp-guard.js";
import { DuplicateWatch, type DuplicateCheck } from "../../src/net/duplicate-watch.js";
import { NetnsLab, run } from "./netns-lab.js";

describe("DuplicateWatch (timing and reporting, with a scripted probe)", () => {
  const OWN = "02:00:00:00:00:0b";
  const OTHER = "02:00:00:00:00:0c";

  it("probes while active, one at a time, reports the MACs other than its own, and stops when inactive", async () => {
    let probes = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const watch = new DuplicateWatch({
      intervalMs: 20,
      probe: async () => {
        probes += 1;
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 15));
        inFlight -= 1;
        return { occupied: true, macs: [OWN, OTHER.toUpperCase()], detail: "two answers" };
      },
      ownMac: async () => OWN,
      logger: silentLogger(),
    });
    const checks: DuplicateCheck[] = [];
    watch.onCheck((c) => checks.push(c));
    watch.setActive(true);
    await new Promise((r) => setTimeout(r, 200));
    watch.setActive(false);
    const seen = probes;
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(probes - seen, "no probe after it was made inactive (one may have been in flight)").toBeLessThanOrEqual(1);
    expect(maxInFlight).toBe(1);
    expect(checks[0]).toEqual({ ownMac: OWN, otherMacs: [OTHER], detail: "two answers" });
    watch.stop();
  });

  it("a failed probe reports nothing (a broken arping must not take the VIP away), and status says the check is failing until a probe works", async () => {
    let failing = true;
    const watch = new DuplicateWatch({
      intervalMs: 10,
      probe: async () => (failing ? { occupied: false, failed: true, macs: [], detail: "probe failed: no arping" } : { occupied: false, macs: [], detail: "no answer" }),
      ownMac: async () => OWN,
      logger: silentLogger(),
    });
    const checks: DuplicateCheck[] = [];
    watch.onCheck((c) => checks.push(c));
    const states: string[] = [];
    watch.onStateChange((status) => states.push(status.state));
    expect(watch.status()).toEqual({ state: "idle", problem: null, lastCheckMsAgo: null });
    watch.setActive(true);
    await new Promise((r) => setTimeout(r, 80));
    expect(checks).toEqual([]);
    expect(watch.status()).toEqual({ state: "failing", problem: "the ARP probe failed: probe failed: no arping", lastCheckMsAgo: null });
    failing = false;
    await new Promise((r) => setTimeout(r, 80));
    const status = watch.status();
    expect(status.state).toBe("running");
    expect(status.problem).toBeNull();
    expect(status.lastCheckMsAgo).toBeGreaterThanOrEqual(0);
    expect(status.lastCheckMsAgo).toBeLessThan(1_000);
    expect(checks.length).toBeGreaterThan(0);
    watch.setActive(false);
    expect(watch.status()).toEqual({ state: "idle", problem: null, lastCheckMsAgo: null });
    expect(states, "each change of state told once").toEqual(["running", "failing", "running", "idle"]);
    watch.stop();
  });

  it("an own MAC that cannot be read is a failing check, named as such", async () => {
    const watch = new DuplicateWatch({ intervalMs: 10, probe: async () => ({ occupied: false, macs: [], detail: "" }), ownMac: async () => Promise.reject(new Error("ENOENT: /sys/class/net/eth9/address")), logger: silentLogger() });
    watch.setActive(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(watch.status()).toMatchObject({ state: "failing", problem: "own MAC unknown: ENOENT: /sys/class/net/eth9/address" });
    watch.stop();
  });

  it("interval 0 turns the check off", async () => {
    let probes = 0;
    const watch = new DuplicateWatch({ intervalMs: 0, probe: async () => ((probes += 1), { occupied: false, macs: [], detail: "" }), ownMac: async () => OWN, logger: silentLogger() });
    watch.setActive(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(watch.isActive()).toBe(false);
    expect(watch.status()).toEqual({ state: "disabled", problem: null, lastCheckMsAgo: null });
    expect(probes).toBe(0);
  });
});

// A holder asks from the interface that carries the VIP: only OTHER hosts' answers come back.
describe("the holder's probe and gratuitous ARP on a namespace segment", () => {
  const lab = new NetnsLab();
  let client = "";
  let hostB = "";
  let hostC = "";
  let macB = "";
  let macC = "";

  beforeAll(async () => {
    const sw = await lab.namespace("dup-sw");
    client = await lab.namespace("dup-a");
    hostB = await lab.namespace("dup-b");
    hostC = await lab.namespace("dup-c");
    await lab.bridge(sw, "br0");
    await lab.plug({ ns: client, iface: "dupa0", cidr: "10.251.2.2/24" }, sw, "br0", "qa");
    await lab.plug({ ns: hostB, iface: "dupb0", cidr: "10.251.2.3/24" }, sw, "br0", "qb");
    await lab.plug({ ns: hostC, iface: "dupc0", cidr: "10.251.2.4/24" }, sw, "br0", "qc");
    await lab.addAddress(hostB, "dupb0", "10.251.2.50/24");
    await lab.addAddress(hostC, "dupc0", "10.251.2.50/24");
    await lab.addAddress(hostB, "dupb0", "10.251.2.60/24");
    macB = await lab.mac(hostB, "dupb0");
    macC = await lab.mac(hostC, "dupc0");
  });
  afterAll(() => lab.cleanup());

  const guardOn = (ns: string, iface: string, vip: string) => new ArpGuard({ iface, vip, timeoutMs: 300, logger: silentLogger(), netns: ns });

  it("a holder's probe sees the other holder's MAC and never its own", async () => {
    const result = await guardOn(hostB, "dupb0", "10.251.2.50").probe();
    expect(result.failed).toBe(false);
    expect(result.macs).toEqual([macC]);
  });

  it("a lone holder's probe sees nobody", async () => {
    const result = await guardOn(hostB, "dupb0", "10.251.2.60").probe();
    expect(result).toMatchObject({ occupied: false, failed: false, macs: [] });
  });

  it("announce() points the neighbours' ARP entry for the VIP at the announcing holder", async () => {
    const neighbourMac = async (): Promise<string> => {
      const out = await run(["ip", "-n", client, "neigh", "show", "10.251.2.50", "dev", "dupa0"]);
      return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1] ?? "";
    };
    // The client learns some MAC for the VIP (whichever answered first).
    await run(["ip", "netns", "exec", client, "ping", "-c", "1", "-W", "1", "10.251.2.50"]).catch(() => undefined);
    expect([macB, macC]).toContain(await neighbourMac());
    expect(await guardOn(hostC, "dupc0", "10.251.2.50").announce()).toBe(true);
    expect(await neighbourMac()).toBe(macC);
    expect(await guardOn(hostB, "dupb0", "10.251.2.50").announce()).toBe(true);
    expect(await neighbourMac()).toBe(macB);
  });
});
