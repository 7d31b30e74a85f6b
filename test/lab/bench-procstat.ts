/**
 * What a process costs, from /proc: resident memory (VmRSS) and CPU time (utime + stime of
 * the process and of its reaped children: the agent's pings and arpings, keepalived's
 * track scripts), turned into "% of one core" over a window.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface ProcessSample {
  pid: number;
  /** What the process is for, e.g. "agent", "lease-guard", "keepalived". */
  role: string;
  /** CPU clock ticks: utime + stime + cutime + cstime. */
  ticks: number;
  /** Of which the reaped children's (cutime + cstime). */
  childTicks: number;
  rssKb: number;
}

let clockTicksPerSecond: number | null = null;

/** sysconf(_SC_CLK_TCK), almost always 100. */
export function clockTicks(): number {
  if (clockTicksPerSecond === null) {
    try {
      clockTicksPerSecond = Number.parseInt(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5_000 }).trim(), 10) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** CPU ticks of the process and of its reaped children; null when it is gone. */
export function cpuTicks(pid: number): { total: number; children: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" closing the command name: state is field 3, utime field 14.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const at = (field: number) => Number.parseInt(fields[field - 3] ?? "0", 10);
    return { total: at(14) + at(15) + at(16) + at(17), children: at(16) + at(17) };
  } catch {
    return null;
  }
}

/** A "Name:   1234 kB" line of a /proc file (status, smaps_rollup), in kB; null when missing. */
function kbField(text: string, name: string): number | null {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(text);
  return match ? Number.parseInt(match[1] as string, 10) : null;
}

export function rssKb(pid: number): number | null {
  try {
    return kbField(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS");
  } catch {
    return null;
  }
}

export function sampleProcesses(processes: readonly { pid: number; role: string }[]): ProcessSample[] {
  const samples: ProcessSample[] = [];
  for (const { pid, role } of processes) {
    const ticks = cpuTicks(pid);
    const rss = rssKb(pid);
    if (ticks !== null && rss !== null) samples.push({ pid, role, ticks: ticks.total, childTicks: ticks.children, rssKb: rss });
  }
  return samples;
}

export interface RoleCost {
  role: string;
  processes: number;
  /** Resident memory at the end of the window, summed over the role's processes. */
  rssMb: number;
  /** CPU over the window, % of one core, summed over the role's processes. */
  cpuPercent: number;
  /** Of which their reaped children (the agent's pings, keepalived's scripts). */
  childCpuPercent: number;
}

/**
 * Per role: the CPU used between two samples (processes present in both) and the memory at
 * the second. Processes that died in between are left out (their CPU is lost, not invented).
 */
export function costBetween(first: readonly ProcessSample[], second: readonly ProcessSample[], seconds: number): RoleCost[] {
  const roles = [...new Set(second.map((s) => s.role))];
  return roles.map((role) => {
    const now = second.filter((s) => s.role === role);
    let ticks = 0;
    let childTicks = 0;
    for (const sample of now) {
      const before = first.find((f) => f.pid === sample.pid);
      if (!before) continue;
      ticks += sample.ticks - before.ticks;
      childTicks += sample.childTicks - before.childTicks;
    }
    const percent = (t: number) => (seconds > 0 ? (t / clockTicks() / seconds) * 100 : 0);
    return { role, processes: now.length, rssMb: now.reduce((sum, s) => sum + s.rssKb, 0) / 1024, cpuPercent: percent(ticks), childCpuPercent: percent(childTicks) };
  });
}

/**
 * Where a process's resident memory is, from /proc/PID/smaps_rollup: its private pages (heaps,
 * buffers, stacks: what it costs the machine alone) and the shared ones (for an agent, mostly
 * the node binary's and the libraries' file pages, which every Node.js process on the host maps
 * and RSS counts in full in each), and PSS (shared pages divided among the processes mapping
 * them). Null when the process is gone or the kernel has no smaps_rollup.
 */
export interface MemorySplit {
  rssKb: number;
  privateKb: number;
  sharedKb: number;
  pssKb: number;
}

export function memorySplit(pid: number): MemorySplit | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  } catch {
    return null;
  }
  const rss = kbField(text, "Rss");
  const pss = kbField(text, "Pss");
  const privateClean = kbField(text, "Private_Clean");
  const privateDirty = kbField(text, "Private_Dirty");
  if (rss === null || pss === null || privateClean === null || privateDirty === null) return null;
  const privateKb = privateClean + privateDirty;
  return { rssKb: rss, privateKb, sharedKb: rss - privateKb, pssKb: pss };
}

/** A Node.js process's main-thread heap as prom-client's default metrics report it (process.memoryUsage()). */
export interface HeapFigures {
  usedMb: number;
  totalMb: number;
  externalMb: number;
}

/**
 * The heap figures in a Prometheus exposition from prom-client's default metrics; null when
 * one is missing. Only unlabelled samples match: nodejs_heap_space_size_used_bytes{space=…}
 * and the like are other metrics.
 */
export function heapFromMetrics(exposition: string): HeapFigures | null {
  const mb = (name: string): number | null => {
    const match = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(exposition);
    const value = match ? Number(match[1]) : Number.NaN;
    return Number.isFinite(value) ? value / 1024 / 1024 : null;
  };
  const usedMb = mb("nodejs_heap_size_used_bytes");
  const totalMb = mb("nodejs_heap_size_total_bytes");
  const externalMb = mb("nodejs_external_memory_bytes");
  return usedMb !== null && totalMb !== null && externalMb !== null ? { usedMb, totalMb, externalMb } : null;
}
