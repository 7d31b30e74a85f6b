/** The offline suite bundle for the lab tests that install a pair from it. */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { REPO_ROOT } from "./constants.js";

/**
 * Builds the bundle once per source state (git tree + uncommitted changes); a later run on
 * the same sources reuses it. MNHA_BUNDLE=path uses a given one.
 */
export function ensureBundle(): string {
  const given = process.env["MNHA_BUNDLE"];
  if (given) return given;
  const key = sourceKey();
  const version = (JSON.parse(readFileSync(resolve(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
  const path = resolve(REPO_ROOT, `dist/mnha-suite-${version}-linux-x64.tar.gz`);
  const keyFile = `${path}.source-key`;
  mkdirSync(resolve(REPO_ROOT, "dist"), { recursive: true });
  if (existsSync(path) && existsSync(keyFile) && readFileSync(keyFile, "utf8") === key) return path;
  // Two lab test files can need the bundle at once (they run in parallel): one builds it under
  // a lock, the other waits and then finds it current. The key is checked again under the lock.
  const build = 'if [ -f "$1" ] && [ -f "$2" ] && [ "$(cat "$2")" = "$3" ]; then exit 0; fi; bash "$4" && printf %s "$3" > "$2"';
  execFileSync("flock", ["-w", "900", `${path}.lock`, "bash", "-c", build, "bash", path, keyFile, key, resolve(REPO_ROOT, "scripts/bundle.sh")], { stdio: "inherit", timeout: 960_000 });
  return path;
}

/** The state of the sources (git tree + uncommitted and untracked changes), and anything else that shapes a build. */
function sourceKey(...extra: string[]): string {
  const git = (...args: string[]) => execFileSync("git", ["-C", REPO_ROOT, ...args]);
  return createHash("sha256").update(extra.join(" ")).update(git("rev-parse", "HEAD^{tree}")).update(git("diff", "HEAD")).update(git("ls-files", "--others", "--exclude-standard")).digest("hex");
}

/**
 * A test build of the bundle (bundle.sh's test options: `--suite-version`, the fault switches)
 * in dist/<dir>, reused while the sources and the options are the same. Returns its path.
 */
export function buildTestBundle(dir: string, version: string, args: string[]): string {
  const out = resolve(REPO_ROOT, "dist", dir);
  const path = `${out}/mnha-suite-${version}-linux-x64.tar.gz`;
  const key = sourceKey(...args);
  if (existsSync(path) && existsSync(`${path}.source-key`) && readFileSync(`${path}.source-key`, "utf8") === key) return path;
  execFileSync("bash", [resolve(REPO_ROOT, "scripts/bundle.sh"), "--out", out, ...args], { stdio: "inherit", timeout: 600_000 });
  writeFileSync(`${path}.source-key`, key);
  return path;
}
