/**
 * The data sync engine with the real rsync over real OpenSSH (an sshd on loopback, key auth,
 * strict host key checking), as install-ha's SSH trust will provide between the MNs: files
 * arrive and deletions follow; a host key that does not match known_hosts stops the sync (an
 * event, nothing copied). Runs where OpenSSH's server is installed (the lab's requirement).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { parseConfig } from "@mnha/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataSync, sshTransport, type SyncTransport } from "../../src/datasync/data-sync.js";
import { capturingLogger, tempDir } from "../control/fake-control.js";
import { freePort } from "../peer/helpers.js";

const SSHD = "/usr/sbin/sshd";

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

describe.runIf(existsSync(SSHD))("rsync over SSH (loopback sshd)", () => {
  const dir = tempDir("mnha-rsync-ssh-");
  let sshd: ChildProcess;
  let port: number;
  const path = (name: string) => join(dir.path, name);

  beforeAll(async () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path("hostkey")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path("clientkey")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path("otherkey")]);
    writeFileSync(path("authorized_keys"), readFileSync(path("clientkey.pub")), { mode: 0o600 });
    port = await freePort();
    const hostKey = readFileSync(path("hostkey.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    const otherKey = readFileSync(path("otherkey.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    writeFileSync(path("known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
    writeFileSync(path("known_hosts_changed"), `[127.0.0.1]:${port} ${otherKey}\n`);
    writeFileSync(
      path("sshd_config"),
      [`ListenAddress 127.0.0.1:${port}`, `HostKey ${path("hostkey")}`, `PidFile ${path("sshd.pid")}`, `AuthorizedKeysFile ${path("authorized_keys")}`, "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", ""].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    sshd = spawn(SSHD, ["-D", "-e", "-f", path("sshd_config")], { stdio: "ignore" });
    await waitListening(port, 10_000);
    mkdirSync(path("holder/prometheus/wal"), { recursive: true });
    mkdirSync(path("standby"), { recursive: true });
    writeFileSync(path("holder/prometheus/wal/0001"), "samples");
  });

  afterAll(async () => {
    sshd?.kill("SIGTERM");
    dir.remove();
  });

  function make(knownHosts: string, records: string[]): DataSync {
    const config = parseConfig({
      node: { name: "mn1", address: "10.0.0.11" },
      peers: [{ name: "mn2", address: "10.0.0.12" }],
      vip: { address: "10.0.0.100", interface: "eth0" },
      gateway: { address: "10.0.0.1" },
      auth: { secret: "R7xq2Vb9Lk4Tz8Wn1Mc6Yp3Hs5Df0Ga+Ju/Ee7Qo2Xi=" },
      timings: {},
      arpGuard: {},
      keepalived: {},
      dataSync: { dirs: [path("holder/prometheus")], sshKey: path("clientkey"), knownHostsFile: knownHosts, sshPort: port },
    }).dataSync;
    // The real SSH options; the destination is another directory on this host (same machine).
    const transport: SyncTransport = { args: sshTransport(config, "127.0.0.1").args, destination: () => `root@127.0.0.1:${path("standby/prometheus")}/` };
    return new DataSync({ dirs: config.dirs, transport, rsync: config.rsync, timeoutMs: 30_000, schedule: null, logger: capturingLogger().logger, record: (type) => void records.push(type), wallNow: () => Date.now() });
  }

  it("copies over SSH with the key and a known host key, and deletions follow", async () => {
    const records: string[] = [];
    const sync = make(path("known_hosts"), records);
    await sync.start();
    sync.observeRole("standby");
    sync.observeRole("holder");
    const outcome = await sync.syncNow("manual");
    expect(outcome.ok, outcome.detail).toBe(true);
    expect(readFileSync(path("standby/prometheus/wal/0001"), "utf8")).toBe("samples");
    writeFileSync(path("standby/prometheus/stale"), "x");
    expect((await sync.syncNow("manual")).ok).toBe(true);
    expect(existsSync(path("standby/prometheus/stale"))).toBe(false);
    expect(records).toContain("datasync.done");
    await sync.stop();
  }, 60_000);

  it("a changed host key stops the sync: an event, nothing copied", async () => {
    writeFileSync(path("holder/prometheus/wal/0002"), "more");
    const records: string[] = [];
    const sync = make(path("known_hosts_changed"), records);
    await sync.start();
    sync.observeRole("holder");
    const outcome = await sync.syncNow("schedule");
    expect(outcome.ok).toBe(false);
    expect(records).toEqual(["datasync.failed"]);
    expect(existsSync(path("standby/prometheus/wal/0002"))).toBe(false);
    expect(sync.status().lastError).not.toBeNull();
    await sync.stop();
  }, 60_000);
});
