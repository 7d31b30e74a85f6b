/**
 * Mixed versions on real parts: one node's agent built from an older commit (an older peer
 * protocol), the other from this tree, as during `mnha upgrade-ha`, with the client sampler
 * running throughout. Proves what docs/upgrade.md "Mixed versions" promises for a change of
 * the peer protocol: the pair links on the older version without a refusal, serves, switches
 * over both ways, and once both run this tree links on the newest version.
 *
 *   MNHA_LAB=mix node --import tsx test/lab/mixed-versions.ts --old-rev REV [--out NAME]
 *
 * REV is built in /var/tmp/mnha-build-<rev> (git archive, pnpm install, build; kept for the
 * next run). Results: bench/results/<NAME>-<date>.md (default NAME: mixed-versions). Not part
 * of CI: it builds a second tree and takes about two minutes.
 */
import { createLogger } from "@mnha/shared";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { HaEvent, StatusReport } from "../../packages/agent/src/contracts.js";
import { PROTOCOL_VERSIONS } from "../../packages/protocol/src/index.js";
import { analyze, describeAnalysis } from "./analysis.js";
import { RESULTS_DIR, dateStamp, parseFlags, runBenchmarkMain } from "./bench-report.js";
import { REPO_ROOT, peerOf, type MnNode } from "./constants.js";
import { agentEvents } from "./wedge-faults.js";
import { monoNow, run, sleep, waitFor } from "./exec.js";
import { Lab } from "./lab.js";
import type { ClientSampler } from "./sampler.js";

const USAGE = "node --import tsx test/lab/mixed-versions.ts --old-rev REV [--out NAME]";
/** How long each mixed arrangement runs before the next step: long enough for 100 heartbeats. */
const HOLD_MS = 10_000;

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

/** Builds REV once into its own directory; returns its CLI and the peer protocol versions it offers. */
async function buildOld(rev: string): Promise<{ main: string; versions: number[]; commit: string }> {
  const parsed = await run("git", ["-C", REPO_ROOT, "rev-parse", "--verify", "--quiet", `${rev}^{commit}`], { allowFailure: true });
  if (parsed.code !== 0) throw Object.assign(new Error(`--old-rev ${rev} is not a commit in ${REPO_ROOT}`), { hint: "give a commit hash or tag from `git log` (one from before the protocol change to test)" });
  const commit = parsed.stdout.trim();
  const dir = `/var/tmp/mnha-build-${commit.slice(0, 12)}`;
  const main = resolve(dir, "packages/agent/dist/cli/main.js");
  const protocol = resolve(dir, "packages/protocol/dist/index.js");
  if (!existsSync(main) || !existsSync(protocol)) {
    console.log(`building ${commit.slice(0, 12)} in ${dir}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = `${dir}.tar`;
    await run("git", ["-C", REPO_ROOT, "archive", "--format=tar", "-o", tar, commit], { timeoutMs: 60_000 });
    await run("tar", ["-xf", tar, "-C", dir], { timeoutMs: 60_000 });
    rmSync(tar, { force: true });
    await run("pnpm", ["--dir", dir, "install", "--frozen-lockfile", "--prefer-offline"], { timeoutMs: 600_000 });
    await run("pnpm", ["--dir", dir, "-s", "build"], { timeoutMs: 600_000 });
  }
  const mod = (await import(pathToFileURL(protocol).href)) as { PROTOCOL_VERSIONS: readonly number[] };
  return { main, versions: [...mod.PROTOCOL_VERSIONS], commit };
}

/** `peer.disconnected` and `peer.refusals` events a node recorded (mnha events, its own build's CLI). */
async function linkTrouble(lab: Lab, node: MnNode): Promise<HaEvent[]> {
  return [...(await agentEvents(lab, node, "peer.disconnected")), ...(await agentEvents(lab, node, "peer.refusals"))];
}

async function main(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, { "old-rev": "string", out: "string" }, USAGE);
  const rev = flags["old-rev"];
  if (typeof rev !== "string") throw Object.assign(new Error("--old-rev is required"), { hint: `usage: ${USAGE}` });
  const out = typeof flags["out"] === "string" ? flags["out"] : "mixed-versions";
  const started = monoNow();
  const say = (text: string) => console.log(`[${((monoNow() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);

  const old = await buildOld(rev);
  const newest = Math.max(...PROTOCOL_VERSIONS);
  const shared = Math.max(...old.versions.filter((v) => (PROTOCOL_VERSIONS as readonly number[]).includes(v)));
  if (!Number.isFinite(shared)) throw new Error(`${rev} offers peer protocol ${old.versions.join(",")}, none of which this tree speaks (${PROTOCOL_VERSIONS.join(",")})`);
  if (shared === newest) throw Object.assign(new Error(`${rev} already speaks peer protocol v${newest}, this tree's newest: there is no older version to mix with`), { hint: "give a commit from before the protocol change (git log packages/protocol/src/messages.ts)" });
  say(`old build ${old.commit.slice(0, 12)} offers ${old.versions.join(",")}; this tree offers ${PROTOCOL_VERSIONS.join(",")}: a mixed pair should link on v${shared}`);

  const checks: Check[] = [];
  const check = (what: string, ok: boolean, detail: string) => {
    checks.push({ what, ok, detail });
    say(`${ok ? "ok  " : "FAIL"} ${what}: ${detail}`);
  };
  const lab = new Lab({ logger: createLogger({ level: "warn", pretty: true, destination: process.stderr }) });
  const oldNode: MnNode = "mn1";
  const newNode = peerOf(oldNode);
  let sampler: ClientSampler | null = null;
  let analysisLines: string[] = [];
  // Ctrl-C or a kill: the lab comes down and nothing is left running (the results are not written).
  const onSignal = (signal: NodeJS.Signals) => {
    say(`${signal}: tearing the lab down`);
    void Promise.resolve(sampler?.stop())
      .catch(() => undefined)
      .then(() => lab.down())
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    lab.setAgentMain(oldNode, old.main);
    const up = await lab.up({ fresh: true });
    say(`lab up: ${oldNode} runs ${old.commit.slice(0, 12)}, ${newNode} runs this tree; ${up.holder} holds the VIP`);
    sampler = lab.sampler(out);
    await sampler.start();

    // 1. Mixed, the old node holding.
    await lab.waitForHolder(oldNode, { timeoutMs: 15_000 });
    const mixedNew = await lab.agentStatus(newNode);
    const mixedOld = await lab.agentStatus(oldNode);
    check("mixed pair links on the shared version", mixedNew.protocol?.negotiated === shared && mixedOld.protocol?.negotiated === shared, `${newNode} says v${mixedNew.protocol?.negotiated}, ${oldNode} says v${mixedOld.protocol?.negotiated}`);
    // What protocol v5 adds: the pair settings, which the old agent does not send.
    const text = (await lab.agentCli(newNode, ["status"])).stdout;
    const row = text.split("\n").find((line) => line.trimStart().startsWith("pair settings")) ?? "(no row)";
    check(`${newNode} shows the pair settings as not compared (older agent)`, mixedNew.pairSettings?.compared === false && /not compared \(the peer's agent does not send them/.test(row), row.trim());
    await sleep(HOLD_MS);

    // 2. Planned switchover to the new node: now the new node's heartbeats reach an older agent.
    const toNew = await lab.demote(oldNode);
    check(`demote on ${oldNode} (old) hands the VIP to ${newNode} (new)`, toNew.code === 0, toNew.stdout.trim().split("\n").pop() ?? toNew.stderr.trim());
    await lab.waitForHolder(newNode, { timeoutMs: 15_000 });
    await sleep(HOLD_MS);
    const oldView = await lab.agentStatus(oldNode);
    check(`${oldNode} (old) keeps hearing the new holder`, oldView.peer.connected && oldView.vipOwner === newNode, `peer connected: ${oldView.peer.connected}, VIP owner ${oldView.vipOwner}`);

    // 3. And back.
    const toOld = await lab.demote(newNode);
    check(`demote on ${newNode} (new) hands the VIP to ${oldNode} (old)`, toOld.code === 0, toOld.stdout.trim().split("\n").pop() ?? toOld.stderr.trim());
    await lab.waitForHolder(oldNode, { timeoutMs: 15_000 });
    await sleep(HOLD_MS);

    const trouble = [...(await linkTrouble(lab, oldNode)), ...(await linkTrouble(lab, newNode))];
    check("no link dropped or refused while mixed", trouble.length === 0, trouble.length === 0 ? "no peer.disconnected or peer.refusals event on either node" : trouble.map((e) => `${e.node} ${e.type}: ${e.message}`).join("; "));

    // 4. The old node upgraded: stopped (it hands the VIP over), started on this tree.
    await lab.stopAgent(oldNode);
    lab.setAgentMain(oldNode, null);
    await lab.startAgent(oldNode);
    // Waited for up to 15 s; the check then judges what was last seen (a timeout is a FAIL, not a crash).
    let negotiated: (number | null | undefined)[] = [];
    await waitFor(
      `the pair to link on v${newest}`,
      async () => {
        negotiated = (await Promise.all([lab.tryAgentStatus(oldNode), lab.tryAgentStatus(newNode)])).map((r) => r.status?.protocol?.negotiated);
        return negotiated.every((v) => v === newest) ? true : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    ).catch(() => undefined);
    check(`both on this tree link on v${newest}`, negotiated.every((v) => v === newest), `${oldNode} says v${negotiated[0]}, ${newNode} says v${negotiated[1]}`);
    let upgradedView: StatusReport | null = null;
    await waitFor(
      `${oldNode} to compare the pair settings with ${newNode}'s`,
      async () => {
        upgradedView = (await lab.tryAgentStatus(oldNode)).status;
        return upgradedView?.pairSettings?.compared ? true : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 200 },
    ).catch(() => undefined);
    const view = upgradedView as StatusReport | null;
    check(`${oldNode} now compares the pair settings with ${newNode}'s: the same`, view?.pairSettings?.compared === true && view.pairSettings.differences.length === 0, JSON.stringify(view?.pairSettings ?? null));
    await sleep(2_000);

    const records = await sampler.stop();
    sampler = null;
    const analysis = analyze(records);
    analysisLines = describeAnalysis(analysis);
    for (const line of analysisLines) say(line);
    check("never two MACs", analysis.arp.splitBrain.length === 0, `${analysis.arp.splitBrain.length} of ${analysis.arp.total} ARP samples with two MACs`);
    check("served throughout (planned moves only)", analysis.http.longestGapMs < 1_500, `longest unserved gap ${Math.round(analysis.http.longestGapMs)} ms, ${analysis.http.moves.length} moves of the serving node`);
  } finally {
    await sampler?.stop();
    await lab.down();
  }

  const failed = checks.filter((c) => !c.ok);
  const markdown = [
    `# Mixed versions: ${old.commit.slice(0, 12)} (peer protocol ${old.versions.join(",")}) paired with this tree (${PROTOCOL_VERSIONS.join(",")})`,
    "",
    `Run ${new Date().toISOString()} with \`MNHA_LAB=${process.env["MNHA_LAB"] ?? ""} node --import tsx test/lab/mixed-versions.ts ${argv.join(" ")}\`; this tree at ${(await run("git", ["-C", REPO_ROOT, "rev-parse", "--short=12", "HEAD"])).stdout.trim()}${(await run("git", ["-C", REPO_ROOT, "status", "--porcelain"])).stdout.trim() === "" ? "" : " (uncommitted changes)"}.`,
    "",
    `**${checks.length - failed.length}/${checks.length} checks passed.**`,
    "",
    "| check | result | detail |",
    "| --- | --- | --- |",
    ...checks.map((c) => `| ${c.what} | ${c.ok ? "ok" : "**FAIL**"} | ${c.detail.replace(/\|/g, "\\|")} |`),
    "",
    "The client, over the whole run:",
    "",
    "```",
    ...analysisLines,
    "```",
    "",
  ].join("\n");
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = resolve(RESULTS_DIR, `${out}-${dateStamp()}.md`);
  writeFileSync(file, markdown);
  say(`results: ${file}`);
  return failed.length === 0 ? 0 : 1;
}

runBenchmarkMain("mixed-versions", main);
