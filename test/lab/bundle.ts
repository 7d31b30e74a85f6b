/** The offline suite bundle for the lab tests that install a pair from it. */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { REPO_ROOT } from "./constants.js";

/**
 * Builds the bundle once per source state (git tree + uncommitted changes); a later run on
 * the same sources reuses it. MNHA_BUNDLE=path uses a given one.
 */
export function ensureBundle(): string {
  const given = process.env["MNHA_BUNDLE"];
  if (given) return given;
  const git = (...args: string[]) => execFileSync("git", ["-C", REPO_ROOT, ...args]);
  const key = createHash("sha256").update(git("rev-parse", "HEAD^{tree}")).update(git("diff", "HEAD")).update(git("ls-files", "--others", "--exclude-standard")).digest("hex");
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
