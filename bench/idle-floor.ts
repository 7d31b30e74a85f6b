/**
 * The floor under the idle cost (issue 12): what the work an idle agent must do at the
 * defaults costs in its simplest Node.js form, part by part, each in its own process with the
 * agent's Node.js flags and environment, on loopback only (bench/floor/workload.mjs;
 * test/lab/bench-floor.ts measures). Set beside bench/idle-cost.ts it tells how much of the
 * agent's cost is the agent and how much is the runtime doing the required work at all
 * (`bench/idle-cost.ts --with-floor` measures both in one run).
 *
 *   pnpm build
 *   node --import tsx bench/idle-floor.ts --seconds 60 --label NAME
 *
 * CPU is process CPU time over wall time (utime + stime, from /proc), after a 5 s warm-up;
 * RSS is VmRSS at the end. Results: bench/results/idle-floor-<date>-<label>.md|csv.
 */
import { AGENT_ENV, AGENT_NODE_FLAGS } from "../test/lab/constants.js";
import { measureFloor, requiredCpuPercent } from "../test/lab/bench-floor.js";
import { csv, dateStamp, describeMachine, intFlag, machineLines, markdownTable, parseFlags, runBenchmarkMain, writeResults } from "../test/lab/bench-report.js";

const USAGE = "node --import tsx bench/idle-floor.ts [--seconds 60] [--label NAME]";

async function main(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { seconds: "string", label: "string" }, USAGE);
  const seconds = intFlag(flags, "seconds", 60, 3_600);
  const label = typeof flags["label"] === "string" ? flags["label"].replace(/[^a-z0-9-]/gi, "") : "run";
  const machine = describeMachine();
  // Ctrl-C stops the workload running and kills its processes; nothing is written.
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  const results = await measureFloor(seconds, undefined, (line) => console.log(line), stop.signal).catch((error: unknown) => {
    if (!stop.signal.aborted) throw error;
    return null;
  });
  if (results === null) {
    console.error("idle-floor: interrupted; no result written");
    return 130;
  }
  const bare = results.find((r) => r.workload.mode === "timers");
  const rows = results.map((r) => [r.workload.mode, r.workload.what, r.cpuPercent.toFixed(2), r.rssMb.toFixed(1), bare && r !== bare ? `+${(r.rssMb - bare.rssMb).toFixed(1)}` : ""]);
  const codeAndStore = results.find((r) => r.workload.mode === "code-and-store");
  const required = requiredCpuPercent(results);
  const markdown = [
    `# Idle floor, ${dateStamp()}${label !== "run" ? ` (${label})` : ""}`,
    "",
    ...machineLines(machine),
    `- each workload in its own process (bench/floor/workload.mjs), loopback only, ${seconds} s after a 5 s warm-up`,
    `- Node.js flags: ${AGENT_NODE_FLAGS.join(" ") || "none"}; environment: ${Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`).join(" ") || "none"} (the agent's)`,
    "- CPU: process CPU time over wall time, % of one core (for the symmetric peer link and TCP, the busier end); RSS: VmRSS at the end",
    "",
    ...markdownTable(["workload", "what it does", "CPU (% of one core)", "RSS (MB)", "RSS over the bare runtime (MB)"], rows),
    "",
    `The peer link and the HTTP checks alone, in their simplest form: **${required.toFixed(2)} % of one core** (the issue's target for the whole agent: 1.5 %).`,
    ...(codeAndStore ? ["", `The agent's code and its store worker, before any work: **${codeAndStore.rssMb.toFixed(1)} MB** (the issue's target for the whole agent: 70 MB).`] : []),
    "",
  ].join("\n");
  const csvText = csv(["label", "mode", "cpu_percent", "rss_mb", "seconds"], results.map((r) => [label, r.workload.mode, r.cpuPercent, r.rssMb, seconds]));
  const written = writeResults(`idle-floor-${dateStamp()}-${label}`, markdown, csvText);
  console.log(markdown);
  console.log(`written: ${written.md}, ${written.csv}`);
  return 0;
}

runBenchmarkMain("idle-floor", main);
