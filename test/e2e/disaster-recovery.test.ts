/**
 * Disaster recovery from scratch, as docs/disaster-recovery.md's runbook tells it: the only
 * thing left of a pair is its remote backup copy (on a backup host reached over real SSH:
 * the lab's client namespace runs its own sshd), and two bare MNs. install-ha (from the suite
 * bundle, real OpenSSH to the peer), the database configured and replicating, the backup
 * fetched from the backup host with real rsync, verified, restored: both nodes hold the
 * backed-up rows, CHECKSUM TABLE equal to the backed-up tables' on both, replication running
 * both ways, the agents healthy.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AGENT_MAIN, GATEWAY_ADDRESS, HOSTS, LAB_STATE_DIR, VIP_ADDRESS, nodePaths, type MnNode } from "../lab/constants.js";
import { runIn, waitFor } from "../lab/exec.js";
import { ensureBundle } from "../lab/bundle.js";
import { Lab } from "../lab/lab.js";
import { labDatabase, labRootPassword, mariaDbPaths } from "../lab/mariadb.js";
import { MariaDbDatabase } from "../../packages/agent/src/db/mariadb.js";
import { hostKeyFingerprint, installOutput, LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec, sshdPaths, startSshd } from "../lab/sshd.js";
import { installZstackCtl } from "../lab/zstack-ctl.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ sshd: true });
/** The backup host: the lab's client namespace with an sshd of its own (cast: sshd.ts names MNs, but works for any lab host). */
const BACKUP_HOST = "client" as MnNode;
/** In the backup host's own view (/var/lib is one of its overlays): the machine's own files never change. */
const REMOTE_DIR = "/var/lib/mnha-remote-backups";
const IMPORT_DIR = "/var/lib/mnha-import";
const MNHA = "/usr/local/bin/mnha";
/** The operator's own key for the backup host (it outlives the servers). */
const operatorKey = `${LAB_STATE_DIR}/dr-operator-key`;
const operatorKnownHosts = `${LAB_STATE_DIR}/dr-operator-known-hosts`;
/** Set once mn2's root password is made mn1's (both MNs share it, as install-ha's -db-root-pw assumes). */
let sharedRootPassword: string | null = null;
const db = {
  mn1: () => labDatabase("mn1"),
  mn2: () => (sharedRootPassword === null ? labDatabase("mn2") : new MariaDbDatabase({ target: { socket: mariaDbPaths("mn2").socket }, user: "root", password: sharedRootPassword, connectTimeoutMs: 3_000, label: "mn2 (lab)" })),
};
/** The MariaDB root password file given to install-ha (on mn1, 0600). */
const DB_ROOT_PW_FILE = `${IMPORT_DIR}/db-root.pw`;

interface Manifest {
  file: string;
  tables: { table: string; rows: number }[];
}

async function sql(node: MnNode, statement: string): Promise<Record<string, unknown>[]> {
  return db[node]().withConnection(async (c) => (await c.query(statement)) as Record<string, unknown>[]);
}

async function checksums(node: MnNode): Promise<Record<string, string>> {
  const rows = await sql(node, "CHECKSUM TABLE appdb.hosts, appdb.volumes EXTENDED");
  return Object.fromEntries(rows.map((r) => [String(r["Table"]), String(r["Checksum"])]));
}

async function counts(node: MnNode): Promise<Record<string, number>> {
  const [hosts] = await sql(node, "SELECT COUNT(*) AS n FROM appdb.hosts");
  const [volumes] = await sql(node, "SELECT COUNT(*) AS n FROM appdb.volumes");
  return { "appdb.hosts": Number(hosts?.["n"]), "appdb.volumes": Number(volumes?.["n"]) };
}

const text = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

let bundlePath = "";
let backupName = "";
let manifest: Manifest;
let backedUpChecksums: Record<string, string> = {};

beforeAll(async () => {
  bundlePath = ensureBundle();
  await lab.up({ fresh: true, agents: false });
  await startSshd(BACKUP_HOST);
  for (const node of ["mn1", "mn2"] as const) {
    const set = await nodeExec(node, ["sh", "-c", 'mkdir -p /usr/local/zstack /var/lib/zstack/license && echo 4.8.0 > /usr/local/zstack/VERSION && echo enterprise > /var/lib/zstack/license/license-type']);
    expect(set.code, set.stderr).toBe(0);
    // install-ha's default services stop and start the MN and the UI with zstack-ctl (the restore stops the MN).
    await installZstackCtl(node);
  }
  // The backup host: a directory for the copies, the operator's key authorized, its host key known.
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dr-operator", "-f", operatorKey]);
  const authorized = await nodeExec(BACKUP_HOST, ["sh", "-c", 'install -d -m 700 "$1" "$(dirname "$2")" && cat > "$2" && chmod 600 "$2"', "sh", REMOTE_DIR, `/var/lib/${LAB_SSH_USER}/.ssh/authorized_keys`], { input: readFileSync(`${operatorKey}.pub`, "utf8") });
  expect(authorized.code, authorized.stderr).toBe(0);
  writeFileSync(operatorKnownHosts, `${HOSTS[BACKUP_HOST].address} ${readFileSync(`${sshdPaths(BACKUP_HOST).hostKey}.pub`, "utf8")}`);
}, 900_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("disaster-recovery") });
});

describe("disaster recovery from scratch", () => {
  it("before the disaster: the old pair's backup is copied to the backup host (real rsync over SSH)", async () => {
    await sql("mn1", "CREATE DATABASE appdb");
    await sql("mn1", "CREATE TABLE appdb.hosts (id INT PRIMARY KEY, name VARCHAR(64), state VARCHAR(16)) ENGINE=InnoDB");
    await sql("mn1", "CREATE TABLE appdb.volumes (uuid CHAR(32) PRIMARY KEY, host_id INT, size BIGINT, note TEXT) ENGINE=InnoDB");
    await sql("mn1", "INSERT INTO appdb.hosts SELECT seq, CONCAT('host-', seq), IF(seq % 3 = 0, 'Disabled', 'Enabled') FROM appdb.seq_1_to_500");
    await sql("mn1", "INSERT INTO appdb.volumes SELECT MD5(seq), seq % 500 + 1, seq * 1073741824, CONCAT('it''s volume (', seq, ')') FROM appdb.seq_1_to_20000");
    backedUpChecksums = await checksums("mn1");
    // The old pair's config: backups copied to the backup host (what `backup:` in mnha.yaml says).
    const config = parse(readFileSync(nodePaths("mn1").config, "utf8")) as Record<string, unknown>;
    config["backup"] = { remote: { host: HOSTS[BACKUP_HOST].address, user: LAB_SSH_USER, dir: REMOTE_DIR, keyFile: operatorKey, knownHostsFile: operatorKnownHosts, keep: 5 } };
    const oldConfig = `${nodePaths("mn1").dir}/old-pair.yaml`;
    writeFileSync(oldConfig, JSON.stringify(config), { mode: 0o600 });
    const backup = await runIn(HOSTS.mn1.namespace, process.execPath, [AGENT_MAIN, "backup", "now", "--json", "--config", oldConfig], { allowFailure: true, timeoutMs: 180_000 });
    expect(backup.code, text(backup)).toBe(0);
    const parsed = JSON.parse(backup.stdout) as { path: string; manifest: Manifest; remote: { host: string } | null };
    expect(parsed.remote?.host).toBe(HOSTS[BACKUP_HOST].address);
    manifest = parsed.manifest;
    backupName = manifest.file;
    expect(manifest.tables).toEqual([{ table: "appdb.hosts", rows: 500 }, { table: "appdb.volumes", rows: 20_000 }]);

    // The disaster: the old pair is gone with its local backups; the new servers' databases hold no application data.
    await sql("mn1", "DROP DATABASE appdb");
    execFileSync("rm", ["-f", "--", parsed.path, `${parsed.path}.sha256`, parsed.path.replace(/\.sql\.gz$/, ".json")]);
    for (const node of ["mn1", "mn2"] as const) expect(await sql(node, "SHOW DATABASES LIKE 'appdb'"), node).toHaveLength(0);
    const remote = await nodeExec(BACKUP_HOST, ["sh", "-c", `cd ${REMOTE_DIR} && sha256sum -c "$1.sha256"`, "sh", backupName]);
    expect(remote.code, text(remote)).toBe(0);
  });

  it("install-ha on the bare nodes, the database replicating, the remote backup fetched and restored: a healthy pair with the backed-up data", async () => {
    // 1. install-ha, from the bundle imported to mn1 (docs/install.md).
    const name = bundlePath.split("/").pop()?.replace(/\.tar\.gz$/, "") as string;
    const unpacked = await nodeExec("mn1", ["sh", "-c", 'mkdir -p "$1" && cp "$2" "$1/" && cd "$1" && tar -xzf "$3"', "sh", IMPORT_DIR, bundlePath, `${name}.tar.gz`], { timeoutMs: 120_000 });
    expect(unpacked.code, unpacked.stderr).toBe(0);
    // The new servers share the platform's database root password (install-ha's -db-root-pw).
    const rootPassword = labRootPassword("mn1");
    await db.mn2().withConnection(async (c) => {
      await c.query("SET SESSION sql_log_bin = 0");
      await c.query("ALTER USER root@localhost IDENTIFIED BY ?", [rootPassword]);
    });
    sharedRootPassword = rootPassword;
    writeFileSync(mariaDbPaths("mn2").rootPasswordFile, `${rootPassword}\n`, { mode: 0o600 });
    const written = await nodeExec("mn1", ["sh", "-c", 'umask 077 && cat > "$1"', "sh", DB_ROOT_PW_FILE], { input: `${rootPassword}\n` });
    expect(written.code, written.stderr).toBe(0);
    const install = await nodeExec(
      "mn1",
      [`${IMPORT_DIR}/${name}/bin/mnha`, "install-ha", "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS, "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--node-name", "mn1", "--peer-name", "mn2", "--min-cpus", "1", "--min-memory-gb", "1", "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--peer-host-key", await hostKeyFingerprint("mn2"), "--db-root-pw-file", DB_ROOT_PW_FILE, "--yes"],
      { timeoutMs: 600_000 },
    );
    expect(install.code, await installOutput(install)).toBe(0);
    expect(install.stdout).toContain("The pair is installed and healthy");

    // 2. install-ha set up the database too: mn2 seeded from mn1 (no application data on either yet), replication both ways.
    const dbStatus = await nodeExec("mn1", [MNHA, "db", "status", "--json"], { timeoutMs: 60_000 });
    expect(dbStatus.code, text(dbStatus)).toBe(0);

    // 3. Fetch the backup from the backup host (all three files) onto the VIP holder, verify it there.
    const holder = await lab.waitForHolder(null, { timeoutMs: 60_000 });
    const standby: MnNode = holder === "mn1" ? "mn2" : "mn1";
    const source = (suffix: string) => `${LAB_SSH_USER}@${HOSTS[BACKUP_HOST].address}:${REMOTE_DIR}/${backupName.replace(/\.sql\.gz$/, "")}${suffix}`;
    const ssh = `ssh -i ${operatorKey} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${operatorKnownHosts}`;
    const fetched = await nodeExec(holder, ["sh", "-c", 'mkdir -p -m 700 /var/lib/mnha/backups && rsync -a -e "$1" "$2" "$3" "$4" /var/lib/mnha/backups/', "sh", ssh, source(".sql.gz"), source(".sql.gz.sha256"), source(".json")], { timeoutMs: 120_000 });
    expect(fetched.code, text(fetched)).toBe(0);
    const verify = await nodeExec(holder, [MNHA, "backup", "verify", backupName], { timeoutMs: 120_000 });
    expect(verify.code, text(verify)).toBe(0);

    // 4. The restore, with the node's name typed back.
    const restore = await nodeExec(holder, [MNHA, "restore", backupName], { input: `${holder}\n`, timeoutMs: 600_000 });
    expect(restore.code, text(restore)).toBe(0);
    expect(restore.stderr).toContain(`This REPLACES the application databases of BOTH nodes (${holder} here, ${standby} re-seeded from here)`);
    expect(restore.stderr).toContain("no application data here (a new server): no safety backup needed");
    expect(restore.stderr).toMatch(/verify row counts, CHECKSUM TABLE on both nodes and replication: done/);
    expect(restore.stdout).toContain(`restore done: ${holder} and ${standby} hold the data of ${backupName}`);

    // 5. The pair holds the backed-up data on both nodes, replicates both ways, and is healthy.
    await waitFor(`${standby} caught up`, async () => ((await db[standby]().waitForGtid(await db[holder]().gtidBinlogPos(), 2_000)).reached ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
    for (const node of ["mn1", "mn2"] as const) {
      expect(await counts(node), node).toEqual({ "appdb.hosts": 500, "appdb.volumes": 20_000 });
      expect(await checksums(node), node).toEqual(backedUpChecksums);
      const h = await db[node]().health();
      expect([h.slaveIoRunning, h.slaveSqlRunning], node).toEqual(["Yes", "Yes"]);
    }
    // Holder to standby: a row written on the holder reaches the standby.
    const rowCount = async (node: MnNode, id: number) => Number((await sql(node, `SELECT COUNT(*) AS n FROM appdb.hosts WHERE id = ${id}`))[0]?.["n"]);
    await sql(holder, "INSERT INTO appdb.hosts VALUES (501, 'host-501', 'Enabled')");
    await waitFor(`row 501 on ${standby}`, async () => ((await rowCount(standby, 501)) === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    const status = JSON.parse((await nodeExec(standby, [MNHA, "status", "--json"], { timeoutMs: 30_000 })).stdout) as { peer: { connected: boolean }; vipOwner: string; self: { eligible: boolean }; ops?: { self: { maintenance: unknown } } };
    expect(status.peer.connected).toBe(true);
    expect(status.self.eligible).toBe(true);
    expect(status.vipOwner).toBe(holder);
    expect(status.ops?.self.maintenance ?? null).toBeNull();
    // Standby to holder: after a planned switchover (a write on a read-only standby would be an
    // errant transaction), a row written on the new holder reaches the old one.
    const demote = await nodeExec(holder, [MNHA, "demote", "--yes"], { timeoutMs: 120_000 });
    expect(demote.code, text(demote)).toBe(0);
    await lab.waitForHolder(standby, { timeoutMs: 30_000 });
    await waitFor(`${standby} writable`, async () => (Number((await sql(standby, "SELECT @@GLOBAL.read_only AS ro"))[0]?.["ro"]) === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    await sql(standby, "INSERT INTO appdb.hosts VALUES (502, 'host-502', 'Enabled')");
    await waitFor(`row 502 on ${holder}`, async () => ((await rowCount(holder, 502)) === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
  });
});
