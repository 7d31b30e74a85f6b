/**
 * Plain Keepalived in the lab, without mnha: two unicast BACKUP/nopreempt instances, as a
 * vendor set-up runs them. The lab's self-test uses it to prove the samplers see a VIP, a
 * MAC and (after the peer link is cut) the split brain plain Keepalived runs into; a
 * benchmark can use it as the baseline.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { HOST_INTERFACE, HOSTS, LAB_STATE_DIR, SUBNET_PREFIX, VIP_ADDRESS, peerOf, type MnNode } from "./constants.js";
import { launchDetached } from "./launch.mjs";
import { namespacePids, readComm, signal, waitGone } from "./procfs.js";

export const PLAIN_KEEPALIVED_BINARY = "/usr/sbin/keepalived";

export function plainKeepalivedDir(node: MnNode): string {
  return `${LAB_STATE_DIR}/${node}/plain-keepalived`;
}

export function plainKeepalivedConfig(node: MnNode, options: { advertIntMs?: number; priority?: number } = {}): string {
  const self = HOSTS[node];
  const peer = HOSTS[peerOf(node)];
  const advert = ((options.advertIntMs ?? 100) / 1000).toFixed(2);
  return `# plain keepalived for the mnha lab (${node}); written by test/lab/plain-keepalived.ts
global_defs {
  router_id ${node}
  vrrp_version 3
  vrrp_garp_master_repeat 3
  script_user root
}
vrrp_instance lab_vip {
  state BACKUP
  nopreempt
  interface ${HOST_INTERFACE}
  virtual_router_id 77
  priority ${options.priority ?? (node === "mn1" ? 150 : 100)}
  advert_int ${advert}
  unicast_src_ip ${self.address}
  unicast_peer {
    ${peer.address}
  }
  virtual_ipaddress {
    ${VIP_ADDRESS}/${SUBNET_PREFIX} dev ${HOST_INTERFACE}
  }
}
`;
}

/** Starts plain keepalived (VRRP only, foreground, detached from us) in the node's namespace. */
export async function startPlainKeepalived(node: MnNode, options: { advertIntMs?: number; priority?: number } = {}): Promise<number> {
  const dir = plainKeepalivedDir(node);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const conf = `${dir}/keepalived.conf`;
  writeFileSync(conf, plainKeepalivedConfig(node, options), { mode: 0o600 });
  return launchDetached({
    namespace: HOSTS[node].namespace,
    argv: [
      PLAIN_KEEPALIVED_BINARY,
      "--dont-fork", "--log-console", "--log-detail", "--vrrp",
      "--use-file", conf,
      "--pid", `${dir}/keepalived.pid`,
      "--vrrp_pid", `${dir}/vrrp.pid`,
      "--checkers_pid", `${dir}/checkers.pid`,
    ],
    logFile: `${dir}/keepalived.log`,
    pidFile: `${dir}/launcher.pid`,
  });
}

/** SIGTERM (clean: keepalived removes the VIP) or SIGKILL every keepalived in the namespace. */
export async function stopPlainKeepalived(node: MnNode, sig: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<number[]> {
  const pids = (await namespacePids(HOSTS[node].namespace)).filter((pid) => readComm(pid) === "keepalived");
  for (const pid of pids) signal(pid, sig);
  await waitGone(pids, 5_000);
  return pids;
}
