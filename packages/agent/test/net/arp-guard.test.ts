import { silentLogger } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArpGuard, parseArpingReplies, resolveArping } from "../../src/net/arp-guard.js";
import { NetnsLab } from "./netns-lab.js";

describe("parseArpingReplies", () => {
  it("collects each distinct MAC that answered for the VIP", () => {
    const output = [
      "ARPING 10.0.0.100 from 0.0.0.0 eth0",
      "Unicast reply from 10.0.0.100 [7A:D3:7E:68:C3:FB]  0.577ms",
      "Unicast reply from 10.0.0.100 [5A:71:26:A0:C6:B9]  0.601ms",
      "Unicast reply from 10.0.0.100 [7A:D3:7E:68:C3:FB]  0.577ms",
      "Unicast reply from 10.0.0.9 [11:22:33:44:55:66]  0.5ms",
      "Sent 1 probes (1 broadcast(s))",
      "Received 3 response(s)",
    ].join("\n");
    expect(parseArpingReplies(output, "10.0.0.100")).toEqual(["7a:d3:7e:68:c3:fb", "5a:71:26:a0:c6:b9"]);
    expect(parseArpingReplies("Sent 1 probes\nReceived 0 response(s)\n", "10.0.0.100")).toEqual([]);
  });
});

describe("resolveArping", () => {
  it("falls back between the two usual locations, and keeps any other path as configured", () => {
    const installed = ["/usr/sbin/arping", "/usr/bin/arping"].find((c) => existsSync(c));
    expect(installed).toBeDefined();
    expect(resolveArping("/usr/sbin/arping")).toBe(installed);
    expect(resolveArping("/usr/bin/arping")).toBe(installed);
    expect(resolveArping(undefined)).toBe(installed);
    expect(resolveArping("/opt/tools/arping")).toBe("/opt/tools/arping");
  });
});

// Four namespaces on one bridge: the prober, two hosts, and the switch.
describe("ArpGuard's arping runs in the C locale", () => {
  it("an arping that translates its output (as builds with gettext do) is still understood: answers are not read as a free address", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-arping-"));
    try {
      // Says the reply in English only in the C locale, as a translated arping would.
      const fake = join(dir, "arping");
      writeFileSync(fake, '#!/bin/sh\nif [ "$LC_ALL" = C ]; then echo "Unicast reply from 10.0.0.100 [02:00:00:00:00:0a]  0.5ms"; else echo "来自 10.0.0.100 [02:00:00:00:00:0a] 的单播回复  0.5ms"; fi\nexit 0\n', { mode: 0o755 });
      const before = process.env["LC_ALL"];
      process.env["LC_ALL"] = "zh_CN.UTF-8";
      try {
        const result = await new ArpGuard({ iface: "eth0", vip: "10.0.0.100", timeoutMs: 500, logger: silentLogger(), command: fake }).probe();
        expect(result).toMatchObject({ occupied: true, macs: ["02:00:00:00:00:0a"], failed: false });
      } finally {
        if (before === undefined) delete process.env["LC_ALL"];
        else process.env["LC_ALL"] = before;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ArpGuard on a namespace segment", () => {
  const lab = new NetnsLab();
  let prober = "";
  let hostB = "";
  let hostC = "";
  let macB = "";
  let macC = "";

  beforeAll(async () => {
    const sw = await lab.namespace("arp-sw");
    prober = await lab.namespace("arp-a");
    hostB = await lab.namespace("arp-b");
    hostC = await lab.namespace("arp-c");
    await lab.bridge(sw, "br0");
    await lab.plug({ ns: prober, iface: "arpa0", cidr: "10.251.1.2/24" }, sw, "br0", "pa");
    await lab.plug({ ns: hostB, iface: "arpb0", cidr: "10.251.1.3/24" }, sw, "br0", "pb");
    await lab.plug({ ns: hostC, iface: "arpc0", cidr: "10.251.1.4/24" }, sw, "br0", "pc");
    // Both B and C claim .50: the split-brain a client must never see.
    await lab.addAddress(hostB, "arpb0", "10.251.1.50/24");
    await lab.addAddress(hostC, "arpc0", "10.251.1.50/24");
    macB = await lab.mac(hostB, "arpb0");
    macC = await lab.mac(hostC, "arpc0");
  });
  afterAll(() => lab.cleanup());

  const guard = (vip: string, timeoutMs = 300, iface = "arpa0") => new ArpGuard({ iface, vip, timeoutMs, logger: silentLogger(), netns: prober });

  it("finds the holder of an address, with its MAC, well before the timeout", async () => {
    const result = await guard("10.251.1.3", 1_000).probe();
    expect(result.occupied).toBe(true);
    expect(result.macs).toEqual([macB]);
    expect(result.failed).toBe(false);
    expect(result.elapsedMs).toBeLessThan(900);
    expect(result.detail).toContain(macB);
  });

  it("reports both MACs when two hosts answer for the same address", async () => {
    const result = await guard("10.251.1.50").probe();
    expect(result.occupied).toBe(true);
    expect([...result.macs].sort()).toEqual([macB, macC].sort());
  });

  it("says a free address is free, within the timeout plus slack", async () => {
    const started = performance.now();
    const result = await guard("10.251.1.99", 300).probe();
    const elapsed = performance.now() - started;
    expect(result).toMatchObject({ occupied: false, macs: [], failed: false });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(300 + 700);
  });

  it("reports a failed probe (no such interface) as failed, not as occupied", async () => {
    const result = await guard("10.251.1.3", 300, "nosuch0").probe();
    expect(result.occupied).toBe(false);
    expect(result.failed).toBe(true);
    expect(result.detail).toMatch(/probe failed/);
  });

  it("rejects bad constructor values", () => {
    expect(() => new ArpGuard({ iface: "eth0 x", vip: "10.0.0.1", timeoutMs: 300, logger: silentLogger() })).toThrow(/interface/);
    expect(() => new ArpGuard({ iface: "eth0", vip: "10.0.0.256", timeoutMs: 300, logger: silentLogger() })).toThrow(/IPv4/);
  });
});
