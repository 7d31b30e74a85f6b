/**
 * The "seed in progress" marker: a file in the agent's data dir, written before a seed
 * changes anything and removed only when it completed. While it exists this node's database
 * is a partial copy: the node is not eligible to hold the VIP.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomicSync } from "@mnha/shared";
import { join } from "node:path";

export const SEED_MARKER_NAME = "db.seeding";

export function seedMarkerPath(dataDir: string): string {
  return join(dataDir, SEED_MARKER_NAME);
}

/** True while a seed has started and not completed: the host must treat the node as not eligible. */
export function dbSeedIncomplete(dataDir: string): boolean {
  return existsSync(seedMarkerPath(dataDir));
}

export interface SeedMarker {
  startedAt: string;
  from: string;
  operation: "seed" | "resync";
  pid: number;
}

export function readSeedMarker(dataDir: string): SeedMarker | null {
  try {
    return JSON.parse(readFileSync(seedMarkerPath(dataDir), "utf8")) as SeedMarker;
  } catch {
    return null;
  }
}

/** Written and synced before the first change, so a crash at any later point leaves it. */
export function writeSeedMarker(dataDir: string, marker: SeedMarker): void {
  writeFileAtomicSync(seedMarkerPath(dataDir), `${JSON.stringify(marker)}\n`, { mode: 0o600 });
}

export function clearSeedMarker(dataDir: string): void {
  rmSync(seedMarkerPath(dataDir), { force: true });
}
