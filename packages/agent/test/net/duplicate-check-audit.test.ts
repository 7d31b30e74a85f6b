import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DuplicateCheckStatus } from "../../src/contracts.js";
import { DuplicateCheckAudit } from "../../src/net/duplicate-check-audit.js";

const running: DuplicateCheckStatus = { state: "running", problem: null, lastCheckMsAgo: 100 };
const idle: DuplicateCheckStatus = { state: "idle", problem: null, lastCheckMsAgo: null };
const failing = (problem: string): DuplicateCheckStatus => ({ state: "failing", problem, lastCheckMsAgo: null });

describe("DuplicateCheckAudit: one pair of audit events per outage of the holder's duplicate check", () => {
  let records: { type: string; message: string; fields: Record<string, unknown>; level: string }[];
  let audit: DuplicateCheckAudit;

  beforeEach(() => {
    vi.useFakeTimers();
    records = [];
    audit = new DuplicateCheckAudit((type, message, fields, level) => records.push({ type, message, fields, level }), { now: () => performance.now() }, 10_000);
  });
  afterEach(() => {
    audit.stop();
    vi.useRealTimers();
  });

  it("says when the check stops, and when it has run again for the settle time, with how long it was blind", () => {
    audit.onState(running);
    expect(records, "a check that runs is no news").toEqual([]);
    audit.onState(failing("/usr/bin/arping exited (code 2): socket: Operation not permitted"));
    expect(records).toEqual([
      {
        type: "duplicate-check.failing",
        message: "duplicate-address check NOT RUNNING while this node holds the VIP: /usr/bin/arping exited (code 2): socket: Operation not permitted; a second holder would go unnoticed (keeping the VIP, retrying)",
        fields: { problem: "/usr/bin/arping exited (code 2): socket: Operation not permitted" },
        level: "warn",
      },
    ]);
    vi.advanceTimersByTime(42_000);
    audit.onState(running);
    vi.advanceTimersByTime(9_999);
    expect(records, "not before the check has run for the settle time").toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(records[1]).toMatchObject({ type: "duplicate-check.running", level: "info", fields: { blindMs: 42_000, flaps: 0 } });
    expect(records[1]?.message).toBe("duplicate-address check running again after 42.0 s not running (it had failed: /usr/bin/arping exited (code 2): socket: Operation not permitted)");
  });

  it("a check that fails again and again within the settle time: one pair of events, with the count", () => {
    audit.onState(failing("arping exited (code 2)"));
    for (let i = 0; i < 30; i++) {
      vi.advanceTimersByTime(5_000);
      audit.onState(running);
      vi.advanceTimersByTime(1_500);
      audit.onState(failing("arping exited (code 2)"));
    }
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing"]);
    vi.advanceTimersByTime(5_000);
    audit.onState(running);
    vi.advanceTimersByTime(10_000);
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.running"]);
    expect(records[1]?.fields).toMatchObject({ flaps: 30, blindMs: 30 * 6_500 + 5_000 });
    expect(records[1]?.message).toMatch(/running again after 3m 20s not running, after 30 more failures/);
  });

  it("this node stops holding the VIP while the check is out: the outage ends there; a later failure is a new outage", () => {
    audit.onState(failing("own MAC on eth0 unknown (ENOENT), 3 tries"));
    vi.advanceTimersByTime(3_000);
    audit.onState(idle);
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.ended"]);
    expect(records[1]).toMatchObject({ level: "info", fields: { blindMs: 3_000, flaps: 0 } });
    expect(records[1]?.message).toMatch(/^duplicate-address check no longer due: this node stopped holding the VIP after 3\.0 s without it/);
    audit.onState(running);
    vi.advanceTimersByTime(20_000);
    expect(records, "nothing to close").toHaveLength(2);
    audit.onState(failing("arping exited (code 1)"));
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.ended", "duplicate-check.failing"]);
  });

  it("running again, then idle before the settle time: closed as ended, once", () => {
    audit.onState(failing("arping exited (code 1)"));
    vi.advanceTimersByTime(2_000);
    audit.onState(running);
    vi.advanceTimersByTime(1_000);
    audit.onState(idle);
    vi.advanceTimersByTime(20_000);
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.ended"]);
  });

  it("the agent stops during an outage: the outage is closed then, so the audit never leaves a blind holder open", () => {
    audit.stop();
    expect(records, "no outage, nothing to close").toEqual([]);
    audit.onState(failing("arping exited (code 1)"));
    vi.advanceTimersByTime(7_000);
    audit.stop();
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.ended"]);
    expect(records[1]).toMatchObject({ level: "info", fields: { blindMs: 7_000, flaps: 0, agentStopped: true } });
    expect(records[1]?.message).toBe("duplicate-address check still not running when the agent stopped, after 7.0 s (it had failed: arping exited (code 1))");
    audit.stop();
    expect(records, "closed once").toHaveLength(2);
  });

  it("the agent stops while the check runs again but has not settled: closed as running, blind until it ran again", () => {
    audit.onState(failing("arping exited (code 1)"));
    vi.advanceTimersByTime(4_000);
    audit.onState(running);
    vi.advanceTimersByTime(2_000);
    audit.stop();
    vi.advanceTimersByTime(20_000);
    expect(records.map((r) => r.type)).toEqual(["duplicate-check.failing", "duplicate-check.running"]);
    expect(records[1]?.fields).toMatchObject({ blindMs: 4_000 });
  });
});
