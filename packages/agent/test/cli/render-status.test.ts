/**
 * `mnha status` for people: the holder's duplicate-address check gets its own row, and a
 * holder whose check cannot run is said above the table, where an operator looks first.
 */
import { describe, expect, it } from "vitest";
import { renderStatus } from "../../src/cli/render-status.js";
import type { DuplicateCheckStatus } from "../../src/contracts.js";
import { sampleStatus } from "../control/fake-control.js";

function rendered(duplicateCheck: DuplicateCheckStatus | undefined): { text: string; row: string | undefined } {
  const report = sampleStatus();
  if (duplicateCheck) report.duplicateCheck = duplicateCheck;
  const text = renderStatus(report);
  return { text, row: text.split("\n").find((line) => line.trimStart().startsWith("duplicate check")) };
}

describe("status: the duplicate-address check", () => {
  it("one row per state: running with the age of its last check, idle on a standby, off when configured off", () => {
    expect(rendered({ state: "running", problem: null, lastCheckMsAgo: 420 }).row).toMatch(/duplicate check\s+running, last check 420 ms ago\s*\|?\s*$/);
    expect(rendered({ state: "running", problem: null, lastCheckMsAgo: null }).row).toMatch(/running, no check yet/);
    expect(rendered({ state: "idle", problem: null, lastCheckMsAgo: null }).row).toMatch(/idle \(runs while this node holds the VIP\)/);
    expect(rendered({ state: "disabled", problem: null, lastCheckMsAgo: null }).row).toMatch(/off \(arpGuard\.duplicateCheckIntervalMs is 0\)/);
    // A weakened check is still running, and says what is missing.
    expect(rendered({ state: "running", problem: "1 of 2 arpings failing (checks less often): arping exited (code 2)", lastCheckMsAgo: 900 }).row).toMatch(/running, last check 900 ms ago; 1 of 2 arpings failing/);
  });

  it("a holder whose check cannot run: NOT RUNNING in its row and a line above the table naming the problem", () => {
    const { text, row } = rendered({ state: "failing", problem: "own MAC on br_eth0 unknown (ENOENT), 12 tries", lastCheckMsAgo: null });
    expect(row).toMatch(/NOT RUNNING: own MAC on br_eth0 unknown \(ENOENT\), 12 tries/);
    const lines = text.split("\n");
    const warning = lines.findIndex((line) => line.startsWith("DUPLICATE-ADDRESS CHECK NOT RUNNING on mn1, which holds the VIP: own MAC on br_eth0 unknown (ENOENT), 12 tries"));
    expect(warning, "the warning line").toBeGreaterThan(0);
    expect(lines[warning - 1], "right under the VIP line").toMatch(/^VIP 10\.0\.0\.100\/24/);
    expect(lines[warning]).toMatch(/a second holder would go unnoticed; the agent keeps the VIP and retries/);
  });

  it("no row and no warning from an agent that does not report the check (older agents)", () => {
    const { text, row } = rendered(undefined);
    expect(row).toBeUndefined();
    expect(text).not.toMatch(/DUPLICATE-ADDRESS/);
  });
});
