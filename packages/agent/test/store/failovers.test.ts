import { describe, expect, it } from "vitest";
import { type AuditEvent, compareTakes, describeFailover, failoverWindow, takeOf } from "../../src/store/failovers.js";

const role = (node: string, wallMs: number, from: string, to: string, epoch: number, reason = `${from} -> ${to}`): AuditEvent => ({
  node,
  wallMs,
  type: "election.role-changed",
  message: `${from} -> ${to}: ${reason}`,
  fields: { from, to, reason, epoch },
});
const vip = (node: string, wallMs: number, present: boolean): AuditEvent => ({ node, wallMs, type: "vip.changed", message: `VIP ${present ? "on" : "gone"}`, fields: { present } });

describe("takeOf", () => {
  it("is a role change to holder from a role that did not hold the VIP", () => {
    expect(takeOf(role("mn1", 5, "claiming", "holder", 3, "claimed the VIP at epoch 3"))).toEqual({ node: "mn1", wallMs: 5, epoch: 3, reason: "claimed the VIP at epoch 3" });
    expect(takeOf(role("mn1", 5, "receiving", "holder", 4))).not.toBeNull();
    expect(takeOf(role("mn1", 5, "handing-off", "holder", 4, "handoff refused"))).toBeNull();
    expect(takeOf(role("mn1", 5, "holder", "standby", 4))).toBeNull();
    expect(takeOf(vip("mn1", 5, true))).toBeNull();
  });

  it("orders takes by epoch, whatever the nodes' wall clocks say", () => {
    const takes = [takeOf(role("mn2", 1_000, "receiving", "holder", 2))!, takeOf(role("mn1", 4_000, "claiming", "holder", 1))!];
    expect(takes.sort(compareTakes).map((t) => t.epoch)).toEqual([1, 2]);
  });
});

describe("describeFailover", () => {
  const previous = takeOf(role("mn1", 10_000, "claiming", "holder", 1))!;

  it("measures the unanswered time from the old holder's VIP loss to the new holder's VIP", () => {
    const take = takeOf(role("mn2", 50_000, "receiving", "holder", 2, "took the VIP from mn1 at epoch 2"))!;
    const nearby = [vip("mn1", 49_700, false), vip("mn2", 50_100, true), vip("mn1", 11_000, true), role("mn1", 49_900, "handing-off", "standby", 2)];
    expect(describeFailover(take, previous, nearby)).toEqual({ atMs: 50_000, from: "mn1", to: "mn2", epoch: 2, cause: "took the VIP from mn1 at epoch 2", unansweredMs: 400 });
  });

  it("falls back on the old holder's role change when its VIP loss was not seen, and clamps clock skew at zero", () => {
    const take = takeOf(role("mn2", 50_000, "receiving", "holder", 2))!;
    expect(describeFailover(take, previous, [role("mn1", 49_000, "handing-off", "standby", 2), vip("mn2", 49_500, true)]).unansweredMs).toBe(500);
    // The taker's clock runs behind: its VIP seems to arrive before the old holder let go.
    expect(describeFailover(take, previous, [vip("mn1", 49_800, false), vip("mn2", 49_600, true)]).unansweredMs).toBe(0);
  });

  it("reports the unanswered time as unknown when either end was not seen", () => {
    const take = takeOf(role("mn2", 50_000, "claiming", "holder", 2))!;
    expect(describeFailover(take, previous, [vip("mn2", 50_100, true)]).unansweredMs).toBeNull();
    expect(describeFailover(take, previous, [vip("mn1", 49_000, false)]).unansweredMs).toBeNull();
    expect(describeFailover(take, null, [vip("mn2", 50_100, true)])).toMatchObject({ from: null, unansweredMs: null });
  });

  it("names the triggering check, gateway loss or stop, only from the old holder and only after the previous take", () => {
    const take = takeOf(role("mn2", 50_000, "receiving", "holder", 2, "took the VIP from mn1 at epoch 2"))!;
    const nearby: AuditEvent[] = [
      { node: "mn1", wallMs: 5_000, type: "check.changed", message: "service db is failed: before the previous take", fields: { healthy: false } },
      { node: "mn2", wallMs: 40_000, type: "check.changed", message: "service ui is failed: on the taker", fields: { healthy: false } },
      { node: "mn1", wallMs: 48_000, type: "gateway.changed", message: "gateway 10.0.0.1 unreachable: timed out", fields: { reachable: false } },
      { node: "mn1", wallMs: 48_500, type: "agent.stopping", message: "stopping: SIGTERM", fields: { reason: "SIGTERM" } },
    ];
    expect(describeFailover(take, previous, nearby).cause).toBe("took the VIP from mn1 at epoch 2 (mn1: stopping: SIGTERM; mn1: gateway 10.0.0.1 unreachable: timed out)");
  });

  it("asks for a window that starts at the previous take and reaches past the take", () => {
    const take = takeOf(role("mn2", 50_000, "receiving", "holder", 2))!;
    expect(failoverWindow(take, previous)).toEqual({ sinceMs: 10_000, untilMs: 80_000 });
    expect(failoverWindow(take, null)).toEqual({ sinceMs: -70_000, untilMs: 80_000 });
  });
});
