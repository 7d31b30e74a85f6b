/**
 * The lab tests itself, without mnha: the analysis functions on known records; then the
 * topology, stand-ins, faults, samplers and teardown, with plain Keepalived standing in for
 * the agents. Plain Keepalived with the peer link cut gives two MASTERs: the ARP sampler
 * must report two MACs there, which proves that the "never two MACs" checks of the other
 * e2e files can fail.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "@mnha/shared";
import { analyze, type SamplerRecord } from "../lab/analysis.js";
import { parseArpingMacs } from "../lab/arp-probe.js";
import { heapFromMetrics, memorySplit, rssKb } from "../lab/bench-procstat.js";
import { HOSTS, LAB_PREFIX, LAB_STATE_DIR, MN_NODES, VIP_ADDRESS, nodePaths } from "../lab/constants.js";
import { run, runIn, sleep } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { startPlainKeepalived, stopPlainKeepalived } from "../lab/plain-keepalived.js";
import { readCmdline } from "../lab/procfs.js";
import { labNamespacesPresent } from "../lab/teardown.js";
import { hostAddresses, hostLinkUp } from "../lab/topology.js";
import { MIN_ARP_SAMPLES_PER_SECOND } from "./scenario.js";

describe("analysis of sampler records", () => {
  const http = (t: number, node: string | null) => ({ kind: "http" as const, t, ok: node !== null, node, latencyMs: 1 });
  const arp = (t: number, ...macs: string[]) => ({ kind: "arp" as const, t, macs, sent: 1, windowMs: 30, durationMs: 35 });
  /** An arping cut off by its window before it sent its request. */
  const notSent = (t: number) => ({ kind: "arp" as const, t, macs: [], sent: 0, windowMs: 30, durationMs: 48 });
  const mn1 = HOSTS.mn1.mac;
  const mn2 = HOSTS.mn2.mac;

  it("finds the first served request after a fault, the longest gap and the move", () => {
    const records: SamplerRecord[] = [http(0, "mn1"), http(50, "mn1"), http(100, null), http(150, null), http(400, "mn2"), http(450, "mn2")];
    const analysis = analyze(records, { faultAt: 90 });
    expect(analysis.http.ok).toBe(4);
    expect(analysis.http.longestGapMs).toBe(350);
    expect(analysis.http.moves).toEqual([{ from: "mn1", to: "mn2", at: 400 }]);
    expect(analysis.fault?.servedBefore).toBe("mn1");
    expect(analysis.fault?.firstServed).toEqual({ t: 400, node: "mn2", afterMs: 310 });
    expect(analysis.http.servedBy.map((s) => [s.node, s.samples])).toEqual([["mn1", 2], [null, 2], ["mn2", 2]]);
  });

  it("counts ARP samples with two MACs as split brain and names the nodes by MAC; a sample whose request never went out counts for nothing", () => {
    const records: SamplerRecord[] = [arp(0, mn1), arp(40, mn1, mn2), arp(80), notSent(100), arp(120, mn2), notSent(140), arp(160, mn2)];
    const analysis = analyze(records);
    expect(analysis.arp.splitBrain.map((s) => s.t)).toEqual([40]);
    expect(analysis.arp.unanswered).toBe(1);
    expect(analysis.arp.answeredBy.map((s) => s.node)).toEqual(["mn1", "mn1+mn2", null, "mn2"]);
    expect(analysis.arp.perSecond).toBe(25);
  });

  it("a window with no served request at all is one long gap", () => {
    const analysis = analyze([http(0, null), http(1000, null)], { from: 0, to: 1000 });
    expect(analysis.http.longestGapMs).toBe(1000);
    expect(analysis.http.moves).toEqual([]);
  });

  it("parses arping's replies, one entry per distinct MAC", () => {
    const output = "ARPING 10.250.77.100 from 10.250.77.50 eth0\nUnicast reply from 10.250.77.100 [02:4D:4E:48:41:0B]  0.5ms\nUnicast reply from 10.250.77.100 [02:4D:4E:48:41:0C]  0.6ms\nUnicast reply from 10.250.77.100 [02:4D:4E:48:41:0B]  0.7ms\n";
    expect(parseArpingMacs(output)).toEqual([mn1, mn2]);
  });
});

describe("process memory as the idle benchmark reads it", () => {
  it("splits a live process's RSS into private and shared pages, with PSS between them", () => {
    const split = memorySplit(process.pid);
    const rss = rssKb(process.pid);
    expect(split).not.toBeNull();
    expect(rss).not.toBeNull();
    if (split === null || rss === null) return;
    // Two reads of a running process: RSS from status and from smaps_rollup agree closely.
    expect(Math.abs(split.rssKb - rss)).toBeLessThan(rss * 0.2);
    expect(split.privateKb).toBeGreaterThan(0);
    expect(split.sharedKb).toBeGreaterThan(0);
    // PSS counts private pages whole and shared ones in part (libc's pages are mapped by every
    // process on the machine, so it is below RSS).
    expect(split.pssKb).toBeGreaterThanOrEqual(split.privateKb);
    expect(split.pssKb).toBeLessThan(split.rssKb);
  });

  it("reads the main thread's heap from an agent's metrics, and nothing when a figure is missing", () => {
    // As prom-client 15 writes it, with per-space samples whose names share the prefix; a
    // labelled sample of the same name, listed first, is another series and must not count.
    const exposition = [
      'nodejs_heap_size_used_bytes{thread="worker"} 1048576',
      "# HELP nodejs_heap_size_total_bytes Process heap size from Node.js in bytes.",
      "# TYPE nodejs_heap_size_total_bytes gauge",
      "nodejs_heap_size_total_bytes 25165824",
      "# TYPE nodejs_heap_size_used_bytes gauge",
      "nodejs_heap_size_used_bytes 20971520",
      "nodejs_external_memory_bytes 2097152",
      'nodejs_heap_space_size_used_bytes{space="old"} 4604040',
      'nodejs_heap_space_size_total_bytes{space="old"} 9999999',
    ].join("\n");
    expect(heapFromMetrics(exposition)).toEqual({ usedMb: 20, totalMb: 24, externalMb: 2 });
    expect(heapFromMetrics(exposition.replace(/^nodejs_external_memory_bytes .*$/m, ""))).toBeNull();
    expect(heapFromMetrics("not found: metrics are at /metrics\n")).toBeNull();
  });

  it("reads nothing for a process that is gone", () => {
    const gone = 2 ** 22 + 1; // above pid_max's ceiling: never a live pid
    expect(memorySplit(gone)).toBeNull();
    expect(rssKb(gone)).toBeNull();
  });
});

describe("the lab, with plain keepalived instead of mnha", () => {
  const lab = new Lab();
  let rootLinksBefore = "";

  const rootLinkNames = () =>
    execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
      .split("\n")
      .map((line) => line.split(":")[1]?.trim().split("@")[0] ?? "")
      .filter((name) => name.length > 0)
      .sort()
      .join(",");
  const ping = async (from: "mn1" | "mn2", to: string) => (await runIn(HOSTS[from].namespace, "ping", ["-c", "1", "-W", "1", to], { allowFailure: true })).code === 0;
  const arpingFrom = async (from: "mn1" | "mn2", to: string) =>
    (await runIn(HOSTS[from].namespace, "arping", ["-c", "1", "-w", "1", "-I", "eth0", to], { allowFailure: true })).stdout.includes("reply from");

  beforeAll(async () => {
    await lab.down();
    rootLinksBefore = rootLinkNames();
    await lab.up({ agents: false });
  });

  afterAll(async () => {
    await lab.down();
  });

  it("builds the topology inside namespaces only: addresses, fixed MACs, nothing in the host's network", async () => {
    expect((await labNamespacesPresent()).sort()).toEqual(["br", "client", "gw", "mn1", "mn2"].map((host) => `${LAB_PREFIX}-${host}`));
    for (const host of Object.values(HOSTS)) {
      expect(await hostAddresses(host.name)).toEqual([host.address]);
      const link = await run("ip", ["-n", host.namespace, "-j", "link", "show", "eth0"]);
      expect((JSON.parse(link.stdout) as { address: string }[])[0]?.address).toBe(host.mac);
    }
    expect(rootLinkNames()).toBe(rootLinksBefore);
    expect(await ping("mn1", HOSTS.mn2.address)).toBe(true);
    expect(await ping("mn2", HOSTS.gw.address)).toBe(true);
  });

  it("writes a valid config per node: shared 0600 secret, stand-in restore commands that work", async () => {
    const configs = MN_NODES.map((node) => loadConfig(nodePaths(node).config));
    expect(configs[0]?.secret).toBe(configs[1]?.secret);
    for (const node of MN_NODES) {
      const loaded = loadConfig(nodePaths(node).config);
      expect(loaded.config.node.name).toBe(node);
      expect(loaded.config.vip).toEqual({ address: VIP_ADDRESS, prefix: 24, interface: "eth0" });
      expect(loaded.config.services.map((s) => s.name)).toEqual(["mn", "ui", "db"]);
    }
    // The restore command, run as the agent would run it, brings a killed stand-in back.
    const restore = configs[0]?.config.services.find((s) => s.name === "db")?.restore?.command ?? [];
    await lab.killService("mn1", "db");
    expect(await lab.serviceListening("mn1", "db")).toBe(false);
    const [file, ...args] = restore;
    const started = Date.now();
    await run(file as string, args, { timeoutMs: 5_000 });
    expect(Date.now() - started).toBeLessThan(3_000);
    for (let i = 0; i < 50 && !(await lab.serviceListening("mn1", "db")); i++) await sleep(50);
    expect(await lab.serviceListening("mn1", "db")).toBe(true);
  });

  // The sampler aims at 20+ a second (25 at most); the self-test asserts the floor every
  // scenario relies on, as a loaded machine starves the sampler before anything else.
  it(`samplers see one holder's MAC and who served, at ${MIN_ARP_SAMPLES_PER_SECOND}+ ARP samples per second`, async () => {
    await startPlainKeepalived("mn1");
    await lab.waitForHolder("mn1", { timeoutMs: 10_000 });
    await startPlainKeepalived("mn2");
    await sleep(500);
    const sampler = lab.sampler("selftest-one-holder");
    await sampler.start();
    await sleep(2_000);
    const analysis = analyze(await sampler.stop());
    expect(analysis.arp.perSecond, "ARP samples per second").toBeGreaterThanOrEqual(MIN_ARP_SAMPLES_PER_SECOND);
    expect(analysis.arp.splitBrain).toEqual([]);
    expect(analysis.arp.answeredBy.map((s) => s.node)).toEqual(["mn1"]);
    expect(analysis.http.servedBy.map((s) => s.node)).toEqual(["mn1"]);
    expect(analysis.http.total).toBeGreaterThanOrEqual(30);
  });

  it("peer link cut: IP between the MNs drops, ARP flows, and plain keepalived's split brain is seen as two MACs", async () => {
    await lab.cutPeerLink();
    expect(await ping("mn1", HOSTS.mn2.address)).toBe(false);
    expect(await ping("mn2", HOSTS.mn1.address)).toBe(false);
    expect(await arpingFrom("mn1", HOSTS.mn2.address)).toBe(true);
    expect(await ping("mn1", HOSTS.gw.address)).toBe(true);
    expect(await ping("mn2", HOSTS.client.address)).toBe(true);
    const sampler = lab.sampler("selftest-split-brain");
    await sampler.start();
    await sleep(2_000);
    const analysis = analyze(await sampler.stop());
    expect(analysis.arp.splitBrain.length).toBeGreaterThan(analysis.arp.total / 2);
    expect(analysis.arp.splitBrain[0]?.macs.sort()).toEqual([HOSTS.mn1.mac, HOSTS.mn2.mac]);
    expect((await lab.holders()).sort()).toEqual(["mn1", "mn2"]);

    await lab.healPeerLink();
    expect(await ping("mn1", HOSTS.mn2.address)).toBe(true);
    await lab.waitForHolder(null, { timeoutMs: 10_000 });
  });

  it("gateway cut: the node loses the gateway (IP and ARP) and keeps its peer and the client", async () => {
    await lab.cutGateway("mn2");
    expect(await ping("mn2", HOSTS.gw.address)).toBe(false);
    expect(await arpingFrom("mn2", HOSTS.gw.address)).toBe(false);
    expect(await ping("mn2", HOSTS.mn1.address)).toBe(true);
    expect(await ping("mn2", HOSTS.client.address)).toBe(true);
    expect(await ping("mn1", HOSTS.gw.address)).toBe(true);
    expect((await lab.status()).nodes.find((n) => n.node === "mn2")?.faults.gatewayCut).toBe(true);
    await lab.healGateway("mn2");
    expect(await ping("mn2", HOSTS.gw.address)).toBe(true);
  });

  it("crash and boot: the wire goes, every process dies, a boot leaves no stale VIP", async () => {
    const holder = await lab.waitForHolder(null, { timeoutMs: 10_000 });
    const killed = await lab.crash(holder);
    expect(killed.length).toBeGreaterThanOrEqual(5); // three stand-ins, keepalived and its VRRP child
    expect(await hostLinkUp(holder)).toBe(false);
    expect(await lab.serviceListening(holder, "mn")).toBe(false);
    expect(await lab.keepalivedPids(holder)).toEqual([]);
    const survivor = holder === "mn1" ? "mn2" : "mn1";
    await lab.waitForHolder(survivor, { timeoutMs: 10_000 });
    await lab.boot(holder, { agent: false });
    expect(await hostLinkUp(holder)).toBe(true);
    expect(await hostAddresses(holder)).toEqual([HOSTS[holder].address]);
    expect(await lab.serviceListening(holder, "mn")).toBe(true);
    expect(await lab.holders()).toEqual([survivor]);
    await stopPlainKeepalived(survivor);
  });

  it("down removes every namespace, process and file, and a second down is a no-op", async () => {
    const pids = (await run("ip", ["netns", "pids", HOSTS.mn1.namespace])).stdout.trim().split("\n").filter((l) => l.length > 0);
    expect(pids.length).toBeGreaterThan(0);
    const report = await lab.down();
    expect(report.problems).toEqual([]);
    expect(report.namespacesRemoved.length).toBe(5);
    expect(await labNamespacesPresent()).toEqual([]);
    expect(existsSync(LAB_STATE_DIR)).toBe(false);
    // Gone, or a zombie waiting for init (no command line left).
    for (const pid of pids) expect(readCmdline(Number(pid))).toEqual([]);
    const again = await lab.down();
    expect(again).toEqual({ namespacesRemoved: [], processesKilled: 0, problems: [] });
    expect(rootLinkNames()).toBe(rootLinksBefore);
  });
});
