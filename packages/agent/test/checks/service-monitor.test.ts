import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServiceSchema, silentLogger, type ServiceConfig } from "@mnha/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { HealthEvent } from "../../src/contracts.js";
import { ServiceMonitor } from "../../src/checks/service-monitor.js";
import { Beat, type BeatApi } from "../../src/util/beat.js";
import { closedPort, notRunning, sleep, startHttpServer, startSilentServer, waitFor, type TestHttpServer } from "./helpers.js";

const service = (input: Record<string, unknown>): ServiceConfig => ServiceSchema.parse(input);

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mnha-monitor-"));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function monitorOf(services: ServiceConfig[]): { monitor: ServiceMonitor; events: HealthEvent[]; times: number[] } {
  const monitor = new ServiceMonitor({ services, logger: silentLogger() });
  const events: HealthEvent[] = [];
  const times: number[] = [];
  monitor.onEvent((event) => {
    events.push(event);
    times.push(performance.now());
  });
  cleanups.push(() => monitor.stop());
  return { monitor, events, times };
}

const summary = (events: HealthEvent[]) =>
  events.map((e) => {
    switch (e.kind) {
      case "service-changed":
        return `${e.service} ${e.healthy ? "healthy" : "failed"}`;
      case "restore-started":
        return `${e.service} restore #${e.attempt}`;
      case "restore-finished":
        return `${e.service} restore #${e.attempt} ${e.ok ? "ok" : "failed"}`;
      case "restore-gave-up":
        return `${e.service} gave up after ${e.attempts}`;
    }
  });

describe("ServiceMonitor", () => {
  it("fails a service after `fall` failures, restores it, and sees it healthy again after `rise`", async () => {
    let failNext = 0;
    const server: TestHttpServer = await startHttpServer((_req, res) => {
      res.writeHead(failNext > 0 ? 500 : 200);
      failNext = Math.max(0, failNext - 1);
      res.end("ok");
    });
    cleanups.push(() => server.close());
    // The restore command leaves a marker; the test plays the init system and restarts the server.
    const marker = join(dir, "restore-web.marker");
    const { monitor, events } = monitorOf([
      service({
        name: "web",
        check: { kind: "http", url: server.url, intervalMs: 50, timeoutMs: 300, rise: 2, fall: 2 },
        restore: { command: ["touch", marker], timeoutMs: 2_000, maxAttempts: 3, backoffInitialMs: 100, backoffMaxMs: 400 },
      }),
    ]);
    let restarts = 0;
    const initSystem = setInterval(() => {
      if (!existsSync(marker)) return;
      unlinkSync(marker);
      restarts += 1;
      if (!server.listening()) void server.reopen();
    }, 10);
    cleanups.push(() => clearInterval(initSystem));

    expect(monitor.allCriticalHealthy()).toBe(false);
    await monitor.start();
    expect(await waitFor(() => events.length >= 1)).toBe(true);
    expect(summary(events)).toEqual(["web healthy"]);
    expect(monitor.allCriticalHealthy()).toBe(true);

    // A blip: one 500 moves nothing with fall 2.
    const hitsBefore = server.hits();
    failNext = 1;
    expect(await waitFor(() => server.hits() >= hitsBefore + 4)).toBe(true);
    expect(summary(events)).toEqual(["web healthy"]);
    expect(monitor.statuses()[0]).toMatchObject({ healthy: true, failures: 0 });

    // The service dies: failed after two failures, restored, healthy after two successes.
    await server.close();
    expect(await waitFor(() => summary(events).filter((s) => s === "web healthy").length === 2, 3_000)).toBe(true);
    expect(summary(events)).toEqual(["web healthy", "web failed", "web restore #1", "web restore #1 ok", "web healthy"]);
    expect(restarts).toBe(1);
    const failed = events[1];
    expect(failed).toMatchObject({ kind: "service-changed", critical: true, detail: "connect ECONNREFUSED" });
    expect(events[2]).toMatchObject({ kind: "restore-started", command: ["touch", marker] });
    expect(events[3]).toMatchObject({ kind: "restore-finished", ok: true, detail: "exit 0" });
    expect(monitor.statuses()).toEqual([
      expect.objectContaining({ name: "web", critical: true, healthy: true, restoreAttempts: 0, restoreState: "idle", lastDetail: "HTTP 200" }),
    ]);
    expect(monitor.allCriticalHealthy()).toBe(true);
  });

  it("retries a restore with backoff up to maxAttempts, then gives up", async () => {
    const { monitor, events, times } = monitorOf([
      service({
        name: "db",
        check: { kind: "tcp", port: await closedPort(), intervalMs: 50, timeoutMs: 200, rise: 1, fall: 1 },
        restore: { command: ["false"], timeoutMs: 1_000, maxAttempts: 3, backoffInitialMs: 50, backoffMaxMs: 100 },
      }),
    ]);
    await monitor.start();
    expect(await waitFor(() => events.some((e) => e.kind === "restore-gave-up"), 3_000)).toBe(true);
    await sleep(300); // no attempt after giving up
    expect(summary(events)).toEqual([
      "db failed",
      "db restore #1",
      "db restore #1 failed",
      "db restore #2",
      "db restore #2 failed",
      "db restore #3",
      "db restore #3 failed",
      "db gave up after 3",
    ]);
    expect(events[2]).toMatchObject({ detail: "exit 1" });
    // The first restore follows the failure at once; then 50 ms, then 100 ms (doubled, at the cap).
    const gap = (from: number, to: number) => (times[to] as number) - (times[from] as number);
    expect(gap(0, 1)).toBeLessThan(250);
    expect(gap(2, 3)).toBeGreaterThanOrEqual(45);
    expect(gap(4, 5)).toBeGreaterThanOrEqual(95);
    expect(monitor.statuses()[0]).toMatchObject({ healthy: false, restoreAttempts: 3, restoreState: "gave-up", lastDetail: "connect ECONNREFUSED" });
    expect(monitor.allCriticalHealthy()).toBe(false);
  });

  it("kills a restore command that outlives its timeout", async () => {
    const pidFile = join(dir, "slow-restore.pid");
    const { monitor, events } = monitorOf([
      service({
        name: "ui",
        check: { kind: "tcp", port: await closedPort(), intervalMs: 50, timeoutMs: 200, rise: 1, fall: 1 },
        restore: { command: ["sh", "-c", 'echo $$ > "$1"; exec sleep 60', "sh", pidFile], timeoutMs: 300, maxAttempts: 1, backoffInitialMs: 50, backoffMaxMs: 50 },
      }),
    ]);
    await monitor.start();
    expect(await waitFor(() => events.some((e) => e.kind === "restore-started"), 2_000)).toBe(true);
    expect(monitor.statuses()[0]?.restoreState).toBe("running");
    expect(await waitFor(() => events.some((e) => e.kind === "restore-finished"), 3_000)).toBe(true);
    expect(events.find((e) => e.kind === "restore-finished")).toMatchObject({ ok: false, detail: "timed out after 300 ms" });
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(await waitFor(() => notRunning(pid), 2_000)).toBe(true);
    expect(summary(events).at(-1)).toBe("ui gave up after 1");
  });

  it("does not let a hung check hold up another service", async () => {
    const hung = await startSilentServer();
    cleanups.push(() => hung.close());
    const fine = await startSilentServer();
    cleanups.push(() => fine.close());
    const { monitor, events } = monitorOf([
      service({ name: "slow", check: { kind: "http", url: `http://127.0.0.1:${hung.port}/`, intervalMs: 50, timeoutMs: 1_500, rise: 1, fall: 1 } }),
      service({ name: "fast", critical: false, check: { kind: "tcp", port: fine.port, intervalMs: 50, timeoutMs: 200, rise: 2, fall: 1 } }),
    ]);
    const started = performance.now();
    await monitor.start();
    expect(await waitFor(() => events.length > 0, 1_000)).toBe(true);
    expect(summary(events)).toEqual(["fast healthy"]);
    expect(performance.now() - started).toBeLessThan(1_000);
    // The non-critical service does not count; the critical one has no verdict yet.
    expect(monitor.allCriticalHealthy()).toBe(false);
    expect(await waitFor(() => events.length > 1, 3_000)).toBe(true);
    expect(events[1]).toMatchObject({ kind: "service-changed", service: "slow", healthy: false, detail: "timed out after 1500 ms" });
  });

  it("checkNow runs every check once, and stop ends a check under way without counting it", async () => {
    const up = await startSilentServer();
    cleanups.push(() => up.close());
    const hung = await startSilentServer();
    cleanups.push(() => hung.close());
    const { monitor, events } = monitorOf([
      service({ name: "a", check: { kind: "tcp", port: up.port, rise: 1, fall: 1 } }),
      service({ name: "b", critical: false, check: { kind: "tcp", port: await closedPort(), rise: 1, fall: 1 } }),
    ]);
    await monitor.checkNow();
    expect(summary(events)).toEqual(["a healthy", "b failed"]);
    expect(monitor.allCriticalHealthy()).toBe(true);
    expect(monitor.statuses().map((s) => [s.name, s.healthy, s.successes, s.failures])).toEqual([
      ["a", true, 1, 0],
      ["b", false, 0, 1],
    ]);

    const { monitor: stopping } = monitorOf([service({ name: "c", check: { kind: "http", url: `http://127.0.0.1:${hung.port}/`, intervalMs: 50, timeoutMs: 5_000, rise: 1, fall: 1 } })]);
    await stopping.start();
    await waitFor(() => hung.openSockets() > 0, 1_000);
    const stopStarted = performance.now();
    await stopping.stop();
    expect(performance.now() - stopStarted).toBeLessThan(1_000);
    expect(stopping.statuses()[0]).toMatchObject({ failures: 0, lastDetail: "not checked yet" });
    expect(await waitFor(() => hung.openSockets() === 0, 1_000)).toBe(true);
  });

  it("leaves no timers, sockets or children once stopped", async () => {
    const server = await startHttpServer((_req, res) => res.end("ok"));
    cleanups.push(() => server.close());
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const timersBefore = count("Timeout");
    const { monitor, events } = monitorOf([
      service({ name: "web", check: { kind: "http", url: server.url, intervalMs: 50, timeoutMs: 300, rise: 1, fall: 1 } }),
      service({ name: "cmd", check: { kind: "command", command: ["sleep", "10"], intervalMs: 50, timeoutMs: 5_000, rise: 1, fall: 1 } }),
    ]);
    await monitor.start();
    expect(await waitFor(() => events.length > 0 && count("ProcessWrap") > 0, 2_000)).toBe(true);
    await monitor.stop();
    await sleep(50);
    expect(count("ProcessWrap")).toBe(0);
    expect(count("TCPSocketWrap")).toBe(0);
    expect(count("Timeout")).toBeLessThanOrEqual(timersBefore);
  });

  it("starts checks on the agent's beat when the interval is a whole number of beats, so the services share wake-ups; keeps a timer of its own otherwise", async () => {
    const servers = await Promise.all([0, 1].map(() => startHttpServer((_req, res) => res.end("ok"))));
    for (const server of servers) cleanups.push(() => server.close());
    const run = async (intervalMs: number) => {
      const beat = new Beat(100);
      cleanups.push(() => beat.stop());
      let onBeat = 0;
      const recording: BeatApi = {
        periodMs: beat.periodMs,
        fits: (periodMs) => beat.fits(periodMs),
        every: (periodMs, fn) => beat.every(periodMs, fn),
        after: (delayMs, fn) => {
          onBeat++;
          return beat.after(delayMs, fn);
        },
      };
      const hitsBefore = servers.map((s) => s.hits());
      const monitor = new ServiceMonitor({
        services: servers.map((server, i) => service({ name: `web${i}`, check: { kind: "http", url: server.url, intervalMs, timeoutMs: 1_000, rise: 1, fall: 1 } })),
        logger: silentLogger(),
        beat: recording,
      });
      cleanups.push(() => monitor.stop());
      await monitor.start();
      const hits = () => servers.map((s, i) => s.hits() - (hitsBefore[i] as number));
      expect(await waitFor(() => hits().every((h) => h >= 6), 5_000)).toBe(true);
      await monitor.stop();
      return { onBeat, beats: beat.beats, hits: hits() };
    };
    // 200 ms on a 100 ms beat: every check after the first is placed on the beat, and both
    // services' checks share each beat (one wake-up per round, not one per service).
    const fitting = await run(200);
    expect(fitting.onBeat).toBeGreaterThanOrEqual(10);
    expect(fitting.beats).toBeGreaterThanOrEqual(5);
    expect(fitting.beats).toBeLessThanOrEqual(Math.max(...fitting.hits) + 1);
    // 150 ms does not fit a 100 ms beat: the checks run on their own timers, as often as before.
    const own = await run(150);
    expect(own.onBeat).toBe(0);
    expect(own.beats).toBe(0);
    expect(Math.min(...own.hits)).toBeGreaterThanOrEqual(6);
  });
});
