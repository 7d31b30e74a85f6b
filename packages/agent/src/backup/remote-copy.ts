/**
 * The remote copy: real `rsync` over `ssh`, argument arrays only, strict host-key checking
 * (a remote whose key is not already in the known-hosts file is refused, never trusted on
 * first use), key authentication without a prompt. Remote retention lists the directory
 * with `rsync --list-only` and removes what the policy no longer keeps with one `rm`, its
 * arguments quoted for the remote shell.
 */
import { execFile } from "node:child_process";
import { MnhaError } from "@mnha/shared";
import { quoteCommand } from "../provision/shell-quote.js";
import { checksumFileName, manifestFileName, parseBackupFileName } from "./naming.js";
import { backupsToDelete } from "./retention.js";

export interface RemoteTarget {
  host: string;
  user: string;
  port: number;
  dir: string;
  keyFile: string;
  /** Default: the invoking user's ~/.ssh/known_hosts. */
  knownHostsFile?: string | undefined;
  keep: number;
}

export interface RemoteBinaries {
  rsync: string;
  ssh: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/+-]*$/;

/** The ssh options, as separate words (rsync's -e value is split on spaces: the paths are checked to contain none). */
export function sshOptions(target: RemoteTarget): string[] {
  for (const [what, path] of [["keyFile", target.keyFile], ["knownHostsFile", target.knownHostsFile], ["dir", target.dir]] as const) {
    if (path !== undefined && !SAFE_PATH.test(path)) throw new MnhaError("CONFIG_INVALID", `backup.remote.${what} ${JSON.stringify(path)} must be an absolute path of letters, digits and ._/+-`, { hint: "choose a path without spaces or shell characters" });
  }
  return [
    "-i", target.keyFile,
    "-p", String(target.port),
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
    ...(target.knownHostsFile === undefined ? [] : ["-o", `UserKnownHostsFile=${target.knownHostsFile}`]),
  ];
}

function destination(target: RemoteTarget): string {
  return `${target.user}@${target.host}:${target.dir}/`;
}

/** rsync's argv copying `files` (absolute paths) into the remote directory. */
export function rsyncCopyArgv(target: RemoteTarget, files: readonly string[], ssh = "ssh"): string[] {
  return ["--times", "--partial-dir=.rsync-partial", "--chmod=F600", "--mkpath", "-e", [ssh, ...sshOptions(target)].join(" "), "--", ...files, destination(target)];
}

export function rsyncListArgv(target: RemoteTarget, ssh = "ssh"): string[] {
  return ["--list-only", "-e", [ssh, ...sshOptions(target)].join(" "), "--", destination(target)];
}

/** ssh's argv removing the named files (names only, already checked) from the remote directory. */
export function sshRemoveArgv(target: RemoteTarget, names: readonly string[]): string[] {
  return [...sshOptions(target), "--", `${target.user}@${target.host}`, quoteCommand(["rm", "-f", "--", ...names.map((n) => `${target.dir}/${n}`)])];
}

/** The backup names in `rsync --list-only` output (last field of each line). */
export function parseRsyncListing(output: string): string[] {
  return output
    .split("\n")
    .map((line) => line.trim().split(/\s+/).pop() ?? "")
    .filter((name) => parseBackupFileName(name) !== null);
}

export interface RemoteCopyResult {
  copied: string[];
  deleted: string[];
}

/** Copies one backup (with its .sha256 and manifest, the manifest last) and applies the remote retention. */
export async function copyToRemote(target: RemoteTarget, backupPath: string, binaries: RemoteBinaries = { rsync: "rsync", ssh: "ssh" }): Promise<RemoteCopyResult> {
  const name = backupPath.slice(backupPath.lastIndexOf("/") + 1);
  const dir = backupPath.slice(0, backupPath.lastIndexOf("/"));
  const files = [backupPath, `${dir}/${checksumFileName(name)}`];
  await run(binaries.rsync, rsyncCopyArgv(target, files, binaries.ssh), "copying the backup");
  await run(binaries.rsync, rsyncCopyArgv(target, [`${dir}/${manifestFileName(name)}`], binaries.ssh), "copying the manifest");
  const listing = await run(binaries.rsync, rsyncListArgv(target, binaries.ssh), "listing the remote backups");
  const remote = parseRsyncListing(listing).map((n) => ({ name: n, takenAt: parseBackupFileName(n)?.takenAt ?? new Date(0) }));
  const doomed = backupsToDelete(remote, { keepCount: target.keep, keepDays: 0 }, new Date()).map((entry) => entry.name);
  if (doomed.length > 0) {
    const names = doomed.flatMap((n) => [n, checksumFileName(n), manifestFileName(n)]);
    await run(binaries.ssh, sshRemoveArgv(target, names), "removing old remote backups");
  }
  return { copied: [name], deleted: doomed };
}

function run(binary: string, argv: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, argv, { timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const detail = (stderr || error.message).trim().split("\n").slice(-3).join(" / ");
      const hostKey = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr);
      reject(
        new MnhaError("BACKUP_REMOTE", `${what} on the remote backup host failed: ${detail}`, {
          hint: hostKey ? "the remote host's key is not in the known-hosts file (or changed): add it with ssh-keyscan after checking its fingerprint" : "check backup.remote (host, user, keyFile) and that the remote user may write backup.remote.dir",
        }),
      );
    });
  });
}
