/**
 * Reads the host's figures straight from the kernel (/proc, /sys, statfs): no child
 * processes and nothing synchronous, so sampling never blocks the agent's event loop.
 * (systeminformation was considered: on Linux its currentLoad() runs `execSync("cat /proc/stat
 * | grep cpu")` on the event loop and networkStats() runs a shell with the interface name in
 * the command line; both are against this project's rules.)
 */
import { readFile, statfs } from "node:fs/promises";
import { loadavg, freemem, totalmem } from "node:os";
import { dirname } from "node:path";

/** Cumulative CPU time of all cores, in kernel ticks. */
export interface CpuTimes {
  busy: number;
  total: number;
}

export interface DiskUsage {
  /** The directory actually measured (the nearest existing ancestor of the one asked). */
  path: string;
  totalBytes: number;
  usedBytes: number;
  /** Free for unprivileged users (df's "Avail"). */
  availableBytes: number;
  /** As df computes it: used / (used + available). */
  usedPercent: number;
}

export interface SystemReaders {
  cpuTimes(): Promise<CpuTimes>;
  loadAverage(): Promise<[number, number, number]>;
  memory(): Promise<{ totalBytes: number; availableBytes: number }>;
  diskUsage(path: string): Promise<DiskUsage>;
  /** Cumulative byte counters of a network interface. */
  interfaceCounters(iface: string): Promise<{ rxBytes: number; txBytes: number }>;
}

/** A network interface name as the kernel allows it, and nothing that could leave /sys/class/net. */
const INTERFACE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.:@-]{1,15}$/;

export const linuxSystemReaders: SystemReaders = {
  async cpuTimes() {
    const text = await readFile("/proc/stat", "utf8");
    const line = text.split("\n").find((l) => l.startsWith("cpu "));
    if (!line) throw new Error("/proc/stat has no aggregate cpu line");
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (ticks.length < 4 || ticks.some((t) => !Number.isFinite(t))) throw new Error(`unexpected /proc/stat cpu line: ${line}`);
    const total = ticks.reduce((sum, t) => sum + t, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: total - idle, total };
  },

  async loadAverage() {
    const [one = 0, five = 0, fifteen = 0] = loadavg();
    return [one, five, fifteen];
  },

  async memory() {
    const text = await readFile("/proc/meminfo", "utf8").catch(() => "");
    const field = (name: string): number | null => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(text);
      return match ? Number(match[1]) * 1024 : null;
    };
    // MemAvailable: what can be used without swapping (free + reclaimable cache).
    return { totalBytes: field("MemTotal") ?? totalmem(), availableBytes: field("MemAvailable") ?? freemem() };
  },

  async diskUsage(path: string) {
    let measured = path;
    for (;;) {
      try {
        const stats = await statfs(measured);
        const totalBytes = stats.blocks * stats.bsize;
        const usedBytes = (stats.blocks - stats.bfree) * stats.bsize;
        const availableBytes = stats.bavail * stats.bsize;
        const usedPercent = usedBytes + availableBytes > 0 ? (usedBytes / (usedBytes + availableBytes)) * 100 : 0;
        return { path: measured, totalBytes, usedBytes, availableBytes, usedPercent };
      } catch (error) {
        // Not created yet: measure the filesystem it will be created on.
        const parent = dirname(measured);
        if ((error as NodeJS.ErrnoException).code !== "ENOENT" || parent === measured) throw error;
        measured = parent;
      }
    }
  },

  async interfaceCounters(iface: string) {
    if (!INTERFACE_NAME.test(iface)) throw new Error(`${JSON.stringify(iface)} is not a network interface name`);
    const read = async (counter: string): Promise<number> => {
      const value = Number((await readFile(`/sys/class/net/${iface}/statistics/${counter}`, "utf8")).trim());
      if (!Number.isFinite(value)) throw new Error(`unreadable ${counter} counter of ${iface}`);
      return value;
    };
    const [rxBytes, txBytes] = await Promise.all([read("rx_bytes"), read("tx_bytes")]);
    return { rxBytes, txBytes };
  },
};
