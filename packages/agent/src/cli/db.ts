/**
 * `mnha db ...`: the database commands. They run in the CLI process against the local
 * MariaDB (socket, root) and the peer's (TCP, replication user), so they work while the
 * agent is down; the agent is asked only whether this node holds the VIP.
 */
import { askLine } from "./confirm.js";
import type { Command } from "commander";
import { loadConfig, MnhaError, type MnhaConfig } from "@mnha/shared";
import type { ControlClient } from "../control/control-client.js";
import { describeDivergence, type GtidDivergence } from "../db/gtid.js";
import { divergenceBetween } from "../db/replica-state.js";
import { openLocalDatabase, openPeerDatabase, peerEndpoint, replicationSetup } from "../db/index.js";
import type { MariaDbDatabase } from "../db/mariadb.js";
import { ensureGeneratedPasswordFile, readPasswordFile } from "../db/secret-file.js";
import { runSeed, seedPreflight } from "../db/seed.js";
import { seedPlanFromConfig } from "../db/seed-from-config.js";
import { describeProgress, describeSummary } from "../db/describe.js";
import { formatBytes } from "../util/format.js";
import { assertSettings, pairProblems, settingsError } from "../db/settings.js";
import type { DatabaseHealth } from "../db/types.js";
import { hasAddress } from "../net/address.js";
import { printJson, type CliIo } from "./cli-io.js";
import { ExitCode } from "./exit-codes.js";
import { withOperationLock } from "../ops/operation-lock.js";

export interface DbCommandContext {
  io: CliIo;
  name: string;
  state: { exitCode: number; json: boolean };
  configPath: () => string;
  client: (timeoutMs?: number) => ControlClient;
}

export function registerDbCommands(program: Command, ctx: DbCommandContext): void {
  const db = program.command("db").description("the MariaDB pair: replication state, set-up, seeding a standby (no agent needed)");

  db.command("status")
    .description("both nodes' MariaDB: alive, Slave_IO_Running, Slave_SQL_Running, lag, errors, GTID positions, semi-sync, read-only")
    .option("--json", "print as JSON")
    .action(async (options: { json?: boolean }) => {
      ctx.state.json = options.json === true;
      const report = await dbStatus(loadConfig(ctx.configPath()).config);
      if (ctx.state.json) printJson(ctx.io, report);
      else ctx.io.stdout.write(renderDbStatus(report));
    });

  db.command("setup-replication")
    .description("replicate both ways with GTID and semi-sync: creates this node's replication user for the peer and replicates from the peer (run it on both nodes)")
    .option("--json", "print the result as JSON")
    .action(async (options: { json?: boolean }) => {
      ctx.state.json = options.json === true;
      const result = await setupReplication(loadConfig(ctx.configPath()).config);
      if (ctx.state.json) printJson(ctx.io, result);
      else ctx.io.stdout.write(`${result.messages.join("\n")}\n`);
    });

  for (const operation of ["seed", "resync"] as const) {
    db.command(operation)
      .description(
        operation === "seed"
          ? "OVERWRITE this standby's database with a copy of the peer's (streamed), then replicate from the copied position"
          : "repair this standby's broken replica: the same copy as seed, then replication restarts",
      )
      .option("--yes", "do not ask for the typed confirmation (for scripts)")
      .option("--json", "print the result as JSON")
      .action(async (options: { yes?: boolean; json?: boolean }) => {
        ctx.state.json = options.json === true;
        const config = loadConfig(ctx.configPath()).config;
        await withOperationLock(config.dataDir, `db ${operation}`, () => seedCommand(ctx, config, operation, options.yes === true));
      });
  }
}

// ------------------------------------------------------------------ status

export interface DbNodeReport {
  node: string;
  role: "local" | "peer";
  health: DatabaseHealth;
}

export interface DbStatusReport {
  nodes: DbNodeReport[];
  divergence: GtidDivergence[];
  peerProblem: string | null;
}

function replicationPassword(config: MnhaConfig): string {
  return readPasswordFile(config.db.replication.passwordFile, "replication password");
}

export async function dbStatus(config: MnhaConfig): Promise<DbStatusReport> {
  const local = openLocalDatabase(config);
  const peer = peerEndpoint(config);
  const nodes: DbNodeReport[] = [{ node: config.node.name, role: "local", health: await local.health() }];
  let peerProblem: string | null = null;
  try {
    nodes.push({ node: peer.name, role: "peer", health: await openPeerDatabase(config, replicationPassword(config)).health() });
    const peerHealth = nodes[1]?.health;
    if (peerHealth && !peerHealth.alive) peerProblem = peerHealth.error;
  } catch (error) {
    peerProblem = error instanceof Error ? error.message : String(error);
  }
  return { nodes, divergence: divergenceOf(nodes), peerProblem };
}

function divergenceOf(nodes: DbNodeReport[]): GtidDivergence[] {
  const [a, b] = nodes;
  return a === undefined || b === undefined ? [] : divergenceBetween(a, b);
}

export function renderDbStatus(report: DbStatusReport): string {
  const yesNo = (v: boolean | null | undefined) => (v === null || v === undefined ? "-" : v ? "yes" : "no");
  const lines: string[] = [];
  for (const { node, role, health: h } of report.nodes) {
    lines.push(`${node} (${role}): MariaDB ${h.alive ? "alive" : `DOWN: ${h.error ?? ""}`}`);
    if (!h.alive) continue;
    lines.push(`  read-only               ${yesNo(h.readOnly)}`);
    lines.push(`  server_id / domain      ${h.serverId ?? "-"} / ${h.gtidDomainId ?? "-"}`);
    if (h.replicaConfigured) {
      lines.push(`  replicating from        ${h.masterHost ?? "-"}`);
      lines.push(`  Slave_IO_Running        ${h.slaveIoRunning ?? "-"}`);
      lines.push(`  Slave_SQL_Running       ${h.slaveSqlRunning ?? "-"}`);
      lines.push(`  Seconds_Behind_Master   ${h.secondsBehindMaster ?? "-"}`);
      lines.push(`  Last_IO_Error           ${h.lastIoError ?? "-"}`);
      lines.push(`  Last_SQL_Error          ${h.lastSqlError ?? "-"}`);
      lines.push(`  Gtid_IO_Pos             ${h.gtidIoPos ?? "-"}`);
    } else lines.push("  replica                 not configured (run: mnha db setup-replication)");
    lines.push(`  gtid_current_pos        ${h.gtidCurrentPos ?? "-"}`);
    lines.push(`  gtid_binlog_pos         ${h.gtidBinlogPos ?? "-"}`);
    const s = h.semiSync;
    if (s) lines.push(`  semi-sync               master ${s.masterEnabled ? (s.masterActive ? "on" : "enabled, FALLEN BACK to asynchronous") : "off"}, slave ${s.slaveEnabled ? (s.slaveActive ? "on" : "enabled, not active") : "off"} (acknowledged ${s.yesTx}, not acknowledged ${s.noTx})`);
  }
  if (report.peerProblem !== null) lines.push(`peer: ${report.peerProblem}`);
  for (const d of report.divergence) lines.push(`ERRANT TRANSACTIONS: ${describeDivergence(d)}`);
  return `${lines.join("\n")}\n`;
}

// ------------------------------------------------------------------ setup-replication

export interface SetupResult {
  passwordFileCreated: boolean;
  peerChecked: boolean;
  replicating: boolean;
  messages: string[];
}

export async function setupReplication(config: MnhaConfig, options: { waitMs?: number } = {}): Promise<SetupResult> {
  const local = openLocalDatabase(config);
  const peer = peerEndpoint(config);
  const messages: string[] = [];
  // Everything that can refuse comes before the first change.
  const localSettings = await local.settings();
  assertSettings(local.label, localSettings);
  const passwordFile = config.db.replication.passwordFile;
  const passwordFileCreated = ensureGeneratedPasswordFile(passwordFile);
  const password = replicationPassword(config);
  if (passwordFileCreated) messages.push(`generated the replication password in ${passwordFile} (0600): copy this file to the same path on ${peer.name} before running setup-replication there`);
  const peerDb = openPeerDatabase(config, password);
  let peerChecked = false;
  try {
    const peerSettings = await peerDb.settings();
    const pair = pairProblems(localSettings, peerSettings);
    if (pair.length > 0) throw settingsError("the pair", pair);
    const divergence = await pairDivergence(config, local, peerDb);
    if (divergence.length > 0) throw errantError(divergence, peer.name);
    peerChecked = true;
  } catch (error) {
    if (!(error instanceof MnhaError) || (error.code !== "DB_AUTH" && error.code !== "DB_UNREACHABLE")) throw error;
    messages.push(`${peer.name}'s MariaDB cannot be checked yet (${error.message}); its half of the set-up is still to do`);
  }
  await local.ensureReplicationUser(config.db.replication.user, peer.host, password);
  await local.setupReplication(replicationSetup(config, password));
  messages.push(`${config.node.name} replicates from ${peer.name} (${peer.host}:${peer.port}) with GTID, semi-sync ${config.db.semiSync.enabled ? `on (AFTER_SYNC, ${config.db.semiSync.timeoutMs} ms)` : "off"}; user ${config.db.replication.user}@${peer.host} created for ${peer.name}`);
  const replicating = await waitReplicating(local, options.waitMs ?? 3_000);
  messages.push(replicating ? "replication threads: Slave_IO_Running Yes, Slave_SQL_Running Yes" : `the replica is not connected yet: run \`mnha db setup-replication\` on ${peer.name} too (with the same ${passwordFile}); it connects by itself once that is done`);
  return { passwordFileCreated, peerChecked, replicating, messages };
}

async function waitReplicating(db: MariaDbDatabase, waitMs: number): Promise<boolean> {
  const deadline = performance.now() + waitMs;
  for (let i = 0; i < 100; i++) {
    const h = await db.health();
    if (h.slaveIoRunning === "Yes" && h.slaveSqlRunning === "Yes") return true;
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function pairDivergence(config: MnhaConfig, local: MariaDbDatabase, peer: MariaDbDatabase): Promise<GtidDivergence[]> {
  const nodes: DbNodeReport[] = [
    { node: config.node.name, role: "local", health: await local.health() },
    { node: peerEndpoint(config).name, role: "peer", health: await peer.health() },
  ];
  return divergenceOf(nodes).filter((d) => d.kind === "foreign-domain" || d.kind === "unreplicated");
}

function errantError(divergence: GtidDivergence[], peerName: string): MnhaError {
  return new MnhaError("DB_ERRANT_GTID", `the two databases have diverged (errant transactions):\n${divergence.map((d) => `  - ${describeDivergence(d)}`).join("\n")}`, {
    hint: `decide which node's data is right; on the other (never the VIP holder) run \`mnha db resync\` to make it a copy of ${peerName}'s or the holder's; nothing was changed`,
    fields: { divergence },
  });
}

// ------------------------------------------------------------------ seed / resync

async function seedCommand(ctx: DbCommandContext, config: MnhaConfig, operation: "seed" | "resync", yes: boolean): Promise<void> {
  const { io, name } = ctx;
  const peer = peerEndpoint(config);
  await refuseOnHolder(ctx, config);
  const plan = seedPlanFromConfig(config, operation);
  const preflight = await seedPreflight(plan);
  io.stderr.write(
    `This OVERWRITES the MariaDB database of ${config.node.name} (this node, socket ${config.db.socket}):\n${describeSummary(preflight.local)}` +
      `with a copy of ${peer.name}'s (${peer.host}:${peer.port}):\n${describeSummary(preflight.peer)}` +
      `Every table of ${config.node.name} not on ${peer.name} is dropped; ${config.node.name} stays not eligible until the copy completes.\n`,
  );
  if (!yes) {
    const answer = await askLine(`Type the name of this node (${config.node.name}) to overwrite its database: `, io.stdin, io.stderr);
    if (answer.trim() !== config.node.name) {
      io.stderr.write(`${name}: ${operation} cancelled (typed ${JSON.stringify(answer.trim())}, not ${config.node.name}); nothing was changed\n`);
      ctx.state.exitCode = ExitCode.failed;
      return;
    }
  }
  const result = await runSeed(plan, preflight, (p) => io.stderr.write(`${describeProgress(p)}\n`));
  if (ctx.state.json) printJson(io, { ok: true, operation, from: peer.name, ...result });
  else io.stdout.write(`${operation} done: ${config.node.name} is a copy of ${peer.name} at GTID ${result.gtid} (${formatBytes(result.bytes)} in ${(result.tookMs / 1000).toFixed(1)} s) and replicates from it\n`);
}

/**
 * Whether this node holds the VIP: the agent says so, or (agent not answering) the address is
 * on the interface. Null when neither can tell; the caller refuses, naming the reason.
 */
export async function holdsVipHere(ctx: Pick<DbCommandContext, "client">, config: MnhaConfig): Promise<{ holds: boolean } | { unknown: string }> {
  try {
    const status = await ctx.client(2_000).status();
    return { holds: status.self.vipPresent || status.vipOwner === config.node.name };
  } catch (error) {
    if (!(error instanceof MnhaError) || (error.code !== "CONTROL_UNREACHABLE" && error.code !== "CONTROL_PERMISSION")) throw error;
    try {
      return { holds: await hasAddress(config.vip.interface, config.vip.address) };
    } catch (inner) {
      return { unknown: `agent not answering, and ${(inner as Error).message}` };
    }
  }
}

/** Refuses when this node holds the VIP: asks the agent, else looks at the interface. */
async function refuseOnHolder(ctx: DbCommandContext, config: MnhaConfig): Promise<void> {
  const here = await holdsVipHere(ctx, config);
  if ("unknown" in here) throw new MnhaError("DB_SEED_REFUSED", `cannot tell whether ${config.node.name} holds the VIP (${here.unknown})`, { hint: "start the agent (it knows), or fix vip.interface in the config; nothing was changed" });
  if (here.holds)
    throw new MnhaError("DB_SEED_REFUSED", `${config.node.name} holds the VIP ${config.vip.address}: its database is the one being served and is never overwritten`, {
      hint: `run this on the standby; to seed this node, first move the VIP away (mnha demote); nothing was changed`,
    });
}

