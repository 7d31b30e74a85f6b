/**
 * The distribution's keepalived.service masked and put back, with the real systemctl working
 * offline on a throwaway root (`systemctl --root`, through a wrapper first on PATH): the same
 * symlinks a real node gets, and this machine's own units never touched.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  distributionKeepalivedMustStayOff,
  distributionKeepalivedState,
  KEEPALIVED_UNIT_BEFORE_FILE,
  maskDistributionKeepalived,
  readDistributionKeepalived,
  restoreDistributionKeepalived,
  type NodeRunner,
} from "../../src/keepalived/distribution-unit.js";
import { distributionKeepalivedCheck } from "../../src/provision/preflight.js";

// scripts/bootstrap.sh installs it (the systemd package; systemd need not be PID 1).
const SYSTEMCTL = ["/usr/bin/systemctl", "/bin/systemctl"].find((path) => existsSync(path)) ?? "systemctl (not installed: run scripts/bootstrap.sh)";
const UNIT = "[Unit]\nDescription=Keepalive Daemon (LVS and VRRP)\nConditionFileNotEmpty=/etc/keepalived/keepalived.conf\n\n[Service]\nExecStart=/usr/sbin/keepalived --dont-fork\n\n[Install]\nWantedBy=multi-user.target\n";

let dir: string;
let root: string;
let run: NodeRunner;

/** Runs argv with the wrapper first on PATH; the marker file lives under the throwaway root too. */
function runner(wrapperDir: string): NodeRunner {
  return (argv) =>
    new Promise((resolve) => {
      // The scripts write KEEPALIVED_UNIT_BEFORE_FILE: point it into the root by rewriting that one argument.
      const args = argv.map((a) => (a === KEEPALIVED_UNIT_BEFORE_FILE ? join(root, a) : a));
      execFile(args[0] ?? "", args.slice(1), { env: { ...process.env, PATH: `${wrapperDir}:${process.env["PATH"] ?? ""}` }, timeout: 20_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : -1, stdout, stderr });
      });
    });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "mnha-unit-test-"));
  root = join(dir, "root");
  mkdirSync(join(root, "lib/systemd/system"), { recursive: true });
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  writeFileSync(join(root, "lib/systemd/system/keepalived.service"), UNIT);
  const wrappers = join(dir, "bin");
  mkdirSync(wrappers);
  writeFileSync(join(wrappers, "systemctl"), `#!/bin/sh\nexec ${SYSTEMCTL} --root="${root}" "$@"\n`);
  chmodSync(join(wrappers, "systemctl"), 0o755);
  run = runner(wrappers);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const wants = () => join(root, "etc/systemd/system/multi-user.target.wants/keepalived.service");
const maskLink = () => join(root, "etc/systemd/system/keepalived.service");

describe("the distribution's keepalived.service (real systemctl, offline, on a throwaway root)", () => {
  it("an enabled unit is disabled and masked, what it was is remembered, and --cleanup's restore enables it again", async () => {
    expect((await run(["systemctl", "enable", "keepalived.service"])).code).toBe(0);
    expect(await distributionKeepalivedState(run)).toBe("enabled");

    const said = await maskDistributionKeepalived(run, "mn1");
    expect(said).toBe(`mn1: keepalived.service was enabled; disabled and masked (mnha runs its own Keepalived; ${KEEPALIVED_UNIT_BEFORE_FILE} remembers it)`);
    expect(await distributionKeepalivedState(run)).toBe("masked");
    expect(readlinkSync(maskLink())).toBe("/dev/null");
    expect(existsSync(wants())).toBe(false);
    expect(readFileSync(join(root, KEEPALIVED_UNIT_BEFORE_FILE), "utf8")).toBe("enabled\n");

    // A rerun changes nothing and keeps "enabled" as what it was before.
    expect(await maskDistributionKeepalived(run, "mn1")).toBe("mn1: keepalived.service already masked");
    expect(readFileSync(join(root, KEEPALIVED_UNIT_BEFORE_FILE), "utf8")).toBe("enabled\n");

    expect(await restoreDistributionKeepalived(run, "mn1")).toBe("mn1: keepalived.service unmasked (enabled again)");
    expect(await distributionKeepalivedState(run)).toBe("enabled");
    expect(lstatSync(wants()).isSymbolicLink()).toBe(true);
    expect(existsSync(join(root, KEEPALIVED_UNIT_BEFORE_FILE))).toBe(false);
    // Nothing left to put back.
    expect(await restoreDistributionKeepalived(run, "mn1")).toBe("mn1: keepalived.service was not masked by mnha");
  });

  it("the record deleted by hand before --cleanup: the mask stays, and the restore says so with the command to lift it", async () => {
    expect((await run(["systemctl", "enable", "keepalived.service"])).code).toBe(0);
    await maskDistributionKeepalived(run, "mn1");
    rmSync(join(root, KEEPALIVED_UNIT_BEFORE_FILE));
    expect(await restoreDistributionKeepalived(run, "mn1")).toBe(
      `mn1: keepalived.service stays masked: there is no record of what it was before (${KEEPALIVED_UNIT_BEFORE_FILE} is gone); run systemctl unmask keepalived.service if this node should run it`,
    );
    expect(await distributionKeepalivedState(run)).toBe("masked");
  });

  it("a disabled unit is masked too (a habitual `systemctl start keepalived` must fail), and comes back disabled", async () => {
    expect(await distributionKeepalivedState(run)).toBe("disabled");
    expect(await maskDistributionKeepalived(run, "mn2")).toContain("mn2: keepalived.service was disabled; disabled and masked");
    expect(await distributionKeepalivedState(run)).toBe("masked");
    expect(await restoreDistributionKeepalived(run, "mn2")).toBe("mn2: keepalived.service unmasked (disabled again)");
    expect(await distributionKeepalivedState(run)).toBe("disabled");
  });

  it("a node without the unit: nothing to do, nothing written", async () => {
    rmSync(join(root, "lib/systemd/system/keepalived.service"));
    expect(await distributionKeepalivedState(run)).toBe("absent");
    expect(await maskDistributionKeepalived(run, "mn1")).toBe("mn1: no keepalived.service to keep off");
    expect(existsSync(join(root, KEEPALIVED_UNIT_BEFORE_FILE))).toBe(false);
    expect(await readDistributionKeepalived(run)).toEqual({ enabled: "absent", active: false });
  });

  it("systemctl refusing is an error naming the node and the fix by hand; the unit is left as it was", async () => {
    expect((await run(["systemctl", "enable", "keepalived.service"])).code).toBe(0);
    // The mask's symlink cannot be made: a directory in its place.
    mkdirSync(maskLink());
    writeFileSync(join(maskLink(), "keep"), "");
    await expect(maskDistributionKeepalived(run, "mn2")).rejects.toMatchObject({
      code: "REMOTE_COMMAND",
      message: expect.stringMatching(/^masking keepalived\.service on mn2 failed: /),
      hint: expect.stringContaining("on mn2: systemctl disable --now keepalived.service && systemctl mask keepalived.service"),
    });
    expect(await distributionKeepalivedState(run)).not.toBe("masked");
  });
});

describe("which agents need it, and what preflight says", () => {
  it("child mode always; service mode unless the agent's Keepalived is that very unit", () => {
    const config = (mode: "child" | "service", serviceName: string) => ({ keepalived: { mode, serviceName } }) as Parameters<typeof distributionKeepalivedMustStayOff>[0];
    expect(distributionKeepalivedMustStayOff(config("child", "keepalived"))).toBe(true);
    expect(distributionKeepalivedMustStayOff(config("service", "keepalived"))).toBe(false);
    expect(distributionKeepalivedMustStayOff(config("service", "keepalived.service"))).toBe(false);
    expect(distributionKeepalivedMustStayOff(config("service", "mnha-keepalived"))).toBe(true);
  });

  it("preflight warns about an enabled unit with the fix, passes a masked, absent or disabled one", async () => {
    expect(await distributionKeepalivedCheck("enabled")).toMatchObject({ id: "keepalived-unit", status: "warn", value: "enabled", fix: expect.stringContaining("install-ha disables and masks it") });
    expect(await distributionKeepalivedCheck("masked")).toMatchObject({ status: "pass", value: "masked" });
    expect(await distributionKeepalivedCheck("absent")).toMatchObject({ status: "pass", value: "absent" });
    expect(await distributionKeepalivedCheck("disabled")).toMatchObject({ status: "pass", value: "disabled (install-ha masks it)" });
  });
});
