import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from "../src/atomic-file.js";

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "mnha-atomic-"));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("atomic file writes", () => {
  it("use a temp name nobody can guess, in the target's directory", () => {
    const names = new Set(Array.from({ length: 100 }, () => tempPathFor("/var/lib/mnha/epoch")));
    expect(names.size).toBe(100);
    for (const name of names) expect(name).toMatch(/^\/var\/lib\/mnha\/\.epoch\.[0-9a-f]{16}\.tmp$/);
  });

  it("replace the target with the whole new content, mode 0600, leaving no temp file", async () => {
    const d = dir();
    const target = join(d, "epoch");
    writeFileSync(target, "1\n", { mode: 0o644 });
    writeFileAtomicSync(target, "2\n");
    expect(readFileSync(target, "utf8")).toBe("2\n");
    expect(lstatSync(target).mode & 0o777).toBe(0o600);
    await writeFileAtomic(target, "3\n", { sync: false });
    expect(readFileSync(target, "utf8")).toBe("3\n");
    expect(readdirSync(d)).toEqual(["epoch"]);
  });

  it("never write through a symlink planted at the old fixed temp name, nor follow one at the target", async () => {
    const d = dir();
    const victim = join(d, "victim");
    writeFileSync(victim, "keep me\n");
    const target = join(d, "epoch");
    // The old epoch store wrote `${file}.tmp`: a link there used to redirect the write.
    symlinkSync(victim, `${target}.tmp`);
    symlinkSync(victim, join(d, "lease"));
    writeFileAtomicSync(target, "7\n");
    await writeFileAtomic(join(d, "lease"), "9\n");
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(readFileSync(target, "utf8")).toBe("7\n");
    // The link itself was replaced by a regular file; its target is untouched.
    expect(lstatSync(join(d, "lease")).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(d, "lease"), "utf8")).toBe("9\n");
  });
});
