import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { promisify } from "node:util";

/** Test helpers: loopback servers and process probes. Everything listens on 127.0.0.1 only. */

export const execFileAsync = promisify(execFile);

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `condition` holds, at most `timeoutMs`; false if it never did. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 3_000, stepMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await sleep(stepMs);
  }
  return condition();
}

export interface TestHttpServer {
  port: number;
  url: string;
  /** Requests served so far. */
  hits(): number;
  close(): Promise<void>;
  /** Listens again on the same port (after close). */
  reopen(): Promise<void>;
  listening(): boolean;
}

export async function startHttpServer(handler: http.RequestListener, port = 0): Promise<TestHttpServer> {
  let hits = 0;
  let server: http.Server | null = null;
  let boundPort = port;
  const listen = async () => {
    const created = http.createServer((req, res) => {
      hits += 1;
      handler(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      created.once("error", reject);
      created.listen(boundPort, "127.0.0.1", () => resolve());
    });
    boundPort = (created.address() as net.AddressInfo).port;
    server = created;
  };
  await listen();
  return {
    get port() {
      return boundPort;
    },
    get url() {
      return `http://127.0.0.1:${boundPort}/`;
    },
    hits: () => hits,
    listening: () => server !== null,
    reopen: listen,
    close: async () => {
      const current = server;
      server = null;
      if (current === null) return;
      current.closeAllConnections();
      await new Promise<void>((resolve) => current.close(() => resolve()));
    },
  };
}

/** A TCP server that accepts connections and never says anything (a hung service). */
export async function startSilentServer(): Promise<{ port: number; openSockets(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    // Read and ignore the request, so the client's FIN is seen and the socket closes.
    socket.resume();
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    openSockets: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The process state letter from /proc/PID/stat, or "gone". */
export function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
}

/**
 * Every thread of the process stopped (SIGSTOP took effect). kill() only queues the signal: a
 * busy machine can run the process on for a while before one of its threads takes it.
 */
export function allThreadsStopped(pid: number): boolean {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.length > 0 && tasks.every((tid) => ["T", "t"].includes(procState(Number(tid))));
  } catch {
    return false;
  }
}

/** Gone, or a zombie waiting for a reaper: either way it no longer runs. */
export function notRunning(pid: number): boolean {
  const state = procState(pid);
  return state === "gone" || state === "Z" || state === "X";
}

export function spawnSleeper(file = "sleep", seconds = 30): ChildProcess {
  const child = spawn(file, [String(seconds)], { stdio: "ignore" });
  child.on("error", () => undefined);
  return child;
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}
