import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { probeWrite, readOnlyDirs, writableDirs, type WritableDir } from "../../src/daemon/writable-dirs.js";
import { loadedConfig } from "./in-memory.js";

const erofs = (dir: string): NodeJS.ErrnoException => Object.assign(new Error(`EROFS: read-only file system, access '${dir}'`), { code: "EROFS" });

describe("writableDirs", () => {
  it("lists the data dir, Keepalived's config, the control socket's and the store's directories; backups only when enabled", () => {
    const off = writableDirs(loadedConfig({ dataDir: "/var/lib/mnha", controlSocket: "/run/mnha/mnha.sock" }));
    // Keepalived's config and the store default into the data dir: one entry, essential.
    expect(off).toEqual([
      { setting: "dataDir", dir: "/var/lib/mnha", essential: true, ofFile: false },
      { setting: "controlSocket", dir: "/run/mnha", essential: true, ofFile: true },
    ]);
    const moved = writableDirs(loadedConfig({ dataDir: "/var/lib/mnha", store: { path: "/srv/store/mnha.db" }, keepalived: { configPath: "/etc/mnha/keepalived.conf" }, backup: { enabled: true, dir: "/backup/mnha" } }));
    expect(moved).toEqual([
      { setting: "dataDir", dir: "/var/lib/mnha", essential: true, ofFile: false },
      { setting: "keepalived.configPath", dir: "/etc/mnha", essential: true, ofFile: true },
      { setting: "controlSocket", dir: "/run/mnha", essential: true, ofFile: true },
      { setting: "store.path", dir: "/srv/store", essential: false, ofFile: true },
      { setting: "backup.dir", dir: "/backup/mnha", essential: false, ofFile: false },
    ]);
    expect(writableDirs(loadedConfig({ dataDir: "/var/lib/mnha", backup: { enabled: true } })).at(-1)).toEqual({ setting: "backup.dir", dir: "/var/lib/mnha/backups", essential: false, ofFile: false });
  });
});

describe("readOnlyDirs", () => {
  const dirs: WritableDir[] = [
    { setting: "dataDir", dir: "/var/lib/mnha", essential: true, ofFile: false },
    { setting: "backup.dir", dir: "/backup", essential: false, ofFile: false },
    { setting: "store.path", dir: "/srv/store", essential: false, ofFile: true },
  ];

  it("names a read-only directory under systemd with the drop-in that fixes it", () => {
    const found = readOnlyDirs(dirs, { underSystemd: true, probe: (dir) => (dir === "/backup" ? erofs(dir) : null) });
    expect(found).toEqual([
      {
        setting: "backup.dir",
        dir: "/backup",
        essential: false,
        ofFile: false,
        message: "backup.dir /backup is read-only to the agent: mnha.service's sandbox (ProtectSystem=strict) lets it write only /var/lib/mnha, /run/mnha and the directories a drop-in adds",
        hint: 'run: systemctl edit mnha.service, add the two lines "[Service]" and "ReadWritePaths=/backup", then: systemctl restart mnha.service',
      },
    ]);
  });

  it("a setting that names a file is shown as that file's directory", () => {
    const [found] = readOnlyDirs(dirs, { underSystemd: true, probe: (dir) => (dir === "/srv/store" ? erofs(dir) : null) });
    expect(found?.message).toMatch(/^\/srv\/store \(the directory of store\.path\) is read-only to the agent: /);
  });

  it("outside systemd it is a read-only file system, with that fix", () => {
    const [found] = readOnlyDirs(dirs, { underSystemd: false, probe: (dir) => (dir === "/var/lib/mnha" ? erofs(dir) : null) });
    expect(found?.essential).toBe(true);
    expect(found?.message).toBe("dataDir /var/lib/mnha is on a read-only file system");
    expect(found?.hint).toContain("remount it read-write, or set dataDir to a directory on a writable one");
  });

  it("only EROFS counts: a refused permission is the ownership checks' business", () => {
    const eacces = Object.assign(new Error("EACCES"), { code: "EACCES" });
    expect(readOnlyDirs(dirs, { underSystemd: true, probe: () => eacces })).toEqual([]);
    expect(readOnlyDirs(dirs, { underSystemd: true, probe: () => null })).toEqual([]);
  });
});

describe("probeWrite", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("judges a directory not made yet by the nearest one that exists, and creates nothing", () => {
    dir = mkdtempSync(join(tmpdir(), "mnha-writable-"));
    expect(probeWrite(join(dir, "a", "b"))).toBeNull();
    expect(probeWrite(join(dir, "a"))).toBeNull();
    expect(() => rmSync(join(dir, "a"))).toThrow(/ENOENT/);
  });
});
