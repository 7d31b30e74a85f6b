/**
 * install-ha end to end, in the lab with real OpenSSH on each MN and each MN's own
 * filesystem (test/lab/sshd.ts): from bare nodes, with the suite bundle on mn1 only and
 * only mn2's SSH password, to a healthy pair serving the VIP. Also the ways it must stop
 * before changing anything: a changed host key, a wrong password, a failed preflight.
 * The lab namespaces have no route out: installing the bundle needs no network.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CURRENT_PROTOCOL_VERSION } from "@mnha/protocol";
import { HOSTS, LAB_STATE_DIR, REPO_ROOT, VIP_ADDRESS, GATEWAY_ADDRESS, type MnNode } from "../lab/constants.js";
import { runIn } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { hostKeyFingerprint, LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec } from "../lab/sshd.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ sshd: true });
const IMPORT_DIR = "/var/lib/mnha-import";
/** What install-ha writes; none of it may exist after a refused install. */
const FOOTPRINT = ["/etc/mnha", "/opt/mnha", "/var/lib/mnha", "/var/lib/mnha-stage", "/usr/local/bin/mnha", "/etc/systemd/system/mnha.service"];
const PLATFORM_VERSION_FILE = "/usr/local/zstack/VERSION";
const LICENSE_FILE = "/var/lib/zstack/license/license-type";

let bundlePath = "";
let suiteDir = "";

/**
 * Builds the bundle once per source state (git tree + uncommitted changes); a later run on
 * the same sources reuses it. MNHA_BUNDLE=path uses a given one.
 */
function ensureBundle(): string {
  const given = process.env["MNHA_BUNDLE"];
  if (given) return given;
  const git = (...args: string[]) => execFileSync("git", ["-C", REPO_ROOT, ...args]);
  const key = createHash("sha256").update(git("rev-parse", "HEAD^{tree}")).update(git("diff", "HEAD")).update(git("ls-files", "--others", "--exclude-standard")).digest("hex");
  const version = (JSON.parse(readFileSync(resolve(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
  const path = resolve(REPO_ROOT, `dist/mnha-suite-${version}-linux-x64.tar.gz`);
  const keyFile = `${path}.source-key`;
  if (existsSync(path) && existsSync(keyFile) && readFileSync(keyFile, "utf8") === key) return path;
  execFileSync("bash", [resolve(REPO_ROOT, "scripts/bundle.sh")], { stdio: "inherit", timeout: 600_000 });
  writeFileSync(keyFile, key);
  return path;
}

async function sh(node: MnNode, script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return nodeExec(node, ["sh", "-c", script, "sh", ...args], { timeoutMs: 60_000 });
}

async function footprint(node: MnNode): Promise<string[]> {
  const found: string[] = [];
  for (const path of FOOTPRINT) if ((await nodeExec(node, ["test", "-e", path])).code === 0) found.push(path);
  return found;
}

async function setPlatform(node: MnNode, version: string, license = "enterprise"): Promise<void> {
  await sh(node, 'mkdir -p "$(dirname "$1")" "$(dirname "$3")" && echo "$2" > "$1" && echo "$4" > "$3"', PLATFORM_VERSION_FILE, version, LICENSE_FILE, license);
}

/** mnha install-ha on mn1, run from the unpacked bundle as an operator would. */
function installHa(extra: string[], options: { peer?: string } = {}) {
  return nodeExec(
    "mn1",
    [
      `${suiteDir}/bin/mnha`, "install-ha",
      "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS,
      "--peer", options.peer ?? `${LAB_SSH_USER}@${HOSTS.mn2.address}`,
      "--node-name", "mn1", "--peer-name", "mn2",
      // The lab machine has 2 CPUs; the thresholds are configurable for exactly this.
      "--min-cpus", "1", "--min-memory-gb", "1",
      ...extra,
    ],
    { timeoutMs: 400_000 },
  );
}

beforeAll(async () => {
  bundlePath = ensureBundle();
  await lab.up({ fresh: true, agents: false });
  for (const node of ["mn1", "mn2"] as const) await setPlatform(node, "4.8.0");
  const name = bundlePath.split("/").pop()?.replace(/\.tar\.gz$/, "") as string;
  suiteDir = `${IMPORT_DIR}/${name}`;
  // The operator imports the bundle to mn1 and unpacks it; mn2 gets nothing.
  const unpacked = await sh("mn1", 'mkdir -p "$1" && cp "$2" "$1/" && cd "$1" && tar -xzf "$3"', IMPORT_DIR, bundlePath, `${name}.tar.gz`);
  expect(unpacked.code, unpacked.stderr).toBe(0);
  expect(await footprint("mn1")).toEqual([]);
  expect(await footprint("mn2")).toEqual([]);
}, 900_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("install") });
});

describe("install-ha refuses before changing anything", () => {
  it("the lab's nodes have no route out of the lab (so the install below is offline)", async () => {
    for (const namespace of [HOSTS.mn2.namespace, HOSTS.gw.namespace]) {
      const links = (await runIn(namespace, "ip", ["-o", "link", "show"])).stdout.split("\n").filter(Boolean).map((line) => line.split(":")[1]?.trim().split("@")[0]);
      expect(links.sort()).toEqual(["eth0", "lo"]);
    }
    const gwRoutes = (await runIn(HOSTS.gw.namespace, "ip", ["route", "show"])).stdout;
    expect(gwRoutes).not.toContain("default");
  });

  it("a changed host key stops everything with a clear error", async () => {
    // A known_hosts that holds another key for mn2: what a reinstalled (or impersonated) peer looks like.
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${LAB_STATE_DIR}/other-key`]);
    const other = readFileSync(`${LAB_STATE_DIR}/other-key.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    await sh("mn1", 'printf "%s %s\\n" "$1" "$2" > "$3"', HOSTS.mn2.address, other, `${IMPORT_DIR}/known_hosts`);
    const result = await installHa(["--known-hosts", `${IMPORT_DIR}/known_hosts`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`the host key of ${HOSTS.mn2.address} has CHANGED`);
    expect(result.stderr).toContain(await hostKeyFingerprint("mn2"));
    expect(result.stderr).toContain("hint: check the key on the peer's console");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("an unknown host key is never accepted silently: --yes alone is not enough", async () => {
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("was not confirmed");
    expect(result.stderr).toContain(`--peer-host-key ${await hostKeyFingerprint("mn2")}`);
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("a wrong password: a clear error, the password shown nowhere, neither node changed", async () => {
    await sh("mn1", 'umask 077 && echo "not-the-password-x7" > "$1"', `${IMPORT_DIR}/wrong.pw`);
    const result = await installHa(["--peer-password-file", `${IMPORT_DIR}/wrong.pw`, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`could not log in to ${LAB_SSH_USER}@${HOSTS.mn2.address}: the password or key was refused`);
    expect(result.stdout + result.stderr).not.toContain("not-the-password-x7");
    expect(await footprint("mn1")).toEqual([]);
    expect(await footprint("mn2")).toEqual([]);
  });

  it("preflight fails when the platform versions differ: one table, the fix named, neither node changed", async () => {
    await setPlatform("mn2", "4.7.0");
    try {
      const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(/^check\s+mn1 \(this\)\s+mn2\s+result\s+fix$/m);
      expect(result.stdout).toMatch(/same platform version\s+4\.8\.0\s+4\.7\.0\s+FAIL\s+upgrade the older MN/);
      expect(result.stdout).toMatch(/gateway answers\s+10\.250\.77\.1\s+10\.250\.77\.1\s+PASS/);
      expect(result.stderr).toContain("preflight failed (same platform version); nothing was changed on either node");
      expect(result.stderr).toContain("hint: upgrade the older MN to the same platform version first");
      expect(await footprint("mn1")).toEqual([]);
      expect(await footprint("mn2")).toEqual([]); // the staged suite was removed again
    } finally {
      await setPlatform("mn2", "4.8.0");
    }
  });
});

describe("install-ha from bare nodes", () => {
  it("a step that fails stops at once naming the step and the cause; the rerun resumes there and ends with a healthy pair serving the VIP", async () => {
    const password = readFileSync(LAB_SSH_PASSWORD_FILE, "utf8").trim();
    // An obstacle on mn2 that breaks the systemd-unit step (a directory where the unit's temporary file goes).
    await sh("mn2", 'mkdir -p "$1"', "/etc/systemd/system/mnha.service.tmp");
    const failed = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2")]);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/install-ha stopped at step 8\/10 "write the systemd unit[^"]*": writing \/etc\/systemd\/system\/mnha.service failed on [^ ]+ \(exit \d+\): .*Is a directory/);
    expect(failed.stderr).toContain("run the same command again: it resumes at this step");
    expect(failed.stdout).not.toContain("start both agents");
    expect(await lab.holders()).toEqual([]);
    await sh("mn2", 'rmdir "$1"', "/etc/systemd/system/mnha.service.tmp");

    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain("resuming the install");
    expect(result.stdout).toMatch(/\[5\/10\] write both configs[^\n]*: skipped \(/);
    const output = failed.stdout + result.stdout;
    for (const step of ["generate the pair's secret", "install suite", "copy the suite to", "write both configs", "SSH key trust", "seed mn2's database", "write the systemd unit", "start both agents", "wait until the pair is healthy"]) {
      expect(output).toContain(step);
    }
    expect(result.stdout).toContain("systemd is not PID 1 here");
    expect(result.stdout).toContain("systemd-analyze verify passed");
    // The staged suite is gone once installed.
    for (const node of ["mn1", "mn2"] as const) expect((await nodeExec(node, ["test", "-e", "/var/lib/mnha-stage"])).code).not.toBe(0);
    expect(result.stdout).toContain("The pair is installed and healthy");

    // One holder on the wire, and only its MAC answers ARP for the VIP.
    const holder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
    expect(await lab.arpProbe()).toEqual([HOSTS[holder].mac]);
    // Both agents see each other (asked on mn2, through its own installed suite).
    const status = JSON.parse((await nodeExec("mn2", ["/usr/local/bin/mnha", "status", "--json"])).stdout) as { peer: { connected: boolean }; vipOwner: string; self: { eligible: boolean } };
    expect(status.peer.connected).toBe(true);
    expect(status.self.eligible).toBe(true);
    expect(status.vipOwner).toBe(holder);

    // The suite on mn2 came from the bundle (no network), and says so.
    const version = await nodeExec("mn2", ["/usr/local/bin/zsha2", "version"]);
    expect(version.stdout).toContain(`suite 0.1.0, peer protocol ${CURRENT_PROTOCOL_VERSION}`);
    expect(version.stdout).toContain("platform 4.8.0, license enterprise");

    // Configs and the shared secret: 0600, the same secret on both nodes.
    for (const node of ["mn1", "mn2"] as const) {
      const modes = await sh(node, 'stat -c %a "$1" "$2"', "/etc/mnha/mnha.yaml", "/etc/mnha/secret");
      expect(modes.stdout.trim().split("\n")).toEqual(["600", "600"]);
    }
    const secrets = await Promise.all((["mn1", "mn2"] as const).map(async (node) => (await sh(node, 'sha256sum < "$1"', "/etc/mnha/secret")).stdout));
    expect(secrets[0]).toBe(secrets[1]);

    // The key trust for data sync works both ways with real OpenSSH and strict host keys.
    for (const [from, to] of [["mn1", "mn2"], ["mn2", "mn1"]] as const) {
      const login = await nodeExec(from, ["ssh", "-i", "/etc/mnha/ssh/id_ed25519", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/etc/mnha/ssh/known_hosts", `${LAB_SSH_USER}@${HOSTS[to].address}`, "cat", "/proc/sys/kernel/hostname"], { timeoutMs: 20_000 });
      expect(login.code, login.stderr).toBe(0);
    }

    // The password is nowhere: not printed, not in the logs, the state file or the configs.
    expect(output + failed.stderr + result.stderr).not.toContain(password);
    for (const node of ["mn1", "mn2"] as const) {
      const grep = await sh(node, 'grep -rlF -- "$1" /etc/mnha /var/lib/mnha || true', password);
      expect(grep.stdout.trim()).toBe("");
    }
  });

  it("running it again changes nothing: every step is already done", async () => {
    const holderBefore = await lab.holder();
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes"]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain("resuming the install");
    expect(result.stdout).not.toMatch(/\] [^\n]*\.\.\.$/m); // no step started
    expect(result.stdout).toMatch(/start both agents \(this node first\): skipped \(/);
    expect(await lab.holder()).toBe(holderBefore);
  });

  it("--cleanup undoes the install: agents stopped, the VIP released, configs, secret and units removed", async () => {
    const result = await installHa(["--peer-password-file", LAB_SSH_PASSWORD_FILE, "--cleanup"]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/undone: start both agents[\s\S]*undone: write the systemd unit[\s\S]*undone: SSH key trust[\s\S]*undone: write both configs[\s\S]*undone: generate the pair's secret/);
    expect(await lab.holders()).toEqual([]);
    for (const node of ["mn1", "mn2"] as const) {
      for (const path of ["/etc/mnha/mnha.yaml", "/etc/mnha/secret", "/etc/systemd/system/mnha.service", "/var/lib/mnha/install-ha.json"]) {
        expect((await nodeExec(node, ["test", "-e", path])).code, `${node}:${path}`).not.toBe(0);
      }
      expect((await nodeExec(node, ["test", "-e", "/etc/mnha/ssh/id_ed25519"])).code).not.toBe(0);
      const authorized = await sh(node, 'cat "$1/.ssh/authorized_keys"', `/var/lib/${LAB_SSH_USER}`);
      expect(authorized.stdout).not.toContain("mnha-sync-");
      const agents = await sh(node, 'pid=$(cat /run/mnha/agent.pid) && kill -0 "$pid" && echo running || echo stopped');
      expect(agents.stdout.trim()).toBe("stopped");
    }
  });
});
