import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "@mnha/shared";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LeaseGuard } from "../../src/keepalived/lease-guard.js";
import { defaultScriptsDir } from "../../src/keepalived/paths.js";
import { processAlive } from "../../src/util/process-alive.js";
import { runCommand } from "../../src/net/command.js";
import { waitUntil } from "../net/netns-lab.js";
import { tempDataDir } from "./helpers.js";

const GUARD = join(defaultScriptsDir(), "mnha-lease-guard");
const CHECK = join(defaultScriptsDir(), "mnha-lease-check");
const dir = tempDataDir("lease");
const children: ChildProcessWithoutNullStreams[] = [];
let counter = 0;

function leaseFile(): string {
  counter += 1;
  const file = join(dir, `lease-${counter}`);
  writeFileSync(file, "1\n");
  return file;
}

const read = (file: string): string => readFileSync(file, "utf8").trim();

function startGuard(file: string, timeout: string): ChildProcessWithoutNullStreams {
  const child = spawn(GUARD, [file, timeout]);
  children.push(child);
  return child;
}

function exitOf(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the shipped scripts", () => {
  it("are executable and writable by their owner only (keepalived's script security)", () => {
    for (const script of [GUARD, CHECK]) {
      const stat = statSync(script);
      expect(stat.mode & 0o777).toBe(0o755);
      expect(stat.uid).toBe(0);
    }
  });
});

describe("mnha-lease-guard", () => {
  it("keeps the lease fresh while renewals arrive, stale when they stop, fresh again on renewal", async () => {
    const file = leaseFile();
    const guard = startGuard(file, "0.3");
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();

    // Renewals every 100 ms for 900 ms (three timeouts' worth): never stale.
    for (let i = 0; i < 9; i += 1) {
      await sleep(100);
      expect(read(file)).toBe("0");
      guard.stdin.write("renew\n");
    }

    // Silence: stale after about 0.3 s.
    const started = performance.now();
    expect(await waitUntil(() => read(file) === "1", 2_000, 5)).not.toBeNull();
    const staleAfter = performance.now() - started;
    expect(staleAfter).toBeGreaterThan(200);
    expect(staleAfter).toBeLessThan(900);
    // It keeps reading after a timeout.
    expect(guard.exitCode).toBeNull();

    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 1_000, 5)).not.toBeNull();

    // The agent's end of the pipe closes (the agent died): stale, and the guard exits.
    guard.stdin.end();
    expect(await exitOf(guard)).toBe(0);
    expect(read(file)).toBe("1");
    expect(existsSync(`${file}.guard.pid`)).toBe(false);
  });

  it("marks the lease stale on SIGTERM", async () => {
    const file = leaseFile();
    const guard = startGuard(file, "5");
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();
    guard.kill("SIGTERM");
    await exitOf(guard);
    expect(read(file)).toBe("1");
  });

  it("rewrites the lease if someone else changed it (keepalived's init_file on restart)", async () => {
    const file = leaseFile();
    const guard = startGuard(file, "5");
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();
    writeFileSync(file, "1\n");
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();
  });

  it("refuses bad arguments", async () => {
    for (const args of [[], ["relative", "1"], [join(dir, "x"), "0"], [join(dir, "x"), "abc"], [join(dir, "nodir", "x"), "1"]]) {
      const result = await runCommand([GUARD, ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/mnha-lease-guard/);
    }
  });
});

// libfaketime (Debian's faketime package) makes the guard's bash see a wall clock that runs ten
// times too fast, so every read -t it starts "times out" at once, as one does when NTP or
// date -s steps the clock forward. bash replaces getenv(), which hides FAKETIME from the
// library, so its spec is given the one other way it reads: /etc/faketimerc, written only
// for this test and read only by processes that preload the library.
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const FAKETIMERC = "/etc/faketimerc";

describe("mnha-lease-guard under wall-clock steps", () => {
  afterEach(() => rmSync(FAKETIMERC, { force: true }));

  it("a wall clock that jumps ahead never makes a renewed lease stale, and silence is still caught on time", async () => {
    expect(existsSync(LIBFAKETIME), `${LIBFAKETIME} is missing: apt-get install faketime (scripts/bootstrap.sh does)`).toBe(true);
    expect(existsSync(FAKETIMERC), `${FAKETIMERC} exists already: this test will not overwrite it`).toBe(false);
    writeFileSync(FAKETIMERC, "+0 x10\n");
    const file = leaseFile();
    const guard = spawn(GUARD, [file, "0.6"], { env: { ...process.env, LD_PRELOAD: LIBFAKETIME } });
    children.push(guard);
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();

    // Renewals every 100 ms for 2 s: the lease is read every 5 ms and must never say stale.
    const seen = new Set<string>();
    let renewals = 0;
    const renewing = setInterval(() => {
      guard.stdin.write("\n");
      renewals += 1;
    }, 100);
    const until = performance.now() + 2_000;
    while (performance.now() < until) {
      seen.add(read(file));
      await sleep(5);
    }
    clearInterval(renewing);
    expect(renewals).toBeGreaterThanOrEqual(15);
    expect([...seen]).toEqual(["0"]);

    // Silence: stale after the timeout measured on the real clock, not a tenth of it.
    const silentFrom = performance.now();
    expect(await waitUntil(() => read(file) === "1", 3_000, 5)).not.toBeNull();
    const staleAfter = performance.now() - silentFrom;
    expect(staleAfter).toBeGreaterThan(450);
    expect(staleAfter).toBeLessThan(1_500);
    expect(guard.exitCode).toBeNull();
  });
});

describe("mnha-lease-check", () => {
  it("passes only while the guard of this very lease file is alive", async () => {
    const file = leaseFile();
    const check = async (f = file) => (await runCommand([CHECK, f])).code;
    expect(await check()).toBe(1); // no guard

    const guard = startGuard(file, "5");
    guard.stdin.write("\n");
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();
    expect(await check()).toBe(0);
    // Another lease file's check is not fooled by this guard (pid file copied over).
    const other = leaseFile();
    writeFileSync(`${other}.guard.pid`, readFileSync(`${file}.guard.pid`));
    expect(await check(other)).toBe(1);

    // A guard killed with SIGKILL cannot mark the lease stale (it still says 0): the check fails.
    guard.kill("SIGKILL");
    await exitOf(guard);
    expect(read(file)).toBe("0");
    expect(await check()).toBe(1);
    expect((await runCommand([CHECK])).code).toBe(2);
  });
});

describe("LeaseGuard (the driver's handle on the script)", () => {
  it("renews, respawns a killed guard, and marks the lease stale on stop", async () => {
    const file = leaseFile();
    const guard = new LeaseGuard({ script: GUARD, leaseFile: file, leaseMs: 400, logger: silentLogger(), respawnDelayMs: 50 });
    guard.start();
    const firstPid = guard.pid();
    expect(firstPid).not.toBeNull();
    guard.renew();
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();

    // Detached: its own process group, so a kill of the agent's group does not reach it.
    const pgid = (await runCommand(["ps", "-o", "pgid=", "-p", String(firstPid)])).stdout.trim();
    expect(pgid).toBe(String(firstPid));

    process.kill(firstPid as number, "SIGKILL");
    expect(await waitUntil(() => guard.pid() !== null && guard.pid() !== firstPid, 2_000)).not.toBeNull();
    expect(guard.respawns()).toBe(1);
    guard.renew();
    expect(await waitUntil(() => read(file) === "0", 5_000)).not.toBeNull();

    const lastPid = guard.pid() as number;
    await guard.stop();
    expect(read(file)).toBe("1");
    expect(processAlive(lastPid)).toBe(false);
    expect(guard.pid()).toBeNull();
    guard.renew(); // after stop: a no-op, not a throw
  });
});

describe("LeaseGuard: a guard that dies is said in the audit, once per run of young deaths", () => {
  it("the first death and one young death after it are told (how it exited, how long it lived); more young deaths are only logged", async () => {
    const file = leaseFile();
    const told: string[] = [];
    const guard = new LeaseGuard({ script: GUARD, leaseFile: file, leaseMs: 400, logger: silentLogger(), respawnDelayMs: 20, onRespawn: (detail) => told.push(detail) });
    guard.start();
    try {
      for (let death = 1; death <= 4; death++) {
        const pid = guard.pid() as number;
        process.kill(pid, "SIGKILL");
        expect(await waitUntil(() => guard.pid() !== null && guard.pid() !== pid, 5_000), `respawn ${death}`).not.toBeNull();
      }
      expect(guard.respawns()).toBe(4);
      // All four lived under 10 s: the first and the second are told, the next two are not.
      expect(told).toHaveLength(2);
      expect(told[0]).toMatch(/^the lease guard exited on SIGKILL after \d+\.\d s, within 10 s of its start; started it again/);
      expect(told[1]).toMatch(/within 10 s of its start; started it again, .*said again only once one has run 10 s/);
    } finally {
      await guard.stop();
    }
  });
});

describe("mnha-lease-guard owns its pid file", () => {
  it("a second guard for the same lease file exits 3 and leaves the first guard's pid file alone", async () => {
    const file = leaseFile();
    const first = startGuard(file, "5");
    first.stdin.write("\n");
    expect(await waitUntil(() => existsSync(`${file}.guard.pid`) && read(`${file}.guard.pid`) === String(first.pid), 10_000)).not.toBeNull();
    const second = startGuard(file, "5");
    let stderr = "";
    second.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    expect(await exitOf(second)).toBe(3);
    expect(stderr).toMatch(/another guard \(pid \d+\) already keeps/);
    expect(read(`${file}.guard.pid`)).toBe(String(first.pid));
    expect((await runCommand([CHECK, file])).code).toBe(0);
    expect(read(file)).toBe("0");
  });

  it("leaves a pid file naming another process in place when it exits", async () => {
    const file = leaseFile();
    const guard = startGuard(file, "5");
    guard.stdin.write("\n");
    expect(await waitUntil(() => existsSync(`${file}.guard.pid`), 10_000)).not.toBeNull();
    writeFileSync(`${file}.guard.pid`, "999999\n");
    guard.stdin.end();
    expect(await exitOf(guard)).toBe(0);
    expect(read(`${file}.guard.pid`)).toBe("999999");
  });
});
