import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { networkInterfaces } from "node:os";
import { addressOnInterface, hasAddress, listAddresses, parseIpv4Addresses, removeAddress } from "../../src/net/address.js";
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

describe("addressOnInterface (os.networkInterfaces, no fork)", () => {
  const v4 = (address: string) => ({ address, netmask: "255.255.255.0", family: "IPv4" as const, mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/24` });
  const v6 = (address: string) => ({ address, netmask: "ffff:ffff:ffff:ffff::", family: "IPv6" as const, mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/64`, scopeid: 2 });

  it("finds the address on the interface or under one of its labels", () => {
    expect(addressOnInterface({ eth0: [v4("10.0.0.11"), v4("10.0.0.100")] }, "eth0", "10.0.0.100")).toBe(true);
    expect(addressOnInterface({ eth0: [v4("10.0.0.11")], "eth0:vip": [v4("10.0.0.100")] }, "eth0", "10.0.0.100")).toBe(true);
  });

  it("says absent only when the interface itself is listed", () => {
    expect(addressOnInterface({ eth0: [v4("10.0.0.11"), v6("fe80::1")] }, "eth0", "10.0.0.100")).toBe(false);
    // On another interface, or an IPv6 entry: not on this one.
    expect(addressOnInterface({ eth0: [v4("10.0.0.11")], eth1: [v4("10.0.0.100")] }, "eth0", "10.0.0.100")).toBe(false);
    expect(addressOnInterface({ eth10: [v4("10.0.0.100")] }, "eth1", "10.0.0.100")).toBeNull();
  });

  it("cannot tell (null) when the interface is not listed (down, not running) or the listing failed", () => {
    expect(addressOnInterface({ lo: [v4("127.0.0.1")] }, "eth0", "10.0.0.100")).toBeNull();
    expect(addressOnInterface(null, "eth0", "10.0.0.100")).toBeNull();
  });

  it("agrees with `ip addr` on this machine's loopback", async () => {
    const listed = addressOnInterface(networkInterfaces(), "lo", "127.0.0.1");
    expect(listed).toBe(true);
    expect(await hasAddress("lo", "127.0.0.1")).toBe(listed);
    expect(addressOnInterface(networkInterfaces(), "lo", "127.0.0.2")).toBe(await hasAddress("lo", "127.0.0.2"));
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
    expect(await removeAddress("mnha0", "10.251.2.100", { netns: ns })).toBe(true);
    expect(await hasAddress("mnha0", "10.251.2.100", { netns: ns })).toBe(false);
    expect(await lab.hasAddress(ns, "mnha0", "10.251.2.2")).toBe(true);
    // Removing an absent address is not an error.
    expect(await removeAddress("mnha0", "10.251.2.100", { netns: ns })).toBe(false);
  });

  it("removes the address with the prefix it carries there (added by hand as /32, not the VIP's /24)", async () => {
    await lab.addAddress(ns, "mnha0", "10.251.2.101/32");
    expect(await removeAddress("mnha0", "10.251.2.101", { netns: ns })).toBe(true);
    expect(await hasAddress("mnha0", "10.251.2.101", { netns: ns })).toBe(false);
    expect(await lab.hasAddress(ns, "mnha0", "10.251.2.2")).toBe(true);
  });

  it("names the interface when it does not exist, and rejects bad arguments", async () => {
    await expect(hasAddress("nosuch0", "10.251.2.2", { netns: ns })).rejects.toThrow(/nosuch0/);
    await expect(hasAddress("eth0; rm -rf /", "10.251.2.2")).rejects.toThrow(/not valid/);
    await expect(hasAddress("mnha0", "10.251.2.300")).rejects.toThrow(/IPv4/);
  });
});
