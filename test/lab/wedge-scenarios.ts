/**
 * Fault-suite scenarios for issue 7 ("never wedge"): mishaps around the agent rather than
 * faults the election models. All run in one lab whose keepalived binary is a wrapper that
 * can be made to fail (wedge-faults.ts).
 */
import type { FaultScenario, RunContext, ScenarioOutcome } from "./fault-suite.js";
import type { MnNode } from "./constants.js";
import { sleep, waitFor } from "./exec.js";
import type { Lab } from "./lab.js";
import {
  agentEvents,
  breakableKeepalived,
  garbleKeepalivedConfig,
  nodeSnapshot,
  removeGuardPidFile,
  setBroken,
  setDataDirReadOnly,
  startSecondAgent,
} from "./wedge-faults.js";

const LAB = { key: "breakable-keepalived", config: breakableKeepalived() };
/** A repair (or its audit event) shows up within this long. */
const EVENT_BOUND_MS = 10_000;

async function settled(lab: Lab, expected: MnNode | null): Promise<string[]> {
  // Generous: `mnha status` alone can take seconds on a loaded 2-core machine.
  const stable = await lab.waitForStable({ timeoutMs: 30_000 });
  return expected !== null && stable.holder !== expected ? [`settled with ${stable.holder} holding, expected ${expected}`] : [];
}

/** Problems unless a keepalived.repaired event on `node` matching `pattern` appears in time. */
async function audited(lab: Lab, node: MnNode, pattern: RegExp): Promise<string[]> {
  try {
    await waitFor(
      `a keepalived.repaired event on ${node} matching ${String(pattern)}`,
      async () => ((await agentEvents(lab, node, "keepalived.repaired")).some((e) => pattern.test(e.message)) ? true : undefined),
      { timeoutMs: EVENT_BOUND_MS, intervalMs: 250 },
    );
    return [];
  } catch (error) {
    return [(error as Error).message.slice(0, 200)];
  }
}

function secondAgent(role: "holder" | "standby"): FaultScenario {
  return {
    name: `second-agent-on-${role}`,
    what: `\`mnha agent --config <its config>\` started by hand on the ${role} while its agent runs; it must exit 3 at once (AGENT_ALREADY_RUNNING) and change nothing on either node`,
    expect: "none",
    lab: LAB,
    async act({ lab, sampler, before }: RunContext): Promise<ScenarioOutcome> {
      const node = role === "holder" ? before.holder : before.standby;
      const snapshots = [await nodeSnapshot(lab, before.holder), await nodeSnapshot(lab, before.standby)];
      sampler.mark(`fault: second agent on ${node}`);
      const result = await startSecondAgent(node);
      const problems: string[] = [];
      if (result.code !== 3) problems.push(`second agent exit code ${result.code}, not 3: ${result.stderr.trim().slice(0, 200)}`);
      if (result.tookMs > 10_000) problems.push(`second agent took ${Math.round(result.tookMs)} ms to exit`);
      if (!/already running for the data dir/.test(result.stderr)) problems.push(`second agent's message: ${result.stderr.trim().slice(0, 200)}`);
      const after = [await nodeSnapshot(lab, before.holder), await nodeSnapshot(lab, before.standby)];
      if (JSON.stringify(after) !== JSON.stringify(snapshots)) problems.push(`a node changed: before ${JSON.stringify(snapshots)} after ${JSON.stringify(after)}`.slice(0, 300));
      return { problems: [...problems, ...(await settled(lab, before.holder))] };
    },
  };
}

export const WEDGE_SCENARIOS: FaultScenario[] = [
  secondAgent("holder"),
  secondAgent("standby"),
  {
    name: "guard-pid-file-removed",
    what: "the holder's lease.guard.pid deleted by hand (mnha-lease-check then fails); the driver's self-check puts it back",
    expect: "none",
    lab: LAB,
    async act({ lab, sampler, before }) {
      sampler.mark("fault: rm lease.guard.pid");
      removeGuardPidFile(before.holder);
      const problems = await audited(lab, before.holder, /guard\.pid .*was missing/);
      await sleep(3_000); // a few lease-check intervals
      return { problems: [...problems, ...(await settled(lab, before.holder))] };
    },
  },
  {
    name: "keepalived-conf-garbage",
    what: "the holder's keepalived.conf overwritten with garbage and keepalived SIGHUPed to load it; the driver restores the file and reloads",
    expect: "at-most-one",
    lab: LAB,
    async act({ lab, sampler, before }) {
      sampler.mark("fault: keepalived.conf garbage + SIGHUP");
      garbleKeepalivedConfig(before.holder);
      await lab.reloadKeepalived(before.holder);
      const problems = await audited(lab, before.holder, /rewrote .*keepalived\.conf/);
      return { problems: [...problems, ...(await settled(lab, null))] };
    },
  },
  {
    name: "keepalived-wont-start",
    what: "the holder's keepalived SIGKILLed while its binary fails at start (exit 1); fixed once the driver has said so in the audit",
    expect: "at-most-one",
    lab: LAB,
    async act({ lab, sampler, before }) {
      sampler.mark("fault: keepalived binary broken + kill -9 keepalived");
      setBroken(before.holder, "keepalived", true);
      try {
        await lab.killKeepalived(before.holder);
        const problems = await audited(lab, before.holder, /keepalived fails to start .*exit code 1/s);
        sampler.mark("binary fixed");
        setBroken(before.holder, "keepalived", false);
        await waitFor(`keepalived on ${before.holder} again`, async () => ((await lab.keepalivedPids(before.holder)).length > 0 ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
        return { problems: [...problems, ...(await settled(lab, null))] };
      } finally {
        setBroken(before.holder, "keepalived", false);
      }
    },
  },
  {
    name: "data-dir-read-only",
    what: "the holder's data dir made read-only under its agent (read-only bind mount in the agent's mount namespace) for 3 s",
    expect: "none",
    lab: LAB,
    async act({ lab, sampler, before }) {
      sampler.mark("fault: data dir read-only");
      await setDataDirReadOnly(lab, before.holder, true);
      let problems: string[];
      try {
        problems = await audited(lab, before.holder, /not writable \(EROFS\)/);
        await sleep(3_000);
      } finally {
        sampler.mark("data dir writable");
        await setDataDirReadOnly(lab, before.holder, false);
      }
      problems.push(...(await audited(lab, before.holder, /writable again/)));
      return { problems: [...problems, ...(await settled(lab, before.holder))] };
    },
  },
];
