/**
 * The pair as it runs on real MNs: under systemd. Each lab MN is booted as a systemd machine
 * (systemd 252 as PID 1 of its own namespaces, test/lab/systemd-node.sh), and install-ha takes
 * its systemctl path: the shipped unit (deploy/mnha.service, with its sandbox) enabled and
 * started on both nodes. Then what the unit promises: the agent runs in the sandbox, but a
 * restore runs outside it as a transient unit (systemd-run), so the MN it starts can write its
 * logs; systemd restarts a killed agent and the VIP moves meanwhile; `systemctl stop` hands
 * the VIP over; and after a power cut the agent starts at boot by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_ADDRESS, HOSTS, VIP_ADDRESS, type MnNode } from "../lab/constants.js";
import { waitFor } from "../lab/exec.js";
import { buildTestBundle, ensureBundle } from "../lab/bundle.js";
import { Lab } from "../lab/lab.js";
import { labRootPassword, mariaDbPaths } from "../lab/mariadb.js";
import { hostKeyFingerprint, installOutput, LAB_SSH_PASSWORD_FILE, LAB_SSH_USER, nodeExec, startSshd, stopSshd, systemdInitPid } from "../lab/sshd.js";
import { MariaDbDatabase } from "../../packages/agent/src/db/mariadb.js";
import type { HaEvent, StatusReport } from "../../packages/agent/src/contracts.js";
import { installZstackCtl, ZSTACK_CTL_LOG } from "../lab/zstack-ctl.js";
import { labArchiveDir } from "./scenario.js";

const lab = new Lab({ systemd: true });
const IMPORT_DIR = "/var/lib/mnha-import";
const DB_ROOT_PW_FILE = `${IMPORT_DIR}/db-root.pw`;

async function sh(node: MnNode, script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return nodeExec(node, ["sh", "-c", script, "sh", ...args], { timeoutMs: 60_000 });
}

async function mustSh(node: MnNode, script: string, ...args: string[]): Promise<string> {
  const result = await sh(node, script, ...args);
  expect(result.code, `${node}: ${script}: ${result.stderr}`).toBe(0);
  return result.stdout.trim();
}


/** The status, or null while the agent does not answer (starting, restarting). */
async function statusIfUp(node: MnNode): Promise<StatusReport | null> {
  const result = await nodeExec(node, ["/usr/local/bin/mnha", "status", "--json"], { timeoutMs: 60_000 });
  return result.code === 0 ? (JSON.parse(result.stdout) as StatusReport) : null;
}

async function installedStatus(node: MnNode): Promise<StatusReport> {
  const status = await statusIfUp(node);
  expect(status, `${node}'s agent does not answer mnha status`).not.toBeNull();
  return status as StatusReport;
}

/** Waits until the node's agent answers and is linked to its peer. */
async function waitLinked(node: MnNode, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${node}'s agent linked to its peer`, async () => ((await statusIfUp(node))?.peer.connected === true ? true : undefined), { timeoutMs, intervalMs: 500 });
}

async function events(node: MnNode, type: string): Promise<HaEvent[]> {
  const result = await nodeExec(node, ["/usr/local/bin/mnha", "events", "--json", "--type", type, "--limit", "50"], { timeoutMs: 60_000 });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as HaEvent[];
}

async function listening(node: MnNode, port: string): Promise<boolean> {
  return (await mustSh(node, 'ss -Htln "sport = :$1"', port)) !== "";
}

/** The newest event of a type that `node` itself recorded (the store holds both nodes'). */
async function latestOwn(node: MnNode, type: string): Promise<HaEvent | undefined> {
  return (await events(node, type)).find((e) => e.node === node);
}

const unitProperty = (node: MnNode, property: string) => mustSh(node, 'systemctl show -p "$1" --value mnha.service', property);

/** The process's sandbox, as the kernel sees it: no_new_privs and its systemd cgroup. */
async function sandboxOf(node: MnNode, pid: string): Promise<{ noNewPrivs: string; cgroup: string }> {
  const out = await mustSh(node, 'sed -n "s/^NoNewPrivs:\\t//p" "/proc/$1/status"; sed -n "s/^[0-9]*:name=systemd://p" "/proc/$1/cgroup"', pid);
  const [noNewPrivs = "", cgroup = ""] = out.split("\n");
  return { noNewPrivs, cgroup };
}

let suiteDir = "";
const NEXT = "0.1.1";
let bundleNext = "";

beforeAll(async () => {
  const bundlePath = ensureBundle();
  bundleNext = buildTestBundle("systemd-e2e", NEXT, ["--suite-version", NEXT]);
  await lab.up({ fresh: true, agents: false });
  for (const node of ["mn1", "mn2"] as const) {
    // systemd runs the node (booted: "running", or "degraded" if some unit of this machine's own
    // failed there, named in the message), and keepalived.service is enabled, as Debian's package leaves it.
    const [state = "", keepalived = ""] = (await mustSh(node, "systemctl is-system-running --wait; systemctl is-enabled keepalived.service")).split("\n");
    expect(["running", "degraded"], `${node}: ${state}; failed units: ${await mustSh(node, "systemctl --failed --no-legend --plain")}`).toContain(state);
    expect(keepalived).toBe("enabled");
    await mustSh(node, 'mkdir -p /usr/local/zstack /var/lib/zstack/license && echo 4.8.0 > /usr/local/zstack/VERSION && echo enterprise > /var/lib/zstack/license/license-type');
    await installZstackCtl(node);
    // The MN and the UI started the node's way (zstack-ctl, in the node), so that its stop_node and stop_ui can see them.
    for (const [service, verb, port] of [["mn", "start_node", "8080"], ["ui", "start_ui", "5000"]] as const) {
      await lab.killService(node, service);
      await mustSh(node, 'zstack-ctl "$1"', verb);
      await waitFor(`${service} listening on ${node}`, async () => ((await listening(node, port)) ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
    }
  }
  const name = bundlePath.split("/").pop()?.replace(/\.tar\.gz$/, "") as string;
  suiteDir = `${IMPORT_DIR}/${name}`;
  await mustSh("mn1", 'mkdir -p "$1" && cp "$2" "$1/" && cd "$1" && tar -xzf "$3"', IMPORT_DIR, bundlePath, `${name}.tar.gz`);
  // Both MNs share the platform's database root password (as zsha2's -db-root-pw assumes).
  const password = labRootPassword("mn1");
  const mn2Root = new MariaDbDatabase({ target: { socket: mariaDbPaths("mn2").socket }, user: "root", password: labRootPassword("mn2"), connectTimeoutMs: 3_000, label: "mn2" });
  await mn2Root.withConnection(async (c) => {
    await c.query("SET SESSION sql_log_bin = 0");
    await c.query("ALTER USER root@localhost IDENTIFIED BY ?", [password]);
  });
  const written = await nodeExec("mn1", ["sh", "-c", 'umask 077 && cat > "$1"', "sh", DB_ROOT_PW_FILE], { input: `${password}\n` });
  expect(written.code, written.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("systemd") });
});

/** Who holds the VIP now, and the other node. */
async function roles(): Promise<{ holder: MnNode; standby: MnNode }> {
  const holder = await lab.waitForHolder(null, { timeoutMs: 30_000 });
  return { holder, standby: holder === "mn1" ? "mn2" : "mn1" };
}

describe("the pair under systemd", () => {

  it("install-ha enables and starts the shipped unit on both nodes and masks the distribution's keepalived.service", async () => {
    const result = await nodeExec(
      "mn1",
      [
        `${suiteDir}/bin/mnha`, "install-ha", "-nic", "eth0", "-vip", VIP_ADDRESS, "-gateway", GATEWAY_ADDRESS,
        "--peer", `${LAB_SSH_USER}@${HOSTS.mn2.address}`, "--node-name", "mn1", "--peer-name", "mn2",
        "--min-cpus", "1", "--min-memory-gb", "1", "--db-root-pw-file", DB_ROOT_PW_FILE,
        "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--yes", "--peer-host-key", await hostKeyFingerprint("mn2"),
      ],
      { timeoutMs: 400_000 },
    );
    expect(result.code, await installOutput(result)).toBe(0);
    expect(result.stdout).not.toContain("systemd is not PID 1 here");
    expect(result.stdout).toMatch(/service commands \(zstack-ctl, systemctl\)\s+\/usr\/local\/bin\/zstack-ctl, \/usr\/bin\/systemctl\s+\/usr\/local\/bin\/zstack-ctl, \/usr\/bin\/systemctl\s+PASS/);
    expect(result.stdout).toMatch(/D-Bus system bus \(service actions\)\s+\/run\/dbus\/system_bus_socket\s+\/run\/dbus\/system_bus_socket\s+PASS/);
    expect(result.stdout).toContain("The pair is installed and healthy");
    for (const node of ["mn1", "mn2"] as const) {
      expect([node, await mustSh(node, "systemctl is-enabled mnha.service; systemctl is-active mnha.service")]).toEqual([node, "enabled\nactive"]);
      // Masked: systemd itself now refuses to start it.
      expect(await mustSh(node, "systemctl is-enabled keepalived.service || true")).toBe("masked");
      const start = await sh(node, "systemctl start keepalived.service");
      expect(start.code).not.toBe(0);
      expect(start.stderr).toContain("Unit keepalived.service is masked");
    }
    const { holder, standby } = await roles();
    expect(await lab.arpProbe()).toEqual([HOSTS[holder].mac]);
    const status = await installedStatus(standby);
    expect(status.peer.connected).toBe(true);
    expect(status.vipOwner).toBe(holder);
  });

  it("the agent runs inside the unit's sandbox, and says that its service actions do not", async () => {
    for (const node of ["mn1", "mn2"] as const) {
      const agent = await sandboxOf(node, await unitProperty(node, "MainPID"));
      expect([node, agent]).toEqual([node, { noNewPrivs: "1", cgroup: "/system.slice/mnha.service" }]);
      const readOnly = await mustSh(node, 'nsenter -t "$1" -m touch /usr/local/zstack/x 2>&1 || true', await unitProperty(node, "MainPID"));
      expect(readOnly).toContain("Read-only file system");
      const started = await latestOwn(node, "agent.started");
      expect(started?.message).toContain("service actions run as transient systemd services (systemd-run, systemd 252), outside mnha.service's sandbox");
    }
  });

  it("a killed MN service on the holder: the VIP moves, and the restore runs zstack-ctl outside the sandbox, which can write the MN's logs", async () => {
    const { holder, standby } = await roles();
    const startedAt = Date.now();
    expect(await lab.killService(holder, "mn")).not.toEqual([]);
    await lab.waitForHolder(standby, { timeoutMs: 30_000 });
    const restored = await waitFor(
      `a restore of mn on ${holder}`,
      async () => (await events(holder, "restore.finished")).find((e) => e.fields["service"] === "mn" && e.fields["ok"] === true && Date.parse(e.time) >= startedAt - 1_000),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(restored.message).toContain("succeeded");
    expect(await mustSh(holder, 'cat "$1"', ZSTACK_CTL_LOG)).toMatch(/start_node by pid \d+/);
    await waitFor(`mn healthy on ${holder}`, async () => ((await statusIfUp(holder))?.self.services.find((s) => s.name === "mn")?.healthy === true ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    // The restored MN: a process of its own transient unit, not of mnha.service, and without the sandbox.
    const listener = await mustSh(holder, "ss -Htlnp 'sport = :8080' | sed -n 's/.*pid=\\([0-9]*\\).*/\\1/p' | head -1");
    const mn = await sandboxOf(holder, listener);
    expect(mn.noNewPrivs).toBe("0");
    expect(mn.cgroup).toMatch(/^\/system\.slice\/mnha-restore-mn-[0-9-]+\.service$/);
    // Both nodes eligible again; the VIP stays where it went.
    await waitFor(`${holder} eligible again`, async () => ((await statusIfUp(holder))?.self.eligible === true ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    expect(await lab.holders()).toEqual([standby]);
  });

  it("a killed agent on the holder: the VIP moves to the peer, and systemd starts the agent again", async () => {
    const { holder, standby } = await roles();
    const before = Number(await unitProperty(holder, "NRestarts"));
    const agent = Number(await unitProperty(holder, "MainPID"));
    expect(agent).toBeGreaterThan(1); // (kill 0 would signal the test's own process group)
    await mustSh(holder, 'kill -KILL "$1"', String(agent));
    await lab.waitForHolder(standby, { timeoutMs: 30_000 });
    await waitFor(`systemd to restart the agent on ${holder}`, async () => (Number(await unitProperty(holder, "NRestarts")) > before && (await unitProperty(holder, "ActiveState")) === "active" ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });
    await waitLinked(holder);
    // One Keepalived on the node (the restarted agent took the one left behind down), one holder on the wire.
    expect(await mustSh(holder, "pgrep -c -x keepalived")).toBe("2"); // Keepalived's parent and its VRRP child
    expect(await lab.arpProbe()).toEqual([HOSTS[standby].mac]);
  });

  it("systemctl stop on the holder hands the VIP over and leaves nothing running; start brings the node back as the standby", async () => {
    const { holder, standby } = await roles();
    await mustSh(holder, "systemctl stop mnha.service");
    // The hand-over finished before the unit stopped.
    expect(await lab.holders()).toEqual([standby]);
    expect(await mustSh(holder, "systemctl is-active mnha.service || true")).toBe("inactive");
    expect((await nodeExec(holder, ["pgrep", "-x", "keepalived"])).code).not.toBe(0);
    expect((await nodeExec(holder, ["pgrep", "-f", "mnha-lease-guard"])).code).not.toBe(0);
    await mustSh(holder, "systemctl start mnha.service");
    await waitLinked(holder);
    expect(await lab.holders()).toEqual([standby]);
  });

  it("a power cut on the standby: at boot systemd starts the agent by itself, and the pair is whole again", async () => {
    const { holder, standby } = await roles();
    await stopSshd(standby);
    expect(systemdInitPid(standby)).toBeNull();
    await waitFor("the holder to miss its peer", async () => ((await statusIfUp(holder))?.peer.connected === false ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });
    await startSshd(standby, { systemd: true });
    await waitLinked(standby, 60_000);
    expect(await mustSh(standby, "systemctl is-active mnha.service; systemctl is-enabled keepalived.service || true")).toBe("active\nmasked");
    // The power cut took the node's MN and UI with it: the agent restores them (zstack-ctl, transient units), and the node is eligible again.
    await waitFor(`${standby} eligible again`, async () => ((await statusIfUp(standby))?.self.eligible === true ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
    for (const port of ["8080", "5000"]) expect([port, await listening(standby, port)]).toEqual([port, true]);
    expect(await lab.holders()).toEqual([holder]);
  });

  it("stop-node on the standby stops the MN with zstack-ctl stop_node (a transient unit) and keeps it stopped; start-node brings it back", async () => {
    const { holder, standby } = await roles();
    const stopped = await nodeExec(standby, ["/usr/local/bin/mnha", "stop-node", "-keepui"], { timeoutMs: 120_000 });
    expect(stopped.code, `${stopped.stdout}\n${stopped.stderr}`).toBe(0);
    expect(stopped.stdout).toMatch(/stop mn: ok/);
    expect(await mustSh(standby, 'tail -n 1 "$1"', ZSTACK_CTL_LOG)).toMatch(/ stop_node by pid \d+$/);
    expect(await listening(standby, "8080")).toBe(false);
    expect(await listening(standby, "5000")).toBe(true); // -keepui
    // Held: the agent does not restore it, and the node may not take the VIP.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await listening(standby, "8080")).toBe(false);
    const status = await installedStatus(standby);
    expect(status.self.eligible).toBe(false);
    expect(status.ops?.self.stopped).toMatchObject({ keepUi: true });
    expect(await lab.holders()).toEqual([holder]);
    const started = await nodeExec(standby, ["/usr/local/bin/mnha", "start-node"], { timeoutMs: 180_000 });
    expect(started.code, `${started.stdout}\n${started.stderr}`).toBe(0);
    expect(await listening(standby, "8080")).toBe(true);
    await waitFor(`${standby} eligible again`, async () => ((await statusIfUp(standby))?.self.eligible === true ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
  });

  it("a backup.dir outside the unit's ReadWritePaths: status and an event name it with the drop-in; with the drop-in, scheduled backups land there", async () => {
    const { holder, standby } = await roles();
    const dir = "/var/lib/mnha-backups"; // in the node's own view, but not in ReadWritePaths
    await mustSh(holder, 'mariadb --socket=/run/mysqld/mysqld.sock -uroot -p"$(cat /etc/mnha/db-root-password)" -e "CREATE DATABASE IF NOT EXISTS appdb; CREATE TABLE IF NOT EXISTS appdb.items (id INT PRIMARY KEY); INSERT IGNORE INTO appdb.items VALUES (1)"');
    // The same backup settings on both nodes (a pair setting), every 5 s; the standby's agent restarted on them.
    for (const node of [holder, standby]) {
      await mustSh(node, 'mkdir -p "$1" && chmod 700 "$1" && /opt/mnha/current/node/bin/node -e "$2" "$1"', dir, `
        const fs = require("fs"); const file = "/etc/mnha/mnha.yaml"; const text = fs.readFileSync(file, "utf8"); const at = text.indexOf("{");
        const config = JSON.parse(text.slice(at)); config.backup = { enabled: true, dir: process.argv[1], schedule: "*/5 * * * * *" };
        fs.writeFileSync(file, text.slice(0, at) + JSON.stringify(config, null, 2) + "\\n");`);
    }
    const startedAt = Date.now();
    await mustSh(standby, "systemctl restart mnha.service");
    await waitLinked(standby);
    const status = await installedStatus(standby);
    expect(status.readOnlyDirs).toEqual([expect.objectContaining({ setting: "backup.dir", dir, hint: `run: systemctl edit mnha.service, add the two lines "[Service]" and "ReadWritePaths=${dir}", then: systemctl restart mnha.service` })]);
    const human = await mustSh(standby, "mnha status");
    expect(human).toContain(`READ-ONLY: backup.dir ${dir} is read-only to the agent: mnha.service's sandbox (ProtectSystem=strict)`);
    const said = (await events(standby, "agent.read-only-dir")).filter((e) => Date.parse(e.time) >= startedAt - 1_000);
    expect(said[0]?.message).toContain(`ReadWritePaths=${dir}`);
    // The fix it names, then the standby takes the VIP: its scheduled backups land in the directory.
    await mustSh(standby, 'mkdir -p /etc/systemd/system/mnha.service.d && printf "[Service]\\nReadWritePaths=%s\\n" "$1" > /etc/systemd/system/mnha.service.d/backups.conf && systemctl daemon-reload && systemctl restart mnha.service', dir);
    await waitLinked(standby);
    expect((await installedStatus(standby)).readOnlyDirs).toBeUndefined();
    const demoted = await nodeExec(holder, ["/usr/local/bin/mnha", "demote", "--yes"], { timeoutMs: 60_000 });
    expect(demoted.code, demoted.stderr).toBe(0);
    await lab.waitForHolder(standby, { timeoutMs: 30_000 });
    await waitFor(`a backup in ${dir} on ${standby}`, async () => ((await sh(standby, 'ls "$1" | grep -c "\\.sql\\.gz$"', dir)).stdout.trim() !== "0" ? true : undefined), { timeoutMs: 30_000, intervalMs: 500 });
    expect((await events(standby, "backup.failed")).filter((e) => Date.parse(e.time) >= startedAt)).toEqual([]);
  });

  it("upgrade-ha under systemd: the new suite's unit replaces the old suite's (a dropped Conflicts= lands), drop-ins stay, a rerun after an interruption finishes the job, a hand-edited unit is left alone with a warning", async () => {
    // The pair was installed by an older suite whose unit had Conflicts=keepalived.service
    // (as this project's did until 2026-12-05); mn2 has a local drop-in.
    for (const node of ["mn1", "mn2"] as const) {
      await mustSh(node, 'for f in /etc/systemd/system/mnha.service /opt/mnha/releases/0.1.0/systemd/mnha.service; do sed -i "s/^\\[Unit\\]$/[Unit]\\nConflicts=keepalived.service/" "$f"; done; systemctl daemon-reload');
      expect(await unitProperty(node, "Conflicts")).toContain("keepalived.service");
    }
    await mustSh("mn2", 'mkdir -p /etc/systemd/system/mnha.service.d && printf "[Service]\\nEnvironment=MNHA_LAB_LOCAL=kept\\n" > /etc/systemd/system/mnha.service.d/local.conf && systemctl daemon-reload');
    // On the holder, as upgrade-ha wants: it upgrades its standby first, then hands the VIP over.
    const { holder, standby } = await roles();
    const upgraded = await nodeExec(holder, ["/usr/local/bin/mnha", "upgrade-ha", bundleNext, "--peer", `${LAB_SSH_USER}@${HOSTS[standby].address}`, "--peer-password-file", LAB_SSH_PASSWORD_FILE, "--rejoin-timeout", "120", "--yes"], { timeoutMs: 600_000 });
    expect(upgraded.code, `${upgraded.stdout}\n${upgraded.stderr}`).toBe(0);
    expect(upgraded.stdout + upgraded.stderr).toContain(`/etc/systemd/system/mnha.service replaced by suite ${NEXT}'s unit`);
    for (const node of ["mn1", "mn2"] as const) {
      expect(await mustSh(node, "cat /opt/mnha/current/VERSION; cmp /etc/systemd/system/mnha.service /opt/mnha/current/systemd/mnha.service && echo same")).toBe(`${NEXT}\nsame`);
      expect(await unitProperty(node, "Conflicts")).not.toContain("keepalived.service");
      expect(await unitProperty(node, "ActiveState")).toBe("active");
      const agent = await statusIfUp(node);
      expect([node, agent?.version, agent?.peer.connected]).toEqual([node, NEXT, true]);
    }
    expect(await unitProperty("mn2", "Environment")).toContain("MNHA_LAB_LOCAL=kept");
    // install.sh interrupted after `current` moved but before the unit was replaced (as if): run
    // again, it finds the old suite's unit and replaces it.
    await mustSh("mn1", "cp /opt/mnha/releases/0.1.0/systemd/mnha.service /etc/systemd/system/mnha.service");
    expect(await mustSh("mn1", "/opt/mnha/current/install.sh")).toContain(`/etc/systemd/system/mnha.service replaced by suite ${NEXT}'s unit`);
    expect(await mustSh("mn1", "cmp /etc/systemd/system/mnha.service /opt/mnha/current/systemd/mnha.service && echo same")).toBe("same");
    // A unit edited by hand is no suite's: install.sh leaves it, and says how to merge.
    await mustSh("mn1", 'echo "# edited by hand" >> /etc/systemd/system/mnha.service');
    const rerun = await mustSh("mn1", "/opt/mnha/current/install.sh");
    expect(rerun).toContain("warning: /etc/systemd/system/mnha.service is not the unit of any installed suite (edited by hand?): left as it is");
    expect(await mustSh("mn1", "tail -n 1 /etc/systemd/system/mnha.service")).toBe("# edited by hand");
  });

  it("an MN without a D-Bus system bus: the agent says its actions run inside the sandbox and why (systemd-run --wait needs the bus), and uses transient units again once dbus is back", async () => {
    const { standby } = await roles();
    await mustSh(standby, "systemctl mask --now dbus.socket dbus.service && rm -f /run/dbus/system_bus_socket && systemctl restart mnha.service");
    try {
      await waitLinked(standby);
      expect((await latestOwn(standby, "agent.started"))?.message).toContain("service actions run directly (there is no D-Bus system bus (/run/dbus/system_bus_socket), which systemd-run --wait needs: actions run inside mnha.service's sandbox (install dbus, then restart mnha.service))");
      // What every action would have met otherwise:
      const run = await sh(standby, "systemd-run --quiet --wait --pipe true");
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain("Failed to connect to bus");
    } finally {
      await mustSh(standby, "systemctl unmask dbus.socket dbus.service && systemctl start dbus.socket && systemctl restart mnha.service");
    }
    await waitLinked(standby);
    expect((await latestOwn(standby, "agent.started"))?.message).toContain("service actions run as transient systemd services (systemd-run, systemd 252)");
  });
});
