/**
 * `mnha restore <backup>`: replace the pair's application databases with a backup's (see
 * backup/restore-plan.ts). Verifies the file and both servers first, names what will be
 * replaced, asks for the node's name typed back (`--yes` for scripts), then runs the
 * resumable plan; a rerun after a failure continues where it stopped.
 */
import { join } from "node:path";
import { askLine } from "./confirm.js";
import { holdsVipHere } from "./db.js";
import type { Command } from "commander";
import type { ControlClient } from "../control/control-client.js";
import type { RestoreActions } from "../backup/restore-plan.js";
import { invokingUser } from "./ops-commands.js";
import { loadConfig, MnhaError, type MnhaConfig } from "@mnha/shared";
import { backupDir, localDumpSource } from "../backup/index.js";
import { verifyBackup } from "../backup/backup-files.js";
import { mariaDbRestoreActions } from "../backup/restore-mariadb.js";
import { restorePlan, undoRestoreBeforeData } from "../backup/restore-plan.js";
import { openLocalDatabase, openPeerDatabase, peerEndpoint } from "../db/index.js";
import { readPasswordFile } from "../db/secret-file.js";
import { summarize } from "../db/seed.js";
import { FilePlanStore } from "../plan/plan-state.js";
import { renderPlanEvent, runPlan, type Plan, type PlanEvent } from "../plan/step-plan.js";
import type { PlanStateStore } from "../plan/plan-state.js";
import { resolveBackupPath } from "./backup.js";
import { describeSummary } from "../db/describe.js";
import { printJson, type CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { withOperationLock } from "../ops/operation-lock.js";

export interface RestoreCommandContext {
  io: CliIo;
  name: string;
  state: { exitCode: number; json: boolean };
  configPath: () => string;
  client: (timeoutMs?: number) => ControlClient;
}

export function restoreStateFile(config: MnhaConfig): string {
  return join(config.dataDir, "restore.state.json");
}

export function registerRestoreCommand(program: Command, ctx: RestoreCommandContext): void {
  program
    .command("restore")
    .description("REPLACE the pair's application databases with a backup's: verifies it, takes a safety backup, loads it here, re-seeds the peer from here, checks both nodes")
    .argument("<backup>", "a backup file (a bare name is looked up in backup.dir)")
    .option("--yes", "do not ask for the typed confirmation (for scripts)")
    .option("--no-maintenance", "run without putting the pair in maintenance (when the agents are not running)")
    .option("--json", "print the result as JSON")
    .action(async (file: string, options: { yes?: boolean; json?: boolean; maintenance: boolean }) => {
      ctx.state.json = options.json === true;
      const config = loadConfig(ctx.configPath()).config;
      await withOperationLock(config.dataDir, "restore", () => restoreCommand(ctx, config, file, options.yes === true, options.maintenance));
    });
}

async function restoreCommand(ctx: RestoreCommandContext, config: MnhaConfig, file: string, yes: boolean, useMaintenance: boolean): Promise<void> {
  const { io } = ctx;
  const path = resolveBackupPath(file, () => backupDir(config));
  // Checked before anything changes: the file, and both servers answering with replication running.
  const verified = await verifyBackup(path);
  if (verified.manifest === null) throw new MnhaError("BACKUP_INVALID", `${path} has no manifest beside it`, { hint: "copy the backup's .json manifest next to it (the remote copy has one)" });
  const manifest = verified.manifest;
  // On the standby the load would go to a database nobody is served from, while the holder's
  // stays writable for the applications: the restore must run where the VIP is.
  const here = await holdsVipHere(ctx, config);
  if ("unknown" in here) throw new MnhaError("OPERATION_REFUSED", `cannot tell whether ${config.node.name} holds the VIP (${here.unknown})`, { hint: "start the agent (it knows), or fix vip.interface in the config; nothing was changed" });
  if (!here.holds) throw new MnhaError("OPERATION_REFUSED", `${config.node.name} does not hold the VIP ${config.vip.address}: restore runs on the VIP holder, whose database the applications use`, { hint: "run it on the node that holds the VIP (mnha status shows it); nothing was changed" });
  const local = openLocalDatabase(config);
  const peerInfo = peerEndpoint(config);
  const peer = openPeerDatabase(config, readPasswordFile(config.db.replication.passwordFile, "replication password"));
  for (const [label, db] of [[config.node.name, local], [peerInfo.name, peer]] as const) {
    const h = await db.health();
    if (!h.alive) throw new MnhaError("DB_UNREACHABLE", `${label}'s MariaDB does not answer: ${h.error ?? "no answer"}`, { hint: "start it (both servers must run: the restore replicates to the peer); nothing was changed" });
    // With the agents the peer is re-seeded from this node: its own replica may be broken (that is repaired).
    if (useMaintenance && db === peer) continue;
    if (h.slaveIoRunning !== "Yes" || h.slaveSqlRunning !== "Yes")
      throw new MnhaError("DB_REPLICATION", `${label}'s replica is not running (IO ${h.slaveIoRunning}, SQL ${h.slaveSqlRunning}): the restore would not reach the other node`, { hint: "repair replication first (`mnha db status`, `mnha db resync` on the standby); nothing was changed" });
  }
  const store = new FilePlanStore(restoreStateFile(config));
  const resuming = store.load() !== null;
  const maintenance = useMaintenance ? await maintenanceControl(ctx, file, resuming) : null;
  const services = useMaintenance ? servicesControl(ctx, file) : null;
  const reseedPeer = useMaintenance ? reseedControl(ctx, peerInfo.name) : null;
  const current = await summarize(local);
  io.stderr.write(
    `This REPLACES the application databases of BOTH nodes (${config.node.name} here, ${peerInfo.name} ${useMaintenance ? "re-seeded from here" : "through replication"}):\n${describeSummary(current)}` +
      `with the backup ${manifest.file} (taken on ${manifest.node} at ${manifest.takenAt}, GTID ${manifest.gtid}):\n` +
      `  ${manifest.schemas.join(", ")}: ${manifest.tables.length} tables, ${manifest.tables.reduce((n, t) => n + t.rows, 0)} rows\n` +
      `The accounts (schema mysql) are kept. A safety backup of the current data is taken first.\n` +
      (useMaintenance
        ? `The MN services are stopped on both nodes for the duration (the UI and the database keep running) and started again at the end.\n`
        : `--no-maintenance: the MN services are NOT stopped by this command: stop them on both nodes first (the UI may stay), start them afterwards.\n`),
  );
  if (!yes) {
    const answer = await askLine(`Type the name of this node (${config.node.name}) to replace the databases: `, io.stdin, io.stderr);
    if (answer.trim() !== config.node.name) {
      io.stderr.write(`${ctx.name}: restore cancelled (typed ${JSON.stringify(answer.trim())}, not ${config.node.name}); nothing was changed\n`);
      ctx.state.exitCode = ExitCode.failed;
      return;
    }
  }
  if (resuming) io.stderr.write(`resuming the restore recorded in ${store.describe()}\n`);
  const plan = restorePlan(
    mariaDbRestoreActions({ backupPath: path, manifest, local, peer, source: localDumpSource(config), backupDir: backupDir(config), clientBinary: config.db.clientBinary, catchUpTimeoutMs: Math.max(config.db.catchUpTimeoutMs, 600_000), maintenance, services, reseedPeer }),
  );
  // The backup's name is part of the plan's: a leftover state of another backup's restore is refused.
  const named = { ...plan, name: `restore ${manifest.file}` };
  const notes: string[] = [];
  const onEvent = (event: PlanEvent) => {
    if (event.kind === "note") notes.push(event.text);
    io.stderr.write(renderPlanEvent(event));
  };
  try {
    await runPlan(named, { store, onEvent });
  } catch (error) {
    throw await afterFailure(error, { plan: named, store, onEvent, file, useMaintenance, node: config.node.name });
  }
  store.clear();
  if (ctx.state.json) printJson(io, { ok: true, backup: path, gtid: manifest.gtid, notes });
  else io.stdout.write(`restore done: ${config.node.name} and ${peerInfo.name} hold the data of ${manifest.file}${useMaintenance ? "; the MN services run again" : "; start the MN services again"}\n`);
}

/**
 * Maintenance on both nodes through the local agent. Null when the pair already was in
 * maintenance before this restore (the operator's: left alone). A rerun of an interrupted
 * restore owns the maintenance it set.
 */
async function maintenanceControl(ctx: RestoreCommandContext, file: string, resuming: boolean): Promise<RestoreActions["maintenance"]> {
  let status;
  try {
    status = await ctx.client(5_000).status();
  } catch (error) {
    if (!(error instanceof MnhaError)) throw error;
    throw new MnhaError("OPERATION_REFUSED", `the local agent does not answer (${error.message}): the restore runs with the pair in maintenance, so that no failover or service restore happens meanwhile`, {
      hint: "start the agent (`systemctl start mnha`), or run with --no-maintenance when no agent runs on either node; nothing was changed",
    });
  }
  const already = status.ops?.self.maintenance != null && status.ops.peer?.maintenance != null;
  if (already && !resuming) return null;
  const by = invokingUser(ctx.io.env ?? process.env);
  return async (on) => {
    const result = await ctx.client(150_000).maintenance({ on, node: "both", reason: `mnha restore ${file}`, by });
    return `${result.message}${result.peer ? `; ${result.peer.node}: ${result.peer.message}` : ""}`;
  };
}


/**
 * Stops / starts the MN services on both nodes through the local agent (the UI and the
 * database kept), with the pair in maintenance. A node that could not do it fails the step.
 */
function servicesControl(ctx: RestoreCommandContext, file: string): NonNullable<RestoreActions["services"]> {
  const by = invokingUser(ctx.io.env ?? process.env);
  return async (action) => {
    const result = await ctx.client(900_000).maintenance({ on: true, node: "both", reason: `mnha restore ${file}`, by, services: action });
    const problems = [
      ...(result.services?.ok === false ? [result.services.message] : []),
      ...(result.peer === undefined ? [`${result.node}: the peer's answer is missing`] : result.peer.ok ? [] : [`${result.peer.node}: ${result.peer.message}`]),
    ];
    if (problems.length > 0)
      throw new MnhaError("OPERATION_FAILED", `the MN services could not be ${action === "stop" ? "stopped" : "started"} on both nodes: ${problems.join("; ")}`, {
        hint: `fix the cause (the service's ${action} command, \`mnha events --type maintenance\`)`,
      });
    return [result.services?.message, result.peer?.message.split("; ").filter((part) => !/maintenance mode/.test(part)).join("; ")].filter((t) => t !== undefined && t !== "").join("; ");
  };
}

/**
 * The peer's agent copies this node's database (over the authenticated peer link, the pair in
 * maintenance). A peer that could not fails the step with its reason; the step reruns safely.
 */
function reseedControl(ctx: RestoreCommandContext, peerName: string): NonNullable<RestoreActions["reseedPeer"]> {
  const by = invokingUser(ctx.io.env ?? process.env);
  return async () => {
    const result = await ctx.client().dbReseedPeer({ by });
    if (!result.ok)
      throw new MnhaError("DB_SEED_FAILED", `${peerName} could not copy this node's database: ${result.message}`, {
        hint: `fix the cause (\`mnha events --type db.reseed\` on ${peerName}), then run the same command again: it resumes with the re-seed`,
      });
    return result.message;
  };
}

/**
 * What a failed restore leaves, said exactly. Before the first step that changes data the
 * finished steps are undone (services started, maintenance left, writable): nothing was
 * changed. From it on the data is half replaced: the services stay stopped and the node
 * read-only (better than serving that), and the message says what to run.
 */
async function afterFailure(error: unknown, o: { plan: Plan; store: PlanStateStore; onEvent: (event: PlanEvent) => void; file: string; useMaintenance: boolean; node: string }): Promise<unknown> {
  if (!(error instanceof MnhaError) || error.code !== "PLAN_STEP_FAILED") return error;
  const failedStep = String(error.fields?.["step"] ?? "");
  const cause = (error as { cause?: unknown }).cause;
  const fix = (cause instanceof MnhaError ? cause.hint : undefined) ?? "fix the cause above";
  const fields = error.fields ?? {};
  let undone: boolean;
  try {
    undone = await undoRestoreBeforeData(o.plan, failedStep, { store: o.store, onEvent: o.onEvent });
  } catch (undoError) {
    return new MnhaError("PLAN_STEP_FAILED", `${error.message}; undoing the finished steps failed too: ${(undoError as Error).message}`, {
      hint: `the data was not changed. ${o.useMaintenance ? "Start the MN services that are down (mnha status shows them), then `mnha maintenance off --node both`" : "Start the MN services that are down"}; if ${o.node} is read-only: \`SET GLOBAL read_only = OFF\` there. Then \`mnha restore ${o.file}\` again once the cause is fixed`,
      fields,
      cause: error,
    });
  }
  if (undone) {
    return new MnhaError("PLAN_STEP_FAILED", `${error.message}\nThe data was not changed; the finished steps were undone (${o.useMaintenance ? "MN services started again, maintenance as it was before, " : ""}${o.node} writable).`, {
      hint: `${fix}; then run \`mnha restore ${o.file}\` again (it starts from the beginning)`,
      fields,
      cause: error,
    });
  }
  const left = o.useMaintenance ? `The MN services are STOPPED on both nodes (the UI runs), the pair is in maintenance and ${o.node} is read-only` : `${o.node} is read-only`;
  return new MnhaError("PLAN_STEP_FAILED", `${error.message}\n${left}: the data is only partly restored, so nothing serves it.`, {
    hint:
      `${fix}; then run \`mnha restore ${o.file}\` again: it resumes at the failed step and starts the services at the end. ` +
      `To go back to the data from before instead: remove ${o.store.describe()} and run \`mnha restore <the safety backup named above>\`, then \`mnha maintenance off --node both\``,
    fields,
    cause: error,
  });
}
