import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KeepalivedState } from "@mnha/protocol";
import { createLogger, silentLogger, type Logger, type MnhaConfig, type MnhaConfigInput } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeepalivedDriver } from "../../src/keepalived/driver.js";
import { processAlive } from "../../src/util/process-alive.js";
import { NetnsLab, waitUntil } from "../net/netns-lab.js";
import { tempDataDir, testConfig } from "./helpers.js";

// MNHA_TEST_LOG=1 shows the drivers' (and keepalived's) logs when a test needs explaining.
const logger = (): Logger => (process.env["MNHA_TEST_LOG"] === "1" ? createLogger({ level: "debug", pretty: false, destination: process.stderr }) : silentLogger());

/**
 * Two throwaway namespaces joined by a veth pair, one node in each:
 *   mnha-ut-kd1: kda0 10.251.0.2/24   <->   mnha-ut-kd2: kdb0 10.251.0.3/24, VIP 10.251.0.100.
 * Each driver runs keepalived, `keepalived -t` and `ip` in its node's namespace (netns option).
 */
const lab = new NetnsLab();
const NS_A = "mnha-ut-kd1";
const NS_B = "mnha-ut-kd2";
const VIP = "10.251.0.100";
const dirs: string[] = [];
const drivers: KeepalivedDriver[] = [];
const renewTimers: NodeJS.Timeout[] = [];

function nodeConfig(node: "a" | "b", patch: (raw: MnhaConfigInput) => void = () => undefined): MnhaConfig {
  const dataDir = tempDataDir(`kd-${node}`);
  dirs.push(dataDir);
  return testConfig((c) => {
    c.node = node === "a" ? { name: "mn-a", address: "10.251.0.2" } : { name: "mn-b", address: "10.251.0.3" };
    c.peers = [node === "a" ? { name: "mn-b", address: "10.251.0.3" } : { name: "mn-a", address: "10.251.0.2" }];
    c.vip = { address: VIP, prefix: 24, interface: node === "a" ? "kda0" : "kdb0" };
    c.timings = { heartbeatIntervalMs: 100, leaseMs: 300 };
    c.keepalived = { priority: node === "a" ? 200 : 150, advertIntMs: 100 };
    c.dataDir = dataDir;
    patch(c);
  });
}

function newDriver(config: MnhaConfig, netns: string, extra: Partial<ConstructorParameters<typeof KeepalivedDriver>[0]> = {}): KeepalivedDriver {
  const driver = new KeepalivedDriver({ config, logger: logger(), netns, ...extra });
  drivers.push(driver);
  return driver;
}

/** Renews the driver's lease every heartbeat, like the daemon; returns a stop function. */
function keepRenewing(driver: KeepalivedDriver): () => void {
  driver.renewLease();
  const timer = setInterval(() => driver.renewLease(), 100);
  renewTimers.push(timer);
  return () => clearInterval(timer);
}

function waitForState(driver: KeepalivedDriver, state: KeepalivedState, timeoutMs = 3_000): Promise<number | null> {
  return waitUntil(() => driver.state() === state, timeoutMs);
}

const read = (file: string): string => readFileSync(file, "utf8").trim();

beforeAll(async () => {
  await lab.namespace("kd1");
  await lab.namespace("kd2");
  await lab.veth({ ns: NS_A, iface: "kda0", cidr: "10.251.0.2/24" }, { ns: NS_B, iface: "kdb0", cidr: "10.251.0.3/24" });
});

afterAll(async () => {
  for (const timer of renewTimers) clearInterval(timer);
  for (const driver of drivers) await driver.stop().catch(() => undefined);
  await lab.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("KeepalivedDriver (child mode, one node alone)", () => {
  it("moves the VIP only through the gate and the lease, survives a keepalived crash, and cleans up", async () => {
    const config = nodeConfig("a");
    const driver = newDriver(config, NS_A);
    const states: KeepalivedState[] = [];
    driver.onState((s) => states.push(s));
    await driver.start();

    // Closed gate: FAULT, no VIP.
    expect(await waitForState(driver, "fault")).not.toBeNull();
    expect(driver.gateOpen()).toBe(false);
    expect(read(driver.paths.gateFile)).toBe("1");
    expect(await driver.vipPresent()).toBe(false);
    const firstPid = driver.pid() as number;
    expect(firstPid).toBeGreaterThan(0);
    expect(driver.restarts()).toBe(0);
    expect(read(join(config.dataDir, "keepalived.conf"))).toBe(driver.renderConfig().trim());

    const stopRenewing = keepRenewing(driver);

    // Open: MASTER (alone, after the master-down timer) and the VIP is on the interface.
    await driver.setGate(true);
    const openToPresent = await waitUntil(() => driver.vipPresent(), 3_000, 5);
    expect(openToPresent).not.toBeNull();
    expect(await waitForState(driver, "master")).not.toBeNull();
    expect(await lab.hasAddress(NS_A, "kda0", VIP)).toBe(true);

    // Close: the VIP goes at once.
    await driver.setGate(false);
    const closeToAbsent = await waitUntil(async () => !(await driver.vipPresent()), 2_000, 5);
    expect(closeToAbsent).not.toBeNull();
    expect(await waitForState(driver, "fault")).not.toBeNull();

    // Gate open but the agent stops renewing (paused or hung): the lease goes stale, the VIP goes.
    await driver.setGate(true);
    expect(await waitUntil(() => driver.vipPresent(), 3_000, 5)).not.toBeNull();
    stopRenewing();
    const staleToAbsent = await waitUntil(async () => !(await driver.vipPresent()), 3_000, 5);
    expect(staleToAbsent).not.toBeNull();
    expect(staleToAbsent as number).toBeLessThan(1_500);
    expect(read(driver.paths.leaseFile)).toBe("1");
    const renewAgain = keepRenewing(driver);
    expect(await waitUntil(() => driver.vipPresent(), 3_000, 5)).not.toBeNull();

    // keepalived dies: the driver reports it down, restarts it, and (the new keepalived
    // starting with the gate closed by init_file) re-asserts the open gate.
    process.kill(firstPid, "SIGKILL");
    expect(await waitUntil(() => states.includes("stopped"), 2_000)).not.toBeNull();
    expect(await waitUntil(() => driver.restarts() === 1 && driver.pid() !== null, 5_000)).not.toBeNull();
    expect(driver.pid()).not.toBe(firstPid);
    expect(await waitForState(driver, "master", 5_000)).not.toBeNull();
    expect(await driver.vipPresent()).toBe(true);
    expect(read(driver.paths.gateFile)).toBe("0");

    // Reload: nothing changed, nothing done; a new priority is written and SIGHUPed (same
    // process, VIP kept); a config keepalived rejects changes nothing.
    const configFile = join(config.dataDir, "keepalived.conf");
    expect(await driver.reload()).toBe(false);
    const beforeReload = driver.pid();
    const changed = { ...config, keepalived: { ...config.keepalived, priority: 180 } };
    expect(await driver.reload(changed)).toBe(true);
    expect(read(configFile)).toContain("priority 180");
    expect(await driver.reload(changed)).toBe(false);
    for (let i = 0; i < 5; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await driver.vipPresent()).toBe(true);
    }
    expect(driver.pid()).toBe(beforeReload);
    await expect(driver.reload({ ...changed, vip: { ...changed.vip, interface: "nosuch0" } })).rejects.toMatchObject({ code: "KEEPALIVED_CONFIG" });
    expect(read(configFile)).toContain("priority 180");
    expect(read(configFile)).not.toContain("nosuch0");

    // stop(): no keepalived, no guard, no VIP, gate and lease closed.
    renewAgain();
    const keepalivedPid = driver.pid() as number;
    const guardPid = driver.leaseGuardPid() as number;
    await driver.stop();
    expect(processAlive(keepalivedPid)).toBe(false);
    expect(processAlive(guardPid)).toBe(false);
    expect(await lab.hasAddress(NS_A, "kda0", VIP)).toBe(false);
    expect(driver.state()).toBe("stopped");
    expect(driver.pid()).toBeNull();
    expect(read(driver.paths.gateFile)).toBe("1");
    expect(read(driver.paths.leaseFile)).toBe("1");
    expect(states).toEqual(expect.arrayContaining(["init", "fault", "backup", "master", "stopped"]));

    console.info(`[measured] gate open -> VIP present ${openToPresent} ms; gate close -> VIP absent ${closeToAbsent} ms; renewals stop (lease 300 ms) -> VIP absent ${staleToAbsent} ms`);
  });

  it("refuses a config keepalived rejects, naming the problem, and leaves nothing running", async () => {
    const config = nodeConfig("a", (c) => {
      c.vip.interface = "nosuch0";
    });
    const driver = newDriver(config, NS_A);
    const error = await driver.start().then(
      () => null,
      (e: unknown) => e as { code: string; message: string; hint?: string },
    );
    expect(error?.code).toBe("KEEPALIVED_CONFIG");
    expect(error?.message).toMatch(/nosuch0/);
    expect(error?.hint).toMatch(/vip\.interface/);
    expect(driver.pid()).toBeNull();
    expect(driver.leaseGuardPid()).toBeNull();
  });
});

describe("KeepalivedDriver with two nodes", () => {
  it("hands the VIP to the BACKUP peer at once when the master closes its gate (priority-0 advert)", async () => {
    // A slow advert interval makes the difference plain: the master-down timer would be
    // 1 s + skew (410 ms at priority 150); the priority-0 advert leaves the skew alone.
    const a = newDriver(nodeConfig("a", (c) => (c.keepalived = { ...c.keepalived, advertIntMs: 1000 })), NS_A);
    const b = newDriver(nodeConfig("b", (c) => (c.keepalived = { ...c.keepalived, advertIntMs: 1000 })), NS_B);
    await Promise.all([a.start(), b.start()]);
    keepRenewing(a);
    keepRenewing(b);
    await a.setGate(true);
    expect(await waitForState(a, "master", 5_000)).not.toBeNull();
    await b.setGate(true);
    expect(await waitForState(b, "backup", 3_000)).not.toBeNull();
    // nopreempt + A's adverts: B stays BACKUP with its gate open.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(b.state()).toBe("backup");
    expect(await b.vipPresent()).toBe(false);

    await a.setGate(false);
    const takeover = await waitUntil(() => b.vipPresent(), 3_000, 5);
    expect(takeover).not.toBeNull();
    expect(takeover as number).toBeLessThan(1_000);
    expect(await a.vipPresent()).toBe(false);
    console.info(`[measured] master gate close -> backup holds VIP ${takeover} ms (advert_int 1 s, priority 150: skew 410 ms)`);
    await Promise.all([a.stop(), b.stop()]);
    expect(await lab.hasAddress(NS_B, "kdb0", VIP)).toBe(false);
  });
});

describe("KeepalivedDriver (service mode)", () => {
  it("validates and writes the config, then reloads the unit through systemctl (argv only)", async () => {
    const config = nodeConfig("a", (c) => (c.keepalived = { ...c.keepalived, mode: "service" }));
    const log = join(config.dataDir, "systemctl.log");
    const fake = join(config.dataDir, "fake-systemctl");
    // Records its arguments; answers MainPID for `show`.
    writeFileSync(fake, `#!/bin/bash\nprintf '%s\\n' "$*" >> '${log}'\n[[ $1 == show ]] && echo 4242\nexit 0\n`);
    chmodSync(fake, 0o755);
    const driver = newDriver(config, NS_A, { systemctlBinary: fake });
    await driver.start();
    expect(read(log).split("\n")).toEqual(["reload-or-restart keepalived", "show --property=MainPID --value keepalived"]);
    expect(driver.pid()).toBe(4242);
    expect(driver.state()).toBe("unknown");
    expect(read(join(config.dataDir, "keepalived.conf"))).toContain("vrrp_instance mnha_vip");
    await driver.setGate(true);
    expect(read(driver.paths.gateFile)).toBe("0");
    await driver.stop();
    // The unit keeps running; the closed gate and stale lease keep it off the VIP.
    expect(read(driver.paths.gateFile)).toBe("1");
    expect(read(driver.paths.leaseFile)).toBe("1");
    expect(read(log).split("\n")).toHaveLength(2);
  });
});
