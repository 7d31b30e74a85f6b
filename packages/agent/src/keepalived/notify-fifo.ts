import { constants, openSync, closeSync, fstatSync, statSync } from "node:fs";
import { Socket } from "node:net";
import type { KeepalivedState } from "@mnha/protocol";
import type { Logger } from "@mnha/shared";

const STATES: Record<string, KeepalivedState> = {
  MASTER: "master",
  BACKUP: "backup",
  FAULT: "fault",
  STOP: "stopped",
  DELETED: "stopped",
};

/**
 * Parses one notify_fifo line such as `INSTANCE "mnha_vip" MASTER 200`. Returns null for
 * lines about other instances, groups, checkers or states the agent does not track.
 */
export function parseNotifyLine(line: string, instance: string): KeepalivedState | null {
  const match = /^INSTANCE "([^"]*)" ([A-Z_]+)(?: (\d+))?\s*$/.exec(line.trim());
  if (!match || match[1] !== instance) return null;
  return STATES[match[2] ?? ""] ?? null;
}

export interface NotifyFifoReaderOptions {
  path: string;
  onLine: (line: string) => void;
  logger: Logger;
}

const MAX_LINE = 1024;

/**
 * Reads keepalived's notify FIFO. The FIFO is opened read-write and non-blocking: holding a
 * write end ourselves means keepalived restarting (closing its end) is never an end of file,
 * and opening never blocks waiting for a writer. The reader lives as long as the driver.
 */
export class NotifyFifoReader {
  private readonly options: NotifyFifoReaderOptions;
  private socket: Socket | null = null;
  private pending = "";
  /** The inode of the FIFO we read: a FIFO made again at the path (removed by hand) is another. */
  private inode: number | null = null;

  constructor(options: NotifyFifoReaderOptions) {
    this.options = options;
  }

  start(): void {
    if (this.socket) return;
    const fd = openSync(this.options.path, constants.O_RDWR | constants.O_NONBLOCK);
    let socket: Socket;
    try {
      this.inode = fstatSync(fd).ino;
      socket = new Socket({ fd, readable: true, writable: false });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.consume(chunk));
    socket.on("error", (error) => this.options.logger.warn({ err: error, fifo: this.options.path }, "notify FIFO read error"));
    this.socket = socket;
  }

  stop(): void {
    this.socket?.destroy();
    this.socket = null;
    this.pending = "";
    this.inode = null;
  }

  /** Whether the path names the FIFO this reader reads (false: removed, or made again). */
  readsPath(): boolean {
    try {
      return this.inode !== null && statSync(this.options.path).ino === this.inode;
    } catch {
      return false;
    }
  }

  /**
   * Moves to the FIFO now at the path if it is not the one read; returns whether it moved.
   * keepalived writes to the FIFO it opened, removed or not, until it opens the path again (at
   * a reload or its next start): the caller sees to that.
   */
  reopenIfReplaced(): boolean {
    if (this.socket === null || this.readsPath()) return false;
    this.stop();
    this.start();
    return true;
  }

  private consume(chunk: string): void {
    this.pending += chunk;
    let newline = this.pending.indexOf("\n");
    while (newline >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      if (line.trim() !== "") this.options.onLine(line);
      newline = this.pending.indexOf("\n");
    }
    // A line this long is not keepalived's; drop it rather than grow without bound.
    if (this.pending.length > MAX_LINE) this.pending = "";
  }
}
