/**
 * The platform installer in both forms, with real tools: a .bin header, and a DVD image
 * built with real xorriso, read without mounting, and run through the extraction path
 * (`mount` made to fail, as in a container) and its install.sh.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { assertSuiteRecentEnough, compareVersions, inspectInstaller, installerCommand, installerKind } from "../../src/upgrade/installer.js";

const root = mkdtempSync(join(tmpdir(), "mnha-installer-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function sh(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const INSTALL_SH = '#!/bin/sh\necho "installed $(cat "$(dirname "$0")/payload.txt")" > "$MNHA_TEST_OUT"\n';

async function buildIso(name: string, info: string | null): Promise<string> {
  const dir = join(root, `${name}-tree`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "install.sh"), INSTALL_SH);
  writeFileSync(join(dir, "payload.txt"), "platform 4.9.0");
  if (info !== null) writeFileSync(join(dir, "mnha-installer.json"), info);
  const iso = join(root, `${name}.iso`);
  const made = await sh("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-V", "MNHA_TEST", "-o", iso, dir]);
  expect(made.code, made.stderr).toBe(0);
  return iso;
}

describe("installer kinds and versions", () => {
  it("knows .bin and .iso, refuses anything else", () => {
    expect(installerKind("/x/zstack-installer-4.9.0.bin")).toBe("bin");
    expect(installerKind("/x/ZStack-DVD-4.9.0.iso")).toBe("iso");
    expect(() => installerKind("/x/setup.tar.gz")).toThrow(/neither an installer \.bin nor a DVD \.iso/);
  });

  it("compares dotted versions numerically", () => {
    expect(compareVersions("1.10.0", "1.9.3")).toBe(1);
    expect(compareVersions("0.1.0", "0.1")).toBe(0);
    expect(compareVersions("0.1.0-rc1", "0.2.0")).toBe(-1);
  });

  it("refuses an installer that needs a newer suite, naming the node", () => {
    const info = { kind: "bin" as const, version: "4.9.0", requiresSuite: "0.2.0" };
    expect(() => assertSuiteRecentEnough(info, [{ node: "mn1", suite: "0.2.0" }, { node: "mn2", suite: "0.1.5" }])).toThrow(/needs HA suite 0\.2\.0 or newer; mn2 has 0\.1\.5/);
    expect(() => assertSuiteRecentEnough(info, [{ node: "mn1", suite: "0.2.1" }, { node: "mn2", suite: "0.10.0" }])).not.toThrow();
  });
});

describe("a .bin installer", () => {
  it("carries its versions in a header line and is executed", async () => {
    const bin = join(root, "installer-4.9.0.bin");
    writeFileSync(bin, `#!/bin/sh\n# mnha-installer: {"version":"4.9.0","requiresSuite":"0.1.0"}\necho "ran with $# args" > "$MNHA_TEST_OUT"\n`);
    const info = await inspectInstaller(bin);
    expect(info).toEqual({ kind: "bin", version: "4.9.0", requiresSuite: "0.1.0" });
    const out = join(root, "bin-out.txt");
    const [file, ...args] = installerCommand(info, bin, join(root, "unused"));
    const result = await sh(file ?? "", args, { MNHA_TEST_OUT: out });
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("ran with 0 args\n");
  });

  it("without the header it is refused with what is missing", async () => {
    const bin = join(root, "foreign.bin");
    writeFileSync(bin, "#!/bin/sh\necho hi\n");
    await expect(inspectInstaller(bin)).rejects.toThrow(/does not say which platform version it installs/);
  });
});

describe("a DVD .iso (built with xorriso)", () => {
  it("is read without mounting, and installs through the xorriso extraction path when mount is not possible", async () => {
    const iso = await buildIso("dvd", JSON.stringify({ version: "4.9.0", requiresSuite: "0.1.0" }));
    const info = await inspectInstaller(iso);
    expect(info).toEqual({ kind: "iso", version: "4.9.0", requiresSuite: "0.1.0" });
    // A `mount` that fails, as in a container without loop devices.
    const fakeBin = join(root, "no-mount-bin");
    mkdirSync(fakeBin, { recursive: true });
    writeFileSync(join(fakeBin, "mount"), "#!/bin/sh\necho 'mount: permission denied' >&2\nexit 32\n");
    chmodSync(join(fakeBin, "mount"), 0o755);
    const out = join(root, "iso-out.txt");
    const work = join(root, "iso-work");
    const [file, ...args] = installerCommand(info, iso, work);
    const result = await sh(file ?? "", args, { MNHA_TEST_OUT: out, PATH: `${fakeBin}:${process.env["PATH"] ?? ""}` });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("loop mount not possible here: extracting with xorriso");
    expect(readFileSync(out, "utf8")).toBe("installed platform 4.9.0\n");
    expect(existsSync(work)).toBe(false);
  });

  it("an image without mnha-installer.json is refused before anything runs", async () => {
    const iso = await buildIso("foreign", null);
    await expect(inspectInstaller(iso)).rejects.toThrow(/mnha-installer\.json/);
  });

  /** A PATH whose `mount` fails, as in a container without loop devices (this kernel has no iso9660 either). */
  function noMountPath(extra: Record<string, string> = {}): string {
    const fakeBin = join(root, `fake-bin-${Object.keys(extra).join("-") || "mount"}`);
    mkdirSync(fakeBin, { recursive: true });
    writeFileSync(join(fakeBin, "mount"), "#!/bin/sh\necho 'mount: permission denied' >&2\nexit 32\n");
    chmodSync(join(fakeBin, "mount"), 0o755);
    for (const [name, body] of Object.entries(extra)) {
      writeFileSync(join(fakeBin, name), body);
      chmodSync(join(fakeBin, name), 0o755);
    }
    return `${fakeBin}:${process.env["PATH"] ?? ""}`;
  }
  const realMount = execFileSync("sh", ["-c", "command -v mount"], { encoding: "utf8" }).trim();
  /**
   * Runs the installer command in a private mount namespace where a tmpfs sits on the work dir,
   * standing for the loop mount an earlier, killed run left; says afterwards if it is still there.
   */
  const withLeftoverMount = (work: string, argv: string[], env: Record<string, string>) =>
    sh("unshare", ["-m", "--propagation", "private", "--", "sh", "-c", 'w="$1"; m="$2"; shift 2; "$m" -t tmpfs mnha-test-leftover "$w" || exit 99; touch "$w/left-by-the-earlier-run"; "$@"; code=$?; if mountpoint -q "$w"; then echo "STILL MOUNTED"; fi; exit $code', "sh", work, realMount, ...argv], env);

  it("a mount an earlier run left on the work dir is taken off first; the run installs and leaves nothing mounted or copied", async () => {
    const iso = await buildIso("leftover", JSON.stringify({ version: "4.9.0", requiresSuite: "0.1.0" }));
    const work = join(root, "leftover-work");
    mkdirSync(work, { recursive: true });
    const out = join(root, "leftover-out.txt");
    const result = await withLeftoverMount(work, installerCommand(await inspectInstaller(iso), iso, work), { MNHA_TEST_OUT: out, PATH: noMountPath() });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`unmounting ${work}, left mounted by an earlier run`);
    expect(result.stdout).not.toContain("STILL MOUNTED");
    expect(readFileSync(out, "utf8")).toBe("installed platform 4.9.0\n");
    expect(existsSync(work)).toBe(false);
  });

  it("a leftover mount that will not go stops the run before the installer, saying what to unmount", async () => {
    const iso = await buildIso("busy", JSON.stringify({ version: "4.9.0", requiresSuite: "0.1.0" }));
    const work = join(root, "busy-work");
    mkdirSync(work, { recursive: true });
    const out = join(root, "busy-out.txt");
    const busyUmount = { umount: "#!/bin/sh\necho \"umount: $1: target is busy.\" >&2\nexit 32\n" };
    const result = await withLeftoverMount(work, installerCommand(await inspectInstaller(iso), iso, work), { MNHA_TEST_OUT: out, PATH: noMountPath(busyUmount) });
    expect(result.code).toBe(91);
    expect(result.stderr).toContain(`${work} is still mounted (busy?): unmount it (umount ${work}), then run the same command again`);
    expect(existsSync(out)).toBe(false);
  });

  it("Ctrl-C while the installer runs takes its extracted copy away (exit 130)", async () => {
    const dir = join(root, "slow-tree");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "install.sh"), '#!/bin/sh\necho started > "$MNHA_TEST_OUT"\nsleep 30\necho finished >> "$MNHA_TEST_OUT"\n');
    writeFileSync(join(dir, "mnha-installer.json"), JSON.stringify({ version: "4.9.0", requiresSuite: "0.1.0" }));
    const iso = join(root, "slow.iso");
    expect((await sh("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", iso, dir])).code).toBe(0);
    const work = join(root, "slow-work");
    const out = join(root, "slow-out.txt");
    const [file, ...args] = installerCommand(await inspectInstaller(iso), iso, work);
    // Its own process group, as a terminal's foreground job: Ctrl-C reaches the script and the installer.
    const child = spawn(file ?? "", args, { detached: true, stdio: "ignore", env: { ...process.env, MNHA_TEST_OUT: out, PATH: noMountPath() } });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await vi.waitFor(() => expect(existsSync(out)).toBe(true), { timeout: 20_000, interval: 50 });
    expect(existsSync(join(work, "install.sh"))).toBe(true);
    process.kill(-(child.pid ?? 0), "SIGINT");
    expect(await exited).toBe(130);
    expect(existsSync(work)).toBe(false);
    expect(readFileSync(out, "utf8")).toBe("started\n");
  });

  it("the installer's failure is its exit code", async () => {
    const dir = join(root, "failing-tree");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "install.sh"), "#!/bin/sh\necho 'disk full' >&2\nexit 3\n");
    writeFileSync(join(dir, "mnha-installer.json"), JSON.stringify({ version: "4.9.0", requiresSuite: "0.1.0" }));
    const iso = join(root, "failing.iso");
    expect((await sh("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-o", iso, dir])).code).toBe(0);
    const [file, ...args] = installerCommand(await inspectInstaller(iso), iso, join(root, "failing-work"));
    const result = await sh(file ?? "", args);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("disk full");
  });
});
