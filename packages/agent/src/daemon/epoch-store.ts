import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * The highest epoch this node has seen, kept on disk so that a restarted agent never goes
 * back to an older term. Written with fsync and an atomic rename before the agent acts on
 * a new epoch.
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
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, `${epoch}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
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
