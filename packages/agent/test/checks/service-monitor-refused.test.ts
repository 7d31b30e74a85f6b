import { ServiceSchema, silentLogger, type ServiceConfig } from "@mnha/shared";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CheckResult, HealthEvent } from "../../src/contracts.js";
import { ServiceMonitor } from "../../src/checks/service-monitor.js";
import { sleep, waitFor } from "./helpers.js";

// The check's results are scripted: what a refused login looks like to the monitor is the
// check's business (mariadb-check.test.ts runs that against a real server).
let next: Omit<CheckResult, "latencyMs"> = { ok: true, detail: "MariaDB up" };
vi.mock("../../src/checks/runners.js", () => ({
  runCheck: async (): Promise<CheckResult> => ({ ...next, latencyMs: 1 }),
  closeHttpProbes: async () => {},
}));

const REFUSED = { ok: false, detail: "MariaDB on local refused the login of root: wrong password", notRestorable: "restarting MariaDB cannot change that: put root's password in /etc/x" };

const monitors: ServiceMonitor[] = [];
afterEach(async () => {
  for (const monitor of monitors.splice(0)) await monitor.stop();
  next = { ok: true, detail: "MariaDB up" };
});

function monitorOf(): { monitor: ServiceMonitor; events: HealthEvent[] } {
  const config: ServiceConfig = ServiceSchema.parse({
    name: "db",
    check: { kind: "tcp", port: 3306, intervalMs: 50, timeoutMs: 100, rise: 2, fall: 2 },
    restore: { command: ["true"], timeoutMs: 1_000, maxAttempts: 5, backoffInitialMs: 20, backoffMaxMs: 40 },
  });
  const monitor = new ServiceMonitor({ services: [config], logger: silentLogger() });
  const events: HealthEvent[] = [];
  monitor.onEvent((event) => events.push(event));
  monitors.push(monitor);
  return { monitor, events };
}

const kinds = (events: HealthEvent[]) => events.map((e) => (e.kind === "service-changed" ? (e.healthy ? "healthy" : "failed") : e.kind));

describe("ServiceMonitor with a failure a restart cannot fix", () => {
  it("fails the service but never starts its restore, says so once with the reason, and shows it in the status", async () => {
    const { monitor, events } = monitorOf();
    await monitor.start();
    expect(await waitFor(() => monitor.allCriticalHealthy())).toBe(true);
    next = REFUSED;
    expect(await waitFor(() => events.some((e) => e.kind === "restore-not-tried"))).toBe(true);
    await sleep(400); // eight more refused checks: still no restore, said once
    expect(kinds(events)).toEqual(["healthy", "failed", "restore-not-tried"]);
    expect(events[2]).toEqual({ kind: "restore-not-tried", service: "db", reason: REFUSED.notRestorable });
    expect(monitor.statuses()[0]).toMatchObject({ healthy: false, restoreAttempts: 0, restoreState: "not-tried", restoreBlockedBy: REFUSED.notRestorable, lastDetail: REFUSED.detail });
    expect(monitor.allCriticalHealthy()).toBe(false);
  });

  it("fixed (the password put right): healthy again with no restore, even though one was due", async () => {
    const { monitor, events } = monitorOf();
    next = REFUSED;
    await monitor.start();
    expect(await waitFor(() => events.some((e) => e.kind === "restore-not-tried"))).toBe(true);
    next = { ok: true, detail: "MariaDB up" };
    expect(await waitFor(() => monitor.allCriticalHealthy())).toBe(true);
    await sleep(100);
    expect(kinds(events)).toEqual(["failed", "restore-not-tried", "healthy"]);
    expect(monitor.statuses()[0]).toMatchObject({ healthy: true, restoreState: "idle" });
    expect(monitor.statuses()[0]?.restoreBlockedBy).toBeUndefined();
  });

  it("a failure of another kind (the server then gone) is restored at once, and a refusal in a later failure is said again", async () => {
    const { monitor, events } = monitorOf();
    next = REFUSED;
    await monitor.start();
    expect(await waitFor(() => events.some((e) => e.kind === "restore-not-tried"))).toBe(true);
    next = { ok: false, detail: "MariaDB down: connect ENOENT" };
    expect(await waitFor(() => events.some((e) => e.kind === "restore-started"))).toBe(true);
    expect(monitor.statuses()[0]?.restoreBlockedBy).toBeUndefined();
    next = { ok: true, detail: "MariaDB up" };
    expect(await waitFor(() => monitor.allCriticalHealthy())).toBe(true);
    next = REFUSED;
    expect(await waitFor(() => events.filter((e) => e.kind === "restore-not-tried").length === 2)).toBe(true);
    expect(kinds(events)).toEqual(["failed", "restore-not-tried", "restore-started", "restore-finished", "healthy", "failed", "restore-not-tried"]);
  });
});
