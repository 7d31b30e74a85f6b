/** The small JSON file beside each backup: what it holds, without opening it. */
import { existsSync, readFileSync } from "node:fs";
import { MnhaError } from "@mnha/shared";

export const MANIFEST_FORMAT = "mnha-backup/1";

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  /** The backup's file name (same directory). */
  file: string;
  node: string;
  /** When the dump started (its snapshot is from then) and finished. */
  takenAt: string;
  finishedAt: string;
  /** The snapshot's GTID position (gtid_binlog_pos of the dumped server). */
  gtid: string;
  /** Size of the compressed file, and of the SQL inside it. */
  bytes: number;
  sqlBytes: number;
  sha256: string;
  schemas: string[];
  /** Schemas deliberately left out (see docs/disaster-recovery.md). */
  excluded: string[];
  /** Rows per table in the dump, counted from the dump itself (exact for its snapshot). */
  tables: { table: string; rows: number }[];
}

export function readManifest(file: string): BackupManifest | null {
  if (!existsSync(file)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new MnhaError("BACKUP_CORRUPT", `the backup manifest ${file} is not valid JSON: ${(error as Error).message}`, { hint: "run `mnha backup verify` on the backup; take a new backup with `mnha backup now`", cause: error });
  }
  if (!isManifest(parsed)) throw new MnhaError("BACKUP_CORRUPT", `${file} is not an mnha backup manifest`, { hint: "take a new backup with `mnha backup now`" });
  return parsed;
}

function isManifest(value: unknown): value is BackupManifest {
  if (typeof value !== "object" || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    m["format"] === MANIFEST_FORMAT &&
    typeof m["file"] === "string" &&
    typeof m["node"] === "string" &&
    typeof m["takenAt"] === "string" &&
    typeof m["gtid"] === "string" &&
    typeof m["bytes"] === "number" &&
    typeof m["sha256"] === "string" &&
    /^[0-9a-f]{64}$/.test(m["sha256"]) &&
    Array.isArray(m["tables"])
  );
}

/** `sha256sum`'s format, so `sha256sum -c` works on the remote copy too. */
export function checksumLine(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

export function parseChecksumLine(text: string): string | null {
  const match = /^([0-9a-f]{64}) [ *]?\S/.exec(text.trim());
  return match ? (match[1] ?? null) : null;
}
