import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ControlClient, controlConnectionError } from "../../src/control/control-client.js";
import { ControlServer } from "../../src/control/control-server.js";
import { capturingLogger, FakeHandlers, sampleEvents, sampleStatus, tempDir } from "./fake-control.js";

/** One raw HTTP exchange over the socket, for requests the client would never send. */
function rawRequest(
  socketPath: string,
  options: { method: string; path: string; body?: string | Buffer; headers?: Record<string, string> },
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: options.method, path: options.path, agent: false, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Leaves a socket file nobody listens on, as a kill -9'd agent does. */
async function leaveStaleSocket(socketPath: string, scratchDir: string): Promise<void> {
  const scratch = join(scratchDir, "scratch.sock");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(scratch, resolve));
  // Move the live socket file away, then close the listener: the moved file stays, dead.
  renameSync(scratch, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("ControlServer and ControlClient", () => {
  let dir: ReturnType<typeof tempDir>;
  let socketPath: string;
  let handlers: FakeHandlers;
  let log: ReturnType<typeof capturingLogger>;
  const servers: ControlServer[] = [];

  function newServer(path = socketPath, maxBodyBytes?: number): ControlServer {
    const server = new ControlServer({ socketPath: path, handlers, logger: log.logger, ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }) });
    servers.push(server);
    return server;
  }

  beforeEach(() => {
    dir = tempDir();
    socketPath = join(dir.path, "run", "mnha.sock");
    handlers = new FakeHandlers();
    log = capturingLogger();
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
    dir.remove();
  });

  it("answers status, version, events and demote over the socket", async () => {
    await newServer().start();
    const client = new ControlClient({ socketPath, timeoutMs: 2_000 });

    expect(await client.status()).toEqual(sampleStatus());
    expect(await client.version()).toEqual({ version: "0.1.0", protocol: 1, node: "mn1" });
    const events = await client.events({ limit: 1, type: "role-changed" });
    expect(events).toEqual([sampleEvents()[0]]);
    expect(await client.demote({ timeoutMs: 900 })).toMatchObject({ ok: true, from: "mn1", to: "mn2", epoch: 8 });

    expect(handlers.calls).toEqual([
      { method: "status" },
      { method: "version" },
      { method: "events", options: { limit: 1, type: "role-changed" } },
      { method: "demote", options: { timeoutMs: 900 } },
    ]);
  });

  it("creates the socket's directory with mode 0700 and the socket with mode 0600", async () => {
    expect(existsSync(join(dir.path, "run"))).toBe(false);
    await newServer().start();
    expect(statSync(join(dir.path, "run")).mode & 0o777).toBe(0o700);
    const socketStats = statSync(socketPath);
    expect(socketStats.isSocket()).toBe(true);
    expect(socketStats.mode & 0o777).toBe(0o600);
  });

  it("logs every operator command with its route and result", async () => {
    handlers.demoteResult = { ok: false, from: "mn1", to: null, epoch: 7, message: "the peer is not eligible", tookMs: 3 };
    await newServer().start();
    const client = new ControlClient({ socketPath });
    await client.status();
    await client.demote({});
    await rawRequest(socketPath, { method: "GET", path: "/v1/nope" });

    const commands = log.lines().filter((l) => l["route"] !== undefined);
    expect(commands.map((l) => [l["route"], l["status"]])).toEqual([
      ["/v1/status", 200],
      ["/v1/demote", 200],
      ["/v1/nope", 404],
    ]);
    expect(commands[1]?.["result"]).toMatchObject({ ok: false, message: "the peer is not eligible" });
    expect(commands[2]?.["result"]).toBe("CONTROL_REQUEST");
  });

  it("removes a stale socket left by a dead agent and listens in its place", async () => {
    mkdirSync(join(dir.path, "run"), { mode: 0o700 });
    await leaveStaleSocket(socketPath, dir.path);
    expect(statSync(socketPath).isSocket()).toBe(true);

    await newServer().start();
    expect(await new ControlClient({ socketPath }).version()).toMatchObject({ node: "mn1" });
    expect(log.lines().some((l) => String(l["msg"]).includes("stale control socket"))).toBe(true);
  });

  it("refuses to start on a socket where another agent is listening, and leaves that agent running", async () => {
    await newServer().start();
    const second = newServer();
    await expect(second.start()).rejects.toMatchObject({ code: "USAGE", message: expect.stringContaining("already listening") });
    expect(await new ControlClient({ socketPath }).version()).toMatchObject({ node: "mn1" });
  });

  it("refuses a socket directory that other users can write to", async () => {
    const shared = join(dir.path, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const error = await newServer(join(shared, "mnha.sock")).start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MnhaError);
    expect(error).toMatchObject({ code: "CONTROL_PERMISSION", message: expect.stringContaining("writable by other users (mode 777)"), hint: `run: chmod 700 ${shared}` });
  });

  it("refuses a socket directory that is not owned by root", async () => {
    const foreign = join(dir.path, "foreign");
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, 65534, 65534);
    await expect(newServer(join(foreign, "mnha.sock")).start()).rejects.toMatchObject({ code: "CONTROL_PERMISSION", message: expect.stringContaining("owned by uid 65534, not root") });
  });

  it("refuses to replace a file that is not a socket", async () => {
    mkdirSync(join(dir.path, "run"), { mode: 0o700 });
    writeFileSync(socketPath, "not a socket");
    await expect(newServer().start()).rejects.toMatchObject({ code: "USAGE", message: expect.stringContaining("is not a socket") });
    expect(existsSync(socketPath)).toBe(true);
  });

  it("answers an unknown route with 404 JSON and a wrong method with 405", async () => {
    await newServer().start();
    const notFound = await rawRequest(socketPath, { method: "GET", path: "/v1/launch-missiles" });
    expect(notFound.status).toBe(404);
    expect(notFound.headers["content-type"]).toMatch(/^application\/json/);
    expect(notFound.body).toMatchObject({ error: { code: "CONTROL_REQUEST", message: "no such control API route: GET /v1/launch-missiles", hint: expect.stringContaining("GET /v1/status") } });

    const wrongMethod = await rawRequest(socketPath, { method: "GET", path: "/v1/demote" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers["allow"]).toBe("POST");
    expect(handlers.calls).toEqual([]);
  });

  it("rejects a malformed JSON body and unknown fields without calling the handler", async () => {
    await newServer().start();
    const malformed = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: "{timeoutMs: 5", headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: { code: "CONTROL_REQUEST", message: expect.stringContaining("not valid JSON") } });

    const unknownField = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: JSON.stringify({ force: true }) });
    expect(unknownField.status).toBe(400);
    const badTimeout = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: JSON.stringify({ timeoutMs: -5 }) });
    expect(badTimeout.status).toBe(400);
    expect(badTimeout.body).toMatchObject({ error: { message: expect.stringContaining("timeoutMs") } });

    const badLimit = await rawRequest(socketPath, { method: "GET", path: "/v1/events?limit=lots" });
    expect(badLimit.status).toBe(400);
    expect(handlers.calls).toEqual([]);
  });

  it("refuses a body larger than the limit, declared or streamed", async () => {
    await newServer(socketPath, 1_024).start();
    const declared = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: Buffer.alloc(4_096, 0x20) });
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ error: { code: "CONTROL_REQUEST", message: "the request body is larger than 1024 bytes" } });

    // Chunked: no content-length, the limit is enforced while reading.
    const streamed = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: Buffer.alloc(4_096, 0x20), headers: { "transfer-encoding": "chunked" } });
    expect(streamed.status).toBe(413);
    expect(handlers.calls).toEqual([]);
    // The server is still fine afterwards.
    expect(await new ControlClient({ socketPath }).demote({})).toMatchObject({ ok: true });
  });

  it("maps a handler's MnhaError to its code and hint, and any other failure to INTERNAL 500", async () => {
    await newServer().start();
    handlers.demoteError = new MnhaError("NOT_HOLDER", "mn1 does not hold the VIP; mn2 does", { hint: "run demote on mn2" });
    const raw = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: "{}" });
    expect(raw.status).toBe(409);
    expect(raw.body).toEqual({ error: { code: "NOT_HOLDER", message: "mn1 does not hold the VIP; mn2 does", hint: "run demote on mn2" } });

    const client = new ControlClient({ socketPath });
    const viaClient = await client.demote({}).catch((e: unknown) => e);
    expect(viaClient).toBeInstanceOf(MnhaError);
    expect(viaClient).toMatchObject({ code: "NOT_HOLDER", message: "mn1 does not hold the VIP; mn2 does", hint: "run demote on mn2" });

    handlers.demoteError = new TypeError("cannot read properties of undefined");
    const internal = await rawRequest(socketPath, { method: "POST", path: "/v1/demote", body: "{}" });
    expect(internal.status).toBe(500);
    expect(internal.body).toMatchObject({ error: { code: "INTERNAL", message: expect.stringContaining("cannot read properties of undefined") } });
    expect(JSON.stringify(internal.body)).not.toContain("at ");
  });

  it("removes its socket on stop, after which the client reports the agent unreachable", async () => {
    const server = newServer();
    await server.start();
    await server.stop();
    expect(existsSync(socketPath)).toBe(false);
    const error = await new ControlClient({ socketPath }).status().catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "CONTROL_UNREACHABLE",
      message: `the mnha agent is not running or not listening on ${socketPath} (no socket there)`,
      hint: "start it: systemctl start mnha, or pass --socket / --config",
    });
    // start again after stop works: nothing was left behind.
    await server.start();
    expect(await new ControlClient({ socketPath }).version()).toMatchObject({ protocol: 1 });
  });

  it("listens again when its socket file is removed by hand, and leaves a path that names something else alone", async () => {
    const server = newServer();
    await server.start();
    expect(await server.keepSocketFile()).toBe(false);
    unlinkSync(socketPath);
    const gone = await new ControlClient({ socketPath }).status().catch((e: unknown) => e);
    expect(gone).toMatchObject({ code: "CONTROL_UNREACHABLE" });
    expect(await server.keepSocketFile()).toBe(true);
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(await new ControlClient({ socketPath }).status()).toEqual(sampleStatus());
    expect(await server.keepSocketFile()).toBe(false);

    // Something else put at the path is not ours to replace.
    unlinkSync(socketPath);
    writeFileSync(socketPath, "not a socket");
    expect(await server.keepSocketFile()).toBe(false);
    expect(readFileSync(socketPath, "utf8")).toBe("not a socket");
    rmSync(socketPath);
    // Listening again fails (the directory became writable by others): it says so, and tries again next time.
    chmodSync(join(dir.path, "run"), 0o777);
    await expect(server.keepSocketFile()).rejects.toThrow();
    await expect(server.keepSocketFile()).rejects.toThrow();
    chmodSync(join(dir.path, "run"), 0o700);
    expect(await server.keepSocketFile()).toBe(true);
    expect(await new ControlClient({ socketPath }).status()).toEqual(sampleStatus());
    unlinkSync(socketPath);
    // stop() after a re-listen removes the new socket file and leaves nothing listening.
    expect(await server.keepSocketFile()).toBe(true);
    await server.stop();
    expect(existsSync(socketPath)).toBe(false);
  });

  it("times out a request the agent never answers", async () => {
    handlers.status = () => new Promise(() => undefined);
    await newServer().start();
    const started = performance.now();
    const error = await new ControlClient({ socketPath, timeoutMs: 200 }).status().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CONTROL_UNREACHABLE", message: expect.stringContaining("did not answer GET /v1/status") });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("maps EACCES on the socket to CONTROL_PERMISSION with a run-as-root hint", () => {
    const error = controlConnectionError("/run/mnha/mnha.sock", Object.assign(new Error("connect EACCES"), { code: "EACCES" }));
    expect(error).toMatchObject({ code: "CONTROL_PERMISSION", message: "permission denied on the mnha control socket /run/mnha/mnha.sock", hint: expect.stringContaining("run as root") });
  });

  it("cannot be reached by a non-root user", async () => {
    await newServer().start();
    // A child process running as nobody tries the socket the way any local user could.
    const script = `require("node:http").request({ socketPath: ${JSON.stringify(socketPath)}, path: "/v1/status" }, () => console.log("ANSWERED")).on("error", (e) => console.log(e.code)).end();`;
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["-e", script], { uid: 65534, gid: 65534, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.on("error", reject);
      child.on("close", () => {
        clearTimeout(timer);
        resolve(out.trim());
      });
    });
    expect(output).toBe("EACCES");
    expect(handlers.calls).toEqual([]);
  });
});
