/**
 * `pnpm demo`: mnha at work in under a minute. Brings the lab up, kills the MN service on
 * the node holding the VIP, shows the VIP moving while a client keeps asking, shows the
 * agent restoring the service, and tears the lab down (also on Ctrl-C or an error).
 */
import { createLogger } from "@mnha/shared";
import { analyze, describeAnalysis } from "./analysis.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AGENT_MAIN, LAB_STATE_DIR, VIP_ADDRESS, nodePaths, peerOf, type MnNode } from "./constants.js";
import { monoNow, sleep, waitFor } from "./exec.js";
import { Lab } from "./lab.js";
import type { ClientSampler } from "./sampler.js";

const started = monoNow();
const say = (text: string) => console.log(`[${((monoNow() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);
const indent = (lines: string[]) => lines.map((line) => `          ${line}`).join("\n");

const lab = new Lab({ logger: createLogger({ level: "warn", pretty: true, destination: process.stderr }) });
let sampler: ClientSampler | null = null;
let tearingDown = false;

async function tearDown(): Promise<void> {
  if (tearingDown) return;
  tearingDown = true;
  await sampler?.stop();
  say("tearing the lab down");
  const report = await lab.down();
  say(report.problems.length === 0 ? "lab down: nothing left behind" : `lab down with problems: ${report.problems.join("; ")}`);
}

/** What an operator sees: the real `mnha` CLI talking to a node's agent. */
async function mnha(node: MnNode, ...args: string[]): Promise<void> {
  const argv = [AGENT_MAIN, ...args, "--config", nodePaths(node).config];
  console.log(`          $ mnha ${args.join(" ")}        (on ${node})`);
  const { stdout } = await promisify(execFile)(process.execPath, argv, { timeout: 10_000 });
  console.log(indent(stdout.trimEnd().split("\n")));
}

async function demo(): Promise<void> {
  say("mnha demo: two management nodes (mn1, mn2), a gateway and a client, each a network namespace on one bridge");
  say(`building the lab and starting both agents (each runs its own keepalived); state and logs in ${LAB_STATE_DIR}/`);
  const { holder } = await lab.up({ fresh: true });
  if (holder === null) throw new Error("the lab came up without a VIP holder");
  const standby = peerOf(holder);
  say(`lab up: ${holder} holds the VIP ${VIP_ADDRESS}, ${standby} stands by`);
  await mnha(holder, "status");

  sampler = lab.sampler("demo");
  await sampler.start();
  say(`the client asks http://${VIP_ADDRESS}:8080/ every 50 ms, and "who has ${VIP_ADDRESS}?" (ARP) 20+ times a second`);
  await sleep(1_500);

  const faultAt = sampler.mark(`kill mn service on ${holder}`);
  await lab.killService(holder, "mn");
  say(`FAULT: killed the MN service (port 8080) on ${holder}`);

  const served = await sampler.waitServedBy(standby, { since: faultAt, count: 3, timeoutMs: 10_000 });
  if (served === null) throw new Error(`the client was not served by ${standby} within 10 s`);
  say(`the VIP moved: ${standby} answers the client ${Math.round(served.t - faultAt)} ms after the fault`);

  await waitFor(
    `${holder}'s MN service to be restored`,
    async () => ((await lab.serviceListening(holder, "mn")) && (await lab.tryAgentStatus(holder)).status?.self.services.every((s) => s.healthy) ? true : undefined),
    { timeoutMs: 10_000, intervalMs: 200 },
  );
  say(`the agent on ${holder} restored its MN service; ${holder} is healthy again and stays standby (no flapping back)`);
  await sleep(1_500);

  const records = await sampler.stop();
  sampler = null;
  const analysis = analyze(records, { faultAt });
  say("what the client saw (times relative to the fault):");
  console.log(indent(describeAnalysis(analysis, faultAt)));
  const twoMacs = analysis.arp.splitBrain.length;
  say(
    `${twoMacs === 0 ? "never" : `${twoMacs} times`} did two nodes answer for the VIP; the client went at most ${Math.round(analysis.http.longestGapMs)} ms without an answer`,
  );
  await mnha(holder, "status");
  await mnha(standby, "events", "--type", "election.role-changed", "--limit", "3");
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    say(`${sig}: stopping`);
    tearDown().finally(() => process.exit(130));
  });
}

demo()
  .then(async () => {
    await tearDown();
    say("demo done");
    process.exit(0);
  })
  .catch(async (error: unknown) => {
    console.error(`demo failed: ${(error as Error).message}`);
    const hint = (error as { hint?: string }).hint;
    if (hint) console.error(`hint: ${hint}`);
    await tearDown().catch(() => undefined);
    process.exit(1);
  });
