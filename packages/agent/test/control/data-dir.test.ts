import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MnhaError } from "@mnha/shared";
import { afterAll, describe, expect, it } from "vitest";
import { ensurePrivateDataDir } from "../../src/control/socket-file.js";

const base = mkdtempSync(join(tmpdir(), "mnha-datadir-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function failure(run: () => void): MnhaError {
  try {
    run();
  } catch (error) {
    if (error instanceof MnhaError) return error;
    throw error;
  }
  throw new Error("expected an MnhaError");
}

describe("the data directory's owner and mode are checked at start", () => {
  it("creates a missing data dir with mode 0700", () => {
    const dir = join(base, "new", "data");
    ensurePrivateDataDir(dir);
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
  });

  it("refuses a data dir writable by group or others, naming the chmod fix", () => {
    const dir = join(base, "open");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const error = failure(() => ensurePrivateDataDir(dir));
    expect(error.code).toBe("DATA_DIR_PERMISSION");
    expect(error.message).toBe(`the data directory ${dir} is writable by other users (mode 777)`);
    expect(error.hint).toBe(`run: chmod 700 ${dir}`);
    chmodSync(dir, 0o750);
    expect(() => ensurePrivateDataDir(dir)).not.toThrow();
  });

  it("refuses a data dir owned by another user, naming the chown fix", () => {
    const dir = join(base, "foreign");
    mkdirSync(dir, { mode: 0o700 });
    // The tests run as root (as the agent does): root can hand the directory over.
    chownSync(dir, 4321, 4321);
    const error = failure(() => ensurePrivateDataDir(dir));
    expect(error.message).toMatch(/is owned by uid 4321, not root/);
    expect(error.hint).toBe(`run: chown root:root ${dir} && chmod 700 ${dir}`);
  });

  it("refuses a symbolic link or a file in the data dir's place", () => {
    const real = join(base, "real");
    mkdirSync(real, { mode: 0o700 });
    const link = join(base, "link");
    symlinkSync(real, link);
    expect(failure(() => ensurePrivateDataDir(link)).message).toMatch(/is not a directory \(it is a symbolic link\)/);
  });
});
