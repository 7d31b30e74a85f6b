import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CheckConfig } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FULL_HEALTH_REFRESH_MS, closeMariaDbProbes } from "../../src/checks/mariadb-check.js";
import { runCheck } from "../../src/checks/runners.js";
import { ThrowawayMariaDb } from "../db/throwaway-mariadb.js";
import { sleep } from "./helpers.js";

// A real, throwaway MariaDB server on a Unix socket in a temporary directory (no network).
let server: ThrowawayMariaDb;
let dir: string;
let socket: string;

/** The server's count of connections opened since it started (the observer's own included). */
async function connectionsOpened(): Promise<number> {
  return (await server.statusCounters(["Connections"]))["Connections"] ?? 0;
}

const statusCounters = (names: readonly string[]) => server.statusCounters(names);
const setGlobal = (statement: string) => server.run(statement);

const check = (): CheckConfig => ({ kind: "mariadb", socket, user: "root", intervalMs: 200, timeoutMs: 1_000, rise: 2, fall: 2 }) as CheckConfig;

beforeAll(async () => {
  server = await ThrowawayMariaDb.create("mnha-mariadb-check-");
  dir = server.dir;
  socket = server.socket;
}, 180_000);

afterAll(async () => {
  await closeMariaDbProbes();
  await server.destroy();
});

describe("the mariadb check", () => {
  it("keeps one connection across checks", async () => {
    const before = await connectionsOpened();
    for (let i = 0; i < 10; i++) {
      const result = await runCheck(check());
      expect(result.ok).toBe(true);
      expect(result.detail).toMatch(/^MariaDB up writable, no replica/);
    }
    // One for the checks, one for this observer's second count.
    expect((await connectionsOpened()) - before).toBe(2);
  });

  it("passes the next check after a restart of the server (its kept connection died)", async () => {
    expect((await runCheck(check())).ok).toBe(true);
    await server.stop();
    await server.start();
    const result = await runCheck(check());
    expect(result.ok).toBe(true);
  }, 90_000);

  it("fails the very next check once the server is gone, then passes again when it is back", async () => {
    expect((await runCheck(check())).ok).toBe(true);
    await server.stop();
    const down = await runCheck(check());
    expect(down.ok).toBe(false);
    expect(down.detail).toMatch(/^MariaDB down: /);
    await server.start();
    expect((await runCheck(check())).ok).toBe(true);
  }, 90_000);

  it("runs one statement per probe and reads the full health at most once per refresh interval", async () => {
    await closeMariaDbProbes();
    const counters = ["Com_select", "Com_show_slave_status", "Com_show_status"];
    const before = await statusCounters(counters);
    const started = performance.now();
    for (let i = 0; i < 10; i++) expect((await runCheck(check())).ok).toBe(true);
    const elapsedMs = performance.now() - started;
    const after = await statusCounters(counters);
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    // One SELECT per probe (the cheap one, or the globals of a full read).
    expect(delta("Com_select")).toBe(10);
    // Full reads (SHOW SLAVE STATUS + the semi-sync status): the first probe's, then one per interval at most.
    const fullReads = delta("Com_show_slave_status");
    expect(fullReads).toBeGreaterThanOrEqual(1);
    expect(fullReads).toBeLessThanOrEqual(Math.floor(elapsedMs / FULL_HEALTH_REFRESH_MS) + 1);
    expect(fullReads).toBeLessThan(10);
    // The observer's own SHOW GLOBAL STATUS counts once.
    expect(delta("Com_show_status")).toBe(fullReads + 1);
  });

  it("takes read-only from every probe and the rest of the detail from a full read at most once per interval", async () => {
    await closeMariaDbProbes();
    try {
      expect((await runCheck(check())).detail).toMatch(/^MariaDB up writable, no replica$/);
      await setGlobal("SET GLOBAL read_only = ON");
      await setGlobal("SET GLOBAL rpl_semi_sync_master_enabled = ON");
      // Within the interval: read-only is this probe's, semi-sync still the cached full read's.
      const soon = await runCheck(check());
      expect(soon.ok).toBe(true);
      expect(soon.detail).toBe("MariaDB up read-only, no replica");
      await sleep(FULL_HEALTH_REFRESH_MS + 100);
      const later = await runCheck(check());
      expect(later.detail).toMatch(/^MariaDB up read-only, no replica, semi-sync (on|off \(asynchronous\))$/);
    } finally {
      await setGlobal("SET GLOBAL read_only = OFF");
      await setGlobal("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
    }
  });

  it("reads the password file when it connects, not on every probe, and again after a reconnect or a refused login", async () => {
    await closeMariaDbProbes();
    const file = join(dir, "probe-password");
    const probeCheck = { ...check(), user: "probe", passwordFile: file } as CheckConfig;
    await setGlobal("CREATE USER IF NOT EXISTS 'probe'@'localhost' IDENTIFIED BY 'first-pw'");
    await setGlobal("GRANT SLAVE MONITOR ON *.* TO 'probe'@'localhost'");
    try {
      writeFileSync(file, "first-pw\n", { mode: 0o600 });
      expect((await runCheck(probeCheck)).ok).toBe(true);
      // Gone: the kept connection needs no password, so the probes go on (the file is not read).
      rmSync(file);
      for (let i = 0; i < 5; i++) expect((await runCheck(probeCheck)).ok).toBe(true);
      // A reconnect reads it again, and a missing file is its own clear message.
      await closeMariaDbProbes();
      const missing = await runCheck(probeCheck);
      expect(missing).toMatchObject({ ok: false, detail: `MariaDB password file ${file} cannot be read (ENOENT)` });
      expect(missing.notRestorable).toMatch(new RegExp(`^restarting MariaDB cannot fix an unreadable password file: put the password of probe in ${file}`));
      // A wrong password is refused; fixed in the file, the next probe reads it again and passes.
      writeFileSync(file, "wrong-pw\n", { mode: 0o600 });
      const denied = await runCheck(probeCheck);
      expect(denied.ok).toBe(false);
      // Not "down": the server answered. A restart cannot fix it, and the result says so.
      expect(denied.detail).toMatch(/^MariaDB on local \(socket .*\) refused the login of probe: wrong password$/);
      expect(denied.notRestorable).toMatch(new RegExp(`^MariaDB answers but refuses the check's user probe, and restarting it cannot change that: put probe's password in ${file}`));
      writeFileSync(file, "first-pw\n");
      expect((await runCheck(probeCheck)).ok).toBe(true);
      // Changed on the server and in the file: the kept connection goes on; the next reconnect logs in with the new one.
      await setGlobal("ALTER USER 'probe'@'localhost' IDENTIFIED BY 'second-pw'");
      writeFileSync(file, "second-pw\n");
      expect((await runCheck(probeCheck)).ok).toBe(true);
      await closeMariaDbProbes();
      expect((await runCheck(probeCheck)).ok).toBe(true);
    } finally {
      await closeMariaDbProbes();
      await setGlobal("DROP USER IF EXISTS 'probe'@'localhost'");
      rmSync(file, { force: true });
    }
  });

  it("says a restart cannot fix a locked account or a missing privilege, and says nothing of the kind for a server that is gone", async () => {
    await closeMariaDbProbes();
    const file = join(dir, "refused-password");
    const probeCheck = { ...check(), user: "refused", passwordFile: file } as CheckConfig;
    await setGlobal("CREATE USER IF NOT EXISTS 'refused'@'localhost' IDENTIFIED BY 'pw'");
    writeFileSync(file, "pw\n", { mode: 0o600 });
    try {
      // No SLAVE MONITOR: the login works, the health read's SHOW SLAVE STATUS is refused (1227).
      const unprivileged = await runCheck(probeCheck);
      expect(unprivileged.ok).toBe(false);
      expect(unprivileged.detail).toMatch(/^MariaDB on local refused a statement of the check: .*(denied|privilege)/i);
      expect(unprivileged.notRestorable).toMatch(/restarting it cannot change that/);
      await setGlobal("GRANT SLAVE MONITOR ON *.* TO 'refused'@'localhost'");
      await closeMariaDbProbes();
      const granted = await runCheck(probeCheck);
      expect(granted.ok).toBe(true);
      expect(granted.notRestorable).toBeUndefined();
      // Locked: refused at the next login.
      await setGlobal("ALTER USER 'refused'@'localhost' ACCOUNT LOCK");
      await closeMariaDbProbes();
      const locked = await runCheck(probeCheck);
      expect(locked.ok).toBe(false);
      expect(locked.detail).toMatch(/refused the login of refused: .*locked/i);
      expect(locked.notRestorable).toMatch(/restarting it cannot change that/);
      // A server that is gone is a failure a restart can fix: no such reason.
      await setGlobal("ALTER USER 'refused'@'localhost' ACCOUNT UNLOCK");
      await server.stop();
      const down = await runCheck(probeCheck);
      expect(down.ok).toBe(false);
      expect(down.detail).toMatch(/^MariaDB down: /);
      expect(down.notRestorable).toBeUndefined();
      await server.start();
      expect((await runCheck(probeCheck)).ok).toBe(true);
    } finally {
      await closeMariaDbProbes();
      await setGlobal("DROP USER IF EXISTS 'refused'@'localhost'");
      rmSync(file, { force: true });
    }
  }, 90_000);
});
