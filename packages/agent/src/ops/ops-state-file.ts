/**
 * The operator modes that must survive an agent restart: maintenance mode and "node stopped".
 * One small JSON file in the data dir, replaced atomically (temp file, fsync, rename).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { OpsStatus } from "../contracts.js";
import { writeFileAtomic } from "@mnha/shared";

export const OPS_STATE_FILE = "ops-state.json";

const OpsStateFileSchema = z.object({
  maintenance: z.object({ since: z.number(), by: z.string(), reason: z.string() }).nullable().default(null),
  stopped: z.object({ since: z.number(), by: z.string(), keepUi: z.boolean() }).nullable().default(null),
});

export class OpsStateFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, OPS_STATE_FILE);
  }

  /**
   * The saved modes. A missing file is "no mode"; an unreadable or corrupt one is reported
   * through `problem` and read as maintenance ON: when in doubt, the agent acts on nothing.
   */
  load(now: number): { state: OpsStatus; problem: string | null } {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { state: { maintenance: null, stopped: null }, problem: null };
      return this.doubt(now, `cannot read ${this.path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
    try {
      const parsed = OpsStateFileSchema.parse(JSON.parse(text));
      return { state: { maintenance: parsed.maintenance, stopped: parsed.stopped }, problem: null };
    } catch (error) {
      return this.doubt(now, `${this.path} is not a valid state file (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
    }
  }

  async save(state: OpsStatus): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  }

  private doubt(now: number, problem: string): { state: OpsStatus; problem: string } {
    return { state: { maintenance: { since: now, by: "mnha", reason: `state file unreadable: ${problem}` }, stopped: null }, problem };
  }
}
