/**
 * One valid mnha config per lab node, written as YAML, validated against the real schema
 * before it is written (so a schema change shows up here, not as an agent that won't start).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { parseConfig, type MnhaConfigInput } from "@mnha/shared";
import { stringify } from "yaml";
import { MARIADB_PORT, mariadbdArgv, mariaDbPaths } from "./mariadb.js";
import { nodeViewFile } from "./sshd.js";
import {
  GATEWAY_ADDRESS,
  HOST_INTERFACE,
  HOSTS,
  LAB_NAME,
  LAUNCH_SCRIPT,
  PEER_PORT,
  STANDIN_SCRIPT,
  STANDIN_SERVICES,
  SUBNET_PREFIX,
  VIP_ADDRESS,
  nodePaths,
  peerOf,
  type MnNode,
  type StandinSpec,
} from "./constants.js";

export interface ConfigOverrides {
  /** false: no restore command for any service (a killed service stays down). */
  restore?: boolean;
  /** Last word: change anything in the config object before it is validated and written. */
  customize?: (node: MnNode, config: MnhaConfigInput) => MnhaConfigInput;
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
}

/** The argv that (re)starts one stand-in, detached, inside the node's namespace. */
export function standinLaunchArgv(node: MnNode, service: StandinSpec): string[] {
  const paths = nodePaths(node);
  if (service.kind === "mariadb") {
    const db = mariaDbPaths(node);
    return [process.execPath, LAUNCH_SCRIPT, "--ns", HOSTS[node].namespace, "--log", db.launchLog, "--pid-file", db.pidFile, "--replace", "mariadbd", "--", ...mariadbdArgv(node)];
  }
  return [
    process.execPath, LAUNCH_SCRIPT,
    "--ns", HOSTS[node].namespace,
    "--log", paths.serviceLog(service.name),
    "--pid-file", paths.servicePid(service.name),
    "--replace", "standin.mjs",
    "--",
    ...standinArgv(node, service),
  ];
}

/** Where the node's own view keeps the platform version (the MN stand-in reports it; upgrade-mn's installer writes it). */
export const PLATFORM_VERSION_PATH = "/usr/local/zstack/VERSION";

export function standinArgv(node: MnNode, service: StandinSpec): string[] {
  const version = service.name === "mn" ? ["--version-file", nodeViewFile(node, PLATFORM_VERSION_PATH)] : [];
  // --lab: two labs run at once (one per vitest worker), and a stand-in is found by its command
  // line (the lab's zstack-ctl uses pkill -f): each lab's must differ from the other's.
  return [process.execPath, STANDIN_SCRIPT, "--lab", LAB_NAME, "--node", node, "--service", service.name, "--port", String(service.port), "--kind", service.kind, ...version];
}

/** Debian's iputils-arping installs /usr/bin/arping; some systems have /usr/sbin/arping. */
export function arpingPath(): string {
  return ["/usr/sbin/arping", "/usr/bin/arping"].find((p) => existsSync(p)) ?? "/usr/bin/arping";
}

export function buildNodeConfig(node: MnNode, overrides: ConfigOverrides = {}): MnhaConfigInput {
  const paths = nodePaths(node);
  const peer = peerOf(node);
  const check = { intervalMs: 100, fall: 2, rise: 2, timeoutMs: 500 };
  const services = STANDIN_SERVICES.map((service) => ({
    name: service.name,
    critical: true,
    check:
      service.kind === "http"
        ? { kind: "http" as const, url: `http://127.0.0.1:${service.port}/`, ...check }
        : service.kind === "mariadb"
          ? { kind: "mariadb" as const, socket: mariaDbPaths(node).socket, user: "root", passwordFile: mariaDbPaths(node).rootPasswordFile, ...check }
          : { kind: "tcp" as const, host: "127.0.0.1", port: service.port, ...check },
    ...(overrides.restore === false
      ? {}
      : { restore: { command: standinLaunchArgv(node, service), timeoutMs: 5_000, maxAttempts: 20, backoffInitialMs: 500, backoffMaxMs: 2_000 } }),
  }));
  const config: MnhaConfigInput = {
    node: { name: node, address: HOSTS[node].address },
    peers: [{ name: peer, address: HOSTS[peer].address, port: PEER_PORT }],
    listen: { port: PEER_PORT },
    vip: { address: VIP_ADDRESS, prefix: SUBNET_PREFIX, interface: HOST_INTERFACE },
    gateway: { address: GATEWAY_ADDRESS },
    auth: { secretFile: paths.secret },
    services,
    arpGuard: { command: arpingPath() },
    keepalived: { binary: "/usr/sbin/keepalived", mode: "child" },
    // The agent does not manage the database yet (enabled: false); `mnha db` commands use these.
    db: {
      enabled: false,
      socket: mariaDbPaths(node).socket,
      rootPasswordFile: mariaDbPaths(node).rootPasswordFile,
      peerPort: MARIADB_PORT,
      replication: { passwordFile: mariaDbPaths(node).replicationPasswordFile },
      semiSync: { enabled: true, timeoutMs: 1_000 },
    },
    dataDir: paths.dataDir,
    controlSocket: paths.controlSocket,
    log: { level: overrides.logLevel ?? "info" },
  };
  return overrides.customize ? overrides.customize(node, config) : config;
}

/** A fresh random secret shared by both nodes (never printed). */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** Writes node's config and secret (mode 0600) into its state directory. */
export function writeNodeConfig(node: MnNode, secret: string, overrides: ConfigOverrides = {}): string {
  const paths = nodePaths(node);
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  const config = buildNodeConfig(node, overrides);
  parseConfig(config, paths.config); // throws ConfigError naming each bad field
  writeFileSync(paths.secret, `${secret}\n`, { mode: 0o600 });
  chmodSync(paths.secret, 0o600);
  writeFileSync(paths.config, `# mnha lab config for ${node}; written by test/lab/config-writer.ts\n${stringify(config)}`, { mode: 0o600 });
  return paths.config;
}
