/**
 * Peer- and network-supplied strings reach the operator's terminal through these renderers:
 * none of them may carry a control character or an escape sequence through.
 */
import { describe, expect, it } from "vitest";
import type { FailoverRecord, MetricsReport } from "../../src/contracts.js";
import { renderEvents } from "../../src/cli/render-events.js";
import { renderFailovers, renderMetrics } from "../../src/cli/render-history.js";
import { renderStatus } from "../../src/cli/render-status.js";
import { sampleEvents, sampleStatus } from "../control/fake-control.js";

const CLEAR = "\x1b[2J";
const CLIPBOARD = "\x1b]52;c;cm0gLXJmIC8K\x07";
const BELL = "\x07";
const C1_CSI = "\u009b31m";
const HOSTILE = `${CLEAR}x${CLIPBOARD}y${BELL}z${C1_CSI}`;

/** Any C0 but newline, DEL, C1. */
// eslint-disable-next-line no-control-regex -- the test looks for control characters
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

describe("CLI renderers strip control characters", () => {
  it("mnha events: node, type and message", () => {
    const events = sampleEvents().map((e) => ({ ...e, node: `mn1${BELL}`, type: `peer.refused${C1_CSI}`, message: `reason ${HOSTILE} end` }));
    const text = renderEvents(events);
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain("reason xyz end");
    expect(text).not.toContain("52;c;");
  });

  it("mnha status: peer name, service details and reasons", () => {
    const report = sampleStatus();
    report.peer.node = `mn2${CLEAR}`;
    report.peer.address = `10.0.0.12${CLIPBOARD}`;
    // The hostile strings must really be in the report, or the test proves nothing.
    if (!("services" in report.peer)) throw new Error("the sample status has no connected peer to inject into");
    report.peer.services = [{ name: `db${BELL}`, healthy: false, critical: true, detail: `refused ${HOSTILE}` }];
    report.peer.reasons = [`critical service db${C1_CSI} is down${CLEAR}`];
    const text = renderStatus(report);
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain("peer mn2 (10.0.0.12)");
    expect(text).toContain("mn2: critical service db is down");
  });

  it("mnha failovers and metrics: cause, series and store reason", () => {
    const failover: FailoverRecord = { atMs: 0, from: `mn1${BELL}`, to: "mn2", epoch: 3, unansweredMs: 500, cause: `handoff: ${HOSTILE}` };
    const failovers = renderFailovers([failover]);
    expect(failovers).not.toMatch(CONTROL);
    expect(failovers).toContain("handoff: xyz");
    const report: MetricsReport = {
      summaries: [{ node: `mn2${CLEAR}`, series: `cpu${CLIPBOARD}`, count: 1, min: 1, median: 1, max: 1, last: 1, lastAtMs: 0 }],
      store: { ok: false, reason: `disk ${HOSTILE}`, sizeBytes: 0, pending: 0, dropped: 0, lastIntegrityCheck: null },
    };
    const metrics = renderMetrics(report);
    expect(metrics).not.toMatch(CONTROL);
    expect(metrics).toContain("DEGRADED (disk xyz)");
  });
});
