/**
 * Plain Keepalived in the lab, without mnha: two unicast BACKUP/nopreempt instances, as a
 * vendor set-up runs them. The lab's self-test uses it to prove the samplers see a VIP, a
 * MAC and (after the peer link is cut) the split brain plain Keepalived runs into; a
 * benchmark can use it as the baseline.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

// ---------------------------------------------------------------- baselines for the benchmarks

/** A plain Keepalived set-up to compare mnha with: VRRP timing and a check of the MN service. */
export interface PlainKeepalivedProfile {
  /** Short name for reports, such as "keepalived-fast". */
  name: string;
  vrrpVersion: 2 | 3;
  /** Seconds between adverts (VRRPv2: whole seconds; VRRPv3: down to 0.01). */
  advertIntS: number;
  /**
   * A track_script that asks the MN service over HTTP (curl), weight 0: when it fails,
   * the instance goes to FAULT and a master gives the VIP up (with nopreempt, a weighted
   * priority drop would move nothing). Keepalived's script interval is whole seconds, 1 at least.
   */
  serviceCheck?: { intervalS: number; timeoutS: number; fall: number; rise: number };
}

/** As operators commonly run it: VRRPv2, 1 s adverts, the MN service checked every 2 s, fall 2. */
export const PLAIN_KEEPALIVED_COMMON: PlainKeepalivedProfile = {
  name: "keepalived-common",
  vrrpVersion: 2,
  advertIntS: 1,
  serviceCheck: { intervalS: 2, timeoutS: 1, fall: 2, rise: 2 },
};

/** Tuned for speed, as far as keepalived goes: VRRPv3 0.1 s adverts, the check every 1 s, fall 1. */
export const PLAIN_KEEPALIVED_FAST: PlainKeepalivedProfile = {
  name: "keepalived-fast",
  vrrpVersion: 3,
  advertIntS: 0.1,
  serviceCheck: { intervalS: 1, timeoutS: 1, fall: 1, rise: 1 },
};

export const CURL_BINARY = "/usr/bin/curl";
/** The MN service's port on every MN (the stand-in "mn"). */
const MN_SERVICE_PORT = 8080;

export function plainKeepalivedProfileConfig(node: MnNode, profile: PlainKeepalivedProfile, options: { priority?: number } = {}): string {
  const self = HOSTS[node];
  const peer = HOSTS[peerOf(node)];
  const check = profile.serviceCheck;
  const script = check
    ? `vrrp_script chk_mn {
  script "${CURL_BINARY} -sf -o /dev/null -m ${check.timeoutS} http://127.0.0.1:${MN_SERVICE_PORT}/"
  interval ${check.intervalS}
  timeout ${check.timeoutS + 1}
  fall ${check.fall}
  rise ${check.rise}
  weight 0
}
`
    : "";
  return `# plain keepalived (${profile.name}) for the mnha lab (${node}); written by test/lab/plain-keepalived.ts
global_defs {
  router_id ${node}
  vrrp_version ${profile.vrrpVersion}
  vrrp_garp_master_repeat 3
  enable_script_security
  script_user root
}
${script}vrrp_instance lab_vip {
  state BACKUP
  nopreempt
  interface ${HOST_INTERFACE}
  virtual_router_id 77
  priority ${options.priority ?? (node === "mn1" ? 150 : 100)}
  advert_int ${profile.advertIntS}
  unicast_src_ip ${self.address}
  unicast_peer {
    ${peer.address}
  }
  virtual_ipaddress {
    ${VIP_ADDRESS}/${SUBNET_PREFIX} dev ${HOST_INTERFACE}
  }${check ? "\n  track_script {\n    chk_mn\n  }" : ""}
}
`;
}

export function plainKeepalivedLog(node: MnNode): string {
  return `${plainKeepalivedDir(node)}/keepalived.log`;
}

/** Starts plain keepalived with a profile; its log starts empty, so its state lines are this instance's. */
export async function startPlainKeepalivedProfile(node: MnNode, profile: PlainKeepalivedProfile): Promise<number> {
  const dir = plainKeepalivedDir(node);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const conf = `${dir}/keepalived.conf`;
  writeFileSync(conf, plainKeepalivedProfileConfig(node, profile), { mode: 0o600 });
  rmSync(plainKeepalivedLog(node), { force: true });
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
    logFile: plainKeepalivedLog(node),
    pidFile: `${dir}/launcher.pid`,
  });
}

export type VrrpState = "INIT" | "BACKUP" | "MASTER" | "FAULT" | "STOP";

/** The VRRP state the node's plain keepalived last logged ("Entering X STATE"), null if none. */
export function plainKeepalivedState(node: MnNode): VrrpState | null {
  let text: string;
  try {
    text = readFileSync(plainKeepalivedLog(node), "utf8");
  } catch {
    return null;
  }
  const states = [...text.matchAll(/Entering (INIT|BACKUP|MASTER|FAULT|STOP) STATE/g)];
  return (states[states.length - 1]?.[1] as VrrpState | undefined) ?? null;
}
