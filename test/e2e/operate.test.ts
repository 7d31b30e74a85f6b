/**
 * Operating the pair, in the namespace lab with real agents and real Keepalived: maintenance
 * mode (the agent watches and acts on nothing; off acts calmly), stop-node / start-node on the
 * holder (the VIP moves first, the client sees at most the switchover gap), and stop-node's
 * refusal when no healthy peer could take the VIP.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MnhaConfigInput } from "@mnha/shared";
import type { HaEvent, StatusReport } from "../../packages/agent/src/contracts.js";
import { nodePaths, type MnNode, type ServiceName } from "../lab/constants.js";
import { sleep, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { PLANNED_GAP_BOUND_MS, SERVED_AGAIN_BOUND_MS, expectMovedOnce, expectNeverTwoMacs, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

/** The stand-in's stop command: SIGTERM to the pid in its pid file (argv, no shell). */
function stopArgv(node: MnNode, service: string): string[] {
  const code = "const fs=require('fs');try{process.kill(Number(fs.readFileSync(process.argv[1],'utf8').trim()),'SIGTERM')}catch(e){if(e.code!=='ESRCH'&&e.code!=='ENOENT')throw e}";
  return [process.execPath, "-e", code, nodePaths(node).servicePid(service as ServiceName)];
}

const RESTORE_BACKOFF_MS = 3_000;

const lab = new Lab({
  config: {
    customize: (node, config): MnhaConfigInput => ({
      ...config,
      // A restore gets 3 s to show healthy before the next one: the stand-in's restore replaces the
      // running instance, and under load a 500 ms backoff can replace each fresh one before it is seen.
      services: (config.services ?? []).map((service) => ({
        ...service,
        stop: stopArgv(node, service.name),
        ...(service.restore ? { restore: { ...service.restore, backoffInitialMs: RESTORE_BACKOFF_MS, backoffMaxMs: RESTORE_BACKOFF_MS } } : {}),
      })),
    }),
  },
});

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("operate") });
});

async function cli(node: MnNode, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  const result = await lab.agentCli(node, args, timeoutMs);
  return { code: result.code ?? -1, out: `${result.stdout}${result.stderr}` };
}

async function events(node: MnNode, type: string): Promise<HaEvent[]> {
  const result = await cli(node, ["events", "--json", "--type", type, "--limit", "200", "--node", node]);
  expect(result.code, result.out).toBe(0);
  return JSON.parse(result.out) as HaEvent[];
}

function service(status: StatusReport, name: string): StatusReport["self"]["services"][number] | undefined {
  return status.self.services.find((s) => s.name === name);
}

async function serviceHealthyAgain(node: MnNode, name: ServiceName): Promise<void> {
  await waitFor(
    `${node}/${name} healthy again`,
    async () => ((await lab.serviceListening(node, name)) && service((await lab.agentStatus(node)), name)?.healthy === true ? true : undefined),
    { timeoutMs: SERVED_AGAIN_BOUND_MS, intervalMs: 200 },
  );
}

describe("maintenance mode", () => {
  it("on: the holder's MN service dies and nothing is restored or moved; off: restored with the normal backoff, the failed holder hands over once", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const onAtMs = Date.now();
    let offAtMs = 0;
    let offMark = 0;
    try {
      const run = await runScenario(lab, before, {
        name: "maintenance on, holder MN service killed, maintenance off",
        fault: async ({ sampler }) => {
          const on = await cli(holder, ["maintenance", "on", "--reason", "lab: upgrade rehearsal"]);
          expect(on.code, on.out).toBe(0);
          expect(on.out).toMatch(/maintenance mode/);
          expect(on.out).toMatch(/REMINDER: disable the platform's VM HA/);
          expect(await lab.killService(holder, "mn")).not.toEqual([]);
          // "For a while": longer than a restore backoff and the failover bounds.
          await sleep(6_000);
          expect(await lab.serviceListening(holder, "mn"), "no restore in maintenance").toBe(false);
          const during = await lab.agentStatus(holder);
          expect(during.self.role).toBe("holder");
          expect(service(during, "mn")).toMatchObject({ healthy: false, restoreState: "held" });
          expect(during.ops?.self.maintenance).toMatchObject({ reason: "lab: upgrade rehearsal", by: expect.stringMatching(/uid 0/) });
          expect(await lab.holders()).toEqual([holder]);
          // Shown first in `status`, on both nodes.
          expect((await cli(holder, ["status"])).out.split("\n")[0]).toMatch(new RegExp(`^MAINTENANCE MODE on ${holder} .* by .*: lab: upgrade rehearsal`));
          expect((await cli(standby, ["status"])).out.split("\n")[0]).toMatch(new RegExp(`^MAINTENANCE MODE on ${holder} `));
          expect((await events(holder, "restore.started")).filter((e) => Date.parse(e.time) >= onAtMs), "no restore in maintenance").toEqual([]);
          expect((await events(holder, "maintenance.on")).at(0)?.message).toMatch(/by .*uid 0.*: lab: upgrade rehearsal/);

          offMark = sampler.mark("maintenance off");
          offAtMs = Date.now();
          const off = await cli(holder, ["maintenance", "off"]);
          expect(off.code, off.out).toBe(0);
          expect(off.out).toMatch(/left maintenance mode/);
        },
        outcome: async (ctx) => {
          await waitClientServedBy(ctx, standby, 20_000);
          await serviceHealthyAgain(holder, "mn");
        },
      });
      // One move, and only after maintenance was turned off.
      expect(run.analysis.http.moves.map((m) => `${m.from}->${m.to}`)).toEqual([`${holder}->${standby}`]);
      expect(run.analysis.arp.moves.map((m) => `${m.from}->${m.to}`)).toEqual([`${holder}->${standby}`]);
      for (const move of [...run.analysis.http.moves, ...run.analysis.arp.moves]) expect(move.at).toBeGreaterThanOrEqual(offMark);
      // Calm: one restore, after the normal first backoff, not a burst.
      const restores = (await events(holder, "restore.started")).filter((e) => Date.parse(e.time) >= offAtMs);
      expect(restores.length, JSON.stringify(restores)).toBe(1);
      const offEvent = (await events(holder, "maintenance.off")).at(0);
      expect(offEvent).toBeDefined();
      expect(Date.parse(restores[0]!.time) - Date.parse(offEvent!.time), "the first restore waits its normal backoff").toBeGreaterThanOrEqual(RESTORE_BACKOFF_MS - 500);
      expect((await lab.agentStatus(holder)).ops?.self.maintenance).toBeNull();
      expectNeverTwoMacs(run);
    } finally {
      await cli(holder, ["maintenance", "off"]);
    }
  });

  it("is persisted across an agent restart, set on the peer over the peer link, and refused clearly for a peer that is not connected", async () => {
    const { holder, standby } = await lab.reset();
    try {
      const onPeer = await cli(holder, ["maintenance", "on", "--node", "peer", "--reason", "peer work"]);
      expect(onPeer.code, onPeer.out).toBe(0);
      expect((await lab.agentStatus(standby)).ops?.self.maintenance).toMatchObject({ reason: "peer work", by: expect.stringMatching(new RegExp(`via ${holder}`)) });
      await lab.stopAgent(standby);
      const refused = await cli(holder, ["maintenance", "off", "--node", "both"]);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/peer .* is not connected: nothing was changed/);
      await lab.startAgent(standby);
      const after = await waitFor("the restarted standby reports its maintenance mode", async () => (await lab.tryAgentStatus(standby)).status ?? undefined, { timeoutMs: 15_000, intervalMs: 200 });
      expect(after.ops?.self.maintenance).toMatchObject({ reason: "peer work" });
      // In maintenance the standby takes nothing: a demote of the holder is refused.
      const demote = await cli(holder, ["demote", "--yes"]);
      expect(demote.code).toBe(1);
      expect(await lab.holders()).toEqual([holder]);
    } finally {
      await waitFor("peer connected", async () => ((await lab.agentStatus(holder)).peer.connected ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
      const off = await cli(holder, ["maintenance", "off", "--node", "both"]);
      expect(off.code, off.out).toBe(0);
    }
    expect((await lab.agentStatus(standby)).ops?.self.maintenance).toBeNull();
  });
});

describe("stop-node and start-node", () => {
  it("stop-node on the holder hands the VIP over first (the planned gap at most), stops the services and keeps them stopped; start-node brings the node back as a healthy standby", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    try {
      const run = await runScenario(lab, before, {
        name: "stop-node on the holder",
        fault: async () => {
          const stop = await cli(holder, ["stop-node"]);
          expect(stop.code, stop.out).toBe(0);
          expect(stop.out).toMatch(new RegExp(`VIP handed to ${standby}`));
        },
        outcome: async (ctx) => {
          await waitClientServedBy(ctx, standby);
        },
      });
      expectServedWithin(run, PLANNED_GAP_BOUND_MS);
      expectMovedOnce(run, holder, standby);
      await sleep(3_000);
      for (const name of ["mn", "ui"] as const) expect(await lab.serviceListening(holder, name), `${holder}/${name} stays stopped`).toBe(false);
      const stopped = await lab.agentStatus(holder);
      expect(stopped.ops?.self.stopped).not.toBeNull();
      expect(stopped.self.eligible).toBe(false);
      expect((await cli(holder, ["status"])).out.split("\n")[0]).toMatch(new RegExp(`^NODE STOPPED: ${holder}`));

      const start = await cli(holder, ["start-node"], 120_000);
      expect(start.code, start.out).toBe(0);
      expect(start.out).toMatch(/healthy and eligible/);
      const back = await lab.agentStatus(holder);
      expect(back.ops?.self.stopped).toBeNull();
      expect(back.self.eligible).toBe(true);
      expect(await lab.holders()).toEqual([standby]);
      expectNeverTwoMacs(run);
    } finally {
      await cli(holder, ["start-node"], 120_000);
    }
  });

  it("stop-node on the holder with no healthy peer is refused and stops nothing; -stopvip gives the VIP up and stops", async () => {
    const { holder, standby } = await lab.reset();
    try {
      await lab.stopAgent(standby);
      await waitFor("holder sees the peer gone", async () => ((await lab.agentStatus(holder)).peer.connected ? undefined : true), { timeoutMs: 10_000, intervalMs: 100 });
      const refused = await cli(holder, ["stop-node"]);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/holds the VIP and .* cannot take it .*nothing was stopped/);
      expect(refused.out).toMatch(/-stopvip/);
      for (const name of ["mn", "ui", "db"] as const) expect(await lab.serviceListening(holder, name)).toBe(true);
      expect(await lab.holders()).toEqual([holder]);

      const forced = await cli(holder, ["stop-node", "-stopvip", "-keepui"]);
      expect(forced.code, forced.out).toBe(0);
      expect(forced.out).toMatch(/VIP given up/);
      await waitFor("nobody holds the VIP", async () => ((await lab.holders()).length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
      expect(await lab.serviceListening(holder, "mn")).toBe(false);
      expect(await lab.serviceListening(holder, "ui")).toBe(true);
    } finally {
      await cli(holder, ["start-node"], 120_000);
      await lab.startAgent(standby);
    }
    await lab.waitForStable();
  });
});

describe("collect-log", () => {
  it("writes one tarball with both nodes' parts, the peer's fetched over the peer link, and no secret in it", async () => {
    const { holder, standby } = await lab.reset();
    const out = `${nodePaths(holder).dataDir}/collect.tar.gz`;
    const result = await cli(holder, ["collect-log", "--since", "1h", "--out", out], 120_000);
    expect(result.code, result.out).toBe(0);
    expect(result.out).toMatch(new RegExp(`^${out} \\(\\d`));
    expect(result.out).not.toMatch(/missing:/);
    const extracted = mkdtempSync(join(tmpdir(), "mnha-h9b-collect-"));
    try {
      execFileSync("tar", ["-xzf", out, "-C", extracted]);
      const files = listFiles(extracted).map((f) => f.slice(extracted.length + 1).replace(/^[^/]+\//, ""));
      for (const node of [holder, standby]) for (const name of ["config.json", "keepalived.conf", "status.json", "node.txt"]) expect(files).toContain(`${node}/${name}`);
      expect(files).toContain("pair/events.json");
      expect(files).toContain(`${holder}/inventory.json`);
      const secret = readFileSync(nodePaths(holder).secret, "utf8").trim();
      const everything = listFiles(extracted).map((f) => readFileSync(f, "utf8")).join("\n");
      expect(everything.includes(secret), "the pair secret is in the archive").toBe(false);
      expect(JSON.parse(readFileSync(join(extracted, readdirSync(extracted)[0]!, standby, "status.json"), "utf8")).self.node).toBe(standby);
    } finally {
      rmSync(extracted, { recursive: true, force: true });
      rmSync(out, { force: true });
    }
  });
});

function listFiles(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(root, e.name)) : [join(root, e.name)]));
}

