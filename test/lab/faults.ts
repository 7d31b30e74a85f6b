/**
 * Network faults made with nftables: the peer-link cut inside the MN namespaces, the
 * gateway cut on the bridge. Each fault is one table, so faults are applied and healed
 * independently and atomically (`nft -f`).
 */
import { BRIDGE_NAMESPACE, HOSTS, NFT_TABLE_GATEWAY, NFT_TABLE_PEER, peerOf, type MnNode } from "./constants.js";
import { run, runIn } from "./exec.js";

/** Replaces (or creates) a table atomically: declare, delete, define in one transaction. */
function replaceTable(family: string, table: string, body: string): string {
  return `table ${family} ${table} {}\ndelete table ${family} ${table}\ntable ${family} ${table} {\n${body}\n}\n`;
}

async function loadRuleset(node: MnNode, ruleset: string): Promise<void> {
  await run("ip", ["netns", "exec", HOSTS[node].namespace, "nft", "-f", "-"], { input: ruleset });
}

async function deleteTable(node: MnNode, family: string, table: string): Promise<void> {
  if (await tablePresent(node, family, table)) await runIn(HOSTS[node].namespace, "nft", ["delete", "table", family, table]);
}

export function tablePresent(node: MnNode, family: string, table: string): Promise<boolean> {
  return tablePresentIn(HOSTS[node].namespace, family, table);
}

async function tablePresentIn(namespace: string, family: string, table: string): Promise<boolean> {
  const listed = await runIn(namespace, "nft", ["list", "tables", family], { allowFailure: true });
  return listed.stdout.split("\n").some((line) => line.trim() === `table ${family} ${table}`);
}

/**
 * Drops every IP packet between mn1 and mn2 (unicast, and multicast sent by the peer such as
 * VRRP adverts) in both MN namespaces. ARP still flows; the gateway and the client are not
 * affected. This is the "peer link down, peer alive" case.
 */
export async function cutPeerLink(): Promise<void> {
  for (const node of ["mn1", "mn2"] as const) {
    const peerAddress = HOSTS[peerOf(node)].address;
    const body = [
      `  chain input { type filter hook input priority -10; policy accept; ip saddr ${peerAddress} drop; }`,
      `  chain output { type filter hook output priority -10; policy accept; ip daddr ${peerAddress} drop; }`,
    ].join("\n");
    await loadRuleset(node, replaceTable("inet", NFT_TABLE_PEER, body));
  }
}

/**
 * One-way loss: every IP packet from `from` to its peer is dropped (in `from`'s output
 * hook), the other direction flows. The same table as the full cut, so `healPeerLink` (and
 * a reboot) heal it too.
 */
export async function dropPeerTrafficFrom(from: MnNode): Promise<void> {
  const peerAddress = HOSTS[peerOf(from)].address;
  const body = `  chain output { type filter hook output priority -10; policy accept; ip daddr ${peerAddress} drop; }`;
  await loadRuleset(from, replaceTable("inet", NFT_TABLE_PEER, body));
}

export async function healPeerLink(): Promise<void> {
  for (const node of ["mn1", "mn2"] as const) await deleteTable(node, "inet", NFT_TABLE_PEER);
}

/** Name of the bridge-namespace table that cuts one node off the gateway. */
export function gatewayCutTable(node: MnNode): string {
  return `${NFT_TABLE_GATEWAY}_${node}`;
}

/**
 * The node can no longer reach the gateway: the bridge stops forwarding frames between the
 * node's port and the gateway's port, in both directions. Cut at layer 2 (bridge family, in
 * the bridge namespace), so ICMP, ARP and raw packet sockets such as arping all lose the
 * gateway, while the peer and the client are still reachable.
 */
export async function cutGateway(node: MnNode): Promise<void> {
  const nodePort = HOSTS[node].bridgePort;
  const gatewayPort = HOSTS.gw.bridgePort;
  const body = `  chain forward { type filter hook forward priority -10; policy accept; iifname "${nodePort}" oifname "${gatewayPort}" drop; iifname "${gatewayPort}" oifname "${nodePort}" drop; }`;
  await run("ip", ["netns", "exec", BRIDGE_NAMESPACE, "nft", "-f", "-"], { input: replaceTable("bridge", gatewayCutTable(node), body) });
}

export async function healGateway(node: MnNode): Promise<void> {
  if (await tablePresentIn(BRIDGE_NAMESPACE, "bridge", gatewayCutTable(node))) {
    await runIn(BRIDGE_NAMESPACE, "nft", ["delete", "table", "bridge", gatewayCutTable(node)]);
  }
}

/** What a reboot does to the node's own firewall: its lab tables are gone (a cut wire to the gateway stays cut). */
export async function clearNodeFaults(node: MnNode): Promise<void> {
  await deleteTable(node, "inet", NFT_TABLE_PEER);
}

export interface NodeFaults {
  peerLinkCut: boolean;
  gatewayCut: boolean;
}

export async function nodeFaults(node: MnNode): Promise<NodeFaults> {
  return { peerLinkCut: await tablePresent(node, "inet", NFT_TABLE_PEER), gatewayCut: await tablePresentIn(BRIDGE_NAMESPACE, "bridge", gatewayCutTable(node)) };
}
