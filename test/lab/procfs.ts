/**
 * Process facts read from /proc and `ip netns pids`. Node built-ins only, so that teardown
 * works even when the workspace packages are not built.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie still answers kill(0) but is gone for our purposes.
  return processState(pid) !== "Z";
}

export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the command name, which sits in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) || null;
  } catch {
    return null;
  }
}

/** The parent pid (field 4 of /proc/PID/stat), null when the process is gone. */
export function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "", 10);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

export function readCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part) => part.length > 0);
  } catch {
    return [];
  }
}

export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

export function netnsOf(pid: number | "self"): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

export function readPidFile(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Pids of every process in a named namespace. Never returns a process that shares our own
 * network namespace, so a misnamed namespace can never make the lab kill host processes.
 */
export function namespacePids(namespace: string): Promise<number[]> {
  return new Promise((resolvePids) => {
    execFile("ip", ["netns", "pids", namespace], { timeout: 5_000, encoding: "utf8" }, (error, stdout) => {
      if (error) return resolvePids([]);
      const ownNetns = netnsOf("self");
      const pids = stdout
        .split("\n")
        .map((line) => Number.parseInt(line.trim(), 10))
        .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid && netnsOf(pid) !== ownNetns);
      resolvePids(pids);
    });
  });
}

/** Sends a signal; a process that is already gone is not an error. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Every thread of the process stopped by SIGSTOP (false when it is gone). */
export function allThreadsStopped(pid: number): boolean {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.length > 0 && tasks.every((tid) => ["T", "t"].includes(processState(Number(tid)) ?? ""));
  } catch {
    return false;
  }
}

/**
 * SIGKILLs a group of processes as one crash: every one is frozen (SIGSTOP, and seen stopped:
 * kill() only queues it, and a busy machine runs the process on until one of its threads takes
 * it) before any dies, so none sees another's death first. keepalived's VRRP child, for one,
 * stops cleanly and removes the VIP when its parent dies; killed one after the other it
 * sometimes won that race. Returns the pids that were not seen stopped within 2 s (killed all the same).
 */
export async function killTogether(pids: readonly number[]): Promise<number[]> {
  for (const pid of pids) signal(pid, "SIGSTOP");
  const running = await stillPending(pids, (pid) => isAlive(pid) && !allThreadsStopped(pid), 2_000, 5);
  for (const pid of pids) signal(pid, "SIGKILL");
  return running;
}

/** Re-checks `pending` every `stepMs` until no pid is pending or `timeoutMs` has passed; returns those still pending. */
async function stillPending(pids: readonly number[], pending: (pid: number) => boolean, timeoutMs: number, stepMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(pending);
  for (let round = 0; left.length > 0 && round < Math.ceil(timeoutMs / stepMs) + 1 && Date.now() < deadline; round++) {
    await new Promise((r) => setTimeout(r, stepMs));
    left = left.filter(pending);
  }
  return left;
}

/** Waits (bounded) until every pid has exited. Returns the pids still alive. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  return stillPending(pids, isAlive, timeoutMs, 20);
}

/**
 * TCP ports a process's network namespace listens on, read from /proc/PID/net/tcp (which
 * shows the sockets of that process's namespace, so no `ip netns exec` is needed).
 */
export function listeningTcpPorts(pid: number): Set<number> {
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (fields[3] !== "0A" || local === undefined) continue; // 0A: LISTEN
      const port = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      if (Number.isInteger(port)) ports.add(port);
    }
  }
  return ports;
}

/**
 * Waits (bounded) until every pid is reaped, not only dead: a zombie still "exists" for
 * programs that check a pid file with kill(pid, 0) (keepalived's "daemon is already
 * running"). An orphan is reaped by init, which in some containers takes a second or two.
 */
export async function waitReaped(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  return stillPending(pids, (pid) => existsSync(`/proc/${pid}`), timeoutMs, 50);
}
