import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@mnha/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NewSample } from "../../src/contracts.js";
import { linuxSystemReaders, type SystemReaders } from "../../src/metrics/system-readers.js";
import { SystemSampler, seriesLabel, type SystemSamplerOptions } from "../../src/metrics/system-sampler.js";

let dir: string;
const samplers: SystemSampler[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mnha-sampler-"));
});
afterEach(async () => {
  for (const sampler of samplers.splice(0)) await sampler.stop();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function sampler(options: Partial<SystemSamplerOptions>): { sampler: SystemSampler; rounds: { atMs: number; samples: NewSample[] }[] } {
  const rounds: { atMs: number; samples: NewSample[] }[] = [];
  const s = new SystemSampler({
    intervalMs: 150,
    dataDir: dir,
    iface: "lo",
    logger: silentLogger(),
    onSamples: (samples) => rounds.push({ atMs: performance.now(), samples }),
    ...options,
  });
  samplers.push(s);
  return { sampler: s, rounds };
}

function values(samples: NewSample[]): Map<string, number> {
  return new Map(samples.map((s) => [s.series, s.value]));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(10);
  }
  return condition();
}

/** Pushes `bytes` through a TCP connection on 127.0.0.1 (traffic on lo). */
async function loopbackTraffic(server: Server, bytes: number): Promise<void> {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(Buffer.alloc(bytes, 7)));
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
}

/** Readers with no real IO: fixed figures, optionally slow or failing, counting overlap. */
function fakeReaders(overrides: Partial<SystemReaders> = {}): SystemReaders {
  let ticks = 0;
  let rx = 0;
  return {
    cpuTimes: async () => ((ticks += 100), { busy: ticks / 4, total: ticks }),
    loadAverage: async () => [0.5, 0.25, 0.125],
    memory: async () => ({ totalBytes: 1_000, availableBytes: 250 }),
    diskUsage: async (path) => ({ path, totalBytes: 100, usedBytes: 40, availableBytes: 50, usedPercent: (40 / 90) * 100 }),
    interfaceCounters: async () => ((rx += 1_000), { rxBytes: rx, txBytes: rx / 2 }),
    ...overrides,
  };
}

describe("SystemSampler on this machine", () => {
  it("samples CPU, load, memory, disks, traffic on lo and check latencies every interval", async () => {
    const sink = createServer((socket) => socket.resume().on("end", () => socket.end()));
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    try {
      const { sampler: s, rounds } = sampler({
        dataDir: join(dir, "not-created-yet", "mnha"),
        extraDirs: [tmpdir()],
        checkLatencies: () => [
          { service: "mn", latencyMs: 12.5, healthy: true },
          { service: "db", latencyMs: null, healthy: false },
        ],
      });
      await s.start();
      expect(await waitFor(() => rounds.length >= 1, 2_000)).toBe(true);
      await loopbackTraffic(sink, 4 * 1024 * 1024);
      expect(await waitFor(() => rounds.length >= 3, 3_000)).toBe(true);

      const first = values(rounds[0]!.samples);
      // The first round has no baseline for rates yet.
      expect(first.has("cpu.load_percent")).toBe(false);
      expect(first.has("net.lo.rx_bytes_per_s")).toBe(false);

      const second = values(rounds[1]!.samples);
      const cpu = second.get("cpu.load_percent");
      expect(cpu).toBeGreaterThanOrEqual(0);
      expect(cpu).toBeLessThanOrEqual(100);
      expect(second.get("load.1m")).toBeGreaterThanOrEqual(0);
      expect(second.has("load.5m") && second.has("load.15m")).toBe(true);
      const total = second.get("memory.total_bytes") ?? 0;
      expect(total).toBeGreaterThan(64 * 1024 * 1024);
      expect(second.get("memory.used_bytes")).toBeGreaterThan(0);
      expect(second.get("memory.used_bytes")).toBeLessThanOrEqual(total);
      for (const disk of ["data", seriesLabel(tmpdir())]) {
        expect(second.get(`disk.${disk}.used_percent`)).toBeGreaterThan(0);
        expect(second.get(`disk.${disk}.used_percent`)).toBeLessThanOrEqual(100);
        expect(second.get(`disk.${disk}.total_bytes`)).toBeGreaterThan(second.get(`disk.${disk}.used_bytes`) ?? Infinity);
      }
      // The 4 MiB sent over lo between the first and second round show up as traffic.
      expect(second.get("net.lo.rx_bytes_per_s")).toBeGreaterThan(4 * 1024 * 1024);
      expect(second.get("net.lo.tx_bytes_per_s")).toBeGreaterThan(4 * 1024 * 1024);
      expect(second.get("check.mn.latency_ms")).toBe(12.5);
      expect(second.get("check.mn.up")).toBe(1);
      expect(second.get("check.db.up")).toBe(0);
      expect(second.has("check.db.latency_ms")).toBe(false);
      for (const sample of rounds[1]!.samples) {
        expect(Number.isInteger(sample.wallMs)).toBe(true);
        expect(Math.abs(sample.wallMs - Date.now())).toBeLessThan(10_000);
      }
      // Rounds are an interval apart, not back to back.
      for (let i = 1; i < rounds.length; i++) expect(rounds[i]!.atMs - rounds[i - 1]!.atMs).toBeGreaterThan(100);
    } finally {
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });

  it("reads the real kernel figures and refuses an interface name that is not one", async () => {
    const cpu = await linuxSystemReaders.cpuTimes();
    expect(cpu.total).toBeGreaterThan(cpu.busy);
    const disk = await linuxSystemReaders.diskUsage(join(dir, "a", "b", "c"));
    expect(disk.path).toBe(dir);
    await expect(linuxSystemReaders.interfaceCounters("../../../etc")).rejects.toThrow(/not a network interface name/);
    await expect(linuxSystemReaders.interfaceCounters("mnha-absent0")).rejects.toThrow();
    expect(seriesLabel("/var/lib/mysql")).toBe("var_lib_mysql");
    expect(seriesLabel("/")).toBe("root");
    expect(seriesLabel("eth0.100")).toBe("eth0_100");
  });
});

describe("SystemSampler with fake readers", () => {
  it("never overlaps: a slow reading is skipped while busy, the others go on every round", async () => {
    let cpuCalls = 0;
    let cpuConcurrent = 0;
    let cpuMaxConcurrent = 0;
    let memoryConcurrent = 0;
    let memoryMaxConcurrent = 0;
    const readers = fakeReaders({
      cpuTimes: async () => {
        cpuCalls += 1;
        cpuConcurrent += 1;
        cpuMaxConcurrent = Math.max(cpuMaxConcurrent, cpuConcurrent);
        await sleep(400);
        cpuConcurrent -= 1;
        return { busy: cpuCalls * 10, total: cpuCalls * 40 };
      },
      memory: async () => {
        memoryConcurrent += 1;
        memoryMaxConcurrent = Math.max(memoryMaxConcurrent, memoryConcurrent);
        await sleep(30);
        memoryConcurrent -= 1;
        return { totalBytes: 1_000, availableBytes: 250 };
      },
    });
    const { sampler: s, rounds } = sampler({ intervalMs: 10, readTimeoutMs: 60, readers });
    await s.start();
    await sleep(1_000);
    await s.stop();
    expect(cpuMaxConcurrent).toBe(1);
    expect(memoryMaxConcurrent).toBe(1);
    // At most one cpu read per 400 ms, while rounds (each ≥ 30 ms, capped by the 60 ms timeout) went on.
    expect(cpuCalls).toBeLessThanOrEqual(4);
    expect(rounds.length).toBeGreaterThan(8);
    expect(rounds.every((r) => values(r.samples).get("memory.used_bytes") === 750)).toBe(true);
    expect(rounds.some((r) => values(r.samples).has("cpu.load_percent"))).toBe(false);
  });

  it("skips readings that fail, survives a throwing listener and check callback, and stops cleanly", async () => {
    let listenerCalls = 0;
    const readers = fakeReaders({
      diskUsage: async () => {
        throw new Error("EACCES");
      },
      interfaceCounters: async () => {
        throw new Error("no such interface");
      },
    });
    const rounds: NewSample[][] = [];
    const s = new SystemSampler({
      intervalMs: 20,
      dataDir: dir,
      iface: "eth9",
      logger: silentLogger(),
      readers,
      checkLatencies: () => {
        throw new Error("monitor not started");
      },
      onSamples: (samples) => {
        listenerCalls += 1;
        rounds.push(samples);
        if (listenerCalls === 1) throw new Error("store closed");
      },
    });
    samplers.push(s);
    const timeoutsBefore = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    await s.start();
    expect(await waitFor(() => rounds.length >= 3, 2_000)).toBe(true);
    const last = values(rounds[rounds.length - 1]!);
    expect(last.get("cpu.load_percent")).toBe(25);
    expect(last.get("memory.used_percent")).toBe(75);
    expect(last.get("load.15m")).toBe(0.125);
    expect([...last.keys()].some((k) => k.startsWith("disk.") || k.startsWith("net.") || k.startsWith("check."))).toBe(false);
    await s.stop();
    const count = rounds.length;
    await sleep(100);
    expect(rounds.length).toBe(count);
    expect(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length).toBeLessThanOrEqual(timeoutsBefore);
  });
});
