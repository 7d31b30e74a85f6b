import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { readUpgradeOrder } from "../../src/cli/upgrade-mn.js";

/** An interrupted upgrade-mn whose node-order file was deleted or damaged by hand. */
describe("readUpgradeOrder", () => {
  const dir = mkdtempSync(join(tmpdir(), "mnha-upgrade-order-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const state = "/var/lib/mnha/upgrade-mn.state.json";

  const error = (run: () => unknown): MnhaError => {
    try {
      run();
    } catch (e) {
      if (e instanceof MnhaError) return e;
      throw e;
    }
    throw new Error("expected an MnhaError");
  };

  it("reads the order it wrote", () => {
    const file = join(dir, "ok.json");
    writeFileSync(file, JSON.stringify({ first: "mn2", second: "mn1", version: "4.9.0" }));
    expect(readUpgradeOrder(file, state)).toEqual({ first: "mn2", second: "mn1", version: "4.9.0" });
  });

  it("deleted by hand: PLAN_STATE naming the file and how to start over, not ENOENT", () => {
    const e = error(() => readUpgradeOrder(join(dir, "gone.json"), state));
    expect(e.code).toBe("PLAN_STATE");
    expect(e.message).toMatch(/gone\.json is missing/);
    expect(e.hint).toContain(`remove ${state}`);
  });

  it("truncated or wrong: PLAN_STATE, not a SyntaxError", () => {
    const truncated = join(dir, "truncated.json");
    writeFileSync(truncated, '{"first": "mn2", "sec');
    expect(error(() => readUpgradeOrder(truncated, state)).code).toBe("PLAN_STATE");
    const wrong = join(dir, "wrong.json");
    writeFileSync(wrong, JSON.stringify({ first: "mn2" }));
    expect(error(() => readUpgradeOrder(wrong, state)).message).toMatch(/damaged/);
  });
});
