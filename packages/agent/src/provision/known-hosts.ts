/**
 * The peer's host key, checked against an OpenSSH known_hosts file. A key that matches is
 * trusted; a host with no entry is "unknown" (the operator confirms its SHA256 fingerprint);
 * a host whose entries all differ from the offered key is "changed" and stops everything.
 */
import { createHash, createHmac } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

export type HostKeyVerdict = { kind: "known" } | { kind: "unknown" } | { kind: "changed"; knownTypes: string[] };

export interface KnownHostEntry {
  /** The host patterns as written: plain names, [host]:port, or one |1|salt|hash. */
  hosts: string[];
  keyType: string;
  key: Buffer;
  revoked: boolean;
}

/** OpenSSH's fingerprint: SHA256 of the key blob, base64 without padding. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const length = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + length).toString("latin1");
}

/** How known_hosts names a host: "host" on port 22, "[host]:port" otherwise. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith("@")) {
      const marker = fields.shift();
      if (marker === "@revoked") revoked = true;
      else continue; // @cert-authority: certificates are not used here
    }
    const [hosts, keyType, key] = fields;
    if (hosts === undefined || keyType === undefined || key === undefined) continue;
    entries.push({ hosts: hosts.split(","), keyType, key: Buffer.from(key, "base64"), revoked });
  }
  return entries;
}

function matchesHost(entry: KnownHostEntry, pattern: string): boolean {
  return entry.hosts.some((candidate) => {
    if (candidate.startsWith("|1|")) {
      const [, , salt, hash] = candidate.split("|");
      if (salt === undefined || hash === undefined) return false;
      return createHmac("sha1", Buffer.from(salt, "base64")).update(pattern).digest("base64") === hash;
    }
    return candidate === pattern; // wildcards and negations are not honoured: exact names only
  });
}

export function verifyHostKey(entries: readonly KnownHostEntry[], host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const pattern = hostPattern(host, port);
  const forHost = entries.filter((entry) => matchesHost(entry, pattern));
  if (forHost.some((entry) => entry.revoked && entry.key.equals(keyBlob))) return { kind: "changed", knownTypes: [] };
  const trusted = forHost.filter((entry) => !entry.revoked);
  if (trusted.some((entry) => entry.key.equals(keyBlob))) return { kind: "known" };
  if (trusted.length === 0) return { kind: "unknown" };
  return { kind: "changed", knownTypes: [...new Set(trusted.map((entry) => entry.keyType))] };
}

/** The ssh2 host-key algorithm names that select a stored key type (so the server offers that one). */
export function algorithmsForKeyTypes(keyTypes: readonly string[]): string[] {
  const out: string[] = [];
  for (const type of keyTypes) {
    if (type === "ssh-rsa") out.push("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa");
    else out.push(type);
  }
  return out;
}

export class KnownHostsFile {
  constructor(readonly file: string) {}

  entries(): KnownHostEntry[] {
    return existsSync(this.file) ? parseKnownHosts(readFileSync(this.file, "utf8")) : [];
  }

  /** Key types stored for this host (to ask the server for one of them). */
  keyTypesFor(host: string, port: number): string[] {
    const pattern = hostPattern(host, port);
    return [...new Set(this.entries().filter((entry) => !entry.revoked && matchesHost(entry, pattern)).map((entry) => entry.keyType))];
  }

  verify(host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
    return verifyHostKey(this.entries(), host, port, keyBlob);
  }

  add(host: string, port: number, keyBlob: Buffer): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const existing = existsSync(this.file) ? readFileSync(this.file, "utf8") : "";
    const separator = existing === "" || existing.endsWith("\n") ? "" : "\n";
    appendFileSync(this.file, `${separator}${hostPattern(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString("base64")}\n`, { mode: 0o600 });
  }
}
