import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultKeepalivedPaths } from "../../src/keepalived/paths.js";
import { formatSeconds, keepalivedParamsFromConfig, renderKeepalivedConfig, type KeepalivedParams } from "../../src/keepalived/render.js";
import { runCommand } from "../../src/net/command.js";
import { NetnsLab } from "../net/netns-lab.js";
import { tempDataDir, testConfig } from "./helpers.js";

function params(overrides: Partial<KeepalivedParams> = {}): KeepalivedParams {
  const config = testConfig();
  return { ...keepalivedParamsFromConfig(config, defaultKeepalivedPaths(config)), ...overrides };
}

describe("renderKeepalivedConfig", () => {
  it("renders the decisive lines from the config", () => {
    const config = testConfig((c) => {
      c.keepalived = { virtualRouterId: 77, priority: 150, advertIntMs: 100, garpRepeat: 4 };
    });
    const paths = defaultKeepalivedPaths(config);
    const text = renderKeepalivedConfig(keepalivedParamsFromConfig(config, paths));
    const lines = text.split("\n").map((l) => l.trim());
    for (const expected of [
      "router_id mn-a",
      'notify_fifo "/var/lib/mnha/keepalived/notify.fifo" root',
      "vrrp_garp_master_repeat 4",
      "enable_script_security",
      "script_user root",
      'file "/var/lib/mnha/keepalived/gate"',
      'file "/var/lib/mnha/keepalived/lease"',
      "init_file 1 overwrite",
      "weight 0",
      "vrrp_instance mnha_vip {",
      "state BACKUP",
      "nopreempt",
      "interface mnha0",
      "virtual_router_id 77",
      "priority 150",
      "version 3",
      "advert_int 0.1",
      "down_timer_adverts 3",
      "unicast_src_ip 10.251.0.2",
      "10.251.0.3",
      "10.251.0.100/24 dev mnha0",
      "mnha_gate",
      "mnha_lease",
    ]) {
      expect(lines).toContain(expected);
    }
    expect(text).toMatch(/script "\/\S+\/scripts\/mnha-lease-check \/var\/lib\/mnha\/keepalived\/lease"/);
    expect(text).not.toMatch(/state MASTER|auth_pass|authentication|0123456789abcdef/);
    // Pure: the same input gives the same text.
    expect(renderKeepalivedConfig(keepalivedParamsFromConfig(config, paths))).toBe(text);
  });

  it("leaves the script lines out without a lease check", () => {
    const text = renderKeepalivedConfig(params({ leaseCheck: null }));
    expect(text).not.toMatch(/vrrp_script|track_script|enable_script_security/);
  });

  it("formats advert intervals as keepalived seconds", () => {
    expect(formatSeconds(100)).toBe("0.1");
    expect(formatSeconds(1000)).toBe("1");
    expect(formatSeconds(1250)).toBe("1.25");
    expect(formatSeconds(600)).toBe("0.6");
  });

  it.each([
    ["a router id with a space", { routerId: "mn a" }, /node\.name/],
    ["a router id that opens a block", { routerId: "x}" }, /node\.name/],
    ["an interface with a comment", { interface: "eth0#x" }, /vip\.interface/],
    ["an interface with whitespace", { interface: "eth0 dev" }, /vip\.interface/],
    ["a gate path with a quote", { gateFile: '/tmp/a"b' }, /gate file/],
    ["a fifo path with a space", { notifyFifo: "/tmp/a b" }, /notify fifo/],
    ["a relative lease path", { leaseFile: "lease" }, /lease file/],
    ["a path with ..", { gateFile: "/var/lib/../etc/shadow" }, /gate file/],
    ["a bad VIP", { vip: { address: "10.0.0.256", prefix: 24 } }, /vip\.address/],
    ["a bad prefix", { vip: { address: "10.0.0.5", prefix: 33 } }, /vip\.prefix/],
    ["a peer that is not an address", { peerAddresses: ["10.0.0.1 }"] }, /peers\[0\]/],
    ["no peers", { peerAddresses: [] }, /peers/],
    ["priority 255", { priority: 255 }, /priority/],
    ["an advert interval not in centiseconds", { advertIntMs: 105 }, /advertIntMs/],
    ["a router id with a substitution", { routerId: "$HOST" }, /node\.name/],
    ["a zero down timer", { downTimerAdverts: 0 }, /down timer/],
  ])("rejects %s", (_what, overrides, field) => {
    expect(() => renderKeepalivedConfig(params(overrides as Partial<KeepalivedParams>))).toThrow(field);
    try {
      renderKeepalivedConfig(params(overrides as Partial<KeepalivedParams>));
    } catch (error) {
      expect((error as { code: string }).code).toBe("KEEPALIVED_CONFIG");
      expect((error as { hint?: string }).hint).toBeTruthy();
    }
  });
});

// `keepalived -t` needs the interface to exist, so it runs in a namespace that has one.
describe("the rendered config passes keepalived -t", () => {
  const lab = new NetnsLab();
  let ns = "";
  const dir = tempDataDir("render");

  beforeAll(async () => {
    ns = await lab.namespace("rt1");
    await lab.stub(ns, "mnha0", "10.251.0.2/24");
  });
  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function check(text: string): Promise<{ code: number | null; output: string }> {
    const file = join(dir, "keepalived.conf");
    writeFileSync(file, text);
    const result = await runCommand(["/usr/sbin/keepalived", "-t", "-f", file], { netns: ns, timeoutMs: 10_000 });
    return { code: result.code, output: result.stderr + result.stdout };
  }

  it("accepts the config with and without the lease check script", async () => {
    const config = testConfig((c) => {
      c.dataDir = dir;
    });
    const paths = defaultKeepalivedPaths(config);
    for (const leaseCheck of [true, false]) {
      const result = await check(renderKeepalivedConfig(keepalivedParamsFromConfig(config, paths, { leaseCheck })));
      expect(result.output).toBe("");
      expect(result.code).toBe(0);
    }
  });

  it("really fails (so the check above means something) for a missing interface", async () => {
    const result = await check(renderKeepalivedConfig(params({ interface: "nosuch0" })));
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/nosuch0/);
  });
});
