/** Backup file names carry the node and the UTC time, so a listing sorts by age without reading anything. */
import { MnhaError } from "@mnha/shared";

export const BACKUP_SUFFIX = ".sql.gz";
const NAME = /^mnha-([a-z][a-z0-9_-]{0,31})-(\d{8})T(\d{6})Z\.sql\.gz$/;

/** `mnha-mn1-20261201T212340Z.sql.gz` */
export function backupFileName(node: string, at: Date): string {
  const iso = at.toISOString(); // 2026-12-01T21:23:40.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return `mnha-${node}-${stamp}${BACKUP_SUFFIX}`;
}

export interface ParsedBackupName {
  node: string;
  takenAt: Date;
}

/** The node and time in a backup's file name, or null for any other file. */
export function parseBackupFileName(name: string): ParsedBackupName | null {
  const match = NAME.exec(name);
  if (!match) return null;
  const [, node, day, time] = match as unknown as [string, string, string, string];
  const takenAt = new Date(`${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)}T${time.slice(0, 2)}:${time.slice(2, 4)}:${time.slice(4, 6)}Z`);
  return Number.isNaN(takenAt.getTime()) ? null : { node, takenAt };
}

export function manifestFileName(backupName: string): string {
  return `${backupName.slice(0, -BACKUP_SUFFIX.length)}.json`;
}

export function checksumFileName(backupName: string): string {
  return `${backupName}.sha256`;
}

export function assertBackupFileName(name: string): ParsedBackupName {
  const parsed = parseBackupFileName(name);
  if (parsed === null) throw new MnhaError("BACKUP_INVALID", `${name} is not an mnha backup file name`, { hint: "backups are named mnha-<node>-<YYYYMMDDTHHMMSSZ>.sql.gz; `mnha backup list` shows them" });
  return parsed;
}
