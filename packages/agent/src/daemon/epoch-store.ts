import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { MAX_EPOCH } from "@mnha/protocol";
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
  /** The file as last written or read (inode and mtime): removed, replaced or edited by hand, it differs. */
  private seen: string | null = null;

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
    this.seen = this.fileIdentity();
  }

  /**
   * Puts the epoch back when its file was removed or replaced by hand (the data dir cleaned):
   * a restart would otherwise start from 0 and lean on the peer to learn the term again.
   * One stat when nothing changed. Returns what it did, or null.
   */
  restoreIfLost(): string | null {
    if (this.current === 0) return null;
    const identity = this.fileIdentity();
    if (identity !== null && identity === this.seen) return null;
    let onDisk: string | null = null;
    try {
      onDisk = readFileSync(this.file, "utf8").trim();
    } catch {
      // Missing: written below.
    }
    if (onDisk === String(this.current)) {
      this.seen = identity;
      return null;
    }
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.file, `${this.current}\n`, { mode: 0o600 });
    this.seen = this.fileIdentity();
    return `${this.file} ${onDisk === null ? "was missing" : `held ${JSON.stringify(onDisk.slice(0, 40))}`}: wrote the epoch ${this.current} back`;
  }

  private fileIdentity(): string | null {
    const stat = statSync(this.file, { throwIfNoEntry: false });
    return stat === undefined ? null : `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
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
    // Above the protocol's bound every heartbeat would be a frame the peer must refuse.
    if (Number.isSafeInteger(value) && value > MAX_EPOCH) {
      this.problem = `holds ${value}, above the protocol's bound ${MAX_EPOCH}`;
      return 0;
    }
    if (Number.isSafeInteger(value)) {
      this.seen = this.fileIdentity();
      return value;
    }
    this.problem = `does not hold an epoch (${JSON.stringify(text.slice(0, 40))})`;
    return 0;
  }
}
