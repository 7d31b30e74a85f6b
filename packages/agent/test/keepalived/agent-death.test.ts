import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseConfig, silentLogger } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeepalivedDriver } from "../../src/keepalived/driver.js";
import { processAlive } from "../../src/util/process-alive.js";
import { NetnsLab, waitUntil } from "../net/netns-lab.js";
import { tempDataDir } from "./helpers.js";

/**
 * The lease's reason to exist: the agent on the holder is SIGKILLed. Keepalived (its child)
 * keeps running by design, so only the lease guard seeing its pipe close can take the VIP
 * away. Then a new agent on the same data dir must stop the orphaned keepalived first.
 * The agent runs as a separate process (driver-child.ts via tsx) so that it can be killed.
 */
const lab = new NetnsLab();
const NS = "mnha-ut-kd3";
const VIP = "10.251.3.100";
const dataDir = tempDataDir("death");
const rawConfig = {
  node: { name: "mn-a", address: "10.251.3.2" },
  peers: [{ name: "mn-b", address: "10.251.3.3" }],
  vip: { address: VIP, prefix: 24, interface: "kdc0" },
  gateway: { address: "10.251.3.1" },
  auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
  services: [],
  timings: { heartbeatIntervalMs: 100, leaseMs: 300 },
  dataDir,
};
let successor: KeepalivedDriver | null = null;
let orphanPid: number | null = null;

beforeAll(async () => {
  await lab.namespace("kd3");
  await lab.stub(NS, "kdc0", "10.251.3.2/24");
});

afterAll(async () => {
  await successor?.stop().catch(() => undefined);
  if (orphanPid !== null && processAlive(orphanPid)) process.kill(orphanPid, "SIGKILL");
  await lab.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the agent is SIGKILLed while holding the VIP", () => {
  it("the lease guard drops the VIP within about one lease, and the next agent stops the orphaned keepalived", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./driver-child.ts", import.meta.url)), JSON.stringify(rawConfig), NS], {
      env: { ...process.env, TSX_TSCONFIG_PATH: fileURLToPath(new URL("./tsconfig.child.json", import.meta.url)) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      expect(await waitUntil(() => stdout.includes("\n") || child.exitCode !== null, 15_000, 20), stderr).not.toBeNull();
      const info = JSON.parse(stdout.split("\n")[0] as string) as { ready: boolean; keepalivedPid: number; guardPid: number };
      orphanPid = info.keepalivedPid;
      expect(info.ready).toBe(true);
      expect(await lab.hasAddress(NS, "kdc0", VIP)).toBe(true);

      child.kill("SIGKILL");
      await exited;
      const killedToAbsent = await waitUntil(async () => !(await lab.hasAddress(NS, "kdc0", VIP)), 3_000, 5);
      expect(killedToAbsent).not.toBeNull();
      expect(killedToAbsent as number).toBeLessThan(1_000);
      expect(readFileSync(`${dataDir}/keepalived/lease`, "utf8").trim()).toBe("1");
      // keepalived outlives the agent (intended); the guard exits once it has marked the lease stale.
      expect(processAlive(info.keepalivedPid)).toBe(true);
      expect(await waitUntil(() => !processAlive(info.guardPid), 2_000)).not.toBeNull();
      console.info(`[measured] agent SIGKILL (lease 300 ms, renewals every 100 ms) -> VIP absent ${killedToAbsent} ms`);

      // A new agent on the same data dir stops the orphan before starting its own keepalived.
      successor = new KeepalivedDriver({ config: parseConfig(rawConfig), logger: silentLogger(), netns: NS });
      await successor.start();
      expect(processAlive(info.keepalivedPid)).toBe(false);
      expect(successor.pid()).not.toBe(info.keepalivedPid);
      expect(successor.state()).toBe("fault");
      await successor.stop();
      expect(await lab.hasAddress(NS, "kdc0", VIP)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
