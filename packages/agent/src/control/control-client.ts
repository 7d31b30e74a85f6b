/**
 * The CLI's side of the control API: one short HTTP request per call over the agent's Unix
 * socket, every failure turned into an MnhaError that says what to do.
 */
import { request as httpRequest } from "node:http";
import { MnhaError } from "@mnha/shared";
import type { CollectResult, DbReseedPeerResult, MaintenanceResult, StartNodeResult, StopNodeResult, DemoteResult, EventQuery, FailoverRecord, HaEvent, MetricsReport, StatusReport } from "../contracts.js";
import type { PlanStepEvent } from "../plan/plan-audit.js";
import { CONTROL_ROUTES, MAX_RESPONSE_BODY_BYTES, errorFromBody, type ControlRouteName } from "./control-api.js";

export interface ControlClientOptions {
  socketPath: string;
  /** Per-request limit; demote waits at least its own timeout plus a margin. */
  timeoutMs?: number;
}

export interface AgentVersion {
  version: string;
  protocol: number;
  node: string;
  /** The peer protocol versions the agent offers, and the one negotiated with the peer (older agents: absent). */
  offered?: number[];
  negotiated?: number | null;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** How much longer than the switchover itself the CLI waits for the agent's answer. */
const DEMOTE_ANSWER_MARGIN_MS = 5_000;

export class ControlClient {
  private readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(options: ControlClientOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  status(): Promise<StatusReport> {
    return this.call<StatusReport>("status");
  }

  version(): Promise<AgentVersion> {
    return this.call<AgentVersion>("version");
  }

  async events(options: EventQuery = {}): Promise<HaEvent[]> {
    const query = toQuery({ limit: options.limit, type: options.type, since: options.sinceMs, until: options.untilMs, node: options.node, service: options.service });
    const reply = await this.call<{ events?: unknown }>("events", { query });
    if (!Array.isArray(reply.events)) throw malformedReply("events", "no events list");
    return reply.events as HaEvent[];
  }

  async failovers(options: { sinceMs?: number; untilMs?: number; limit?: number } = {}): Promise<FailoverRecord[]> {
    const reply = await this.call<{ failovers?: unknown }>("failovers", { query: toQuery({ limit: options.limit, since: options.sinceMs, until: options.untilMs }) });
    if (!Array.isArray(reply.failovers)) throw malformedReply("failovers", "no failovers list");
    return reply.failovers as FailoverRecord[];
  }

  async metrics(options: { sinceMs?: number; untilMs?: number; node?: string; series?: string } = {}): Promise<MetricsReport> {
    const reply = await this.call<MetricsReport>("metrics", { query: toQuery({ since: options.sinceMs, until: options.untilMs, node: options.node, series: options.series }) });
    if (!Array.isArray(reply.summaries)) throw malformedReply("metrics", "no summaries");
    return reply;
  }

  demote(options: { timeoutMs?: number } = {}): Promise<DemoteResult> {
    // The switchover has its own deadline in the agent (handoffTimeoutMs when none is given).
    const waitMs = Math.max(this.timeoutMs, (options.timeoutMs ?? 60_000) + DEMOTE_ANSWER_MARGIN_MS);
    const body = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    return this.call<DemoteResult>("demote", { body, timeoutMs: waitMs });
  }

  maintenance(request: { on: boolean; node: "this" | "peer" | "both"; reason: string; by: string; services?: "stop" | "start" }): Promise<MaintenanceResult> {
    // Hooks may take their time (maintenance.hookTimeoutMs, default 30 s), on both nodes.
    // Stopping or starting services waits for them too (up to each service's timeout, on both nodes).
    return this.call<MaintenanceResult>("maintenance", { body: request, timeoutMs: Math.max(this.timeoutMs, request.services === undefined ? 150_000 : 900_000) });
  }

  stopNode(request: { keepUi: boolean; stopVip: boolean; by: string }): Promise<StopNodeResult> {
    return this.call<StopNodeResult>("stopNode", { body: request, timeoutMs: Math.max(this.timeoutMs, 300_000) });
  }

  startNode(request: { by: string; dbCatchUpTimeoutMs?: number }): Promise<StartNodeResult> {
    // Services (up to a minute each) and then the database's catch-up.
    return this.call<StartNodeResult>("startNode", { body: request, timeoutMs: Math.max(this.timeoutMs, 300_000, (request.dbCatchUpTimeoutMs ?? 0) + 300_000) });
  }

  collect(request: { sinceMs?: number; by: string }): Promise<CollectResult> {
    return this.call<CollectResult>("collect", { body: request, timeoutMs: Math.max(this.timeoutMs, 60_000) });
  }

  /** Waits for the peer's copy (bounded by the agent: RESEED_ANSWER_TIMEOUT_MS), with a margin. */
  dbReseedPeer(request: { by: string }): Promise<DbReseedPeerResult> {
    return this.call<DbReseedPeerResult>("dbReseedPeer", { body: request, timeoutMs: Math.max(this.timeoutMs, 3_660_000) });
  }

  /** Records a plan step's audit event (upgrade-ha, upgrade-mn); short: the CLI does not wait for a restarting agent. */
  planEvent(event: PlanStepEvent): Promise<{ seq: number }> {
    return this.call<{ seq: number }>("planEvent", { body: event });
  }

  private call<T>(routeName: ControlRouteName, options: { query?: URLSearchParams; body?: unknown; timeoutMs?: number } = {}): Promise<T> {
    const route = CONTROL_ROUTES[routeName];
    const query = options.query && [...options.query.keys()].length > 0 ? `?${options.query.toString()}` : "";
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (error: MnhaError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        reject(error);
      };
      const request = httpRequest({
        socketPath: this.socketPath,
        method: route.method,
        path: `${route.path}${query}`,
        // One connection per call, closed after it: the CLI process exits right away.
        agent: false,
        headers: {
          accept: "application/json",
          connection: "close",
          ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }),
        },
      });
      const timer = setTimeout(
        () =>
          fail(
            new MnhaError("CONTROL_UNREACHABLE", `the mnha agent did not answer ${route.method} ${route.path} on ${this.socketPath} within ${timeoutMs} ms`, {
              hint: "check the agent's log (journalctl -u mnha); it may be overloaded or stuck",
              fields: { socketPath: this.socketPath, timeoutMs },
            }),
          ),
        timeoutMs,
      );
      request.on("error", (error: NodeJS.ErrnoException) => fail(controlConnectionError(this.socketPath, error)));
      request.on("response", (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BODY_BYTES) fail(malformedReply(routeName, `a reply larger than ${MAX_RESPONSE_BODY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on("error", (error: NodeJS.ErrnoException) => fail(controlConnectionError(this.socketPath, error)));
        response.on("end", () => {
          if (settled) return;
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            fail(malformedReply(routeName, `a reply that is not JSON (HTTP ${response.statusCode ?? "?"})`));
            return;
          }
          const status = response.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            fail(errorFromBody(body, status));
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(body as T);
        });
      });
      request.end(payload);
    });
  }
}

/** A failure to reach the control socket, in words an operator can act on. */
export function controlConnectionError(socketPath: string, error: NodeJS.ErrnoException): MnhaError {
  const errno = error.code ?? "error";
  if (errno === "EACCES" || errno === "EPERM") {
    return new MnhaError("CONTROL_PERMISSION", `permission denied on the mnha control socket ${socketPath}`, {
      hint: "run as root (for example: sudo mnha status)",
      fields: { socketPath, errno },
      cause: error,
    });
  }
  const detail = errno === "ENOENT" ? "no socket there" : errno === "ECONNREFUSED" ? "connection refused" : errno;
  return new MnhaError("CONTROL_UNREACHABLE", `the mnha agent is not running or not listening on ${socketPath} (${detail})`, {
    hint: "start it: systemctl start mnha, or pass --socket / --config",
    fields: { socketPath, errno },
    cause: error,
  });
}

function malformedReply(route: string, what: string): MnhaError {
  return new MnhaError("INTERNAL", `the mnha agent sent ${what} for ${route}`, {
    hint: "check that the CLI and the agent are the same version (mnha version), and see the agent's log",
    fields: { route },
  });
}

function toQuery(values: Record<string, string | number | undefined>): URLSearchParams {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined) query.set(key, String(value));
  return query;
}
