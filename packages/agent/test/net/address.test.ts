import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasAddress, listAddresses, parseIpv4Addresses, removeAddress } from "../../src/net/address.js";
import { inNetns, runCommand } from "../../src/net/command.js";
import { NetnsLab } from "./netns-lab.js";

describe("parseIpv4Addresses", () => {
  it("reads every inet entry of `ip -4 -o addr show`", () => {
    const output = [
      "2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever",
      "2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever",
    ].join("\n");
    expect(parseIpv4Addresses(output)).toEqual([
      { address: "10.0.0.11", prefix: 24 },
      { address: "10.0.0.100", prefix: 24 },
    ]);
    expect(parseIpv4Addresses("")).toEqual([]);
  });
});

describe("command helpers", () => {
  it("prefixes a command with ip netns exec, and refuses a bad namespace name", () => {
    expect(inNetns(["arping", "-h"], "mnha-ut-x")).toEqual(["ip", "netns", "exec", "mnha-ut-x", "arping", "-h"]);
    expect(inNetns(["arping"])).toEqual(["arping"]);
    expect(() => inNetns(["x"], "a b; rm")).toThrow(/not valid/);
  });

  it("reports a missing binary instead of throwing", async () => {
    const result = await runCommand(["/nonexistent/mnha-binary"]);
    expect(result.code).toBeNull();
    expect(result.error).toMatch(/ENOENT/);
  });
});

describe("hasAddress / removeAddress in a namespace", () => {
  const lab = new NetnsLab();
  let ns = "";

  beforeAll(async () => {
    ns = await lab.namespace("addr1");
    await lab.stub(ns, "mnha0", "10.251.2.2/24");
  });
  afterAll(() => lab.cleanup());

  it("sees an address, removes it, and then no longer sees it", async () => {
    await lab.addAddress(ns, "mnha0", "10.251.2.100/24");
    expect(await hasAddress("mnha0", "10.251.2.100", { netns: ns })).toBe(true);
    expect((await listAddresses("mnha0", { netns: ns })).map((a) => a.address)).toEqual(["10.251.2.2", "10.251.2.100"]);
    expect(await removeAddress("mnha0", "10.251.2.100", 24, { netns: ns })).toBe(true);
    expect(await hasAddress("mnha0", "10.251.2.100", { netns: ns })).toBe(false);
    expect(await lab.hasAddress(ns, "mnha0", "10.251.2.2")).toBe(true);
    // Removing an absent address is not an error.
    expect(await removeAddress("mnha0", "10.251.2.100", 24, { netns: ns })).toBe(false);
  });

  it("names the interface when it does not exist, and rejects bad arguments", async () => {
    await expect(hasAddress("nosuch0", "10.251.2.2", { netns: ns })).rejects.toThrow(/nosuch0/);
    await expect(hasAddress("eth0; rm -rf /", "10.251.2.2")).rejects.toThrow(/not valid/);
    await expect(hasAddress("mnha0", "10.251.2.300")).rejects.toThrow(/IPv4/);
  });
});
