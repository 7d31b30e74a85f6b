import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { checkPasswordSources, inlinePasswordFlags, parsePeer, parseVip } from "../../src/cli/install.js";

async function run(args: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(["node", "mnha", ...args], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: {} });
  return { code, stdout, stderr };
}

describe("install-ha command line", () => {
  it("parses --peer and zsha2's -slave", () => {
    expect(parsePeer("ops@10.0.0.12", false)).toEqual({ username: "ops", host: "10.0.0.12", port: 22 });
    expect(parsePeer("ops@10.0.0.12:2222", false)).toEqual({ username: "ops", host: "10.0.0.12", port: 2222 });
    expect(parsePeer("root:p@ss:w@rd@10.0.0.12", true)).toEqual({ username: "root", host: "10.0.0.12", port: 22, password: "p@ss:w@rd" });
    expect(() => parsePeer("root@10.0.0.12", true)).toThrow(/password is missing/);
    expect(() => parsePeer("10.0.0.12", false)).toThrow(/user@address/);
    expect(parseVip("10.0.0.100")).toEqual({ address: "10.0.0.100", prefix: null });
    expect(parseVip("10.0.0.100/24")).toEqual({ address: "10.0.0.100", prefix: 24 });
  });

  it("needs the peer, and says how to give it", async () => {
    const result = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100", "-gateway", "127.0.0.1"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("install-ha needs the peer");
    expect(result.stderr).toContain("hint: e.g. mnha install-ha");
  });

  it("a bad VIP is a usage error naming the flag", async () => {
    const result = await run(["install-ha", "-nic", "lo", "-vip", "10.0.0.300/24x", "-gateway", "127.0.0.1", "-slave", "root:x@10.0.0.2"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("IPv4 address");
  });

  it("a missing bundle is named before anything connects", async () => {
    const result = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100/8", "-gateway", "127.0.0.1", "--peer", "ops@127.0.0.2", "--bundle", "/nonexistent/mnha-suite-1.0.0-linux-x64.tar.gz"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("the bundle /nonexistent/mnha-suite-1.0.0-linux-x64.tar.gz does not exist");
  });

  it("-peerpass (zsha2) is accepted as the peer's password; a second source for the same password is refused, never silently picked", async () => {
    expect(inlinePasswordFlags({ peerpass: "pw" })).toEqual(["-peerpass"]);
    expect(inlinePasswordFlags({ slave: "root:pw@10.0.0.2", dbRootPw: "x" })).toEqual(["-slave", "-db-root-pw"]);
    expect(inlinePasswordFlags({})).toEqual([]);
    expect(() => checkPasswordSources({ peerpass: "pw" }, {})).not.toThrow();
    expect(() => checkPasswordSources({ peerpass: "pw", peerPasswordFile: "/f" }, {})).toThrow(/given twice \(-peerpass, --peer-password-file\)/);
    expect(() => checkPasswordSources({ peerpass: "pw" }, { password: "pw2" })).toThrow(/given twice \(-slave user:password@ip, -peerpass\)/);
    expect(() => checkPasswordSources({ dbRootPw: "a", dbRootPwFile: "/f" }, {})).toThrow(/MariaDB root password is given twice/);
    const result = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100/8", "-gateway", "127.0.0.1", "--peer", "ops@127.0.0.2", "-peerpass", "pw-x1", "--peer-password-file", "/nonexistent", "--bundle", "/nonexistent/mnha-suite-1.0.0-linux-x64.tar.gz"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("warning: -peerpass put a password on the command line, where ps and the shell history can see it");
    expect(result.stderr).toContain("the peer's SSH password is given twice");
    expect(result.stdout + result.stderr).not.toContain("pw-x1");
  });

  it("-time-server must be an IPv4 address (the NTP query goes to it); preflight takes it too", async () => {
    const result = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100/8", "-gateway", "127.0.0.1", "--peer", "ops@127.0.0.2", "-time-server", "ntp..bad"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--time-server takes an IPv4 address, got "ntp..bad"');
    const preflight = await run(["preflight", "--nic", "lo", "--vip", "127.0.0.100/8", "--gateway", "127.0.0.1", "-time-server", "300.1.1.1"]);
    expect(preflight.code).toBe(2);
    expect(preflight.stderr).toContain("--time-server takes an IPv4 address");
  });

  it("a bad --sync-dir or --sync-schedule is refused before anything connects", async () => {
    const dir = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100/8", "-gateway", "127.0.0.1", "--peer", "ops@127.0.0.2", "--sync-dir", "relative/dir", "--bundle", "/nonexistent/mnha-suite-1.0.0-linux-x64.tar.gz"]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain("--sync-dir takes an absolute directory");
    const bundleDir = mkdtempSync(join(tmpdir(), "mnha-bundle-"));
    const bundle = join(bundleDir, "mnha-suite-1.0.0-linux-x64.tar.gz");
    writeFileSync(bundle, "");
    try {
      const schedule = await run(["install-ha", "-nic", "lo", "-vip", "127.0.0.100/8", "-gateway", "127.0.0.1", "--peer", "ops@127.0.0.2", "--sync-dir", "/var/lib/prom", "--sync-schedule", "every 5 minutes", "--bundle", bundle]);
      expect(schedule.code).toBe(2);
      expect(schedule.stderr).toMatch(/dataSync\.schedule/);
    } finally {
      rmSync(bundleDir, { recursive: true, force: true });
    }
  });
});
