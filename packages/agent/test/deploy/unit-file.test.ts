/**
 * deploy/mnha.service: the sandbox directives are there, and under ProtectSystem=strict every
 * place the agent writes with the default config is one of its ReadWritePaths.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { deriveTimings, parseConfig } from "@mnha/shared";
import { describe, expect, it } from "vitest";
import { defaultKeepalivedPaths, directoriesOf } from "../../src/keepalived/paths.js";

const UNIT = new URL("../../../../deploy/mnha.service", import.meta.url);

/** [Service] settings; a key given more than once keeps every value. */
function serviceSection(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? "";
      continue;
    }
    if (section !== "Service") continue;
    const at = line.indexOf("=");
    const key = line.slice(0, at).trim();
    settings.set(key, [...(settings.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return settings;
}

const service = serviceSection(readFileSync(UNIT, "utf8"));
const one = (key: string): string | undefined => service.get(key)?.at(-1);
const words = (key: string): string[] => (service.get(key) ?? []).flatMap((value) => value.split(/\s+/)).filter(Boolean);

describe("deploy/mnha.service hardening", () => {
  it("sets the sandbox directives", () => {
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("ProtectSystem")).toBe("strict");
    expect(["yes", "read-only"]).toContain(one("ProtectHome"));
    expect(one("PrivateTmp")).toBe("yes");
    expect(one("PrivateDevices")).toBe("yes");
    for (const key of ["LockPersonality", "RestrictRealtime", "RestrictSUIDSGID", "RestrictNamespaces", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "PrivateMounts"]) {
      expect(one(key), key).toBe("yes");
    }
    expect(one("SystemCallArchitectures")).toBe("native");
    expect(one("UMask")).toBe("0077");
  });

  it("bounds the capabilities to what Keepalived, arping and the checks need, and no more", () => {
    expect(words("CapabilityBoundingSet").sort()).toEqual(["CAP_DAC_READ_SEARCH", "CAP_KILL", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID"]);
    expect(words("AmbientCapabilities")).toEqual([]);
    expect(words("RestrictAddressFamilies").sort()).toEqual(["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"]);
  });

  it("leaves out what would break the agent: Node's JIT needs writable executable memory", () => {
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
    // Keepalived writes interface sysctls (promote_secondaries) under /proc/sys.
    expect(service.has("ProtectKernelTunables")).toBe(false);
    // A deny list only, errors rather than kills.
    expect(words("SystemCallFilter")[0]?.startsWith("~")).toBe(true);
    expect(one("SystemCallErrorNumber")).toBe("EPERM");
  });

  it("gives the agent's node the V8 heap flags (issue 12's idle memory), and this node accepts them", () => {
    const environment = (service.get("Environment") ?? []).map((value) => value.replace(/^"(.*)"$/, "$1"));
    const options = environment.find((value) => value.startsWith("MNHA_NODE_OPTIONS="))?.slice("MNHA_NODE_OPTIONS=".length);
    const flags = (options ?? "").split(" ").filter(Boolean);
    expect(flags).toEqual(["--max-semi-space-size=1", "--optimize-for-size", "--no-sparkplug"]);
    const run = spawnSync(process.execPath, [...flags, "-e", "process.exit(7)"], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(7);
  });

  it("limits glibc's malloc arenas for the agent (issue 12's idle memory; the lab's AGENT_ENV is the same)", () => {
    const environment = (service.get("Environment") ?? []).map((value) => value.replace(/^"(.*)"$/, "$1"));
    expect(environment.filter((value) => value.startsWith("MALLOC_ARENA_MAX="))).toEqual(["MALLOC_ARENA_MAX=2"]);
  });

  it("keeps KillMode=process so a dead agent's lease guard can still drop the VIP", () => {
    expect(one("KillMode")).toBe("process");
  });

  it("lets the agent write every place the default config writes to, and nothing else", () => {
    const config = parseConfig({
      node: { name: "mn1", address: "10.0.0.11" },
      peers: [{ name: "mn2", address: "10.0.0.12" }],
      vip: { address: "10.0.0.100", interface: "eth0" },
      gateway: { address: "10.0.0.1" },
      auth: { secretFile: "/etc/mnha/secret" },
    });
    const writable = words("ReadWritePaths").map((path) => path.replace(/^-/, ""));
    const keepalived = defaultKeepalivedPaths(config);
    const written = [
      config.dataDir,
      dirname(config.controlSocket),
      dirname(config.store.path ?? `${config.dataDir}/mnha.db`),
      dirname(deriveTimings(config).keepalivedConfigPath),
      ...directoriesOf(keepalived),
    ];
    for (const path of written) expect(writable.some((root) => path === root || path.startsWith(`${root}/`)), `${path} is writable`).toBe(true);
    expect(writable.sort()).toEqual(["/run/mnha", "/var/lib/mnha"]);
    // The unit's own directories are the same places.
    expect(one("StateDirectory")).toBe("mnha");
    expect(one("RuntimeDirectory")).toBe("mnha");
  });
});
