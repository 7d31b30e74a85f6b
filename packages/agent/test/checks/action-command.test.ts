/**
 * Where the operator's action commands run: directly outside systemd; under systemd as
 * transient services (systemd-run), outside mnha.service's sandbox. systemd is not PID 1 on
 * these machines, so the transient unit itself cannot be started here: the real systemd-run
 * is shown to accept every option the agent passes (it gets as far as connecting to systemd),
 * and a stand-in with systemd-run's command line runs a restore through the service monitor.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { actionArgv, describeActionMode, detectActionMode, MIN_SYSTEMD_RUN_VERSION, SYSTEM_BUS_SOCKET, type ActionMode, type ActionModeProbe } from "../../src/checks/action-command.js";
import { runCommand } from "../../src/checks/command.js";

const underSystemd = (overrides: Partial<ActionModeProbe> = {}): ActionModeProbe => ({
  env: { INVOCATION_ID: "0123456789abcdef0123456789abcdef" },
  exists: (path) => path === "/run/systemd/system" || path === "/usr/bin/systemd-run" || path === SYSTEM_BUS_SOCKET,
  version: () => "systemd 252 (252.38-1~deb12u1)",
  ...overrides,
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("where actions run", () => {
  it("under systemd (a service, PID 1, systemd-run 236 or newer): as transient services", () => {
    expect(detectActionMode(underSystemd())).toEqual({ kind: "systemd-run", binary: "/usr/bin/systemd-run", systemdVersion: 252 });
    expect(detectActionMode(underSystemd({ version: () => `systemd ${MIN_SYSTEMD_RUN_VERSION}` }))).toMatchObject({ kind: "systemd-run" });
  });

  it("otherwise directly, saying why", () => {
    expect(detectActionMode(underSystemd({ env: {} }))).toEqual({ kind: "direct", reason: "the agent was not started by systemd" });
    expect(detectActionMode(underSystemd({ exists: (path) => path === "/usr/bin/systemd-run" }))).toEqual({ kind: "direct", reason: "systemd is not running as PID 1" });
    expect(detectActionMode(underSystemd({ exists: (path) => path === "/run/systemd/system" }))).toMatchObject({ kind: "direct", reason: expect.stringContaining("systemd-run is not installed") });
    expect(detectActionMode(underSystemd({ version: () => "systemd 219" }))).toMatchObject({ kind: "direct", reason: expect.stringMatching(/^systemd 219 is older than 236 .*inside mnha\.service's sandbox/) });
    expect(detectActionMode(underSystemd({ version: () => null }))).toMatchObject({ kind: "direct", reason: expect.stringContaining("did not say its version") });
    // No system bus (a minimal install without dbus): systemd-run --wait could not reach systemd.
    const noBus = (path: string) => path === "/run/systemd/system" || path === "/usr/bin/systemd-run";
    expect(detectActionMode(underSystemd({ exists: noBus }))).toEqual({ kind: "direct", reason: `there is no D-Bus system bus (${SYSTEM_BUS_SOCKET}), which systemd-run --wait needs: actions run inside mnha.service's sandbox (install dbus, then restart mnha.service)` });
    // A bus named by the environment instead of the usual socket will do.
    expect(detectActionMode(underSystemd({ exists: noBus, env: { INVOCATION_ID: "0123456789abcdef0123456789abcdef", DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/run/other-bus" } }))).toMatchObject({ kind: "systemd-run" });
  });

  it("says which, for agent.started", () => {
    expect(describeActionMode({ kind: "systemd-run", binary: "/usr/bin/systemd-run", systemdVersion: 252 })).toBe("as transient systemd services (systemd-run, systemd 252), outside mnha.service's sandbox");
    expect(describeActionMode({ kind: "direct", reason: "the agent was not started by systemd" })).toBe("directly (the agent was not started by systemd)");
  });
});

describe("the argv of an action", () => {
  const systemdRun: ActionMode = { kind: "systemd-run", binary: "/usr/bin/systemd-run", systemdVersion: 252 };

  it("directly: the command itself", () => {
    expect(actionArgv(["zstack-ctl", "start_node"], { kind: "restore", name: "mn", timeoutMs: 60_000 }, { kind: "direct", reason: "x" })).toEqual(["zstack-ctl", "start_node"]);
  });

  it("under systemd: a transient unit named for the action, waited for, its output piped back, the daemon it starts left running, its own process bounded by the timeout", () => {
    const argv = actionArgv(["zstack-ctl", "start_node", "--with a space"], { kind: "restore", name: "mn", timeoutMs: 60_500 }, systemdRun, () => 1_800_000_000_000);
    const unit = argv.find((a) => a.startsWith("--unit="));
    expect(unit).toMatch(/^--unit=mnha-restore-mn-1800000000000-\d+$/);
    expect(argv.slice(0, 6)).toEqual(["/usr/bin/systemd-run", "--quiet", "--no-ask-password", "--collect", "--wait", "--pipe"]);
    expect(argv).toContain("--property=KillMode=process");
    expect(argv).toContain("--property=RuntimeMaxSec=61");
    // The command's words stay separate arguments after "--", never a shell string.
    expect(argv.slice(argv.indexOf("--") + 1)).toEqual(["zstack-ctl", "start_node", "--with a space"]);
    // Two actions at the same millisecond get different units.
    const again = actionArgv(["true"], { kind: "restore", name: "mn", timeoutMs: 1_000 }, systemdRun, () => 1_800_000_000_000).find((a) => a.startsWith("--unit="));
    expect(again).not.toBe(unit);
  });

  it("a service or hook name that is not a unit name is made one", () => {
    const argv = actionArgv(["true"], { kind: "hook", name: "maintenance onEnter/ü", timeoutMs: 1_000 }, systemdRun, () => 1);
    expect(argv.find((a) => a.startsWith("--unit="))).toMatch(/^--unit=mnha-hook-maintenance_onEnter__-1-\d+$/);
  });

  it("the real systemd-run accepts every option (here it stops only at connecting to systemd, which is not PID 1)", async () => {
    const binary = ["/usr/bin/systemd-run", "/bin/systemd-run"].find((path) => existsSync(path));
    expect(binary, "systemd-run (the systemd package; scripts/bootstrap.sh installs it)").toBeDefined();
    const argv = actionArgv(["true"], { kind: "restore", name: "mn", timeoutMs: 5_000 }, { kind: "systemd-run", binary: binary as string, systemdVersion: 252 });
    const result = await runCommand(argv, { timeoutMs: 10_000 });
    expect(result.stderr).not.toMatch(/unrecognized option|invalid option|Unknown assignment|Failed to parse/i);
    expect(result.stderr).toMatch(/Failed to connect to bus|System has not been booted with systemd/);
  });

  it("a restore through a stand-in with systemd-run's command line: the command's output and exit status come back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-action-test-"));
    dirs.push(dir);
    // Checks the options it is given as systemd-run would see them, then runs what follows "--".
    const standIn = join(dir, "systemd-run");
    writeFileSync(
      standIn,
      [
        "#!/bin/sh",
        'for a in "$@"; do shift; case "$a" in --) break ;; --quiet|--no-ask-password|--collect|--wait|--pipe) ;; --unit=mnha-*|--description=*|--property=*) ;; *) echo "stand-in: unexpected option $a" >&2; exit 99 ;; esac; done',
        'exec "$@"',
      ].join("\n"),
    );
    chmodSync(standIn, 0o755);
    const mode: ActionMode = { kind: "systemd-run", binary: standIn, systemdVersion: 252 };
    const ok = await runCommand(actionArgv(["sh", "-c", 'echo "restored $1"', "sh", "mn"], { kind: "restore", name: "mn", timeoutMs: 5_000 }, mode), { timeoutMs: 5_000 });
    expect([ok.exitCode, ok.stdout.trim()]).toEqual([0, "restored mn"]);
    const failed = await runCommand(actionArgv(["sh", "-c", "echo 'disk full' >&2; exit 3"], { kind: "restore", name: "mn", timeoutMs: 5_000 }, mode), { timeoutMs: 5_000 });
    expect([failed.exitCode, failed.stderr.trim()]).toEqual([3, "disk full"]);
  });
});
