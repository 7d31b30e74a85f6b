/**
 * The data sync engine with the real rsync against local directories (a local transport in
 * place of SSH): files arrive, deletions follow, only the holder pushes, a switchover starts a
 * sync, one sync runs at a time, and a failure is an event with the status showing it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCommand, type CommandOptions } from "../../src/checks/command.js";
import { DataSync, rsyncArgv, sshTransport, type DataSyncOptions, type SyncTransport } from "../../src/datasync/data-sync.js";
import { capturingLogger, tempDir } from "../control/fake-control.js";
import { parseConfig } from "@mnha/shared";

const RSYNC = "/usr/bin/rsync";

describe("DataSync with the real rsync", () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let standby: string;
  let recorded: { type: string; message: string }[];
  let sync: DataSync;

  const local: () => SyncTransport = () => ({ args: [], destination: (d) => `${join(standby, d.slice(source.length))}/` });

  function make(overrides: Partial<DataSyncOptions> = {}): DataSync {
    return new DataSync({
      dirs: [join(source, "prometheus"), join(source, "alerts")],
      transport: local(),
      rsync: RSYNC,
      timeoutMs: 10_000,
      schedule: null,
      logger: capturingLogger().logger,
      record: (type, message) => void recorded.push({ type, message }),
      wallNow: () => Date.now(),
      ...overrides,
    });
  }

  beforeEach(async () => {
    dir = tempDir("mnha-datasync-");
    source = join(dir.path, "holder");
    standby = join(dir.path, "standby");
    for (const d of ["prometheus/wal", "alerts"]) mkdirSync(join(source, d), { recursive: true });
    mkdirSync(standby);
    writeFileSync(join(source, "prometheus/wal/00000001"), "samples-1");
    writeFileSync(join(source, "alerts/rules.yml"), "groups: []\n");
    recorded = [];
    sync = make();
    await sync.start();
  });

  afterEach(async () => {
    await sync.stop();
    dir.remove();
  });

  it("copies the directories to the standby and deletes there what the holder deleted", async () => {
    sync.observeRole("holder");
    const first = await sync.syncNow("manual");
    expect(first).toMatchObject({ ok: true, skipped: false });
    expect(readFileSync(join(standby, "prometheus/wal/00000001"), "utf8")).toBe("samples-1");
    expect(readFileSync(join(standby, "alerts/rules.yml"), "utf8")).toBe("groups: []\n");
    writeFileSync(join(source, "prometheus/wal/00000002"), "samples-2");
    writeFileSync(join(standby, "prometheus/stale-on-standby"), "old");
    expect((await sync.syncNow("manual")).ok).toBe(true);
    expect(readFileSync(join(standby, "prometheus/wal/00000002"), "utf8")).toBe("samples-2");
    expect(existsSync(join(standby, "prometheus/stale-on-standby"))).toBe(false);
    const status = sync.status();
    expect(status.lastError).toBeNull();
    expect(status.lastSuccessAtMs).not.toBeNull();
    expect(sync.ageSeconds()).toBeLessThan(60);
  });

  it("a standby pushes nothing", async () => {
    sync.observeRole("standby");
    expect(await sync.syncNow("schedule")).toMatchObject({ skipped: true });
    expect(existsSync(join(standby, "prometheus"))).toBe(false);
  });

  it("becoming the holder starts a sync (switchover), recorded as an event", async () => {
    sync.observeRole("standby");
    sync.observeRole("receiving");
    sync.observeRole("holder");
    await sync.syncNow("manual"); // joins the switchover sync under way
    expect(readFileSync(join(standby, "prometheus/wal/00000001"), "utf8")).toBe("samples-1");
    expect(recorded.map((r) => r.type)).toContain("datasync.done");
    expect(recorded.find((r) => r.type === "datasync.done")?.message).toMatch(/switchover/);
  });

  it("runs one sync at a time: a second request joins the first", async () => {
    let calls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = make({
      run: async (argv: readonly string[], options: CommandOptions) => {
        calls += 1;
        await gate;
        return runCommand(argv, options);
      },
    });
    await slow.start();
    slow.observeRole("holder");
    const a = slow.syncNow("schedule");
    const b = slow.syncNow("switchover");
    expect(b).toBe(a);
    expect(slow.status().running).toBe(true);
    release();
    await a;
    expect(calls).toBe(2); // two directories, one sync
    await slow.stop();
  });

  it("a failed sync is an event and shows in the status; the next success clears it", async () => {
    const broken = make({ transport: { args: [], destination: () => join(dir.path, "no/such/parent/dir/") } });
    await broken.start();
    broken.observeRole("holder");
    const outcome = await broken.syncNow("schedule");
    expect(outcome.ok).toBe(false);
    expect(broken.status().lastError).toMatch(/exited with|exit/);
    expect(recorded.map((r) => r.type)).toContain("datasync.failed");
    await broken.stop();
  });

  it("a hung rsync is killed at its timeout", async () => {
    // An rsync that never ends (a dead SSH peer): the same runner, a command that hangs.
    const hung = make({ run: (_argv, options) => runCommand(["/bin/sleep", "30"], options), timeoutMs: 300 });
    await hung.start();
    hung.observeRole("holder");
    const started = Date.now();
    const outcome = await hung.syncNow("schedule");
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await hung.stop();
  });
});

describe("rsync over SSH argv", () => {
  it("uses the key, strict host key checking and batch mode, as arguments (no shell)", () => {
    const config = parseConfig({
      node: { name: "mn1", address: "10.0.0.11" },
      peers: [{ name: "mn2", address: "10.0.0.12" }],
      vip: { address: "10.0.0.100", interface: "eth0" },
      gateway: { address: "10.0.0.1" },
      auth: { secret: "0123456789abcdef0123" },
      timings: {},
      arpGuard: {},
      keepalived: {},
      dataSync: { dirs: ["/var/lib/prometheus"], sshKey: "/root/.ssh/mnha_ed25519" },
    });
    const argv = rsyncArgv("/usr/bin/rsync", sshTransport(config.dataSync, "10.0.0.12"), "/var/lib/prometheus");
    expect(argv).toEqual(["/usr/bin/rsync", "-a", "--delete", "-e", "ssh -i /root/.ssh/mnha_ed25519 -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10", "/var/lib/prometheus/", "root@10.0.0.12:/var/lib/prometheus/"]);
    expect(() => sshTransport({ ...config.dataSync, sshKey: "/root/my key" }, "10.0.0.12")).toThrow(/whitespace/);
  });
});

describe("data sync lag in Prometheus", () => {
  it("exports the age of the last successful sync while it is known, and nothing before", async () => {
    const { MetricsServer } = await import("../../src/metrics/metrics.js");
    const server = new MetricsServer({ address: "127.0.0.1", port: 0, logger: capturingLogger().logger, collect: () => snapshot(null), processMetrics: false });
    const snapshot = (age: number | null) => ({
      node: "mn1",
      version: "0.1.0",
      role: "holder" as const,
      epoch: 3,
      failoversTotal: 0,
      vipHeld: true,
      peerConnected: true,
      peerRttMs: null,
      gatewayReachable: true,
      gatewayRttMs: null,
      services: [],
      keepalivedState: "master" as const,
      store: null,
      syncLagRecords: null,
      dataSyncAgeSeconds: age,
    });
    expect(await server.render(snapshot(null))).not.toContain("mnha_datasync_last_success_age_seconds");
    expect(await server.render(snapshot(42.5))).toMatch(/^mnha_datasync_last_success_age_seconds 42\.5$/m);
  });
});
