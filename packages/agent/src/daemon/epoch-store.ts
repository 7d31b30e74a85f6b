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
  private problem: string | null = null;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, "epoch");
    this.current = this.readFromDisk();
  }

  get(): number {
    return this.current;
  }

  /** Why the file read at start did not give an epoch (null: it did, or there was none yet). */
  readProblem(): string | null {
    return this.problem;
  }

  /** Where the epoch is kept. */
  path(): string {
    return this.file;
  }

  /** Never lowers the stored epoch. */
  set(epoch: number): void {
    if (epoch <= this.current) return;
    writeFileAtomicSync(this.file, `${epoch}\n`, { mode: 0o600 });
    this.current = epoch;
  }

  /** 0 for a node that never had an epoch; also 0, with a problem said, for a file that is not one. */
  private readFromDisk(): number {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8").trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") this.problem = `could not be read (${code ?? String(error)})`;
      return 0;
    }
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (Number.isSafeInteger(value)) return value;
    this.problem = `does not hold an epoch (${JSON.stringify(text.slice(0, 40))})`;
    return 0;
  }
}
