import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { acquireInstanceLock } from "../../src/daemon/instance-lock.js";
import { runAgent } from "../../src/daemon/run.js";

/** `mnha agent` refuses to run twice for one data dir, before it touches anything. */
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function configIn(dir: string): string {
  const dataDir = join(dir, "data");
  const file = join(dir, "mnha.yaml");
  writeFileSync(
    file,
    [
      "node: { name: mn1, address: 10.0.0.11 }",
      "peers: [{ name: mn2, address: 10.0.0.12 }]",
      "vip: { address: 10.0.0.100, interface: eth0 }",
      "gateway: { address: 10.0.0.1 }",
      "auth: { secret: 0123456789abcdef0123 }",
      `dataDir: ${dataDir}`,
      `controlSocket: ${join(dir, "mnha.sock")}`,
    ].join("\n"),
  );
  chmodSync(file, 0o600);
  return file;
}

describe("runAgent and the instance lock", () => {
  it("a second agent for the same data dir exits 3 at once with AGENT_ALREADY_RUNNING and its hint, and changes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-run-"));
    dirs.push(dir);
    const config = configIn(dir);
    const held = acquireInstanceLock(join(dir, "data"));
    const stderr: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    const code = await runAgent({ configPath: config });
    expect(code).toBe(3);
    expect(stderr.join("")).toMatch(/AGENT_ALREADY_RUNNING: another mnha agent is already running for .*data/);
    expect(stderr.join("")).toMatch(/hint: .*already running/);
    // Nothing but the lock file: no epoch, no Keepalived files, no store, no socket.
    expect(readdirSync(join(dir, "data"))).toEqual(["agent.lock"]);
    expect(readdirSync(dir).sort()).toEqual(["data", "mnha.yaml"]);
    held.release();
  });

  it("the lock is free again once its holder releases it (or dies: the kernel drops a flock with its last fd)", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-lock-"));
    dirs.push(dir);
    const first = acquireInstanceLock(dir);
    expect(() => acquireInstanceLock(dir)).toThrow(expect.objectContaining({ code: "AGENT_ALREADY_RUNNING" }));
    first.release();
    const second = acquireInstanceLock(dir);
    second.release();
  });
});
