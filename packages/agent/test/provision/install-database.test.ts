import { describe, expect, it } from "vitest";
import { parseConfig } from "@mnha/shared";
import { databaseRows, optionFile, overwriteNotice, parseProbe, probeArgv, type DatabaseProbe } from "../../src/provision/database-probe.js";
import { nodeConfigText, replicationProblem, type InstallSettings } from "../../src/provision/install-ha.js";

const PROBE_OUTPUT = [
  "socket\t/run/mysqld/mysqld.sock",
  "server\t10.11.6-MariaDB-0+deb12u1-log\t1\t1\t1",
  "schema\tappdb\t2\t120\t32768",
  "schema\tzstack\t310\t50000\t104857600",
  "",
].join("\n");

function probe(overrides: Partial<DatabaseProbe> = {}): DatabaseProbe {
  return { ...parseProbe({ code: 0, stdout: PROBE_OUTPUT, stderr: "" }), ...overrides };
}

describe("the database probe", () => {
  it("reads the socket, the server's settings and what each database holds", () => {
    const p = parseProbe({ code: 0, stdout: PROBE_OUTPUT, stderr: "" });
    expect(p).toMatchObject({ ok: true, socket: "/run/mysqld/mysqld.sock", version: "10.11.6", serverId: 1, logBin: true, gtidDomainId: 1, error: null });
    expect(p.summary).toEqual({
      schemas: [
        { name: "appdb", tables: 2, approxRows: 120, bytes: 32768 },
        { name: "zstack", tables: 310, approxRows: 50000, bytes: 104857600 },
      ],
      tables: 312,
      approxRows: 50120,
      bytes: 104890368,
    });
  });

  it("a refused password and a missing server are named, never guessed", () => {
    const refused = parseProbe({ code: 1, stdout: "socket\t/run/mysqld/mysqld.sock\n", stderr: "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: YES)\n" });
    expect(refused).toMatchObject({ ok: false, socket: "/run/mysqld/mysqld.sock", error: "the root password was refused" });
    const none = parseProbe({ code: 3, stdout: "", stderr: "no MariaDB socket found (is MariaDB running?)\n" });
    expect(none).toMatchObject({ ok: false, socket: null, error: "no MariaDB socket found (is MariaDB running?)" });
  });

  it("the password goes only into the option file on stdin, never into argv", () => {
    const argv = probeArgv(null);
    expect(argv.join(" ")).not.toContain("s3cr\"et");
    expect(argv[4]).toBe(""); // no --db-socket: found on the node
    expect(probeArgv("/tmp/x.sock")[4]).toBe("/tmp/x.sock");
    expect(optionFile('s3cr"et')).toBe('[client]\nuser=root\npassword="s3cr\\"et"\n');
  });

  it("preflight rows: all pass for a good pair; a refused login, the binary log off and equal server ids fail with the fix", () => {
    const good = databaseRows({ local: probe(), peer: probe({ serverId: 2, gtidDomainId: 2 }) }, ["mn1", "mn2"]);
    expect(good.map((r) => [r.id, r.status])).toEqual([["db-socket", "pass"], ["db-login", "pass"], ["db-binlog", "pass"], ["db-server-id", "pass"]]);
    const refused = databaseRows({ local: probe(), peer: { ...probe(), ok: false, error: "the root password was refused" } }, ["mn1", "mn2"]);
    expect(refused.find((r) => r.id === "db-login")).toMatchObject({ status: "fail", values: ["MariaDB 10.11.6", "the root password was refused"] });
    expect(refused.find((r) => r.id === "db-login")?.fix).toContain("mn2: -db-root-pw (or --db-root-pw-file) must be the MariaDB root password of both MNs");
    const bad = databaseRows({ local: probe(), peer: probe({ logBin: false }) }, ["mn1", "mn2"]);
    expect(bad.find((r) => r.id === "db-binlog")?.status).toBe("fail");
    expect(bad.find((r) => r.id === "db-server-id")).toMatchObject({ status: "fail", values: ["1 / 1", "1 / 1"] });
    const noSocket = databaseRows({ local: probe(), peer: { ...probe(), ok: false, socket: null, error: "no MariaDB socket found" } }, ["mn1", "mn2"]);
    expect(noSocket.find((r) => r.id === "db-socket")).toMatchObject({ status: "fail", values: ["/run/mysqld/mysqld.sock", "none found"] });
    expect(noSocket.find((r) => r.id === "db-socket")?.fix).toContain("mn2: start MariaDB, or pass its socket with --db-socket");
  });

  it("the overwrite notice names the node, what it holds and what replaces it", () => {
    const text = overwriteNotice({ local: probe(), peer: probe({ summary: { schemas: [{ name: "junk", tables: 1, approxRows: 0, bytes: 16384 }], tables: 1, approxRows: 0, bytes: 16384 } }) }, { local: "mn1", peer: "mn2", peerAddress: "10.0.0.12" });
    expect(text).toContain("This install OVERWRITES the MariaDB database of mn2 (10.0.0.12, socket /run/mysqld/mysqld.sock):\n  junk: 1 tables");
    expect(text).toContain("with a copy of mn1's (this node, socket /run/mysqld/mysqld.sock):\n  appdb: 2 tables");
    expect(text).toContain("Every database of mn2 that mn1 does not have is dropped");
  });
});

describe("install-ha: the database and data sync in the configs", () => {
  const settings: InstallSettings = {
    preflight: { nic: "br0", vipAddress: "10.0.0.100", vipPrefix: 24, gateway: "10.0.0.1", peerPort: 7946, metricsPort: 9746, minCpus: 8, minMemoryGb: 12, platform: { versionFile: "/v", licenseFile: "/l" } },
    localAddress: "10.0.0.11",
    nodeName: "mn1",
    peerName: "mn2",
    peerAddress: "10.0.0.12",
    execUser: "ops",
    bundlePath: "/x/mnha-suite-0.1.0-linux-x64.tar.gz",
    timeServer: "10.0.0.1",
    database: { rootPassword: "never-in-the-config", socketFlag: null, sockets: { local: "/run/a.sock", peer: "/run/b.sock" } },
    dataSync: { dirs: ["/var/lib/prom"], schedule: "*/5 * * * *" },
    healthyTimeoutMs: 60_000,
  };

  it("each node's config: its own socket, the password files (not the password), the time server, data sync over the SSH trust", () => {
    for (const [side, socket] of [["local", "/run/a.sock"], ["peer", "/run/b.sock"]] as const) {
      const text = nodeConfigText(settings, side);
      expect(text).not.toContain("never-in-the-config");
      const config = parseConfig(JSON.parse(text.split("\n").slice(1).join("\n")), "test");
      expect(config.db).toMatchObject({ enabled: true, socket, rootPasswordFile: "/etc/mnha/db-root-password", replication: { passwordFile: "/etc/mnha/db-replication-password" } });
      expect(config.timeServer).toBe("10.0.0.1");
      expect(config.dataSync).toMatchObject({ dirs: ["/var/lib/prom"], sshKey: "/etc/mnha/ssh/id_ed25519", knownHostsFile: "/etc/mnha/ssh/known_hosts", sshUser: "ops" });
    }
  });

  it("without a database password the database is not managed; a bad schedule is a config error before anything connects", () => {
    const { database: _database, ...rest } = settings;
    const config = parseConfig(JSON.parse(nodeConfigText(rest, "local").split("\n").slice(1).join("\n")), "test");
    expect(config.db.enabled).toBe(false);
    expect(() => nodeConfigText({ ...settings, dataSync: { dirs: [], schedule: "every five minutes" } }, "local")).toThrow(/dataSync\.schedule/);
  });

  it("replication is done only when both nodes run both threads and nothing diverged", () => {
    const yes = { alive: true, slaveIoRunning: "Yes", slaveSqlRunning: "Yes" };
    expect(replicationProblem({ nodes: [{ node: "mn1", health: yes }, { node: "mn2", health: yes }], divergence: [], peerProblem: null })).toBeNull();
    expect(replicationProblem({ nodes: [{ node: "mn1", health: yes }, { node: "mn2", health: { ...yes, slaveIoRunning: "Connecting", lastIoError: "access denied" } }], divergence: [], peerProblem: null })).toBe("mn2 does not replicate (Slave_IO_Running Connecting, Slave_SQL_Running Yes, access denied)");
    expect(replicationProblem({ nodes: [{ node: "mn1", health: yes }], divergence: [], peerProblem: "connect ECONNREFUSED" })).toBe("the peer's database: connect ECONNREFUSED");
    expect(replicationProblem({ nodes: [{ node: "mn1", health: yes }, { node: "mn2", health: yes }], divergence: [{}], peerProblem: null })).toMatch(/diverged/);
  });
});
