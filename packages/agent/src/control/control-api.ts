/**
 * The shape of the local control API, shared by the server and the client: its routes,
 * its request limits, and how an error code travels over HTTP and back.
 */
import { MnhaError, type ErrorCode } from "@mnha/shared";
import { z } from "zod";

export const CONTROL_API_PREFIX = "/v1";

export const CONTROL_ROUTES = {
  status: { method: "GET", path: "/v1/status" },
  version: { method: "GET", path: "/v1/version" },
  events: { method: "GET", path: "/v1/events" },
  failovers: { method: "GET", path: "/v1/failovers" },
  metrics: { method: "GET", path: "/v1/metrics" },
  demote: { method: "POST", path: "/v1/demote" },
  maintenance: { method: "POST", path: "/v1/maintenance" },
  stopNode: { method: "POST", path: "/v1/stop-node" },
  startNode: { method: "POST", path: "/v1/start-node" },
  collect: { method: "POST", path: "/v1/collect" },
  dbReseedPeer: { method: "POST", path: "/v1/db-reseed-peer" },
  planEvent: { method: "POST", path: "/v1/plan-event" },
} as const;

export type ControlRouteName = keyof typeof CONTROL_ROUTES;

/** Requests are tiny JSON objects; anything bigger is a mistake or an attack. */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;
/** Replies are bounded too (events are limited), so a confused server cannot flood the CLI. */
export const MAX_RESPONSE_BODY_BYTES = 16 * 1024 * 1024;

export const MAX_EVENTS_LIMIT = 10_000;
export const MAX_DEMOTE_TIMEOUT_MS = 600_000;

export const DemoteRequestSchema = z.strictObject({
  timeoutMs: z.number().int().min(1).max(MAX_DEMOTE_TIMEOUT_MS).optional(),
});

/** Who asked (the CLI passes its uid and user; the socket is root-only, so this is an audit hint). */
const operatorSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.@:() -]+$/, "a user name");
const reasonSchema = z.string().max(500);

export const MaintenanceRequestSchema = z.strictObject({
  on: z.boolean(),
  node: z.enum(["this", "peer", "both"]).default("this"),
  reason: reasonSchema.default(""),
  by: operatorSchema.default("unknown"),
  /** Only with on: true: while in maintenance, also stop or start the MN services (UI and database kept). */
  services: z.enum(["stop", "start"]).optional(),
});
export type MaintenanceRequest = z.infer<typeof MaintenanceRequestSchema>;

export const StopNodeRequestSchema = z.strictObject({
  keepUi: z.boolean().default(false),
  stopVip: z.boolean().default(false),
  by: operatorSchema.default("unknown"),
});
export type StopNodeRequest = z.infer<typeof StopNodeRequestSchema>;

export const StartNodeRequestSchema = z.strictObject({
  by: operatorSchema.default("unknown"),
  /** Bound on the wait for the local database to catch up with the peer's (default 300 s). */
  dbCatchUpTimeoutMs: z.number().int().min(1_000).max(86_400_000).optional(),
});
export type StartNodeRequest = z.infer<typeof StartNodeRequestSchema>;

export const CollectRequestSchema = z.strictObject({
  sinceMs: z.number().int().min(0).optional(),
  by: operatorSchema.default("unknown"),
});
export type CollectRequest = z.infer<typeof CollectRequestSchema>;

/** mnha restore on the VIP holder: the peer copies this node's database (pair in maintenance). */
export const DbReseedPeerRequestSchema = z.strictObject({
  by: operatorSchema.default("unknown"),
});

const epochMs = z.coerce.number().int().min(0).max(8_640_000_000_000_000);
const nodeFilter = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "a node name");

export const EventsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_EVENTS_LIMIT).optional(),
  type: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, "an event type of 1-64 letters, digits, '.', '_', ':' or '-'")
    .optional(),
  since: epochMs.optional(),
  until: epochMs.optional(),
  node: nodeFilter.optional(),
  service: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "a service name").optional(),
});

export const FailoversQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_EVENTS_LIMIT).optional(),
  since: epochMs.optional(),
  until: epochMs.optional(),
});

export const MetricsQuerySchema = z.strictObject({
  since: epochMs.optional(),
  until: epochMs.optional(),
  node: nodeFilter.optional(),
  series: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "a series name or prefix").optional(),
});

/** Drops undefined values so optional fields stay absent. */
export function definedOnly<T extends Record<string, unknown>>(value: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** The error body every failed request carries. */
export interface ControlErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; fields?: Record<string, unknown> };
}

const KNOWN_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "CONFIG_NOT_FOUND",
  "CONFIG_UNREADABLE",
  "CONFIG_SYNTAX",
  "CONFIG_INVALID",
  "SECRET_UNREADABLE",
  "SECRET_INSECURE",
  "CONTROL_UNREACHABLE",
  "CONTROL_PERMISSION",
  "CONTROL_REQUEST",
  "NOT_HOLDER",
  "NO_ELIGIBLE_PEER",
  "SWITCHOVER_FAILED",
  "KEEPALIVED_CONFIG",
  "KEEPALIVED_START",
  "USAGE",
  "PEER_NOT_CONNECTED",
  "PEER_TOO_OLD",
  "OPERATION_REFUSED",
  "OPERATION_FAILED",
  "INTERNAL",
]);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && KNOWN_ERROR_CODES.has(value);
}

/** The HTTP status for an error a handler threw. Refusals are conflicts with the HA state. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case "CONTROL_REQUEST":
    case "USAGE":
      return 400;
    case "CONTROL_PERMISSION":
      return 403;
    case "NOT_HOLDER":
    case "NO_ELIGIBLE_PEER":
    case "SWITCHOVER_FAILED":
    case "OPERATION_REFUSED":
    case "PEER_NOT_CONNECTED":
    case "PEER_TOO_OLD":
      return 409;
    default:
      return 500;
  }
}

export function errorBody(error: MnhaError): ControlErrorBody {
  const fields = Object.keys(error.fields).length > 0 ? { fields: error.fields } : {};
  return { error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}), ...fields } };
}

/** Rebuilds the MnhaError a server sent; an unknown code becomes CONTROL_REQUEST. */
export function errorFromBody(body: unknown, httpStatus: number): MnhaError {
  const error = (body as Partial<ControlErrorBody> | null)?.error;
  if (error && typeof error.message === "string") {
    const code = isErrorCode(error.code) ? error.code : "CONTROL_REQUEST";
    const fields = error.fields && typeof error.fields === "object" ? error.fields : {};
    return new MnhaError(code, error.message, { ...(typeof error.hint === "string" ? { hint: error.hint } : {}), fields: { ...fields, httpStatus } });
  }
  return new MnhaError("CONTROL_REQUEST", `the mnha agent answered HTTP ${httpStatus} without an error description`, {
    hint: "check that the CLI and the agent are the same version (mnha version)",
    fields: { httpStatus },
  });
}
