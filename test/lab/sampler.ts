/**
 * Runs the client samplers (sampler.mjs) inside the client namespace and collects their
 * records in memory and in a JSON-lines file.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { MnhaError, type Logger } from "@mnha/shared";
import type { HttpSample, Mark, SamplerRecord } from "./analysis.js";
import { HOST_INTERFACE, HOSTS, SAMPLER_SCRIPT, VIP_ADDRESS } from "./constants.js";
import { monoNow, sleep } from "./exec.js";

export interface ClientSamplerOptions {
  logger: Logger;
  /** JSON-lines copy of every record. */
  outFile: string;
  port?: number;
  httpIntervalMs?: number;
  httpTimeoutMs?: number;
  arpWindowMs?: number;
  arpPeriodMs?: number;
  /** The sampler stops by itself after this long (a leaked sampler never runs forever). */
  maxMs?: number;
  arpingPath?: string;
}

export class ClientSampler {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly collected: SamplerRecord[] = [];
  private stderr = "";
  private exited: Promise<void> | null = null;

  constructor(private readonly options: ClientSamplerOptions) {}

  async start(): Promise<void> {
    if (this.child) return;
    mkdirSync(dirname(this.options.outFile), { recursive: true });
    const o = this.options;
    const args = [
      "netns", "exec", HOSTS.client.namespace, process.execPath, SAMPLER_SCRIPT,
      "--vip", VIP_ADDRESS,
      "--port", String(o.port ?? 8080),
      "--iface", HOST_INTERFACE,
      "--arping", o.arpingPath ?? "arping",
      "--http-interval", String(o.httpIntervalMs ?? 50),
      "--http-timeout", String(o.httpTimeoutMs ?? 300),
      "--arp-window", String(o.arpWindowMs ?? 30),
      "--arp-period", String(o.arpPeriodMs ?? 40),
      "--max-ms", String(o.maxMs ?? 600_000),
    ];
    const child = spawn("ip", args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.exited = new Promise((resolveExit) => child.once("close", () => resolveExit()));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (this.stderr.length < 8192) this.stderr += chunk;
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let record: SamplerRecord;
      try {
        record = JSON.parse(line) as SamplerRecord;
      } catch {
        return;
      }
      this.collected.push(record);
      appendFileSync(this.options.outFile, `${line}\n`);
    });
    // Bounded wait for the first record: the sampler is running in the namespace.
    for (let i = 0; i < 100 && !this.collected.some((r) => r.kind === "start"); i++) {
      if (child.exitCode !== null) break;
      await sleep(20);
    }
    if (!this.collected.some((r) => r.kind === "start")) {
      await this.stop();
      throw new MnhaError("INTERNAL", `the client sampler did not start: ${this.stderr.trim() || "no output"}`, {
        hint: "the lab must be up (pnpm lab up) and iputils-arping installed",
      });
    }
    this.options.logger.debug({ processId: child.pid }, "client sampler started");
  }

  /** Records a point in time (on the samplers' clock) with a label, returns it. */
  mark(label: string): number {
    const t = monoNow();
    const mark: Mark = { kind: "mark", t, label };
    this.collected.push(mark);
    appendFileSync(this.options.outFile, `${JSON.stringify(mark)}\n`);
    return t;
  }

  records(): SamplerRecord[] {
    return [...this.collected];
  }

  /**
   * Waits (bounded) until `count` consecutive served requests came from `node` (any node
   * when null), sent after `since`. Returns the time of the first of them, or null.
   */
  async waitServedBy(node: string | null, options: { since: number; count?: number; timeoutMs: number }): Promise<HttpSample | null> {
    const count = options.count ?? 5;
    const deadline = monoNow() + options.timeoutMs;
    for (let round = 0; round < Math.ceil(options.timeoutMs / 50) + 1 && monoNow() < deadline; round++) {
      const http = this.collected.filter((r): r is HttpSample => r.kind === "http" && r.t >= options.since).sort((a, b) => a.t - b.t);
      let run = 0;
      for (const sample of http) {
        run = sample.ok && (node === null || sample.node === node) ? run + 1 : 0;
        if (run >= count) return http[http.indexOf(sample) - count + 1] ?? null;
      }
      await sleep(50);
    }
    return null;
  }

  async stop(): Promise<SamplerRecord[]> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      child.stdin.end();
      const timeout = sleep(3_000).then(() => "timeout" as const);
      if ((await Promise.race([this.exited, timeout])) === "timeout") {
        child.kill("SIGKILL");
        await Promise.race([this.exited, sleep(1_000)]);
      }
    }
    this.child = null;
    return this.records();
  }
}
