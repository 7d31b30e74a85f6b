import { isIPv4 } from "node:net";
import type { NetworkInterfaceInfo } from "node:os";
import { MnhaError } from "@mnha/shared";
import { describeFailure, runCommand } from "./command.js";

/** Where to look: an interface, optionally inside a network namespace. */
export interface AddressOptions {
  netns?: string | undefined;
  /** The `ip` binary (default: `ip` from PATH). */
  ipCommand?: string;
  timeoutMs?: number;
}

export interface InterfaceAddress {
  address: string;
  prefix: number;
}

const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

function checkInterface(iface: string): void {
  if (!INTERFACE_NAME.test(iface)) {
    throw new MnhaError("INTERNAL", `interface name ${JSON.stringify(iface)} is not valid`, { hint: "use the interface's name as `ip link` shows it, such as eth0" });
  }
}

function checkArguments(iface: string, ip: string): void {
  checkInterface(iface);
  if (!isIPv4(ip)) throw new MnhaError("INTERNAL", `${JSON.stringify(ip)} is not an IPv4 address`, { hint: "pass an address such as 10.0.0.100" });
}

/** Parses `ip -4 -o addr show` output into the IPv4 addresses it lists. */
export function parseIpv4Addresses(output: string): InterfaceAddress[] {
  const found: InterfaceAddress[] = [];
  for (const match of output.matchAll(/\binet (\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})\b/g)) {
    const [, address, prefix] = match;
    if (address !== undefined && prefix !== undefined && isIPv4(address)) found.push({ address, prefix: Number(prefix) });
  }
  return found;
}

/** The IPv4 addresses on `iface` right now. Throws when `ip` fails (e.g. no such interface). */
export async function listAddresses(iface: string, options: AddressOptions = {}): Promise<InterfaceAddress[]> {
  checkInterface(iface);
  const argv = [options.ipCommand ?? "ip", "-4", "-o", "addr", "show", "dev", iface];
  const result = await runCommand(argv, { netns: options.netns, timeoutMs: options.timeoutMs ?? 3_000 });
  if (result.code !== 0) {
    throw new MnhaError("INTERNAL", `cannot list the addresses of ${iface}: ${describeFailure(argv, result)}`, {
      hint: `check that interface ${iface} exists (ip link show ${iface})`,
    });
  }
  return parseIpv4Addresses(result.stdout);
}

/**
 * Whether `ip` is on `iface`, from what os.networkInterfaces() (getifaddrs) listed: no process
 * forked. null when it cannot tell: that listing leaves out every interface that is not both
 * UP and RUNNING (libuv's filter), so an interface missing from it may still carry the
 * address; ask `ip` then. Addresses with a label (`eth0:vip`) are listed under the label.
 */
export function addressOnInterface(listed: NodeJS.Dict<NetworkInterfaceInfo[]> | null, iface: string, ip: string): boolean | null {
  if (listed === null) return null;
  let seen = false;
  for (const [name, entries] of Object.entries(listed)) {
    if (name !== iface && !name.startsWith(`${iface}:`)) continue;
    seen = true;
    if (entries?.some((entry) => entry.family === "IPv4" && entry.address === ip)) return true;
  }
  return seen ? false : null;
}

/** Whether `ip` is configured on `iface` (the kernel's view, not keepalived's). */
export async function hasAddress(iface: string, ip: string, options: AddressOptions = {}): Promise<boolean> {
  checkArguments(iface, ip);
  const addresses = await listAddresses(iface, options);
  return addresses.some((a) => a.address === ip);
}

/**
 * Removes `ip` from `iface` with the prefix it carries there (`ip addr del` matches both, and
 * an address added by hand may not carry the VIP's). Returns false when it was not there.
 */
export async function removeAddress(iface: string, ip: string, options: AddressOptions = {}): Promise<boolean> {
  checkArguments(iface, ip);
  const configured = (await listAddresses(iface, options)).find((a) => a.address === ip);
  if (configured === undefined) return false;
  const argv = [options.ipCommand ?? "ip", "-4", "addr", "del", `${ip}/${configured.prefix}`, "dev", iface];
  const result = await runCommand(argv, { netns: options.netns, timeoutMs: options.timeoutMs ?? 3_000 });
  if (result.code !== 0) {
    // It may have gone in between (keepalived finishing its own cleanup).
    if (!(await hasAddress(iface, ip, options))) return false;
    throw new MnhaError("INTERNAL", `cannot remove ${ip}/${configured.prefix} from ${iface}: ${describeFailure(argv, result)}`, {
      hint: `remove it by hand: ip addr del ${ip}/${configured.prefix} dev ${iface}`,
    });
  }
  return true;
}
