/**
 * upgrade-mn in the lab, with real OpenSSH to the peer (SFTP upload, remote installer run),
 * the real agents (maintenance, the switchover) and a stand-in installer (.bin) that writes
 * the node's platform version file, which the MN stand-in reports, and that can be told to
 * fail. The installer told to fail on the standby: the pair stays served by the old holder
 * and the error names the step; without the fault the same command resumes and finishes.
 * Then a DVD image built with real xorriso, run on the new holder (mn2): both nodes on the
 * next version. (The forced xorriso extraction path is also proven in packages/agent/test/upgrade/.)
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PLATFORM_VERSION_PATH } from "../lab/config-writer.js";
import { AGENT_MAIN, HOSTS, nodePaths, VIP_ADDRESS, type MnNode } from "../lab/constants.js";
import { runIn } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { labDatabase, mariaDbPaths } from "../lab/mariadb.js";
import { LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec, sshdPaths } from "../lab/sshd.js";
import { expectMovedOnce, expectNeverTwoMacs, expectServedWithin, labArchiveDir, runScenario } from "./scenario.js";

const lab = new Lab({ sshd: true });
const FAULT_FILE = "/etc/mnha-lab-installer-fail";
const installer = `${nodePaths("mn1").dir}/platform-installer-4.9.0.bin`;
const knownHosts = `${nodePaths("mn1").dir}/upgrade_known_hosts`;

const INSTALLER = `#!/bin/sh
# mnha-installer: {"version":"4.9.0","requiresSuite":"0.1.0"}
# Lab stand-in for the platform installer: writes the platform version the MN stand-in reports.
if [ -e ${FAULT_FILE} ]; then echo "stand-in installer: told to fail (${FAULT_FILE} exists)" >&2; exit 1; fi
mkdir -p /usr/local/zstack
echo 4.9.0 > ${PLATFORM_VERSION_PATH}.new && mv -f ${PLATFORM_VERSION_PATH}.new ${PLATFORM_VERSION_PATH}
echo "stand-in installer: platform 4.9.0 installed on $(cat /proc/sys/kernel/hostname)"
`;

function upgradeMn() {
  return nodeExec(
    "mn1",
    [process.execPath, AGENT_MAIN, "upgrade-mn", installer, "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--known-hosts", knownHosts, "--healthy-timeout", "90", "--yes", "--config", nodePaths("mn1").config],
    { timeoutMs: 400_000 },
  );
}

async function platformVersion(node: MnNode): Promise<string> {
  return (await nodeExec(node, ["cat", PLATFORM_VERSION_PATH])).stdout.trim();
}

/** What the MN stand-in answers, asked from the client namespace. */
async function mnAnswer(address: string): Promise<{ node: string; version: string }> {
  const result = await runIn(HOSTS.client.namespace, "curl", ["-s", "--max-time", "3", `http://${address}:8080/`], { allowFailure: true });
  return JSON.parse(result.stdout || "{}") as { node: string; version: string };
}

const db = { mn1: () => labDatabase("mn1"), mn2: () => labDatabase("mn2") };

async function sql(node: MnNode, statement: string): Promise<Record<string, unknown>[]> {
  return db[node]().withConnection(async (c) => (await c.query(statement)) as Record<string, unknown>[]);
}

function mnhaIn(node: MnNode, args: string[]) {
  return runIn(HOSTS[node].namespace, process.execPath, [AGENT_MAIN, ...args, "--config", nodePaths(node).config], { allowFailure: true, timeoutMs: 120_000 });
}

/** Delays mn2's replica by `seconds` (MariaDB's MASTER_DELAY): a standby whose database lags behind. */
async function delayReplica(node: MnNode, seconds: number): Promise<void> {
  await db[node]().withConnection(async (c) => {
    await c.query("STOP SLAVE");
    await c.query(`CHANGE MASTER TO MASTER_DELAY = ${seconds}`);
    await c.query("START SLAVE");
  });
}

beforeAll(async () => {
  await lab.up({ fresh: true });
  // The pair's databases replicate both ways: upgrade-mn waits for the upgraded standby's to catch up.
  const first = await mnhaIn("mn1", ["db", "setup-replication"]);
  expect(first.code, first.stdout + first.stderr).toBe(0);
  copyFileSync(mariaDbPaths("mn1").replicationPasswordFile, mariaDbPaths("mn2").replicationPasswordFile);
  const second = await mnhaIn("mn2", ["db", "setup-replication"]);
  expect(second.code, second.stdout + second.stderr).toBe(0);
  await sql("mn1", "CREATE DATABASE appdb");
  await sql("mn1", "CREATE TABLE appdb.t (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40))");
  for (const node of ["mn1", "mn2"] as const) {
    const set = await nodeExec(node, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && echo 4.8.0 > "$1"', "sh", PLATFORM_VERSION_PATH]);
    expect(set.code, set.stderr).toBe(0);
  }
  writeFileSync(installer, INSTALLER);
  chmodSync(installer, 0o700);
  writeFileSync(knownHosts, `${HOSTS.mn2.address} ${readFileSync(`${sshdPaths("mn2").hostKey}.pub`, "utf8")}`);
  await lab.waitForHolder("mn1", { timeoutMs: 60_000 });
}, 300_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("upgrade") });
});

describe("mnha upgrade-mn", () => {
  it("the MN stand-ins report the platform version of their node", async () => {
    expect(await mnAnswer(VIP_ADDRESS)).toEqual({ node: "mn1", service: "mn", version: "4.8.0" });
    expect((await mnAnswer(HOSTS.mn2.address)).version).toBe("4.8.0");
  });

  it("run on the standby it refuses, naming the holder, and changes nothing", async () => {
    const kh = `${nodePaths("mn2").dir}/standby_known_hosts`;
    writeFileSync(kh, `${HOSTS.mn1.address} ${readFileSync(`${sshdPaths("mn1").hostKey}.pub`, "utf8")}`);
    const result = await nodeExec(
      "mn2",
      [process.execPath, AGENT_MAIN, "upgrade-mn", installer, "--peer", `${LAB_SSH_USER}@${HOSTS.mn1.address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--known-hosts", kh, "--yes", "--config", nodePaths("mn2").config],
      { timeoutMs: 60_000 },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("run upgrade-mn on the VIP holder (mn1), not on mn2");
    expect(result.stderr).toContain("nothing was changed");
    expect(await platformVersion("mn1")).toBe("4.8.0");
    expect(await platformVersion("mn2")).toBe("4.8.0");
    expect((await lab.agentStatus("mn2")).ops?.self.maintenance ?? null).toBeNull();
  });

  it("the installer failing on the standby stops the run there: the old holder still serves, the step is named", async () => {
    expect((await nodeExec("mn2", ["touch", FAULT_FILE])).code).toBe(0);
    const result = await upgradeMn();
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toMatch(/stopped at step 4\/10 "install platform 4\.9\.0 on mn2": the installer failed on mn2 \(exit 1\): stand-in installer: told to fail/);
    expect(result.stderr).toMatch(/copied to mn2:\/var\/lib\/mnha-stage\/platform-installer-4\.9\.0\.bin \(SHA-256 [0-9a-f]{16}… verified there\)/);
    expect(await lab.holder()).toBe("mn1");
    expect(await mnAnswer(VIP_ADDRESS)).toMatchObject({ node: "mn1", version: "4.8.0" });
    expect(await platformVersion("mn2")).toBe("4.8.0");
    expect(await platformVersion("mn1")).toBe("4.8.0");
  });

  it("without the fault the same command resumes and finishes: both upgraded, the VIP on the upgraded standby, out of maintenance; the client served throughout", async () => {
    expect((await nodeExec("mn2", ["rm", "-f", FAULT_FILE])).code).toBe(0);
    // The failed run left the pair in maintenance (not "stable" for the lab): mn1 holds, mn2 stands by.
    expect(await lab.holder()).toBe("mn1");
    const before = { holder: "mn1" as const, standby: "mn2" as const };
    let result = { code: -1, stdout: "", stderr: "" };
    // The client sampler runs over the whole resumed upgrade: one planned switchover, never two MACs.
    const run = await runScenario(lab, before, {
      name: "upgrade-mn resumed",
      fault: async () => {
        result = await upgradeMn();
      },
      outcome: async () => {
        if (result.code !== 0) throw new Error(`upgrade-mn failed: ${result.stderr}`);
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectMovedOnce(run, "mn1", "mn2");
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toContain("resuming the upgrade to platform 4.9.0");
    expect(result.stderr).toMatch(/stage-mn2|copy the installer to mn2: skipped/);
    expect(result.stdout).toContain("upgrade-mn done: mn2 and mn1 run platform 4.9.0; mn2 holds the VIP");
    expect(await platformVersion("mn1")).toBe("4.9.0");
    expect(await platformVersion("mn2")).toBe("4.9.0");
    expect(await lab.holder()).toBe("mn2");
    expect(await mnAnswer(VIP_ADDRESS)).toMatchObject({ node: "mn2", version: "4.9.0" });
    expect((await mnAnswer(HOSTS.mn1.address)).version).toBe("4.9.0");
    const status = await lab.agentStatus("mn1");
    expect(status.ops?.self.maintenance ?? null).toBeNull();
    expect(status.ops?.peer?.maintenance ?? null).toBeNull();
  });
});

describe("mnha upgrade-mn with a DVD image", () => {
  it("installs from an ISO built with xorriso, run on the other node (now the holder): both on the next version", async () => {
    const tree = `${nodePaths("mn2").dir}/dvd-5.0.0`;
    mkdirSync(tree, { recursive: true });
    writeFileSync(`${tree}/mnha-installer.json`, JSON.stringify({ version: "5.0.0", requiresSuite: "0.1.0" }));
    writeFileSync(`${tree}/install.sh`, INSTALLER.replace(/4\.9\.0/g, "5.0.0").replace(/^# mnha-installer:.*$/m, "# DVD install script"));
    const iso = `${nodePaths("mn2").dir}/platform-dvd-5.0.0.iso`;
    const made = await runIn(HOSTS.mn2.namespace, "xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-o", iso, tree], { allowFailure: true });
    expect(made.code, made.stderr).toBe(0);
    const mn1KnownHosts = `${nodePaths("mn2").dir}/upgrade_known_hosts`;
    writeFileSync(mn1KnownHosts, `${HOSTS.mn1.address} ${readFileSync(`${sshdPaths("mn1").hostKey}.pub`, "utf8")}`);
    const result = await nodeExec(
      "mn2",
      [process.execPath, AGENT_MAIN, "upgrade-mn", iso, "--peer", `${LAB_SSH_USER}@${HOSTS.mn1.address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--known-hosts", mn1KnownHosts, "--healthy-timeout", "90", "--yes", "--config", nodePaths("mn2").config],
      { timeoutMs: 400_000 },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toMatch(/mounted .*platform-dvd-5\.0\.0\.iso|loop mount not possible here: extracting with xorriso/);
    expect(result.stdout).toContain("upgrade-mn done: mn1 and mn2 run platform 5.0.0; mn1 holds the VIP");
    expect(await platformVersion("mn1")).toBe("5.0.0");
    expect(await platformVersion("mn2")).toBe("5.0.0");
    expect(await lab.holder()).toBe("mn1");
    expect(await mnAnswer(VIP_ADDRESS)).toMatchObject({ node: "mn1", version: "5.0.0" });
  });
});

describe("upgrade-mn waits for the upgraded standby's database", () => {
  const installer510 = `${nodePaths("mn1").dir}/platform-installer-5.1.0.bin`;
  const run510 = (extra: string[]) =>
    nodeExec(
      "mn1",
      [process.execPath, AGENT_MAIN, "upgrade-mn", installer510, "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--known-hosts", knownHosts, "--healthy-timeout", "90", ...extra, "--yes", "--config", nodePaths("mn1").config],
      { timeoutMs: 400_000 },
    );
  const rows = async (node: MnNode) => Number((await sql(node, "SELECT COUNT(*) AS n FROM appdb.t"))[0]?.["n"]);
  const write = async (count: number) => {
    for (let i = 0; i < count; i++) await sql("mn1", `INSERT INTO appdb.t (note) VALUES ('row ${i}')`);
  };

  it("a standby that stays behind stops the run at the wait, bounded, naming the lag; the VIP stays; the rerun shows the lag shrink and switches over only at lag 0", async () => {
    expect(await lab.holder()).toBe("mn1");
    writeFileSync(installer510, INSTALLER.replace(/4\.9\.0/g, "5.1.0"));
    chmodSync(installer510, 0o700);
    // mn2's replica applies nothing younger than 120 s: after its upgrade its database stays behind.
    await delayReplica("mn2", 120);
    await write(20);
    const failed = await run510(["--catch-up-timeout", "8"]);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/stopped at step 5\/10 "wait for mn2's services and database": mn2's database did not catch up with mn1 within 8 s \(\d+ transaction\(s\) behind mn1[^)]*\); the VIP stays on mn1/);
    expect(failed.stderr).toMatch(/mn2's database: 20 transaction\(s\) behind mn1/);
    expect(await platformVersion("mn2")).toBe("5.1.0"); // upgraded, but not switched to
    expect(await lab.holder()).toBe("mn1");
    expect(await mnAnswer(VIP_ADDRESS)).toMatchObject({ node: "mn1" });

    // A replica 15 s behind: the rerun waits, showing the lag, and switches over once it is 0.
    await delayReplica("mn2", 15);
    await write(10);
    const resumed = await run510([]);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/mn2's database: \d+ transaction\(s\) behind mn1/);
    const caughtUp = resumed.stderr.indexOf("mn2's database caught up with mn1: replication running, lag 0");
    expect(caughtUp).toBeGreaterThan(0);
    expect(resumed.stderr.indexOf("switch the VIP over from mn1 to mn2 ...")).toBeGreaterThan(caughtUp);
    expect(resumed.stderr).toMatch(/mn1's database caught up with mn2: replication running, lag 0/);
    expect(resumed.stdout).toContain("upgrade-mn done: mn2 and mn1 run platform 5.1.0; mn2 holds the VIP");
    expect(await rows("mn2")).toBe(await rows("mn1"));
    await delayReplica("mn2", 0);
  });
});
