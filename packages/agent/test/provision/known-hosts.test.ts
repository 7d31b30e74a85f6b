import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fingerprintOf, hostPattern, keyTypeOf, KnownHostsFile, parseKnownHosts, verifyHostKey } from "../../src/provision/known-hosts.js";
import { PassThrough } from "node:stream";
import { promptHidden, readSecret, readSecretFile } from "../../src/provision/secret-input.js";

/** A real host key made by ssh-keygen: its blob, its public line, and OpenSSH's own fingerprint. */
function hostKey(dir: string, name: string, type = "ed25519") {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", file]);
  const pub = readFileSync(`${file}.pub`, "utf8").trim();
  const [keyType, base64] = pub.split(/\s+/) as [string, string];
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${file}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
  return { blob: Buffer.from(base64, "base64"), keyType, base64, fingerprint };
}

describe("known_hosts", () => {
  const dir = mkdtempSync(join(tmpdir(), "kh-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const a = hostKey(dir, "a");
  const b = hostKey(dir, "b");
  const rsa = hostKey(dir, "r", "rsa");

  it("computes the same SHA256 fingerprint as ssh-keygen and reads the key type", () => {
    expect(fingerprintOf(a.blob)).toBe(a.fingerprint);
    expect(fingerprintOf(rsa.blob)).toBe(rsa.fingerprint);
    expect(keyTypeOf(a.blob)).toBe("ssh-ed25519");
    expect(keyTypeOf(rsa.blob)).toBe("ssh-rsa");
  });

  it("known, unknown and changed", () => {
    const entries = parseKnownHosts(`# comment\n10.0.0.2,mn2 ssh-ed25519 ${a.base64}\n[10.0.0.3]:2222 ssh-ed25519 ${a.base64}\n`);
    expect(verifyHostKey(entries, "10.0.0.2", 22, a.blob)).toEqual({ kind: "known" });
    expect(verifyHostKey(entries, "mn2", 22, a.blob)).toEqual({ kind: "known" });
    expect(verifyHostKey(entries, "10.0.0.3", 2222, a.blob)).toEqual({ kind: "known" });
    expect(verifyHostKey(entries, "10.0.0.3", 22, a.blob)).toEqual({ kind: "unknown" });
    expect(verifyHostKey(entries, "10.0.0.9", 22, a.blob)).toEqual({ kind: "unknown" });
    expect(verifyHostKey(entries, "10.0.0.2", 22, b.blob)).toEqual({ kind: "changed", knownTypes: ["ssh-ed25519"] });
  });

  it("reads hashed entries made by ssh-keygen -H", () => {
    const file = join(dir, "hashed");
    writeFileSync(file, `10.0.0.2 ssh-ed25519 ${a.base64}\n[10.0.0.2]:2222 ssh-ed25519 ${b.base64}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    expect(readFileSync(file, "utf8")).not.toContain("10.0.0.2");
    const known = new KnownHostsFile(file);
    expect(known.verify("10.0.0.2", 22, a.blob)).toEqual({ kind: "known" });
    expect(known.verify("10.0.0.2", 2222, b.blob)).toEqual({ kind: "known" });
    expect(known.verify("10.0.0.2", 22, b.blob).kind).toBe("changed");
  });

  it("a revoked key is treated as changed, never trusted", () => {
    const entries = parseKnownHosts(`@revoked 10.0.0.2 ssh-ed25519 ${a.base64}\n`);
    expect(verifyHostKey(entries, "10.0.0.2", 22, a.blob).kind).toBe("changed");
  });

  it("adds an entry OpenSSH itself can find (ssh-keygen -F)", () => {
    const file = join(dir, "added");
    const known = new KnownHostsFile(file);
    known.add("10.0.0.7", 22, a.blob);
    known.add("10.0.0.7", 2200, b.blob);
    expect(known.verify("10.0.0.7", 22, a.blob)).toEqual({ kind: "known" });
    expect(execFileSync("ssh-keygen", ["-F", "10.0.0.7", "-f", file], { encoding: "utf8" })).toContain(a.base64);
    expect(execFileSync("ssh-keygen", ["-F", "[10.0.0.7]:2200", "-f", file], { encoding: "utf8" })).toContain(b.base64);
    expect(known.keyTypesFor("10.0.0.7", 22)).toEqual(["ssh-ed25519"]);
    expect(hostPattern("h", 22)).toBe("h");
  });
});

describe("secret input", () => {
  const dir = mkdtempSync(join(tmpdir(), "sec-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it("reads a 0600 file without its newline and refuses a readable one", () => {
    const file = join(dir, "pw");
    writeFileSync(file, "s3cret pass\n", { mode: 0o600 });
    expect(readSecretFile(file, "password")).toBe("s3cret pass");
    chmodSync(file, 0o644);
    expect(() => readSecretFile(file, "password")).toThrow(/can be read by other users/);
    expect(() => readSecretFile(join(dir, "missing"), "password")).toThrow(/cannot be read/);
  });

  it("falls back to an environment variable, and to nothing without a terminal", async () => {
    expect(await readSecret({ envName: "PW", env: { PW: "x" } }, "password")).toBe("x");
    expect(await readSecret({ envName: "PW", env: {} }, "password")).toBeNull();
  });

  it("the prompt reads a typed password in raw mode and echoes none of it", async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true, raw: [] as boolean[], setRawMode(raw: boolean) { this.raw.push(raw); return this; } });
    let shown = "";
    const answer = promptHidden({ question: "Password: ", input, output: { write: (t: string) => (shown += t) } });
    input.write("hunter2x");
    input.write("\u007f"); // backspace
    input.write("2\r");
    expect(await answer).toBe("hunter22");
    expect(shown).toBe("Password: \n");
    expect(input.raw).toEqual([true, false]);
  });

  it("Ctrl-C at the prompt cancels", async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
    const answer = promptHidden({ question: "? ", input, output: { write: () => undefined } });
    input.write("ab\u0003");
    await expect(answer).rejects.toThrow(/cancelled/);
  });
});
