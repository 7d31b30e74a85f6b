/**
 * Reads a mariadb-dump stream as it passes: rows per table (tuples of the INSERT statements,
 * counted outside string literals, on one line or one row per line as newer mariadb-dump writes), the snapshot's GTID position and the last line (the
 * "-- Dump completed" trailer that tells a complete dump from a cut one). Byte by byte, so
 * chunk boundaries never matter; no SQL is kept in memory.
 */
const GTID_LINE = /SET GLOBAL gtid_slave_pos\s*=\s*'([0-9,\- ]*)'/;
const USE_LINE = /^USE `((?:[^`]|``)+)`;$/;
const INSERT_HEAD = /^INSERT INTO `((?:[^`]|``)+)` VALUES ?$/;
const SEMICOLON = 0x3b;
const HEAD_LIMIT = 1024;
const NEWLINE = 0x0a;
const QUOTE = 0x27;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const SPACE = 0x20;

export interface DumpSummary {
  /** `schema.table` → rows in the dump. */
  rows: Map<string, number>;
  gtid: string | null;
  /** The last non-empty line (its first 200 characters). */
  lastLine: string;
  sqlBytes: number;
}

export const DUMP_TRAILER = "-- Dump completed";

export class DumpScanner {
  private readonly rows = new Map<string, number>();
  private gtid: string | null = null;
  private lastLine = "";
  private sqlBytes = 0;
  private schema = "";
  private head: number[] = [];
  private mode: "head" | "skip" | "values" = "head";
  private table = "";
  private inString = false;
  private escaped = false;
  private depth = 0;

  push(chunk: Buffer): void {
    this.sqlBytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.mode === "values") this.valuesByte(byte);
      else if (byte === NEWLINE) this.endLine();
      else if (this.mode === "head") {
        this.head.push(byte);
        if (byte === SPACE && this.head.length > 20) this.maybeInsert(this.headText());
        else if (this.head.length >= HEAD_LIMIT) {
          this.lastLine = this.headText().slice(0, 200);
          this.mode = "skip";
        }
      }
    }
  }

  summary(): DumpSummary {
    if (this.mode === "head" && this.head.length > 0) this.endLine();
    return { rows: new Map(this.rows), gtid: this.gtid, lastLine: this.lastLine, sqlBytes: this.sqlBytes };
  }

  private headText(): string {
    return Buffer.from(this.head).toString("utf8");
  }

  /** `INSERT INTO `t` VALUES ` followed by the rows on the same line, or (newer mariadb-dump) one row per line. */
  private maybeInsert(text: string): boolean {
    if (!text.endsWith(" VALUES ") && !text.endsWith(" VALUES")) return false;
    const match = INSERT_HEAD.exec(text);
    if (!match) return false;
    this.table = `${this.schema}.${(match[1] ?? "").replace(/``/g, "`")}`;
    this.lastLine = text.slice(0, 200);
    this.mode = "values";
    this.inString = false;
    this.escaped = false;
    this.depth = 0;
    this.head = [];
    return true;
  }

  private valuesByte(byte: number): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (byte === BACKSLASH) this.escaped = true;
      else if (byte === QUOTE) this.inString = false;
      return;
    }
    if (byte === QUOTE) this.inString = true;
    else if (byte === OPEN) {
      this.depth += 1;
      if (this.depth === 1) this.rows.set(this.table, (this.rows.get(this.table) ?? 0) + 1);
    } else if (byte === CLOSE) this.depth -= 1;
    else if (byte === SEMICOLON && this.depth === 0) this.mode = "skip"; // the statement's end; the rest of its line is not data
  }

  private endLine(): void {
    if (this.mode === "head") {
      const text = this.headText();
      if (this.maybeInsert(text)) return;
      if (text.trim() !== "") this.lastLine = text.slice(0, 200);
      const use = USE_LINE.exec(text);
      if (use) this.schema = (use[1] ?? "").replace(/``/g, "`");
      const gtid = GTID_LINE.exec(text);
      if (gtid) this.gtid = gtid[1] ?? "";
      // A table's data starts again at its DROP/CREATE: rows already counted stay counted.
    }
    this.head = [];
    this.mode = "head";
  }
}
