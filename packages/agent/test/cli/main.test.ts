import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { MnhaError } from "@mnha/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main, type CliIo } from "../../src/cli/main.js";
import { ControlServer } from "../../src/control/control-server.js";
import { capturingLogger, FakeHandlers, sampleStatus, tempDir } from "../control/fake-control.js";

const SECRET = "k9Vq3TzX1mWb7Lr2Hc8Ny5Pd0Gs4Jf6Ae-Ru_Ki9Yo3";

function validConfigYaml(controlSocket?: string): string {
  return [
    "node: { name: mn1, address: 10.0.0.11 }",
    "peers:",
    "  - { name: mn2, address: 10.0.0.12 }",
    "vip: { address: 10.0.0.100, interface: br_eth0 }",
    "gateway: { address: 10.0.0.1 }",
    "auth:",
    `  secret: ${SECRET}`,
    // Spelled out: zod 4's .default({}) in the shared schema skips these blocks' inner defaults.
    "timings: {}",
    "arpGuard: {}",
    "keepalived: {}",
    ...(controlSocket ? [`controlSocket: ${controlSocket}`] : []),
    "",
  ].join("\n");
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("mnha CLI main()", () => {
  let dir: ReturnType<typeof tempDir>;
  let socketPath: string;
  let handlers: FakeHandlers;
  let server: ControlServer;
  let configPath: string;

  async function run(args: string[], extra: Partial<CliIo> = {}, argv1 = "/usr/bin/mnha"): Promise<Run> {
    let stdout = "";
    let stderr = "";
    const io: CliIo = {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      // No terminal unless a test gives one: as under a script or CI.
      stdin: Object.assign(new PassThrough(), { isTTY: false }),
      env: { MNHA_CONFIG: configPath },
      ...extra,
    };
    const code = await main(["/usr/bin/node", argv1, ...args], io);
    return { code, stdout, stderr };
  }

  beforeEach(async () => {
    dir = tempDir("mnha-cli-");
    socketPath = join(dir.path, "run", "mnha.sock");
    configPath = join(dir.path, "mnha.yaml");
    writeFileSync(configPath, validConfigYaml(socketPath), { mode: 0o600 }); // it holds the secret inline
    handlers = new FakeHandlers();
    server = new ControlServer({ socketPath, handlers, logger: capturingLogger().logger });
    await server.start();
  });

  afterEach(async () => {
    await server.stop();
    dir.remove();
  });

  describe("status", () => {
    it("prints a table with both nodes' essential values", async () => {
      const { code, stdout, stderr } = await run(["status", "--socket", socketPath]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).toContain("VIP 10.0.0.100/24 on br_eth0: held by mn1");
      expect(stdout).toMatch(/mn1 \(this node\)\s+mn2 \(peer\)/);
      expect(stdout).toMatch(/role\s+holder\s+standby/);
      expect(stdout).toMatch(/epoch\s+7\s+7/);
      expect(stdout).toMatch(/owns VIP\s+yes\s+no/);
      expect(stdout).toMatch(/gateway\s+reachable \(0\.8 ms\)\s+reachable/);
      expect(stdout).toContain("peer mn2 (10.0.0.12): connected, heard 40 ms ago");
      expect(stdout).toMatch(/keepalived\s+master \(pid 4242\)\s+fault/);
      expect(stdout).toMatch(/service db\s+healthy\s+DOWN: connect ECONNREFUSED 127\.0\.0\.1:3306; restore scheduled \(2 attempts\)/);
      expect(stdout).toContain("not eligible to hold the VIP:\n  mn2: critical service db is down");
    });

    it("shows a disconnected peer as unknown rather than guessing", async () => {
      handlers.statusReport = { ...sampleStatus(), vipOwner: null, peer: { node: "mn2", address: "10.0.0.12", connected: false, lastHeardMsAgo: null } };
      const { code, stdout } = await run(["status", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toContain("held by NOBODY");
      expect(stdout).toMatch(/role\s+holder\s+unknown/);
      expect(stdout).toContain("peer mn2 (10.0.0.12): DISCONNECTED (never heard)");
    });

    it("with no link to the peer and the VIP answered when this node last tried to claim it: someone holds it, not NOBODY", async () => {
      handlers.statusReport = { ...sampleStatus(), vipOwner: null, vipAnsweredElsewhere: { detail: "10.0.0.100 answered by 02:4d:4e:48:41:0b", agoMs: 420 }, peer: { node: "mn2", address: "10.0.0.12", connected: false, lastHeardMsAgo: 95_000 } };
      const { code, stdout } = await run(["status", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toContain("VIP 10.0.0.100/24 on br_eth0: held by a node this one cannot name (no link to mn2; 10.0.0.100 answered by 02:4d:4e:48:41:0b, 420 ms ago)");
      expect(stdout).not.toContain("NOBODY");
    });

    it("puts 'VIP unanswered for N s' first while the watchdog's clock runs, and nothing of it when served", async () => {
      handlers.statusReport = { ...sampleStatus(), vipOwner: null, vipUnansweredMs: 7_400 };
      const { code, stdout } = await run(["status", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout.split("\n")[0]).toMatch(/^VIP unanswered for 7 s /);
      handlers.statusReport = { ...sampleStatus(), vipUnansweredMs: null };
      expect((await run(["status", "--socket", socketPath])).stdout).not.toContain("unanswered");
    });

    it("prints the StatusReport as JSON with --json and with zsha2's -json", async () => {
      for (const flag of ["--json", "-json"]) {
        const { code, stdout } = await run(["status", flag, "--socket", socketPath]);
        expect(code).toBe(0);
        expect(JSON.parse(stdout)).toEqual(sampleStatus());
      }
    });

    it("finds the socket through the config's controlSocket when --socket is not given", async () => {
      const viaConfigFlag = await run(["status", "-json", "-config", configPath]);
      expect(viaConfigFlag.code).toBe(0);
      expect(JSON.parse(viaConfigFlag.stdout)).toMatchObject({ vipOwner: "mn1" });
      // And through MNHA_CONFIG when --config is not given either.
      const viaEnv = await run(["status", "--json"]);
      expect(JSON.parse(viaEnv.stdout)).toMatchObject({ vipOwner: "mn1" });
    });
  });

  describe("show-config", () => {
    it("prints the redacted config as JSON with the zsha2 fields", async () => {
      const { code, stdout, stderr } = await run(["show-config", "--config", configPath]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).not.toContain(SECRET);
      const shown = JSON.parse(stdout) as Record<string, unknown>;
      expect(shown).toMatchObject({ nodeip: "10.0.0.11", peerip: "10.0.0.12", dbvip: "10.0.0.100", nic: "br_eth0", gw: "10.0.0.1", peerport: 7946 });
      expect(shown["auth"]).toEqual({ secret: "[redacted]" });
      // Pretty-printed for people.
      expect(stdout.split("\n").length).toBeGreaterThan(10);
    });

    it("names the bad field and exits 2 for an invalid config", async () => {
      const bad = join(dir.path, "bad.yaml");
      writeFileSync(bad, validConfigYaml().replace("address: 10.0.0.100", "address: 10.0.0.300"));
      const { code, stdout, stderr } = await run(["show-config", "--config", bad]);
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr).toContain(`mnha: invalid configuration in ${bad}:`);
      expect(stderr).toContain('vip.address: got "10.0.0.300"; expected an IPv4 address');
      expect(stderr).toMatch(/^hint: fix the field above in /m);
      expect(stderr.match(/^ {2}- /gm)).toHaveLength(1);
      expect(stderr).not.toMatch(/\n\s+at /);
    });

    it("exits 2 with the way out when the config file is missing", async () => {
      const { code, stderr } = await run(["show-config", "-config", join(dir.path, "missing.yaml")]);
      expect(code).toBe(2);
      expect(stderr).toContain("does not exist");
      expect(stderr).toContain("hint: pass --config FILE");
    });
  });

  describe("demote", () => {
    it("refuses without --yes when stdin is not a terminal, and changes nothing", async () => {
      const { code, stderr } = await run(["demote", "--socket", socketPath]);
      expect(code).toBe(2);
      expect(stderr).toContain("needs a confirmation");
      expect(stderr).toContain("hint: pass --yes (zsha2: -yes)");
      expect(handlers.calls.filter((c) => c.method === "demote")).toEqual([]);
    });

    it("moves the VIP with -yes and passes -timeout", async () => {
      const { code, stdout } = await run(["demote", "-yes", "-timeout", "2500", "-socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toBe("VIP moved from mn1 to mn2 in 312 ms (epoch 8): the peer holds the VIP\n");
      expect(handlers.calls).toContainEqual({ method: "demote", options: { timeoutMs: 2500 } });
    });

    it("asks on a terminal and goes ahead on y", async () => {
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      stdin.end("y\n");
      const { code, stderr } = await run(["demote", "--socket", socketPath], { stdin });
      expect(stderr).toContain("Move the VIP 10.0.0.100 from mn1 to the peer mn2? [y/N] ");
      expect(code).toBe(0);
      expect(handlers.calls.some((c) => c.method === "demote")).toBe(true);
    });

    it("asks on a terminal and does nothing on anything but y", async () => {
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      stdin.end("\n");
      const { code, stderr } = await run(["demote", "--socket", socketPath], { stdin });
      expect(code).toBe(1);
      expect(stderr).toContain("demote cancelled; nothing was changed");
      expect(handlers.calls.some((c) => c.method === "demote")).toBe(false);
    });

    it("exits 1 with the reason when the agent refuses", async () => {
      handlers.demoteResult = { ok: false, from: "mn1", to: null, epoch: 7, message: "mn2 is not eligible: critical service db is down", tookMs: 2 };
      const refused = await run(["demote", "--yes", "--socket", socketPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe("mnha: demote refused: mn2 is not eligible: critical service db is down\n");

      const asJson = await run(["demote", "--yes", "--json", "--socket", socketPath]);
      expect(asJson.code).toBe(1);
      expect(JSON.parse(asJson.stdout)).toMatchObject({ ok: false, message: "mn2 is not eligible: critical service db is down" });

      handlers.demoteError = new MnhaError("NOT_HOLDER", "mn1 does not hold the VIP", { hint: "run demote on the node that holds it" });
      const thrown = await run(["demote", "--yes", "--socket", socketPath]);
      expect(thrown.code).toBe(1);
      expect(thrown.stderr).toBe("mnha: mn1 does not hold the VIP\nhint: run demote on the node that holds it\n");
    });
  });

  describe("events", () => {
    it("lists events newest first and passes --limit and --type", async () => {
      const { code, stdout } = await run(["events", "--socket", socketPath]);
      expect(code).toBe(0);
      const lines = stdout.trim().split("\n");
      expect(lines[0]).toMatch(/^TIME\s+NODE\s+TYPE\s+MESSAGE$/);
      expect(lines.slice(1).map((l) => l.match(/event number \d/)?.[0])).toEqual(["event number 3", "event number 2", "event number 1"]);
      expect(handlers.calls).toContainEqual({ method: "events", options: { limit: 50 } });

      const filtered = await run(["events", "-limit", "5", "-type", "service-changed", "-json", "--socket", socketPath]);
      expect(filtered.code).toBe(0);
      expect((JSON.parse(filtered.stdout) as { seq: number }[]).map((e) => e.seq)).toEqual([2]);
      expect(handlers.calls).toContainEqual({ method: "events", options: { limit: 5, type: "service-changed" } });
    });

    it("rejects a limit that is not a positive number with exit 2", async () => {
      const { code, stderr } = await run(["events", "--limit", "0", "--socket", socketPath]);
      expect(code).toBe(2);
      expect(stderr).toContain("--limit takes a whole number from 1 to 10000");
      expect(handlers.calls).toEqual([]);
    });
  });

  describe("history: events filters, failovers, metrics", () => {
    it("turns --since/--until durations and times into absolute instants, and passes --node and --service", async () => {
      const before = Date.now();
      // An --until far ahead: the window must not end before it starts.
      const { code } = await run(["events", "--since", "2h", "--until", "2099-11-25 03:30", "--node", "mn2", "-service", "mn", "--socket", socketPath]);
      expect(code).toBe(0);
      const call = handlers.calls.find((c) => c.method === "events")?.options as { sinceMs: number; untilMs: number; node: string; service: string };
      expect(call.sinceMs).toBeGreaterThanOrEqual(before - 2 * 3_600_000 - 1_000);
      expect(call.sinceMs).toBeLessThanOrEqual(Date.now() - 2 * 3_600_000 + 1_000);
      expect(call.untilMs).toBe(new Date(2099, 10, 25, 3, 30).getTime());
      expect(call).toMatchObject({ node: "mn2", service: "mn", limit: 50 });
    });

    it("refuses a --since it cannot read, with the forms it accepts, and asks the agent nothing", async () => {
      const { code, stderr } = await run(["events", "--since", "yesterday-ish", "--socket", socketPath]);
      expect(code).toBe(2);
      expect(stderr).toContain("--since takes a duration such as 90s, 15m, 2h");
      expect(handlers.calls).toEqual([]);
    });

    it("refuses a window that ends before it starts (--since and --until swapped), and asks the agent nothing", async () => {
      for (const command of ["events", "failovers", "metrics"]) {
        const { code, stderr } = await run([command, "--since", "1h", "--until", "2h", "--socket", socketPath]);
        expect(code, command).toBe(2);
        expect(stderr).toMatch(/^mnha: --since \(\S+\) is after --until \(\S+\): that window is empty\nhint: --since is the earlier moment/);
      }
      expect(handlers.calls).toEqual([]);
    });

    it("names the filters when nothing matches them, so a typo shows", async () => {
      const typo = await run(["events", "--type", "no.such-type", "--node", "mn3", "--socket", socketPath]);
      expect(typo.code).toBe(0);
      expect(typo.stdout).toBe("no HA events match --type no.such-type --node mn3\n");
      handlers.metricsReport = { ...handlers.metricsReport, summaries: [] };
      const metrics = await run(["metrics", "--node", "mn9", "--socket", socketPath]);
      expect(metrics.stdout).toContain("no monitoring samples match --node mn9 in this window");
    });

    it("metrics with only --until: the hour before it", async () => {
      await run(["metrics", "--until", "3h", "--socket", socketPath]);
      const call = handlers.calls.find((c) => c.method === "metrics")?.options as { sinceMs: number; untilMs: number };
      expect(call.untilMs - call.sinceMs).toBe(3_600_000);
      expect(Date.now() - call.untilMs).toBeGreaterThanOrEqual(3 * 3_600_000 - 1_000);
    });

    it("lists failovers with their cause and unanswered time", async () => {
      const { code, stdout } = await run(["failovers", "--since", "1d", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^WHEN\s+FROM\s+TO\s+EPOCH\s+UNANSWERED\s+CAUSE/);
      expect(stdout).toContain("2026-11-25T03:12:04.000Z");
      expect(stdout).toMatch(/mn1\s+mn2\s+8\s+190 ms\s+took the VIP from mn1/);
      const json = await run(["failovers", "-json", "--socket", socketPath]);
      expect(JSON.parse(json.stdout)).toEqual(handlers.failovers_);
    });

    it("summarises metrics per series and shows the store's health", async () => {
      const { code, stdout } = await run(["metrics", "--series", "cpu", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/mn1\s+cpu\.load_percent\s+30\s+1\.50\s+4\.25\s+97\s+3/);
      expect(stdout).toContain("store: ok, 3.0 MiB, 0 pending");
      const call = handlers.calls.find((c) => c.method === "metrics")?.options as { sinceMs: number; series: string };
      expect(call.series).toBe("cpu");
      expect(Date.now() - call.sinceMs).toBeGreaterThanOrEqual(3_600_000 - 1_000);
    });
  });

  describe("version", () => {
    it("prints the CLI's version from package.json and the agent's", async () => {
      const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
      const { code, stdout } = await run(["version", "--socket", socketPath]);
      expect(code).toBe(0);
      expect(stdout).toContain(`mnha CLI ${packageVersion}`);
      expect(stdout).toContain("agent 0.1.0 on mn1 (peer protocol 1)");

      const json = await run(["version", "-json", "--socket", join(dir.path, "nobody-here.sock")]);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ cli: { version: packageVersion }, agent: null, agentError: { code: "CONTROL_UNREACHABLE" } });
    });
  });

  describe("errors and exit codes", () => {
    it("exits 3 with the message and hint when the agent is unreachable", async () => {
      const missing = join(dir.path, "nobody-here.sock");
      const { code, stderr, stdout } = await run(["status", "--socket", missing]);
      expect(code).toBe(3);
      expect(stdout).toBe("");
      expect(stderr).toBe(`mnha: the mnha agent is not running or not listening on ${missing} (no socket there)\nhint: start it: systemctl start mnha, or pass --socket / --config\n`);

      const json = await run(["status", "-json", "--socket", missing]);
      expect(json.code).toBe(3);
      expect(JSON.parse(json.stdout)).toEqual({
        error: { code: "CONTROL_UNREACHABLE", message: expect.stringContaining("not running") as unknown, hint: "start it: systemctl start mnha, or pass --socket / --config" },
      });
    });

    it("names the config when the socket was a guess because the config could not be read", async () => {
      const missingConfig = join(dir.path, "mnha.yml");
      const guessed = join(dir.path, "default.sock");
      const { code, stderr } = await run(["status", "--config", missingConfig], { defaultSocketPath: guessed });
      expect(code).toBe(3);
      expect(stderr).toBe(
        `mnha: the mnha agent is not running or not listening on ${guessed} (no socket there)\n` +
          `hint: the control socket is the default because ${missingConfig} could not be read (config file ${missingConfig} does not exist); pass the right --config (or --socket), or start the agent: systemctl start mnha\n`,
      );

      const badConfig = join(dir.path, "bad.yaml");
      writeFileSync(badConfig, validConfigYaml().replace("node: { name: mn1, address: 10.0.0.11 }", "node: { name: mn1, adress: 10.0.0.11 }"));
      const json = await run(["status", "-json", "--config", badConfig], { defaultSocketPath: guessed });
      expect(json.code).toBe(3);
      const reported = (JSON.parse(json.stdout) as { error: { code: string; hint: string } }).error;
      expect(reported.code).toBe("CONTROL_UNREACHABLE");
      expect(reported.hint).toContain(`${badConfig} could not be read (invalid configuration in ${badConfig}); pass the right --config`);
    });

    it("reaches the agent through the default socket when the config is broken", async () => {
      const { code, stdout } = await run(["status", "--config", join(dir.path, "gone.yaml")], { defaultSocketPath: socketPath });
      expect(code).toBe(0);
      expect(stdout).toContain("mn1");
    });

    it("exits 2 on an unknown flag, showing the valid options", async () => {
      const { code, stderr } = await run(["status", "--bogus", "--socket", socketPath]);
      expect(code).toBe(2);
      expect(stderr).toContain("mnha: unknown option '--bogus'");
      expect(stderr).toContain("--json");
      expect(handlers.calls).toEqual([]);
    });

    it("exits 2 on an unknown command, listing the commands", async () => {
      const { code, stderr } = await run(["promote"]);
      expect(code).toBe(2);
      expect(stderr).toContain("mnha: unknown command 'promote'");
      for (const command of ["status", "show-config", "demote", "events", "version"]) expect(stderr).toContain(command);
    });

    it("upgrade-ha is a command of its own: it refuses a file that is not a suite bundle before doing anything", async () => {
      const { code, stderr } = await run(["upgrade-ha", "-yes", "whatever.bin"]);
      expect(code).toBe(2);
      expect(stderr).toContain("whatever.bin is not a suite bundle (mnha-suite-<version>-linux-x64.tar.gz)");
      expect(stderr).not.toContain("not available in this version");
      expect(handlers.calls).toEqual([]);
      const help = await run(["upgrade-ha", "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("--rejoin-timeout");
    });

    it("exits 0 for help and 2 when no command is given", async () => {
      const help = await run(["help", "demote"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("--yes");
      const statusHelp = await run(["status", "-help"]);
      expect(statusHelp.code).toBe(0);
      expect(statusHelp.stdout).toContain("--json");
      const nothing = await run([]);
      expect(nothing.code).toBe(2);
      expect(nothing.stderr).toContain("Commands:");
    });

    it("answers to zsha2 when invoked as zsha2", async () => {
      const help = await run(["--help"], {}, "/usr/local/bin/zsha2");
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: zsha2 /);
      expect(help.stdout).toContain("Exit codes:");
      const failed = await run(["status", "--socket", join(dir.path, "none.sock")], {}, "/usr/local/bin/zsha2");
      expect(failed.stderr).toMatch(/^zsha2: the mnha agent is not running/);
    });
  });

  describe("agent", () => {
    it("runs the daemon with the config path and exits with its code", async () => {
      const seen: unknown[] = [];
      const loadAgentModule = async () => ({ runAgent: async (options: { configPath: string }) => (seen.push(options), 0) });
      const { code } = await run(["agent", "--config", configPath], { loadAgentModule });
      expect(code).toBe(0);
      expect(seen).toEqual([{ configPath }]);
    });

    it("explains a daemon that cannot be loaded, and a daemon's config error", async () => {
      const missing = await run(["agent"], { loadAgentModule: () => Promise.reject(new Error("Cannot find module 'dist/daemon/agent.js'")) });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("mnha: the mnha agent daemon cannot be loaded: Cannot find module");
      expect(missing.stderr).toContain("hint: ");

      const configError = new MnhaError("CONFIG_NOT_FOUND", "config file /nope.yaml does not exist", { hint: "pass --config FILE" });
      const refused = await run(["agent"], { loadAgentModule: async () => ({ runAgent: () => Promise.reject(configError) }) });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe("mnha: config file /nope.yaml does not exist\nhint: pass --config FILE\n");
    });
  });
});
