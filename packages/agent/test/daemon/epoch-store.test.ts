import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EpochStore } from "../../src/daemon/epoch-store.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("EpochStore", () => {
  it("keeps the highest epoch across restarts, in a 0600 file, leaving no temp file", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-epoch-"));
    dirs.push(dir);
    const store = new EpochStore(dir);
    store.set(5);
    store.set(3);
    expect(new EpochStore(dir).get()).toBe(5);
    expect(lstatSync(join(dir, "epoch")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["epoch"]);
  });

  it("does not write through a symlink planted at a predictable temp name", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-epoch-"));
    dirs.push(dir);
    const victim = join(dir, "victim");
    writeFileSync(victim, "keep me\n");
    symlinkSync(victim, join(dir, "epoch.tmp"));
    new EpochStore(dir).set(9);
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(new EpochStore(dir).get()).toBe(9);
  });
});
