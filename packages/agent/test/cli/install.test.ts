import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { parsePeer, parseVip } from "../../src/cli/install.js";

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
});
