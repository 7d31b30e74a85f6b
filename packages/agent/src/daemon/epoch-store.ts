import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "@mnha/shared";

/**
 * The highest epoch this node has seen, kept on disk so that a restarted agent never goes
 * back to an older term. Written with fsync and an atomic rename before the agent acts on
 * a new epoch (random temp name, exclusive no-follow create: see writeFileAtomicSync).
 */
export class EpochStore {
  private readonly file: string;
  private current: number;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, "epoch");
    this.current = this.readFromDisk();
  }

  get(): number {
    return this.current;
  }

  /** Never lowers the stored epoch. */
  set(epoch: number): void {
    if (epoch <= this.current) return;
    writeFileAtomicSync(this.file, `${epoch}\n`, { mode: 0o600 });
    this.current = epoch;
  }

  private readFromDisk(): number {
    try {
      const value = Number.parseInt(readFileSync(this.file, "utf8").trim(), 10);
      return Number.isSafeInteger(value) && value >= 0 ? value : 0;
    } catch {
      return 0;
    }
  }
}
