/**
 * Operator operations on a node: maintenance mode, `stop-node` / `start-node`, and the peer's
 * side of those asked over the peer link (maintenance --node peer, collect-log). The modes are
 * persisted in the data dir and fed to the election core and the service monitor; every
 * action is audited with who asked and why. The daemon wires this in with a handful of lines.
 */
import { randomUUID } from "node:crypto";
import { MnhaError, type LoadedConfig, type Logger, type ServiceConfig } from "@mnha/shared";
import { DB_RESEED_MIN_PROTOCOL_VERSION, type LinkMessage, type OpsReply, type OpsRequest, type Role } from "@mnha/protocol";
import { actionArgv } from "../checks/action-command.js";
import { describeCommandResult, runCommand } from "../checks/command.js";
import type { CollectResult, CollectedFile, CommandOutcome, DbReseedPeerResult, DemoteResult, MaintenanceResult, OpsStatus, ServiceStatus, StartNodeResult, StopNodeResult } from "../contracts.js";
import type { CatchUpState } from "../db/catch-up.js";
import { collectNodePart } from "./diagnostics.js";
import { OpsStateFile } from "./ops-state-file.js";

/** What NodeOps needs from the daemon. */
export interface NodeOpsHost {
  self: string;
  peer: string;
  loaded: LoadedConfig;
  logger: Logger;
  wallNow(): number;
  record(type: string, message: string, fields: Record<string, unknown>, level?: "info" | "warn" | "error"): void;
  /** Feeds the election core (through the daemon's queue). */
  feedCore(input: { kind: "maintenance" | "node-stopped"; on: boolean }): void;
  services: {
    holdRestores(key: string, services: readonly string[] | null): void;
    releaseRestores(key: string): void;
    statuses(): ServiceStatus[];
    checkNow(): Promise<void>;
  };
  /** This node's role, and why the peer could not take the VIP now (null: it could). */
  election(): { role: Role; peerProblem: string | null };
  demote(timeoutMs?: number): Promise<DemoteResult>;
  send(message: LinkMessage): boolean;
  peerConnected(): boolean;
  statusJson(): Promise<string | null>;
  /**
   * The local database's catch-up with the peer's (start-node waits for it). Absent or
   * `configured: false`: no db section enabled; `peerAlive: false`: nothing to compare with.
   */
  dbCatchUp?(): Promise<{ configured: false } | { configured: true; peerAlive: boolean; state: CatchUpState }>;
  /** Who holds the VIP as this node sees it (itself, the peer, or null: nobody / unknown). */
  vipOwner?(): Promise<string | null>;
  /** The protocol version the open peer link negotiated (null: no link). */
  peerProtocolVersion?(): number | null;
  /**
   * Makes this node's database a copy of the peer's (db/seed.ts, as `mnha db resync`); returns
   * a line for the output. Absent: this agent cannot (a test double without a database).
   */
  reseedFromPeer?(onProgress: (text: string) => void): Promise<string>;
}

export const MAINTENANCE_HOLD = "maintenance";
export const STOPPED_HOLD = "stopped";
/** The vendor's advice, repeated every time maintenance is entered. */
export const VM_HA_REMINDER = "disable the platform's VM HA while in maintenance (the vendor requires it), and enable it again after `mnha maintenance off`";
const PEER_ANSWER_TIMEOUT_MS = 150_000;
/** Stopping or starting the peer's services: each command has its own timeout; this bounds the lot. */
const SERVICES_ANSWER_TIMEOUT_MS = 840_000;
const COLLECT_ANSWER_TIMEOUT_MS = 30_000;
/** Bound on the peer's copy of this node's database (db-reseed): a big database takes its time. */
export const RESEED_ANSWER_TIMEOUT_MS = 3_600_000;
/** How often the peer's seed progress is recorded while it copies. */
const RESEED_PROGRESS_EVERY_MS = 5_000;
const DEFAULT_SERVICE_COMMAND_TIMEOUT_MS = 120_000;
const START_HEALTHY_WAIT_MS = 60_000;
/** How long start-node waits for the database to catch up when the caller does not say. */
export const START_DB_CATCH_UP_DEFAULT_MS = 300_000;
const START_DB_POLL_MS = 500;

export class NodeOps {
  private readonly host: NodeOpsHost;
  private readonly file: OpsStateFile;
  private state: OpsStatus = { maintenance: null, stopped: null };
  private peerState: OpsStatus | null = null;
  private readonly waiting = new Map<string, (reply: OpsReply) => void>();
  /** One operator action at a time on this node: a second one waits for the first. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(host: NodeOpsHost) {
    this.host = host;
    this.file = new OpsStateFile(host.loaded.config.dataDir);
  }

  /** Reads the persisted modes and applies them before the agent decides anything. */
  start(): void {
    const { state, problem } = this.file.load(this.host.wallNow());
    this.state = state;
    if (problem) this.host.record("ops.state-unreadable", `operator state file unreadable: ${problem}; entering maintenance mode to be safe`, { problem }, "error");
    if (state.maintenance) {
      this.host.feedCore({ kind: "maintenance", on: true });
      this.host.services.holdRestores(MAINTENANCE_HOLD, null);
      this.host.record("maintenance.resumed", `maintenance mode still on (since ${new Date(state.maintenance.since).toISOString()} by ${state.maintenance.by}: ${state.maintenance.reason || "no reason given"})`, { ...state.maintenance }, "warn");
    }
    if (state.stopped) {
      this.host.feedCore({ kind: "node-stopped", on: true });
      this.host.services.holdRestores(STOPPED_HOLD, this.stoppableServices(state.stopped.keepUi).map((s) => s.name));
      this.host.record("node.still-stopped", `node still stopped by ${state.stopped.by} (mnha start-node brings it back)`, { ...state.stopped }, "warn");
    }
  }

  status(): { self: OpsStatus; peer: OpsStatus | null } {
    return { self: { ...this.state }, peer: this.peerState };
  }

  inMaintenance(): boolean {
    return this.state.maintenance !== null;
  }

  // ---- peer link -------------------------------------------------------------------------

  onPeerUp(): void {
    this.broadcast();
  }

  onPeerDown(): void {
    this.peerState = null;
  }

  static isOpsMessage(message: LinkMessage): boolean {
    return message.type === "ops-state" || message.type === "ops-request" || message.type === "ops-reply";
  }

  handleMessage(message: LinkMessage): void {
    switch (message.type) {
      case "ops-state":
        this.peerState = { maintenance: message.maintenance, stopped: message.stopped };
        return;
      case "ops-reply": {
        const resolve = this.waiting.get(message.id);
        if (resolve) {
          this.waiting.delete(message.id);
          resolve(message);
        }
        return;
      }
      case "ops-request":
        void this.answerPeer(message);
        return;
      default:
        return;
    }
  }

  private broadcast(): void {
    // Bounded as the protocol requires, whatever the state file held.
    const m = this.state.maintenance;
    const st = this.state.stopped;
    this.host.send({
      type: "ops-state",
      maintenance: m ? { since: Math.max(0, Math.round(m.since)), by: m.by.slice(0, 128), reason: m.reason.slice(0, 500) } : null,
      stopped: st ? { since: Math.max(0, Math.round(st.since)), by: st.by.slice(0, 128), keepUi: st.keepUi } : null,
    });
  }

  private async answerPeer(request: OpsRequest): Promise<void> {
    const reply = (ok: boolean, message: string, files?: CollectedFile[]): void => {
      this.host.send({ type: "ops-reply", id: request.id, ok, message: message.slice(0, 2_000), ...(files ? { files } : {}) });
    };
    try {
      if (request.action === "collect") {
        const files = await collectNodePart({ loaded: this.host.loaded, statusJson: () => this.host.statusJson(), sinceMs: request.sinceMs ?? this.host.wallNow() - 86_400_000 });
        this.host.record("operator.collect", `diagnostic bundle sent to ${this.host.peer} for ${request.by}`, { by: request.by, files: files.length, via: this.host.peer });
        reply(true, `${files.length} files`, files);
        return;
      }
      if (request.action === "db-reseed") {
        // One at a time: a rerun of the restore that timed out waits for the copy still running.
        const result = await this.serial(() => this.reseedForPeer(request.by));
        reply(result.ok, result.message);
        return;
      }
      const by = `${request.by} via ${this.host.peer}`.slice(0, 128);
      const result = await this.serial(() => this.setMaintenance(request.action === "maintenance-on", by, request.reason));
      if (request.action === "maintenance-on" && request.services !== undefined) {
        const services = await this.serial(() => this.workServices(request.services as "stop" | "start", by));
        reply(services.ok, `${describeMaintenance(result)}; ${services.message}`);
        return;
      }
      reply(true, describeMaintenance(result));
    } catch (error) {
      reply(false, error instanceof Error ? error.message : String(error));
    }
  }

  private async askPeer(request: Omit<OpsRequest, "type" | "id">, timeoutMs: number): Promise<OpsReply> {
    if (!this.host.peerConnected()) throw peerNotConnected(this.host.peer);
    const id = randomUUID();
    const answer = new Promise<OpsReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new MnhaError("OPERATION_FAILED", `${this.host.peer} did not answer within ${Math.round(timeoutMs / 1000)} s`, { hint: `run the command on ${this.host.peer} itself` }));
      }, timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
    if (!this.host.send({ type: "ops-request", id, ...request })) {
      this.waiting.delete(id);
      throw peerNotConnected(this.host.peer);
    }
    return answer;
  }

  // ---- maintenance ------------------------------------------------------------------------

  async maintenance(request: { on: boolean; node: "this" | "peer" | "both"; reason: string; by: string; services?: "stop" | "start" }): Promise<MaintenanceResult> {
    if (request.services !== undefined && !request.on) throw refused("the MN services are stopped or started only together with maintenance on; nothing was changed", 'send {"on": true, "services": "stop"|"start"}');
    // Refuse before changing anything when the peer is needed and not there.
    if (request.node !== "this" && !this.host.peerConnected()) throw peerNotConnected(this.host.peer);
    const services = request.services === undefined ? {} : { services: request.services };
    const peerTimeoutMs = request.services === undefined ? PEER_ANSWER_TIMEOUT_MS : SERVICES_ANSWER_TIMEOUT_MS;
    if (request.node === "peer") {
      const reply = await this.askPeer({ action: request.on ? "maintenance-on" : "maintenance-off", by: request.by, reason: request.reason, ...services }, peerTimeoutMs);
      this.host.record("operator.maintenance.peer", `asked ${this.host.peer} to turn maintenance ${request.on ? "on" : "off"} for ${request.by}: ${reply.ok ? "done" : "refused"}: ${reply.message}`, { by: request.by, reason: request.reason, ok: reply.ok }, reply.ok ? "info" : "warn");
      return { node: this.host.peer, on: request.on, changed: reply.ok, message: reply.message, hook: null, reminder: request.on ? VM_HA_REMINDER : null, peer: { node: this.host.peer, ok: reply.ok, message: reply.message } };
    }
    const local = await this.serial(() => this.setMaintenance(request.on, request.by, request.reason));
    if (request.services !== undefined) local.services = await this.serial(() => this.workServices(request.services as "stop" | "start", request.by));
    if (request.node === "both") {
      const reply = await this.askPeer({ action: request.on ? "maintenance-on" : "maintenance-off", by: request.by, reason: request.reason, ...services }, peerTimeoutMs).catch(
        (error: unknown): OpsReply => ({ type: "ops-reply", id: "-", ok: false, message: error instanceof Error ? error.message : String(error) }),
      );
      local.peer = { node: this.host.peer, ok: reply.ok, message: reply.message };
    }
    return local;
  }

  private async setMaintenance(on: boolean, by: string, reason: string): Promise<MaintenanceResult> {
    const self = this.host.self;
    const current = this.state.maintenance;
    if (on && current) {
      return { node: self, on, changed: false, message: `${self} already in maintenance mode since ${new Date(current.since).toISOString()} (by ${current.by}: ${current.reason || "no reason given"})`, hook: null, reminder: VM_HA_REMINDER };
    }
    if (!on && !current) return { node: self, on, changed: false, message: `${self} is not in maintenance mode`, hook: null, reminder: null };
    if (on) {
      const info = { since: this.host.wallNow(), by, reason };
      await this.persist({ ...this.state, maintenance: info });
      this.host.services.holdRestores(MAINTENANCE_HOLD, null);
      this.host.feedCore({ kind: "maintenance", on: true });
      this.host.record("maintenance.on", `maintenance mode ON by ${by}: ${reason || "no reason given"}; the agent watches and records but acts on nothing`, { by, reason }, "warn");
      this.broadcast();
      const hook = await this.runHook("onEnter");
      return { node: self, on, changed: true, message: `${self} is in maintenance mode: watching, acting on nothing`, hook, reminder: VM_HA_REMINDER };
    }
    // Off: look at everything afresh first, so the core and the monitor act on today's news.
    await this.host.services.checkNow().catch(() => undefined);
    await this.persist({ ...this.state, maintenance: null });
    this.host.feedCore({ kind: "maintenance", on: false });
    this.host.services.releaseRestores(MAINTENANCE_HOLD);
    this.host.record("maintenance.off", `maintenance mode OFF by ${by}${reason ? `: ${reason}` : ""} (was on since ${new Date(current!.since).toISOString()})`, { by, reason, sinceMs: current!.since });
    this.broadcast();
    const hook = await this.runHook("onExit");
    const failing = this.host.services.statuses().filter((s) => !s.healthy).map((s) => s.name);
    const next = failing.length > 0 ? `; failed services are restored with the normal backoff: ${failing.join(", ")}` : "";
    return { node: self, on, changed: true, message: `${self} left maintenance mode: the agent acts again${next}`, hook, reminder: null };
  }

  private async runHook(which: "onEnter" | "onExit"): Promise<CommandOutcome | null> {
    const settings = this.host.loaded.config.maintenance;
    const command = settings[which];
    if (!command) return null;
    const result = await runCommand(actionArgv(command, { kind: "hook", name: `maintenance-${which}`, timeoutMs: settings.hookTimeoutMs }), { timeoutMs: settings.hookTimeoutMs, killGraceMs: 2_000 });
    const ok = result.exitCode === 0;
    const detail = describeCommandResult(command, result, settings.hookTimeoutMs);
    this.host.record("maintenance.hook", `maintenance ${which} hook ${ok ? "succeeded" : "FAILED"}: ${detail}`, { hook: which, command, ok, detail }, ok ? "info" : "error");
    return { name: `maintenance.${which}`, command: [...command], ok, detail };
  }

  // ---- services stopped / started in maintenance (mnha restore) ------------------------------

  /**
   * Stops or starts the MN services while the node is in maintenance (the monitor restores
   * nothing meanwhile), for work on the data under them (`mnha restore`). Unlike stop-node
   * the VIP stays where it is and the UI and the database keep running. Both are safe to
   * repeat: stop runs each stop command, start starts only what is down and waits for it.
   */
  private async workServices(action: "stop" | "start", by: string): Promise<{ ok: boolean; message: string; commands: CommandOutcome[] }> {
    const self = this.host.self;
    if (this.state.maintenance === null) throw refused(`${self} is not in maintenance mode: its agent would restore the services at once`, "turn maintenance on first");
    // The UI stays (the operator watches through it); so does the database the work is done on.
    const targets = this.host.loaded.config.services.filter((s) => s.name !== "ui" && s.name !== "db" && s.check.kind !== "mariadb");
    const commands: CommandOutcome[] = [];
    if (action === "stop") {
      for (const service of targets) if (service.stop !== undefined) commands.push(await this.runServiceCommand(service, "stop", service.stop));
    } else {
      await this.host.services.checkNow().catch(() => undefined);
      const down = new Set(this.host.services.statuses().filter((s) => !s.healthy).map((s) => s.name));
      for (const service of targets) {
        const command = service.start ?? service.restore?.command;
        if (command !== undefined && down.has(service.name)) commands.push(await this.runServiceCommand(service, "start", command));
      }
      const started = commands.filter((c) => c.ok).map((c) => c.name);
      const deadline = performance.now() + START_HEALTHY_WAIT_MS;
      while (started.length > 0 && performance.now() < deadline) {
        const statuses = this.host.services.statuses();
        if (started.every((name) => statuses.find((s) => s.name === name)?.healthy === true)) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const statuses = this.host.services.statuses();
      for (const name of started) {
        if (statuses.find((s) => s.name === name)?.healthy !== true) {
          const outcome = commands.find((c) => c.name === name);
          if (outcome) Object.assign(outcome, { ok: false, detail: `${outcome.detail}; not healthy ${START_HEALTHY_WAIT_MS / 1000} s after the start` });
        }
      }
    }
    const failed = commands.filter((c) => !c.ok);
    const verb = action === "stop" ? "stopped" : "started";
    const kept = this.host.loaded.config.services.filter((s) => !targets.includes(s)).map((s) => s.name);
    const noCommand = action === "stop" ? targets.filter((s) => s.stop === undefined).map((s) => s.name) : [];
    const message =
      `${self}: ${failed.length === 0 ? `${verb} ${commands.map((c) => c.name).join(", ") || "nothing (none needed)"}` : `FAILED to ${action} ${failed.map((c) => `${c.name} (${c.detail})`).join(", ")}`}` +
      `${kept.length > 0 ? `; kept running: ${kept.join(", ")}` : ""}${noCommand.length > 0 ? `; no stop command configured, left running: ${noCommand.join(", ")}` : ""}`;
    this.host.record(`maintenance.services-${action}`, message, { by, ok: failed.length === 0, services: commands.map((c) => c.name) }, failed.length === 0 ? "info" : "error");
    return { ok: failed.length === 0, message, commands };
  }

  // ---- db-reseed: the standby copies the holder's database (mnha restore) ------------------------

  /**
   * On the VIP holder (mnha restore, after loading a backup): asks the peer's agent to make its
   * database a copy of this node's, and waits for it (bounded). Only with the pair in
   * maintenance (nothing fails over onto a half-copied database), and only to an agent that
   * knows the request: an older one would refuse the whole link on it.
   */
  async reseedPeer(request: { by: string }): Promise<DbReseedPeerResult> {
    const { self, peer } = this.host;
    if (!this.host.peerConnected()) throw peerNotConnected(peer);
    const version = this.host.peerProtocolVersion?.() ?? null;
    if (version === null || version < DB_RESEED_MIN_PROTOCOL_VERSION) {
      throw new MnhaError("PEER_TOO_OLD", `${peer}'s agent speaks peer protocol v${version ?? "?"}: it does not know the re-seed request (protocol v${DB_RESEED_MIN_PROTOCOL_VERSION} on); nothing was sent`, {
        hint: `upgrade the pair first (mnha upgrade-ha), then run the same command again; or run \`mnha db resync --yes\` on ${peer} yourself`,
      });
    }
    const owner = (await this.host.vipOwner?.()) ?? null;
    if (owner !== self) throw refused(`${self} does not hold the VIP (${owner === null ? "nobody does" : `${owner} does`}): only the holder's database is copied to the peer; nothing was sent`, "run it on the VIP holder (mnha status shows it)");
    if (this.state.maintenance === null || this.peerState?.maintenance == null)
      throw refused(`the pair is not in maintenance (${this.state.maintenance === null ? self : peer} is not): a re-seed overwrites ${peer}'s database; nothing was sent`, "turn maintenance on for both nodes first (mnha maintenance on --node both)");
    this.host.record("operator.db-reseed.peer", `asked ${peer} to copy ${self}'s database for ${request.by}`, { by: request.by, node: peer });
    const reply = await this.askPeer({ action: "db-reseed", by: request.by, reason: `copy ${self}'s database` }, RESEED_ANSWER_TIMEOUT_MS);
    this.host.record("operator.db-reseed.peer-done", `${peer} ${reply.ok ? "copied" : "FAILED to copy"} ${self}'s database: ${reply.message}`, { by: request.by, node: peer, ok: reply.ok }, reply.ok ? "info" : "error");
    return { node: peer, ok: reply.ok, message: reply.message };
  }

  /** The peer's side of reseedPeer: checks who asks and when, then copies the peer's database here. */
  private async reseedForPeer(by: string): Promise<{ ok: boolean; message: string }> {
    const { self, peer } = this.host;
    const reseed = this.host.reseedFromPeer;
    if (!reseed) return { ok: false, message: `${self} cannot re-seed its database (no database set up for this agent)` };
    const owner = (await this.host.vipOwner?.()) ?? null;
    if (owner !== peer) return { ok: false, message: `${self} refuses the re-seed: ${peer} does not hold the VIP (${owner === null ? "nobody does" : `${owner} does`}); nothing was changed` };
    if (this.state.maintenance === null || this.peerState?.maintenance == null) return { ok: false, message: `${self} refuses the re-seed: the pair is not in maintenance; nothing was changed` };
    const asked = `${by} via ${peer}`.slice(0, 128);
    this.host.record("db.reseed.started", `${self} copies ${peer}'s database (asked by ${asked})`, { by: asked, node: self, from: peer }, "warn");
    let lastRecorded = 0;
    try {
      const message = await reseed.call(this.host, (text) => {
        const now = this.host.wallNow();
        if (now - lastRecorded < RESEED_PROGRESS_EVERY_MS) return;
        lastRecorded = now;
        this.host.record("db.reseed.progress", `${self}: ${text}`, { node: self, from: peer });
      });
      this.host.record("db.reseed.finished", `${self}: ${message}`, { by: asked, node: self, from: peer });
      return { ok: true, message };
    } catch (error) {
      const text = error instanceof MnhaError && error.hint ? `${error.message} (${error.hint})` : error instanceof Error ? error.message : String(error);
      this.host.record("db.reseed.failed", `${self} could not copy ${peer}'s database: ${text}`, { by: asked, node: self, from: peer }, "error");
      return { ok: false, message: `${self} could not copy ${peer}'s database: ${text}` };
    }
  }

  // ---- stop-node / start-node ----------------------------------------------------------------

  stopNode(request: { keepUi: boolean; stopVip: boolean; by: string }): Promise<StopNodeResult> {
    return this.serial(() => this.doStopNode(request));
  }

  startNode(request: { by: string; dbCatchUpTimeoutMs?: number }): Promise<StartNodeResult> {
    return this.serial(() => this.doStartNode(request));
  }

  private async doStopNode(request: { keepUi: boolean; stopVip: boolean; by: string }): Promise<StopNodeResult> {
    const { self, peer } = this.host;
    if (this.state.maintenance) {
      throw refused(`${self} is in maintenance mode: stop-node would act (hand the VIP over, stop services)`, "turn maintenance off first (mnha maintenance off), or stop the services by hand");
    }
    const targets = this.stoppableServices(request.keepUi);
    this.host.record("operator.stop-node", `stop-node asked by ${request.by} (keepui ${request.keepUi}, stopvip ${request.stopVip})`, { by: request.by, keepUi: request.keepUi, stopVip: request.stopVip, services: targets.map((s) => s.name) });
    let handedTo: string | null = null;
    let vipReleased = false;
    const { role, peerProblem } = this.host.election();
    if (role === "claiming" || role === "receiving" || role === "handing-off") {
      throw refused(`${self} is ${role}: a change of holder is under way; nothing was stopped`, "wait a few seconds and run stop-node again");
    }
    if (role === "holder") {
      if (peerProblem === null) {
        const demoted = await this.host.demote();
        if (demoted.ok) handedTo = demoted.to;
        else if (!request.stopVip) throw refused(`${self} holds the VIP and could not hand it to ${peer}: ${demoted.message}; nothing was stopped`, "fix the peer and retry, or pass -stopvip to give the VIP up anyway (the VIP will be unanswered)");
      } else if (!request.stopVip) {
        throw refused(`${self} holds the VIP and ${peer} cannot take it (${peerProblem}); nothing was stopped`, "fix the peer first (mnha status), or pass -stopvip to stop anyway and give the VIP up (the VIP will be unanswered)");
      }
      vipReleased = handedTo === null;
    }
    const stopped = { since: this.host.wallNow(), by: request.by, keepUi: request.keepUi };
    await this.persist({ ...this.state, stopped });
    this.host.services.holdRestores(STOPPED_HOLD, targets.map((s) => s.name));
    this.host.feedCore({ kind: "node-stopped", on: true });
    this.broadcast();
    const commands: CommandOutcome[] = [];
    for (const service of targets) commands.push(await this.runServiceCommand(service, "stop", service.stop as string[]));
    const failed = commands.filter((c) => !c.ok);
    const skipped = this.host.loaded.config.services.filter((s) => s.stop === undefined).map((s) => s.name);
    const vip = handedTo ? `VIP handed to ${handedTo}; ` : vipReleased ? "VIP given up (no healthy peer, -stopvip); " : "";
    const message = `${vip}${failed.length === 0 ? `stopped ${commands.map((c) => c.name).join(", ") || "nothing (no stop commands configured)"}` : `FAILED to stop ${failed.map((c) => c.name).join(", ")}`}${skipped.length > 0 ? `; left running (no stop command): ${skipped.join(", ")}` : ""}; the agent does not restore them until mnha start-node`;
    this.host.record("node.stopped", message, { by: request.by, handedTo, vipReleased, ok: failed.length === 0 }, failed.length === 0 ? "info" : "error");
    return { ok: failed.length === 0, message, handedTo, vipReleased, commands };
  }

  private async doStartNode(request: { by: string; dbCatchUpTimeoutMs?: number }): Promise<StartNodeResult> {
    const { self } = this.host;
    const wasStopped = this.state.stopped;
    this.host.record("operator.start-node", `start-node asked by ${request.by}${wasStopped ? "" : " (the node was not stopped)"}`, { by: request.by, wasStopped: wasStopped !== null });
    const unhealthy = new Set(this.host.services.statuses().filter((s) => !s.healthy).map((s) => s.name));
    const commands: CommandOutcome[] = [];
    for (const service of this.host.loaded.config.services) {
      const command = service.start ?? service.restore?.command;
      // Start only what is down: starting a running service is not always harmless.
      if (!command || !unhealthy.has(service.name)) continue;
      commands.push(await this.runServiceCommand(service, "start", command));
    }
    // Give the started services their checks before restores may act again (calm start).
    const started = commands.filter((c) => c.ok).map((c) => c.name);
    const deadline = performance.now() + START_HEALTHY_WAIT_MS;
    while (started.length > 0 && performance.now() < deadline) {
      const statuses = this.host.services.statuses();
      if (started.every((name) => statuses.find((s) => s.name === name)?.healthy === true)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const failed = commands.filter((c) => !c.ok);
    const startedText = failed.length === 0 ? `started ${commands.map((c) => c.name).join(", ") || "nothing (all services were up)"}` : `FAILED to start ${failed.map((c) => c.name).join(", ")}`;
    // The database catches up before the node may hold the VIP again (it stays stopped meanwhile).
    const db = await this.waitForDatabase(request.dbCatchUpTimeoutMs ?? START_DB_CATCH_UP_DEFAULT_MS);
    this.host.services.releaseRestores(STOPPED_HOLD);
    if (db.outcome === "behind") {
      const stays = wasStopped ? `${self} stays stopped (not eligible to hold the VIP)` : `${self} was not stopped: the election's own lag rule (db.maxLagForFailoverMs) decides its eligibility`;
      const message = `${startedText}; the database did NOT catch up within ${Math.round(db.waitedMs / 1000)} s: ${db.detail}; ${stays}. Check replication (mnha db status); if it is broken or diverged, repair it with mnha db resync; then run mnha start-node again`;
      this.host.record("node.start-db-behind", message, { by: request.by, detail: db.detail, waitedMs: db.waitedMs, lagSeconds: db.lagSeconds, transactionsBehind: db.transactionsBehind }, "warn");
      return { ok: false, message, commands, db };
    }
    await this.persist({ ...this.state, stopped: null });
    this.host.feedCore({ kind: "node-stopped", on: false });
    this.broadcast();
    const message = `${startedText}; ${db.detail}; ${self} may hold the VIP again once healthy`;
    this.host.record("node.started", message, { by: request.by, ok: failed.length === 0, db: db.outcome, dbWaitedMs: db.waitedMs }, failed.length === 0 ? "info" : "error");
    return { ok: failed.length === 0, message, commands, db };
  }

  /** Waits (bounded) until the local database has caught up with the peer's; says why it did not wait. */
  private async waitForDatabase(timeoutMs: number): Promise<NonNullable<StartNodeResult["db"]>> {
    const ask = this.host.dbCatchUp;
    const startedAt = performance.now();
    const result = (outcome: NonNullable<StartNodeResult["db"]>["outcome"], detail: string, state: CatchUpState | null = null): NonNullable<StartNodeResult["db"]> => ({
      outcome,
      detail,
      waitedMs: Math.round(performance.now() - startedAt),
      lagSeconds: state?.lagSeconds ?? null,
      transactionsBehind: state?.transactionsBehind ?? null,
    });
    if (!ask) return result("not-configured", "no database configured (db.enabled is false): not waiting for a catch-up");
    if (this.host.election().role === "holder") return result("not-needed", "this node holds the VIP: its database is the source, nothing to catch up");
    let last: CatchUpState | null = null;
    for (;;) {
      const view = await ask.call(this.host);
      if (!view.configured) return result("not-configured", "no database configured (db.enabled is false): not waiting for a catch-up");
      if (!view.peerAlive) return result("peer-unreachable", `${this.host.peer} is not reachable: the database's catch-up cannot be checked, not waiting (the election's own rules apply)`);
      last = view.state;
      if (last.caughtUp) return result("caught-up", `database ${last.detail}`, last);
      if (performance.now() - startedAt >= timeoutMs) return result("behind", last.detail, last);
      await new Promise((resolve) => setTimeout(resolve, START_DB_POLL_MS));
    }
  }

  /** The services stop-node stops: those with a stop command, the UI kept with -keepui. */
  private stoppableServices(keepUi: boolean): ServiceConfig[] {
    return this.host.loaded.config.services.filter((s) => s.stop !== undefined && !(keepUi && s.name === "ui"));
  }

  private async runServiceCommand(service: ServiceConfig, verb: "stop" | "start", command: readonly string[]): Promise<CommandOutcome> {
    const timeoutMs = service.restore?.timeoutMs ?? DEFAULT_SERVICE_COMMAND_TIMEOUT_MS;
    const result = await runCommand(actionArgv(command, { kind: verb, name: service.name, timeoutMs }), { timeoutMs, killGraceMs: 2_000 });
    const ok = result.exitCode === 0;
    const detail = describeCommandResult(command, result, timeoutMs);
    this.host.record(`service.${verb}`, `${verb} ${service.name} ${ok ? "succeeded" : "FAILED"}: ${detail}`, { service: service.name, command: [...command], ok, detail }, ok ? "info" : "error");
    return { name: service.name, command: [...command], ok, detail };
  }

  // ---- collect-log ----------------------------------------------------------------------------

  async collect(request: { sinceMs?: number; by: string }): Promise<CollectResult> {
    const sinceMs = request.sinceMs ?? this.host.wallNow() - 86_400_000;
    const files = await collectNodePart({ loaded: this.host.loaded, statusJson: () => this.host.statusJson(), sinceMs });
    let peer: CollectResult["peer"];
    try {
      const reply = await this.askPeer({ action: "collect", by: request.by, reason: "collect-log", sinceMs }, COLLECT_ANSWER_TIMEOUT_MS);
      peer = reply.ok && reply.files ? { node: this.host.peer, files: reply.files } : { node: this.host.peer, missing: `${this.host.peer} could not collect its part: ${reply.message}` };
    } catch (error) {
      peer = { node: this.host.peer, missing: error instanceof Error ? error.message : String(error) };
    }
    this.host.record("operator.collect-log", `collect-log by ${request.by}: ${files.length} files here; peer part ${"files" in peer ? `${peer.files.length} files` : `missing (${peer.missing})`}`, { by: request.by });
    return { self: { node: this.host.self, files }, peer };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async persist(next: OpsStatus): Promise<void> {
    try {
      await this.file.save(next);
    } catch (error) {
      throw new MnhaError("OPERATION_FAILED", `cannot save the operator state to ${this.file.path} (${(error as NodeJS.ErrnoException).code ?? String(error)}); nothing was changed`, {
        hint: "check that the data dir is writable and the disk is not full",
      });
    }
    this.state = next;
  }

  private serial<T>(action: () => Promise<T>): Promise<T> {
    const run = this.busy.then(action, action);
    this.busy = run.catch(() => undefined);
    return run;
  }
}

function describeMaintenance(result: MaintenanceResult): string {
  return `${result.message}${result.hook ? `; hook ${result.hook.name} ${result.hook.ok ? "ok" : `FAILED: ${result.hook.detail}`}` : ""}`;
}

function peerNotConnected(peer: string): MnhaError {
  return new MnhaError("PEER_NOT_CONNECTED", `the peer ${peer} is not connected: nothing was changed`, { hint: `run the command on ${peer} itself, or use --node this` });
}

function refused(message: string, hint: string): MnhaError {
  return new MnhaError("OPERATION_REFUSED", message, { hint });
}
