/**
 * The local control API: HTTP/1.1 with JSON bodies over a root-only Unix socket. The CLI is
 * a thin client of it, so every operator command can also be scripted.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { MnhaError, type Logger } from "@mnha/shared";
import type { ControlHandlers, Startable } from "../contracts.js";
import {
  CONTROL_ROUTES,
  DemoteRequestSchema,
  MaintenanceRequestSchema,
  StopNodeRequestSchema,
  StartNodeRequestSchema,
  CollectRequestSchema,
  DbReseedPeerRequestSchema,
  EventsQuerySchema,
  FailoversQuerySchema,
  MetricsQuerySchema,
  definedOnly,
  MAX_REQUEST_BODY_BYTES,
  errorBody,
  httpStatusFor,
  type ControlRouteName,
} from "./control-api.js";
import { ensurePrivateSocketDir, removeStaleSocket } from "./socket-file.js";
import { PLAN_STEP_EVENT_TYPES, PlanStepEventSchema } from "../plan/plan-audit.js";

export interface ControlServerOptions {
  socketPath: string;
  handlers: ControlHandlers;
  logger: Logger;
  /** Defaults to MAX_REQUEST_BODY_BYTES (64 KiB). */
  maxBodyBytes?: number;
}

/** A failure with the HTTP status to answer it with. */
class RequestFailure {
  constructor(
    readonly status: number,
    readonly error: MnhaError,
    readonly headers: Record<string, string> = {},
  ) {}
}

export class ControlServer implements Startable {
  private readonly socketPath: string;
  private readonly handlers: ControlHandlers;
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private server: Server | null = null;
  /** Identity of the socket file we created, so stop() never removes someone else's. */
  private socketIdentity: { dev: number; ino: number } | null = null;
  private readonly connections = new Set<Socket>();
  /** The socket file was found removed and listening again has not yet succeeded. */
  private relistenWanted = false;

  constructor(options: ControlServerOptions) {
    this.socketPath = options.socketPath;
    this.handlers = options.handlers;
    this.logger = options.logger.child({ component: "control" });
    this.maxBodyBytes = options.maxBodyBytes ?? MAX_REQUEST_BODY_BYTES;
  }

  async start(): Promise<void> {
    if (this.server) return;
    ensurePrivateSocketDir(this.socketPath);
    const stale = await removeStaleSocket(this.socketPath);
    if (stale === "removed") this.logger.warn({ socketPath: this.socketPath }, "removed a stale control socket left by a previous agent");

    const server = createServer((request, response) => void this.handle(request, response));
    // Bounded work per client: a slow or silent client cannot hold the server.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.maxConnections = 64;
    server.on("connection", (socket: Socket) => {
      this.connections.add(socket);
      socket.once("close", () => this.connections.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.off("listening", onListening);
        reject(
          error.code === "EADDRINUSE"
            ? new MnhaError("USAGE", `another mnha agent is already listening on ${this.socketPath}`, {
                hint: "stop it first (systemctl stop mnha), or give this agent another controlSocket in its config",
                fields: { socketPath: this.socketPath },
              })
            : new MnhaError("CONTROL_PERMISSION", `cannot listen on ${this.socketPath} (${error.code ?? error.message})`, {
                hint: "run the agent as root, and check controlSocket in the config",
                fields: { socketPath: this.socketPath },
              }),
        );
      };
      const onListening = (): void => {
        server.off("error", onError);
        resolve();
      };
      server.once("error", onError);
      server.once("listening", onListening);
      server.listen(this.socketPath);
    });
    try {
      chmodSync(this.socketPath, 0o600);
      const stats = lstatSync(this.socketPath);
      this.socketIdentity = { dev: stats.dev, ino: stats.ino };
    } catch (error) {
      await closeServer(server, this.connections);
      throw new MnhaError("CONTROL_PERMISSION", `cannot restrict ${this.socketPath} to root (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
        hint: "run the agent as root",
        fields: { socketPath: this.socketPath },
      });
    }
    server.on("error", (error) => this.logger.error({ err: error }, "control server error"));
    this.server = server;
    this.logger.info({ socketPath: this.socketPath }, "control API listening");
  }

  /**
   * Listens again when the socket file was removed by hand (`rm /run/mnha/mnha.sock`, a cleanup
   * of /run): the listener would go on with no name, and every `mnha` command would say the
   * agent is not running while it runs. Only a missing path is repaired; a path that names
   * something else is left alone. Connections in progress finish on the old listener.
   * Resolves true when it listened again; rejects when it could not (and tries again at the
   * next call).
   */
  async keepSocketFile(): Promise<boolean> {
    if (!this.relistenWanted) {
      const server = this.server;
      if (!server || this.socketIdentity === null) return false;
      try {
        lstatSync(this.socketPath);
        return false;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") return false;
      }
      this.server = null;
      this.socketIdentity = null;
      server.close();
      this.relistenWanted = true;
    }
    await this.start();
    this.relistenWanted = false;
    return true;
  }

  async stop(): Promise<void> {
    this.relistenWanted = false;
    const server = this.server;
    if (!server) return;
    this.server = null;
    await closeServer(server, this.connections);
    this.removeOwnSocketFile();
    this.logger.info({ socketPath: this.socketPath }, "control API stopped");
  }

  private removeOwnSocketFile(): void {
    const identity = this.socketIdentity;
    this.socketIdentity = null;
    if (!identity) return;
    try {
      const stats = lstatSync(this.socketPath);
      if (stats.dev === identity.dev && stats.ino === identity.ino) unlinkSync(this.socketPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.logger.warn({ err: error, socketPath: this.socketPath }, "could not remove the control socket");
    }
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = request.method ?? "GET";
    const url = new URL(request.url ?? "/", "http://mnha.local");
    let route: ControlRouteName | null = null;
    try {
      route = matchRoute(method, url.pathname);
      const result = await this.dispatch(route, request, url);
      send(response, 200, result);
      this.logger.info({ method, route: url.pathname, status: 200, result: describeResult(route, result), tookMs: Math.round(performance.now() - started) }, "operator command");
    } catch (thrown) {
      const failure = toFailure(thrown);
      send(response, failure.status, errorBody(failure.error), failure.headers);
      const level = failure.status >= 500 ? "error" : "warn";
      this.logger[level](
        {
          method,
          route: url.pathname,
          status: failure.status,
          result: failure.error.code,
          message: failure.error.message,
          ...(failure.status >= 500 && !(thrown instanceof MnhaError) ? { err: thrown } : {}),
          tookMs: Math.round(performance.now() - started),
        },
        "operator command failed",
      );
    }
  }

  private async dispatch(route: ControlRouteName, request: IncomingMessage, url: URL): Promise<unknown> {
    switch (route) {
      case "status":
        request.resume();
        return await this.handlers.status();
      case "version":
        request.resume();
        return this.handlers.version();
      case "events": {
        request.resume();
        const query = EventsQuerySchema.safeParse(Object.fromEntries(url.searchParams));
        if (!query.success) throw badRequest(`invalid query for ${url.pathname}: ${summarizeIssues(query.error.issues)}`, "use ?limit=N (1-10000), ?type=TYPE, ?since=MS, ?until=MS, ?node=NAME, ?service=NAME");
        const q = query.data;
        return { events: await this.handlers.events(definedOnly({ limit: q.limit, type: q.type, sinceMs: q.since, untilMs: q.until, node: q.node, service: q.service })) };
      }
      case "failovers": {
        request.resume();
        const query = FailoversQuerySchema.safeParse(Object.fromEntries(url.searchParams));
        if (!query.success) throw badRequest(`invalid query for ${url.pathname}: ${summarizeIssues(query.error.issues)}`, "use ?limit=N, ?since=MS, ?until=MS");
        const q = query.data;
        return { failovers: await this.handlers.failovers(definedOnly({ limit: q.limit, sinceMs: q.since, untilMs: q.until })) };
      }
      case "metrics": {
        request.resume();
        const query = MetricsQuerySchema.safeParse(Object.fromEntries(url.searchParams));
        if (!query.success) throw badRequest(`invalid query for ${url.pathname}: ${summarizeIssues(query.error.issues)}`, "use ?since=MS, ?until=MS, ?node=NAME, ?series=PREFIX");
        const q = query.data;
        return await this.handlers.metrics(definedOnly({ sinceMs: q.since, untilMs: q.until, node: q.node, series: q.series }));
      }
      case "demote": {
        const body = await readJsonBody(request, this.maxBodyBytes);
        const parsed = DemoteRequestSchema.safeParse(body ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {} or {"timeoutMs": N} with N in milliseconds');
        return await this.handlers.demote(parsed.data.timeoutMs === undefined ? {} : { timeoutMs: parsed.data.timeoutMs });
      }
      case "maintenance": {
        const parsed = MaintenanceRequestSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {"on": true|false, "node": "this"|"peer"|"both", "reason": TEXT, "by": USER}');
        return await requireHandler(this.handlers.maintenance, "maintenance")(parsed.data);
      }
      case "stopNode": {
        const parsed = StopNodeRequestSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {"keepUi": BOOL, "stopVip": BOOL, "by": USER}');
        return await requireHandler(this.handlers.stopNode, "stop-node")(parsed.data);
      }
      case "startNode": {
        const parsed = StartNodeRequestSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {"by": USER}');
        return await requireHandler(this.handlers.startNode, "start-node")(parsed.data);
      }
      case "collect": {
        const parsed = CollectRequestSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {"sinceMs": MS, "by": USER}');
        const q = parsed.data;
        return await requireHandler(this.handlers.collect, "collect")(q.sinceMs === undefined ? { by: q.by } : { sinceMs: q.sinceMs, by: q.by });
      }
      case "planEvent": {
        const parsed = PlanStepEventSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, `send {"type": ${PLAN_STEP_EVENT_TYPES.join("|")}, "plan", "step", "node", "title", ...}`);
        return await requireHandler(this.handlers.planEvent, "plan-event")(parsed.data);
      }
      case "dbReseedPeer": {
        const parsed = DbReseedPeerRequestSchema.safeParse((await readJsonBody(request, this.maxBodyBytes)) ?? {});
        if (!parsed.success) throw badRequest(`invalid body for ${url.pathname}: ${summarizeIssues(parsed.error.issues)}`, 'send {"by": USER}');
        return await requireHandler(this.handlers.dbReseedPeer, "db-reseed-peer")(parsed.data);
      }
    }
  }
}

/** An optional handler, or a clear error when this agent does not offer the operation. */
function requireHandler<A, R>(handler: ((request: A) => Promise<R>) | undefined, name: string): (request: A) => Promise<R> {
  if (handler) return handler;
  throw new RequestFailure(404, new MnhaError("CONTROL_REQUEST", `this agent does not offer ${name}`, { hint: "update the agent to the CLI's version (mnha version)" }));
}

function matchRoute(method: string, pathname: string): ControlRouteName {
  const byPath = (Object.keys(CONTROL_ROUTES) as ControlRouteName[]).find((name) => CONTROL_ROUTES[name].path === pathname);
  if (!byPath) {
    const known = Object.values(CONTROL_ROUTES).map((r) => `${r.method} ${r.path}`);
    throw new RequestFailure(
      404,
      new MnhaError("CONTROL_REQUEST", `no such control API route: ${method} ${pathname}`, { hint: `the routes are: ${known.join(", ")}`, fields: { method, path: pathname } }),
    );
  }
  const expected = CONTROL_ROUTES[byPath].method;
  if (method !== expected) {
    throw new RequestFailure(
      405,
      new MnhaError("CONTROL_REQUEST", `${pathname} does not accept ${method}`, { hint: `use ${expected} ${pathname}`, fields: { method, path: pathname } }),
      { allow: expected },
    );
  }
  return byPath;
}

/** Reads at most maxBytes of body and parses it as JSON; an empty body is undefined. */
function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"] ?? "0");
    if (Number.isFinite(declared) && declared > maxBytes) {
      request.resume();
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    request.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        chunks.length = 0;
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    request.on("error", (error) => {
      if (done) return;
      done = true;
      reject(badRequest(`the request body could not be read (${error.message})`, "retry the command"));
    });
    request.on("end", () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (text === "") {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(badRequest(`the request body is not valid JSON (${(error as Error).message})`, "send a JSON object such as {}"));
      }
    });
  });
}

function tooLarge(maxBytes: number): RequestFailure {
  return new RequestFailure(
    413,
    new MnhaError("CONTROL_REQUEST", `the request body is larger than ${maxBytes} bytes`, { hint: "control requests are small JSON objects; send only the documented fields", fields: { maxBytes } }),
    // The rest of the body is not read: close the connection after answering.
    { connection: "close" },
  );
}

function badRequest(message: string, hint: string): RequestFailure {
  return new RequestFailure(400, new MnhaError("CONTROL_REQUEST", message, { hint }));
}

function toFailure(thrown: unknown): RequestFailure {
  if (thrown instanceof RequestFailure) return thrown;
  if (thrown instanceof MnhaError) return new RequestFailure(httpStatusFor(thrown.code), thrown);
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return new RequestFailure(
    500,
    new MnhaError("INTERNAL", `the mnha agent failed to answer: ${message}`, { hint: "see the agent's log (journalctl -u mnha) for details" }),
  );
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers });
  response.end(text);
}

function summarizeIssues(issues: { path: PropertyKey[]; message: string }[]): string {
  return issues.map((issue) => `${issue.path.map(String).join(".") || "(body)"}: ${issue.message}`).join("; ");
}

/** What the log keeps of a successful answer: enough to audit, never the whole report. */
function describeResult(route: ControlRouteName, result: unknown): unknown {
  if (route === "demote") {
    const r = result as { ok?: unknown; from?: unknown; to?: unknown; epoch?: unknown; message?: unknown };
    return { ok: r.ok, from: r.from, to: r.to, epoch: r.epoch, message: r.message };
  }
  if (route === "maintenance" || route === "stopNode" || route === "startNode") {
    const r = result as { ok?: unknown; on?: unknown; changed?: unknown; message?: unknown };
    return { ok: r.ok, on: r.on, changed: r.changed, message: r.message };
  }
  if (route === "dbReseedPeer") {
    const r = result as { ok?: unknown; node?: unknown; message?: unknown };
    return { ok: r.ok, node: r.node, message: r.message };
  }
  if (route === "collect") return { files: ((result as { self?: { files?: unknown[] } }).self?.files ?? []).length };
  if (route === "events") return { count: (result as { events: unknown[] }).events.length };
  if (route === "failovers") return { count: (result as { failovers: unknown[] }).failovers.length };
  return "ok";
}

async function closeServer(server: Server, connections: Set<Socket>): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
    for (const socket of connections) socket.destroy();
  });
}
