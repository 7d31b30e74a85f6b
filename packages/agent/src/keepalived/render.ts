import { isIPv4 } from "node:net";
import { MnhaError, type MnhaConfig } from "@mnha/shared";
import type { KeepalivedPaths } from "./paths.js";

/** Everything keepalived.conf is made of. Built from the config by keepalivedParamsFromConfig. */
export interface KeepalivedParams {
  /** global_defs router_id: this node's name. */
  routerId: string;
  /** The vrrp_instance name; notify_fifo lines carry it. */
  instanceName: string;
  interface: string;
  virtualRouterId: number;
  priority: number;
  /** VRRPv3 advert interval in ms (a multiple of 10). */
  advertIntMs: number;
  /**
   * Master-down timer in advert intervals (RFC: 3). It only runs on a node whose gate is
   * open, i.e. the node the agent has elected, so waiting three intervals buys nothing.
   */
  downTimerAdverts: number;
  /** This node's address: the unicast source. */
  sourceAddress: string;
  /** The peer's address(es): unicast destinations and the only accepted sources. */
  peerAddresses: string[];
  vip: { address: string; prefix: number };
  gateFile: string;
  leaseFile: string;
  notifyFifo: string;
  /** Gratuitous ARPs sent on becoming MASTER (and again one second later). */
  garpRepeat: number;
  /** Belt-and-braces vrrp_script (whole-second interval); null leaves it out. */
  leaseCheck: { script: string; leaseFile: string; intervalSeconds: number; fall: number } | null;
}

export const INSTANCE_NAME = "mnha_vip";
const GATE_TRACK = "mnha_gate";
const LEASE_TRACK = "mnha_lease";
const LEASE_SCRIPT = "mnha_lease_check";

// Values are interpolated into keepalived's config language, where whitespace separates
// words, '#' and '!' start comments, braces open blocks, quotes group words and '$' and
// '@' start substitutions. Only characters with none of those meanings get through.
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SAFE_INTERFACE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$/;
const SAFE_PATH = /^\/[A-Za-z0-9_.+/-]{1,1000}$/;

function invalid(field: string, value: unknown, expected: string, hint: string): never {
  throw new MnhaError("KEEPALIVED_CONFIG", `cannot render keepalived.conf: ${field} ${JSON.stringify(value)} is not ${expected}`, { hint, fields: { field } });
}

function checkName(field: string, value: string): string {
  if (!SAFE_NAME.test(value)) invalid(field, value, "a name of letters, digits, '.', '_' or '-'", `fix ${field} in the config`);
  return value;
}

function checkPath(field: string, value: string): string {
  if (!SAFE_PATH.test(value) || value.split("/").includes("..")) {
    invalid(field, value, "an absolute path of letters, digits, '.', '_', '+', '-' and '/'", "choose a dataDir (and keepalived.configPath) without spaces, quotes or other special characters");
  }
  return value;
}

function checkIpv4(field: string, value: string): string {
  if (!isIPv4(value)) invalid(field, value, "an IPv4 address", `fix ${field} in the config`);
  return value;
}

function checkInt(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) invalid(field, value, `an integer from ${min} to ${max}`, `fix ${field} in the config`);
  return value;
}

/** Milliseconds as keepalived's decimal seconds: 100 -> "0.1", 1000 -> "1", 1250 -> "1.25". */
export function formatSeconds(ms: number): string {
  return (ms / 1000).toFixed(3).replace(/\.?0+$/, "");
}

/**
 * Renders keepalived.conf. Pure: the same params always give the same text. Every
 * interpolated value is validated first; a bad one throws KEEPALIVED_CONFIG, so nothing
 * can inject keepalived syntax. VRRPv3 has no authentication, so the file holds no secret.
 */
export function renderKeepalivedConfig(p: KeepalivedParams): string {
  const routerId = checkName("node.name", p.routerId);
  const instance = checkName("instance name", p.instanceName);
  if (!SAFE_INTERFACE.test(p.interface)) invalid("vip.interface", p.interface, "an interface name such as eth0", "fix vip.interface in the config");
  const vrid = checkInt("keepalived.virtualRouterId", p.virtualRouterId, 1, 255);
  const priority = checkInt("keepalived.priority", p.priority, 1, 254);
  const advertIntMs = checkInt("keepalived.advertIntMs", p.advertIntMs, 10, 40_950);
  if (advertIntMs % 10 !== 0) invalid("keepalived.advertIntMs", advertIntMs, "a multiple of 10 ms", "VRRPv3 counts in centiseconds: use 100, 200, ...");
  const source = checkIpv4("node.address", p.sourceAddress);
  if (p.peerAddresses.length === 0) invalid("peers", p.peerAddresses, "a list with at least one peer address", "configure the peer node under peers");
  const peers = p.peerAddresses.map((a, i) => checkIpv4(`peers[${i}].address`, a));
  const vip = checkIpv4("vip.address", p.vip.address);
  const prefix = checkInt("vip.prefix", p.vip.prefix, 1, 32);
  const gateFile = checkPath("gate file", p.gateFile);
  const leaseFile = checkPath("lease file", p.leaseFile);
  const fifo = checkPath("notify fifo", p.notifyFifo);
  const garpRepeat = checkInt("keepalived.garpRepeat", p.garpRepeat, 1, 100);
  const downTimerAdverts = checkInt("down timer adverts", p.downTimerAdverts, 1, 100);
  const check = p.leaseCheck;
  if (check) {
    checkPath("lease check script", check.script);
    checkPath("lease file", check.leaseFile);
    checkInt("lease check interval", check.intervalSeconds, 1, 60);
    checkInt("lease check fall", check.fall, 1, 10);
  }

  const lines: string[] = [
    "# Written by mnha; changes are overwritten. The agent steers this instance through",
    "# the track files: gate 0 = this node is elected, lease 0 = the agent is alive.",
    "global_defs {",
    `  router_id ${routerId}`,
    // The user is named: with enable_script_security and no user, keepalived 2.2 drops the
    // FIFO at every reload (SIGHUP) and the agent hears no more state changes until a restart.
    `  notify_fifo "${fifo}" root`,
    "  fifo_write_vrrp_states_on_reload",
    // The new MASTER announces itself at once; a second burst a second later covers a lost first one.
    `  vrrp_garp_master_repeat ${garpRepeat}`,
    "  vrrp_garp_master_delay 1",
    `  vrrp_garp_lower_prio_repeat ${garpRepeat}`,
    "  vrrp_higher_prio_send_advert true",
  ];
  if (check) lines.push("  enable_script_security", "  script_user root");
  lines.push(
    "}",
    "",
    // weight 0: any non-zero value puts the instance in FAULT (a weight would only shift priority).
    // init_file 1 overwrite: a keepalived that starts without the agent starts closed.
    `track_file ${GATE_TRACK} {`,
    `  file "${gateFile}"`,
    "  weight 0",
    "  init_file 1 overwrite",
    "}",
    "",
    `track_file ${LEASE_TRACK} {`,
    `  file "${leaseFile}"`,
    "  weight 0",
    "  init_file 1 overwrite",
    "}",
    "",
  );
  if (check) {
    lines.push(
      `vrrp_script ${LEASE_SCRIPT} {`,
      `  script "${check.script} ${check.leaseFile}"`,
      `  interval ${check.intervalSeconds}`,
      `  timeout ${check.intervalSeconds}`,
      `  fall ${check.fall}`,
      "  rise 1",
      "  weight 0",
      "}",
      "",
    );
  }
  lines.push(
    `vrrp_instance ${instance} {`,
    // Both nodes BACKUP + nopreempt: only the agent's gate decides who may become MASTER.
    "  state BACKUP",
    "  nopreempt",
    `  interface ${p.interface}`,
    `  virtual_router_id ${vrid}`,
    `  priority ${priority}`,
    "  version 3",
    `  advert_int ${formatSeconds(advertIntMs)}`,
    `  down_timer_adverts ${downTimerAdverts}`,
    `  unicast_src_ip ${source}`,
    "  unicast_peer {",
    ...peers.map((a) => `    ${a}`),
    "  }",
    "  check_unicast_src",
    "  virtual_ipaddress {",
    `    ${vip}/${prefix} dev ${p.interface}`,
    "  }",
    "  track_file {",
    `    ${GATE_TRACK}`,
    `    ${LEASE_TRACK}`,
    "  }",
  );
  if (check) lines.push("  track_script {", `    ${LEASE_SCRIPT}`, "  }");
  lines.push("}", "");
  return lines.join("\n");
}

export interface ParamsOptions {
  /** Include the vrrp_script lease check (default: when paths.leaseCheckScript is set). */
  leaseCheck?: boolean;
}

/** The render params of one node, from its config and the driver's paths. */
export function keepalivedParamsFromConfig(config: MnhaConfig, paths: KeepalivedPaths, options: ParamsOptions = {}): KeepalivedParams {
  const withCheck = (options.leaseCheck ?? true) && paths.leaseCheckScript !== null;
  return {
    routerId: config.node.name,
    instanceName: INSTANCE_NAME,
    interface: config.vip.interface,
    virtualRouterId: config.keepalived.virtualRouterId,
    priority: config.keepalived.priority,
    advertIntMs: config.keepalived.advertIntMs,
    // Only a node whose gate is open waits on this timer (see config keepalived.downTimerAdverts).
    downTimerAdverts: config.keepalived.downTimerAdverts,
    sourceAddress: config.node.address,
    peerAddresses: config.peers.map((p) => p.address),
    vip: { address: config.vip.address, prefix: config.vip.prefix },
    gateFile: paths.gateFile,
    leaseFile: paths.leaseFile,
    notifyFifo: paths.notifyFifo,
    garpRepeat: config.keepalived.garpRepeat,
    leaseCheck: withCheck && paths.leaseCheckScript !== null ? { script: paths.leaseCheckScript, leaseFile: paths.leaseFile, intervalSeconds: 1, fall: 2 } : null,
  };
}
