/**
 * One SSH session to the peer MN (ssh2): the host key is always checked against a
 * known_hosts file (see known-hosts.ts), the password is offered both as "password" and
 * through keyboard-interactive (servers that only take the latter), or a private key is
 * used. Remote commands are argument arrays (quoted by shell-quote.ts); when the login user
 * is not root they run under `sudo -n`. Uploads go over SFTP and are checked with SHA-256.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Client, ConnectConfig, SFTPWrapper } from "ssh2";
import { MnhaError } from "@mnha/shared";
import { algorithmsForKeyTypes, fingerprintOf, keyTypeOf, KnownHostsFile, type HostKeyVerdict } from "./known-hosts.js";
import { quoteCommand } from "./shell-quote.js";

export interface SshTarget {
  host: string;
  port?: number;
  username: string;
}

export interface SshCredentials {
  password?: string;
  privateKey?: Buffer;
  passphrase?: string;
}

export interface HostKeyPolicy {
  knownHosts: KnownHostsFile;
  /** Accept an unknown host whose key has exactly this fingerprint (scripts: --yes plus the fingerprint). */
  acceptFingerprint?: string;
  /** Ask the operator about an unknown key; resolves true to trust it. Absent: unknown keys are refused. */
  confirmUnknown?: (question: { host: string; keyType: string; fingerprint: string }) => Promise<boolean>;
  /** false: do not write a newly confirmed key yet; call recordHostKey() once the caller is sure (install-ha: after preflight). */
  recordNewKey?: boolean;
}

export interface RemoteResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin (how secrets reach a remote command: never argv). */
  input?: string | Buffer;
  timeoutMs?: number;
  /** Run as the login user even when it is not root. */
  asLoginUser?: boolean;
}

const CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly target: Required<SshTarget>,
    /** The login user is uid 0: no sudo needed. */
    private isRoot: boolean,
    readonly hostKeyFingerprint: string,
  ) {}

  static async connect(target: SshTarget, credentials: SshCredentials, policy: HostKeyPolicy): Promise<SshSession> {
    const port = target.port ?? 22;
    const full: Required<SshTarget> = { host: target.host, port, username: target.username };
    if (credentials.password === undefined && credentials.privateKey === undefined) {
      throw new MnhaError("USAGE", `no password and no key to log in to ${describe(full)}`, { hint: "pass --peer-password-file FILE, --peer-key FILE, or run on a terminal to be asked for the password" });
    }
    // Loaded here, not at the top: the CLI module graph is also the agent daemon's, which
    // never uses SSH, and ssh2 costs it megabytes of memory (issue 12).
    const { Client: SshClient } = await import("ssh2");
    const client = new SshClient();
    let offered: { blob: Buffer; verdict: HostKeyVerdict; fingerprint: string; accepted: boolean } | null = null;
    const knownTypes = policy.knownHosts.keyTypesFor(full.host, port);

    const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
      const fingerprint = fingerprintOf(key);
      const verdict = policy.knownHosts.verify(full.host, port, key);
      offered = { blob: Buffer.from(key), verdict, fingerprint, accepted: false };
      if (verdict.kind === "known") return verify(true);
      if (verdict.kind === "changed") return verify(false);
      if (policy.acceptFingerprint !== undefined) {
        offered.accepted = policy.acceptFingerprint === fingerprint;
        return verify(offered.accepted);
      }
      if (!policy.confirmUnknown) return verify(false);
      const current = offered;
      policy.confirmUnknown({ host: hostLabel(full), keyType: keyTypeOf(key), fingerprint }).then(
        (yes) => {
          current.accepted = yes;
          verify(yes);
        },
        () => verify(false),
      );
    };

    const config: ConnectConfig = {
      host: full.host,
      port,
      username: full.username,
      readyTimeout: CONNECT_TIMEOUT_MS,
      hostVerifier: hostVerifier as ConnectConfig["hostVerifier"],
      tryKeyboard: credentials.password !== undefined,
      ...(credentials.password !== undefined ? { password: credentials.password } : {}),
      ...(credentials.privateKey !== undefined ? { privateKey: credentials.privateKey, ...(credentials.passphrase !== undefined ? { passphrase: credentials.passphrase } : {}) } : {}),
      // Ask for the key type known_hosts has, so a host with several keys is compared like for like.
      ...(knownTypes.length > 0 ? { algorithms: { serverHostKey: algorithmsForKeyTypes(knownTypes) as never } } : {}),
    };
    if (credentials.password !== undefined) {
      const password = credentials.password;
      client.on("keyboard-interactive", (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)));
    }

    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error & { level?: string }) => {
        client.removeListener("ready", onReady);
        client.end();
        reject(connectError(full, error, offered, policy));
      };
      const onReady = () => {
        client.removeListener("error", onError);
        resolve();
      };
      client.once("ready", onReady);
      client.once("error", onError);
      client.connect(config);
    });

    // Only now (logged in) is a newly confirmed key written: a failed login changes nothing.
    const hostKey = offered as { blob: Buffer; verdict: HostKeyVerdict; fingerprint: string; accepted: boolean } | null;
    if (hostKey === null) {
      client.end();
      throw new MnhaError("SSH_CONNECT", `${describe(full)} sent no host key`, { hint: "check that the address is an SSH server" });
    }
    const isNew = hostKey.verdict.kind === "unknown" && hostKey.accepted;
    if (isNew && policy.recordNewKey !== false) policy.knownHosts.add(full.host, port, hostKey.blob);
    client.on("error", () => undefined); // later transport errors surface through the calls in progress

    const session = new SshSession(client, full, false, hostKey.fingerprint);
    session.hostKeyBlob = hostKey.blob;
    session.unrecordedKey = isNew && policy.recordNewKey === false ? policy.knownHosts : null;
    const id = await session.exec(["id", "-u"], { asLoginUser: true, timeoutMs: 15_000 });
    session.isRoot = id.code === 0 && id.stdout.trim() === "0";
    return session;
  }

  /** The peer's host key blob (as sent in the handshake). */
  hostKeyBlob: Buffer = Buffer.alloc(0);
  private unrecordedKey: KnownHostsFile | null = null;

  /** Writes a newly confirmed host key to known_hosts (when recordNewKey was false). */
  recordHostKey(): void {
    if (this.unrecordedKey === null) return;
    this.unrecordedKey.add(this.target.host, this.target.port, this.hostKeyBlob);
    this.unrecordedKey = null;
  }

  /** Whether commands run directly as root (true) or through `sudo -n` (false). */
  get loginIsRoot(): boolean {
    return this.isRoot;
  }

  /** The command line that is sent: sudo -n in front when the login user is not root. */
  commandLine(argv: readonly string[], asLoginUser = false): string {
    return quoteCommand(this.isRoot || asLoginUser ? argv : ["sudo", "-n", "--", ...argv]);
  }

  exec(argv: readonly string[], options: ExecOptions = {}): Promise<RemoteResult> {
    const command = this.commandLine(argv, options.asLoginUser === true);
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(new MnhaError("REMOTE_COMMAND", `could not run ${argv[0] ?? ""} on ${describe(this.target)}: ${error.message}`, { hint: "check the SSH connection to the peer", cause: error }));
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code = -1;
        let signal: string | null = null;
        const timer = setTimeout(() => {
          channel.close();
          reject(new MnhaError("REMOTE_COMMAND", `${argv.join(" ")} on ${describe(this.target)} took longer than ${timeoutMs} ms`, { hint: "see what the peer is doing; run the command again" }));
        }, timeoutMs);
        channel.on("data", (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        channel.on("exit", (exitCode: number | null, exitSignal?: string) => {
          code = exitCode ?? -1;
          signal = exitSignal ?? null;
        });
        channel.on("close", () => {
          clearTimeout(timer);
          resolve({ code, signal, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") });
        });
        channel.end(options.input);
      });
    });
  }

  /** Runs the command and throws REMOTE_COMMAND (with its stderr) when it fails. */
  async run(argv: readonly string[], options: ExecOptions & { what?: string } = {}): Promise<RemoteResult> {
    const result = await this.exec(argv, options);
    if (result.code !== 0) {
      const detail = (result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ");
      const sudoMissing = !this.isRoot && /sudo: (command not found|a password is required)|sudo: not found/.test(result.stderr);
      throw new MnhaError("REMOTE_COMMAND", `${options.what ?? argv.join(" ")} failed on ${describe(this.target)} (exit ${result.code}): ${detail}`, {
        hint: sudoMissing ? `the user ${this.target.username} needs password-less sudo on ${this.target.host} (a file in /etc/sudoers.d), or log in as root` : "see the message above; fix it on the peer and run the command again",
        fields: { command: argv[0], code: result.code },
      });
    }
    return result;
  }

  /**
   * Copies a file over SFTP to `remotePath` (through `remotePath.part`), checks its SHA-256
   * on the peer and only then renames it into place. Returns the digest.
   */
  async upload(localPath: string, remotePath: string, options: { mode?: number } = {}): Promise<string> {
    const expected = await sha256OfFile(localPath);
    const partial = `${remotePath}.part`;
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((error, wrapper) => (error ? reject(error) : resolve(wrapper))));
    try {
      await new Promise<void>((resolve, reject) => sftp.fastPut(localPath, partial, { mode: options.mode ?? 0o600 }, (error) => (error ? reject(error) : resolve())));
    } catch (error) {
      throw new MnhaError("UPLOAD_VERIFY", `copying ${localPath} to ${describe(this.target)}:${partial} failed: ${(error as Error).message}`, { hint: `check the free space and permissions of ${partial} on the peer`, cause: error });
    } finally {
      sftp.end();
    }
    const sum = await this.run(["sha256sum", "--", partial], { what: "sha256sum of the uploaded file" });
    const actual = sum.stdout.trim().split(/\s+/)[0] ?? "";
    if (actual !== expected) {
      await this.exec(["rm", "-f", "--", partial]);
      throw new MnhaError("UPLOAD_VERIFY", `the copy of ${localPath} on ${describe(this.target)} is corrupt (SHA-256 ${actual.slice(0, 16)}…, expected ${expected.slice(0, 16)}…)`, { hint: "run the command again; if it repeats, check the peer's disk and the network" });
    }
    await this.run(["mv", "-f", "--", partial, remotePath], { what: `moving the upload into place at ${remotePath}` });
    return expected;
  }

  close(): void {
    this.client.end();
  }
}

export function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

function describe(target: Required<SshTarget>): string {
  return `${target.username}@${hostLabel(target)}`;
}

function hostLabel(target: Required<SshTarget>): string {
  return target.port === 22 ? target.host : `${target.host}:${target.port}`;
}

function connectError(target: Required<SshTarget>, error: Error & { level?: string }, offered: { verdict: HostKeyVerdict; fingerprint: string; blob: Buffer; accepted: boolean } | null, policy: HostKeyPolicy): MnhaError {
  const file = policy.knownHosts.file;
  if (offered?.verdict.kind === "changed") {
    return new MnhaError("HOST_KEY_CHANGED", `the host key of ${hostLabel(target)} has CHANGED: it now offers ${keyTypeOf(offered.blob)} ${offered.fingerprint}, which is not the key in ${file}. Someone may be intercepting the connection, or the peer was reinstalled. Nothing was changed.`, {
      hint: `check the key on the peer's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); only if it matches, remove the old entry (ssh-keygen -R ${target.port === 22 ? target.host : `'[${target.host}]:${target.port}'`} -f ${file}) and run again`,
      fields: { host: target.host, fingerprint: offered.fingerprint },
    });
  }
  if (offered?.verdict.kind === "unknown" && !offered.accepted) {
    const mismatch = policy.acceptFingerprint !== undefined;
    return new MnhaError("HOST_KEY_UNKNOWN", mismatch
      ? `the host key of ${hostLabel(target)} is ${offered.fingerprint}, not the ${policy.acceptFingerprint} you gave. Nothing was changed.`
      : `the host key of ${hostLabel(target)} is not in ${file} and was not confirmed: ${keyTypeOf(offered.blob)} ${offered.fingerprint}. Nothing was changed.`, {
      hint: `compare it with the peer's own (on its console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); then run again on a terminal and answer yes, or pass --yes --peer-host-key ${offered.fingerprint}`,
      fields: { host: target.host, fingerprint: offered.fingerprint },
    });
  }
  if (error.level === "client-authentication") {
    return new MnhaError("SSH_AUTH", `could not log in to ${describe(target)}: the password or key was refused. Nothing was changed.`, {
      hint: `check the user and the password (--peer-password-file, or type it at the prompt) or key; the peer's sshd must allow that method (PasswordAuthentication or KbdInteractiveAuthentication)`,
    });
  }
  if (error.level === "client-timeout") {
    return new MnhaError("SSH_CONNECT", `no SSH answer from ${hostLabel(target)} within ${CONNECT_TIMEOUT_MS / 1000} s`, { hint: "check the address and that sshd runs on the peer and the firewall lets port 22 through" });
  }
  return new MnhaError("SSH_CONNECT", `could not connect to ${hostLabel(target)} over SSH: ${error.message}`, {
    hint: "check the peer's address, that sshd runs there, and that nothing blocks the port",
    cause: error,
  });
}
