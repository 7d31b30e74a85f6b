import { describe, it } from "vitest";
import { expectSeedsPass } from "./batch.js";

// The quick CI batch, second half (see batch-a). Benign schedules must move nothing at all.
// A failing seed prints its trace and the command that replays it.
describe("simulated schedules (quick batch, part B)", () => {
  it("3000 seeded fault schedules keep safety, liveness, causality and epoch order", { timeout: 120_000 }, () => {
    expectSeedsPass(500_001, 3_000);
  });

  it("1000 benign schedules never move the VIP off its first holder", { timeout: 120_000 }, () => {
    expectSeedsPass(900_001, 1_000, { profile: "benign" });
  });
});
