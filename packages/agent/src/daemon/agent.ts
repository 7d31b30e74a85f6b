/**
 * The daemon: its parts (checks, gateway, peer link, Keepalived, ARP guard, store, control
 * API) come in ready-made (daemon/compose.ts builds the real ones); this class starts them in
 * order, feeds what they report to the election host (host/election-host.ts), which steps
 * the pure core and carries out its effects, and answers the control API.
 *
 * Starting is transactional: a part that fails to start stops every part started before it,
 * in reverse order, and start() throws. No half-started agent stays alive.
 */
import { randomUUID } from "node:crypto";
import { CURRENT_PROTOCOL_VERSION, DUPLICATE_CHECK_MIN_PROTOCOL_VERSION, type PairSettings, type Role } from "@mnha/protocol";
import { MnhaError, systemClock, type Clock, type LoadedConfig, type Logger } from "@mnha/shared";
import type { ControlHandlers, DemoteResult, DuplicateWatchApi, EventQuery, FailoverRecord, HaEvent, MetricsReport, PeerLinkEvent, StatusReport, Startable } from "../contracts.js";
import { ElectionCore } from "../core/election.js";
import { ElectionHost, type RequestResult } from "../host/election-host.js";
import type { MetricsSnapshot } from "../metrics/metrics.js";
import type { StoreAlert } from "../store/sqlite-store.js";
import { AGENT_VERSION } from "../version.js";
import type { AgentComponents, AgentControl, AgentDatabase } from "./components.js";
import { DataSync, sshTransport } from "../datasync/data-sync.js";
import { DuplicateCheckAudit } from "../net/duplicate-check-audit.js";
import { DuplicateWatch } from "../net/duplicate-watch.js";
import { BackupScheduler, backupJob } from "../backup/index.js";
import { NodeOps } from "../ops/node-ops.js";
import { resyncFromPeer } from "../db/seed-from-config.js";
import { describePlanStepEvent } from "../plan/plan-audit.js";
import { describeProgress } from "../db/describe.js";
import { formatBytes } from "../util/format.js";
import { DbHealthPoll } from "./db-health-poll.js";
import { ReplicaKeeper, replicaRunFile } from "../db/replica-keeper.js";
import { SemiSyncKeeper } from "../db/semi-sync-keeper.js";
import type { DatabaseHealth } from "../db/types.js";
import { catchUpWithPeer } from "../db/catch-up.js";
import { ErrantWriteWatch } from "../db/errant-watch.js";
import { EventLog } from "./event-log.js";
import { ClaimRetryDigest, type ElectionEventRecord } from "./claim-retry-digest.js";
import { Beat, everyOnBeat } from "../util/beat.js";
import type { FileLock } from "../util/file-lock.js";
import { actionMode, describeActionMode, startedBySystemd } from "../checks/action-command.js";
import { readOnlyDirs, writableDirs, type ReadOnlyDir } from "./writable-dirs.js";
import { DISTRIBUTION_KEEPALIVED_FIX, DISTRIBUTION_KEEPALIVED_UNIT, distributionKeepalivedHarmless } from "../keepalived/distribution-unit.js";
import { WitnessClient } from "../witness/witness-client.js";
import { buildMetricsSnapshot, buildStatusReport, heartbeatDuplicateCheck, toHaEvent, type DbStatusInput } from "./status.js";
import { PAIR_SETTINGS_FIX, PairSettingsCheck, describeDifferences } from "./pair-settings.js";

export interface AgentOptions {
  loaded: LoadedConfig;
  logger: Logger;
  components: AgentComponents;
  clock?: Clock;
  /** How often the VIP is looked at between Keepalived notifications (default 1 s). */
  vipPollMs?: number;
  /** The one-agent-per-node lock (daemon/instance-lock.ts): kept at its path every second. */
  instanceLock?: Pick<FileLock, "path" | "keepAtPath">;
}

type RequestOutcome = Omit<RequestResult, "requestId">;

/** How often the control socket's file is looked for (a 1 s period shares the beat's polls). */
const CONTROL_SOCKET_CHECK_MS = 1_000;
/**
 * How long the VIP must sit on a standby's interface, gate closed and Keepalived not MASTER,
 * before the agent takes it off: far longer than Keepalived takes to drop it when it leaves
 * MASTER (milliseconds), so only an address nobody owns is removed.
 */
const STRAY_VIP_GRACE_MS = 2_000;
const WATCHDOG_EVENTS = new Set<string>(["vip-repair", "vip-restored", "vip-gave-up", "peer-vip-unanswered"]);

export class Agent {
  readonly events: EventLog;
  /** Blocked claim tries that repeat twice a second during a partition, recorded as a digest. */
  private readonly claimRetries = new ClaimRetryDigest();
  /** The last claim the ARP guard blocked (someone answered for the VIP): status shows it while the peer is not heard. */
  private lastBlockedClaim: { detail: string; atMs: number } | null = null;
  readonly host: ElectionHost;
  private readonly loaded: LoadedConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly c: AgentComponents;
  private readonly startedAt: number;
  private readonly self: string;
  private readonly peerName: string;
  private readonly control: AgentControl;
  /** Listening again on a removed control socket failed; said once until it works. */
  private controlSocketFailing = false;
  private epochRestoreFailing = false;
  private readonly instanceLock: Pick<FileLock, "path" | "keepAtPath"> | null;
  /** The instance lock's last trouble, said once until it changes. */
  private lockTrouble: "taken" | "failed" | null = null;
  private readonly metrics: Startable | null;
  private readonly restoreAttemptsTotal = new Map<string, number>();
  private readonly pending = new Map<string, (result: RequestOutcome) => void>();
  /** What start() has started, in order: stop() and a failed start undo it in reverse. */
  private started: { name: string; part: Startable }[] = [];
  /** One timer for the tick, the service checks and the once-a-second polls (util/beat.ts). */
  private readonly beat: Beat;
  /** Cancel the tick and the VIP poll. */
  private readonly periodic: (() => void)[] = [];
  private readonly vipPollMs: number;
  /** The VIP on our interface as last seen (null: not looked yet). */
  private vipPresent: boolean | null = null;
  private running = false;
  private lastServicesVerdict: string | null = null;
  /** Operator modes (maintenance, stop-node/start-node) and collect-log's peer side. */
  private readonly ops: NodeOps;
  /** The settings both nodes must share, compared on each link up (protocol v5 on). */
  private readonly pairSettings: PairSettingsCheck;
  /** Monitoring data pushed to the standby (null: no directories configured). */
  private readonly dataSync: DataSync | null;
  /** The holder's duplicate-address check (two holders that cannot talk settle it by MAC). */
  private readonly duplicateWatch: DuplicateWatchApi;
  /** When the holder's duplicate check stops and runs again, in the audit (one pair per outage). */
  private readonly duplicateAudit: DuplicateCheckAudit;
  private role: Role = "starting";
  /** Since when the VIP has been on this standby's interface with nobody owning it (null: it is not). */
  private strayVipSince: number | null = null;
  private strayVipRemoving = false;
  /** The stray VIP was already reported (left in maintenance, or its removal failed): said once per stray. */
  private strayVipTold = false;
  /** The local database's health for the election, status and metrics (db.enabled only). */
  readonly dbPoll: DbHealthPoll | null;
  /** Scheduled database backups on the VIP holder (backup.enabled). */
  private readonly backups: BackupScheduler | null;
  /** Directories the agent writes that it found read-only at start (daemon/writable-dirs.ts). */
  private readOnly: ReadOnlyDir[] = [];
  /** The link to the witness (witness configured). */
  private readonly witnessClient: WitnessClient | null;

  constructor(options: AgentOptions) {
    this.loaded = options.loaded;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.c = options.components;
    this.vipPollMs = options.vipPollMs ?? 1_000;
    this.instanceLock = options.instanceLock ?? null;
    this.beat = this.c.beat ?? new Beat(options.loaded.config.timings.heartbeatIntervalMs);
    this.startedAt = this.clock.now();
    const { config, derived } = this.loaded;
    const peer = config.peers[0];
    if (!peer) throw new MnhaError("CONFIG_INVALID", "no peer configured", { hint: "add the other node under peers:" });
    if (peer.name === config.node.name || peer.address === config.node.address) {
      throw new MnhaError("PEER_IS_SELF", `the peer ${peer.name} (${peer.address}) is this node itself (${config.node.name}, ${config.node.address})`, {
        hint: "peers: must name the OTHER management node, with its own name and address",
        fields: { node: config.node.name, peer: peer.name, address: peer.address },
      });
    }
    this.self = config.node.name;
    this.peerName = peer.name;
    this.events = new EventLog(this.self, this.clock, this.logger, this.startedAt);
    const t = config.timings;
    const core = new ElectionCore(
      {
        self: this.self,
        peer: peer.name,
        heartbeatIntervalMs: t.heartbeatIntervalMs,
        peerLossMs: derived.peerLossMs,
        leaseMs: t.leaseMs,
        takeoverMarginMs: t.takeoverMarginMs,
        maxClockDrift: t.maxClockDrift,
        startupGraceMs: derived.startupGraceMs,
        handoffTimeoutMs: t.handoffTimeoutMs,
        arpGuard: config.arpGuard.enabled,
        arpRetryMs: config.arpGuard.retryIntervalMs,
        keepalivedDownTimerMs: derived.keepalivedDownTimerMs,
        arpProbeTimeoutMs: config.arpGuard.probeTimeoutMs,
        initialEpoch: this.c.epochs.get(),
        vipRepairAfterMs: t.vipRepairAfterMs,
        vipGiveUpAfterMs: t.vipGiveUpAfterMs,
        peerVipUnansweredMs: t.peerVipUnansweredMs,
        ...(this.c.database ? { db: { catchUpTimeoutMs: config.db.catchUpTimeoutMs, maxLagForFailoverMs: config.db.maxLagForFailoverMs, availabilityOverCatchUp: config.db.availabilityOverCatchUp } } : {}),
        ...(config.witness ? { witness: { leaseMs: config.witness.leaseMs } } : {}),
      },
      this.startedAt,
    );
    this.witnessClient = config.witness
      ? new WitnessClient({
          self: { name: this.self, address: config.node.address },
          witness: { address: config.witness.address, port: config.witness.port },
          secret: this.loaded.secret,
          requestTimeoutMs: config.witness.requestTimeoutMs,
          log: this.logger.child({ component: "witness" }),
        })
      : null;
    const repair = this.c.database?.repairControl ? this.restartRepairHook(this.c.database.repairControl) : null;
    this.dbPoll = this.c.database ? new DbHealthPoll({ database: this.c.database, intervalMs: 1_000, beat: this.beat, timeoutMs: 2 * config.db.connectTimeoutMs, onSummary: (summary) => this.host.input({ kind: "db-health", summary }), onEveryPoll: (summary) => this.host.dbReconcile(summary), ...(repair ? { repair } : {}), errant: this.errantWatch(config.dataDir) }) : null;
    this.host = new ElectionHost(core, this.hostAdapters(), { self: this.self, heartbeatIntervalMs: t.heartbeatIntervalMs });
    this.pairSettings = new PairSettingsCheck(options.loaded.config);
    this.ops = new NodeOps({
      self: this.self,
      peer: peer.name,
      loaded: this.loaded,
      logger: this.logger.child({ component: "ops" }),
      wallNow: () => Date.now(),
      record: (type, message, fields, level) => void this.events.record(type, message, fields, level),
      feedCore: (input) => this.host.input(input),
      services: this.c.services,
      election: () => ({ role: this.host.core.snapshot(this.clock.now()).role, peerProblem: this.host.core.peerCannotTake(this.clock.now()) }),
      demote: (timeoutMs) => this.demote(timeoutMs),
      send: (message) => this.c.link.send(message),
      peerConnected: () => this.c.link.connected(),
      statusJson: async () => JSON.stringify(await this.status(), null, 2),
      vipOwner: async () => (await this.status()).vipOwner,
      peerProtocolVersion: () => (this.c.link.connected() ? (this.c.link.version?.() ?? null) : null),
      // As `mnha db resync`, which works whether or not the agent watches the database (db.enabled).
      reseedFromPeer: async (onProgress) => {
        const result = await resyncFromPeer(config, (p) => onProgress(describeProgress(p)));
        return `${this.self} is a copy of ${peer.name}'s database at GTID ${result.gtid} (${formatBytes(result.bytes)} in ${(result.tookMs / 1000).toFixed(1)} s) and replicates from it`;
      },
      ...(config.db.enabled
        ? {
            dbCatchUp: async () => {
              const report = await this.status();
              return { configured: true as const, peerAlive: report.peer.connected, state: catchUpWithPeer(report.db?.self ?? null, report.db?.peer ?? null, peer.name) };
            },
          }
        : {}),
    });
    // Long-running arpings where they can keep the interval (no fork per check), else a probe per check.
    this.duplicateWatch =
      this.c.arpGuard.duplicateWatch?.(config.arpGuard.duplicateCheckIntervalMs) ??
      new DuplicateWatch({
        intervalMs: config.arpGuard.duplicateCheckIntervalMs,
        probe: () => this.c.arpGuard.probe(),
        ownMac: () => this.c.arpGuard.ownMac(),
        logger: this.logger.child({ component: "duplicate-watch" }),
      });
    this.duplicateWatch.onCheck((check) => this.host.input({ kind: "duplicate-check", ...check }));
    this.duplicateAudit = new DuplicateCheckAudit((type, message, fields, level) => void this.events.record(type, message, fields, level), this.clock);
    this.duplicateWatch.onStateChange((status) => this.duplicateAudit.onState(status));
    this.dataSync =
      config.dataSync.dirs.length > 0
        ? new DataSync({
            dirs: config.dataSync.dirs,
            transport: sshTransport(config.dataSync, peer.address),
            rsync: config.dataSync.rsync,
            timeoutMs: config.dataSync.timeoutMs,
            schedule: config.dataSync.schedule,
            logger: this.logger.child({ component: "datasync" }),
            record: (type, message, fields, level) => void this.events.record(type, message, fields, level),
            wallNow: () => Date.now(),
          })
        : null;
    this.backups = config.backup.enabled
      ? new BackupScheduler({
          expression: config.backup.schedule,
          // Not in maintenance: the data may be mid-change (a restore, an upgrade) and must not become "the newest good backup".
          isHolder: () => this.vipPresent === true && !this.ops.inMaintenance(),
          record: (event) =>
            event.kind === "backup-taken"
              ? void this.events.record("backup.taken", `database backup ${event.path} (${event.bytes} bytes, GTID ${event.gtid})`, { ...event })
              : void this.events.record("backup.failed", `database backup failed (${event.stage}): ${event.message}`, { ...event }, "error"),
          job: backupJob(config),
        })
      : null;
    this.control = this.c.control(this.handlers());
    this.metrics = this.c.metrics ? this.c.metrics(() => this.metricsSnapshot()) : null;
    // Every HA event also goes to the durable, replicated store (off the decision path).
    this.events.onEvent((event, wallMs) => {
      this.c.store.appendEvent({
        type: event.type,
        service: typeof event.fields["service"] === "string" ? (event.fields["service"] as string) : null,
        message: event.message,
        fields: event.fields,
        wallMs,
        monoMs: event.uptimeMs,
      });
    });
  }

  private hostAdapters(): ConstructorParameters<typeof ElectionHost>[1] {
    const c = this.c;
    return {
      now: () => this.clock.now(),
      keepalived: {
        setGate: (open) => c.keepalived.setGate(open),
        renewLease: () => c.keepalived.renewLease(),
        repair: (reason, done) => {
          c.keepalived.repair(reason).then(done, (error: unknown) => done({ error: error instanceof Error ? error.message : String(error) }));
        },
        state: () => c.keepalived.state(),
      },
      ...(this.witnessClient ? { witness: this.witnessClient } : {}),
      link: {
        send: (message) => {
          const sent = c.link.send(message);
          if (!sent) this.logger.debug({ type: message.type }, "peer not connected; message dropped");
          return sent;
        },
        connected: () => c.link.connected(),
      },
      arp: {
        probe: (done) => {
          c.arpGuard.probe().then(
            // A probe that could not run counts as "occupied": when in doubt, do not claim.
            (result) => done({ occupied: result.occupied || result.failed === true, detail: result.detail }),
            (error: unknown) => done({ occupied: true, detail: `probe failed: ${String(error)}` }),
          );
        },
        announce: () => {
          void c.arpGuard.announce().then((ok) => {
            if (!ok) this.logger.warn("gratuitous ARP for the VIP failed");
          });
        },
      },
      persistEpoch: (epoch) => c.epochs.set(epoch),
      ...(c.database ? { db: c.database.roleSwitch } : {}),
      recordEvent: (type, message, fields) => {
        // For status: who answered for the VIP when this node could not hear its peer.
        if (type === "claim-blocked" && typeof fields["detail"] === "string") this.lastBlockedClaim = { detail: fields["detail"], atMs: this.clock.now() };
        // Blocked claim tries repeating twice a second are digested (claim-retry-digest.ts); what happens below is not.
        for (const event of this.claimRetries.offer({ type, message, fields, wallMs: this.clock.wallNow(), monoMs: this.clock.now() })) this.recordElectionEvent(event);
        // Monitoring data follows the holder: a node that just became holder pushes at once.
        if (type === "role-changed" && typeof fields["to"] === "string") {
          this.dataSync?.observeRole(fields["to"] as Role);
          this.updateDuplicateWatch(fields["to"] as Role);
          this.feedServices();
        }
      },
      requestDone: (result) => {
        const resolve = this.pending.get(result.requestId);
        if (resolve) {
          this.pending.delete(result.requestId);
          resolve(result);
        }
      },
      heartbeatFacts: () => ({
        vipPresent: this.vipPresent === true,
        keepalived: c.keepalived.state(),
        services: c.services.statuses().map((s) => ({ name: s.name, healthy: s.healthy, critical: s.critical })),
        // Only to a peer that knows the field: an older one would refuse the whole link on it.
        ...((c.link.version?.() ?? 0) >= DUPLICATE_CHECK_MIN_PROTOCOL_VERSION ? { duplicateCheck: heartbeatDuplicateCheck(this.duplicateWatch.status()) } : {}),
      }),
      setTimer: (delayMs, fire) => {
        const timer = setTimeout(fire, delayMs);
        return () => clearTimeout(timer);
      },
      onError: (error, what) => this.logger.error({ err: error, what }, "election step failed"),
    };
  }

  async start(): Promise<void> {
    const { config } = this.loaded;
    const c = this.c;
    // Before any part starts: under systemd this runs `systemd-run --version` once, synchronously,
    // which must not stall a live peer link or a restore on the failover path later.
    const actions = describeActionMode(actionMode());
    // A directory the agent must write that is read-only (under the shipped unit: outside its
    // ReadWritePaths) is named with its fix now, not found by a failing write later.
    this.readOnly = readOnlyDirs(writableDirs(this.loaded), { underSystemd: startedBySystemd(process.env) });
    const essential = this.readOnly.find((entry) => entry.essential);
    if (essential) throw new MnhaError("READ_ONLY_DIR", essential.message, { hint: essential.hint, fields: { setting: essential.setting, dir: essential.dir } });
    this.events.record("config.loaded", `configuration loaded from ${this.loaded.file}`, {
      file: this.loaded.file,
      vip: `${config.vip.address}/${config.vip.prefix}`,
      interface: config.vip.interface,
      peer: `${this.peerName}@${config.peers[0]?.address}:${config.peers[0]?.port}`,
      epoch: c.epochs.get(),
      version: AGENT_VERSION,
    });
    this.wireInputs();

    try {
      // The store never blocks HA: it opens in a worker and reports itself degraded on failure.
      await this.startPart("store", c.store);
      await this.startPart("sync", c.sync);
      // Persisted operator modes (maintenance, node stopped) apply before anything is decided.
      this.ops.start();
      // Keepalived first, with the gate closed: nothing can claim the VIP until we decide.
      await this.startPart("keepalived", c.keepalived);
      await this.startPart("control", this.control);
      await this.startPart("services", c.services);
      await this.startPart("gateway", c.gateway);
      await this.startPart("peer link", c.link);
      if (this.witnessClient) {
        const client = this.witnessClient;
        await this.startPart("witness link", { start: async () => client.start(), stop: async () => client.stop() });
      }
      await this.startPart("sampler", c.sampler);
      if (this.dataSync) await this.startPart("data sync", this.dataSync);
      if (this.dbPoll) await this.startPart("database poll", this.dbPoll);
      if (this.backups) await this.startPart("backups", this.backups);
    } catch (error) {
      this.events.record("agent.start-failed", `start failed: ${error instanceof Error ? error.message : String(error)}; undoing what was started`, { started: this.started.map((s) => s.name) }, "error");
      await this.stopParts();
      throw error;
    }
    if (this.metrics) {
      try {
        await this.startPart("metrics", this.metrics);
      } catch (error) {
        // Metrics are for monitoring; their port being taken must not stop HA.
        this.events.record("metrics.unavailable", `metrics endpoint not started: ${error instanceof Error ? error.message : String(error)}`, {}, "warn");
      }
    }
    this.running = true;
    this.feedServices();
    // HA goes on without them; said at start, and in status until fixed and restarted.
    for (const entry of this.readOnly) this.events.record("agent.read-only-dir", `${entry.message}; ${entry.hint}`, { setting: entry.setting, dir: entry.dir }, "error");

    this.periodic.push(everyOnBeat(this.beat, config.timings.heartbeatIntervalMs, () => this.host.input({ kind: "tick" })));
    // Keepalived notifications trigger a look at once; the slow poll only catches what they miss
    // (each look forks `ip`, so a fast poll would cost more CPU than everything else at idle).
    this.periodic.push(everyOnBeat(this.beat, this.vipPollMs, () => void this.observeVip()));
    // One lstat a second, on a beat that wakes anyway.
    this.periodic.push(
      everyOnBeat(this.beat, CONTROL_SOCKET_CHECK_MS, () => {
        this.keepInstanceLock();
        this.keepEpochFile();
        void this.keepControlSocket();
      }),
    );
    this.host.input({ kind: "tick" });
    void this.observeVip();
    // Where restores, stop/start and the maintenance hooks run (checks/action-command.ts): said once, at start.
    this.events.record("agent.started", `mnha ${AGENT_VERSION} started as ${this.self} (epoch ${c.epochs.get()}); service actions run ${actions}`, { version: AGENT_VERSION, protocol: this.protocolStatus().protocol, offered: this.protocolStatus().offered, actions });
    if (c.distributionKeepalived) void this.reportDistributionKeepalived(c.distributionKeepalived);
    const epochProblem = c.epochs.readProblem?.() ?? null;
    if (epochProblem !== null) {
      // Not silent: an epoch below the pair's is harmless (the election adopts the peer's higher
      // one when heard, holder or not), but a file that lost it is a disk or an operator problem.
      const file = c.epochs.path?.() ?? "the epoch file";
      this.events.record("agent.epoch-unreadable", `${file} ${epochProblem}: started from epoch 0; the peer's epoch is adopted when it is heard, and the file is written again at the next epoch change`, { file, problem: epochProblem }, "warn");
    }
  }

  /**
   * The distribution's keepalived.service enabled or running beside this agent's own Keepalived
   * (a node set up by hand, or a pair installed before install-ha masked it): said once at start,
   * with the fix. Running, it is another VRRP instance on this node now; enabled, a reboot or a
   * keepalived package upgrade would start it (keepalived/distribution-unit.ts).
   */
  private async reportDistributionKeepalived(read: NonNullable<AgentComponents["distributionKeepalived"]>): Promise<void> {
    let unit: { enabled: string; active: boolean };
    try {
      unit = await read();
    } catch (error) {
      this.logger.debug({ err: error }, "could not read keepalived.service's state");
      return;
    }
    if (!this.running) return;
    const fix = `run ${DISTRIBUTION_KEEPALIVED_FIX} (install-ha and upgrade-ha do it)`;
    const fields = { unit: DISTRIBUTION_KEEPALIVED_UNIT, enabled: unit.enabled };
    if (unit.active) {
      this.events.record("keepalived.unit-running", `the distribution's ${DISTRIBUTION_KEEPALIVED_UNIT} is running beside this agent's own Keepalived (keepalived.mode: child): a second VRRP instance on this node, from /etc/keepalived/keepalived.conf; ${fix}`, fields, "error");
    } else if (!distributionKeepalivedHarmless(unit.enabled) && unit.enabled !== "disabled") {
      this.events.record("keepalived.unit-enabled", `the distribution's ${DISTRIBUTION_KEEPALIVED_UNIT} is ${unit.enabled}: a reboot or a keepalived package upgrade would start it beside this agent's own Keepalived; ${fix}`, fields, "warn");
    }
  }

  /**
   * The instance lock's file removed by hand (the data dir cleaned) guards nothing: a second
   * agent would lock a new file and start a second Keepalived beside ours. Locked again at once.
   */
  private keepInstanceLock(): void {
    const lock = this.instanceLock;
    if (lock === null) return;
    const outcome = lock.keepAtPath();
    if (outcome === "kept") return;
    if (outcome === "relocked") {
      this.lockTrouble = null;
      this.events.record("agent.lock-restored", `the instance lock ${lock.path} was removed or replaced by hand: locked it again, a second agent still exits at once`, { path: lock.path }, "warn");
      return;
    }
    if (outcome === this.lockTrouble) return;
    this.lockTrouble = outcome;
    const message =
      outcome === "taken"
        ? `the instance lock ${lock.path} was removed by hand and another process locked the new one: a second agent may be running; stop it (it runs a Keepalived of its own)`
        : `the instance lock ${lock.path} was removed by hand and cannot be made again (read-only or full?); retrying every second`;
    this.events.record("agent.lock-lost", message, { path: lock.path, outcome }, "error");
  }

  /** The epoch file removed or replaced by hand: written back at once (said in the audit). */
  private keepEpochFile(): void {
    try {
      const done = this.c.epochs.restoreIfLost?.() ?? null;
      this.epochRestoreFailing = false;
      if (done !== null) this.events.record("agent.epoch-restored", `the epoch file was removed or changed by hand: ${done}`, { file: this.c.epochs.path?.() ?? null, epoch: this.c.epochs.get() }, "warn");
    } catch (error) {
      // A read-only or full disk: the driver's self-check says so; tried again every second, logged once.
      if (this.epochRestoreFailing) return;
      this.epochRestoreFailing = true;
      this.logger.warn({ err: error, file: this.c.epochs.path?.() ?? null }, "could not write the epoch file back");
    }
  }

  private async keepControlSocket(): Promise<void> {
    const socketPath = this.loaded.config.controlSocket;
    try {
      if (await this.control.keepSocketFile()) {
        this.controlSocketFailing = false;
        this.events.record("control.repaired", `control socket ${socketPath} was removed by hand: listening on it again`, { socketPath }, "warn");
      }
    } catch (error) {
      // Tried again every second; said once until it works.
      if (this.controlSocketFailing) return;
      this.controlSocketFailing = true;
      this.events.record("control.repair-failed", `control socket ${socketPath} was removed by hand and listening on it again failed (${error instanceof Error ? error.message : String(error)}); retrying every second, or restart the agent (systemctl restart mnha)`, { socketPath }, "error");
    }
  }

  private async startPart(name: string, part: Startable): Promise<void> {
    try {
      await part.start();
    } catch (error) {
      // Stop it too: a part may have half-started (a listener bound, a child spawned).
      await part.stop().catch(() => undefined);
      throw error;
    }
    this.started.push({ name, part });
  }

  /** Stops what was started, last first; a part that fails to stop does not keep the others running. */
  private async stopParts(): Promise<void> {
    const parts = this.started.reverse();
    this.started = [];
    for (const { name, part } of parts) {
      await part.stop().catch((error: unknown) => this.logger.warn({ err: error, part: name }, "stop failed"));
    }
  }

  /** One election event into the audit, under its catalog name (`election.`, `db.`, `watchdog.`). */
  private recordElectionEvent(event: ElectionEventRecord): void {
    const { type } = event;
    const warn = type === "db-read-only-failed" || type === "db-mode-reasserted" || type === "db-writable-failed" || type === "db-possibly-lost" || type === "db-not-caught-up" || type === "db-takeover-behind" || type === "lease-expired" || type === "stepped-down" || type === "peer-lost" || type === "holding-degraded" || type === "vip-repair" || type === "vip-gave-up" || type === "peer-vip-unanswered" || type === "watchdog-repair-failed" || type === "claim-retries";
    // The liveness watchdog's steps share one prefix: `mnha events --type watchdog` lists them.
    const name = type.startsWith("watchdog-") ? `watchdog.${type.slice("watchdog-".length)}` : WATCHDOG_EVENTS.has(type) ? `watchdog.${type}` : type.startsWith("db-") ? `db.${type.slice("db-".length)}` : `election.${type}`;
    this.events.record(name, event.message, event.fields, warn ? "warn" : "info", { wallMs: event.wallMs, monoMs: event.monoMs });
  }

  /**
   * Clean stop: hand the VIP to a healthy peer if this node holds it, then close the gate
   * and stop Keepalived (which removes the VIP). Without a healthy peer the VIP is released:
   * an agent that is not running cannot keep renewing the lease.
   */
  async stop(reason = "stop requested"): Promise<void> {
    if (!this.running) {
      await this.stopParts();
      return;
    }
    for (const event of this.claimRetries.pendingSummary({ wallMs: this.clock.wallNow(), monoMs: this.clock.now() })) this.recordElectionEvent(event);
    this.events.record("agent.stopping", `stopping: ${reason}`, { reason });
    const requestId = randomUUID();
    const done = this.waitForRequest(requestId, this.loaded.config.timings.handoffTimeoutMs + (this.c.database ? this.loaded.config.db.catchUpTimeoutMs : 0) + 1_000);
    this.host.input({ kind: "shutdown", requestId });
    const result = await done;
    this.duplicateWatch.stop();
    // Before agent.stopped: an outage of the check still open is closed in the audit.
    this.duplicateAudit.stop();
    this.events.record("agent.stopped", `stopped (${result.message})`, { handedTo: result.to });
    this.running = false;
    for (const cancel of this.periodic.splice(0)) cancel();
    await this.host.idle();
    this.host.close();
    // Control and link first (nobody new talks to us); the store last, to flush what the stop recorded.
    await this.stopParts();
    // Each part cancelled its own place on the beat; nothing may keep its timer.
    this.beat.stop();
  }

  private wireInputs(): void {
    const c = this.c;
    const { config } = this.loaded;
    c.services.onEvent((event) => {
      switch (event.kind) {
        case "service-changed":
          this.events.record("check.changed", `service ${event.service} is ${event.healthy ? "healthy" : "failed"}: ${event.detail}`, { service: event.service, healthy: event.healthy, critical: event.critical, detail: event.detail }, event.healthy ? "info" : "warn");
          this.feedServices();
          break;
        case "restore-started":
          this.restoreAttemptsTotal.set(event.service, (this.restoreAttemptsTotal.get(event.service) ?? 0) + 1);
          this.events.record("restore.started", `restoring ${event.service} (attempt ${event.attempt}): ${event.command.join(" ")}`, { service: event.service, attempt: event.attempt, command: event.command });
          break;
        case "restore-finished":
          this.events.record("restore.finished", `restore of ${event.service} (attempt ${event.attempt}) ${event.ok ? "succeeded" : "failed"}: ${event.detail}`, { service: event.service, attempt: event.attempt, ok: event.ok, detail: event.detail }, event.ok ? "info" : "warn");
          break;
        case "restore-gave-up":
          this.events.record("restore.gave-up", `gave up restoring ${event.service} after ${event.attempts} attempts`, { service: event.service, attempts: event.attempts }, "error");
          break;
        case "restore-not-tried":
          this.events.record("restore.not-tried", `restore of ${event.service} not tried: ${event.reason}`, { service: event.service, reason: event.reason }, "error");
          break;
      }
    });
    c.gateway.onChange((reachable, detail) => {
      this.events.record("gateway.changed", `gateway ${config.gateway.address} ${reachable ? "reachable" : "unreachable"}: ${detail}`, { reachable, detail }, reachable ? "info" : "warn");
      this.host.input({ kind: "gateway", reachable });
    });
    c.keepalived.onState((state) => {
      this.events.record("keepalived.state", `keepalived is ${state}`, { state });
      void this.observeVip();
    });
    c.keepalived.onRepair?.(({ reason, actions }) => {
      this.events.record("keepalived.repaired", `keepalived driver repaired (${reason}): ${actions.join("; ")}`, { reason, actions }, "warn");
      // The driver's directory may have become (un)writable: that decides whether this node can take the VIP.
      this.feedServices();
    });
    c.link.onEvent((event) => this.onLinkEvent(event));
    c.store.onAlert((alert) => this.onStoreAlert(alert));
    c.store.onDailySummary((summary) => this.events.record("store.daily-summary", summary.message, { ...summary }));
  }

  private onStoreAlert(alert: StoreAlert): void {
    switch (alert.kind) {
      case "degraded":
        this.events.record("store.degraded", `audit store degraded: ${alert.reason}; HA goes on, records are kept in memory`, { reason: alert.reason }, "error");
        break;
      case "recovered":
        this.events.record("store.recovered", `audit store recovered after ${Math.round(alert.afterMs / 1000)} s (${alert.reason})`, { afterMs: alert.afterMs, reason: alert.reason });
        // The store may be a new file (the old one removed by hand) that lacks what the peer
        // last heard it held; a hello costs one frame, and the peer sends only what is missing.
        this.c.sync.announceAgain(`the audit store recovered (${alert.reason})`);
        break;
      case "dropping":
        this.events.record("store.dropping", `audit store queue full (${alert.queueLimit} records): dropping the oldest records (${alert.reason})`, { reason: alert.reason, queueLimit: alert.queueLimit }, "error");
        break;
      case "moved-aside":
        this.events.record(
          "store.moved-aside",
          `the audit store's database ${alert.path} was damaged (${alert.reason}): moved aside to ${alert.files.join(", ")} and a new one created; the peer sends its copy of the records back`,
          { path: alert.path, reason: alert.reason, files: alert.files },
          "warn",
        );
        this.c.sync.announceAgain(`the store's database was damaged and started again (${alert.path})`);
        break;
      case "integrity-failed":
        this.events.record("store.integrity-failed", `audit store integrity check failed: ${alert.detail}`, { detail: alert.detail }, "error");
        break;
      case "integrity-restored":
        this.events.record("store.integrity-restored", "audit store integrity check passes again", {});
        break;
    }
  }

  private onLinkEvent(event: PeerLinkEvent): void {
    // The sync engine sees every link event; sync messages go to it alone.
    this.c.sync.handleLinkEvent(event);
    if (event.kind === "message" && this.c.sync.isSyncMessage(event.message)) return;
    if (event.kind === "message" && NodeOps.isOpsMessage(event.message)) return this.ops.handleMessage(event.message);
    if (event.kind === "message" && event.message.type === "pair-settings") return this.onPeerSettings(event.message);
    if (event.kind === "up") this.ops.onPeerUp();
    if (event.kind === "down") this.ops.onPeerDown();
    switch (event.kind) {
      case "up":
        this.events.record("peer.connected", `peer ${event.peer} connected from ${event.remote} (protocol v${event.version})`, { peer: event.peer, remote: event.remote, version: event.version });
        this.host.input({ kind: "peer-up" });
        // Tell the peer our state at once rather than at the next tick.
        this.host.heartbeatNow();
        this.sendPairSettings(event.version);
        break;
      case "down":
        this.events.record("peer.disconnected", `peer ${event.peer} disconnected: ${event.reason}`, { peer: event.peer, reason: event.reason }, "warn");
        this.host.input({ kind: "peer-down", reason: event.reason });
        this.pairSettings.onLinkDown();
        break;
      case "message":
        this.host.input({ kind: "peer-message", message: event.message });
        break;
      case "refusals":
        // Already summarised and rate-limited by the link; `peer.refusals` events stay on this node (sync skips them).
        this.events.record("peer.refusals", event.message, { count: event.count, byCode: event.byCode, sources: event.sources, otherSources: event.otherSources, first: event.first }, "warn");
        break;
    }
  }

  /** On link up: this node's shared settings, to a peer that knows the message (protocol v5 on). */
  private sendPairSettings(version: number): void {
    const settings = this.pairSettings.onLinkUp(version);
    if (settings) this.c.link.send(settings);
  }

  private onPeerSettings(message: PairSettings): void {
    const peer = this.peerName;
    const verdict = this.pairSettings.onPeerSettings(message);
    if (verdict === null) return;
    if ("agree" in verdict) {
      this.events.record("pair.settings-agree", `the settings both nodes must share agree with ${peer}'s again`, { peer });
      return;
    }
    const text = describeDifferences(verdict.differences, peer);
    this.events.record("pair.settings-differ", `SETTINGS DIFFER between ${this.self} and ${peer}: ${text}; ${PAIR_SETTINGS_FIX}`, { peer, differences: verdict.differences }, "warn");
  }

  private feedServices(): void {
    const failing = this.c.services.statuses().filter((s) => s.critical && !s.healthy);
    const reasons = failing.map((s) => `service ${s.name} ${s.successes + s.failures === 0 ? "not checked yet" : `failed (${s.lastDetail})`}`);
    // A node that cannot write its gate file cannot take the VIP: offering it a handoff, or
    // letting it claim, only ends in a timeout. A holder keeps the VIP it has (it could not
    // close its gate to give it away either), so this counts only while not holding.
    const holding = this.role === "holder" || this.role === "handing-off";
    const unwritable = holding ? null : (this.c.keepalived.unwritableDir?.() ?? null);
    if (unwritable !== null) reasons.push(`${unwritable}: it could not open its Keepalived gate, so it cannot take the VIP`);
    const healthy = this.c.services.allCriticalHealthy() && unwritable === null;
    const verdict = `${healthy}|${reasons.join(",")}`;
    if (verdict === this.lastServicesVerdict) return;
    this.lastServicesVerdict = verdict;
    this.host.input({ kind: "services", healthy, reasons });
  }

  /** Looks whether the VIP is on our interface; a change is an event and an input for the watchdog. */
  private async observeVip(): Promise<void> {
    const present = await this.c.keepalived.vipPresent().catch(() => this.vipPresent);
    if (present !== null && present !== this.vipPresent) {
      const first = this.vipPresent === null;
      this.vipPresent = present;
      if (!first || present) {
        this.events.record("vip.changed", `VIP ${this.loaded.config.vip.address} ${present ? "is now on" : "is gone from"} ${this.loaded.config.vip.interface}`, { present, role: this.host.core.snapshot(this.clock.now()).role });
      }
      this.host.input({ kind: "vip-observed", present });
      this.updateDuplicateWatch(this.role);
    }
    await this.watchForStrayVip();
  }

  /**
   * The VIP on a standby's interface, its gate closed and its Keepalived not MASTER, belongs to
   * nobody: added by hand, listed in the host's network config, or left by a Keepalived killed
   * with -9. It still answers ARP, so clients may follow it to a node that does not serve, and
   * the holder's duplicate check sees only a second MAC. Seen so for STRAY_VIP_GRACE_MS, it is
   * taken off (not in maintenance mode, which acts on nothing: there it is only reported).
   */
  private async watchForStrayVip(): Promise<void> {
    const stray = this.running && this.vipPresent === true && this.role === "standby" && !this.c.keepalived.gateOpen() && this.c.keepalived.state() !== "master";
    if (!stray) {
      this.strayVipSince = null;
      this.strayVipTold = false;
      return;
    }
    const now = this.clock.now();
    this.strayVipSince ??= now;
    if (now - this.strayVipSince < STRAY_VIP_GRACE_MS || this.strayVipRemoving) return;
    const { address, interface: iface } = this.loaded.config.vip;
    const seconds = Math.round((now - this.strayVipSince) / 1000);
    if (this.ops.inMaintenance()) {
      if (!this.strayVipTold) this.events.record("vip.stray", `VIP ${address} is on ${iface} although ${this.self} does not hold it (${seconds} s; added by hand, by the host's network config, or left behind); left in place because maintenance mode acts on nothing: remove it (ip addr del ${address} dev ${iface}) or turn maintenance off`, { address, iface }, "warn");
      this.strayVipTold = true;
      return;
    }
    this.strayVipRemoving = true;
    try {
      const removed = (await this.c.keepalived.removeStrayVip?.()) ?? false;
      if (removed) {
        this.events.record("vip.stray-removed", `VIP ${address} was on ${iface} for ${seconds} s although ${this.self} does not hold it (added by hand, by the host's network config, or left behind): removed it; if the host's network config lists the VIP, take it out there`, { address, iface, seconds }, "warn");
        this.strayVipSince = null;
      } else {
        if (!this.strayVipTold) this.events.record("vip.stray", `VIP ${address} is on ${iface} although ${this.self} does not hold it, and the agent could not remove it: remove it by hand (ip addr del ${address} dev ${iface}); the agent's log says why`, { address, iface }, "error");
        this.strayVipTold = true;
        // Tried again after another grace period, not on every look.
        this.strayVipSince = this.clock.now();
      }
    } finally {
      this.strayVipRemoving = false;
    }
    // Look again at once: the audit says the VIP is gone, not a poll later.
    if (this.strayVipSince === null) await this.observeVip();
  }

  /** The duplicate-address check runs while this node holds the VIP, and only then. */
  private updateDuplicateWatch(role: Role): void {
    this.role = role;
    this.duplicateWatch.setActive(this.running && this.vipPresent === true && (role === "holder" || role === "handing-off"));
  }

  // ---- requests -----------------------------------------------------------------------

  private waitForRequest(requestId: string, timeoutMs: number): Promise<RequestOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        resolve({ ok: false, message: `no result within ${timeoutMs} ms`, to: null, epoch: this.host.core.snapshot(this.clock.now()).epoch });
      }, timeoutMs);
      this.pending.set(requestId, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  private handlers(): ControlHandlers {
    return {
      status: async () => this.status(),
      demote: async (options) => this.demote(options.timeoutMs),
      events: async (options) => this.queryEvents(options),
      failovers: async (options) => this.queryFailovers(options),
      metrics: async (options) => this.queryMetrics(options),
      version: () => ({ version: AGENT_VERSION, ...this.protocolStatus(), node: this.self }),
      maintenance: async (request) => this.ops.maintenance(request),
      stopNode: async (request) => this.ops.stopNode(request),
      startNode: async (request) => this.ops.startNode(request),
      collect: async (request) => this.ops.collect(request),
      dbReseedPeer: async (request) => this.ops.reseedPeer(request),
      planEvent: async (event) => {
        const { type, ...fields } = event;
        return { seq: this.events.record(type, describePlanStepEvent(event), fields, type === "plan.step.failed" ? "error" : "info").seq };
      },
    };
  }

  /** From the replicated store (both nodes' history); from memory if the store cannot answer. */
  private async queryEvents(options: EventQuery): Promise<HaEvent[]> {
    try {
      const rows = await this.c.store.queryEvents({ ...options, limit: options.limit ?? 50 });
      return rows.map(toHaEvent);
    } catch (error) {
      this.logger.warn({ err: error }, "audit store query failed; answering from recent events in memory");
      return this.events.recent({ ...(options.limit === undefined ? {} : { limit: options.limit }), ...(options.type === undefined ? {} : { type: options.type }) });
    }
  }

  private async queryFailovers(options: { sinceMs?: number; untilMs?: number; limit?: number }): Promise<FailoverRecord[]> {
    return this.c.store.failovers(options);
  }

  private async queryMetrics(options: { sinceMs?: number; untilMs?: number; node?: string; series?: string }): Promise<MetricsReport> {
    return { summaries: await this.c.store.summarize(options), store: this.c.store.health() };
  }

  /** A signal the agent does not act on (SIGHUP): said in the audit, so the operator who sent it sees why nothing changed. */
  recordIgnoredSignal(signal: string, message: string): void {
    this.events.record("agent.signal-ignored", message, { signal }, "warn");
  }

  async demote(timeoutMs?: number): Promise<DemoteResult> {
    const started = this.clock.now();
    const requestId = randomUUID();
    const catchUpMs = this.c.database ? this.loaded.config.db.catchUpTimeoutMs : 0;
    // The offer's answer (handoffTimeoutMs + catch-up), then the taker's word that the VIP is up there (handoffTimeoutMs).
    const budget = Math.min(timeoutMs ?? 2 * this.loaded.config.timings.handoffTimeoutMs + catchUpMs + 1_000, 60_000);
    this.events.record("operator.demote", "operator asked to demote this node", { requestId });
    const done = this.waitForRequest(requestId, budget);
    this.host.input({ kind: "demote", requestId });
    const result = await done;
    const tookMs = Math.round(this.clock.now() - started);
    this.events.record("operator.demote.result", `demote ${result.ok ? "done" : "refused"}: ${result.message}`, { ok: result.ok, to: result.to, tookMs }, result.ok ? "info" : "warn");
    return { ok: result.ok, from: this.self, to: result.to, epoch: result.epoch, message: result.message, tookMs };
  }

  async status(): Promise<StatusReport> {
    await this.observeVip();
    // A fresh look at the database (bounded), so status never shows a switch just made as pending.
    await this.dbPoll?.poll();
    const report = buildStatusReport({
      config: this.loaded.config,
      now: this.clock.now(),
      startedAt: this.startedAt,
      snapshot: this.host.core.snapshot(this.clock.now()),
      vipPresent: this.vipPresent === true,
      components: this.c,
      db: this.dbStatusInput(),
      lastBlockedClaim: this.lastBlockedClaim,
    });
    const { offered, negotiated } = this.protocolStatus();
    const witness = this.host.core.snapshot(this.clock.now()).witness;
    const witnessStatus = this.loaded.config.witness && witness && this.witnessClient ? { witness: { configured: true as const, address: `${this.loaded.config.witness.address}:${this.loaded.config.witness.port}`, leaseMs: this.loaded.config.witness.leaseMs, connected: this.witnessClient.state().connected, linkError: this.witnessClient.state().lastError, ...witness } } : {};
    return { ...report, protocol: { offered, negotiated }, pairSettings: this.pairSettings.status(), duplicateCheck: this.duplicateWatch.status(), ops: this.ops.status(), ...(this.dataSync ? { dataSync: this.dataSync.status() } : {}), ...witnessStatus, ...(this.readOnly.length > 0 ? { readOnlyDirs: this.readOnly.map(({ setting, dir, message, hint }) => ({ setting, dir, message, hint })) } : {}) };
  }

  /** The peer protocol versions offered (the build's list) and the one the open link negotiated. */
  private protocolStatus(): { protocol: number; offered: number[]; negotiated: number | null } {
    const offered = [...(this.c.link.offeredVersions?.() ?? [CURRENT_PROTOCOL_VERSION])];
    return { protocol: Math.max(...offered), offered, negotiated: this.c.link.connected() ? (this.c.link.version?.() ?? null) : null };
  }

  /**
   * What a restart made the server forget, given back: semi-sync (db/semi-sync-keeper.ts),
   * then a replica left stopped (db/replica-keeper.ts), in that order so the replica connects
   * as a semi-sync one. Not in maintenance mode, which acts on nothing (the DBA may be
   * restarting it on purpose).
   */
  private restartRepairHook(target: NonNullable<AgentDatabase["repairControl"]>): (health: DatabaseHealth) => Promise<void> {
    const { semiSync, connectTimeoutMs, replication } = this.loaded.config.db;
    const record = (type: string, message: string, fields: Record<string, unknown>, level: "info" | "warn") => void this.events.record(type, message, fields, level);
    const now = () => this.clock.now();
    const wallNow = () => this.clock.wallNow();
    const semiSyncKeeper = new SemiSyncKeeper({ settings: semiSync, target, boundMs: 2 * connectTimeoutMs, now, wallNow, record });
    const replicaKeeper = new ReplicaKeeper({ target, startAfterRestart: replication.startAfterRestart, boundMs: 2 * connectTimeoutMs, now, wallNow, record, memory: replicaRunFile(this.loaded.config.dataDir) });
    return async (health) => {
      if (this.ops.inMaintenance()) return;
      await semiSyncKeeper.keep(health);
      await replicaKeeper.keep(health);
    };
  }

  /** Errant transactions on this node (written while a read-only standby): found, kept, shown; repaired only by db resync. */
  private errantWatch(dataDir: string): NonNullable<ConstructorParameters<typeof DbHealthPoll>[0]["errant"]> {
    return {
      watch: new ErrantWriteWatch(dataDir),
      standbyPeriod: () => this.host.dbStandbyPeriod(),
      onFound: (mark) => void this.events.record("db.errant-transactions", `ERRANT TRANSACTIONS on ${this.self}: ${mark.description}; ${this.self} may not take over from a live holder until repaired with mnha db resync (run on ${this.self})`, { ...mark }, "warn"),
    };
  }

  private dbStatusInput(): DbStatusInput | null {
    return this.dbPoll ? { health: this.dbPoll.last, seedIncomplete: this.dbPoll.lastSeedIncomplete, errant: this.dbPoll.lastErrant } : null;
  }

  private metricsSnapshot(): MetricsSnapshot {
    const snapshot = buildMetricsSnapshot({
      node: this.self,
      snapshot: this.host.core.snapshot(this.clock.now()),
      failoversTotal: this.host.holderChanges,
      vipPresent: this.vipPresent === true,
      restoreAttemptsTotal: this.restoreAttemptsTotal,
      components: this.c,
      db: this.dbStatusInput(),
    });
    return { ...snapshot, dataSyncAgeSeconds: this.dataSync?.ageSeconds() ?? null, backupAgeSeconds: this.backups?.newestGoodAgeSeconds() ?? null, duplicateCheckFailing: this.duplicateWatch.status().state === "failing" };
  }
}
