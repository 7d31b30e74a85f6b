import { silentLogger } from "@mnha/shared";
import { afterEach, describe, expect, it } from "vitest";
import { MetricsServer, type MetricsSnapshot } from "../../src/metrics/metrics.js";

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

const base: MetricsSnapshot = {
  node: "mn1",
  version: "0.1.0",
  role: "standby",
  epoch: 3,
  failoversTotal: 0,
  vipHeld: false,
  peerConnected: true,
  peerRttMs: null,
  gatewayReachable: true,
  gatewayRttMs: null,
  services: [],
  keepalivedState: "backup",
  store: null,
  syncLagRecords: null,
};

async function scrape(collect: () => MetricsSnapshot): Promise<string> {
  const server = new MetricsServer({ address: "127.0.0.1", port: 0, logger: silentLogger(), collect });
  servers.push(server);
  await server.start();
  return (await fetch(`http://127.0.0.1:${server.port()}/metrics`)).text();
}

describe("database metrics", () => {
  it("exports lag, thread states, read-only and semi-sync while known, and nothing without db", async () => {
    let snapshot: MetricsSnapshot = { ...base, db: { alive: true, readOnly: true, lagSeconds: 4, ioRunning: true, sqlRunning: false, semiSyncMasterActive: false } };
    const text = await scrape(() => snapshot);
    expect(text).toMatch(/^mnha_db_up 1$/m);
    expect(text).toMatch(/^mnha_db_read_only 1$/m);
    expect(text).toMatch(/^mnha_db_replica_lag_seconds 4$/m);
    expect(text).toMatch(/^mnha_db_replica_io_running 1$/m);
    expect(text).toMatch(/^mnha_db_replica_sql_running 0$/m);
    expect(text).toMatch(/^mnha_db_semi_sync_master_active 0$/m);
    snapshot = { ...base };
    const server = servers[0]!;
    const again = await (await fetch(`http://127.0.0.1:${server.port()}/metrics`)).text();
    expect(again).not.toMatch(/mnha_db_/);
  });
});
