/* eslint-disable @typescript-eslint/no-explicit-any -- the table below mutates raw, untyped YAML input on purpose */
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { checkInlineSecretFile, ConfigError, loadConfig, MIN_SECRET_BITS, MnhaError, parseConfig, redactedConfig, secretStrengthBits } from "../src/index.js";

function captureMnhaError(run: () => unknown): MnhaError {
  try {
    run();
  } catch (error) {
    if (error instanceof MnhaError) return error;
    throw error;
  }
  throw new Error("expected an MnhaError");
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

const exampleFile = new URL("../../../docs/mnha.example.yaml", import.meta.url);

function minimal(): Record<string, unknown> {
  return {
    node: { name: "mn1", address: "10.0.0.11" },
    peers: [{ name: "mn2", address: "10.0.0.12" }],
    vip: { address: "10.0.0.100", interface: "eth0" },
    gateway: { address: "10.0.0.1" },
    auth: { secret: "0123456789abcdef-secret-Zq8Wv3Kx7Lm1Np5Rt9Yb2Hc" },
  };
}

function problemsOf(raw: unknown): { path: string; value?: unknown; expected: string }[] {
  try {
    parseConfig(raw, "test.yaml");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  it("the documented example is a valid config whose values match the documented defaults", () => {
    const example = parse(readFileSync(exampleFile, "utf8"));
    const config = parseConfig(example, "docs/mnha.example.yaml");
    const defaults = parseConfig({ ...minimal(), auth: { secretFile: "/etc/mnha/secret" } });
    // Every default the example states is the real default.
    expect(config.timings).toEqual(defaults.timings);
    expect(config.keepalived).toEqual(defaults.keepalived);
    expect(config.arpGuard).toEqual(defaults.arpGuard);
    expect(config.db).toEqual(defaults.db);
    expect(defaults.db.enabled).toBe(false);
    expect(config.services.map((s) => [s.name, s.check.kind, s.restore?.command])).toEqual(defaults.services.map((s) => [s.name, s.check.kind, s.restore?.command]));
  });

  it("fills defaults: MN, UI and DB services, 100 ms heartbeats, child keepalived", () => {
    const config = parseConfig(minimal());
    expect(config.services.map((s) => `${s.name}:${s.check.kind}`)).toEqual(["mn:http", "ui:http", "db:tcp"]);
    expect(config.timings.heartbeatIntervalMs).toBeLessThanOrEqual(200);
    expect(config.keepalived.mode).toBe("child");
    expect(config.listen.port).toBe(7946);
  });

  it.each([
    ["node.address", (c: Record<string, any>) => (c.node.address = "10.0.0.300"), "IPv4"],
    ["vip.address", (c: Record<string, any>) => (c.vip.address = c.node.address), "belongs to neither node"],
    ["peers[0].name", (c: Record<string, any>) => (c.peers[0].name = "mn1"), "different from node.name"],
    ["peers", (c: Record<string, any>) => c.peers.push({ name: "mn3", address: "10.0.0.13" }), "exactly one peer"],
    ["timings.leaseMs", (c: Record<string, any>) => (c.timings = { heartbeatIntervalMs: 200, leaseMs: 300 }), "two heartbeat intervals"],
    ["auth", (c: Record<string, any>) => (c.auth = {}), "exactly one of auth.secret or auth.secretFile"],
    ["auth.secret", (c: Record<string, any>) => (c.auth = { secret: "short" }), "head -c 32 /dev/urandom | base64"],
    ["services[0].check.kind", (c: Record<string, any>) => (c.services = [{ name: "mn", check: { kind: "smoke", port: 1 } }]), "one of"],
    ["vip.interfce", (c: Record<string, any>) => (c.vip.interfce = "eth1"), "unknown field"],
    ["keepalived.advertIntMs", (c: Record<string, any>) => (c.keepalived = { advertIntMs: 105 }), "multiple of 10"],
    ["timings.heartbeatMisses", (c: Record<string, any>) => (c.timings = { heartbeatMisses: 5 }), "master-down timer"],
    ["timings.vipGiveUpAfterMs", (c: Record<string, any>) => (c.timings = { vipRepairAfterMs: 5_000, vipGiveUpAfterMs: 4_000 }), "the repair goes first"],
    ["timings.peerVipUnansweredMs", (c: Record<string, any>) => (c.timings = { peerVipUnansweredMs: 8_000 }), "gives the role up before its peer takes it"],
  ])("names the field %s and what it expects", (path, mutate, expectation) => {
    const raw = minimal();
    mutate(raw as Record<string, any>);
    const problems = problemsOf(raw);
    const problem = problems.find((p) => p.path === path || p.path.startsWith(path));
    expect(problem, JSON.stringify(problems)).toBeDefined();
    expect(problem!.expected).toContain(expectation);
  });

  it("says which field of a bad cron expression is wrong", () => {
    const raw = minimal() as Record<string, any>;
    raw.store = { schedules: { retention: "61 * * * *" } };
    const [problem, ...others] = problemsOf(raw);
    expect(others).toEqual([]);
    expect(problem?.path).toBe("store.schedules.retention");
    expect(problem?.expected).toBe('a cron expression such as "*/15 * * * *" (minute hour day month weekday); this one: Invalid value for minute: 61');
  });

  it("a node configured as its own peer gets its own error code (PEER_IS_SELF)", () => {
    const raw = minimal() as Record<string, any>;
    raw.peers[0].address = raw.node.address;
    expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ code: "PEER_IS_SELF" }));
    raw.peers[0].name = raw.node.name;
    expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ code: "PEER_IS_SELF" }));
    // With another problem besides, it is an invalid config like any other.
    raw.vip.address = "10.0.0.300";
    expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
  });

  it("never echoes a secret value in an error", () => {
    const raw = minimal();
    (raw.auth as Record<string, unknown>).secret = "short-pw";
    try {
      parseConfig(raw, "x.yaml");
      throw new Error("expected failure");
    } catch (error) {
      expect((error as Error).message).not.toContain("short-pw");
    }
  });

  it("loads a file with a secret file, refusing a secret readable by others", () => {
    const dir = tempDir("mnha-config-");
    const secretFile = join(dir, "secret");
    const good = "Wm9Lq2xR8vT1cY7nB4hK0pD6sF3gJ9aE5uZ+iO/wXeM=";
    writeFileSync(secretFile, `${good}\n`, { mode: 0o644 });
    chmodSync(secretFile, 0o644);
    const file = join(dir, "mnha.yaml");
    writeFileSync(file, `node: {name: mn1, address: 10.0.0.11}\npeers: [{name: mn2, address: 10.0.0.12}]\nvip: {address: 10.0.0.100, interface: eth0}\ngateway: {address: 10.0.0.1}\nauth: {secretFile: ${secretFile}}\n`);
    expect(() => loadConfig(file)).toThrow(/readable by other users/);
    chmodSync(secretFile, 0o600);
    const loaded = loadConfig(file);
    expect(loaded.secret).toBe(good);
    expect(loaded.derived.peerLossMs).toBe(300);
  });

  it("refuses an empty or short secret file by its own name, not as the config file", () => {
    const dir = tempDir("mnha-config-");
    const secretFile = join(dir, "secret");
    const file = join(dir, "mnha.yaml");
    writeFileSync(file, `node: {name: mn1, address: 10.0.0.11}\npeers: [{name: mn2, address: 10.0.0.12}]\nvip: {address: 10.0.0.100, interface: eth0}\ngateway: {address: 10.0.0.1}\nauth: {secretFile: ${secretFile}}\n`);
    for (const [content, message] of [["\n", `secret file ${secretFile} is empty`], ["short\n", `the peer secret in ${secretFile} is too weak`]] as const) {
      writeFileSync(secretFile, content, { mode: 0o600 });
      let error: unknown;
      try {
        loadConfig(file);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(MnhaError);
      expect((error as MnhaError).code).toBe("SECRET_WEAK");
      expect((error as MnhaError).message).toContain(message);
      expect((error as MnhaError).message).not.toContain("invalid configuration");
      expect((error as MnhaError).hint).toContain("head -c 32 /dev/urandom | base64");
    }
  });

  it("refuses a secret weaker than 32 random bytes, inline or in its file, with the command that makes a good one", () => {
    // Each of these passed the old 16-character rule.
    for (const weak of ["correct-horse-battery-staple-42", "0123456789abcdef0123", "a".repeat(80), "0123456789abcdef".repeat(3)]) {
      expect(secretStrengthBits(weak)).toBeLessThan(MIN_SECRET_BITS);
      const problems = problemsOf({ ...minimal(), auth: { secret: weak } });
      expect(problems.find((p) => p.path === "auth.secret")?.expected).toContain("head -c 32 /dev/urandom | base64");
    }
    // What the documented commands make passes: base64 or base64url of 32 bytes, hex of 32 bytes.
    for (const bytes of [randomBytes(32), randomBytes(32), Buffer.alloc(32, 0).map((_, i) => i * 7)]) {
      for (const good of [bytes.toString("base64"), bytes.toString("base64url"), bytes.toString("hex")]) {
        expect(secretStrengthBits(good), good).toBeGreaterThanOrEqual(MIN_SECRET_BITS);
      }
    }
    // 31 bytes is not enough.
    expect(secretStrengthBits(randomBytes(31).toString("hex"))).toBeLessThan(MIN_SECRET_BITS);

    const dir = tempDir("mnha-config-");
    const secretFile = join(dir, "secret");
    writeFileSync(secretFile, "correct-horse-battery-staple-42\n", { mode: 0o600 });
    const file = join(dir, "mnha.yaml");
    writeFileSync(file, `node: {name: mn1, address: 10.0.0.11}\npeers: [{name: mn2, address: 10.0.0.12}]\nvip: {address: 10.0.0.100, interface: eth0}\ngateway: {address: 10.0.0.1}\nauth: {secretFile: ${secretFile}}\n`);
    try {
      loadConfig(file);
      throw new Error("expected the weak secret to be refused");
    } catch (error) {
      expect(error).toBeInstanceOf(MnhaError);
      expect((error as MnhaError).code).toBe("SECRET_WEAK");
      expect((error as MnhaError).message).toContain(secretFile);
      expect((error as MnhaError).message).not.toContain("correct-horse");
      expect((error as MnhaError).hint).toContain("head -c 32 /dev/urandom | base64");
    }
  });

  it("reports YAML syntax errors and missing files with a fix", () => {
    const dir = tempDir("mnha-config-");
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "node:\n  name: mn1\n address: x\n");
    expect(() => loadConfig(file)).toThrow(MnhaError);
    expect(() => loadConfig(file)).toThrow(/not valid YAML/);
    expect(() => loadConfig(join(dir, "missing.yaml"))).toThrow(/does not exist/);
  });

  it("refuses an inline secret in a config file open to other users or not owned by root, naming the file, its mode and the fix", () => {
    const dir = tempDir("mnha-inline-");
    const file = join(dir, "mnha.yaml");
    writeFileSync(file, `node: {name: mn1, address: 10.0.0.11}\npeers: [{name: mn2, address: 10.0.0.12}]\nvip: {address: 10.0.0.100, interface: eth0}\ngateway: {address: 10.0.0.1}\nauth: {secret: Zq81vX0pLmN4tR7wK3yH9cF2bD6sA5eGq1Jx8Ut0Wm3a}\n`);
    chmodSync(file, 0o644);
    const open = captureMnhaError(() => loadConfig(file));
    expect(open.code).toBe("SECRET_INSECURE");
    expect(open.message).toContain(file);
    expect(open.message).toContain("mode 644");
    expect(open.hint).toContain(`chmod 600 ${file}`);
    expect(open.hint).toContain(`chown root:root ${file}`);
    expect(open.message).not.toContain("Zq81vX0pLmN4tR7wK3yH9cF2bD6sA5eGq1Jx8Ut0Wm3a");
    chmodSync(file, 0o640);
    expect(() => loadConfig(file)).toThrow(/open to other users \(mode 640\)/);
    chmodSync(file, 0o600);
    expect(loadConfig(file).secret).toBe("Zq81vX0pLmN4tR7wK3yH9cF2bD6sA5eGq1Jx8Ut0Wm3a");
    // Owned by another user (when the test can hand the file over), or checked directly.
    const running = process.getuid?.() ?? 0;
    if (running === 0) {
      chownSync(file, 4321, 4321);
      expect(() => loadConfig(file)).toThrow(/owned by uid 4321, not root/);
      chownSync(file, 0, 0);
    }
    expect(() => checkInlineSecretFile(file, { uid: 4321, mode: 0o100600 }, 0)).toThrow(/owned by uid 4321/);
    expect(() => checkInlineSecretFile(file, { uid: 1000, mode: 0o100600 }, 1000)).not.toThrow();
    // A secret file is not affected by the config file's mode.
    const secretFile = join(dir, "secret");
    writeFileSync(secretFile, "Pk4Lw9Zr2Tx7Vb1Nc8Hm3Qs6Jd0Fg5Ya2Ue7Io4Re9b\n", { mode: 0o600 });
    writeFileSync(file, `node: {name: mn1, address: 10.0.0.11}\npeers: [{name: mn2, address: 10.0.0.12}]\nvip: {address: 10.0.0.100, interface: eth0}\ngateway: {address: 10.0.0.1}\nauth: {secretFile: ${secretFile}}\n`);
    chmodSync(file, 0o644);
    expect(loadConfig(file).secret).toBe("Pk4Lw9Zr2Tx7Vb1Nc8Hm3Qs6Jd0Fg5Ya2Ue7Io4Re9b");
  });

  it("show-config view: zsha2 field names, secret redacted", () => {
    const view = redactedConfig(parseConfig(minimal()));
    expect(view).toMatchObject({ nodeip: "10.0.0.11", peerip: "10.0.0.12", dbvip: "10.0.0.100", nic: "eth0", gw: "10.0.0.1", peerport: 7946 });
    expect(JSON.stringify(view)).not.toContain("0123456789abcdef-secret-Zq8Wv3Kx7Lm1Np5Rt9Yb2Hc");
  });
});
