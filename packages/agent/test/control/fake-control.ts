/** Fake daemon handlers, a log capture and temp socket dirs for control API and CLI tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Logger } from "@mnha/shared";
import type { ControlHandlers, DemoteResult, EventQuery, FailoverRecord, HaEvent, MetricsReport, StatusReport } from "../../src/contracts.js";

export function sampleStatus(): StatusReport {
  return {
    version: "0.1.0",
    vip: { address: "10.0.0.100", prefix: 24, interface: "br_eth0" },
    gateway: { address: "10.0.0.1", reachable: true, rttMs: 0.8 },
    vipOwner: "mn1",
    self: {
      node: "mn1",
      address: "10.0.0.11",
      role: "holder",
      epoch: 7,
      holder: "mn1",
      eligible: true,
      reasons: [],
      vipPresent: true,
      keepalived: "master",
      gatewayReachable: true,
      services: [
        { name: "mn", healthy: true, critical: true },
        { name: "db", healthy: true, critical: true },
      ],
      uptimeMs: 3_723_000,
      keepalivedPid: 4242,
      keepalivedRestarts: 0,
      leaseRemainingMs: 450,
    },
    peer: {
      node: "mn2",
      address: "10.0.0.12",
      role: "standby",
      epoch: 7,
      holder: "mn1",
      eligible: false,
      reasons: ["critical service db is down"],
      vipPresent: false,
      keepalived: "fault",
      gatewayReachable: true,
      services: [
        { name: "mn", healthy: true, critical: true },
        { name: "db", healthy: false, critical: true, detail: "connect ECONNREFUSED 127.0.0.1:3306", restoreAttempts: 2, restoreState: "scheduled" },
      ],
      connected: true,
      lastHeardMsAgo: 40,
    },
  };
}

export function sampleEvents(): HaEvent[] {
  return [1, 2, 3].map((seq) => ({
    seq,
    node: "mn1",
    time: `2026-01-01T00:00:0${seq}.000Z`,
    uptimeMs: seq * 1_000,
    type: seq === 2 ? "service-changed" : "role-changed",
    message: `event number ${seq}`,
    fields: { seq },
  }));
}

/** Handlers that answer from fixed data and record what they were asked. */
export class FakeHandlers implements ControlHandlers {
  readonly calls: { method: string; options?: unknown }[] = [];
  statusReport: StatusReport = sampleStatus();
  events_: HaEvent[] = sampleEvents();
  demoteResult: DemoteResult = { ok: true, from: "mn1", to: "mn2", epoch: 8, message: "the peer holds the VIP", tookMs: 312 };
  /** When set, demote throws this instead of answering. */
  demoteError: unknown = null;

  async status(): Promise<StatusReport> {
    this.calls.push({ method: "status" });
    return this.statusReport;
  }
  async demote(options: { timeoutMs?: number }): Promise<DemoteResult> {
    this.calls.push({ method: "demote", options });
    if (this.demoteError !== null) throw this.demoteError;
    return this.demoteResult;
  }
  failovers_: FailoverRecord[] = [
    { atMs: Date.UTC(2026, 10, 25, 3, 12, 4), from: "mn1", to: "mn2", epoch: 8, cause: "took the VIP from mn1 at epoch 8: service mn failed (connect ECONNREFUSED)", unansweredMs: 190 },
  ];
  metricsReport: MetricsReport = {
    summaries: [{ node: "mn1", series: "cpu.load_percent", count: 30, min: 1.5, median: 4.25, max: 97, last: 3, lastAtMs: Date.UTC(2026, 10, 25, 3, 12) }],
    store: { ok: true, reason: null, sizeBytes: 3 * 1_048_576, pending: 0, dropped: 0, lastIntegrityCheck: null },
  };
  async failovers(options: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]> {
    this.calls.push({ method: "failovers", options });
    return this.failovers_.slice(0, options.limit ?? 50);
  }
  async metrics(options: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<MetricsReport> {
    this.calls.push({ method: "metrics", options });
    return this.metricsReport;
  }
  async events(options: EventQuery): Promise<HaEvent[]> {
    this.calls.push({ method: "events", options });
    const matching = this.events_.filter((e) => options.type === undefined || e.type === options.type);
    return matching.slice(0, options.limit ?? matching.length);
  }
  version(): { version: string; protocol: number; node: string } {
    this.calls.push({ method: "version" });
    return { version: "0.1.0", protocol: 1, node: "mn1" };
  }
}

/** A pino logger whose JSON lines the test can read. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void raw.push(line) });
  return { logger, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** A private temp directory (mode 0700, owned by the test's root user). */
export function tempDir(prefix = "mnha-ctl-"): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
