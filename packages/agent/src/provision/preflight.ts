/**
 * Preflight: is this node fit to join an HA pair? Each node checks itself (`mnha preflight
 * --json`, the same code on both, the peer's run over SSH from the staged suite); the
 * installer adds the checks that compare the two (platform version, license type, clocks)
 * and prints one table. Any "fail" stops the install before anything changes.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { DEFAULT_SERVICES, MnhaError } from "@mnha/shared";
import { SYSTEM_BUS_SOCKET } from "../checks/action-command.js";
import { DISTRIBUTION_KEEPALIVED_FIX, distributionKeepalivedHarmless, distributionKeepalivedState, DISTRIBUTION_KEEPALIVED_UNIT } from "../keepalived/distribution-unit.js";
import { sntpOffset } from "./sntp.js";
import { readPlatform, type PlatformFiles } from "./suite-info.js";

export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** What this node has, for the table (never a secret). */
  value: string;
  /** What to do when it is not a pass. */
  fix: string;
}

export interface PreflightOptions {
  nic: string;
  vipAddress: string;
  vipPrefix: number;
  gateway: string;
  peerPort: number;
  metricsPort: number;
  minCpus: number;
  minMemoryGb: number;
  platform: PlatformFiles;
  /** Skip the ARP probe for the VIP (a rerun while our own pair holds it). */
  skipVipProbe?: boolean;
  /** -time-server: this node's clock is checked against it (SNTP). */
  timeServer?: string;
  /** Beyond this offset from the time server the check fails (default 500 ms). */
  maxClockOffsetMs?: number;
}

export interface NodePreflight {
  hostname: string;
  platformVersion: string | null;
  licenseType: string | null;
  checks: CheckResult[];
}

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs = 10_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const pass = (id: string, title: string, value: string): CheckResult => ({ id, title, status: "pass", value, fix: "" });

export async function runLocalPreflight(options: PreflightOptions): Promise<NodePreflight> {
  const checks: CheckResult[] = [];
  checks.push(...(await hardwareChecks(options)));
  const platform = readPlatform(options.platform);
  checks.push(
    platform.version === null
      ? { id: "platform-version", title: "platform version", status: "fail", value: "unknown", fix: `no platform version in ${options.platform.versionFile}: install the platform first, or pass --platform-version-file` }
      : pass("platform-version", "platform version", platform.version),
    platform.license === null
      ? { id: "license-type", title: "license type", status: "fail", value: "unknown", fix: `no license type in ${options.platform.licenseFile}: install the license first, or pass --license-file` }
      : pass("license-type", "license type", platform.license),
  );
  const nic = await nicChecks(options);
  checks.push(...nic);
  checks.push(await gatewayCheck(options));
  checks.push(await portCheck("peer-port", "peer-link port free", options.peerPort), await portCheck("metrics-port", "metrics port free", options.metricsPort));
  if (options.timeServer !== undefined) checks.push(await timeServerCheck(options.timeServer, options.maxClockOffsetMs ?? 500));
  checks.push(binaryCheck("keepalived", "Keepalived installed", ["/usr/sbin/keepalived", "/sbin/keepalived"], "apt-get install keepalived (or the platform's ISO repository); mnha runs it itself"));
  checks.push(binaryCheck("mariadb", "MariaDB installed", ["/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/bin/mariadbd"], "the platform installs MariaDB; install the platform first"));
  checks.push(otherHaSuiteCheck());
  checks.push(await distributionKeepalivedCheck());
  checks.push(systemBusCheck());
  checks.push(serviceCommandsCheck());
  return { hostname: readFileSync("/proc/sys/kernel/hostname", "utf8").trim(), platformVersion: platform.version, licenseType: platform.license, checks };
}

async function hardwareChecks(options: PreflightOptions): Promise<CheckResult[]> {
  // systeminformation spawns helpers: fine for this one-shot command, never in the agent.
  const si = await import("systeminformation");
  const [cpu, mem] = await Promise.all([si.cpu(), si.mem()]);
  const memoryGb = mem.total / 1024 ** 3;
  return [
    cpu.cores >= options.minCpus
      ? pass("cpus", `CPUs >= ${options.minCpus}`, String(cpu.cores))
      : { id: "cpus", title: `CPUs >= ${options.minCpus}`, status: "fail", value: String(cpu.cores), fix: `give the MN at least ${options.minCpus} CPUs (the platform's minimum for HA)` },
    memoryGb >= options.minMemoryGb
      ? pass("memory", `memory >= ${options.minMemoryGb} GB`, `${memoryGb.toFixed(1)} GB`)
      : { id: "memory", title: `memory >= ${options.minMemoryGb} GB`, status: "fail", value: `${memoryGb.toFixed(1)} GB`, fix: `give the MN at least ${options.minMemoryGb} GB of memory` },
  ];
}

interface IpAddress {
  family: string;
  local: string;
  prefixlen: number;
  dynamic?: boolean;
}

export function ipv4ToNumber(address: string): number | null {
  const parts = address.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

/** Whether `address` lies in `network`/`prefix`. */
export function inSubnet(address: string, network: string, prefix: number): boolean {
  const a = ipv4ToNumber(address);
  const n = ipv4ToNumber(network);
  if (a === null || n === null || prefix < 0 || prefix > 32) return false;
  const size = 2 ** (32 - prefix);
  return Math.floor(a / size) === Math.floor(n / size);
}

async function nicChecks(options: PreflightOptions): Promise<CheckResult[]> {
  const { nic } = options;
  if (!existsSync(`/sys/class/net/${nic}`)) {
    return [{ id: "nic", title: `NIC ${nic}`, status: "fail", value: "missing", fix: `no interface ${nic} here: check the name (ip -br link) and pass the right -nic` }];
  }
  const out: CheckResult[] = [];
  const isBridge = existsSync(`/sys/class/net/${nic}/bridge`);
  const shown = await run("ip", ["-j", "-4", "addr", "show", "dev", nic]);
  const addresses: IpAddress[] = shown.code === 0 ? ((JSON.parse(shown.stdout) as { addr_info?: IpAddress[] }[])[0]?.addr_info ?? []).filter((a) => a.family === "inet") : [];
  const primary = addresses.find((a) => a.local !== options.vipAddress);
  if (primary === undefined) {
    out.push({ id: "nic", title: `NIC ${nic}`, status: "fail", value: "no IPv4 address", fix: `give ${nic} the MN's static management address` });
    return out;
  }
  const problems = [isBridge ? null : "not a bridge", primary.dynamic === true ? "address from DHCP" : null].filter((p): p is string => p !== null);
  out.push(
    problems.length === 0
      ? pass("nic", `NIC ${nic} (bridge, static address)`, `${primary.local}/${primary.prefixlen}`)
      : { id: "nic", title: `NIC ${nic} (bridge, static address)`, status: "warn", value: `${primary.local}/${primary.prefixlen}, ${problems.join(", ")}`, fix: "the platform expects a bridge (br_<nic>) with a static address; a DHCP lease that changes would break the pair" },
  );
  out.push(
    inSubnet(options.vipAddress, primary.local, primary.prefixlen)
      ? pass("vip-subnet", "VIP inside the NIC's subnet", `${options.vipAddress} in ${primary.local}/${primary.prefixlen}`)
      : { id: "vip-subnet", title: "VIP inside the NIC's subnet", status: "fail", value: `${options.vipAddress} not in ${primary.local}/${primary.prefixlen}`, fix: `choose a free VIP in ${nic}'s subnet` },
  );
  if (options.skipVipProbe !== true) out.push(await vipFreeCheck(options, addresses));
  return out;
}

function arpingBinary(): string {
  return ["/usr/sbin/arping", "/usr/bin/arping"].find((p) => existsSync(p)) ?? "arping";
}

async function vipFreeCheck(options: PreflightOptions, addresses: IpAddress[]): Promise<CheckResult> {
  const title = "nobody answers ARP for the VIP";
  if (addresses.some((a) => a.local === options.vipAddress)) {
    return { id: "vip-free", title, status: "fail", value: "this node has it", fix: `remove ${options.vipAddress} from ${options.nic} (ip addr del ${options.vipAddress}/${options.vipPrefix} dev ${options.nic}) or choose another VIP` };
  }
  // iputils arping -D (duplicate address detection): exit 0 when nobody answered, 1 when someone did.
  const probe = await run(arpingBinary(), ["-D", "-I", options.nic, "-c", "2", "-w", "3", options.vipAddress], 8_000);
  if (probe.code === 0) return pass("vip-free", title, "free");
  if (probe.code === 1) {
    const mac = /\[([0-9a-f:]{17})\]/i.exec(probe.stdout)?.[1] ?? "another host";
    return { id: "vip-free", title, status: "fail", value: `answered by ${mac}`, fix: `${options.vipAddress} is in use on the network: choose a free VIP, or stop whatever holds it` };
  }
  return { id: "vip-free", title, status: "warn", value: "could not probe", fix: `arping failed (${(probe.stderr || probe.stdout).trim().split("\n")[0] ?? ""}): install iputils-arping` };
}

async function gatewayCheck(options: PreflightOptions): Promise<CheckResult> {
  const title = "gateway answers";
  const ping = existsSync("/usr/bin/ping") ? "/usr/bin/ping" : "/bin/ping";
  const result = await run(ping, ["-n", "-c", "2", "-W", "1", "-I", options.nic, options.gateway], 6_000);
  if (result.code === 0) return pass("gateway", title, options.gateway);
  return { id: "gateway", title, status: "fail", value: `${options.gateway}: no answer`, fix: `check the gateway address (-gateway) and ${options.nic}'s cabling; the agents use the gateway to tell a dead peer from their own isolation` };
}

function portCheck(id: string, title: string, port: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      resolve({ id, title: `${title} (${port})`, status: "fail", value: error.code === "EADDRINUSE" ? "in use" : (error.code ?? "error"), fix: `something listens on port ${port} (ss -tlnp 'sport = :${port}'): stop it or choose another port` });
    });
    server.listen({ port, host: "0.0.0.0", exclusive: true }, () => server.close(() => resolve(pass(id, `${title} (${port})`, "free"))));
  });
}

function binaryCheck(id: string, title: string, paths: string[], fix: string): CheckResult {
  const found = paths.find((p) => existsSync(p));
  return found ? pass(id, title, found) : { id, title, status: "fail", value: "missing", fix };
}

/** Processes in this node's network namespace (the lab runs several nodes on one kernel). */
function processesHere(): { pid: number; argv: string[] }[] {
  let ownNet: string;
  try {
    ownNet = readlinkSync("/proc/self/ns/net");
  } catch {
    return [];
  }
  const out: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== ownNet) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
      if (argv.length > 0) out.push({ pid: Number(entry), argv });
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** Another HA suite on this node: zstack-hamon, a keepalived mnha does not run, or an mnha agent already. */
export function findOtherHaSuites(processes: { pid: number; argv: string[] }[]): string[] {
  const found: string[] = [];
  for (const { pid, argv } of processes) {
    const command = argv.join(" ");
    const program = argv[0]?.split("/").pop() ?? "";
    if (/zstack-hamon|zsha2 agent|zsha2-agent/.test(command)) found.push(`zstack-hamon/zsha2 (pid ${pid})`);
    else if (program === "keepalived") found.push(`keepalived not run by mnha (pid ${pid})`);
    else if (argv.includes("agent") && argv.some((a) => /(^|\/)(mnha|main\.js|mnha\.js)$/.test(a))) found.push(`an mnha agent (pid ${pid})`);
  }
  return found;
}

/** This node's clock against the time server both MNs follow. */
export async function timeServerCheck(server: string, maxOffsetMs: number, query = sntpOffset): Promise<CheckResult> {
  const id = "time-server";
  const title = `clock within ${maxOffsetMs} ms of ${server}`;
  const sample = await query(server);
  if ("error" in sample) {
    return { id, title, status: "warn", value: `no NTP answer (${sample.error})`, fix: `make sure ${server} is a time server (NTP, UDP 123) that answers both MNs, or pass the right -time-server; the clocks are compared with each other only` };
  }
  const value = `${sample.offsetMs >= 0 ? "+" : ""}${Math.round(sample.offsetMs)} ms (±${Math.max(1, Math.round(sample.delayMs / 2))}, stratum ${sample.stratum})`;
  if (Math.abs(sample.offsetMs) <= maxOffsetMs) return pass(id, title, value);
  return { id, title, status: "fail", value, fix: `synchronise this clock with ${server} (chrony: \`server ${server} iburst\` in chrony.conf, then \`chronyc makestep\`) and run again` };
}

function otherHaSuiteCheck(): CheckResult {
  const found = findOtherHaSuites(processesHere());
  const socketPresent = existsSync("/run/mnha/mnha.sock") && statSync("/run/mnha/mnha.sock").isSocket();
  if (socketPresent && !found.some((f) => f.includes("mnha agent"))) found.push("an mnha control socket (/run/mnha/mnha.sock)");
  if (found.length === 0) return pass("other-ha", "no other HA suite running", "none");
  return { id: "other-ha", title: "no other HA suite running", status: "fail", value: found.join("; "), fix: "stop and disable the other HA suite first (two suites moving one VIP cause split brain)" };
}

/** The distribution's keepalived.service: a warning only, install-ha masks it (keepalived/distribution-unit.ts says why). */
export async function distributionKeepalivedCheck(state?: string): Promise<CheckResult> {
  const unit = DISTRIBUTION_KEEPALIVED_UNIT;
  const found = state ?? (await distributionKeepalivedState((argv) => run(argv[0] as string, argv.slice(1))));
  const title = `the distribution's ${unit} kept off`;
  if (distributionKeepalivedHarmless(found)) return pass("keepalived-unit", title, found);
  if (found === "disabled") return pass("keepalived-unit", title, "disabled (install-ha masks it)");
  return {
    id: "keepalived-unit",
    title,
    status: "warn",
    value: found,
    fix: `a reboot or a keepalived package upgrade would start it beside mnha's own Keepalived: install-ha disables and masks it (by hand: ${DISTRIBUTION_KEEPALIVED_FIX})`,
  };
}

/** Where the agent finds a command: systemd's default PATH, which mnha.service runs with. */
const AGENT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/**
 * The programs the default services restore, stop and start the MN, the UI and the database
 * with (zstack-ctl, systemctl; install-ha's configs keep the defaults). One that is missing
 * fails every such action with "command not found": a failed MN is never restored, and with
 * it down on both nodes nobody holds the VIP. A warning: HA itself works without them.
 */
export function serviceCommandsCheck(exists: (path: string) => boolean = existsSync): CheckResult {
  const id = "service-commands";
  const commandsOf = (service: (typeof DEFAULT_SERVICES)[number]) => [service.restore?.command, service.start, service.stop].flatMap((argv) => (argv?.[0] !== undefined ? [argv[0]] : []));
  const programs = [...new Set(DEFAULT_SERVICES.flatMap(commandsOf))];
  const usedFor = (program: string) => DEFAULT_SERVICES.filter((service) => commandsOf(service).includes(program)).map((service) => service.name).join(", ");
  const title = `service commands (${programs.join(", ")})`;
  const found = programs.map((program) => ({ program, path: program.startsWith("/") ? (exists(program) ? program : null) : (AGENT_PATH.map((dir) => `${dir}/${program}`).find((path) => exists(path)) ?? null) }));
  const missing = found.filter((entry) => entry.path === null).map((entry) => entry.program);
  if (missing.length === 0) return pass(id, title, found.map((entry) => entry.path).join(", "));
  return {
    id,
    title,
    status: "warn",
    value: `${missing.join(", ")} missing`,
    fix: `${missing.map((program) => `${program} (the default services' command for ${usedFor(program)})`).join(" and ")} not found in ${AGENT_PATH.join(":")}: each restore or stop of those services would fail (command not found), so one down on both nodes would leave nobody holding the VIP; install the platform first, or give the services commands that exist here (services: in /etc/mnha/mnha.yaml, docs/cli.md)`,
  };
}

/**
 * The D-Bus system bus: under systemd the agent's service actions leave its sandbox through
 * `systemd-run --wait`, which needs it (checks/action-command.ts). A warning: without it they
 * run inside the sandbox, where the MN a restore starts cannot write its logs.
 */
export function systemBusCheck(exists: (path: string) => boolean = existsSync): CheckResult {
  const id = "system-bus";
  const title = "D-Bus system bus (service actions)";
  if (!exists("/run/systemd/system")) return pass(id, title, "not needed (systemd is not PID 1)");
  if (exists(SYSTEM_BUS_SOCKET)) return pass(id, title, SYSTEM_BUS_SOCKET);
  return {
    id,
    title,
    status: "warn",
    value: "missing",
    fix: `install and start dbus (apt install dbus, or dnf install dbus): without ${SYSTEM_BUS_SOCKET} restores, stop-node, start-node and the maintenance hooks run inside mnha.service's sandbox, where the MN they start cannot write its logs`,
  };
}

// ------------------------------------------------------------------ both nodes, one table

export interface PreflightRow {
  id: string;
  title: string;
  values: [string, string];
  status: CheckStatus;
  fix: string;
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** One table from both nodes' own checks, plus the checks that compare them. */
export function combinePreflight(local: NodePreflight, peer: NodePreflight, clock: { offsetMs: number; uncertaintyMs: number }, maxClockOffsetMs = 500): PreflightRow[] {
  const rows: PreflightRow[] = [];
  const ids = [...new Set([...local.checks.map((c) => c.id), ...peer.checks.map((c) => c.id)])];
  for (const id of ids) {
    const a = local.checks.find((c) => c.id === id);
    const b = peer.checks.find((c) => c.id === id);
    const worst = [a, b].filter((c): c is CheckResult => c !== undefined).sort((x, y) => RANK[y.status] - RANK[x.status])[0] as CheckResult;
    const fixes = [a && a.status !== "pass" ? `${local.hostname}: ${a.fix}` : null, b && b.status !== "pass" ? `${peer.hostname}: ${b.fix}` : null].filter((f): f is string => f !== null);
    // The same fix for both nodes is said once.
    const same = a !== undefined && b !== undefined && a.status !== "pass" && b.status !== "pass" && a.fix === b.fix;
    rows.push({ id, title: worst.title, values: [a?.value ?? "-", b?.value ?? "-"], status: worst.status, fix: same ? `both nodes: ${a.fix}` : fixes.join("; ") });
  }
  if (local.platformVersion !== null && peer.platformVersion !== null && local.platformVersion !== peer.platformVersion) {
    rows.push({ id: "same-platform-version", title: "same platform version", values: [local.platformVersion, peer.platformVersion], status: "fail", fix: "upgrade the older MN to the same platform version first (upgrade-mn), then install HA" });
  } else if (local.platformVersion !== null && peer.platformVersion !== null) {
    rows.push({ id: "same-platform-version", title: "same platform version", values: [local.platformVersion, peer.platformVersion], status: "pass", fix: "" });
  }
  if (local.licenseType !== null && peer.licenseType !== null) {
    const same = local.licenseType === peer.licenseType;
    rows.push({ id: "same-license-type", title: "same license type", values: [local.licenseType, peer.licenseType], status: same ? "pass" : "fail", fix: same ? "" : "install the same license type on both MNs" });
  }
  const offset = Math.abs(clock.offsetMs);
  rows.push({
    id: "clock",
    title: `clocks within ${maxClockOffsetMs} ms`,
    values: ["reference", `${clock.offsetMs >= 0 ? "+" : ""}${Math.round(clock.offsetMs)} ms (±${Math.round(clock.uncertaintyMs)})`],
    status: offset <= maxClockOffsetMs ? "pass" : "fail",
    fix: offset <= maxClockOffsetMs ? "" : "synchronise both clocks with the same time server (-time-server; chrony) and run again",
  });
  return rows;
}

export function preflightFailed(rows: readonly PreflightRow[]): boolean {
  return rows.some((row) => row.status === "fail");
}

export function renderPreflightTable(rows: readonly PreflightRow[], names: [string, string]): string {
  const header = ["check", names[0], names[1], "result", "fix"];
  const body = rows.map((row) => [row.title, row.values[0], row.values[1], row.status.toUpperCase(), row.fix]);
  const widths = header.slice(0, 4).map((h, i) => Math.min(40, Math.max(h.length, ...body.map((r) => (r[i] ?? "").length))));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 4 ? cell.padEnd(widths[i] ?? 0) : cell)).join("  ").trimEnd();
  return [line(header), ...body.map(line)].join("\n") + "\n";
}

/** Parses `mnha preflight --json` output from the peer. */
export function parseNodePreflight(text: string, from: string): NodePreflight {
  try {
    const parsed = JSON.parse(text) as NodePreflight;
    if (typeof parsed.hostname === "string" && Array.isArray(parsed.checks)) return parsed;
  } catch {
    // reported below
  }
  throw new MnhaError("REMOTE_COMMAND", `the preflight on ${from} did not return its report: ${text.trim().slice(0, 200)}`, { hint: "run `mnha preflight` on that node by hand to see why" });
}
