import { createRequire } from "node:module";
import { createServer } from "node:net";
import { MnhaError, silentLogger } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { Registry, collectDefaultMetrics } from "prom-client";
import { MetricsServer, type MetricsSnapshot } from "../../src/metrics/metrics.js";
import { LoopDelay } from "../../src/metrics/process-metrics.js";

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

function snapshot(overrides: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    node: "mn-a",
    version: "0.1.0",
    role: "holder",
    epoch: 7,
    failoversTotal: 3,
    vipHeld: true,
    peerConnected: true,
    peerRttMs: 1.5,
    gatewayReachable: true,
    gatewayRttMs: 0.25,
    services: [
      { name: "mn", healthy: true, latencyMs: 12, restoreAttemptsTotal: 0 },
      { name: "db", healthy: false, latencyMs: null, restoreAttemptsTotal: 2 },
    ],
    keepalivedState: "master",
    store: { ok: true, sizeBytes: 1_048_576, pending: 4 },
    syncLagRecords: 17,
    ...overrides,
  };
}

async function metricsServer(collect: () => MetricsSnapshot, port = 0, loopDelay?: LoopDelay): Promise<{ server: MetricsServer; url: string }> {
  const server = new MetricsServer({ address: "127.0.0.1", port, logger: silentLogger(), collect, ...(loopDelay ? { loopDelay } : {}) });
  servers.push(server);
  await server.start();
  return { server, url: `http://127.0.0.1:${server.port()}` };
}

/** Parses the text exposition format: sample "name{labels}" -> value, plus each metric's TYPE. */
function parseExposition(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    if (line.startsWith("#")) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not an exposition line: ${line}`);
    const labels = [...(sample[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`).sort();
    const key = labels.length > 0 ? `${sample[1]}{${labels.join(",")}}` : (sample[1] as string);
    samples.set(key, Number(sample[3]));
  }
  return { samples, types };
}

async function scrape(url: string): Promise<{ samples: Map<string, number>; types: Map<string, string>; contentType: string | null }> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return { ...parseExposition(await response.text()), contentType: response.headers.get("content-type") };
}

describe("MetricsServer", () => {
  it("serves every mnha_* metric with the snapshot's values in the Prometheus text format", async () => {
    const { url } = await metricsServer(() => snapshot({ peerRefusalsTotal: { "stranger-address": 12, "forged-frame": 1 } }));
    const { samples, types, contentType } = await scrape(url);
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const expected: Record<string, number> = {
      'mnha_info{node="mn-a",version="0.1.0"}': 1,
      'mnha_role{role="holder"}': 1,
      'mnha_role{role="standby"}': 0,
      'mnha_role{role="claiming"}': 0,
      mnha_epoch: 7,
      mnha_failovers_total: 3,
      mnha_vip_held: 1,
      mnha_vip_unanswered_seconds: 0,
      mnha_peer_connected: 1,
      mnha_duplicate_check_failing: 0,
      mnha_peer_rtt_seconds: 0.0015,
      mnha_gateway_reachable: 1,
      mnha_gateway_rtt_seconds: 0.00025,
      'mnha_check_up{service="mn"}': 1,
      'mnha_check_up{service="db"}': 0,
      'mnha_check_latency_seconds{service="mn"}': 0.012,
      'mnha_restore_attempts_total{service="mn"}': 0,
      'mnha_restore_attempts_total{service="db"}': 2,
      'mnha_keepalived_state{state="master"}': 1,
      'mnha_keepalived_state{state="fault"}': 0,
      'mnha_keepalived_state{state="backup"}': 0,
      mnha_store_size_bytes: 1_048_576,
      mnha_store_ok: 1,
      mnha_store_pending: 4,
      mnha_sync_lag_records: 17,
      'mnha_peer_refusals_total{code="stranger-address"}': 12,
      'mnha_peer_refusals_total{code="forged-frame"}': 1,
    };
    for (const [key, value] of Object.entries(expected)) expect([key, samples.get(key)]).toEqual([key, value]);
    // Exactly one role and one keepalived state are on.
    expect([...samples].filter(([k, v]) => k.startsWith("mnha_role{") && v === 1)).toHaveLength(1);
    expect([...samples].filter(([k, v]) => k.startsWith("mnha_keepalived_state{") && v === 1)).toHaveLength(1);
    // No latency is invented for a check that has none.
    expect(samples.has('mnha_check_latency_seconds{service="db"}')).toBe(false);
    expect(types.get("mnha_failovers_total")).toBe("counter");
    expect(types.get("mnha_restore_attempts_total")).toBe("counter");
    expect(types.get("mnha_epoch")).toBe("gauge");
    // The process metrics of its own registry.
    expect(samples.has("process_cpu_user_seconds_total")).toBe(true);
    expect([...samples.keys()].some((k) => k.startsWith("nodejs_heap_size_total_bytes"))).toBe(true);
  });

  it("reads the values at each scrape; unknown values disappear, counters never go down", async () => {
    let current = snapshot();
    const { url } = await metricsServer(() => current);
    await scrape(url);
    current = snapshot({
      role: "standby",
      epoch: 8,
      failoversTotal: 4,
      vipHeld: false,
      peerConnected: false,
      peerRttMs: null,
      gatewayRttMs: null,
      services: [{ name: "mn", healthy: false, latencyMs: 1_000, restoreAttemptsTotal: 1 }],
      keepalivedState: "fault",
      store: null,
      syncLagRecords: null,
      vipUnansweredSeconds: 12.5,
      duplicateCheckFailing: true,
    });
    let { samples } = await scrape(url);
    expect(samples.get("mnha_vip_unanswered_seconds")).toBe(12.5);
    expect(samples.get("mnha_duplicate_check_failing")).toBe(1);
    expect(samples.get('mnha_role{role="standby"}')).toBe(1);
    expect(samples.get('mnha_role{role="holder"}')).toBe(0);
    expect(samples.get("mnha_epoch")).toBe(8);
    expect(samples.get("mnha_failovers_total")).toBe(4);
    expect(samples.get("mnha_vip_held")).toBe(0);
    expect(samples.get("mnha_peer_connected")).toBe(0);
    expect(samples.get('mnha_check_up{service="mn"}')).toBe(0);
    expect(samples.get('mnha_check_latency_seconds{service="mn"}')).toBe(1);
    expect(samples.get('mnha_keepalived_state{state="fault"}')).toBe(1);
    expect(samples.get("mnha_store_ok")).toBe(0);
    for (const gone of ["mnha_peer_rtt_seconds", "mnha_gateway_rtt_seconds", "mnha_store_size_bytes", "mnha_store_pending", "mnha_sync_lag_records", 'mnha_check_up{service="db"}']) {
      expect([gone, samples.has(gone)]).toEqual([gone, false]);
    }
    // A source value that drops (say the daemon's per-episode count) is counted on from, not back.
    current = snapshot({ failoversTotal: 1, services: [{ name: "mn", healthy: true, latencyMs: 5, restoreAttemptsTotal: 0 }] });
    ({ samples } = await scrape(url));
    expect(samples.get("mnha_failovers_total")).toBe(5);
    expect(samples.get('mnha_restore_attempts_total{service="mn"}')).toBe(1);
    expect(samples.get("mnha_peer_rtt_seconds")).toBe(0.0015);
  });

  it("exports the newest good backup's age only while it is known", async () => {
    let current = snapshot({ backupAgeSeconds: 3_600 });
    const { url } = await metricsServer(() => current);
    expect((await scrape(url)).samples.get("mnha_backup_newest_age_seconds")).toBe(3_600);
    current = snapshot({ backupAgeSeconds: null });
    expect((await scrape(url)).samples.has("mnha_backup_newest_age_seconds")).toBe(false);
  });

  it("answers 404 elsewhere, 405 to other methods, HEAD without a body, 500 when collecting fails", async () => {
    let fail = false;
    const { url } = await metricsServer(() => {
      if (fail) throw new Error("status not ready");
      return snapshot();
    });
    for (const path of ["/", "/metric", "/metrics/x", "/status"]) {
      const response = await fetch(`${url}${path}`);
      expect([path, response.status]).toEqual([path, 404]);
      expect(await response.text()).toContain("/metrics");
    }
    const post = await fetch(`${url}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const head = await fetch(`${url}/metrics?x=1`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(1_000);
    expect(await head.text()).toBe("");
    fail = true;
    expect((await fetch(`${url}/metrics`)).status).toBe(500);
    fail = false;
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });

  it("exports every process_* and nodejs_* metric of prom-client's defaults without starting its event-loop sampler's timer", async () => {
    // prom-client reaches perf_hooks through require(): count the samplers it starts.
    const perfHooks = createRequire(import.meta.url)("node:perf_hooks") as typeof import("node:perf_hooks");
    const original = perfHooks.monitorEventLoopDelay;
    let samplersStarted = 0;
    perfHooks.monitorEventLoopDelay = (...args) => {
      samplersStarted++;
      return original(...args);
    };
    let ours: Set<string>;
    try {
      const { url } = await metricsServer(() => snapshot(), 0, new LoopDelay());
      const { types } = await scrape(url);
      ours = new Set([...types.keys()].filter((name) => !name.startsWith("mnha_")));
      expect(samplersStarted).toBe(0);
    } finally {
      perfHooks.monitorEventLoopDelay = original;
    }
    // The reference: what collectDefaultMetrics registers (and its sampler, here, in the test only).
    const reference = new Registry();
    collectDefaultMetrics({ register: reference });
    const defaults = new Set(reference.getMetricsAsArray().map((metric) => metric.name));
    expect(defaults.size).toBeGreaterThan(20);
    expect([...ours].sort()).toEqual([...defaults].sort());
  });

  it("nodejs_eventloop_lag_* report the delays the beat recorded since the previous scrape, in seconds", async () => {
    const delay = new LoopDelay();
    const { url } = await metricsServer(() => snapshot(), 0, delay);
    for (const ms of [0, 1, 2, 2, 350]) delay.record(ms);
    const first = (await scrape(url)).samples;
    expect(first.get("nodejs_eventloop_lag_seconds")).toBe(0.35);
    expect(first.get("nodejs_eventloop_lag_max_seconds")).toBeCloseTo(0.35, 3);
    expect(first.get("nodejs_eventloop_lag_min_seconds")).toBeLessThan(0.000_001);
    expect(first.get("nodejs_eventloop_lag_p50_seconds")).toBeCloseTo(0.002, 4);
    expect(first.get("nodejs_eventloop_lag_mean_seconds")).toBeCloseTo(0.071, 3);
    expect(first.get("nodejs_eventloop_lag_p99_seconds")).toBeCloseTo(0.35, 3);
    // A new window: nothing recorded since, so the summary is empty and the latest delay stays.
    const second = (await scrape(url)).samples;
    expect(second.get("nodejs_eventloop_lag_max_seconds")).toBe(0);
    expect(second.get("nodejs_eventloop_lag_seconds")).toBe(0.35);
    delay.record(3);
    const third = (await scrape(url)).samples;
    expect(third.get("nodejs_eventloop_lag_max_seconds")).toBeCloseTo(0.003, 4);
    expect(third.get("nodejs_eventloop_lag_seconds")).toBe(0.003);
  });

  it("exports no nodejs_eventloop_lag_* without a loop delay to report", async () => {
    const { url } = await metricsServer(() => snapshot());
    const { types } = await scrape(url);
    expect(types.has("process_cpu_user_seconds_total")).toBe(true);
    expect([...types.keys()].filter((name) => name.startsWith("nodejs_eventloop_lag"))).toEqual([]);
  });

  it("stop() releases the port; a port in use is a clear error", async () => {
    const { server, url } = await metricsServer(() => snapshot());
    const port = server.port() as number;
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    await server.stop();
    expect(server.port()).toBeNull();
    await expect(fetch(`${url}/metrics`)).rejects.toThrow();
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once("error", reject);
      probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
    });

    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    try {
      const second = new MetricsServer({ address: "127.0.0.1", port, logger: silentLogger(), collect: snapshot });
      const error = await second.start().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MnhaError);
      expect((error as MnhaError).message).toBe(`cannot serve metrics on 127.0.0.1:${port}: the port is in use`);
      expect((error as MnhaError).hint).toContain("metrics.port");
      expect(second.port()).toBeNull();
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
