import { spawn, type ChildProcess } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMnhaError } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { acquireInstanceLock } from "../../src/daemon/instance-lock.js";

const CHILD = fileURLToPath(new URL("./lock-child.ts", import.meta.url));
const TSCONFIG = fileURLToPath(new URL("./tsconfig.child.json", import.meta.url));

interface ChildReport {
  locked: boolean;
  pid?: number;
  code?: string;
  message?: string;
  hint?: string;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mnha-lock-"));
  dirs.push(dir);
  return dir;
}

/** Starts lock-child.ts and resolves with its report line and the process. */
async function lockInChild(dataDir: string): Promise<{ child: ChildProcess; report: ChildReport; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir], {
    env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stdout = "";
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lock-child printed nothing in 20 s: ${stderr}`)), 20_000);
    child.stdout?.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
      const newline = stdout.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    void exit.then(() => {
      if (!stdout.includes("\n")) {
        clearTimeout(timer);
        reject(new Error(`lock-child exited without a report: ${stderr}`));
      }
    });
  });
  return { child, report: JSON.parse(line) as ChildReport, exit };
}

describe("acquireInstanceLock", () => {
  it("a second process for the same data dir is refused with AGENT_ALREADY_RUNNING naming the holder's pid", async () => {
    const dataDir = join(tempDir(), "data");
    const first = await lockInChild(dataDir);
    expect(first.report).toEqual({ locked: true, pid: first.child.pid });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, "agent.lock")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dataDir, "agent.lock"), "utf8")).toBe(`${first.child.pid}\n`);

    const second = await lockInChild(dataDir);
    expect(second.report.locked).toBe(false);
    expect(second.report.code).toBe("AGENT_ALREADY_RUNNING");
    expect(second.report.message).toContain(dataDir);
    expect(second.report.message).toContain(`pid ${first.child.pid}`);
    expect(second.report.hint).toMatch(/only one agent/);
    expect(await second.exit).toBe(3);
    // The refused process changed nothing: the holder's pid is still in the file.
    expect(readFileSync(join(dataDir, "agent.lock"), "utf8")).toBe(`${first.child.pid}\n`);
  }, 60_000);

  it("the lock is free again once its holder is SIGKILLed", async () => {
    const dataDir = tempDir();
    const first = await lockInChild(dataDir);
    expect(first.report.locked).toBe(true);
    first.child.kill("SIGKILL");
    await first.exit;
    const next = await lockInChild(dataDir);
    expect(next.report).toEqual({ locked: true, pid: next.child.pid });
    expect(readFileSync(join(dataDir, "agent.lock"), "utf8")).toBe(`${next.child.pid}\n`);
  }, 60_000);

  it("release() frees the lock within the same process, and taking it twice in one process is refused too", () => {
    const dataDir = tempDir();
    const lock = acquireInstanceLock(dataDir);
    // flock locks are per open file description: a second open in the same process conflicts.
    expect(() => acquireInstanceLock(dataDir)).toThrow(/already running/);
    lock.release();
    lock.release(); // idempotent
    const again = acquireInstanceLock(dataDir);
    again.release();
  });

  it("refuses a symbolic link planted as the lock file (AGENT_LOCK), without following it", () => {
    const dataDir = tempDir();
    const target = join(dataDir, "elsewhere");
    writeFileSync(target, "keep\n");
    symlinkSync(target, join(dataDir, "agent.lock"));
    let caught: unknown = null;
    try {
      acquireInstanceLock(dataDir);
    } catch (error) {
      caught = error;
    }
    expect(isMnhaError(caught) && caught.code).toBe("AGENT_LOCK");
    expect(isMnhaError(caught) && caught.hint).toMatch(/symbolic link/);
    expect(readFileSync(target, "utf8")).toBe("keep\n");
    expect(lstatSync(join(dataDir, "agent.lock")).isSymbolicLink()).toBe(true);
  });

  it("says clearly when flock is missing (AGENT_LOCK)", () => {
    const dataDir = tempDir();
    expect(() => acquireInstanceLock(dataDir, { flockBinary: "/nonexistent/flock" })).toThrow(/cannot lock .*agent\.lock/);
  });

  it("a lock file removed by hand is locked again by keepAtPath (a second agent still refused); a new file another process locked first is reported as taken", () => {
    const dataDir = tempDir();
    const lock = acquireInstanceLock(dataDir);
    expect(lock.keepAtPath()).toBe("kept");
    rmSync(join(dataDir, "agent.lock"));
    expect(lock.keepAtPath()).toBe("relocked");
    expect(readFileSync(join(dataDir, "agent.lock"), "utf8").trim()).toBe(String(process.pid));
    expect(() => acquireInstanceLock(dataDir)).toThrow(/already running/);
    expect(lock.keepAtPath()).toBe("kept");
    // Removed again, and a second agent got to the new file first.
    rmSync(dataDir, { recursive: true });
    const second = acquireInstanceLock(dataDir);
    expect(lock.keepAtPath()).toBe("taken");
    second.release();
    expect(lock.keepAtPath()).toBe("relocked");
    lock.release();
    const again = acquireInstanceLock(dataDir);
    again.release();
  });
});
