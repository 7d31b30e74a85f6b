import { systemClock, type Clock, type Logger, type ServiceConfig } from "@mnha/shared";
import type { HealthEvent, ServiceMonitorApi, ServiceStatus } from "../contracts.js";
import { ServiceHealth } from "../core/health.js";
import { actionArgv } from "./action-command.js";
import { describeCommandResult, runCommand } from "./command.js";
import { closeMariaDbProbes } from "./mariadb-check.js";
import { closeHttpProbes, runCheck } from "./runners.js";
import type { BeatApi, CancelBeat } from "../util/beat.js";

export interface ServiceMonitorOptions {
  services: ServiceConfig[];
  logger: Logger;
  /** Monotonic time for the health cores and the restore backoff (default: the system clock). */
  clock?: Clock;
  /**
   * The agent's beat: a check whose interval is a whole number of beats starts on a beat, so the
   * checks and the election's tick wake the process together (default: a timer per check).
   */
  beat?: BeatApi;
}

/** A restore that outlives its timeout gets SIGTERM, then SIGKILL this long after. */
const RESTORE_KILL_GRACE_MS = 2_000;

/** Per-service state the monitor keeps around its pure health core. */
interface MonitoredService {
  config: ServiceConfig;
  health: ServiceHealth;
  lastDetail: string;
  lastLatencyMs: number | null;
  /** Cancels the scheduled next check (a timer, or a place on the beat). */
  checkTimer: CancelBeat | null;
  checkRun: Promise<void> | null;
  restoreTimer: NodeJS.Timeout | null;
  restoreRun: Promise<void> | null;
  /** Why a restart cannot fix the failure (the latest failed result's CheckResult.notRestorable). */
  notRestorable: string | null;
  /** restore-not-tried was emitted for this failure (once until the service is healthy again). */
  notTriedSaid: boolean;
}

/**
 * Runs each service's check on its own schedule, turns the results into healthy/failed
 * verdicts (rise/fall), and runs restore commands with backoff while a service stays failed.
 * Services never wait for each other: a hung check costs only its own service its timeout.
 */
export class ServiceMonitor implements ServiceMonitorApi {
  private readonly services: MonitoredService[];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly beat: BeatApi | null;
  private readonly listeners: ((event: HealthEvent) => void)[] = [];
  private running = false;
  /** Aborted by stop(): ends running checks and kills running restores. */
  private lifetime = new AbortController();
  /**
   * Who holds restores back, and for which services (null: all): maintenance mode holds all,
   * `mnha stop-node` the services it stopped. Checks go on; only restores wait.
   */
  private readonly restoreHolds = new Map<string, ReadonlySet<string> | null>();

  constructor(options: ServiceMonitorOptions) {
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.beat = options.beat ?? null;
    this.services = options.services.map((config) => ({
      config,
      health: new ServiceHealth({
        rise: config.check.rise,
        fall: config.check.fall,
        restore: config.restore,
        // The checks' time to see a restored service healthy: no second restore before that.
        settleMs: config.check.rise * config.check.intervalMs + config.check.timeoutMs,
      }),
      lastDetail: "not checked yet",
      lastLatencyMs: null,
      checkTimer: null,
      checkRun: null,
      restoreTimer: null,
      restoreRun: null,
      notRestorable: null,
      notTriedSaid: false,
    }));
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    this.logger.info({ services: this.services.map((s) => ({ name: s.config.name, kind: s.config.check.kind, critical: s.config.critical })) }, "service monitor started");
    for (const service of this.services) {
      this.scheduleCheck(service, 0);
      this.scheduleRestoreIfDue(service);
    }
  }

  async stop(): Promise<void> {
    if (!this.running && this.services.every((s) => s.checkRun === null && s.restoreRun === null)) return;
    this.running = false;
    for (const service of this.services) {
      service.checkTimer?.();
      if (service.restoreTimer !== null) clearTimeout(service.restoreTimer);
      service.checkTimer = null;
      service.restoreTimer = null;
    }
    this.lifetime.abort();
    // Checks end at once on abort; restores within their kill grace.
    await Promise.all(this.services.flatMap((s) => [s.checkRun, s.restoreRun]).filter((run) => run !== null));
    // The MariaDB and HTTP checks keep their connections between checks.
    await closeMariaDbProbes();
    closeHttpProbes();
    this.logger.info("service monitor stopped");
  }

  onEvent(listener: (event: HealthEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Runs every service's check once now (a check already running is awaited instead). */
  async checkNow(): Promise<void> {
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    await Promise.all(this.services.map((service) => this.runCheckCycle(service)));
  }

  /** Holds back restores (all services, or the named ones) until releaseRestores(key). Idempotent. */
  holdRestores(key: string, services: readonly string[] | null): void {
    this.restoreHolds.set(key, services === null ? null : new Set(services));
    for (const service of this.services) {
      if (this.restoreHeld(service) && service.restoreTimer !== null) {
        clearTimeout(service.restoreTimer);
        service.restoreTimer = null;
      }
    }
    this.logger.info({ key, services }, "restores held");
  }

  /**
   * Releases a hold. A service still failed gets its restore after the normal first backoff
   * (restore.backoffInitialMs from now), never at once: leaving maintenance is calm.
   */
  releaseRestores(key: string): void {
    if (!this.restoreHolds.delete(key)) return;
    this.logger.info({ key }, "restores released");
    for (const service of this.services) {
      if (this.restoreHeld(service) || service.restoreTimer !== null || service.restoreRun !== null) continue;
      const dueAt = service.health.restoreDueAt();
      if (dueAt === null || !this.running) continue;
      const calmAt = Math.max(dueAt, this.clock.now() + (service.config.restore?.backoffInitialMs ?? 0));
      service.restoreTimer = setTimeout(() => {
        service.restoreTimer = null;
        this.startRestore(service);
      }, Math.max(0, calmAt - this.clock.now()));
    }
  }

  /** Whether any hold (maintenance, stop-node) keeps this service's restores back. Runs every heartbeat: no allocation. */
  private restoreHeld(service: MonitoredService): boolean {
    for (const names of this.restoreHolds.values()) if (names === null || names.has(service.config.name)) return true;
    return false;
  }

  statuses(): ServiceStatus[] {
    return this.services.map((service) => {
      const snapshot = service.health.snapshot();
      const held = snapshot.restoreState === "scheduled" && this.restoreHeld(service);
      const notTried = snapshot.restoreState === "scheduled" && !held && service.notRestorable !== null;
      return {
        name: service.config.name,
        critical: service.config.critical,
        healthy: snapshot.healthy,
        successes: snapshot.successes,
        failures: snapshot.failures,
        lastDetail: service.lastDetail,
        lastLatencyMs: service.lastLatencyMs,
        restoreAttempts: snapshot.restoreAttempts,
        restoreState: held ? "held" : notTried ? "not-tried" : snapshot.restoreState,
        ...(notTried && service.notRestorable !== null ? { restoreBlockedBy: service.notRestorable } : {}),
      };
    });
  }

  /** True when every critical service has a healthy verdict (vacuously true with none). */
  allCriticalHealthy(): boolean {
    return this.services.every((service) => !service.config.critical || service.health.snapshot().healthy);
  }

  /**
   * The next check in `delayMs`: on the beat when the interval fits it (the beat nearest to the
   * due time; checks that start on a beat stay on it, so only the first interval after start()
   * can be up to half a beat shorter or longer), otherwise, and for a check already overdue
   * (the last one took its interval or more), on a timer of its own.
   */
  private scheduleCheck(service: MonitoredService, delayMs: number): void {
    if (!this.running || service.checkTimer !== null) return;
    const run = (): void => {
      service.checkTimer = null;
      void this.runCheckCycle(service);
    };
    if (this.beat !== null && delayMs > 0 && this.beat.fits(service.config.check.intervalMs)) {
      service.checkTimer = this.beat.after(delayMs, run);
      return;
    }
    const timer = setTimeout(run, delayMs);
    service.checkTimer = () => clearTimeout(timer);
  }

  /** One check, then the next one scheduled an interval after this one started (never overlapping). */
  private runCheckCycle(service: MonitoredService): Promise<void> {
    if (service.checkRun !== null) return service.checkRun;
    if (service.checkTimer !== null) {
      service.checkTimer();
      service.checkTimer = null;
    }
    const startedAt = this.clock.now();
    const run = this.checkOnce(service)
      .catch((error: unknown) => this.logger.error({ service: service.config.name, err: error }, "service check failed unexpectedly"))
      .finally(() => {
        service.checkRun = null;
        const elapsed = this.clock.now() - startedAt;
        this.scheduleCheck(service, Math.max(0, service.config.check.intervalMs - elapsed));
      });
    service.checkRun = run;
    return run;
  }

  private async checkOnce(service: MonitoredService): Promise<void> {
    const signal = this.lifetime.signal;
    const result = await runCheck(service.config.check, { signal });
    // A check cut short by stop() says nothing about the service.
    if (signal.aborted) return;
    const name = service.config.name;
    service.lastDetail = result.detail;
    service.lastLatencyMs = result.latencyMs;
    // A refusal stands until a failure of another kind, or the service healthy again: the first
    // good result after the password is fixed must not start the restore that was waiting.
    if (!result.ok) service.notRestorable = result.notRestorable ?? null;
    const transition = service.health.recordResult(result.ok, this.clock.now());
    // Five checks a second per service: build the fields only when trace is on.
    if (this.logger.isLevelEnabled("trace")) this.logger.trace({ service: name, ok: result.ok, detail: result.detail, latencyMs: result.latencyMs }, "service check");
    if (transition !== null) {
      const healthy = transition.to === "healthy";
      const fields = { service: name, critical: service.config.critical, from: transition.from, to: transition.to, detail: result.detail };
      if (healthy) {
        service.notRestorable = null;
        service.notTriedSaid = false;
        this.logger.info(fields, "service healthy");
      } else this.logger.warn(fields, "service failed");
      if (healthy && service.restoreTimer !== null) {
        clearTimeout(service.restoreTimer);
        service.restoreTimer = null;
      }
      this.emit({ kind: "service-changed", service: name, healthy, critical: service.config.critical, detail: result.detail });
    }
    this.scheduleRestoreIfDue(service);
  }

  private scheduleRestoreIfDue(service: MonitoredService): void {
    if (!this.running || service.restoreTimer !== null || service.restoreRun !== null || this.restoreHeld(service)) return;
    const dueAt = service.health.restoreDueAt();
    if (dueAt === null) return;
    if (service.notRestorable !== null) {
      this.sayNotTried(service, service.notRestorable);
      return;
    }
    service.restoreTimer = setTimeout(() => {
      service.restoreTimer = null;
      this.startRestore(service);
    }, Math.max(0, dueAt - this.clock.now()));
  }

  private startRestore(service: MonitoredService): void {
    const restore = service.config.restore;
    if (!this.running || restore === undefined || service.restoreRun !== null || this.restoreHeld(service)) return;
    // Scheduled before the check saw a refusal (or released from a hold since): still not tried.
    if (service.notRestorable !== null) {
      this.sayNotTried(service, service.notRestorable);
      return;
    }
    const attempt = service.health.restoreStarted(this.clock.now());
    if (attempt === null) {
      // Not due after all (a timer firing a hair early): look again.
      this.scheduleRestoreIfDue(service);
      return;
    }
    const name = service.config.name;
    const command = [...restore.command];
    this.logger.warn({ service: name, attempt, maxAttempts: restore.maxAttempts, command }, "restoring service");
    this.emit({ kind: "restore-started", service: name, attempt, command });
    const signal = this.lifetime.signal;
    const run = runCommand(actionArgv(command, { kind: "restore", name, timeoutMs: restore.timeoutMs }), { timeoutMs: restore.timeoutMs, signal, killGraceMs: RESTORE_KILL_GRACE_MS })
      .then((result) => {
        const ok = result.exitCode === 0;
        const detail = describeCommandResult(command, result, restore.timeoutMs);
        const outcome = service.health.restoreFinished(ok, this.clock.now());
        this.logger[ok ? "info" : "warn"]({ service: name, attempt, ok, detail, durationMs: Math.round(result.durationMs), next: outcome }, "restore finished");
        this.emit({ kind: "restore-finished", service: name, attempt, ok, detail });
        if (outcome === "gave-up") {
          const attempts = service.health.snapshot().restoreAttempts;
          this.logger.error({ service: name, attempts }, "restore gave up: the service stays failed until it recovers by itself or an operator fixes it");
          this.emit({ kind: "restore-gave-up", service: name, attempts });
        }
      })
      .catch((error: unknown) => this.logger.error({ service: name, err: error }, "restore failed unexpectedly"))
      .finally(() => {
        service.restoreRun = null;
        this.scheduleRestoreIfDue(service);
      });
    service.restoreRun = run;
  }

  /**
   * A due restore left alone because the failure is one a restart cannot fix (a refused
   * login): restarting a database that answers would only cut its clients off. The restore
   * stays due; the first check without the refusal while the service is still failed starts it.
   */
  private sayNotTried(service: MonitoredService, reason: string): void {
    if (service.notTriedSaid) return;
    service.notTriedSaid = true;
    const name = service.config.name;
    this.logger.warn({ service: name, reason, detail: service.lastDetail }, "restore not tried");
    this.emit({ kind: "restore-not-tried", service: name, reason });
  }

  private emit(event: HealthEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error, event: event.kind }, "health event listener threw");
      }
    }
  }
}
