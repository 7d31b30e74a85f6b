/**
 * Every name, address and path of the lab, in one place. The lab lives entirely inside
 * network namespaces whose names start with LAB_PREFIX; the machine's own network is never
 * touched (even the bridge sits in its own namespace).
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Which lab: MNHA_LAB=name runs an independent lab (its own namespaces and state dir), so a
 * benchmark and a test run can share a machine. Addresses repeat, but each lab's hosts
 * only ever see their own bridge.
 */
export const LAB_NAME = (() => {
  const base = process.env["MNHA_LAB"] ?? "lab";
  // The lab test files run two at a time (vitest.config.ts): each vitest worker gets its own
  // lab, named after the worker ("lab1", "lab2"); commands the tests start inherit the name.
  const worker = process.env["VITEST"] !== undefined ? (process.env["VITEST_POOL_ID"] ?? "") : "";
  if (!/^\d?$/.test(worker)) throw new Error(`VITEST_POOL_ID=${JSON.stringify(worker)}: expected one digit`);
  const name = `${base}${worker}`;
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) throw new Error(`MNHA_LAB=${JSON.stringify(base)}: expected 1-10 lower-case letters or digits (1-9 under vitest), starting with a letter`);
  return name;
})();
/** Prefix of every namespace, nftables table and state path the lab creates. */
export const LAB_PREFIX = `mnha-${LAB_NAME}`;
/** Runtime state: configs, secrets, logs, pid files, sample logs. Removed by `down`. */
export const LAB_STATE_DIR = `/run/${LAB_PREFIX}`;
/** nftables tables the faults add (in MN namespaces: peer; on the bridge: gateway + node). */
export const NFT_TABLE_PEER = "mnha_lab_peer";
export const NFT_TABLE_GATEWAY = "mnha_lab_gateway";

export const SUBNET_PREFIX = 24;
export const VIP_ADDRESS = "10.250.77.100";
export const GATEWAY_ADDRESS = "10.250.77.1";
export const CLIENT_ADDRESS = "10.250.77.50";
export const PEER_PORT = 7946;
/** Interface name of every host's end of its veth pair, inside the host's namespace. */
export const HOST_INTERFACE = "eth0";
export const BRIDGE_NAME = "br0";

export const MN_NODES = ["mn1", "mn2"] as const;
export type MnNode = (typeof MN_NODES)[number];
export type HostName = MnNode | "gw" | "client";
export const HOST_NAMES: readonly HostName[] = ["mn1", "mn2", "gw", "client"];

export interface HostSpec {
  name: HostName;
  namespace: string;
  address: string;
  /** Fixed, locally administered MAC of the host's eth0, so reports can say mn1/mn2. */
  mac: string;
  /** Name of the veth end inside the bridge namespace. */
  bridgePort: string;
}

export const BRIDGE_NAMESPACE = `${LAB_PREFIX}-br`;

function host(name: HostName, address: string, lastOctetHex: string): HostSpec {
  return { name, namespace: `${LAB_PREFIX}-${name}`, address, mac: `02:4d:4e:48:41:${lastOctetHex}`, bridgePort: `v-${name}` };
}

export const HOSTS: Record<HostName, HostSpec> = {
  gw: host("gw", GATEWAY_ADDRESS, "01"),
  mn1: host("mn1", "10.250.77.11", "0b"),
  mn2: host("mn2", "10.250.77.12", "0c"),
  client: host("client", CLIENT_ADDRESS, "32"),
};

/** Every namespace the lab creates, bridge first. */
export const LAB_NAMESPACES: readonly string[] = [BRIDGE_NAMESPACE, ...HOST_NAMES.map((h) => HOSTS[h].namespace)];

export type ServiceName = "mn" | "ui" | "db";
export interface StandinSpec {
  name: ServiceName;
  port: number;
  /** mariadb: a real mariadbd (test/lab/mariadb.ts), not a stand-in. */
  kind: "http" | "tcp" | "mariadb";
}
/** The MN service, the UI (stand-ins) and the database (real MariaDB), as on a ZStack management node. */
export const STANDIN_SERVICES: readonly StandinSpec[] = [
  { name: "mn", port: 8080, kind: "http" },
  { name: "ui", port: 5000, kind: "http" },
  { name: "db", port: 3306, kind: "mariadb" },
];

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const LAB_DIR = resolve(REPO_ROOT, "test/lab");
export const STANDIN_SCRIPT = resolve(LAB_DIR, "standin.mjs");
export const LAUNCH_SCRIPT = resolve(LAB_DIR, "launch.mjs");
export const SAMPLER_SCRIPT = resolve(LAB_DIR, "sampler.mjs");
/** The built agent CLI (`pnpm build`). */
export const AGENT_MAIN = resolve(REPO_ROOT, "packages/agent/dist/cli/main.js");
/** The Node.js flags the agents run with: the same as deploy/mnha.service's ExecStart. */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1", "--optimize-for-size", "--no-sparkplug"];
/**
 * Environment added for the agents: the same as deploy/mnha.service's Environment= lines. Two
 * glibc malloc arenas instead of one per thread (main, store worker, libuv and V8 threads):
 * about 3 MB less resident memory at idle (docs/benchmarks.md, "Idle cost").
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

/** Where each node keeps its files inside LAB_STATE_DIR. */
export interface NodePaths {
  dir: string;
  config: string;
  secret: string;
  dataDir: string;
  controlSocket: string;
  agentLog: string;
  agentPid: string;
  serviceLog(service: ServiceName): string;
  servicePid(service: ServiceName): string;
}

export function nodePaths(node: MnNode): NodePaths {
  const dir = `${LAB_STATE_DIR}/${node}`;
  return {
    dir,
    config: `${dir}/mnha.yaml`,
    secret: `${dir}/secret`,
    dataDir: `${dir}/data`,
    controlSocket: `${dir}/mnha.sock`,
    agentLog: `${dir}/agent.log`,
    agentPid: `${dir}/agent.pid`,
    serviceLog: (service) => `${dir}/svc-${service}.log`,
    servicePid: (service) => `${dir}/svc-${service}.pid`,
  };
}

export const CLIENT_STATE_DIR = `${LAB_STATE_DIR}/client`;

export function isMnNode(value: string): value is MnNode {
  return (MN_NODES as readonly string[]).includes(value);
}

export function peerOf(node: MnNode): MnNode {
  return node === "mn1" ? "mn2" : "mn1";
}

export function nodeOfMac(mac: string): HostName | null {
  const lower = mac.toLowerCase();
  return HOST_NAMES.find((h) => HOSTS[h].mac === lower) ?? null;
}
