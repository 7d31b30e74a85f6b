/**
 * `mnha backup now | list | verify <file>`: database backups from the CLI. They run in the
 * CLI process against the local MariaDB, so they work while the agent is down. The schedule
 * (backup.schedule, on the VIP holder) runs the same job inside the agent.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig, MnhaError } from "@mnha/shared";
import { backupDir, backupJob, listBackups, remoteTarget, verifyBackup, copyToRemote } from "../backup/index.js";
import { printJson, type CliIo } from "./cli-io.js";
import { formatBytes } from "../util/format.js";

export interface BackupCommandContext {
  io: CliIo;
  state: { exitCode: number; json: boolean };
  configPath: () => string;
}

export function registerBackupCommands(program: Command, ctx: BackupCommandContext): void {
  const backup = program.command("backup").description("database backups: take one now, list them, verify one (no agent needed)");

  backup
    .command("now")
    .description("dump this node's MariaDB (consistent snapshot), compress, checksum, apply the retention, copy to backup.remote if set")
    .option("--no-remote", "do not copy to backup.remote")
    .option("--json", "print the result as JSON")
    .action(async (options: { remote: boolean; json?: boolean }) => {
      ctx.state.json = options.json === true;
      const config = loadConfig(ctx.configPath()).config;
      const job = backupJob(config);
      const result = await job.take();
      const deleted = job.retain();
      const target = remoteTarget(config);
      const m = result.manifest;
      if (!ctx.state.json) {
        const rows = m.tables.reduce((n, t) => n + t.rows, 0);
        ctx.io.stdout.write(`backup ${result.path}\n  ${formatBytes(m.bytes)} compressed (${formatBytes(m.sqlBytes)} SQL), ${m.tables.length} tables, ${rows} rows, GTID ${m.gtid || "(empty)"}\n  sha256 ${m.sha256}\n`);
        if (deleted.length > 0) ctx.io.stdout.write(`  retention removed: ${deleted.join(", ")}\n`);
      }
      // The local backup is complete and listed before the remote copy is tried: a failed copy does not undo it.
      let remote: { host: string; deleted: string[] } | null = null;
      if (target !== null && options.remote) remote = { host: target.host, deleted: (await copyToRemote(target, result.path)).deleted };
      if (ctx.state.json) printJson(ctx.io, { path: result.path, manifest: m, deleted, remote });
      else if (remote !== null) ctx.io.stdout.write(`  copied to ${remote.host}${remote.deleted.length > 0 ? `; remote retention removed ${remote.deleted.join(", ")}` : ""}\n`);
    });

  backup
    .command("list")
    .description("the backups in backup.dir, newest first")
    .option("--json", "print as JSON")
    .action((options: { json?: boolean }) => {
      ctx.state.json = options.json === true;
      const dir = backupDir(loadConfig(ctx.configPath()).config);
      const entries = listBackups(dir);
      if (ctx.state.json) {
        printJson(ctx.io, { dir, backups: entries.map((e) => ({ name: e.name, path: e.path, node: e.node, takenAt: e.takenAt.toISOString(), bytes: e.manifest?.bytes ?? null, gtid: e.manifest?.gtid ?? null, problem: e.problem })) });
        return;
      }
      if (entries.length === 0) {
        ctx.io.stdout.write(`no backups in ${dir}\n`);
        return;
      }
      ctx.io.stdout.write(`backups in ${dir} (newest first):\n`);
      for (const e of entries) {
        const detail = e.manifest ? `${formatBytes(e.manifest.bytes).padStart(9)}  GTID ${e.manifest.gtid || "(empty)"}` : `INCOMPLETE: ${e.problem ?? ""}`;
        ctx.io.stdout.write(`  ${e.name}  ${detail}\n`);
      }
    });

  backup
    .command("verify")
    .description("check a backup's checksum, its whole gzip stream, the dump's trailer and the row counts of its manifest")
    .argument("<file>", "a backup file (a bare name is looked up in backup.dir)")
    .option("--json", "print as JSON")
    .action(async (file: string, options: { json?: boolean }) => {
      ctx.state.json = options.json === true;
      const path = resolveBackupPath(file, () => backupDir(loadConfig(ctx.configPath()).config));
      const result = await verifyBackup(path);
      if (ctx.state.json) {
        printJson(ctx.io, { ok: true, ...result, manifest: undefined });
        return;
      }
      const rows = result.tables.reduce((n, t) => n + t.rows, 0);
      ctx.io.stdout.write(`OK ${result.path}\n  sha256 ${result.sha256} matches; gzip stream complete; dump trailer present\n  ${result.tables.length} tables, ${rows} rows, GTID ${result.gtid || "(empty)"}\n`);
    });
}

/** A path as given, or a bare name in the backup directory. */
export function resolveBackupPath(file: string, dir: () => string): string {
  if (isAbsolute(file) || file.includes("/")) return resolve(file);
  if (existsSync(file)) return resolve(file);
  const inDir = join(dir(), file);
  if (!existsSync(inDir)) throw new MnhaError("BACKUP_INVALID", `no backup named ${file} here or in ${dir()}`, { hint: "`mnha backup list` shows the backups" });
  return inDir;
}

