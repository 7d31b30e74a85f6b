/** `mnha failovers` and `mnha metrics` for people. */
import type { FailoverRecord, MetricsReport } from "../contracts.js";
import { renderTable, terminalSafe, truncate } from "./render-table.js";

export function renderFailovers(failovers: readonly FailoverRecord[]): string {
  if (failovers.length === 0) return "no change of VIP holder recorded in this window\n";
  const rows = [
    ["WHEN", "FROM", "TO", "EPOCH", "UNANSWERED", "CAUSE"],
    ...failovers.map((f) => [new Date(f.atMs).toISOString(), f.from ?? "-", f.to, String(f.epoch), f.unansweredMs === null ? "?" : `${f.unansweredMs} ms`, truncate(f.cause, 100)]),
  ];
  return `${renderTable(rows, "")}\n`;
}

/** `filters`: the filters given, named when nothing matched them. */
export function renderMetrics(report: MetricsReport, filters: string | null = null): string {
  const lines: string[] = [];
  if (report.summaries.length === 0) lines.push(filters === null ? "no monitoring samples in this window" : `no monitoring samples match ${filters} in this window`);
  else {
    const rows = [
      ["NODE", "SERIES", "SAMPLES", "MIN", "MEDIAN", "MAX", "LAST", "LAST AT"],
      ...report.summaries.map((s) => [s.node, s.series, String(s.count), num(s.min), num(s.median), num(s.max), num(s.last), new Date(s.lastAtMs).toISOString()]),
    ];
    lines.push(renderTable(rows, ""));
  }
  if (report.store) {
    const st = report.store;
    lines.push("", `store: ${st.ok ? "ok" : `DEGRADED (${terminalSafe(st.reason ?? "unknown")})`}, ${(st.sizeBytes / 1_048_576).toFixed(1)} MiB, ${st.pending} pending${st.dropped ? `, ${st.dropped} dropped` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

function num(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2);
}
