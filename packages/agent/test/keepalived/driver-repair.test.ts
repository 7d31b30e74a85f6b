import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger, silentLogger, type Logger } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeepalivedDriver, type KeepalivedRepair } from "../../src/keepalived/driver.js";
import { allThreadsStopped } from "../checks/helpers.js";
import { NetnsLab, waitUntil } from "../net/netns-lab.js";
import { tempDataDir, testConfig } from "./helpers.js";

const logger = (): Logger => (process.env["MNHA_TEST_LOG"] === "1" ? createLogger({ level: "debug", pretty: false, destination: process.stderr }) : silentLogger());

/** One node alone in a throwaway namespace: mnha-ut-kr1, kra0 10.252.0.2/24, VIP 10.252.0.100. */
const lab = new NetnsLab();
const NS = "mnha-ut-kr1";
const VIP = "10.252.0.100";
const dirs: string[] = [];
const drivers: KeepalivedDriver[] = [];
const timers: NodeJS.Timeout[] = [];

beforeAll(async () => {
  await lab.namespace("kr1");
  await lab.namespace("kr2");
  await lab.veth({ ns: NS, iface: "kra0", cidr: "10.252.0.2/24" }, { ns: "mnha-ut-kr2", iface: "krb0", cidr: "10.252.0.3/24" });
});

afterAll(async () => {
  for (const timer of timers) clearInterval(timer);
  for (const driver of drivers) await driver.stop().catch(() => undefined);
  await lab.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const read = (file: string): string => readFileSync(file, "utf8").trim();

/**
 * A holder: driver started with a wrapper as its keepalived binary (runs the real one unless
 * `<dataDir>/broken` exists, then exits 1 like a binary that cannot start), gate open, lease
 * renewed every 100 ms, VIP up.
 */
async function holder(dataDir: string = tempDataDir("kr")): Promise<{ driver: KeepalivedDriver; dataDir: string; repairs: KeepalivedRepair[]; broken: string }> {
  dirs.push(dataDir);
  const broken = join(dataDir, "broken");
  const wrapper = join(dataDir, "keepalived-wrapper");
  writeFileSync(wrapper, `#!/bin/bash\n[[ -e '${broken}' ]] && { echo "wrapper: refusing to start" >&2; exit 1; }\nexec /usr/sbin/keepalived "$@"\n`);
  chmodSync(wrapper, 0o755);
  const config = testConfig((c) => {
    c.vip = { address: VIP, prefix: 24, interface: "kra0" };
    c.node = { name: "mn-a", address: "10.252.0.2" };
    c.peers = [{ name: "mn-b", address: "10.252.0.3" }];
    c.timings = { heartbeatIntervalMs: 100, leaseMs: 300 };
    c.keepalived = { priority: 200, advertIntMs: 100 };
    c.dataDir = dataDir;
  });
  const driver = new KeepalivedDriver({ config, logger: logger(), netns: NS, keepalivedBinary: wrapper, selfCheckIntervalMs: 200, restartInitialMs: 100 });
  drivers.push(driver);
  const repairs: KeepalivedRepair[] = [];
  driver.onRepair((r) => repairs.push(r));
  await driver.start();
  driver.renewLease();
  timers.push(setInterval(() => driver.renewLease(), 100));
  await driver.setGate(true);
  expect(await waitUntil(() => driver.vipPresent(), 5_000, 10)).not.toBeNull();
  return { driver, dataDir, repairs, broken };
}

describe("KeepalivedDriver.repair and its self-check", () => {
  it("a full file system under its directory is found by the self-check (access() still passes), said once, and said again when space is back", async () => {
    const dataDir = tempDataDir("kr-full");
    // A small file system of our own, filled for real (root ignores permissions, not ENOSPC).
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dataDir]);
    try {
      const { driver, repairs } = await holder(dataDir);
      const filler = join(dataDir, "filler");
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));
      } catch {
        // ENOSPC: full, which is the point.
      }
      expect(await waitUntil(() => driver.unwritableDir() !== null, 3_000)).not.toBeNull();
      expect(driver.unwritableDir()).toBe(`${driver.paths.dir} is not writable (ENOSPC: less than 64 KiB free)`);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(repairs.filter((r) => r.actions.some((a) => a.includes("ENOSPC")))).toHaveLength(1);
      unlinkSync(filler);
      expect(await waitUntil(() => driver.unwritableDir() === null, 3_000)).not.toBeNull();
      expect(repairs.at(-1)?.actions).toEqual([`found ${driver.paths.dir} writable again (it was ENOSPC: less than 64 KiB free)`]);
      await driver.stop();
    } finally {
      execFileSync("umount", ["-l", dataDir]);
    }
  });

  it("finds nothing to do on a healthy holder", async () => {
    const { driver, repairs } = await holder();
    // Past the guard's pid-file grace period, so the self-check has looked at everything.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await driver.repair("test: all is well")).toEqual({ actions: [] });
    expect(repairs).toEqual([]);
    await driver.stop();
  });

  it("restores a removed lease guard pid file on its own, and the VIP stays", async () => {
    const { driver, repairs } = await holder();
    const pidFile = `${driver.paths.leaseFile}.guard.pid`;
    expect(await waitUntil(() => read(pidFile) === String(driver.leaseGuardPid()), 3_000)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 2_200)); // past the pid-file grace period
    unlinkSync(pidFile);
    expect(await waitUntil(() => repairs.length > 0, 3_000)).not.toBeNull();
    expect(read(pidFile)).toBe(String(driver.leaseGuardPid()));
    expect(repairs[0]?.reason).toMatch(/pid file/);
    expect(repairs[0]?.actions.join(" ")).toMatch(/guard\.pid .*was missing/);
    expect(await waitUntil(() => driver.vipPresent(), 3_000)).not.toBeNull();
    await driver.stop();
  });

  it("puts back keepalived.conf overwritten with garbage, and a gate file rewritten by hand", async () => {
    const { driver, repairs } = await holder();
    const expected = driver.renderConfig();
    writeFileSync(driver.paths.configFile, "this is { not a keepalived config\n");
    expect(await waitUntil(() => repairs.some((r) => r.actions.some((a) => a.includes("keepalived.conf"))), 3_000)).not.toBeNull();
    expect(readFileSync(driver.paths.configFile, "utf8")).toBe(expected);
    expect(await driver.vipPresent()).toBe(true);

    // A gate file set to 1 by hand: keepalived's FAULT notification or the self-check makes
    // the driver re-assert its gate; repair() (the watchdog's call) then finds the file right.
    writeFileSync(driver.paths.gateFile, "1\n");
    expect(await waitUntil(async () => read(driver.paths.gateFile) === "0" && (await driver.vipPresent()), 5_000, 10)).not.toBeNull();
    const { actions } = await driver.repair("test: VIP not served");
    expect(actions.join(" ")).not.toMatch(/gate file/);
    expect(read(driver.paths.gateFile)).toBe("0");
    await driver.stop();
  });

  it("keeps retrying a keepalived that will not start, says so, comes back once it can, and a closed gate clears a VIP left behind", async () => {
    const { driver, broken } = await holder();
    writeFileSync(broken, "");
    const firstPid = driver.pid() as number;
    // keepalived stops (it removes the VIP) and its binary now fails to start.
    process.kill(firstPid, "SIGTERM");
    expect(await waitUntil(async () => !(await driver.vipPresent()), 5_000, 10)).not.toBeNull();
    // Several failed starts later the driver is still up and says why keepalived is down.
    expect(await waitUntil(() => driver.restarts() >= 2, 5_000)).not.toBeNull();
    const { actions } = await driver.repair("test: VIP not served");
    expect(actions.join(" ")).toMatch(/keepalived|still retrying/);
    expect(actions.join(" ")).toMatch(/refusing to start|exit code 1/);
    unlinkSync(broken);
    // Repaired as the watchdog would: call repair() until the VIP is served again.
    const seen: string[] = [];
    const back = await waitUntil(
      async () => {
        seen.push(...(await driver.repair("test: binary fixed")).actions);
        return driver.vipPresent();
      },
      8_000,
      300,
    );
    expect(back, seen.join("\n")).not.toBeNull();
    expect(driver.pid()).not.toBe(firstPid);

    // SIGKILL leaves the VIP on the interface with no keepalived behind it; if keepalived cannot
    // come back, closing the gate (the role given up) must still take the VIP away.
    writeFileSync(broken, "");
    const vrrpPid = Number(read(driver.paths.vrrpPidFile));
    // The VRRP child stops cleanly (and removes the VIP) when its parent dies; freeze it first
    // so that both die by SIGKILL whatever order the kernel delivers the parent's death in.
    process.kill(vrrpPid, "SIGSTOP");
    expect(await waitUntil(() => allThreadsStopped(vrrpPid), 5_000)).not.toBeNull();
    process.kill(driver.pid() as number, "SIGKILL");
    process.kill(vrrpPid, "SIGKILL");
    expect(await waitUntil(() => driver.pid() === null || driver.restarts() >= 4, 5_000)).not.toBeNull();
    expect(await driver.vipPresent()).toBe(true);
    await driver.setGate(false);
    expect(await driver.vipPresent()).toBe(false);
    await driver.stop();
  });
});
