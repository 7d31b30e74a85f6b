/**
 * The witness in the lab: a fifth namespace (`<prefix>-wit`) on the same bridge, running the
 * real `mnha witness` with the pair's secret; faults that cut it from one MN (nftables in its
 * namespace), kill it, or start it again; and the cut of everything between the two MNs
 * (IP and ARP, on the bridge) that only the witness survives. `lab down` removes it with the
 * other namespaces (it carries the lab prefix).
 */
import { readFileSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import type { MnhaConfigInput } from "@mnha/shared";
import { AGENT_MAIN, BRIDGE_NAME, BRIDGE_NAMESPACE, HOST_INTERFACE, HOSTS, LAB_PREFIX, LAB_STATE_DIR, SUBNET_PREFIX, nodePaths, type MnNode } from "./constants.js";
import { run, runIn, sleep } from "./exec.js";
import { launchDetached } from "./launch.mjs";

export const WITNESS_ADDRESS = "10.250.77.13";
export const WITNESS_PORT = 7947;
/** A short lease keeps the lab quick; the default is 2 s. */
export const LAB_WITNESS_LEASE_MS = 2_000;
const WITNESS_NAMESPACE = `${LAB_PREFIX}-wit`;
const WITNESS_MAC = "02:4d:4e:48:41:0d";
const WITNESS_PORT_NAME = "v-wit";
const WITNESS_DIR = `${LAB_STATE_DIR}/witness`;
const WITNESS_TABLE = "mnha_lab_witness";
const MN_CUT_TABLE = "mnha_lab_mn_cut";

export const witnessPaths = { dir: WITNESS_DIR, config: `${WITNESS_DIR}/witness.yaml`, log: `${WITNESS_DIR}/witness.log`, pid: `${WITNESS_DIR}/witness.pid`, state: `${WITNESS_DIR}/grant.json` };

/** The agents' config change that points them at the lab's witness. */
export function withWitness(_node: MnNode, config: MnhaConfigInput): MnhaConfigInput {
  return { ...config, witness: { address: WITNESS_ADDRESS, port: WITNESS_PORT, leaseMs: LAB_WITNESS_LEASE_MS } };
}

/** Adds the witness's namespace to the (already created) lab bridge and writes its config. */
export async function addWitnessHost(): Promise<void> {
  await run("ip", ["netns", "add", WITNESS_NAMESPACE]);
  await run("ip", ["-n", BRIDGE_NAMESPACE, "link", "add", WITNESS_PORT_NAME, "type", "veth", "peer", "name", HOST_INTERFACE, "netns", WITNESS_NAMESPACE]);
  await run("ip", ["-n", BRIDGE_NAMESPACE, "link", "set", WITNESS_PORT_NAME, "master", BRIDGE_NAME, "up"]);
  await run("ip", ["-n", WITNESS_NAMESPACE, "link", "set", "lo", "up"]);
  await run("ip", ["-n", WITNESS_NAMESPACE, "link", "set", HOST_INTERFACE, "address", WITNESS_MAC]);
  await run("ip", ["-n", WITNESS_NAMESPACE, "address", "add", `${WITNESS_ADDRESS}/${SUBNET_PREFIX}`, "dev", HOST_INTERFACE]);
  await run("ip", ["-n", WITNESS_NAMESPACE, "link", "set", HOST_INTERFACE, "up"]);
  mkdirSync(WITNESS_DIR, { recursive: true, mode: 0o700 });
  const config = [
    "# mnha lab witness; written by test/lab/witness-host.ts",
    `listen: { address: ${WITNESS_ADDRESS}, port: ${WITNESS_PORT} }`,
    "nodes:",
    `  - { name: mn1, address: ${HOSTS.mn1.address} }`,
    `  - { name: mn2, address: ${HOSTS.mn2.address} }`,
    // The pair's own secret file (mode 600), written by the lab for mn1.
    `auth: { secretFile: ${nodePaths("mn1").secret} }`,
    `stateFile: ${witnessPaths.state}`,
    "",
  ].join("\n");
  writeFileSync(witnessPaths.config, config, { mode: 0o600 });
}

/** Starts `mnha witness` in its namespace (detached); resolves once it listens. */
export async function startWitness(): Promise<number> {
  const logFrom = existsSync(witnessPaths.log) ? readFileSync(witnessPaths.log, "utf8").length : 0;
  const pid = await launchDetached({ namespace: WITNESS_NAMESPACE, argv: [process.execPath, AGENT_MAIN, "witness", "--config", witnessPaths.config], logFile: witnessPaths.log, pidFile: witnessPaths.pid, replaceMatching: "witness --config" });
  for (let i = 0; i < 100; i++) {
    if (existsSync(witnessPaths.log) && readFileSync(witnessPaths.log, "utf8").slice(logFrom).includes("witness listening")) return pid;
    await sleep(50);
  }
  throw new Error(`the witness did not start: ${existsSync(witnessPaths.log) ? readFileSync(witnessPaths.log, "utf8").slice(-500) : "no log"}`);
}

/** kill -9 of the witness process (its grant file stays). */
export async function killWitness(): Promise<void> {
  const pid = Number(readFileSync(witnessPaths.pid, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad witness pid file: ${witnessPaths.pid}`);
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

/** The witness no longer hears (or answers) `node`: every packet to or from it is dropped in the witness's namespace. */
export async function cutWitnessFrom(node: MnNode): Promise<void> {
  const address = HOSTS[node].address;
  const table = `${WITNESS_TABLE}_${node}`;
  const body = `  chain input { type filter hook input priority -10; policy accept; ip saddr ${address} drop; }\n  chain output { type filter hook output priority -10; policy accept; ip daddr ${address} drop; }`;
  await run("ip", ["netns", "exec", WITNESS_NAMESPACE, "nft", "-f", "-"], { input: `table inet ${table} {}\ndelete table inet ${table}\ntable inet ${table} {\n${body}\n}\n` });
}

export async function healWitnessFrom(node: MnNode): Promise<void> {
  await runIn(WITNESS_NAMESPACE, "nft", ["delete", "table", "inet", `${WITNESS_TABLE}_${node}`], { allowFailure: true });
}

/**
 * Nothing passes between mn1 and mn2 (IP, VRRP, ARP): the bridge drops every frame between
 * their two ports, both ways. The gateway, the client and the witness still reach both.
 */
export async function cutMnToMn(): Promise<void> {
  const a = HOSTS.mn1.bridgePort;
  const b = HOSTS.mn2.bridgePort;
  const body = `  chain forward { type filter hook forward priority -10; policy accept; iifname "${a}" oifname "${b}" drop; iifname "${b}" oifname "${a}" drop; }`;
  await run("ip", ["netns", "exec", BRIDGE_NAMESPACE, "nft", "-f", "-"], { input: `table bridge ${MN_CUT_TABLE} {}\ndelete table bridge ${MN_CUT_TABLE}\ntable bridge ${MN_CUT_TABLE} {\n${body}\n}\n` });
}

export async function healMnToMn(): Promise<void> {
  await runIn(BRIDGE_NAMESPACE, "nft", ["delete", "table", "bridge", MN_CUT_TABLE], { allowFailure: true });
}
