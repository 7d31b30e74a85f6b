/**
 * The failover benchmark: mnha against plain Keepalived (as commonly configured, and tuned
 * for speed), side by side in the same lab and the same run, trials alternating between
 * the systems. Measured from the client: the time from the injected fault to the first
 * answer through the VIP from the new holder (the MN service killed on the holder; the
 * holder crashed), and for a planned switchover the longest time without an answer. Also
 * what mnha costs on a node: memory and CPU at idle and during failover.
 *
 * Run through bench/failover.ts (see docs/benchmarks.md).
 */
import { appendFileSync } from "node:fs";
import { basename } from "node:path";
import { createLogger, MnhaError, type Logger, type MnhaConfigInput } from "@mnha/shared";
import { analyze } from "./analysis.js";
import { runDbBenchmark } from "./bench-db.js";
import { answerMoves, answers, firstAnswerAfter, longestAnswerGap } from "./bench-client.js";
import { costBetween, sampleProcesses, type ProcessSample, type RoleCost } from "./bench-procstat.js";
import { csv, dateStamp, describeMachine, intFlag, labelFlag, machineLines, markdownTable, ms, parseFlags, summarize, writeCsvResult, writeResults, type Summary } from "./bench-report.js";
import { MnhaSystem, PlainKeepalivedSystem, type SystemName, type SystemUnderTest } from "./bench-systems.js";
import { LAB_NAME, LAB_PREFIX, MN_NODES, REPO_ROOT, type MnNode } from "./constants.js";
import { monoNow, sleep } from "./exec.js";
import { Lab } from "./lab.js";
import { PLAIN_KEEPALIVED_COMMON, PLAIN_KEEPALIVED_FAST } from "./plain-keepalived.js";

export type FaultKind = "service-kill" | "node-crash" | "agent-kill" | "planned";
const FAULT_KINDS: readonly FaultKind[] = ["service-kill", "node-crash", "agent-kill", "planned"];
const SYSTEM_NAMES: readonly SystemName[] = ["mnha", "keepalived-common", "keepalived-fast"];
/** Requests through the VIP this often during a trial (a fresh connection each). */
const HTTP_INTERVAL_MS = 20;
/** Wait at most this long for the new holder to answer. */
const TRIAL_TIMEOUT_MS = 20_000;
/** Sampling after the new holder answered (catches flaps and late split brain). */
const OBSERVE_MS = 1_000;
const USAGE = "MNHA_LAB=bench node --import tsx bench/failover.ts [--trials 20] [--idle-seconds 30] [--systems mnha,keepalived-common,keepalived-fast] [--faults service-kill,node-crash,agent-kill,planned] [--idle-only] [--mnha-checks defaults|lab] [--db-trials N] [--label NAME]";

/** mnha's targets (docs/benchmarks.md). */
/** Issue 12's targets, at the default config. */
const TARGETS = { serviceKillMedianMs: 400, crashMedianMs: 800, crashP90Ms: 1_000, plannedGapMedianMs: 100, rssMb: 70, idleCpuPercent: 1.5 };

export interface TrialResult {
  round: number;
  system: SystemName;
  kind: FaultKind;
  faultWall: string;
  holderBefore: MnNode;
  /** Fault to the first answer from the other node (null: none in time). */
  failoverMs: number | null;
  /** Longest time without any answer, from the last answer before the fault to the end of the trial. */
  longestGapMs: number;
  arpSplitBrain: number;
  arpPerSecond: number;
  moves: string[];
  /** CPU of the system's own processes during the trial window, % of one core (old holder / new holder). */
  cpuOldHolder: number | null;
  cpuNewHolder: number | null;
  error: string | null;
}

function nodeCpu(first: readonly ProcessSample[], second: readonly ProcessSample[], seconds: number): number | null {
  if (second.length === 0) return null;
  return costBetween(first, second, seconds).reduce((sum, role) => sum + role.cpuPercent, 0);
}

function faultLabel(kind: FaultKind): string {
  if (kind === "planned") return "planned switchover (longest gap)";
  if (kind === "service-kill") return "MN service killed";
  if (kind === "agent-kill") return "HA daemon killed (mnha agent / keepalived, SIGKILL)";
  return "holder node crashed";
}

async function inject(lab: Lab, system: SystemUnderTest, kind: FaultKind, holder: MnNode): Promise<void> {
  if (kind === "service-kill") await lab.killService(holder, "mn");
  else if (kind === "node-crash") await lab.crash(holder);
  else if (kind === "agent-kill") await system.killDaemon(holder);
  else await system.plannedSwitchover(holder);
}

async function runTrial(lab: Lab, system: SystemUnderTest, kind: FaultKind, round: number, logger: Logger): Promise<TrialResult> {
  const before = await system.waitStable();
  const { holder, standby } = before;
  const sampler = lab.sampler(`failover-${system.name}-${kind}-${round}`, { httpIntervalMs: HTTP_INTERVAL_MS, maxMs: 60_000 });
  await sampler.start();
  let error: string | null = null;
  let faultAt = monoNow();
  let faultWall = new Date().toISOString();
  const processes = new Map<MnNode, { pid: number; role: string }[]>();
  for (const node of MN_NODES) processes.set(node, await system.processes(node));
  let cpuFirst = new Map<MnNode, ProcessSample[]>();
  let cpuSecond = new Map<MnNode, ProcessSample[]>();
  try {
    const baseline = await sampler.waitServedBy(holder, { since: monoNow(), count: 5, timeoutMs: 5_000 });
    if (baseline === null) throw new Error(`baseline: the client was not served by ${holder}`);
    await sleep(300);
    cpuFirst = new Map(MN_NODES.map((node) => [node, sampleProcesses(processes.get(node) ?? [])]));
    faultAt = sampler.mark(`fault: ${kind} on ${holder}`);
    faultWall = new Date().toISOString();
    await inject(lab, system, kind, holder);
    const served = await sampler.waitServedBy(standby, { since: faultAt, count: 5, timeoutMs: TRIAL_TIMEOUT_MS });
    if (served === null) throw new Error(`${standby} did not answer within ${TRIAL_TIMEOUT_MS} ms`);
    await sleep(OBSERVE_MS);
  } catch (caught) {
    error = (caught as Error).message.split("\n")[0] ?? "error";
  }
  const end = sampler.mark("end");
  cpuSecond = new Map(MN_NODES.map((node) => [node, sampleProcesses(processes.get(node) ?? [])]));
  const records = await sampler.stop();
  const all = answers(records);
  const first = firstAnswerAfter(all, faultAt, holder);
  const analysis = analyze(records, { faultAt });
  const windowS = (end - faultAt) / 1000;
  const result: TrialResult = {
    round,
    system: system.name,
    kind,
    faultWall,
    holderBefore: holder,
    failoverMs: first === null ? null : first.at - faultAt,
    longestGapMs: longestAnswerGap(all, faultAt, end).gapMs,
    arpSplitBrain: analysis.arp.splitBrain.length,
    arpPerSecond: analysis.arp.perSecond,
    moves: answerMoves(all, faultAt, end).map((m) => `${m.from}->${m.to}`),
    cpuOldHolder: kind === "node-crash" ? null : nodeCpu(cpuFirst.get(holder) ?? [], cpuSecond.get(holder) ?? [], windowS),
    cpuNewHolder: nodeCpu(cpuFirst.get(standby) ?? [], cpuSecond.get(standby) ?? [], windowS),
    error,
  };
  logger.debug({ result }, "trial done");
  return result;
}

// ---------------------------------------------------------------------------- resources at idle

export interface IdleCost {
  system: SystemName;
  node: MnNode;
  roles: RoleCost[];
  seconds: number;
}

async function measureIdle(system: SystemUnderTest, seconds: number): Promise<IdleCost[]> {
  const processes = new Map<MnNode, { pid: number; role: string }[]>();
  for (const node of MN_NODES) processes.set(node, await system.processes(node));
  const first = new Map(MN_NODES.map((node) => [node, sampleProcesses(processes.get(node) ?? [])]));
  const started = monoNow();
  await sleep(seconds * 1000);
  const took = (monoNow() - started) / 1000;
  return MN_NODES.map((node) => ({ system: system.name, node, seconds: took, roles: costBetween(first.get(node) ?? [], sampleProcesses(processes.get(node) ?? []), took) }));
}

// ---------------------------------------------------------------------------- report

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "–";
}

function passMiss(ok: boolean): string {
  return ok ? "**pass**" : "**miss**";
}

interface Report {
  markdown: string;
  trialsCsv: string;
  resourcesCsv: string;
}

function buildReport(trials: readonly TrialResult[], idle: readonly IdleCost[], systems: readonly SystemUnderTest[], kinds: readonly FaultKind[], machine: ReturnType<typeof describeMachine>, tookS: number, rounds: number, mnhaChecks: "defaults" | "lab"): Report {
  const measure = (t: TrialResult) => (t.kind === "planned" ? t.longestGapMs : t.failoverMs);
  const valuesOf = (system: SystemName, kind: FaultKind) =>
    trials.filter((t) => t.system === system && t.kind === kind && t.error === null).map(measure).filter((v): v is number => v !== null);
  const summaries = new Map<string, Summary>();
  for (const system of systems) for (const kind of kinds) summaries.set(`${system.name}/${kind}`, summarize(valuesOf(system.name, kind)));

  const failoverRows: string[][] = [];
  for (const kind of kinds) {
    const mnha = summaries.get(`mnha/${kind}`);
    for (const system of systems) {
      const s = summaries.get(`${system.name}/${kind}`) as Summary;
      const ofKind = trials.filter((t) => t.system === system.name && t.kind === kind);
      failoverRows.push([
        faultLabel(kind),
        system.name,
        `${s.n}/${ofKind.length}`,
        ms(s.median),
        ms(s.p90),
        ms(s.max),
        system.name === "mnha" || !mnha ? "1" : `${ratio(mnha.median, s.median)} / ${ratio(mnha.p90, s.p90)} / ${ratio(mnha.max, s.max)}`,
        String(ofKind.reduce((sum, t) => sum + t.arpSplitBrain, 0)),
        String(ofKind.filter((t) => t.moves.length !== 1).length),
      ]);
    }
  }

  const idleRows: string[][] = [];
  for (const cost of idle) {
    for (const role of cost.roles) idleRows.push([cost.system, cost.node, role.role, String(role.processes), role.rssMb.toFixed(1), role.cpuPercent.toFixed(2), role.childCpuPercent.toFixed(2)]);
    const total = cost.roles.reduce((sum, r) => ({ rss: sum.rss + r.rssMb, cpu: sum.cpu + r.cpuPercent, child: sum.child + r.childCpuPercent }), { rss: 0, cpu: 0, child: 0 });
    idleRows.push([cost.system, cost.node, "**all**", String(cost.roles.reduce((n, r) => n + r.processes, 0)), total.rss.toFixed(1), total.cpu.toFixed(2), total.child.toFixed(2)]);
  }

  const cpuDuring = (kind: FaultKind, side: "old" | "new") =>
    summarize(trials.filter((t) => t.system === "mnha" && t.kind === kind).map((t) => (side === "old" ? t.cpuOldHolder : t.cpuNewHolder)).filter((v): v is number => v !== null));
  const duringRows = kinds.flatMap((kind) =>
    (["old", "new"] as const)
      .filter((side) => !(kind === "node-crash" && side === "old"))
      .map((side) => {
        const s = cpuDuring(kind, side);
        return [kind, side === "old" ? "old holder" : "new holder", String(s.n), Number.isFinite(s.median) ? s.median.toFixed(1) : "–", Number.isFinite(s.max) ? s.max.toFixed(1) : "–"];
      }),
  );

  // Targets, for mnha only.
  const mnhaIdle = idle.filter((c) => c.system === "mnha");
  const agentRss = Math.max(0, ...mnhaIdle.flatMap((c) => c.roles.filter((r) => r.role === "agent").map((r) => r.rssMb)));
  const agentIdleCpu = Math.max(0, ...mnhaIdle.flatMap((c) => c.roles.filter((r) => r.role === "agent").map((r) => r.cpuPercent)));
  const nodeIdleCpu = Math.max(0, ...mnhaIdle.map((c) => c.roles.reduce((sum, r) => sum + r.cpuPercent, 0)));
  const splitMnha = trials.filter((t) => t.system === "mnha").reduce((sum, t) => sum + t.arpSplitBrain, 0);
  const targetLines: string[] = [];
  const kill = summaries.get("mnha/service-kill");
  const crash = summaries.get("mnha/node-crash");
  const planned = summaries.get("mnha/planned");
  if (kill && kill.n > 0) targetLines.push(`- median failover, MN service killed: ${ms(kill.median)} ms (target ≤ ${TARGETS.serviceKillMedianMs}): ${passMiss(kill.median <= TARGETS.serviceKillMedianMs)}`);
  if (crash && crash.n > 0) {
    targetLines.push(`- median failover, holder crashed: ${ms(crash.median)} ms (target ≤ ${TARGETS.crashMedianMs}): ${passMiss(crash.median <= TARGETS.crashMedianMs)}`);
    targetLines.push(`- p90 failover, holder crashed: ${ms(crash.p90)} ms (target ≤ ${TARGETS.crashP90Ms}): ${passMiss(crash.p90 <= TARGETS.crashP90Ms)}`);
  }
  if (planned && planned.n > 0) targetLines.push(`- planned switchover, median longest gap: ${ms(planned.median)} ms, max ${ms(planned.max)} ms (target ≤ ${TARGETS.plannedGapMedianMs} median): ${passMiss(planned.median <= TARGETS.plannedGapMedianMs)}`);
  if (trials.length > 0) targetLines.push(`- split-brain ARP samples in mnha trials: ${splitMnha} (target 0): ${passMiss(splitMnha === 0)}`);
  if (mnhaIdle.length > 0) {
    targetLines.push(`- agent RSS: ${agentRss.toFixed(1)} MB (target ≤ ${TARGETS.rssMb} MB): ${passMiss(agentRss <= TARGETS.rssMb)}`);
    targetLines.push(`- idle CPU of the agent: ${agentIdleCpu.toFixed(2)} % of one core (target ≤ ${TARGETS.idleCpuPercent} %): ${passMiss(agentIdleCpu <= TARGETS.idleCpuPercent)}; the whole node (agent with its children + lease guard + keepalived): ${nodeIdleCpu.toFixed(2)} %`);
  }

  const idleOnly = trials.length === 0;
  const markdown = [
    `# ${idleOnly ? "Idle cost" : "Failover benchmark"}, ${machine.date.slice(0, 10)}`,
    "",
    ...machineLines(machine),
    idleOnly
      ? `- lab \`${LAB_PREFIX}\`; idle cost only (--idle-only); ${Math.round(tookS)} s in all`
      : `- lab \`${LAB_PREFIX}\`; ${rounds} rounds; each round runs every system (order rotating), each system every fault (order rotating); ${Math.round(tookS)} s in all`,
    `- client: HTTP GET through the VIP every ${HTTP_INTERVAL_MS} ms (fresh connection, 300 ms timeout), ARP for the VIP ~22 times a second`,
    "",
    ...(idleOnly
      ? []
      : [
          "## Failover as the client sees it (ms)",
          "",
          "Service kill and crash: from the fault to the first answer through the VIP from the new holder (the time the answer arrived). Planned switchover: the longest time without any answer. Ratios are mnha ÷ the system (median / p90 / max): below 1, mnha is faster.",
          "",
          ...markdownTable(["fault", "system", "trials (ok/all)", "median", "p90", "max", "ratio mnha/this", "split-brain ARP samples", "trials without exactly one move"], failoverRows),
          "",
        ]),
    "## mnha against its targets",
    "",
    ...targetLines,
    "",
    "## Cost at idle (per node)",
    "",
    `RSS at the end of a ${Math.round(idle[0]?.seconds ?? 0)} s idle window; CPU over that window from /proc/PID/stat (utime + stime, with reaped children: the agent's gateway pings, keepalived's check scripts), in % of one core.`,
    "",
    ...markdownTable(["system", "node", "role", "processes", "RSS (MB)", "CPU (% of one core)", "of which reaped children"], idleRows),
    "",
    ...(idleOnly
      ? []
      : [
          "## mnha CPU during failover (% of one core, agent + lease guard + keepalived on the node)",
          "",
          "From just before the fault to 1 s after the new holder answered 5 times in a row.",
          "",
          ...markdownTable(["fault", "node", "trials", "median", "max"], duringRows),
          "",
        ]),
    "## The systems",
    "",
    `- **mnha**: the lab's agents (docs/lab.md) at ${mnhaChecks === "defaults" ? "the product's default timings: checks every 200 ms with fall 2" : "the lab's check timings: checks every 100 ms with fall 2"}, heartbeats every 100 ms, lease 600 ms, takeover margin 150 ms, each agent running its own Keepalived (VRRPv3, advert_int 0.1).`,
    ...systems
      .filter((s): s is PlainKeepalivedSystem => s instanceof PlainKeepalivedSystem)
      .map((s) => `- **${s.name}**: VRRPv${s.profile.vrrpVersion}, advert_int ${s.profile.advertIntS}, both BACKUP, nopreempt, unicast; track_script \`curl -sf\` on the MN service, interval ${s.profile.serviceCheck?.intervalS ?? "–"} s, fall ${s.profile.serviceCheck?.fall ?? "–"}, rise ${s.profile.serviceCheck?.rise ?? "–"}, weight 0 (a failing check puts the instance in FAULT). Nobody restores the service (the harness restarts it between trials).`),
    "",
    "Planned switchover: " + systems.map((s) => `${s.name}: ${s.switchoverMethod}`).join("; ") + ".",
    "",
  ].join("\n");

  const trialsCsv = csv(
    ["round", "system", "fault", "fault_wall_time", "holder_before", "failover_ms", "longest_gap_ms", "arp_split_brain", "arp_per_s", "moves", "cpu_old_holder_pct", "cpu_new_holder_pct", "error"],
    trials.map((t) => [t.round, t.system, t.kind, t.faultWall, t.holderBefore, t.failoverMs, t.longestGapMs, t.arpSplitBrain, t.arpPerSecond, t.moves.join(" "), t.cpuOldHolder, t.cpuNewHolder, t.error ?? ""]),
  );
  const resourcesCsv = csv(
    ["system", "node", "role", "processes", "rss_mb", "cpu_pct_one_core", "children_cpu_pct_one_core", "window_s"],
    idle.flatMap((c) => c.roles.map((r) => [c.system, c.node, r.role, r.processes, r.rssMb, r.cpuPercent, r.childCpuPercent, c.seconds])),
  );
  return { markdown, trialsCsv, resourcesCsv };
}

// ---------------------------------------------------------------------------- main

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % Math.max(items.length, 1);
  return [...items.slice(k), ...items.slice(0, k)];
}

function listFlag<T extends string>(flags: Record<string, string | boolean>, name: string, all: readonly T[]): T[] {
  const raw = flags[name];
  if (typeof raw !== "string") return [...all];
  const chosen = raw.split(",").map((s) => s.trim());
  const bad = chosen.filter((c) => !(all as readonly string[]).includes(c));
  if (bad.length > 0) throw new MnhaError("USAGE", `--${name}: unknown ${bad.join(", ")}`, { hint: `choose from ${all.join(", ")}` });
  return all.filter((a) => chosen.includes(a));
}

/** The config with every service check's timings removed, so the product's defaults apply. */
function withDefaultCheckTimings(_node: MnNode, config: MnhaConfigInput): MnhaConfigInput {
  return {
    ...config,
    services: config.services?.map((service) => {
      const { intervalMs: _interval, fall: _fall, rise: _rise, timeoutMs: _timeout, ...check } = service.check as Record<string, unknown>;
      return { ...service, check } as typeof service;
    }),
  };
}

export async function runFailoverBenchmark(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { trials: "string", "idle-seconds": "string", systems: "string", faults: "string", "idle-only": "boolean", "keep-up": "boolean", "mnha-checks": "string", "db-trials": "string", label: "string" }, USAGE);
  const label = labelFlag(flags);
  const checkTimings = flags["mnha-checks"] ?? "defaults";
  if (checkTimings !== "defaults" && checkTimings !== "lab") throw new MnhaError("USAGE", `--mnha-checks must be "defaults" or "lab", not ${JSON.stringify(checkTimings)}`, { hint: USAGE });
  const idleOnly = flags["idle-only"] === true;
  const rounds = idleOnly ? 0 : intFlag(flags, "trials", 20, 200);
  const idleSeconds = intFlag(flags, "idle-seconds", 30, 600);
  const systemNames = listFlag(flags, "systems", SYSTEM_NAMES);
  const kinds = listFlag(flags, "faults", FAULT_KINDS);
  // Write unavailability through the VIP with real MariaDB (test/lab/bench-db.ts), run by this
  // same runner after the VIP trials: mnha against the vendor-like set-up, every database fault.
  const dbTrials = idleOnly ? 0 : intFlag(flags, "db-trials", 0, 200);
  const logger = createLogger({ level: "warn", pretty: true, destination: process.stderr });
  const machine = describeMachine();
  // At "defaults" the agents run the product's documented check timings (what operators run);
  // "lab" keeps the lab's faster checks (every 100 ms) that the tests use.
  const lab = new Lab({ logger, config: checkTimings === "defaults" ? { customize: withDefaultCheckTimings } : {} });
  const systems: SystemUnderTest[] = systemNames.map((name) =>
    name === "mnha" ? new MnhaSystem(lab) : new PlainKeepalivedSystem(lab, name === "keepalived-common" ? { ...PLAIN_KEEPALIVED_COMMON, name } : { ...PLAIN_KEEPALIVED_FAST, name }),
  );
  const started = monoNow();
  const trials: TrialResult[] = [];
  const idle: IdleCost[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  console.log(`failover benchmark: ${systems.map((s) => s.name).join(", ")} x ${kinds.join(", ")} x ${rounds} rounds in lab ${LAB_PREFIX}`);
  let current: SystemUnderTest | null = null;
  const switchTo = async (system: SystemUnderTest) => {
    if (current === system) return;
    if (current !== null) await current.stop();
    current = system;
    await system.start();
  };
  try {
    await lab.up({ fresh: true, agents: false });
    // Idle cost first, on a quiet lab.
    for (const system of systems) {
      if (interrupted) break;
      await switchTo(system);
      await sleep(3_000);
      idle.push(...(await measureIdle(system, idleSeconds)));
      const agentRss = idle.filter((c) => c.system === system.name).map((c) => c.roles.map((r) => `${c.node}/${r.role} ${r.rssMb.toFixed(1)} MB ${r.cpuPercent.toFixed(2)}%`).join(", "));
      console.log(`  idle ${system.name}: ${agentRss.join("; ")}`);
    }
    for (let round = 1; round <= rounds && !interrupted; round++) {
      for (const system of rotate(systems, round - 1)) {
        if (interrupted) break;
        await switchTo(system);
        for (const kind of rotate(kinds, round - 1)) {
          if (interrupted) break;
          const result = await runTrial(lab, system, kind, round, logger);
          trials.push(result);
          console.log(
            `  round ${round} ${system.name} ${kind}: failover ${ms(result.failoverMs)} ms, longest gap ${ms(result.longestGapMs)} ms, split-brain ${result.arpSplitBrain}, moves ${result.moves.join(" ") || "none"}${result.error ? `, ERROR ${result.error}` : ""}`,
          );
          try {
            await system.recover();
          } catch (error) {
            // Keep the evidence, then start this system afresh.
            console.log(`  ${system.name} did not recover after ${kind}: ${(error as Error).message.split("\n")[0]}`);
            lab.archiveState(`${REPO_ROOT}/.lab/${LAB_NAME}/failover/${system.name}-${kind}-round-${round}`);
            await system.stop();
            await system.start();
          }
        }
      }
    }
  } finally {
    const active = current as SystemUnderTest | null;
    if (active !== null) await active.stop().catch(() => undefined);
    if (flags["keep-up"] !== true) await lab.down({ archiveTo: `${REPO_ROOT}/.lab/${LAB_NAME}/failover/last-lab` });
  }
  const report = buildReport(trials, idle, systems, kinds, machine, (monoNow() - started) / 1000, rounds, checkTimings);
  console.log(`\n${report.markdown}`);
  const complete = !interrupted && systemNames.length === SYSTEM_NAMES.length && kinds.length === FAULT_KINDS.length;
  const stem = `failover-${dateStamp()}${label === null ? "" : `-${label}`}`;
  const base = idleOnly ? `${stem}-idle` : `${stem}${complete ? "" : "-partial"}`;
  if (idleOnly) {
    const files = writeResults(base, report.markdown, report.resourcesCsv);
    console.log(`written: ${files.md}, ${files.csv}`);
    return 0;
  }
  const files = writeResults(base, report.markdown, report.trialsCsv);
  const resources = writeCsvResult(`${base}-resources`, report.resourcesCsv);
  console.log(`written: ${files.md}, ${files.csv}, ${resources}`);
  if (dbTrials > 0 && !interrupted) {
    console.log(`\nwrite unavailability through the VIP with real MariaDB: ${dbTrials} trials per system and fault`);
    let db: { md: string; csv: string; markdown: string } | null = null;
    await runDbBenchmark(["--trials", String(dbTrials), "--skip-seed", "--skip-catch-up", ...(label === null ? [] : ["--label", label])], (written) => {
      db = written;
    });
    const dbFiles = db as { md: string; csv: string; markdown: string } | null;
    if (dbFiles !== null) {
      const section = [
        "",
        "## Write unavailability through the VIP, real MariaDB (same run)",
        "",
        `Run by this runner right after the trials above (\`--db-trials ${dbTrials}\`, test/lab/bench-db.ts; files \`${basename(dbFiles.md)}\`, \`${basename(dbFiles.csv)}\`):`,
        "",
        dbFiles.markdown.replace(/^#+ .*\n/, "").replace(/^#/gm, "###"),
      ].join("\n");
      appendFileSync(files.md, section);
      console.log(`appended the database section to ${files.md}`);
    }
  }
  return 0;
}
