import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { CheckSchema, type CheckConfig } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeHttpProbes, runCheck, statusMatches, uncheckableReason } from "../../src/checks/runners.js";
import { closedPort, execFileAsync, exited, notRunning, procState, spawnSleeper, startHttpServer, startSilentServer, waitFor } from "./helpers.js";

/** Builds a check the way the config loader would, with its defaults. */
const check = (input: Record<string, unknown>): CheckConfig => CheckSchema.parse(input);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mnha-checks-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("tcp check", () => {
  it("is ok when the port accepts a connection, and closes it", async () => {
    const server = await startSilentServer();
    try {
      const result = await runCheck(check({ kind: "tcp", port: server.port }));
      expect(result).toMatchObject({ ok: true, detail: `connected to 127.0.0.1:${server.port}` });
      expect(result.latencyMs).toBeGreaterThanOrEqual(0);
      expect(await waitFor(() => server.openSockets() === 0, 1_000)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("is not ok when nothing listens", async () => {
    const result = await runCheck(check({ kind: "tcp", port: await closedPort() }));
    expect(result).toMatchObject({ ok: false, detail: "connect ECONNREFUSED" });
  });
});

describe("http check", () => {
  let server: Awaited<ReturnType<typeof startHttpServer>>;
  beforeAll(async () => {
    server = await startHttpServer((req, res) => {
      const status = Number(new URL(req.url ?? "/", "http://x").searchParams.get("status") ?? "200");
      res.writeHead(status, { "content-type": "text/plain" });
      res.end("x".repeat(64 * 1024)); // a body larger than one chunk, read and dropped
    });
  });
  afterAll(() => server.close());

  it.each([
    { status: 200, expectStatus: undefined, ok: true, detail: "HTTP 200" },
    { status: 302, expectStatus: undefined, ok: true, detail: "HTTP 302" },
    { status: 500, expectStatus: undefined, ok: false, detail: "HTTP 500 (expected 2xx, 3xx)" },
    { status: 404, expectStatus: ["2xx", "4xx"], ok: true, detail: "HTTP 404" },
    { status: 503, expectStatus: [200, "2xx"], ok: false, detail: "HTTP 503 (expected 200, 2xx)" },
    { status: 204, expectStatus: [204], ok: true, detail: "HTTP 204" },
  ])("status $status against $expectStatus: ok=$ok", async ({ status, expectStatus, ok, detail }) => {
    const result = await runCheck(check({ kind: "http", url: `${server.url}?status=${status}`, ...(expectStatus ? { expectStatus } : {}) }));
    expect(result).toMatchObject({ ok, detail });
  });

  it("is not ok when the connection is refused", async () => {
    const result = await runCheck(check({ kind: "http", url: `http://127.0.0.1:${await closedPort()}/` }));
    expect(result).toMatchObject({ ok: false, detail: "connect ECONNREFUSED" });
  });

  it("times out on a server that accepts but never answers, and drops the connection", async () => {
    const silent = await startSilentServer();
    try {
      const started = performance.now();
      const result = await runCheck(check({ kind: "http", url: `http://127.0.0.1:${silent.port}/`, timeoutMs: 300 }));
      const took = performance.now() - started;
      expect(result).toMatchObject({ ok: false, detail: "timed out after 300 ms" });
      expect(took).toBeGreaterThanOrEqual(280);
      expect(took).toBeLessThan(1_500);
      expect(await waitFor(() => silent.openSockets() === 0, 1_000)).toBe(true);
    } finally {
      await silent.close();
    }
  });

  it("times out when the headers arrive but the body never ends", async () => {
    const stalled = await startHttpServer((_req, res) => {
      res.writeHead(200);
      res.write("partial");
    });
    try {
      const result = await runCheck(check({ kind: "http", url: stalled.url, timeoutMs: 300 }));
      expect(result).toMatchObject({ ok: false, detail: "timed out after 300 ms" });
    } finally {
      await stalled.close();
    }
  });

  it("ends early, not ok, when its signal aborts", async () => {
    const silent = await startSilentServer();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const started = performance.now();
      const result = await runCheck(check({ kind: "http", url: `http://127.0.0.1:${silent.port}/`, timeoutMs: 5_000 }), { signal: controller.signal });
      expect(result).toMatchObject({ ok: false, detail: "check aborted" });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await waitFor(() => silent.openSockets() === 0, 1_000)).toBe(true);
    } finally {
      await silent.close();
    }
  });

  describe("kept connection (issue 12)", () => {
    it("answers each check with a new request over one kept connection", async () => {
      const sockets = new Set<net.Socket>();
      const server = await startHttpServer((req, res) => {
        sockets.add(req.socket);
        res.end("ok");
      });
      try {
        for (let i = 0; i < 4; i++) expect(await runCheck(check({ kind: "http", url: server.url }))).toMatchObject({ ok: true, detail: "HTTP 200" });
        expect(server.hits()).toBe(4);
        expect(sockets.size).toBe(1);
      } finally {
        closeHttpProbes();
        await server.close();
      }
    });

    it("fails the next check at once when the service is gone, and passes again once it is back", async () => {
      const server = await startHttpServer((_req, res) => res.end("ok"));
      try {
        expect(await runCheck(check({ kind: "http", url: server.url }))).toMatchObject({ ok: true });
        await server.close();
        expect(await runCheck(check({ kind: "http", url: server.url }))).toMatchObject({ ok: false, detail: "connect ECONNREFUSED" });
        await server.reopen();
        expect(await runCheck(check({ kind: "http", url: server.url }))).toMatchObject({ ok: true, detail: "HTTP 200" });
      } finally {
        closeHttpProbes();
        await server.close();
      }
    });

    it("fails when the service stops answering on the kept connection (a hung service)", async () => {
      let answering = true;
      const server = await startHttpServer((_req, res) => {
        if (answering) res.end("ok");
      });
      try {
        expect(await runCheck(check({ kind: "http", url: server.url, timeoutMs: 300 }))).toMatchObject({ ok: true });
        answering = false;
        expect(await runCheck(check({ kind: "http", url: server.url, timeoutMs: 300 }))).toMatchObject({ ok: false, detail: "timed out after 300 ms" });
      } finally {
        closeHttpProbes();
        await server.close();
      }
    });

    it("tries a fresh connection once when the server dropped the kept one, so an idle close is not a failure", async () => {
      // Each connection answers its first request and resets on the second: every check after
      // the first finds its kept connection cut and must pass on a fresh one.
      const served = new WeakSet<net.Socket>();
      let resets = 0;
      const server = await startHttpServer((req, res) => {
        if (served.has(req.socket)) {
          resets += 1;
          req.socket.destroy();
          return;
        }
        served.add(req.socket);
        res.end("ok");
      });
      try {
        for (let i = 0; i < 3; i++) expect(await runCheck(check({ kind: "http", url: server.url }))).toMatchObject({ ok: true, detail: "HTTP 200" });
        expect(resets).toBe(2);
      } finally {
        closeHttpProbes();
        await server.close();
      }
    });
  });

  describe("https with a self-signed certificate", () => {
    let tls: https.Server;
    let port: number;
    beforeAll(async () => {
      const key = join(dir, "key.pem");
      const cert = join(dir, "cert.pem");
      await execFileAsync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"]);
      tls = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => res.end("ok"));
      await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", () => resolve()));
      port = (tls.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    });

    it("is refused unless insecure is set", async () => {
      const strict = await runCheck(check({ kind: "http", url: `https://127.0.0.1:${port}/` }));
      expect(strict.ok).toBe(false);
      expect(strict.detail).toMatch(/SELF_SIGNED|CERT/);
      const insecure = await runCheck(check({ kind: "http", url: `https://127.0.0.1:${port}/`, insecure: true }));
      expect(insecure).toMatchObject({ ok: true, detail: "HTTP 200" });
    });
  });
});

describe("statusMatches", () => {
  it.each([
    { status: 200, patterns: ["2xx"], matches: true },
    { status: 299, patterns: ["2xx"], matches: true },
    { status: 300, patterns: ["2xx"], matches: false },
    { status: 301, patterns: [200, "3xx"], matches: true },
    { status: 404, patterns: [404], matches: true },
    { status: 404, patterns: [403, "5xx"], matches: false },
  ])("$status against $patterns: $matches", ({ status, patterns, matches }) => {
    expect(statusMatches(status, patterns)).toBe(matches);
  });
});

describe("command check", () => {
  it("exit 0 is ok, anything else is not, with the first line of output", async () => {
    expect(await runCheck(check({ kind: "command", command: ["true"] }))).toMatchObject({ ok: true, detail: "exit 0" });
    expect(await runCheck(check({ kind: "command", command: ["false"] }))).toMatchObject({ ok: false, detail: "exit 1" });
    const failing = await runCheck(check({ kind: "command", command: [process.execPath, "-e", "process.stderr.write('\\ndb down: port 3306\\n'); process.exit(3)"], timeoutMs: 5_000 }));
    expect(failing).toMatchObject({ ok: false, detail: "exit 3: db down: port 3306" });
  });

  it("is not ok, with a clear reason, when the command does not exist; a restart of the service cannot fix that (never restored for it)", async () => {
    const result = await runCheck(check({ kind: "command", command: ["/nonexistent/mnha-check"] }));
    expect(result).toMatchObject({ ok: false, detail: "command not found: /nonexistent/mnha-check" });
    expect(result.notRestorable).toMatch(/^the check's program \/nonexistent\/mnha-check cannot be run \(not found\), and restarting the service cannot change that: fix the service's check\.command in the config/);
  });

  it("a shell that cannot find or run what the check runs (exit 127, 126) cannot be fixed by a restart either; any other failure can", async () => {
    const missing = await runCheck(check({ kind: "command", command: ["sh", "-c", "/nonexistent/curl -sf http://127.0.0.1:1/"], timeoutMs: 5_000 }));
    expect(missing).toMatchObject({ ok: false });
    expect(missing.detail).toMatch(/^exit 127: .*not found/);
    expect(missing.notRestorable).toMatch(/^the check's command exited 127 \(a program it runs was not found\), and restarting the service cannot change that/);
    const dir = mkdtempSync(join(tmpdir(), "mnha-check-"));
    try {
      const script = join(dir, "check.sh");
      writeFileSync(script, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
      const notExecutable = await runCheck(check({ kind: "command", command: ["sh", "-c", `"$1"`, "sh", script], timeoutMs: 5_000 }));
      expect(notExecutable.notRestorable).toMatch(/exited 126 \(a program it runs is not executable\)/);
      expect((await runCheck(check({ kind: "command", command: [script] }))).notRestorable).toMatch(/cannot be run \(EACCES\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await runCheck(check({ kind: "command", command: ["false"] }))).notRestorable).toBeUndefined();
    expect((await runCheck(check({ kind: "command", command: ["sh", "-c", "exit 3"] }))).notRestorable).toBeUndefined();
    // A check program of its own that exits 127 for a reason of its own (no shell's words for it): a restore may help.
    expect((await runCheck(check({ kind: "command", command: ["sh", "-c", "echo 'mn: service missing'; exit 127"] }))).notRestorable).toBeUndefined();
  });

  it("a spawn error of the host's (EAGAIN, ENOMEM, EMFILE) says nothing about the check: a restore is not held back for it", () => {
    for (const code of ["EAGAIN", "ENOMEM", "EMFILE"]) expect(uncheckableReason(["/usr/bin/mn-check"], { spawnError: code, exitCode: null, output: "" })).toBeNull();
    for (const code of ["ENOENT", "EACCES", "ENOEXEC", "ENOTDIR", "ELOOP"]) expect(uncheckableReason(["/usr/bin/mn-check"], { spawnError: code, exitCode: null, output: "" })).toMatch(/cannot be run/);
    expect(uncheckableReason(["docker", "exec", "mn", "mn-check"], { spawnError: null, exitCode: 127, output: 'OCI runtime exec failed: exec: "mn-check": executable file not found in $PATH' })).toMatch(/exited 127/);
  });

  it("caps what it keeps of a command's output", async () => {
    const result = await runCheck(check({ kind: "command", command: [process.execPath, "-e", "process.stdout.write('y'.repeat(1e6)); process.exit(1)"], timeoutMs: 5_000 }));
    expect(result.ok).toBe(false);
    expect(result.detail.length).toBeLessThan(200);
  });

  it("times out a command that never ends, and kills it and its children", async () => {
    const pids = join(dir, "sleeper.pids");
    const started = performance.now();
    // The shell writes its own pid and its background child's, then waits forever.
    const result = await runCheck(check({ kind: "command", command: ["sh", "-c", 'sleep 60 & echo $$ $! > "$1"; wait', "sh", pids], timeoutMs: 300 }));
    const took = performance.now() - started;
    expect(result).toMatchObject({ ok: false, detail: "timed out after 300 ms" });
    expect(took).toBeLessThan(1_500);
    const [shell, child] = readFileSync(pids, "utf8").trim().split(" ").map(Number);
    expect(shell).toBeGreaterThan(0);
    expect(child).toBeGreaterThan(0);
    expect(await waitFor(() => notRunning(shell as number) && notRunning(child as number), 2_000)).toBe(true);
  });
});

describe("systemd check", () => {
  it("is not ok for a unit that is not active, naming the unit", async () => {
    const result = await runCheck(check({ kind: "systemd", unit: "mnha-no-such-unit.service", timeoutMs: 5_000 }));
    expect(result.ok).toBe(false);
    expect(result.detail).toContain("mnha-no-such-unit.service");
    // A unit that is not active may be started by a restore: nothing says otherwise.
    expect(result.notRestorable).toBeUndefined();
  });

  it("on a host without systemctl: not ok, and a restart of the service cannot fix that", async () => {
    const path = process.env["PATH"];
    const empty = mkdtempSync(join(tmpdir(), "mnha-no-systemctl-"));
    process.env["PATH"] = empty;
    try {
      const result = await runCheck(check({ kind: "systemd", unit: "zstack.service", timeoutMs: 5_000 }));
      expect(result).toMatchObject({ ok: false, detail: "systemctl not found: cannot check unit zstack.service without systemd" });
      expect(result.notRestorable).toMatch(/^systemctl is not installed, so no systemd check can pass, and restarting the service cannot change that: use another check kind .* for zstack\.service/);
    } finally {
      process.env["PATH"] = path;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("process check by pid file", () => {
  it("is ok for a running process and not ok once it has exited", async () => {
    const pidFile = join(dir, "sleeper.pid");
    const sleeper = spawnSleeper();
    try {
      writeFileSync(pidFile, `${sleeper.pid}\n`);
      expect(await runCheck(check({ kind: "process", pidFile }))).toMatchObject({ ok: true, detail: `pid ${sleeper.pid} running` });
    } finally {
      sleeper.kill("SIGKILL");
      await exited(sleeper);
    }
    expect(await runCheck(check({ kind: "process", pidFile }))).toMatchObject({ ok: false, detail: `pid ${sleeper.pid} (from ${pidFile}) is not running` });
  });

  it("is not ok for a zombie", async () => {
    // A child that exits at once under a parent that never waits for it. Not `sh -c "sleep 0 &
    // exec sleep 30"`: a shell that sees the child exit before its exec reaps it, and the check
    // then (rightly) says "not running". perl (perl-base is Essential on Debian) reaps nothing.
    const parent = spawn("perl", ["-e", '$| = 1; my $child = fork(); exit 0 if $child == 0; print "$child\n"; sleep 30;'], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const zombiePid = await new Promise<number>((resolve) => parent.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
      expect(await waitFor(() => procState(zombiePid) === "Z", 2_000)).toBe(true);
      const pidFile = join(dir, "zombie.pid");
      writeFileSync(pidFile, String(zombiePid));
      expect(await runCheck(check({ kind: "process", pidFile }))).toMatchObject({ ok: false, detail: `pid ${zombiePid} (from ${pidFile}) is a zombie` });
    } finally {
      parent.kill("SIGKILL");
      await exited(parent);
    }
  });

  it.each([
    { name: "missing", content: null, detail: "does not exist" },
    { name: "garbage", content: "not-a-pid\n", detail: "holds no pid" },
    { name: "zero", content: "0", detail: "holds no pid" },
  ])("is not ok for a $name pid file", async ({ name, content, detail }) => {
    const pidFile = join(dir, `${name}.pid`);
    if (content !== null) writeFileSync(pidFile, content);
    const result = await runCheck(check({ kind: "process", pidFile }));
    expect(result.ok).toBe(false);
    expect(result.detail).toContain(detail);
  });
});

describe("process check by name", () => {
  it("finds a process by its exact name, and not once it is gone", async () => {
    // A copy of sleep under a name nothing else on this host has.
    const name = `mnhat${randomBytes(4).toString("hex")}`;
    const binary = join(dir, name);
    copyFileSync("/usr/bin/sleep", binary);
    chmodSync(binary, 0o755);
    const sleeper = spawnSleeper(binary);
    try {
      await waitFor(() => procState(sleeper.pid as number) !== "gone");
      expect(await runCheck(check({ kind: "process", name, timeoutMs: 5_000 }))).toMatchObject({ ok: true, detail: `${name} running as pid ${sleeper.pid}` });
      // A prefix is not a match.
      expect(await runCheck(check({ kind: "process", name: name.slice(0, -1), timeoutMs: 5_000 }))).toMatchObject({ ok: false });
    } finally {
      sleeper.kill("SIGKILL");
      await exited(sleeper);
    }
    expect(await runCheck(check({ kind: "process", name, timeoutMs: 5_000 }))).toMatchObject({ ok: false, detail: `no process named ${name}` });
  });
});
