/**
 * The lab's network: a namespace holding only a bridge, and one namespace per host (mn1,
 * mn2, gateway, client) joined to it by a veth pair whose host end is `eth0`. Every
 * interface is created directly inside a lab namespace, so the machine's own network never
 * sees one.
 */
import { MnhaError } from "@mnha/shared";
import {
  BRIDGE_NAME,
  BRIDGE_NAMESPACE,
  HOST_INTERFACE,
  HOST_NAMES,
  HOSTS,
  LAB_NAMESPACES,
  SUBNET_PREFIX,
  VIP_ADDRESS,
  type HostName,
  type MnNode,
} from "./constants.js";
import { run } from "./exec.js";
import { labNamespacesPresent } from "./teardown.js";

function ipIn(namespace: string, args: string[]) {
  return run("ip", ["-n", namespace, ...args]);
}

export async function createTopology(): Promise<void> {
  const present = await labNamespacesPresent();
  if (present.length > 0) {
    throw new MnhaError("USAGE", `the lab is already (partly) up: namespaces ${present.join(", ")} exist`, { hint: "run `pnpm lab down` first" });
  }
  for (const namespace of LAB_NAMESPACES) await run("ip", ["netns", "add", namespace]);
  // Multicast snooping off: VRRP adverts and ARP must reach every port as on a plain switch.
  await ipIn(BRIDGE_NAMESPACE, ["link", "add", BRIDGE_NAME, "type", "bridge", "mcast_snooping", "0", "stp_state", "0"]);
  await ipIn(BRIDGE_NAMESPACE, ["link", "set", BRIDGE_NAME, "up"]);
  await ipIn(BRIDGE_NAMESPACE, ["link", "set", "lo", "up"]);
  for (const name of HOST_NAMES) {
    const host = HOSTS[name];
    await ipIn(BRIDGE_NAMESPACE, ["link", "add", host.bridgePort, "type", "veth", "peer", "name", HOST_INTERFACE, "netns", host.namespace]);
    await ipIn(BRIDGE_NAMESPACE, ["link", "set", host.bridgePort, "master", BRIDGE_NAME, "up"]);
    await ipIn(host.namespace, ["link", "set", "lo", "up"]);
    await ipIn(host.namespace, ["link", "set", HOST_INTERFACE, "address", host.mac]);
    await ipIn(host.namespace, ["address", "add", `${host.address}/${SUBNET_PREFIX}`, "dev", HOST_INTERFACE]);
    await ipIn(host.namespace, ["link", "set", HOST_INTERFACE, "up"]);
  }
}

/** Cuts (or restores) a host's wire: the veth end on the bridge goes down (up). */
export async function setHostLink(host: HostName, up: boolean): Promise<void> {
  await ipIn(BRIDGE_NAMESPACE, ["link", "set", HOSTS[host].bridgePort, up ? "up" : "down"]);
}

/**
 * What a reboot does to a host's interface: only the configured address remains (a VIP that
 * keepalived added is gone), the interface is up.
 */
export async function resetHostInterface(host: HostName): Promise<void> {
  const spec = HOSTS[host];
  await ipIn(spec.namespace, ["address", "flush", "dev", HOST_INTERFACE]);
  await ipIn(spec.namespace, ["address", "add", `${spec.address}/${SUBNET_PREFIX}`, "dev", HOST_INTERFACE]);
  await ipIn(spec.namespace, ["link", "set", HOST_INTERFACE, "up"]);
  await ipIn(spec.namespace, ["link", "set", "lo", "up"]);
}

/** IPv4 addresses on a host's eth0 right now. */
export async function hostAddresses(host: HostName): Promise<string[]> {
  const result = await run("ip", ["-n", HOSTS[host].namespace, "-j", "-4", "address", "show", "dev", HOST_INTERFACE], { allowFailure: true });
  if (result.code !== 0) return [];
  try {
    const parsed = JSON.parse(result.stdout) as { addr_info?: { local?: string }[] }[];
    return parsed.flatMap((link) => (link.addr_info ?? []).map((a) => a.local ?? "")).filter((a) => a.length > 0);
  } catch {
    return [];
  }
}

/** The MNs that have the VIP on their eth0 (more than one is split brain). */
export async function vipHolders(nodes: readonly MnNode[] = ["mn1", "mn2"]): Promise<MnNode[]> {
  const holders: MnNode[] = [];
  for (const node of nodes) if ((await hostAddresses(node)).includes(VIP_ADDRESS)) holders.push(node);
  return holders;
}

/** Whether the host's wire is connected (the bridge-side veth end is up). */
export async function hostLinkUp(host: HostName): Promise<boolean> {
  const result = await run("ip", ["-n", BRIDGE_NAMESPACE, "-j", "link", "show", HOSTS[host].bridgePort], { allowFailure: true });
  try {
    const parsed = JSON.parse(result.stdout) as { flags?: string[] }[];
    return parsed[0]?.flags?.includes("UP") ?? false;
  } catch {
    return false;
  }
}
