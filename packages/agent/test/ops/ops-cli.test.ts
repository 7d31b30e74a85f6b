/**
 * The CLI and control API side of the operator commands: `status` shows maintenance and
 * stopped nodes first, requests are validated (a bad body changes nothing), an agent without
 * the operation says so, and the CLI passes who ran it.
 */
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../../src/cli/main.js";
import { invokingUser } from "../../src/cli/ops-commands.js";
import { renderStatus } from "../../src/cli/render-status.js";
import type { MaintenanceResult } from "../../src/contracts.js";
import { ControlServer } from "../../src/control/control-server.js";
import { capturingLogger, FakeHandlers, sampleStatus, tempDir } from "../control/fake-control.js";

describe("status with operator modes", () => {
  it("puts maintenance and stopped nodes first, for both nodes", () => {
    const report = sampleStatus();
    report.ops = {
      self: { maintenance: { since: Date.UTC(2026, 10, 25, 2, 58), by: "alice (uid 0)", reason: "kernel update" }, stopped: null },
      peer: { maintenance: null, stopped: { since: Date.UTC(2026, 10, 25, 3, 1), by: "root (uid 0)", keepUi: false } },
    };
    const lines = renderStatus(report).split("\n");
    expect(lines[0]).toBe("MAINTENANCE MODE on mn1 since 2026-11-25T02:58:00.000Z by alice (uid 0): kernel update (the agent acts on nothing)");
    expect(lines[1]).toBe("NODE STOPPED: mn2 since 2026-11-25T03:01:00.000Z by root (uid 0) (mnha start-node brings it back)");
    expect(lines[3]).toMatch(/^VIP 10\.0\.0\.100/);
  });

  it("shows nothing extra when no node is in a mode", () => {
    const report = sampleStatus();
    report.ops = { self: { maintenance: null, stopped: null }, peer: null };
    expect(renderStatus(report).split("\n")[0]).toMatch(/^VIP /);
  });
});

describe("maintenance over the control API", () => {
  const dir = tempDir("mnha-ops-cli-");
  const socketPath = join(dir.path, "run", "mnha.sock");
  const asked: unknown[] = [];
  let server: ControlServer;
  let bare: ControlServer;
  const bareSocket = join(dir.path, "run2", "mnha.sock");

  beforeAll(async () => {
    const handlers = Object.assign(new FakeHandlers(), {
      maintenance: async (req: { on: boolean; node: string; reason: string; by: string }): Promise<MaintenanceResult> => {
        asked.push(req);
        return { node: "mn1", on: req.on, changed: true, message: `mn1 is in maintenance mode: watching, acting on nothing`, hook: { name: "maintenance.onEnter", command: ["x"], ok: false, detail: "exit 3" }, reminder: "disable the platform's VM HA" };
      },
    });
    server = new ControlServer({ socketPath, handlers, logger: capturingLogger().logger });
    bare = new ControlServer({ socketPath: bareSocket, handlers: new FakeHandlers(), logger: capturingLogger().logger });
    await server.start();
    await bare.start();
  });

  afterAll(async () => {
    await server.stop();
    await bare.stop();
    dir.remove();
  });

  async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const io: CliIo = {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      stdin: Object.assign(new PassThrough(), { isTTY: false }),
      env: { MNHA_CONFIG: join(dir.path, "none.yaml"), ...env },
    };
    const code = await main(["/usr/bin/node", "/usr/bin/zsha2", ...args], io);
    return { code, stdout, stderr };
  }

  it("passes the mode, node, reason and the invoking user; prints the reminder; a failed hook exits 1", async () => {
    const result = await run(["maintenance", "on", "-reason", "kernel update", "-node", "both", "--socket", socketPath], { SUDO_USER: "alice" });
    expect(asked.at(-1)).toEqual({ on: true, node: "both", reason: "kernel update", by: expect.stringMatching(/^alice via sudo as .* \(uid \d+\)$/) });
    expect(result.stdout).toMatch(/REMINDER: disable the platform's VM HA/);
    expect(result.stdout).toMatch(/hook maintenance.onEnter: FAILED: exit 3/);
    expect(result.code).toBe(1);
  });

  it("refuses a bad mode or node before asking the agent", async () => {
    const before = asked.length;
    expect((await run(["maintenance", "maybe", "--socket", socketPath])).code).toBe(2);
    expect((await run(["maintenance", "on", "--node", "mn9", "--socket", socketPath])).code).toBe(2);
    expect(asked.length).toBe(before);
  });

  it("the API refuses a malformed body with 400 and an agent without the operation with a clear 404", async () => {
    const post = (socket: string, body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ socketPath: socket, method: "POST", path: "/v1/maintenance", headers: { "content-type": "application/json" } }, (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on("error", reject);
        req.end(body);
      });
    const before = asked.length;
    const bad = await post(socketPath, JSON.stringify({ on: "yes", node: "mars" }));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/invalid body for \/v1\/maintenance/);
    expect(asked.length).toBe(before);
    const missing = await post(bareSocket, JSON.stringify({ on: true }));
    expect(missing.status).toBe(404);
    expect(missing.body).toMatch(/does not offer maintenance/);
  });

  it("names the invoking user and uid, sanitized", () => {
    expect(invokingUser({})).toMatch(/^[A-Za-z0-9_.@:() -]+ \(uid \d+\)$/);
    expect(invokingUser({ SUDO_USER: "bob;rm -rf" })).toMatch(/^bob_rm -rf via sudo as /);
  });
});
