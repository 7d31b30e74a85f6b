/**
 * collect-log end to end through the real CLI and control server: both nodes' parts (built
 * by the real collectNodePart from planted configs and logs), status, events and the system
 * inventory end up in one tar.gz, and no secret, password or token survives anywhere in it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { loadConfig } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../../src/cli/main.js";
import type { CollectResult } from "../../src/contracts.js";
import { ControlServer } from "../../src/control/control-server.js";
import { collectNodePart } from "../../src/ops/diagnostics.js";
import { redactText } from "../../src/ops/redact.js";
import { capturingLogger, FakeHandlers, tempDir } from "../control/fake-control.js";

const PAIR_SECRET = "pairSecretZq81vX0pLmN4tR7wK3yH9cF2bD6sA5eGq1";
const DB_PASSWORD = "DbPassw0rd-9f8e7d";
const TOKEN = "tok_5c2b9a1e4d7f";
const PLANTED = [PAIR_SECRET, DB_PASSWORD, TOKEN];

describe("collect-log", () => {
  const dir = tempDir("mnha-collect-");
  const socketPath = join(dir.path, "run", "mnha.sock");
  let server: ControlServer;
  const configs: Record<string, string> = {};

  function writeNode(node: "mn1" | "mn2", address: string, peer: string, peerAddress: string): string {
    const base = join(dir.path, node);
    mkdirSync(base, { recursive: true });
    const log = join(base, "agent.log");
    writeFileSync(
      log,
      [
        `{"level":30,"msg":"peer link up","secret":"${PAIR_SECRET}"}`,
        `connecting to mariadb with --password=${DB_PASSWORD}`,
        `GRANT ALL ON *.* TO 'repl'@'%' IDENTIFIED BY '${DB_PASSWORD}'`,
        `api call with Authorization: Bearer ${TOKEN}`,
        `config reload: token: ${TOKEN}`,
        "an ordinary line that must survive",
        "",
      ].join("\n"),
    );
    const keepalived = join(base, "keepalived.conf");
    writeFileSync(keepalived, `vrrp_instance VI_1 {\n  authentication {\n    auth_type PASS\n    auth_pass ${DB_PASSWORD}\n  }\n}\n`);
    const file = join(base, "mnha.yaml");
    writeFileSync(
      file,
      [
        `node: { name: ${node}, address: ${address} }`,
        `peers: [{ name: ${peer}, address: ${peerAddress} }]`,
        "vip: { address: 10.0.0.100, interface: br_eth0 }",
        "gateway: { address: 10.0.0.1 }",
        `auth: { secret: ${PAIR_SECRET} }`,
        "timings: {}",
        "arpGuard: {}",
        `keepalived: { configPath: ${keepalived} }`,
        `dataDir: ${base}/data`,
        `controlSocket: ${socketPath}`,
        "diagnostics:",
        `  logFiles: [${log}]`,
        `  replicationStatusCommand: [${process.execPath}, -e, "console.log('Slave_IO_Running: Yes'); console.log('Master_Password: ${DB_PASSWORD}')"]`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return file;
  }

  beforeAll(async () => {
    configs["mn1"] = writeNode("mn1", "10.0.0.11", "mn2", "10.0.0.12");
    configs["mn2"] = writeNode("mn2", "10.0.0.12", "mn1", "10.0.0.11");
    const handlers = new FakeHandlers();
    handlers.events_ = [{ seq: 1, node: "mn1", time: new Date().toISOString(), uptimeMs: 1, type: "operator.note", message: `someone pasted token=${TOKEN} into a reason`, fields: {} }];
    const status = handlers.statusReport;
    const collect = async (request: { sinceMs?: number }): Promise<CollectResult> => {
      const part = (node: string) => collectNodePart({ loaded: loadConfig(configs[node]!), statusJson: async () => JSON.stringify(status), sinceMs: request.sinceMs ?? 0 });
      return { self: { node: "mn1", files: await part("mn1") }, peer: { node: "mn2", files: await part("mn2") } };
    };
    server = new ControlServer({ socketPath, handlers: Object.assign(handlers, { collect }), logger: capturingLogger().logger });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
    dir.remove();
  });

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const io: CliIo = {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      stdin: Object.assign(new PassThrough(), { isTTY: false }),
      env: { MNHA_CONFIG: configs["mn1"] },
    };
    const code = await main(["/usr/bin/node", "/usr/bin/mnha", ...args], io);
    return { code, stdout, stderr };
  }

  it("writes one tarball with both nodes' parts and prints its path and size; nothing secret is in it", async () => {
    const out = join(dir.path, "bundle.tar.gz");
    const result = await run(["collect-log", "--since", "2h", "--out", out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^${out} \\(\\d+(\\.\\d)? (B|KiB|MiB)\\)`));
    expect(statSync(out).size).toBeGreaterThan(0);

    const extracted = join(dir.path, "extracted");
    mkdirSync(extracted);
    execFileSync("tar", ["-xzf", out, "-C", extracted]);
    const files = listFiles(extracted);
    const names = files.map((f) => f.slice(extracted.length + 1).replace(/^[^/]+\//, ""));
    for (const expected of ["MANIFEST.txt", "mn1/config.json", "mn1/keepalived.conf", "mn1/log-agent.log", "mn1/mariadb-replication.txt", "mn1/inventory.json", "mn2/config.json", "mn2/log-agent.log", "pair/status.json", "pair/events.json"]) {
      expect(names, `archive has ${expected}`).toContain(expected);
    }
    const everything = files.map((f) => readFileSync(f, "utf8")).join("\n");
    for (const secret of PLANTED) expect(everything.includes(secret), `planted ${secret} found in the archive`).toBe(false);
    // Redacted, not dropped: the lines are there with the value replaced.
    expect(everything).toContain("an ordinary line that must survive");
    expect(everything).toContain("Slave_IO_Running: Yes");
    expect(everything).toMatch(/auth_pass \[redacted\]/);
    expect(everything).toMatch(/IDENTIFIED BY \[redacted\]/);
    expect(JSON.parse(readFileSync(files.find((f) => f.endsWith("mn1/inventory.json"))!, "utf8"))).toHaveProperty("cpu");
  }, 60_000);

  it("never writes over an existing file named by --out (a typo must not replace a config): exit 2, the file untouched", async () => {
    const out = join(dir.path, "precious.yaml");
    writeFileSync(out, "keep me\n");
    const result = await run(["collect-log", "--out", out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/precious\.yaml exists already; collect-log does not overwrite it\nhint: choose another --out/);
    expect(readFileSync(out, "utf8")).toBe("keep me\n");
  });

  it("an --out it cannot write is a clear error naming the place and the fix; no half archive is left", async () => {
    const parentIsAFile = join(dir.path, "a-file");
    writeFileSync(parentIsAFile, "x");
    const out = join(parentIsAFile, "bundle.tar.gz");
    const result = await run(["collect-log", "--out", out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot write the archive .*a-file\/bundle\.tar\.gz.*\nhint: check that .*a-file exists, is writable and has free space/);
    expect(readdirSync(dir.path).filter((n) => n.includes(".partial-"))).toEqual([]);
  }, 60_000);

  it("a temporary directory that cannot take the bundle's files is a clear error, not 'a bug in mnha'; nothing is written at --out", async () => {
    const out = join(dir.path, "staged.tar.gz");
    const saved = process.env["TMPDIR"];
    process.env["TMPDIR"] = join(dir.path, "no-such-tmp");
    try {
      const result = await run(["collect-log", "--out", out]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/cannot stage the bundle's files in .*no-such-tmp \(ENOENT\)\nhint: check .*no-such-tmp.*TMPDIR/);
      expect(result.stderr).not.toMatch(/bug in mnha/);
    } finally {
      if (saved === undefined) delete process.env["TMPDIR"];
      else process.env["TMPDIR"] = saved;
    }
    expect(() => statSync(out)).toThrow();
  }, 60_000);

  it("says plainly when the agent is not there, and writes nothing", async () => {
    const out = join(dir.path, "none.tar.gz");
    const result = await run(["collect-log", "--out", out, "--socket", join(dir.path, "nobody.sock")]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/not running or not listening/);
    expect(() => statSync(out)).toThrow();
  });
});

describe("redactText", () => {
  it("replaces known values and secret-looking assignments, and leaves other text alone", () => {
    const text = `secret=${PAIR_SECRET} "password": "${DB_PASSWORD}" mysql -p${DB_PASSWORD} token:${TOKEN} plain words`;
    const redacted = redactText(text, [PAIR_SECRET]);
    for (const secret of PLANTED) expect(redacted).not.toContain(secret);
    expect(redacted).toContain("plain words");
  });
});

function listFiles(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(root, e.name)) : [join(root, e.name)]));
}

describe("a node's part is bounded", () => {
  it("cuts the largest files (keeping their newest lines) until the JSON-encoded part fits", async () => {
    const { bound } = await import("../../src/ops/diagnostics.js");
    const quoteHeavy = `${'"x":"y",'.repeat(40_000)}THE-NEWEST-LINE`;
    const files = bound([{ name: "status.json", text: quoteHeavy }, { name: "node.txt", text: "small" }], 64 * 1024);
    expect(Buffer.byteLength(JSON.stringify(files))).toBeLessThanOrEqual(64 * 1024);
    expect(files[0]!.text).toMatch(/^\(cut to fit/);
    expect(files[0]!.text.endsWith("THE-NEWEST-LINE")).toBe(true);
    expect(files[1]!.text).toBe("small");
  });
});
