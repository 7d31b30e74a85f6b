/**
 * Never wedge (issue 7): mishaps around the agent, made the way an operator or a broken disk
 * makes them, on a running pair. Each ends with the VIP served (by repair or by the peer)
 * within SERVED_AGAIN_BOUND_MS (10 s), never by two nodes at once, and an audit event that
 * says what happened.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOSTS, VIP_ADDRESS, nodePaths, type MnNode } from "../lab/constants.js";
import { runIn, sleep, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { hostAddresses } from "../lab/topology.js";
import type { HaEvent, PeerDuplicateCheck, StatusReport } from "../../packages/agent/src/contracts.js";
import {
  agentEvents,
  breakableArping,
  breakableKeepalived,
  garbleKeepalivedConfig,
  keepalivedFiles,
  killDuplicateCheckArpings,
  nodeSnapshot,
  removeGuardPidFile,
  setBroken,
  setDataDirReadOnly,
  startSecondAgent,
  type SecondAgentResult,
} from "../lab/wedge-faults.js";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { expectMovedOnce, expectNoMove, expectServedWithin, labArchiveDir, runScenario, waitClientServedBy, type ScenarioRun } from "./scenario.js";
import { mariaDbPaths, mariaDbPids } from "../lab/mariadb.js";
import { MariaDbDatabase } from "../../packages/agent/src/db/mariadb.js";

// The keepalived and arping binaries are wrappers the "won't start" cases can break; otherwise they are the real ones.
const lab = new Lab({ config: breakableKeepalived(breakableArping()) });

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  for (const node of ["mn1", "mn2"] as const) {
    setBroken(node, "keepalived", false);
    setBroken(node, "arping", false);
  }
  await lab.down({ archiveTo: labArchiveDir("never-wedge") });
});

/**
 * Never two MACs for the VIP, over enough ARP samples to mean it. The floor is lower than
 * scenario.ts's 15/s: these runs happen on a 2-core machine shared with other labs (load
 * average 20+ seen), where the sampler itself is starved; 8/s is still one sample per
 * 125 ms, well inside the gaps these faults could open.
 */
const MIN_ARP_SAMPLES_PER_SECOND_UNDER_LOAD = 8;
function expectNeverTwoMacs(run: ScenarioRun): void {
  expect(run.analysis.arp.splitBrain, `ARP samples with two MACs in "${run.name}"`).toEqual([]);
  expect(run.analysis.arp.perSecond, "ARP samples per second").toBeGreaterThanOrEqual(MIN_ARP_SAMPLES_PER_SECOND_UNDER_LOAD);
}

/** Waits for a keepalived.repaired event on `node` whose text matches `pattern`. */
async function repairedEvent(node: MnNode, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    `a keepalived.repaired event on ${node} matching ${String(pattern)}`,
    async () => (await agentEvents(lab, node, "keepalived.repaired")).map((e) => e.message).find((m) => pattern.test(m)),
    { timeoutMs, intervalMs: 250 },
  );
}

describe("a second agent started by hand", () => {
  for (const role of ["holder", "standby"] as const) {
    it(`on the ${role}: exits at once with the message, and the pair is unchanged`, async () => {
      const before = await lab.reset();
      const node = role === "holder" ? before.holder : before.standby;
      const snapshots = { [before.holder]: await nodeSnapshot(lab, before.holder), [before.standby]: await nodeSnapshot(lab, before.standby) };
      let second: SecondAgentResult | null = null;
      const run = await runScenario(lab, before, {
        name: `second agent on the ${role}`,
        fault: async () => {
          second = await startSecondAgent(node);
        },
        outcome: async () => undefined,
        observeMs: 3_000,
      });
      const result = second as SecondAgentResult | null;
      expect(result, "the second agent ran").not.toBeNull();
      expect(result?.code, `exit code (stderr: ${result?.stderr})`).toBe(3);
      expect(result?.tookMs).toBeLessThan(10_000);
      expect(result?.stderr).toMatch(new RegExp(`another mnha agent \\(pid ${snapshots[node]?.agentPid}\\) is already running for the data dir`));
      expect(result?.stderr).toMatch(/hint: only one agent may run per node/);
      expectNeverTwoMacs(run);
      expectNoMove(run, before.holder);
      expect(run.analysis.http.longestGapMs, "longest time the client went unserved").toBeLessThanOrEqual(1_000);
      // Nothing changed on either node: same processes, files, socket.
      expect(await nodeSnapshot(lab, before.holder)).toEqual(snapshots[before.holder]);
      expect(await nodeSnapshot(lab, before.standby)).toEqual(snapshots[before.standby]);
      expect(await lab.holders()).toEqual([before.holder]);
      expect((await lab.waitForStable({ timeoutMs: 10_000 })).holder).toBe(before.holder);
    });
  }
});

describe("the driver's files and keepalived, broken by hand on the holder", () => {
  it("lease.guard.pid removed: put back by the driver, the VIP stays or comes back, audited", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const run = await runScenario(lab, before, {
      name: "guard pid file removed",
      fault: async () => removeGuardPidFile(holder),
      outcome: async () => {
        await repairedEvent(holder, /guard\.pid .*was missing/);
        await lab.waitForStable({ timeoutMs: 10_000 });
      },
      observeMs: 4_000, // a few lease-check intervals: the check passes again
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expect((await lab.holders()).length).toBe(1);
    const guardPid = Number(readFileSync(keepalivedFiles(holder).guardPid, "utf8").trim());
    expect(readFileSync(`/proc/${guardPid}/cmdline`, "utf8")).toContain("mnha-lease-guard");
  });

  it("the lease guard killed by hand on the holder: started again, said in the audit with how it died, served again, never two MACs", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const oldGuard = Number(readFileSync(keepalivedFiles(holder).guardPid, "utf8").trim());
    const run = await runScenario(lab, before, {
      name: "lease guard killed",
      fault: async () => {
        process.kill(oldGuard, "SIGKILL");
      },
      outcome: async () => {
        await repairedEvent(holder, /the lease guard exited on SIGKILL after \d+\.\d s(, within 10 s of its start)?; started it again/);
        await lab.waitForStable({ timeoutMs: 10_000 });
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expect((await lab.holders()).length).toBe(1);
    const newGuard = Number(readFileSync(keepalivedFiles(holder).guardPid, "utf8").trim());
    expect(newGuard).not.toBe(oldGuard);
    expect(readFileSync(`/proc/${newGuard}/cmdline`, "utf8")).toContain("mnha-lease-guard");
  });

  it("keepalived.conf overwritten with garbage and keepalived told to reload it: restored and reloaded, served again, audited", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const expected = readFileSync(keepalivedFiles(holder).config, "utf8");
    const run = await runScenario(lab, before, {
      name: "keepalived.conf garbage",
      fault: async () => {
        garbleKeepalivedConfig(holder);
        await lab.reloadKeepalived(holder);
      },
      outcome: async () => {
        await repairedEvent(holder, /rewrote .*keepalived\.conf/);
        await waitFor("the VIP served again", async () => ((await lab.holders()).length === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
        await lab.waitForStable({ timeoutMs: 10_000 });
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expect(readFileSync(keepalivedFiles(holder).config, "utf8")).toBe(expected);
    expect((await lab.holders()).length).toBe(1);
  });

  it("keepalived killed and its binary failing to start: said in the audit, retried, back once the binary works; never two MACs", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const run = await runScenario(lab, before, {
      name: "keepalived binary fails to start",
      fault: async () => {
        setBroken(holder, "keepalived", true);
        expect(await lab.killKeepalived(holder)).not.toEqual([]);
      },
      outcome: async () => {
        await repairedEvent(holder, /keepalived fails to start .*exit code 1.*broken on purpose/s);
        setBroken(holder, "keepalived", false);
        // The driver's backoff (at most 10 s) or its next self-check brings keepalived back.
        await waitFor(`keepalived running again on ${holder}`, async () => ((await lab.keepalivedPids(holder)).length > 0 ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
        await lab.waitForStable({ timeoutMs: 15_000 });
      },
    });
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expect((await lab.holders()).length).toBe(1);
  });

  it("the duplicate check's arpings killed and arping failing to start: status and the audit say NOT RUNNING with arping's error, the VIP stays; running again once arping works", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const checkOf = async (node: MnNode): Promise<StatusReport["duplicateCheck"]> => (await lab.tryAgentStatus(node)).status?.duplicateCheck;
    /** The peer's check as `node`'s status shows it (from the peer's heartbeats). */
    const peerCheckOf = async (node: MnNode): Promise<PeerDuplicateCheck | undefined> => {
      const { status } = await lab.tryAgentStatus(node);
      return status && "role" in status.peer ? status.peer.duplicateCheck : undefined;
    };
    expect(await checkOf(holder)).toMatchObject({ state: "running", problem: null });
    expect(await checkOf(standby)).toMatchObject({ state: "idle" });
    let failing: StatusReport["duplicateCheck"];
    let text = "";
    let standbyView: PeerDuplicateCheck | undefined;
    let standbyText = "";
    // Only this case's events count (an earlier case may have left an outage in the audit).
    const lastSeqBefore = Math.max(0, ...(await agentEvents(lab, holder, "duplicate-check.failing")).map((e) => e.seq));
    const eventsSince = async (type: string) => (await agentEvents(lab, holder, type)).filter((e) => e.seq > lastSeqBefore);
    const run = await runScenario(lab, before, {
      name: "duplicate-check arping fails",
      fault: async () => {
        setBroken(holder, "arping", true);
        expect(await killDuplicateCheckArpings(holder), "the holder's duplicate-check arpings").not.toEqual([]);
      },
      outcome: async () => {
        // Both staggered arpings restarted (1 s backoff) and failed: the check is blind.
        failing = await waitFor(
          `${holder}'s status to say its duplicate check fails with the wrapper's error`,
          async () => {
            const check = await checkOf(holder);
            return check?.state === "failing" && /broken on purpose/.test(check.problem ?? "") ? check : undefined;
          },
          { timeoutMs: 10_000, intervalMs: 200 },
        );
        text = (await lab.agentCli(holder, ["status"])).stdout;
        // The standby sees it too, from the holder's heartbeats (peer protocol v4).
        standbyView = await waitFor(
          `${standby}'s status to show ${holder}'s check failing`,
          async () => {
            const check = await peerCheckOf(standby);
            return check?.state === "failing" ? check : undefined;
          },
          { timeoutMs: 5_000, intervalMs: 200 },
        );
        standbyText = (await lab.agentCli(standby, ["status"])).stdout;
        setBroken(holder, "arping", false);
        // The restart backoff is at most 5 s; then a request judged makes it run again.
        await waitFor(`${holder}'s duplicate check running again`, async () => ((await checkOf(holder))?.state === "running" ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
      },
    });
    // The audit: the outage's start, and its end once the check has run 10 s without failing.
    const failingEvents = await eventsSince("duplicate-check.failing");
    expect(failingEvents.map((e) => e.message)).toEqual([expect.stringMatching(/^duplicate-address check NOT RUNNING while this node holds the VIP: .*(SIGKILL|broken on purpose)/)]);
    // The event comes once the check has run 10 s without failing. A staggered arping whose
    // start failed while arping was broken can report that failure after the check ran again: it
    // restarts the 10 s (after that arping's backoff, at most 5 s). So up to ~15 s, and more on
    // a loaded CI machine (one run took longer than 15 s): 30 s, and on a timeout the check's
    // state then, read once.
    const runningAgain = await waitFor(`a duplicate-check.running event on ${holder}`, async () => (await eventsSince("duplicate-check.running"))[0], { timeoutMs: 30_000, intervalMs: 500 }).catch(async (error: Error) => {
      error.message += `; ${holder}'s check now: ${JSON.stringify(await checkOf(holder))}; failing events since the fault: ${(await eventsSince("duplicate-check.failing")).length}`;
      throw error;
    });
    expect(runningAgain.message).toMatch(/^duplicate-address check running again after \d+\.\d s not running/);
    expect(Number(runningAgain.fields["blindMs"])).toBeGreaterThan(500);
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    expect(failing?.problem).toMatch(/arping-wrapper exited \(code 1\): lab: arping broken on purpose/);
    expect(text).toMatch(new RegExp(`DUPLICATE-ADDRESS CHECK NOT RUNNING on ${holder}, which holds the VIP: .*broken on purpose`));
    expect(text).toMatch(/duplicate check\s+NOT RUNNING: /);
    expect(standbyView?.problem).toMatch(/arping-wrapper exited \(code 1\): lab: arping broken on purpose/);
    expect(standbyText).toMatch(new RegExp(`DUPLICATE-ADDRESS CHECK NOT RUNNING on ${holder}, which holds the VIP: .*broken on purpose`));
    expect(standbyText).toMatch(/duplicate check\s+idle \(runs while holding the VIP\)\s+NOT RUNNING: /);
    // Running again is told to the standby as well.
    await waitFor(`${standby}'s status to show ${holder}'s check running`, async () => ((await peerCheckOf(standby))?.state === "running" ? true : undefined), { timeoutMs: 5_000, intervalMs: 200 });
    expect(await lab.holders()).toEqual([holder]);
  });

  it("the audit store's database removed by hand under the holder's agent: created again, said in the audit, the pair's records flow both ways again; the VIP stays", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const database = join(nodePaths(holder).dataDir, "mnha.db");
    const removed = (e: HaEvent): boolean => e.message.includes(`${database} was removed or renamed while the store had it open`);
    const run = await runScenario(lab, before, {
      name: "audit store database removed",
      fault: async () => {
        for (const file of [database, `${database}-wal`, `${database}-shm`]) rmSync(file, { force: true });
      },
      // Noticed at the store's next write: the monitoring samples come every 10 s at the latest.
      outcome: async () => {
        await waitFor("a store.recovered event on the holder naming the removed file", async () => (await agentEvents(lab, holder, "store.recovered")).find(removed), { timeoutMs: 20_000, intervalMs: 500 });
      },
    });
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    expect(existsSync(database)).toBe(true);
    // The holder's new records reach the standby, and the standby sends back its own records the removed file held.
    await waitFor("the holder's store.recovered event on the standby", async () => (await agentEvents(lab, standby, "store.recovered", holder)).find(removed), { timeoutMs: 15_000, intervalMs: 500 });
    const standbyRecords = (await agentEvents(lab, standby, null)).length;
    expect(standbyRecords).toBeGreaterThan(0);
    await waitFor(`the standby's ${standbyRecords} events back on the holder`, async () => ((await agentEvents(lab, holder, null, standby)).length >= standbyRecords ? true : undefined), { timeoutMs: 15_000, intervalMs: 500 });
    expect((await lab.agentStatus(holder)).store).toMatchObject({ ok: true, reason: null, dropped: 0 });
  });

  it("the audit store's database damaged on the standby (overwritten with garbage) and its agent restarted: moved aside and kept, a new one created, said in the audit, the holder's records sent back; the VIP stays", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const dataDir = nodePaths(standby).dataDir;
    const database = join(dataDir, "mnha.db");
    const holderRecords = (await agentEvents(lab, holder, null, holder)).length;
    expect(holderRecords).toBeGreaterThan(0);
    const run = await runScenario(lab, before, {
      name: "audit store database damaged",
      fault: async () => {
        await lab.stopAgent(standby);
        // The first pages overwritten, as a bad disk or a stray dd would leave them.
        const fd = openSync(database, "r+");
        writeSync(fd, randomBytes(3 * 4096), 0, 3 * 4096, 0);
        closeSync(fd);
        await lab.startAgent(standby);
      },
      outcome: async () => {
        await waitFor("a store.moved-aside event on the standby", async () => (await agentEvents(lab, standby, "store.moved-aside")).find((e) => e.message.includes(`${database} was damaged`)), { timeoutMs: 20_000, intervalMs: 500 });
      },
    });
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    const kept = readdirSync(dataDir).filter((name) => /^mnha\.db\.damaged-[\dT-]+Z$/.test(name));
    expect(kept, "the damaged file, kept beside the new one").toHaveLength(1);
    expect((await lab.agentStatus(standby)).store).toMatchObject({ ok: true, reason: null });
    await waitFor(`the holder's ${holderRecords} events back on the standby`, async () => ((await agentEvents(lab, standby, null, holder)).length >= holderRecords ? true : undefined), { timeoutMs: 15_000, intervalMs: 500 });
  });

  it("the control socket removed by hand on the holder: listened on again, the CLI answers, audited; the VIP stays", async () => {
    const before = await lab.reset();
    const { holder } = before;
    const socketPath = nodePaths(holder).controlSocket;
    const run = await runScenario(lab, before, {
      name: "control socket removed",
      fault: async () => rmSync(socketPath),
      // agentEvents goes through the CLI, so an answer is itself the proof that the socket is back.
      outcome: async () => {
        await waitFor("a control.repaired event on the holder, read through the CLI", async () => (await agentEvents(lab, holder, "control.repaired").catch(() => [])).find((e) => e.message.includes(socketPath)), { timeoutMs: 10_000, intervalMs: 250 });
      },
    });
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it("data dir made read-only under the standby's agent: not eligible, with the reason in status; the holder's service killed is restored in place with no handoff tried; writable again, eligible again", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const notWritable = `${nodePaths(standby).dataDir}/keepalived is not writable (EROFS): it could not open its Keepalived gate, so it cannot take the VIP`;
    await setDataDirReadOnly(lab, standby, true);
    try {
      await waitFor("the standby not eligible, for its read-only directory", async () => ((await lab.agentStatus(holder)).peer as { reasons?: string[] }).reasons?.includes(notWritable) || undefined, { timeoutMs: 10_000, intervalMs: 250 });
      expect((await lab.agentStatus(standby)).self).toMatchObject({ eligible: false, reasons: [notWritable] });
      const run = await runScenario(lab, before, {
        name: "holder's service killed, standby's data dir read-only",
        fault: async () => {
          await lab.killService(holder, "mn");
        },
        outcome: async () => {
          await waitFor("the holder keeping the VIP for want of an eligible peer", async () => (await agentEvents(lab, holder, "election.holding-degraded")).find((e) => e.message.includes("no eligible peer")), { timeoutMs: 10_000, intervalMs: 250 });
        },
        observeMs: 3_000,
      });
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
      expect((await agentEvents(lab, holder, "election.handoff-offered")).filter((e) => e.time >= new Date(Date.now() - 60_000).toISOString()), "no handoff offered to a node that cannot take it").toEqual([]);
    } finally {
      await setDataDirReadOnly(lab, standby, false);
    }
    await waitFor("the standby eligible again", async () => ((await lab.agentStatus(standby)).self.eligible ? true : undefined), { timeoutMs: 10_000, intervalMs: 250 });
  });

  it("data dir made read-only under the holder's agent: said in the audit, the VIP stays, and writable again is said too", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const run = await runScenario(lab, before, {
      name: "data dir read-only",
      fault: async () => setDataDirReadOnly(lab, holder, true),
      outcome: async () => {
        await repairedEvent(holder, /not writable \(EROFS\)/);
        await sleep(2_000);
      },
    });
    try {
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
      expect(await hostAddresses(standby)).not.toContain(VIP_ADDRESS);
    } finally {
      await setDataDirReadOnly(lab, holder, false);
    }
    await repairedEvent(holder, /writable again/);
    expect(await lab.holders()).toEqual([holder]);
  });
});

describe("the data dir and Keepalived's reload (files removed by hand, a reload by habit)", () => {
  /** Waits for `node` to hear keepalived enter `state` (a keepalived.state event after `since`). */
  async function heardKeepalived(node: MnNode, state: string, since: string): Promise<HaEvent> {
    return waitFor(`${node} hearing keepalived become ${state}`, async () => (await agentEvents(lab, node, "keepalived.state")).find((e) => e.time >= since && e.message === `keepalived is ${state}`), { timeoutMs: 10_000, intervalMs: 200 });
  }

  it("keepalived reloaded by hand (kill -HUP) on the standby: its state changes are still heard, a switchover makes it master in status", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    expect(await lab.reloadKeepalived(standby)).not.toBeNull();
    await sleep(1_500);
    const since = new Date().toISOString();
    const demoted = await lab.agentCli(holder, ["demote", "--yes"], 15_000);
    expect(demoted.code, demoted.stderr).toBe(0);
    await heardKeepalived(standby, "master", since);
    expect((await lab.agentStatus(standby)).self.keepalived).toBe("master");
  });

  it("the holder's data dir removed by hand (rm -rf): the VIP stays, never two MACs; the instance lock, the epoch, Keepalived's files and the store come back within seconds, said in the audit; a second agent still exits at once; a switchover afterwards is heard from Keepalived", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const dataDir = nodePaths(holder).dataDir;
    const epoch = (await lab.agentStatus(holder)).self.epoch;
    const since = new Date().toISOString();
    const run = await runScenario(lab, before, {
      name: "holder's data dir removed",
      fault: async () => {
        // Until it is gone twice: the agent may write a file between rm's walk and its rmdir
        // (then rmdir fails with ENOTEMPTY, and rm starts over), as `rm -rf` run again would.
        for (let removed = 0, tries = 0; removed < 2 && tries < 20; tries++) {
          try {
            rmSync(dataDir, { recursive: true, force: true });
            removed++;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ENOTEMPTY") throw error;
          }
        }
      },
      outcome: async () => {
        await waitFor("the epoch written back", async () => (await agentEvents(lab, holder, "agent.epoch-restored")).find((e) => e.time >= since), { timeoutMs: 10_000, intervalMs: 250 });
        await waitFor("the driver's files made again", async () => (await agentEvents(lab, holder, "keepalived.repaired")).find((e) => e.time >= since && /made the notify FIFO .* again/.test(e.message)), { timeoutMs: 10_000, intervalMs: 250 });
      },
      observeMs: 3_000,
    });
    expectNeverTwoMacs(run);
    expectNoMove(run, holder);
    expect(readFileSync(join(dataDir, "epoch"), "utf8")).toBe(`${epoch}\n`);
    for (const file of ["keepalived.conf", "keepalived/gate", "keepalived/lease", "keepalived/notify.fifo", "mnha.db"]) expect(existsSync(join(dataDir, file)), file).toBe(true);
    expect(statSync(dataDir).mode & 0o777, "the data dir closed to others, as the agent made it").toBe(0o700);
    expect((await lab.agentStatus(holder)).self).toMatchObject({ eligible: true, role: "holder", keepalived: "master" });
    // The instance lock went with the directory and was taken again: a second agent still exits at once.
    expect((await agentEvents(lab, holder, "agent.lock-restored")).find((e) => e.time >= since)).toBeDefined();
    const second = await startSecondAgent(holder);
    expect(second.code, `exit code (stderr: ${second.stderr})`).toBe(3);
    expect(await lab.holders()).toEqual([holder]);
    const switched = new Date().toISOString();
    const demoted = await lab.agentCli(holder, ["demote", "--yes"], 15_000);
    expect(demoted.code, demoted.stderr).toBe(0);
    // The gate closes under it: keepalived goes to FAULT (weight 0 on the gate track file).
    await heardKeepalived(holder, "fault", switched);
    expect(await lab.holders()).toEqual([standby]);
  });
});

describe("the VIP added by hand on the standby (ip addr add, or a network config that lists it)", () => {
  it("taken off the standby within seconds and said in its audit; the holder (the lower MAC, which rule 7 keeps) never loses the VIP and is the only one answering afterwards", async () => {
    let before = await lab.reset();
    // With the stray on the lower MAC the holder would yield to it (rule 7, docs/protocol.md):
    // here the holder is the lower MAC, so nothing but the stray itself may change.
    const keeper: MnNode = HOSTS.mn1.mac.toLowerCase() < HOSTS.mn2.mac.toLowerCase() ? "mn1" : "mn2";
    if (before.holder !== keeper) {
      const demoted = await lab.agentCli(before.holder, ["demote", "--yes"], 15_000);
      expect(demoted.code, demoted.stderr).toBe(0);
      before = await lab.waitForStable({ timeoutMs: 20_000 });
    }
    const { holder, standby } = before;
    expect(holder).toBe(keeper);
    const since = new Date().toISOString();
    let removedAt = 0;
    const run = await runScenario(lab, before, {
      name: "VIP added by hand on the standby",
      // As /32: an address added by hand need not carry the VIP's prefix.
      fault: async () => void (await runIn(HOSTS[standby].namespace, "ip", ["-4", "addr", "add", `${VIP_ADDRESS}/32`, "dev", "eth0"])),
      outcome: async ({ sampler }) => {
        const removed = await waitFor("a vip.stray-removed event on the standby", async () => (await agentEvents(lab, standby, "vip.stray-removed")).find((e) => e.time >= since), { timeoutMs: 10_000, intervalMs: 250 });
        expect(removed.message).toMatch(new RegExp(`VIP ${VIP_ADDRESS.replaceAll(".", "\\.")} was on eth0 for \\d+ s although ${standby} does not hold it.*removed it`));
        removedAt = sampler.mark("stray removed");
      },
      observeMs: 3_000,
    });
    expect(await lab.holders()).toEqual([holder]);
    // Two MACs only while the stray was there; a second after its removal only the holder answers and serves.
    const settledFrom = removedAt + 1_000;
    expect(run.analysis.arp.splitBrain.filter((s) => s.t > settledFrom), "two MACs after the stray was removed").toEqual([]);
    expect(new Set(run.analysis.arp.answeredBy.filter((s) => s.node !== null && s.to > settledFrom).map((s) => s.node))).toEqual(new Set([holder]));
    expect(new Set(run.analysis.http.servedBy.filter((s) => s.node !== null && s.to > settledFrom).map((s) => s.node))).toEqual(new Set([holder]));
    expect((await agentEvents(lab, holder, "vip.changed")).filter((e) => e.time >= since && e.fields["present"] === false), "the holder's VIP never left").toEqual([]);
    expect((await lab.agentStatus(holder)).self).toMatchObject({ role: "holder", eligible: true });
  });
});

describe("the two config files disagree (a typo on one node)", () => {
  it("the standby restarted with another VIP prefix: status on both nodes says SETTINGS DIFFER first, both audits say it, the VIP stays; fixed and restarted, the holder says they agree again", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const configPath = nodePaths(standby).config;
    const rightConfig = readFileSync(configPath, "utf8");
    expect(rightConfig).toMatch(/^ {2}prefix: 24$/m);
    const run = await runScenario(lab, before, {
      name: "standby's config with another VIP prefix",
      fault: async () => {
        writeFileSync(configPath, rightConfig.replace(/^ {2}prefix: 24$/m, "  prefix: 25"));
        await lab.stopAgent(standby);
        await lab.startAgent(standby);
      },
      outcome: async () => {
        for (const node of [holder, standby]) {
          await waitFor(`a pair.settings-differ event on ${node}`, async () => (await agentEvents(lab, node, "pair.settings-differ")).find((e) => e.message.includes("vip 10.250.")), { timeoutMs: 15_000, intervalMs: 250 });
        }
      },
    });
    try {
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
      const holderView = await lab.agentCli(holder, ["status"]);
      expect(holderView.stdout.split("\n")[0]).toMatch(new RegExp(`^SETTINGS DIFFER between ${holder} and ${standby}: vip [\\d.]+/24 here, [\\d.]+/25 on ${standby} \\(the two nodes must agree`));
      expect((await lab.agentStatus(standby)).pairSettings).toEqual({ compared: true, differences: [{ name: "vip", here: expect.stringMatching(/\/25$/) as unknown, peer: expect.stringMatching(/\/24$/) as unknown }] });
    } finally {
      writeFileSync(configPath, rightConfig);
      await lab.stopAgent(standby);
      await lab.startAgent(standby);
    }
    await waitFor("the holder saying they agree again", async () => (await agentEvents(lab, holder, "pair.settings-agree")).at(-1), { timeoutMs: 15_000, intervalMs: 250 });
    expect((await lab.agentStatus(holder)).pairSettings).toEqual({ compared: true, differences: [] });
  });
});

describe("the other node's config copied onto a node (node: and peers: swapped)", () => {
  it("the standby's agent restarted on the holder's config: exits 2 at once naming the mix-up and the fix, the holder keeps the VIP; the right config back, the standby rejoins", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const configPath = nodePaths(standby).config;
    const rightConfig = readFileSync(configPath, "utf8");
    const nodeBlock = (name: string, address: string) => `node:\n  name: ${name}\n  address: ${address}\n`;
    const peerBlock = (name: string, address: string) => `peers:\n  - name: ${name}\n    address: ${address}\n`;
    const standbyAddress = /^node:\n {2}name: \S+\n {2}address: (\S+)$/m.exec(rightConfig)?.[1];
    const holderAddress = /^peers:\n {2}- name: \S+\n {4}address: (\S+)$/m.exec(rightConfig)?.[1];
    expect([standbyAddress, holderAddress].every((a) => a !== undefined)).toBe(true);
    const swapped = rightConfig
      .replace(nodeBlock(standby, standbyAddress ?? ""), nodeBlock(holder, holderAddress ?? ""))
      .replace(peerBlock(holder, holderAddress ?? ""), peerBlock(standby, standbyAddress ?? ""));
    expect(swapped).not.toBe(rightConfig);
    let attempt: SecondAgentResult | null = null;
    const run = await runScenario(lab, before, {
      name: "holder's config on the standby",
      fault: async () => {
        await lab.stopAgent(standby);
        writeFileSync(configPath, swapped, { mode: 0o600 });
        attempt = await startSecondAgent(standby);
      },
      outcome: async () => undefined,
      observeMs: 2_000,
    });
    try {
      const result = attempt as SecondAgentResult | null;
      expect(result?.code, `exit code (stderr: ${result?.stderr})`).toBe(2);
      expect(result?.tookMs).toBeLessThan(10_000);
      expect(result?.stderr).toContain(`CONFIG_INVALID: peer link cannot listen on ${holderAddress}:7946: EADDRNOTAVAIL`);
      expect(result?.stderr).toContain(`hint: ${holderAddress} is not an address of this host: if the network is still coming up, start the agent after it; if this is ${standby}'s host, the config here is ${holder}'s`);
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
    } finally {
      writeFileSync(configPath, rightConfig, { mode: 0o600 });
      await lab.startAgent(standby);
    }
    await waitFor("the standby back on the link", async () => ((await lab.agentStatus(standby)).peer.connected ? true : undefined), { timeoutMs: 15_000, intervalMs: 250 });
    expect(await lab.holders()).toEqual([holder]);
  });
});

describe("a typo in a service's check command (the check's program does not exist)", () => {
  it("the standby's agent restarted on it: the service counts as failed but is never restarted (restore NOT TRIED, with the fix), the holder keeps the VIP; the right config back, the standby eligible again", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const configPath = nodePaths(standby).config;
    const rightConfig = readFileSync(configPath, "utf8");
    const typo = "/usr/local/bin/zstack-ui-chek";
    const config = parseYaml(rightConfig) as { services: { name: string; check: Record<string, unknown> }[] };
    const ui = config.services.find((s) => s.name === "ui");
    expect(ui, "the lab's ui service").toBeDefined();
    ui!.check = { kind: "command", command: [typo], intervalMs: 100, fall: 2, rise: 2, timeoutMs: 500 };
    const uiBefore = await lab.servicePids(standby, "ui");
    expect(uiBefore).toHaveLength(1);
    const since = new Date().toISOString();
    const run = await runScenario(lab, before, {
      name: "check command typo on the standby",
      fault: async () => {
        await lab.stopAgent(standby);
        writeFileSync(configPath, stringifyYaml(config), { mode: 0o600 });
        await lab.startAgent(standby);
      },
      outcome: async () => {
        await waitFor("a restore.not-tried event on the standby", async () => (await agentEvents(lab, standby, "restore.not-tried")).find((e) => e.time >= since), { timeoutMs: 15_000, intervalMs: 250 });
      },
      // Long enough for the restore's first attempts (backoff from 500 ms) had it been tried.
      observeMs: 4_000,
    });
    try {
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
      expect(await lab.servicePids(standby, "ui"), "the same ui process: never restarted for the check's typo").toEqual(uiBefore);
      expect((await agentEvents(lab, standby, "restore.started")).filter((e) => e.time >= since)).toEqual([]);
      const status = (await lab.agentCli(standby, ["status"])).stdout;
      expect(status).toMatch(new RegExp(`service ui\\s+DOWN: command not found: ${typo}.*; restore NOT TRIED \\(see below\\)`));
      expect(status).toContain(`restore not tried (a restart cannot fix the failure):\n  ${standby} ui: the check's program ${typo} cannot be run (not found), and restarting the service cannot change that: fix the service's check.command in the config`);
      expect((await lab.agentStatus(standby)).self.eligible).toBe(false);
    } finally {
      await lab.stopAgent(standby);
      writeFileSync(configPath, rightConfig, { mode: 0o600 });
      await lab.startAgent(standby);
    }
    await waitFor("the standby eligible again", async () => ((await lab.agentStatus(standby)).self.eligible ? true : undefined), { timeoutMs: 15_000, intervalMs: 250 });
    expect(await lab.holders()).toEqual([holder]);
  });
});

describe("the shared secret changed on one node only (a rotation half done)", () => {
  it("the standby restarted on another secret: the VIP stays, never two MACs, and status on both nodes names the secrets and the fix; the right secret back, the link comes back", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const secretPath = nodePaths(standby).secret;
    const rightSecret = readFileSync(secretPath);
    const run = await runScenario(lab, before, {
      name: "secret rotated on the standby only",
      fault: async () => {
        writeFileSync(secretPath, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
        await lab.stopAgent(standby);
        await lab.startAgent(standby);
      },
      outcome: async () => {
        for (const node of [standby, holder]) {
          await waitFor(`status on ${node} saying why the peer link is down`, async () => {
            const failure = (await lab.agentStatus(node)).peer.dialFailure;
            return failure?.code.endsWith(":auth-failed") ? failure : undefined;
          }, { timeoutMs: 15_000, intervalMs: 250 });
        }
      },
      observeMs: 3_000,
    });
    try {
      expectNeverTwoMacs(run);
      expectNoMove(run, holder);
      for (const node of [standby, holder]) {
        const text = await lab.agentCli(node, ["status"]);
        expect(text.stdout, `mnha status on ${node}`).toMatch(/^peer mn\d \([\d.]+\): DISCONNECTED.*\n {2}last dial .* ago: .*auth-failed.*\n {2}hint: the two nodes hold different shared secrets/m);
        expect(text.stdout).not.toContain(rightSecret.toString("utf8").trim());
      }
    } finally {
      writeFileSync(secretPath, rightSecret, { mode: 0o600 });
      await lab.stopAgent(standby);
      await lab.startAgent(standby);
    }
    await waitFor("the link back up, status without the failure", async () => {
      const status = await lab.agentStatus(standby);
      return status.peer.connected && status.peer.dialFailure === undefined ? status : undefined;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    expect(await lab.holders()).toEqual([holder]);
  });
});

describe("the MariaDB check's password wrong on one node (a rotation half done, a typo)", () => {
  /** Ends the check's kept connection (as a MariaDB restart or a network blip would), so its next probe logs in again. */
  async function dropCheckConnections(node: MnNode, rootPassword: string): Promise<number> {
    const db = new MariaDbDatabase({ target: { socket: mariaDbPaths(node).socket }, user: "root", password: rootPassword, connectTimeoutMs: 3_000, label: `${node} (test)` });
    return db.withConnection(async (connection) => {
      const rows = (await connection.query("SELECT id FROM information_schema.processlist WHERE user = 'root' AND id <> CONNECTION_ID()")) as { id: number | bigint }[];
      for (const row of rows) await connection.query(`KILL CONNECTION ${String(row.id)}`);
      return rows.length;
    });
  }

  it("on the holder: the VIP moves to the healthy peer, MariaDB is never restarted, status and the audit say a restart cannot fix it; the password put right, healthy again with no restore", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const passwordFile = mariaDbPaths(holder).rootPasswordFile;
    const rightPassword = readFileSync(passwordFile, "utf8");
    const mariadbBefore = await mariaDbPids(holder);
    expect(mariadbBefore.length).toBeGreaterThan(0);
    const since = new Date().toISOString();
    const restoresOfDb = async (): Promise<HaEvent[]> => (await agentEvents(lab, holder, "restore.started")).filter((e) => e.time >= since && e.fields["service"] === "db");
    const run = await runScenario(lab, before, {
      name: "holder's MariaDB check password wrong",
      fault: async () => {
        writeFileSync(passwordFile, "not-the-password\n", { mode: 0o600 });
        expect(await dropCheckConnections(holder, rightPassword.trim()), "the check's kept connection").toBeGreaterThan(0);
      },
      outcome: async (ctx) => {
        await waitClientServedBy(ctx, standby);
        await waitFor("a restore.not-tried event on the holder", async () => (await agentEvents(lab, holder, "restore.not-tried")).find((e) => e.time >= since), { timeoutMs: 10_000, intervalMs: 250 });
      },
      observeMs: 3_000,
    });
    try {
      expectNeverTwoMacs(run);
      expectServedWithin(run);
      expectMovedOnce(run, holder, standby);
      expect(await restoresOfDb(), "restores of the database").toEqual([]);
      expect(await mariaDbPids(holder), "the same mariadbd").toEqual(mariadbBefore);
      const status = (await lab.agentCli(holder, ["status"])).stdout;
      expect(status).toMatch(/service db\s+DOWN: MariaDB on local .*; restore NOT TRIED \(see below\)/);
      expect(status).toContain(`restore not tried (a restart cannot fix the failure):\n  ${holder} db: MariaDB answers but refuses the check's user root, and restarting it cannot change that: put root's password in ${passwordFile}`);
      expect(status).not.toContain(rightPassword.trim());
    } finally {
      writeFileSync(passwordFile, rightPassword, { mode: 0o600 });
    }
    await waitFor(`${holder} eligible again`, async () => ((await lab.agentStatus(holder)).self.eligible ? true : undefined), { timeoutMs: 10_000, intervalMs: 250 });
    expect(await restoresOfDb(), "restores of the database, after the fix").toEqual([]);
    expect(await mariaDbPids(holder)).toEqual(mariadbBefore);
    expect(await lab.holders()).toEqual([standby]);
  });
});
