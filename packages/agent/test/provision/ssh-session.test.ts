/**
 * SshSession against an in-process ssh2 server that runs each exec request with a real
 * /bin/sh (so quoting is proven by a shell). Real OpenSSH is proven in test/e2e/install.test.ts.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprintOf, KnownHostsFile } from "../../src/provision/known-hosts.js";
import { SshSession } from "../../src/provision/ssh-session.js";

const dir = mkdtempSync(join(tmpdir(), "sshs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function keyPair(name: string) {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  return { privateKey: readFileSync(file), blob: Buffer.from(readFileSync(`${file}.pub`, "utf8").split(/\s+/)[1] as string, "base64") };
}
const hostKeyA = keyPair("host-a");
const hostKeyB = keyPair("host-b");

const clientKey = keyPair("client");

function startServer(hostKey: Buffer, mode: "password" | "keyboard-interactive" | "publickey"): Promise<{ server: Server; port: number; commands: string[] }> {
  const commands: string[] = [];
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (mode === "password" && ctx.method === "password" && ctx.username === "ops" && ctx.password === "right pw") return ctx.accept();
      if (mode === "publickey" && ctx.method === "publickey" && ctx.key.data.equals(clientKey.blob)) return ctx.accept();
      if (mode === "keyboard-interactive" && ctx.method === "keyboard-interactive") {
        return ctx.prompt([{ prompt: "Password: ", echo: false }], (answers) => (answers[0] === "right pw" ? ctx.accept() : ctx.reject()));
      }
      ctx.reject([mode]);
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          commands.push(info.command);
          const stream = acceptExec();
          const child = spawn("/bin/sh", ["-c", info.command], { stdio: ["pipe", "pipe", "pipe"] });
          stream.pipe(child.stdin);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          child.on("close", (code) => {
            stream.exit(code ?? 1);
            stream.end();
          });
        });
      });
    });
    client.on("error", () => undefined);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port, commands })));
}

describe("SshSession", () => {
  let password: Awaited<ReturnType<typeof startServer>>;
  let keyboard: Awaited<ReturnType<typeof startServer>>;
  let publickey: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    password = await startServer(hostKeyA.privateKey, "password");
    keyboard = await startServer(hostKeyA.privateKey, "keyboard-interactive");
    publickey = await startServer(hostKeyA.privateKey, "publickey");
  });
  afterAll(() => {
    password.server.close();
    keyboard.server.close();
    publickey.server.close();
  });

  it("logs in with a private key, and refuses without any credential", async () => {
    const policy = { knownHosts: new KnownHostsFile(join(dir, "kh-key")), acceptFingerprint: fingerprintOf(hostKeyA.blob) };
    const session = await SshSession.connect({ host: "127.0.0.1", port: publickey.port, username: "ops" }, { privateKey: clientKey.privateKey }, policy);
    expect((await session.run(["echo", "key"])).stdout).toBe("key\n");
    session.close();
    const wrongKey = await SshSession.connect({ host: "127.0.0.1", port: publickey.port, username: "ops" }, { privateKey: hostKeyB.privateKey }, policy).catch((e: unknown) => e);
    expect(wrongKey).toMatchObject({ code: "SSH_AUTH" });
    await expect(SshSession.connect({ host: "127.0.0.1", port: publickey.port, username: "ops" }, {}, policy)).rejects.toThrow(/no password and no key/);
  });

  it("refuses an unknown host key without confirmation, naming its fingerprint; known_hosts unchanged", async () => {
    const knownHosts = new KnownHostsFile(join(dir, "kh-unknown"));
    const error = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "right pw" }, { knownHosts }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "HOST_KEY_UNKNOWN" });
    expect((error as Error).message).toContain(fingerprintOf(hostKeyA.blob));
    expect(knownHosts.entries()).toEqual([]);
    expect(password.commands).toEqual([]);
  });

  it("asks about an unknown key, records it after login, runs quoted commands as root with stdin", async () => {
    const knownHosts = new KnownHostsFile(join(dir, "kh-ask"));
    const asked: string[] = [];
    const session = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "right pw" }, {
      knownHosts,
      confirmUnknown: async (q) => {
        asked.push(q.fingerprint);
        return true;
      },
    });
    try {
      expect(asked).toEqual([fingerprintOf(hostKeyA.blob)]);
      expect(knownHosts.verify("127.0.0.1", password.port, hostKeyA.blob)).toEqual({ kind: "known" });
      expect(session.loginIsRoot).toBe(process.getuid?.() === 0);
      const echoed = await session.run(["printf", "%s|", "$(id)", "a b", "it's"]);
      expect(echoed.stdout).toBe("$(id)|a b|it's|");
      const fromStdin = await session.run(["cat"], { input: "secret via stdin" });
      expect(fromStdin.stdout).toBe("secret via stdin");
      expect(password.commands.join("\n")).not.toContain("secret via stdin");
      await expect(session.run(["sh", "-c", "echo boom >&2; exit 3"], { what: "the boom step" })).rejects.toThrow(/the boom step failed on ops@127.0.0.1:\d+ \(exit 3\): boom/);
    } finally {
      session.close();
    }
  });

  it("a changed host key stops with HOST_KEY_CHANGED before logging in", async () => {
    const knownHosts = new KnownHostsFile(join(dir, "kh-changed"));
    knownHosts.add("127.0.0.1", password.port, hostKeyB.blob);
    const error = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "right pw" }, { knownHosts, confirmUnknown: async () => true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "HOST_KEY_CHANGED" });
    expect((error as Error & { hint: string }).hint).toContain("ssh-keygen -R");
  });

  it("--yes with a fingerprint accepts only that key", async () => {
    const wrong = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "right pw" }, { knownHosts: new KnownHostsFile(join(dir, "kh-fp1")), acceptFingerprint: fingerprintOf(hostKeyB.blob) }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: "HOST_KEY_UNKNOWN" });
    const right = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "right pw" }, { knownHosts: new KnownHostsFile(join(dir, "kh-fp2")), acceptFingerprint: fingerprintOf(hostKeyA.blob) });
    right.close();
  });

  it("a wrong password is SSH_AUTH and known_hosts stays unchanged", async () => {
    const knownHosts = new KnownHostsFile(join(dir, "kh-auth"));
    const error = await SshSession.connect({ host: "127.0.0.1", port: password.port, username: "ops" }, { password: "wrong" }, { knownHosts, confirmUnknown: async () => true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "SSH_AUTH" });
    expect((error as Error).message).not.toContain("wrong");
    expect(knownHosts.entries()).toEqual([]);
  });

  it("logs in through keyboard-interactive when the server only offers that", async () => {
    const session = await SshSession.connect({ host: "127.0.0.1", port: keyboard.port, username: "ops" }, { password: "right pw" }, { knownHosts: new KnownHostsFile(join(dir, "kh-kbd")), acceptFingerprint: fingerprintOf(hostKeyA.blob) });
    expect((await session.run(["echo", "in"])).stdout).toBe("in\n");
    session.close();
  });
});
