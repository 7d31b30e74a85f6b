/**
 * The audit store in the lab, with real agents, real SQLite files and real faults:
 * - a partition during which both nodes write, then healing: both stores hold exactly the
 *   same set of events;
 * - kill -9 of an agent while it writes: every event it had reported is still there after a
 *   restart, and the database opens cleanly;
 * - the store on a full disk (a 2 MiB tmpfs): failover still works, the store reports itself
 *   degraded, and recovers by itself when space comes back.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HaEvent, StatusReport } from "@mnha/agent";
import { AGENT_MAIN, LAB_PREFIX, MN_NODES, nodePaths, type MnNode } from "../lab/constants.js";
import { sleep, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { expectNeverTwoMacs, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy } from "./scenario.js";

/** The store of mn1 lives on its own small tmpfs, so the test can fill the disk. */
const STORE_FS = `/run/${LAB_PREFIX}-storefs`;
const STORE_FS_BYTES = 4 * 1024 * 1024;

const lab = new Lab({
  config: {
    customize: (node, config) => ({
      ...config,
      store: { ...(node === "mn1" ? { path: `${STORE_FS}/mnha.db` } : {}), sampleIntervalMs: 1_000 },
    }),
  },
});

function cli(node: MnNode, ...args: string[]): string {
  return execFileSync(process.execPath, [AGENT_MAIN, ...args, "--config", nodePaths(node).config], { encoding: "utf8", timeout: 20_000 });
}

function events(node: MnNode, ...filters: string[]): HaEvent[] {
  return JSON.parse(cli(node, "events", "--json", "--limit", "10000", ...filters)) as HaEvent[];
}

function status(node: MnNode): StatusReport {
  return JSON.parse(cli(node, "status", "--json")) as StatusReport;
}

/** An event's identity across the pair: the node it happened on and its sequence there. */
function identities(list: HaEvent[]): string[] {
  return list.map((e) => `${e.node}#${e.seq}:${e.type}:${e.time}`).sort();
}

function mountStoreFs(): void {
  umountStoreFs();
  mkdirSync(STORE_FS, { recursive: true, mode: 0o700 });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${STORE_FS_BYTES},mode=0700`, "tmpfs", STORE_FS]);
}

function umountStoreFs(): void {
  try {
    execFileSync("umount", [STORE_FS], { stdio: "ignore" });
  } catch {
    // not mounted
  }
  rmSync(STORE_FS, { recursive: true, force: true });
}

beforeAll(async () => {
  await lab.down();
  mountStoreFs();
  await lab.up({ fresh: false });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("audit-store") });
  umountStoreFs();
});

describe("audit store replication", () => {
  it("events written on both sides of a partition end up identical on both nodes once it heals", async () => {
    const before = await lab.reset();
    await lab.cutPeerLink();
    // Both sides write while apart: each loses its peer, and each has a service fail and come back.
    await lab.killService(before.holder, "ui");
    await lab.killService(before.standby, "ui");
    await sleep(3_000);
    await lab.healPeerLink();
    const written = { mn1: events("mn1", "--node", "mn1"), mn2: events("mn2", "--node", "mn2") };
    expect(written.mn1.some((e) => e.type === "election.peer-lost")).toBe(true);
    expect(written.mn2.some((e) => e.type === "election.peer-lost")).toBe(true);

    const converged = await waitFor(
      "both stores to hold the same events",
      async () => {
        const [a, b] = [identities(events("mn1")), identities(events("mn2"))];
        return a.length > 0 && JSON.stringify(a) === JSON.stringify(b) ? a : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    // Everything each node wrote during the partition is on the other one.
    for (const node of MN_NODES) {
      for (const id of identities(written[node])) expect(converged).toContain(id);
    }
    // The agents keep writing (samples, the services' recovery): the lag drains to 0, not at
    // the very moment the two lists matched.
    let lag: number | null | undefined;
    await waitFor(
      "mn1's sync lag to drain to 0",
      async () => {
        lag = status("mn1").store?.syncLag;
        return lag === 0 ? true : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, describeLast: () => `syncLag ${String(lag)}` },
    );
  });

  it("kill -9 of an agent while it writes loses no event it had reported, and the store opens cleanly", async () => {
    const before = await lab.reset();
    const node = before.standby;
    // Make the standby write: its UI service flaps, so checks, restores and changes pour in.
    const reported = new Set<string>();
    for (let round = 0; round < 6; round++) {
      await lab.killService(node, "ui");
      await sleep(400);
      for (const id of identities(events(node, "--node", node))) reported.add(id);
    }
    await lab.killService(node, "ui");
    for (const id of identities(events(node, "--node", node))) reported.add(id);
    expect(await lab.killAgent(node)).not.toBeNull();
    await lab.startAgent(node);
    await waitFor(`${node}'s agent to answer again`, async () => ((await lab.tryAgentStatus(node)).status ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });

    const after = new Set(identities(events(node, "--node", node)));
    const lost = [...reported].filter((id) => !after.has(id));
    expect(lost, `events reported before kill -9 and missing after`).toEqual([]);
    expect(reported.size).toBeGreaterThan(10);
    const store = status(node).store;
    expect(store?.ok, store?.reason ?? "").toBe(true);
  });

  it("a full disk under the store does not stop a failover; the store says it is degraded and recovers", async () => {
    const before = await lab.reset();
    // mn1's store is on the small tmpfs. Make mn1 the holder, then fill its disk.
    if (before.holder !== "mn1") {
      cli("mn2", "demote", "--yes");
      await waitFor("mn1 to hold the VIP", async () => ((await lab.holders()).join() === "mn1" ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
    }
    const filler = `${STORE_FS}/filler`;
    try {
      writeFileSync(filler, Buffer.alloc(STORE_FS_BYTES));
    } catch {
      // ENOSPC: the disk is full, which is the point.
    }
    // The sampler writes every second: the store soon fails and says so.
    await waitFor("mn1's store to report itself degraded", async () => (status("mn1").store?.ok === false ? true : undefined), { timeoutMs: 20_000, intervalMs: 500 });
    expect(status("mn1").store?.reason ?? "").toMatch(/full|space|SQLITE_FULL|disk/i);

    const stable = await lab.waitForStable();
    expect(stable.holder).toBe("mn1");
    const run = await runScenario(lab, stable, {
      name: "failover with a full disk under the holder's store",
      fault: async () => {
        await lab.killService("mn1", "mn");
      },
      outcome: async (ctx) => {
        // On a loaded 2-core CI machine running two labs, an agent was once stalled for a whole
        // heartbeat window (300 ms) just as the handoff began: the holder abandoned it, the lab's
        // restore had the service back 100 ms later, and the VIP rightly stayed. That is not
        // what this test is about, so the kill is repeated (at most twice more) while mn1 still
        // serves; a full disk that stopped failovers would stop every one of them.
        for (let attempt = 1; ; attempt++) {
          const moved = await ctx.sampler.waitServedBy("mn2", { since: ctx.faultAt, count: 5, timeoutMs: 5_000 });
          if (moved !== null) return;
          if (attempt === 3 || (await lab.holders()).join() !== "mn1") break;
          await lab.killService("mn1", "mn");
        }
        await waitClientServedBy(ctx, "mn2");
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);

    rmSync(filler, { force: true });
    await waitFor("mn1's store to recover by itself", async () => (status("mn1").store?.ok === true ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    // What happened while the disk was full was kept in memory and is now stored.
    const recorded = events("mn1", "--type", "store");
    expect(recorded.some((e) => e.type === "store.degraded")).toBe(true);
    expect(recorded.some((e) => e.type === "store.recovered")).toBe(true);
  });
});
