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

  it("a file that holds no epoch (garbage, a sign, empty) starts from 0 and says why; none at all is a new node, said nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-epoch-"));
    dirs.push(dir);
    expect(new EpochStore(dir).readProblem()).toBeNull();
    for (const [text, shown] of [["garbage\n", '"garbage"'], ["-3\n", '"-3"'], ["", '""'], ["12abc", '"12abc"'], ["99999999999999999999", '"99999999999999999999"']] as const) {
      writeFileSync(join(dir, "epoch"), text);
      const store = new EpochStore(dir);
      expect(store.get(), text).toBe(0);
      expect(store.readProblem(), text).toBe(`does not hold an epoch (${shown})`);
      expect(store.path()).toBe(join(dir, "epoch"));
    }
    // A number above the protocol's bound: every heartbeat would carry an epoch the peer must refuse.
    for (const text of [String(2 ** 48 + 1), String(Number.MAX_SAFE_INTEGER)]) {
      writeFileSync(join(dir, "epoch"), `${text}\n`);
      const store = new EpochStore(dir);
      expect(store.get(), text).toBe(0);
      expect(store.readProblem()).toBe(`holds ${text}, above the protocol's bound ${2 ** 48}`);
    }
    writeFileSync(join(dir, "epoch"), `${2 ** 48}\n`);
    expect(new EpochStore(dir).get()).toBe(2 ** 48);
    writeFileSync(join(dir, "epoch"), " 42 \n");
    expect(new EpochStore(dir).get()).toBe(42);
    expect(new EpochStore(dir).readProblem()).toBeNull();
    // The next change writes a good file again.
    writeFileSync(join(dir, "epoch"), "garbage");
    new EpochStore(dir).set(7);
    expect(readFileSync(join(dir, "epoch"), "utf8")).toBe("7\n");
  });

  it("writes the epoch back when its file is removed or replaced by hand, and does nothing (one stat) otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), "mnha-epoch-"));
    dirs.push(dir);
    const store = new EpochStore(dir);
    expect(store.restoreIfLost(), "no epoch yet: nothing to keep").toBeNull();
    store.set(7);
    expect(store.restoreIfLost()).toBeNull();
    rmSync(dir, { recursive: true });
    expect(store.restoreIfLost()).toBe(`${join(dir, "epoch")} was missing: wrote the epoch 7 back`);
    expect(readFileSync(join(dir, "epoch"), "utf8")).toBe("7\n");
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
    writeFileSync(join(dir, "epoch"), "0\n");
    expect(store.restoreIfLost()).toBe(`${join(dir, "epoch")} held "0": wrote the epoch 7 back`);
    expect(new EpochStore(dir).get()).toBe(7);
    expect(store.restoreIfLost()).toBeNull();
  });
});
