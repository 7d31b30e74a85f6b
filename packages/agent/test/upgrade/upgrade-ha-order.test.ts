import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MnhaError } from "@mnha/shared";
import { readUpgradeHaOrder } from "../../src/cli/upgrade-ha.js";

/** An interrupted upgrade-ha whose order file (nodes, each node's previous suite) was deleted or damaged by hand. */
describe("readUpgradeHaOrder", () => {
  const dir = mkdtempSync(join(tmpdir(), "mnha-upgrade-ha-order-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const state = "/var/lib/mnha/upgrade-ha.state.json";

  const error = (run: () => unknown): MnhaError => {
    try {
      run();
    } catch (e) {
      if (e instanceof MnhaError) return e;
      throw e;
    }
    throw new Error("expected an MnhaError");
  };

  it("reads the order it wrote, with each node's previous suite (the rollback target)", () => {
    const file = join(dir, "ok.json");
    const order = { target: "0.2.0", first: "mn2", second: "mn1", previous: { mn1: "0.1.0", mn2: "0.1.0" } };
    writeFileSync(file, JSON.stringify(order));
    expect(readUpgradeHaOrder(file, state)).toEqual(order);
  });

  it("deleted by hand: PLAN_STATE naming the file and how to start over", () => {
    const e = error(() => readUpgradeHaOrder(join(dir, "gone.json"), state));
    expect(e.code).toBe("PLAN_STATE");
    expect(e.message).toMatch(/gone\.json is missing/);
    expect(e.hint).toContain(`remove ${state}`);
  });

  it("truncated, or without the previous suites: PLAN_STATE, not a crash", () => {
    const truncated = join(dir, "truncated.json");
    writeFileSync(truncated, '{"target": "0.2.0", "fir');
    expect(error(() => readUpgradeHaOrder(truncated, state)).code).toBe("PLAN_STATE");
    const noPrevious = join(dir, "no-previous.json");
    writeFileSync(noPrevious, JSON.stringify({ target: "0.2.0", first: "mn2", second: "mn1" }));
    const e = error(() => readUpgradeHaOrder(noPrevious, state));
    expect(e.message).toContain("is damaged");
    const badPrevious = join(dir, "bad-previous.json");
    writeFileSync(badPrevious, JSON.stringify({ target: "0.2.0", first: "mn2", second: "mn1", previous: { mn1: 1 } }));
    expect(error(() => readUpgradeHaOrder(badPrevious, state)).code).toBe("PLAN_STATE");
    writeFileSync(badPrevious, "null");
    expect(error(() => readUpgradeHaOrder(badPrevious, state)).code).toBe("PLAN_STATE");
  });
});
