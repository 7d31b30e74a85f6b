import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { WitnessAnswer } from "../../src/host/election-host.js";
import { WitnessClient } from "../../src/witness/witness-client.js";
import { WitnessServer, readPersistedGrant } from "../../src/witness/witness-server.js";

const quiet = { info: () => {}, warn: () => {} };
const secret = randomBytes(32).toString("base64");

let clock = 1_000;
const open: { stop(): void }[] = [];
const servers: WitnessServer[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.stop();
  for (const s of servers.splice(0)) await s.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mnha-witness-"));
  dirs.push(dir);
  return dir;
}

async function startServer(stateFile: string): Promise<{ server: WitnessServer; port: number }> {
  const server = new WitnessServer({
    config: { listen: { address: "127.0.0.1", port: 0 }, nodes: [{ name: "mn1", address: "127.0.0.1" }, { name: "mn2", address: "127.0.0.2" }], auth: { secretFile: "/unused" }, stateFile },
    secret,
    now: () => clock,
    log: quiet,
  });
  servers.push(server);
  const { port } = await server.listen();
  return { server, port };
}

function client(name: string, address: string, port: number, key = secret): WitnessClient {
  const c = new WitnessClient({ self: { name, address }, witness: { address: "127.0.0.1", port }, secret: key, requestTimeoutMs: 1_000, log: quiet });
  open.push(c);
  c.start();
  return c;
}

async function connected(c: WitnessClient): Promise<void> {
  for (let i = 0; i < 100 && !c.state().connected; i++) await new Promise((r) => setTimeout(r, 20));
}

function ask(c: WitnessClient, epoch: number, leaseMs = 2_000): Promise<WitnessAnswer> {
  return new Promise((resolve) => c.request({ epoch, leaseMs }, resolve));
}

describe("the witness over real sockets", () => {
  it("grants one node at a time, renews the holder, frees on release, persists the grant", async () => {
    const dir = tempDir();
    const stateFile = join(dir, "grant.json");
    const { port } = await startServer(stateFile);
    const mn1 = client("mn1", "127.0.0.1", port);
    const mn2 = client("mn2", "127.0.0.2", port);
    await connected(mn1);
    await connected(mn2);
    expect(mn1.state().connected && mn2.state().connected).toBe(true);

    expect(await ask(mn1, 1)).toMatchObject({ reachable: true, granted: true, holder: "mn1", holderEpoch: 1, validMs: 2_000 });
    expect(await ask(mn2, 1)).toMatchObject({ reachable: true, granted: false, holder: "mn1" });
    expect(readPersistedGrant(stateFile)).toEqual({ node: "mn1", epoch: 1, leaseMs: 2_000 });
    clock += 1_500;
    expect(await ask(mn1, 1)).toMatchObject({ granted: true, holder: "mn1" });
    clock += 1_500;
    // Renewed 1.5 s ago: still mn1's.
    expect(await ask(mn2, 2)).toMatchObject({ granted: false, holder: "mn1" });
    mn1.release(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await ask(mn2, 2)).toMatchObject({ granted: true, holder: "mn2", holderEpoch: 2 });
    expect(JSON.parse(readFileSync(stateFile, "utf8"))).toEqual({ node: "mn2", epoch: 2, leaseMs: 2_000 });
  });

  it("a restarted witness grants nobody new for one lease", async () => {
    const dir = tempDir();
    const stateFile = join(dir, "grant.json");
    writeFileSync(stateFile, JSON.stringify({ node: "mn1", epoch: 4, leaseMs: 3_000 }));
    const { port } = await startServer(stateFile);
    const mn2 = client("mn2", "127.0.0.2", port);
    await connected(mn2);
    expect(await ask(mn2, 5)).toMatchObject({ granted: false, holder: "mn1", holderEpoch: 4 });
    clock += 3_001;
    expect(await ask(mn2, 5)).toMatchObject({ granted: true, holder: "mn2" });
  });

  it("a malformed grant file refuses to start with a clear error", () => {
    const dir = tempDir();
    const stateFile = join(dir, "grant.json");
    writeFileSync(stateFile, "{not json");
    expect(() => readPersistedGrant(stateFile)).toThrow(expect.objectContaining({ code: "WITNESS_STATE_INVALID" }));
  });

  it("a wrong secret or a name from the wrong address is refused; requests then answer unreachable", async () => {
    const dir = tempDir();
    const { port } = await startServer(join(dir, "grant.json"));
    const wrongKey = client("mn1", "127.0.0.1", port, randomBytes(32).toString("base64"));
    const wrongAddress = client("mn2", "127.0.0.1", port);
    await new Promise((r) => setTimeout(r, 300));
    expect(wrongKey.state().connected).toBe(false);
    expect(wrongAddress.state().connected).toBe(false);
    expect(await ask(wrongKey, 1)).toMatchObject({ reachable: false });
    expect(wrongKey.state().lastError).toMatch(/auth-failed|closed|refused/);
  });
});
