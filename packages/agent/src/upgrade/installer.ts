/**
 * The MN platform's installer, in its two forms: a self-contained `.bin` (executed) or a DVD
 * `.iso` (loop-mounted where the kernel allows, else extracted with xorriso; its
 * `install.sh` is run). Each carries what upgrade-mn must know before it touches a node:
 * the platform version it installs and the oldest HA suite it works with (the vendor
 * requires the suite upgraded first).
 *
 * - `.bin`: a header line in its first 4 KiB: `# mnha-installer: {"version":"…","requiresSuite":"…"}`
 * - `.iso`: `/mnha-installer.json` at the image's root, same fields.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, openSync, readSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";

export interface InstallerInfo {
  kind: "bin" | "iso";
  /** The platform version it installs. */
  version: string;
  /** The oldest HA suite version it works with. */
  requiresSuite: string;
}

const BIN_HEADER = /^# mnha-installer: (\{.*\})\s*$/m;
export const ISO_INFO_PATH = "/mnha-installer.json";
export const ISO_INSTALL_SCRIPT = "install.sh";

export function installerKind(path: string): "bin" | "iso" {
  if (path.endsWith(".bin")) return "bin";
  if (path.endsWith(".iso")) return "iso";
  throw new MnhaError("USAGE", `${path} is neither an installer .bin nor a DVD .iso`, { hint: "pass the platform's installer (…​.bin) or its DVD image (…​.iso)" });
}

export function parseInstallerInfo(text: string, source: string, kind: "bin" | "iso"): InstallerInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const value = parsed as Record<string, unknown> | null;
  const version = value?.["version"];
  const requiresSuite = value?.["requiresSuite"];
  if (typeof version !== "string" || !VERSION.test(version) || typeof requiresSuite !== "string" || !VERSION.test(requiresSuite)) {
    throw new MnhaError("USAGE", `${source} does not say which platform version it installs and which HA suite it needs`, {
      hint: `an mnha-ready installer carries {"version":"X.Y.Z","requiresSuite":"X.Y.Z"} (${kind === "bin" ? "a '# mnha-installer: {…}' header line" : ISO_INFO_PATH + " in the image"})`,
    });
  }
  return { kind, version, requiresSuite };
}

/** Reads the installer's version fields without running or mounting it. */
export async function inspectInstaller(path: string, xorriso = "xorriso"): Promise<InstallerInfo> {
  const kind = installerKind(path);
  if (kind === "bin") {
    let head: string;
    try {
      const fd = openSync(path, "r");
      const buffer = Buffer.alloc(4096);
      const read = readSync(fd, buffer, 0, buffer.length, 0);
      closeSync(fd);
      head = buffer.subarray(0, read).toString("latin1");
    } catch (error) {
      throw new MnhaError("USAGE", `${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`, { hint: "check the path", cause: error });
    }
    const match = BIN_HEADER.exec(head);
    return parseInstallerInfo(match?.[1] ?? "", path, "bin");
  }
  const dir = mkdtempSync(join(tmpdir(), "mnha-iso-"));
  try {
    const target = join(dir, "info.json");
    await run(xorriso, ["-osirrox", "on", "-indev", path, "-extract", ISO_INFO_PATH, target], `reading ${ISO_INFO_PATH} from ${path}`);
    return parseInstallerInfo(readFileSync(target, "utf8"), path, "iso");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The commands that run an installer placed at `path` on a node, as argument arrays: for an
 * ISO, mount it read-only on loop (`mount` fails in containers and unprivileged namespaces)
 * or else extract it with xorriso, run its install.sh, then unmount / remove the copy.
 * One `sh -c` script with the paths as positional parameters, never interpolated.
 *
 * An ISO's mount or copy (a whole DVD's worth) must not outlive the command: Ctrl-C, a
 * SIGTERM or a hang-up takes it away (the installer itself gets the Ctrl-C too), and what a
 * run killed outright left is unmounted and removed by the next run before it mounts again
 * (it stacked a second mount on the first, and `umount` took only the top one).
 */
export function installerCommand(info: InstallerInfo, path: string, workDir: string): string[] {
  if (info.kind === "bin") return ["sh", "-c", 'chmod 700 "$1" && exec "$1"', "sh", path];
  const script = [
    'set -u; iso="$1"; dir="$2"; mounted=0',
    // Bounded: a mount that will not go (busy) stops the run below instead of looping.
    'unmount_all() { n=0; while [ "$n" -lt 5 ] && mountpoint -q "$dir" 2>/dev/null; do umount "$dir" 2>/dev/null || break; n=$((n + 1)); done; }',
    'cleanup() { unmount_all; mountpoint -q "$dir" 2>/dev/null || rm -rf "$dir"; }',
    "trap 'cleanup; exit 130' INT",
    "trap 'cleanup; exit 143' TERM",
    "trap 'cleanup; exit 129' HUP",
    'if mountpoint -q "$dir" 2>/dev/null; then echo "unmounting $dir, left mounted by an earlier run"; unmount_all; fi',
    'if mountpoint -q "$dir" 2>/dev/null; then echo "$dir is still mounted (busy?): unmount it (umount $dir), then run the same command again" >&2; exit 91; fi',
    'rm -rf "$dir" && mkdir -p "$dir" || exit 91',
    'if mount -o loop,ro "$iso" "$dir" 2>/dev/null; then mounted=1; echo "mounted $iso on $dir"; else echo "loop mount not possible here: extracting with xorriso"; xorriso -osirrox on -indev "$iso" -extract / "$dir" >/dev/null 2>&1 || { echo "xorriso could not extract $iso" >&2; cleanup; exit 90; }; chmod -R u+w "$dir"; fi',
    'sh "$dir/install.sh"; code=$?',
    'cleanup',
    'exit $code',
  ].join("\n");
  return ["sh", "-c", script, "sh", path, workDir];
}

/** Compares dotted numeric versions (1.10.0 > 1.9.3); a suffix after '-' or '+' is ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/[-+]/)[0]!.split(".").map((p) => Number.parseInt(p, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Refuses an installer that needs a newer HA suite than the one installed (the vendor's rule). */
export function assertSuiteRecentEnough(info: InstallerInfo, suites: { node: string; suite: string }[]): void {
  const old = suites.filter((s) => compareVersions(s.suite, info.requiresSuite) < 0);
  if (old.length > 0)
    throw new MnhaError("OPERATION_REFUSED", `the installer (platform ${info.version}) needs HA suite ${info.requiresSuite} or newer; ${old.map((s) => `${s.node} has ${s.suite}`).join(", ")}`, {
      hint: "upgrade the HA suite first (mnha upgrade-ha with a newer suite bundle), then run upgrade-mn again; nothing was changed",
    });
}

const VERSION = /^\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]+)?$/;

function run(file: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      reject(new MnhaError("USAGE", `${what} failed: ${(stderr || error.message).trim().split("\n").slice(-2).join(" / ")}`, { hint: "is it a DVD image made for mnha (with /mnha-installer.json)? is xorriso installed?" }));
    });
  });
}
