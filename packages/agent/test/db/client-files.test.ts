import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MnhaError } from "@mnha/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clientOptionFiles, OPTION_FILES_PREFIX } from "../../src/db/client-files.js";
import { sweepLeftovers } from "../../src/util/temp-files.js";

// Each test gets its own TMPDIR (os.tmpdir() reads it on every call), so the sweep is tested
// without touching the machine's /tmp.
let base = "";
let savedTmpdir: string | undefined;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "mnha-client-files-test-"));
  savedTmpdir = process.env["TMPDIR"];
  process.env["TMPDIR"] = base;
});

afterEach(() => {
  if (savedTmpdir === undefined) delete process.env["TMPDIR"];
  else process.env["TMPDIR"] = savedTmpdir;
  rmSync(base, { recursive: true, force: true });
});

/** A pid that ran and is gone (not reused within the test, on any sane pid allocator). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

const dirsIn = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("mnha-db-")).sort();

describe("MariaDB client option files", () => {
  it("are 0600 in a 0700 directory named for this process, which remove() takes away", () => {
    const files = clientOptionFiles();
    const cnf = files.write("peer", "mnha_repl", 'pa"ss\\word');
    expect(cnf.startsWith(join(base, `mnha-db-${process.pid}-`))).toBe(true);
    expect(statSync(cnf).mode & 0o777).toBe(0o600);
    expect(statSync(join(cnf, "..")).mode & 0o777).toBe(0o700);
    expect(readFileSync(cnf, "utf8")).toBe('[client]\nuser="mnha_repl"\npassword="pa\\"ss\\\\word"\n');
    files.remove();
    expect(dirsIn(base)).toEqual([]);
  });

  it("a process that exits through process.exit (a CLI interrupted with Ctrl-C) takes its directory with it", () => {
    const module = resolve(__dirname, "../../src/db/client-files.ts");
    const script = `import { clientOptionFiles } from ${JSON.stringify(module)}; const f = clientOptionFiles(); f.write("local", "root", "secret"); process.stdout.write("written"); process.exit(130);`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, TMPDIR: base } });
    expect(child.stdout).toBe("written");
    expect(child.status).toBe(130);
    expect(dirsIn(base)).toEqual([]);
  });

  /** Runs a child that makes option files, then runs `then`; returns it once it printed "written". */
  function childWithFiles(then: string): ChildProcess {
    const module = resolve(__dirname, "../../src/db/client-files.ts");
    const script = `import { clientOptionFiles } from ${JSON.stringify(module)}; ${then}; const f = clientOptionFiles(); f.write("local", "root", "secret"); process.stdout.write("written"); setInterval(() => undefined, 1000);`;
    return spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, TMPDIR: base }, stdio: ["ignore", "pipe", "inherit"] });
  }

  async function written(child: ChildProcess): Promise<string> {
    let out = "";
    child.stdout!.setEncoding("utf8");
    await new Promise<void>((resolveWritten, reject) => {
      child.stdout!.on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("written")) resolveWritten();
      });
      child.once("exit", () => reject(new Error(`the child exited before writing: ${out}`)));
    });
    return out;
  }

  const exitOf = (child: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once("exit", (code, signal) => done({ code, signal })));

  it("a signal that ends the process (SIGTERM, Ctrl-C's SIGINT) takes the directory first, and still ends it", async () => {
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
      const child = childWithFiles("");
      await written(child);
      expect(dirsIn(base)).toHaveLength(1);
      const exited = exitOf(child);
      child.kill(signal);
      expect(await exited).toEqual({ code: null, signal });
      expect(dirsIn(base), signal).toEqual([]);
    }
  });

  it("a process with its own handler keeps it: the signal runs that handler once, and its exit takes the directory", async () => {
    const child = childWithFiles(`let calls = 0; process.on("SIGTERM", () => { calls += 1; setTimeout(() => { process.stdout.write(" graceful " + calls); process.exit(0); }, 100); })`);
    let out = await written(child);
    child.stdout!.on("data", (chunk: string) => (out += chunk));
    const exited = exitOf(child);
    child.kill("SIGTERM");
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(out).toBe("written graceful 1");
    expect(dirsIn(base)).toEqual([]);
  });

  it("a signal the process ignores (the agent's SIGHUP) leaves the directory to the operation still using it", async () => {
    const child = childWithFiles(`process.on("SIGHUP", () => undefined)`);
    await written(child);
    child.kill("SIGHUP");
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBeNull();
    expect(dirsIn(base)).toHaveLength(1);
    const exited = exitOf(child);
    child.kill("SIGKILL");
    await exited;
    // kill -9 leaves it; the next user sweeps it.
    expect(dirsIn(base)).toHaveLength(1);
    expect(sweepLeftovers(OPTION_FILES_PREFIX)).toHaveLength(1);
    expect(dirsIn(base)).toEqual([]);
  });

  it("a temporary directory that cannot take them is a clear error with the fix, not an unexpected one", () => {
    process.env["TMPDIR"] = join(base, "missing");
    let thrown: unknown = null;
    try {
      clientOptionFiles();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MnhaError);
    expect(thrown).toMatchObject({ code: "OPERATION_FAILED" });
    expect((thrown as MnhaError).message).toMatch(/^cannot write the MariaDB client's option files in .*\/missing \(ENOENT\)$/);
    expect((thrown as MnhaError).hint).toMatch(/it must exist and be writable by root.*TMPDIR/);
  });

  it("the next one sweeps away the directories of processes that are gone (kill -9), keeps live ones, and old-style ones only once a day old", () => {
    const dead = join(base, `mnha-db-${deadPid()}-AbC123`);
    const live = join(base, `mnha-db-${process.pid}-XyZ789`);
    const legacyOld = join(base, "mnha-db-Qw3rTy");
    const legacyNew = join(base, "mnha-db-As4dFg");
    const unrelated = join(base, "mnha-dbx-keep");
    for (const dir of [dead, live, legacyOld, legacyNew, unrelated]) {
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, "local.cnf"), "[client]\npassword=secret\n", { mode: 0o600 });
    }
    const twoDaysAgo = (Date.now() - 48 * 3_600_000) / 1000;
    utimesSync(legacyOld, twoDaysAgo, twoDaysAgo);

    const files = clientOptionFiles();
    const made = join(files.write("peer", "u", null), "..");
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(legacyOld)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(legacyNew)).toBe(true);
    expect(existsSync(unrelated)).toBe(true);
    expect(existsSync(made)).toBe(true);
    files.remove();
    // Nothing left to sweep: this process's own leftover is alive, the new legacy one is young.
    expect(sweepLeftovers(OPTION_FILES_PREFIX)).toEqual([]);
  });
});
