import { describe, it } from "vitest";
import { expectSeedsPass } from "./batch.js";

// The quick CI batch, first half (the other half is batch-b, so that the two run in parallel).
// A failing seed prints its trace and the command that replays it.
describe("simulated schedules (quick batch, part A)", () => {
  it("4000 seeded fault schedules keep safety, liveness, causality and epoch order", { timeout: 120_000 }, () => {
    expectSeedsPass(1, 4_000);
  });
});
