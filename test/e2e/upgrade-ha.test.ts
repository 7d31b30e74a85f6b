/**
 * upgrade-ha end to end: a pair installed by install-ha from the suite bundle of this source
 * tree (version N), upgraded to a test build of the next version (N+1: the next patch
 * version, offering the peer protocol versions [current, current+1]), with real OpenSSH
 * between the nodes, each node's own /opt/mnha (node-view.sh) and the agents the suite runs.
 *
 * - Run on the standby: refused, naming the holder, nothing changed.
 * - The N+1 install told to fail on the standby (the test build's install.sh fails after
 *   switching /opt/mnha/current while a fault file exists): the standby is rolled back to N,
 *   the old holder serves throughout, the error names the step.
 * - Then the N+1 agent told not to start on the standby (its old agent already stopped): the
 *   standby is rolled back to N and its agent restarted on N; the same.
 * - The fault removed, the same command resumes and finishes, with the client sampler
 *   running: served throughout, never two MACs, one planned move; both nodes on N+1 and their
 *   link on protocol current+1, while the mixed pair negotiated the current version.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSIONS } from "@mnha/protocol";
import { GATEWAY_ADDRESS, HOSTS, REPO_ROOT, VIP_ADDRESS, peerOf, type MnNode } from "../lab/constants.js";
import { buildTestBundle } from "../lab/bundle.js";
import { Lab } from "../lab/lab.js";
import { hostKeyFingerprint, installOutput, LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec } from "../lab/sshd.js";
import { expectNeverTwoMacs, expectServedWithin, labArchiveDir, PLANNED_GAP_BOUND_MS, runScenario } from "./scenario.js";

const lab = new Lab({ sshd: true });
const IMPORT_DIR = "/var/lib/mnha-import";
const FAULT_FILE = "/etc/mnha-lab-install-fail";
const AGENT_FAULT_FILE = "/etc/mnha-lab-agent-start-fail";

const CURRENT = (JSON.parse(readFileSync(resolve(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
/** N+1: the next patch version of this source tree. */
const NEXT = CURRENT.replace(/^(\d+)\.(\d+)\.(\d+).*$/, (_all, major: string, minor: string, patch: string) => `${major}.${minor}.${Number(patch) + 1}`);
const CURRENT_PROTOCOL = Math.max(...PROTOCOL_VERSIONS);
const NEXT_PROTOCOL = CURRENT_PROTOCOL + 1;

let bundleN = "";
let bundleNext = "";
let holder: MnNode = "mn1";
let standby: MnNode = "mn2";

async function sh(node: MnNode, script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return nodeExec(node, ["sh", "-c", script, "sh", ...args], { timeoutMs: 60_000 });
}

/** mnha upgrade-ha with the installed suite's own CLI (what an operator types), on `node`. */
function upgradeHa(node: MnNode, bundle: string) {
  return nodeExec(node, ["/usr/local/bin/mnha", "upgrade-ha", bundle, "--peer", `${LAB_SSH_USER}@${HOSTS[peerOf(node)].address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--rejoin-timeout", "120", "--yes"], { timeoutMs: 600_000 });
}

async function installedSuite(node: MnNode): Promise<string> {
  return (await nodeExec(node, ["cat", "/opt/mnha/current/VERSION"])).stdout.trim();
}

interface VersionJson {
  suite: { suite: string; protocol: number; protocols: number[]; testBuild?: boolean };
  agent: { version: string; protocol: number; offered?: number[]; negotiated?: number | null } | null;
}

async function versionOf(node: MnNode): Promise<VersionJson> {
  const result = await nodeExec(node, ["/usr/local/bin/mnha", "version", "--json"]);
  return JSON.parse(result.stdout) as VersionJson;
}

async function statusOf(node: MnNode): Promise<{ vipOwner: string | null; peer: { connected: boolean }; protocol?: { offered: number[]; negotiated: number | null } }> {
  return JSON.parse((await nodeExec(node, ["/usr/local/bin/mnha", "status", "--json"])).stdout) as never;
}

beforeAll(async () => {
  bundleN = buildTestBundle("upgrade-ha-e2e/current", CURRENT, []);
  bundleNext = buildTestBundle("upgrade-ha-e2e/next", NEXT, ["--suite-version", NEXT, "--protocol-versions", [...PROTOCOL_VERSIONS, NEXT_PROTOCOL].join(","), "--fail-install-if", FAULT_FILE, "--fail-agent-start-if", AGENT_FAULT_FILE]);
  // The operator's checksum file next to the bundle: upgrade-ha checks it.
  writeFileSync(`${bundleNext}.sha256`, `${createHash("sha256").update(readFileSync(bundleNext)).digest("hex")}  ${bundleNext.split("/").pop()}\n`);
  await lab.up({ fresh: true, agents: false });
  for (const node of ["mn1", "mn2"] as const) {
    const set = await sh(node, 'mkdir -p "$(dirname "$1")" "$(dirname "$2")" && echo 4.8.0 > "$1" && echo enterprise > "$2"', "/usr/local/zstack/VERSION", "/var/lib/zstack/license/license-type");
    expect(set.code, set.stderr).toBe(0);
  }
  // The pair, installed from bundle N the way install.test.ts does it.
  const name = bundleN.split("/").pop()?.replace(/\.tar\.gz$/, "") as string;
  // install-ha finds the bundle next to the unpacked suite it runs from.
  const unpacked = await sh("mn1", 'mkdir -p "$1" && cp "$2" "$1/" && cd "$1" && tar -xzf "$2"', IMPORT_DIR, bundleN);
  expect(unpacked.code, unpacked.stderr).toBe(0);
  const install = await nodeExec(
    "mn1",
    [
      `${IMPORT_DIR}/${name}/bin/mnha`, "install-ha",
      "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS,
      "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--node-name", "mn1", "--peer-name", "mn2",
      "--min-cpus", "1", "--min-memory-gb", "1",
      "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--peer-host-key", await hostKeyFingerprint("mn2"), "--yes",
    ],
    { timeoutMs: 400_000 },
  );
  expect(install.code, await installOutput(install)).toBe(0);
  // As a pair installed before install-ha masked the distribution's keepalived.service: enabled again on both.
  for (const node of ["mn1", "mn2"] as const) {
    const unit = await sh(node, 'systemctl unmask keepalived.service && systemctl enable keepalived.service && rm -f "$1" && systemctl is-enabled keepalived.service', "/etc/mnha/keepalived.service.before");
    expect(unit.stdout.trim(), unit.stderr).toBe("enabled");
  }
  holder = await lab.waitForHolder(null, { timeoutMs: 60_000 });
  standby = peerOf(holder);
}, 1_200_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("upgrade-ha") });
});

describe("mnha upgrade-ha", () => {
  it(`the pair runs suite ${CURRENT} (protocol v${CURRENT_PROTOCOL}); the next bundle is a test build ${NEXT} offering v${CURRENT_PROTOCOL} and v${NEXT_PROTOCOL}`, async () => {
    for (const node of ["mn1", "mn2"] as const) {
      expect(await installedSuite(node)).toBe(CURRENT);
      const version = await versionOf(node);
      expect(version.agent?.version).toBe(CURRENT);
      expect(version.agent?.negotiated).toBe(CURRENT_PROTOCOL);
    }
    const listing = execFileSync("tar", ["-xzOf", bundleNext, `mnha-suite-${NEXT}-linux-x64/app/suite.json`], { encoding: "utf8" });
    expect(JSON.parse(listing)).toMatchObject({ suite: NEXT, protocol: NEXT_PROTOCOL, protocolVersions: [...PROTOCOL_VERSIONS, NEXT_PROTOCOL], testBuild: true });
  }, 600_000);

  it("run on the standby it refuses, naming the holder, and changes nothing", async () => {
    const result = await upgradeHa(standby, bundleNext);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`run upgrade-ha on the VIP holder (${holder}), not on ${standby}`);
    expect(result.stderr).toContain("nothing was changed");
    for (const node of ["mn1", "mn2"] as const) expect(await installedSuite(node)).toBe(CURRENT);
    expect(await lab.holder()).toBe(holder);
  }, 600_000);

  it("the install failing on the standby rolls the standby back to its suite; the old holder serves throughout; the step is named", async () => {
    expect((await nodeExec(standby, ["touch", FAULT_FILE])).code).toBe(0);
    let result = { code: -1, stdout: "", stderr: "" };
    const run = await runScenario(lab, { holder, standby }, {
      name: "upgrade-ha, install fails on the standby",
      fault: async () => {
        result = await upgradeHa(holder, bundleNext);
      },
      outcome: async () => {
        if (result.code === 0) throw new Error("upgrade-ha succeeded although the install was told to fail");
      },
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`copied to ${standby}:/var/lib/mnha-stage/upgrade-ha/mnha-suite-${NEXT.replace(/\./g, "\\.")}-linux-x64\\.tar\\.gz over SFTP \\(SHA-256 [0-9a-f]{16}… verified there\\)`));
    expect(result.stderr).toContain(`upgrade-ha ${NEXT} stopped at step 3/9 "install suite ${NEXT} on ${standby} (suite ${CURRENT} kept for rollback)": install.sh failed on ${standby} (exit 1): install.sh: this test build is told to fail (${FAULT_FILE} exists); ${standby} was rolled back to suite ${CURRENT} and rejoined the pair`);
    expect(result.stderr).toContain("run the same command again: it resumes at this step");
    expect(result.stderr).toContain(`${standby}: rolling back to suite ${CURRENT}`);
    // Served by the old holder throughout; nothing moved, never two MACs.
    expectNeverTwoMacs(run);
    expect(run.analysis.http.moves).toEqual([]);
    expect(run.analysis.arp.moves).toEqual([]);
    expect(run.analysis.http.longestGapMs).toBeLessThanOrEqual(PLANNED_GAP_BOUND_MS);
    expect(await lab.holder()).toBe(holder);
    // The standby runs its old suite again, and the pair is whole.
    expect(await installedSuite(standby)).toBe(CURRENT);
    expect((await versionOf(standby)).agent?.version).toBe(CURRENT);
    expect(await installedSuite(holder)).toBe(CURRENT);
    const status = await statusOf(holder);
    expect(status.peer.connected).toBe(true);
    expect(status.protocol?.negotiated).toBe(CURRENT_PROTOCOL);
  }, 600_000);

  it("the new agent failing to start on the standby: rolled back to its suite and its agent restarted on it; the old holder serves throughout; the step is named", async () => {
    expect((await nodeExec(standby, ["rm", "-f", FAULT_FILE])).code).toBe(0);
    expect((await nodeExec(standby, ["touch", AGENT_FAULT_FILE])).code).toBe(0);
    const pidBefore = (await nodeExec(standby, ["cat", "/run/mnha/agent.pid"])).stdout.trim();
    let result = { code: -1, stdout: "", stderr: "" };
    const run = await runScenario(lab, { holder, standby }, {
      name: "upgrade-ha, the new agent does not start on the standby",
      fault: async () => {
        result = await upgradeHa(holder, bundleNext);
      },
      outcome: async () => {
        if (result.code === 0) throw new Error("upgrade-ha succeeded although the agent was told not to start");
      },
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain(`resuming the upgrade to suite ${NEXT}`);
    expect(result.stderr).toContain(`upgrade-ha ${NEXT} stopped at step 4/9 "restart ${standby}'s agent on suite ${NEXT} and wait until it rejoins": starting the agent failed on ${standby} (exit 1): mnha: this test build is told not to start its agent (${AGENT_FAULT_FILE} exists); ${standby} was rolled back to suite ${CURRENT} and rejoined the pair`);
    expect(result.stderr).toContain(`${standby} rejoined on suite ${CURRENT}: peer link protocol v${CURRENT_PROTOCOL} negotiated`);
    expectNeverTwoMacs(run);
    expect(run.analysis.http.moves).toEqual([]);
    expect(run.analysis.arp.moves).toEqual([]);
    expect(run.analysis.http.longestGapMs).toBeLessThanOrEqual(PLANNED_GAP_BOUND_MS);
    expect(await lab.holder()).toBe(holder);
    // Restarted: another agent process, on the old suite.
    const pidAfter = (await nodeExec(standby, ["cat", "/run/mnha/agent.pid"])).stdout.trim();
    expect(pidAfter).not.toBe(pidBefore);
    expect(await installedSuite(standby)).toBe(CURRENT);
    expect((await versionOf(standby)).agent?.version).toBe(CURRENT);
    expect((await statusOf(holder)).peer.connected).toBe(true);
  }, 600_000);

  it("without the fault the same command resumes and finishes: both nodes on the next version, one planned switchover, served throughout", async () => {
    expect((await nodeExec(standby, ["rm", "-f", FAULT_FILE, AGENT_FAULT_FILE])).code).toBe(0);
    let result = { code: -1, stdout: "", stderr: "" };
    const run = await runScenario(lab, { holder, standby }, {
      name: "upgrade-ha resumed",
      fault: async () => {
        result = await upgradeHa(holder, bundleNext);
      },
      outcome: async () => {
        if (result.code !== 0) throw new Error(`upgrade-ha failed: ${result.stderr}`);
      },
    });
    console.log(`--- upgrade-ha output (resumed run)\n${result.stderr}${result.stdout}`);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectNeverTwoMacs(run);
    expectServedWithin(run, PLANNED_GAP_BOUND_MS);
    // One move, the planned switchover (it comes after the standby's upgrade, so later than a failover would).
    expect(run.analysis.http.moves.map((m) => `${m.from}->${m.to}`), "who served the client, changes").toEqual([`${holder}->${standby}`]);
    expect(run.analysis.arp.moves.map((m) => `${m.from}->${m.to}`), "who answered ARP, changes").toEqual([`${holder}->${standby}`]);
    for (const move of [...run.analysis.http.moves, ...run.analysis.arp.moves]) expect(move.at).toBeGreaterThanOrEqual(run.faultAt);
    expect(result.stderr).toContain(`resuming the upgrade to suite ${NEXT}`);
    expect(result.stderr).toMatch(new RegExp(`copy the suite bundle [^\\n]* to ${standby}[^\\n]*: skipped`));
    // Mixed versions: the upgraded standby offers both versions, the old holder only the current one: they agree on the current.
    expect(result.stderr).toContain(`${standby} rejoined on suite ${NEXT}: peer link protocol v${CURRENT_PROTOCOL} negotiated (${standby} offers ${[...PROTOCOL_VERSIONS, NEXT_PROTOCOL].join(",")}, ${holder} offers ${PROTOCOL_VERSIONS.join(",")})`);
    // Both on N+1: the next version.
    expect(result.stderr).toContain(`${holder} rejoined on suite ${NEXT}: peer link protocol v${NEXT_PROTOCOL} negotiated`);
    expect(result.stdout).toContain(`upgrade-ha done: ${standby} and ${holder} run suite ${NEXT}; ${standby} holds the VIP`);
    expect(await lab.holder()).toBe(standby);
    for (const node of ["mn1", "mn2"] as const) {
      expect(await installedSuite(node)).toBe(NEXT);
      const version = await versionOf(node);
      expect(version.suite).toMatchObject({ suite: NEXT, protocol: NEXT_PROTOCOL, testBuild: true });
      expect(version.agent).toMatchObject({ version: NEXT, protocol: NEXT_PROTOCOL, negotiated: NEXT_PROTOCOL });
      // The previous release is kept for a rollback; the staging dir is gone.
      expect((await nodeExec(node, ["test", "-f", `/opt/mnha/releases/${CURRENT}/.complete`])).code).toBe(0);
      expect((await nodeExec(node, ["test", "-e", "/var/lib/mnha-stage/upgrade-ha"])).code).not.toBe(0);
    }
    // Each node's keepalived.service, enabled as on a pair installed before install-ha masked it, is masked once its suite is installed.
    expect(result.stderr + result.stdout).toContain(`${holder}: keepalived.service was enabled; disabled and masked`);
    for (const node of ["mn1", "mn2"] as const) expect([node, (await sh(node, "systemctl is-enabled keepalived.service")).stdout.trim()]).toEqual([node, "masked"]);
    const human = await nodeExec(holder, ["/usr/local/bin/mnha", "version"]);
    expect(human.stdout).toContain(`agent ${NEXT} on ${holder} (peer protocol ${NEXT_PROTOCOL}, offers ${[...PROTOCOL_VERSIONS, NEXT_PROTOCOL].join(",")}, negotiated v${NEXT_PROTOCOL} with the peer)`);
  }, 600_000);

  it("running it again changes nothing", async () => {
    const result = await upgradeHa(standby, bundleNext);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`already run suite ${NEXT}; nothing to do`);
    expect(await lab.holder()).toBe(standby);
  }, 600_000);
});
