import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deriveTimings, type MnhaConfig } from "@mnha/shared";

/** Every file the Keepalived driver reads, writes or hands to keepalived. */
export interface KeepalivedPaths {
  /** `<dataDir>/keepalived`, mode 0700: the files below live here unless overridden. */
  dir: string;
  /** Track file the agent writes: 0 = elected (may be MASTER), 1 = forbidden. */
  gateFile: string;
  /** Track file the lease guard writes: 0 = lease fresh, 1 = stale. */
  leaseFile: string;
  /** keepalived's notify_fifo, created by the driver. */
  notifyFifo: string;
  /** The rendered keepalived.conf (`keepalived.configPath`, default `<dataDir>/keepalived.conf`). */
  configFile: string;
  /** keepalived's parent and VRRP child pid files (per node, so two lab nodes never collide). */
  pidFile: string;
  vrrpPidFile: string;
  /** The lease guard script (bash), shipped in packages/agent/scripts. */
  leaseGuardScript: string;
  /** The optional vrrp_script lease check; null leaves it out of the config. */
  leaseCheckScript: string | null;
}

/** packages/agent/scripts, seen from src/keepalived or dist/keepalived. */
export function defaultScriptsDir(): string {
  return fileURLToPath(new URL("../../scripts/", import.meta.url));
}

export function defaultKeepalivedPaths(config: MnhaConfig, overrides: Partial<KeepalivedPaths> = {}): KeepalivedPaths {
  const dir = overrides.dir ?? resolve(config.dataDir, "keepalived");
  const scripts = defaultScriptsDir();
  return {
    dir,
    gateFile: join(dir, "gate"),
    leaseFile: join(dir, "lease"),
    notifyFifo: join(dir, "notify.fifo"),
    configFile: deriveTimings(config).keepalivedConfigPath,
    pidFile: join(dir, "keepalived.pid"),
    vrrpPidFile: join(dir, "keepalived-vrrp.pid"),
    leaseGuardScript: join(scripts, "mnha-lease-guard"),
    leaseCheckScript: join(scripts, "mnha-lease-check"),
    ...overrides,
  };
}

/** The directories that must exist before the driver writes its files. */
export function directoriesOf(paths: KeepalivedPaths): string[] {
  return [...new Set([paths.dir, dirname(paths.gateFile), dirname(paths.leaseFile), dirname(paths.notifyFifo), dirname(paths.pidFile), dirname(paths.vrrpPidFile)])];
}
