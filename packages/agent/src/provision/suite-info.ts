/**
 * Versions an operator asks about: the installed suite (app/suite.json, written by the
 * bundle build), the peer protocol, and the platform's (the cloud's own version and
 * license type, read from files whose locations are configurable: the platform's layout
 * differs between releases, and the lab uses stand-in files).
 */
import { existsSync, readFileSync } from "node:fs";
import { PROTOCOL_VERSIONS } from "@mnha/protocol";

export interface SuiteInfo {
  suite: string;
  /** The newest peer protocol version this build offers. */
  protocol: number;
  /** Every peer protocol version this build offers in its hello (the handshake picks the highest both speak). */
  protocols: number[];
  /** A test build (bundle.sh --suite-version / --protocol-versions / --fail-install-if): never shipped. */
  testBuild?: boolean;
  gitTree?: string;
  /** false: running from a source build, not an installed suite. */
  bundled: boolean;
}

export const DEFAULT_PLATFORM_VERSION_FILE = "/usr/local/zstack/VERSION";
export const DEFAULT_LICENSE_FILE = "/var/lib/zstack/license/license-type";

export interface PlatformFiles {
  versionFile: string;
  licenseFile: string;
}

/** Where the platform's version and license type are read: flags, then MNHA_PLATFORM_VERSION_FILE / MNHA_LICENSE_FILE, then the defaults. */
export function platformFiles(env: Record<string, string | undefined> = process.env, overrides: Partial<PlatformFiles> = {}): PlatformFiles {
  return {
    versionFile: overrides.versionFile ?? env["MNHA_PLATFORM_VERSION_FILE"] ?? DEFAULT_PLATFORM_VERSION_FILE,
    licenseFile: overrides.licenseFile ?? env["MNHA_LICENSE_FILE"] ?? DEFAULT_LICENSE_FILE,
  };
}

export function readSuiteInfo(): SuiteInfo {
  const file = new URL("../../suite.json", import.meta.url); // dist/provision -> the app root
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, "utf8")) as { suite?: string; gitTree?: string; protocolVersions?: unknown; testBuild?: unknown };
      if (typeof parsed.suite === "string") {
        const protocols = offeredProtocolVersions(parsed.protocolVersions);
        return { suite: parsed.suite, protocol: Math.max(...protocols), protocols, ...(parsed.gitTree ? { gitTree: parsed.gitTree } : {}), ...(parsed.testBuild === true ? { testBuild: true } : {}), bundled: true };
      }
    } catch {
      // fall through: a damaged suite.json reads as a source build
    }
  }
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return { suite: pkg.version ?? "0.0.0", protocol: Math.max(...PROTOCOL_VERSIONS), protocols: [...PROTOCOL_VERSIONS], bundled: false };
}

/**
 * The peer protocol versions a build offers: the code's own (PROTOCOL_VERSIONS), or the list
 * its suite.json declares. A build may add versions (a test build of the next version offers
 * [current, current+1], to prove the negotiation across an upgrade); a version above the
 * code's newest is spoken with the newest framing the code knows. It may never drop one the
 * code speaks: such a list (or a damaged one) is ignored.
 */
export function offeredProtocolVersions(declared: unknown): number[] {
  const own: number[] = [...PROTOCOL_VERSIONS];
  if (!Array.isArray(declared) || declared.length === 0 || declared.length > 16) return own;
  if (!declared.every((v): v is number => Number.isInteger(v) && (v as number) > 0)) return own;
  if (!own.every((v) => declared.includes(v))) return own;
  return [...new Set(declared)].sort((a, b) => a - b);
}

/** The first non-empty line of a small text file, or null when absent or unreadable. */
export function firstLine(file: string): string | null {
  try {
    const line = readFileSync(file, "utf8").split("\n").map((l) => l.trim()).find((l) => l !== "");
    return line ?? null;
  } catch {
    return null;
  }
}

export function readPlatform(files: PlatformFiles): { version: string | null; license: string | null } {
  return { version: firstLine(files.versionFile), license: firstLine(files.licenseFile) };
}
