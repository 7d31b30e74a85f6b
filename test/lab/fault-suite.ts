/**
 * The fault-injection runner: every scenario below, `--runs` times, against the real agents
 * in the lab, with the client sampling throughout. Per run it checks the promises as the
 * client and the nodes see them: never two MACs answering ARP for the VIP (and never two
 * nodes with the VIP on a live interface), the VIP served again within the bound, and no
 * move without an injected cause. Prints a Markdown table and writes it, with one CSV row
 * per run, to bench/results/fault-suite-<date>.md|csv.
 *
 *   MNHA_LAB=bench node --import tsx test/lab/fault-suite.ts --runs 20 [--only name[,name]] [--keep-up] [--witness]
 *
 * --witness runs every scenario with a witness (test/lab/witness-host.ts) configured on both
 * agents: then no scenario tolerates a single two-MAC sample (docs/protocol.md, the witness
 * column), and the results are written as fault-suite-witness-<date>.
 *
 * A failed run's lab state (agent, keepalived and service logs, samples) is copied to
 * .lab/bench/fault-suite/<scenario>/run-<n>/ before the next run.
 */
import { createLogger, MnhaError } from "@mnha/shared";
import { analyze, describeAnalysis, type Analysis } from "./analysis.js";
import { answerMoves, answers, firstAnswerAfter, longestAnswerGap } from "./bench-client.js";
import { doubleHolders, NodeWatcher } from "./bench-node-watch.js";
import { csv, dateStamp, describeMachine, intFlag, machineLines, markdownTable, ms, parseFlags, writeResults } from "./bench-report.js";
import { healLab } from "./bench-systems.js";
import { stepWallClock } from "./clock-step.js";
import type { ConfigOverrides } from "./config-writer.js";
import { LAB_NAME, LAB_PREFIX, MN_NODES, REPO_ROOT, nodePaths, type MnNode } from "./constants.js";
import { monoNow, sleep, waitFor } from "./exec.js";
import { Lab, type StableState } from "./lab.js";
import { killTogether, waitReaped } from "./procfs.js";
import type { ClientSampler } from "./sampler.js";
import { agentEvents } from "./wedge-faults.js";
import { WEDGE_SCENARIOS } from "./wedge-scenarios.js";
import { addWitnessHost, startWitness, withWitness } from "./witness-host.js";

/** The VIP is served again within this long after a fault (the e2e tests' bound). */
const SERVED_BOUND_MS = 10_000;
/**
 * Below this many ARP samples a second, "no two MACs" would mean little: the run fails.
 * `--min-arp-per-second N` lowers it on a machine shared with other labs (say so in the results).
 */
let MIN_ARP_PER_SECOND = 15;
/** --witness: a witness in the lab, and zero two-holder samples in every scenario. */
let WITH_WITNESS = false;
/** Sampling after the outcome, to catch a late flap or split brain. */
const OBSERVE_MS = 2_000;
const USAGE = "MNHA_LAB=bench node --import tsx test/lab/fault-suite.ts [--runs 20] [--only name[,name...]] [--keep-up] [--min-arp-per-second 15] [--out NAME] [--witness]";

/**
 * "split-settles": two holders may answer briefly, so a client may follow the one that
 * releases and come back: at most three changes of answerer (to the second holder, to both,
 * back to the keeper).
 */
export type ExpectedMoves = "none" | "holder-to-standby" | "at-most-one" | "split-settles";

export interface RunContext {
  lab: Lab;
  sampler: ClientSampler;
  before: StableState;
  /** 1-based. */
  run: number;
}

export interface ScenarioOutcome {
  /** From when the VIP must be served again (default: the fault). */
  servedFrom?: number;
  /** Problems found by the scenario's own checks. */
  problems?: string[];
}

export interface FaultScenario {
  name: string;
  what: string;
  expect: ExpectedMoves;
  /**
   * Two holders are tolerated for at most this long (ms, first to last two-holder sample),
   * only where docs/protocol.md states that bound; otherwise a single sample fails the run.
   */
  splitBrainBoundMs?: number;
  /** A lab with a different agent config (the lab is rebuilt when this changes). */
  lab?: { key: string; config: ConfigOverrides };
  /** Injects the fault (marking it), waits (bounded) for the expected outcome, heals. */
  act(ctx: RunContext): Promise<ScenarioOutcome | void>;
}

async function servedBy(ctx: RunContext, node: MnNode, since: number, timeoutMs = SERVED_BOUND_MS + 2_000): Promise<void> {
  const first = await ctx.sampler.waitServedBy(node, { since, count: 5, timeoutMs });
  if (first === null) throw new Error(`the client was not served by ${node} within ${timeoutMs} ms`);
}

async function waitListening(lab: Lab, node: MnNode, timeoutMs = 10_000): Promise<void> {
  await waitFor(`${node}/mn to be restored`, async () => ((await lab.serviceListening(node, "mn")) ? true : undefined), { timeoutMs, intervalMs: 50 });
}

/** Waits until the lab is stable again, and says so when it settled on an unexpected holder. */
async function settledOn(lab: Lab, expected: MnNode | null, timeoutMs = 20_000): Promise<ScenarioOutcome> {
  const stable = await lab.waitForStable({ timeoutMs });
  return { problems: expected !== null && stable.holder !== expected ? [`settled with ${stable.holder} holding, expected ${expected}`] : [] };
}

export const SCENARIOS: FaultScenario[] = [
  {
    name: "kill-agent-and-keepalived",
    what: "SIGKILL of the holder's agent and its keepalived together; 3 s later the agent is started again (as systemd would)",
    expect: "at-most-one",
    async act({ lab, sampler, before }) {
      // Both pids first, then all frozen and killed together: neither the lease guard nor
      // keepalived's own parent-death handling gets the chance to drop the VIP before it dies.
      const agent = await lab.agentPid(before.holder);
      const keepalived = await lab.keepalivedPids(before.holder);
      const pids = [...(agent === null ? [] : [agent]), ...keepalived];
      sampler.mark("fault: kill -9 agent and keepalived");
      const unfrozen = await killTogether(pids);
      const left = await waitReaped(pids, 10_000);
      const problems: string[] = [];
      if (agent === null || keepalived.length === 0) problems.push("the agent or keepalived was not running");
      if (left.length > 0) problems.push(`not reaped: ${left.join(", ")}`);
      if (unfrozen.length > 0) problems.push(`not seen stopped before SIGKILL: ${unfrozen.join(", ")}`);
      await sleep(3_000);
      sampler.mark("agent restarted");
      await lab.startAgent(before.holder);
      const settled = await settledOn(lab, null);
      return { problems: [...problems, ...(settled.problems ?? [])] };
    },
  },
  {
    name: "peer-link-cut",
    what: "every IP packet between the MNs dropped (peer port and VRRP), client and gateway reachable, ARP flows; healed after 4 s",
    expect: "none",
    async act({ lab, sampler, before }) {
      sampler.mark("fault: cut peer link");
      await lab.cutPeerLink();
      await sleep(4_000);
      sampler.mark("heal peer link");
      await lab.healPeerLink();
      return settledOn(lab, before.holder);
    },
  },
  {
    name: "one-way-loss-from-holder",
    what: "every IP packet from the holder to the standby dropped (the other way flows); healed after 4 s",
    expect: "none",
    async act({ lab, sampler, before }) {
      sampler.mark("fault: drop holder -> standby");
      await lab.dropPeerTrafficFrom(before.holder);
      await sleep(4_000);
      sampler.mark("heal");
      await lab.healPeerLink();
      return settledOn(lab, before.holder);
    },
  },
  {
    name: "one-way-loss-to-holder",
    what: "every IP packet from the standby to the holder dropped (the other way flows); healed after 4 s",
    expect: "none",
    async act({ lab, sampler, before }) {
      sampler.mark("fault: drop standby -> holder");
      await lab.dropPeerTrafficFrom(before.standby);
      await sleep(4_000);
      sampler.mark("heal");
      await lab.healPeerLink();
      return settledOn(lab, before.holder);
    },
  },
  {
    name: "pause-agent-beyond-lease",
    what: "the holder's agent SIGSTOPped for 3 s (lease 0.6 s), then SIGCONT: the peer takes over, the woken agent does not take the VIP back",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: SIGSTOP holder agent");
      await lab.pauseAgent(before.holder);
      await sleep(3_000);
      sampler.mark("SIGCONT");
      await lab.resumeAgent(before.holder);
      await servedBy(ctx, before.standby, at);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "service-fails-once",
    what: "the holder's MN service SIGKILLed once; the agent restores it",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: kill holder mn");
      await lab.killService(before.holder, "mn");
      await servedBy(ctx, before.standby, at);
      await waitListening(lab, before.holder);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "service-flaps",
    what: "the holder's MN service SIGKILLed 5 times, each time 300 ms after the agent restored it",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: kill holder mn (1/5)");
      await lab.killService(before.holder, "mn");
      for (let kill = 2; kill <= 5; kill++) {
        await waitListening(lab, before.holder);
        await sleep(300);
        sampler.mark(`kill mn (${kill}/5)`);
        await lab.killService(before.holder, "mn");
      }
      await servedBy(ctx, before.standby, at);
      await waitListening(lab, before.holder);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "keepalived-reload-mid-failover",
    what: "the holder's MN service SIGKILLed, then 50-500 ms later (varied per run) keepalived reloaded (SIGHUP) on both nodes",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const delayMs = 50 + ((ctx.run * 137) % 451);
      const at = sampler.mark("fault: kill holder mn");
      await lab.killService(before.holder, "mn");
      await sleep(delayMs);
      sampler.mark(`SIGHUP keepalived on both nodes (${delayMs} ms after)`);
      const reloaded = await Promise.all([lab.reloadKeepalived(before.standby), lab.reloadKeepalived(before.holder)]);
      await servedBy(ctx, before.standby, at);
      await waitListening(lab, before.holder);
      const settled = await settledOn(lab, before.standby);
      return { problems: [...(settled.problems ?? []), ...(reloaded.includes(null) ? ["a keepalived to reload was missing"] : [])] };
    },
  },
  {
    name: "vip-interface-down-up",
    what: "the holder's eth0 set down (inside the node), set up again 1 s after the peer serves",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: holder eth0 down");
      await lab.setVipInterface(before.holder, false);
      await servedBy(ctx, before.standby, at);
      await sleep(1_000);
      sampler.mark("holder eth0 up");
      await lab.setVipInterface(before.holder, true);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "holder-loses-gateway",
    what: "the holder cut off the gateway (the standby keeps it); healed 1 s after the peer serves",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: holder loses gateway");
      await lab.cutGateway(before.holder);
      await servedBy(ctx, before.standby, at);
      await sleep(1_000);
      sampler.mark("heal gateway");
      await lab.healGateway(before.holder);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "old-holder-rejoins",
    what: "the holder crashes (wire cut, every process killed); 1 s after the peer serves it boots and rejoins as standby",
    expect: "holder-to-standby",
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: crash holder");
      await lab.crash(before.holder);
      await servedBy(ctx, before.standby, at);
      await sleep(1_000);
      sampler.mark("old holder boots");
      await lab.boot(before.holder);
      return settledOn(lab, before.standby);
    },
  },
  {
    name: "both-start-together",
    what: "both nodes crash, boot without agents, then both agents start at the same moment; the VIP must be served within the bound from that moment",
    expect: "at-most-one",
    async act({ lab, sampler }) {
      sampler.mark("fault: crash both");
      await Promise.all(MN_NODES.map((node) => lab.crash(node)));
      await Promise.all(MN_NODES.map((node) => lab.boot(node, { agent: false })));
      const servedFrom = sampler.mark("both agents start");
      await Promise.all(MN_NODES.map((node) => lab.startAgent(node)));
      const settled = await settledOn(lab, null);
      return { servedFrom, ...settled };
    },
  },
  {
    name: "both-start-peer-link-cut",
    what: "both nodes crash and boot without agents; IP between the MNs is cut (ARP flows); both agents start at once: two holders may answer briefly, the higher MAC must release within the bound",
    expect: "split-settles",
    splitBrainBoundMs: 1_500,
    async act({ lab, sampler }) {
      sampler.mark("fault: crash both");
      await Promise.all(MN_NODES.map((node) => lab.crash(node)));
      await Promise.all(MN_NODES.map((node) => lab.boot(node, { agent: false })));
      await lab.cutPeerLink();
      const servedFrom = sampler.mark("both agents start, peer link cut");
      await Promise.all(MN_NODES.map((node) => lab.startAgent(node)));
      await sleep(5_000);
      const holders = await lab.holders();
      const problems = holders.length === 1 ? [] : [`5 s after the start, holders on eth0: [${holders.join(", ")}]`];
      await lab.healPeerLink();
      const settled = await settledOn(lab, null);
      return { servedFrom, ...settled, problems: [...problems, ...(settled.problems ?? [])] };
    },
  },
  {
    name: "service-stays-down",
    what: "the holder's MN service SIGKILLed with no restore command: the VIP moves, the old holder stays ineligible",
    expect: "holder-to-standby",
    lab: { key: "no-restore", config: { restore: false } },
    async act(ctx) {
      const { lab, sampler, before } = ctx;
      const at = sampler.mark("fault: kill holder mn (no restore)");
      await lab.killService(before.holder, "mn");
      await servedBy(ctx, before.standby, at);
      await sleep(2_000);
      const problems: string[] = [];
      if (await lab.serviceListening(before.holder, "mn")) problems.push("the MN service came back although no restore is configured");
      const status = await lab.agentStatus(before.holder);
      if (status.self.eligible) problems.push(`${before.holder} still reports itself eligible with its MN service down`);
      if (status.vipOwner !== before.standby) problems.push(`${before.holder} says the VIP owner is ${status.vipOwner ?? "nobody"}`);
      return { problems };
    },
  },
  {
    name: "wall-clock-steps",
    what: "the machine's wall clock stepped 1 h forward for 3 s and back, then 1 h back for 3 s and forward again (NTP's makestep, date -s): nothing moves, and the holder's VIP never leaves its interface",
    expect: "none",
    async act({ lab, sampler, before }) {
      // The audit's own count, by seq: its timestamps are the stepped wall clock's.
      const vipDrops = async (): Promise<number> => (await agentEvents(lab, before.holder, "vip.changed")).filter((e) => e.fields["present"] === false).length;
      const dropsBefore = await vipDrops();
      sampler.mark("fault: wall clock 1 h forward");
      await stepWallClock(3_600_000, 3_000);
      sampler.mark("wall clock 1 h back");
      await stepWallClock(-3_600_000, 3_000);
      sampler.mark("wall clock right again");
      await sleep(1_000);
      const dropped = (await vipDrops()) - dropsBefore;
      const problems = dropped > 0 ? [`the VIP left ${before.holder}'s interface ${dropped} time(s) (vip.changed present=false)`] : [];
      const settled = await settledOn(lab, before.holder);
      return { problems: [...problems, ...(settled.problems ?? [])] };
    },
  },
  // Issue 7: mishaps around the agent (test/lab/wedge-scenarios.ts).
  ...WEDGE_SCENARIOS,
];

// ---------------------------------------------------------------------------- one run

export interface RunResult {
  scenario: string;
  run: number;
  pass: boolean;
  problems: string[];
  /** Wall clock of the fault, to find it in the agents' logs. */
  faultWall: string;
  holderBefore: string;
  holderAfter: string;
  firstServedMs: number | null;
  /** Longest stretch without an answer from the fault (or servedFrom) to the end. */
  longestUnservedMs: number;
  arpSplitBrain: number;
  nodeDoubleHolder: number;
  httpMoves: string[];
  arpMoves: string[];
  unexpectedMoves: number;
  arpPerSecond: number;
}

function unexpectedMoves(moves: readonly { from: string; to: string; at: number }[], faultAt: number, expect: ExpectedMoves, before: StableState): { unexpected: number; missing: boolean } {
  const early = moves.filter((m) => m.at < faultAt).length;
  const after = moves.filter((m) => m.at >= faultAt);
  if (expect === "none") return { unexpected: early + after.length, missing: false };
  if (expect === "at-most-one") return { unexpected: early + Math.max(0, after.length - 1), missing: false };
  if (expect === "split-settles") return { unexpected: early + Math.max(0, after.length - 3), missing: false };
  const first = after[0];
  const right = first !== undefined && first.from === before.holder && first.to === before.standby;
  return { unexpected: early + (right ? after.length - 1 : after.length), missing: !right };
}

async function runOnce(lab: Lab, scenario: FaultScenario, run: number, before: StableState): Promise<RunResult> {
  const sampler = lab.sampler(`${scenario.name}-${run}`, { maxMs: 120_000 });
  const watcher = new NodeWatcher({ maxMs: 120_000 });
  const problems: string[] = [];
  await sampler.start();
  watcher.start();
  let faultAt = monoNow();
  let faultWall = new Date().toISOString();
  let outcome: ScenarioOutcome = {};
  try {
    const baseline = await sampler.waitServedBy(before.holder, { since: monoNow(), count: 5, timeoutMs: 5_000 });
    if (baseline === null) throw new Error(`baseline: the client was not served by ${before.holder}`);
    await sleep(300);
    faultAt = monoNow();
    faultWall = new Date().toISOString();
    outcome = (await scenario.act({ lab, sampler, before, run })) ?? {};
    sampler.mark("outcome reached");
    await sleep(OBSERVE_MS);
  } catch (error) {
    problems.push(`outcome not reached: ${(error as Error).message.split("\n")[0]}`);
  }
  const end = sampler.mark("end");
  const records = await sampler.stop();
  const nodeSamples = await watcher.stop();
  const analysis: Analysis = analyze(records, { faultAt });
  const all = answers(records);
  const servedFrom = outcome.servedFrom ?? faultAt;
  const first = firstAnswerAfter(all, servedFrom, null);
  const firstServedMs = first === null ? null : first.at - servedFrom;
  const gap = longestAnswerGap(all, servedFrom, end, { fromLastAnswerBefore: outcome.servedFrom === undefined });
  const httpMoves = answerMoves(all, -Infinity, end);
  const http = unexpectedMoves(httpMoves, faultAt, scenario.expect, before);
  const arp = unexpectedMoves(analysis.arp.moves, faultAt, scenario.expect, before);
  const doubles = doubleHolders(nodeSamples);
  let holderAfter = "?";
  try {
    const holders = await lab.holders();
    holderAfter = holders.join("+") || "none";
    if (holders.length !== 1) problems.push(`after the run, holders on eth0: [${holders.join(", ")}]`);
  } catch (error) {
    problems.push(`could not read the holders: ${(error as Error).message}`);
  }

  problems.push(...(outcome.problems ?? []));
  const span = (times: number[]): number => (times.length === 0 ? 0 : Math.max(...times) - Math.min(...times));
  const arpSplitMs = span(analysis.arp.splitBrain.map((s) => s.t));
  const nodeSplitMs = span(doubles.map((s) => s.t));
  if (scenario.splitBrainBoundMs === undefined || WITH_WITNESS) {
    if (analysis.arp.splitBrain.length > 0) problems.push(`${analysis.arp.splitBrain.length} ARP samples with two MACs`);
    if (doubles.length > 0) problems.push(`${doubles.length} node samples with the VIP on both live interfaces`);
  } else {
    if (arpSplitMs > scenario.splitBrainBoundMs) problems.push(`two MACs answered for ${Math.round(arpSplitMs)} ms (bound ${scenario.splitBrainBoundMs} ms)`);
    if (nodeSplitMs > scenario.splitBrainBoundMs) problems.push(`the VIP was on both live interfaces for ${Math.round(nodeSplitMs)} ms (bound ${scenario.splitBrainBoundMs} ms)`);
  }
  if (analysis.arp.perSecond < MIN_ARP_PER_SECOND) problems.push(`only ${analysis.arp.perSecond.toFixed(1)} ARP samples/s`);
  if (firstServedMs === null || firstServedMs > SERVED_BOUND_MS) problems.push(`not served within ${SERVED_BOUND_MS} ms (first answer ${ms(firstServedMs)} ms)`);
  if (gap.gapMs > SERVED_BOUND_MS) problems.push(`unserved for ${Math.round(gap.gapMs)} ms`);
  const unexpected = Math.max(http.unexpected, arp.unexpected);
  if (unexpected > 0) problems.push(`${unexpected} unexpected moves (HTTP ${httpMoves.map((m) => `${m.from}->${m.to}`).join(" ") || "none"}; ARP ${analysis.arp.moves.map((m) => `${m.from}->${m.to}`).join(" ") || "none"})`);
  if (http.missing || arp.missing) problems.push(`expected the VIP to move ${before.holder}->${before.standby}; it did not (HTTP ${http.missing ? "no" : "yes"}, ARP ${arp.missing ? "no" : "yes"})`);

  const result: RunResult = {
    scenario: scenario.name,
    run,
    pass: problems.length === 0,
    problems,
    faultWall,
    holderBefore: before.holder,
    holderAfter,
    firstServedMs,
    longestUnservedMs: gap.gapMs,
    arpSplitBrain: analysis.arp.splitBrain.length,
    nodeDoubleHolder: doubles.length,
    httpMoves: httpMoves.map((m) => `${m.from}->${m.to}`),
    arpMoves: analysis.arp.moves.map((m) => `${m.from}->${m.to}`),
    unexpectedMoves: unexpected,
    arpPerSecond: analysis.arp.perSecond,
  };
  if (!result.pass) console.log([`    --- ${scenario.name} run ${run} FAILED (fault at ${faultWall})`, ...problems.map((p) => `    ! ${p}`), ...describeAnalysis(analysis, faultAt).map((l) => `    ${l}`)].join("\n"));
  return result;
}

// ---------------------------------------------------------------------------- the suite

function archiveDir(scenario: string, run: number): string {
  return `${REPO_ROOT}/.lab/${LAB_NAME}/fault-suite/${scenario}/run-${run}`;
}

/**
 * Brings the lab back to "both nodes healthy, one holder". After a passed run the lab is
 * normally stable already (every scenario heals its faults): a short check suffices.
 * Otherwise, or when that check fails, every fault is healed and missing pieces restarted.
 */
async function settle(lab: Lab, previousPassed: boolean): Promise<StableState> {
  if (previousPassed) {
    try {
      return await lab.waitForStable({ timeoutMs: 3_000 });
    } catch {
      // something is still off: heal everything below
    }
  }
  await healLab(lab, { agent: true });
  return lab.reset();
}

interface ScenarioRow {
  scenario: FaultScenario;
  results: RunResult[];
}

function report(rows: ScenarioRow[], runs: number, machine: ReturnType<typeof describeMachine>, tookS: number): { markdown: string; csvText: string } {
  const table = markdownTable(
    ["scenario", "expected moves", "runs", "passes", "worst time without a served VIP (ms)", "median first answer (ms)", "split-brain samples (ARP / nodes)", "unexpected moves", "min ARP/s", "first failure"],
    rows.map(({ scenario, results }) => {
      const passes = results.filter((r) => r.pass).length;
      const firsts = results.map((r) => r.firstServedMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
      const failure = results.find((r) => !r.pass);
      return [
        scenario.name,
        scenario.expect,
        String(results.length),
        String(passes),
        ms(Math.max(...results.map((r) => r.longestUnservedMs))),
        ms(firsts[Math.floor((firsts.length - 1) / 2)]),
        `${results.reduce((s, r) => s + r.arpSplitBrain, 0)} / ${results.reduce((s, r) => s + r.nodeDoubleHolder, 0)}`,
        String(results.reduce((s, r) => s + r.unexpectedMoves, 0)),
        Math.min(...results.map((r) => r.arpPerSecond)).toFixed(1),
        failure ? `run ${failure.run}: ${failure.problems.join("; ")}`.slice(0, 300) : "",
      ];
    }),
  );
  const markdown = [
    `# Fault suite, ${machine.date.slice(0, 10)}`,
    "",
    ...machineLines(machine),
    `- lab \`${LAB_PREFIX}\`, ${runs} runs per scenario, ${Math.round(tookS)} s in all`,
    "",
    ...table,
    "",
    `Columns: *worst time without a served VIP* is the longest stretch, over all runs, in which the client got no HTTP answer through the VIP, from the last answer before the fault (for \`both-start-together\`: from the moment both agents start) to the end of the run. *Median first answer*: from the fault to the first answer through the VIP. *Split-brain samples*: client ARP samples in which two MACs answered for the VIP / node samples (4 per second) in which both MNs had the VIP on a live eth0. *Unexpected moves*: changes of the node answering (HTTP answers or ARP) that the injected fault does not explain. A run passes when all of these hold, the expected move happened, the ARP sampler ran at ${MIN_ARP_PER_SECOND}+ samples/s, and the lab settled with one holder.`,
    "",
    "## Scenarios",
    "",
    ...rows.map(({ scenario }) => `- \`${scenario.name}\` — ${scenario.what}. Expected: ${scenario.expect === "none" ? "no move" : scenario.expect === "at-most-one" ? "at most one move" : scenario.expect === "split-settles" ? "at most three changes of answerer (to a brief second holder, both, and back), two holders for at most the stated bound" : "exactly one move, holder to standby"}.`),
    "",
  ].join("\n");
  const csvText = csv(
    ["scenario", "run", "pass", "fault_wall_time", "holder_before", "holder_after", "first_served_ms", "longest_unserved_ms", "arp_split_brain", "node_double_holder", "unexpected_moves", "http_moves", "arp_moves", "arp_per_s", "problems"],
    rows.flatMap(({ results }) =>
      results.map((r) => [r.scenario, r.run, r.pass, r.faultWall, r.holderBefore, r.holderAfter, r.firstServedMs, r.longestUnservedMs, r.arpSplitBrain, r.nodeDoubleHolder, r.unexpectedMoves, r.httpMoves.join(" "), r.arpMoves.join(" "), r.arpPerSecond, r.problems.join("; ")]),
    ),
  );
  return { markdown, csvText };
}

/** The scenario's agent config, plus the witness with --witness. */
function labConfig(config: ConfigOverrides): ConfigOverrides {
  if (!WITH_WITNESS) return config;
  return { ...config, customize: (node, c) => withWitness(node, config.customize ? config.customize(node, c) : c) };
}

/** A fresh lab; with --witness, the witness is up before the agents start (they claim only with its grant). */
async function labUp(lab: Lab): Promise<void> {
  if (!WITH_WITNESS) {
    await lab.up({ fresh: true });
    return;
  }
  await lab.up({ fresh: true, agents: false });
  await addWitnessHost();
  await startWitness();
  for (const node of MN_NODES) await lab.startAgent(node);
  await lab.waitForStable();
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), { runs: "string", only: "string", "keep-up": "boolean", "min-arp-per-second": "string", out: "string", witness: "boolean" }, USAGE);
  WITH_WITNESS = flags["witness"] === true;
  const runs = intFlag(flags, "runs", 20, 200);
  MIN_ARP_PER_SECOND = intFlag(flags, "min-arp-per-second", 15, 50);
  const outName = typeof flags["out"] === "string" ? flags["out"] : null;
  if (outName !== null && !/^[a-z0-9][a-z0-9-]{0,60}$/.test(outName)) throw new MnhaError("USAGE", `--out must be lower-case letters, digits and dashes, not ${JSON.stringify(outName)}`, { hint: "for example --out fault-suite-wedge" });
  const only = typeof flags["only"] === "string" ? flags["only"].split(",").map((s) => s.trim()) : null;
  const unknown = (only ?? []).filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new MnhaError("USAGE", `unknown scenario ${unknown.join(", ")}`, { hint: `one of: ${SCENARIOS.map((s) => s.name).join(", ")}` });
  const chosen = SCENARIOS.filter((s) => only === null || only.includes(s.name));
  const logger = createLogger({ level: "warn", pretty: true, destination: process.stderr });
  const machine = describeMachine();
  const started = monoNow();
  console.log(`fault suite: ${chosen.length} scenarios x ${runs} runs in lab ${LAB_PREFIX}${WITH_WITNESS ? ", with a witness" : ""}`);

  let lab: Lab | null = null;
  let labKey: string | null = null;
  const rows: ScenarioRow[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    for (const scenario of chosen) {
      if (interrupted) break;
      const key = scenario.lab?.key ?? "default";
      if (lab === null || key !== labKey) {
        lab = new Lab({ logger, config: labConfig(scenario.lab?.config ?? {}) });
        await labUp(lab);
        labKey = key;
      }
      const row: ScenarioRow = { scenario, results: [] };
      rows.push(row);
      for (let run = 1; run <= runs && !interrupted; run++) {
        let before: StableState;
        try {
          before = await settle(lab, row.results[row.results.length - 1]?.pass ?? false);
        } catch (error) {
          // The lab did not settle after the previous run: keep the evidence, rebuild, go on.
          console.log(`    lab did not settle before ${scenario.name} run ${run}: ${(error as Error).message}`);
          lab.archiveState(archiveDir(scenario.name, run) + "-unsettled");
          if (row.results.length > 0) {
            const last = row.results[row.results.length - 1] as RunResult;
            last.pass = false;
            last.problems.push(`the lab did not settle after the run: ${(error as Error).message.slice(0, 200)}`);
          }
          await labUp(lab);
          before = await lab.waitForStable();
        }
        const result = await runOnce(lab, scenario, run, before);
        row.results.push(result);
        if (!result.pass) lab.archiveState(archiveDir(scenario.name, run));
        console.log(
          `  ${scenario.name} #${run}: ${result.pass ? "pass" : "FAIL"}; first answer ${ms(result.firstServedMs)} ms, longest unserved ${ms(result.longestUnservedMs)} ms, moves ${result.httpMoves.join(" ") || "none"}, ARP ${result.arpPerSecond.toFixed(1)}/s`,
        );
      }
    }
  } finally {
    if (lab !== null && flags["keep-up"] !== true) await lab.down({ archiveTo: `${REPO_ROOT}/.lab/${LAB_NAME}/fault-suite/last-lab` });
  }
  const { markdown, csvText } = report(rows, runs, machine, (monoNow() - started) / 1000);
  console.log(`\n${markdown}`);
  const complete = !interrupted && only === null;
  const suiteName = WITH_WITNESS ? "fault-suite-witness" : "fault-suite";
  const base = outName !== null ? `${outName}-${dateStamp()}${interrupted ? "-partial" : ""}` : complete ? `${suiteName}-${dateStamp()}` : `${suiteName}-${dateStamp()}-partial`;
  const files = writeResults(base, markdown, csvText);
  console.log(`written: ${files.md}, ${files.csv}`);
  console.log(`agent logs of failed runs: ${REPO_ROOT}/.lab/${LAB_NAME}/fault-suite/; node logs live in ${nodePaths("mn1").dir.replace(/\/mn1$/, "")}/<node>/ while the lab is up`);
  return rows.every((r) => r.results.every((x) => x.pass)) ? 0 : 1;
}

if (process.argv[1]?.endsWith("fault-suite.ts")) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`fault-suite: ${(error as Error).message}`);
      if ((error as { hint?: string }).hint) console.error(`hint: ${(error as { hint?: string }).hint}`);
      process.exit(2);
    },
  );
}
