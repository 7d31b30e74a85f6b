import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MnhaError, silentLogger } from "@mnha/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatewayMonitor, defaultPingCommand, parsePingReply, parsePingRtt, type GatewayMonitorOptions } from "../../src/checks/gateway-monitor.js";
import { NetnsLab, run } from "../net/netns-lab.js";
import { notRunning, sleep, waitFor } from "./helpers.js";

// Real pings go to 127.0.0.1 only; every other case uses a fake ping script.
let dir: string;
const monitors: GatewayMonitor[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mnha-gateway-"));
});
afterEach(async () => {
  for (const monitor of monitors.splice(0)) await monitor.stop();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function gatewayMonitor(options: Partial<GatewayMonitorOptions>): { monitor: GatewayMonitor; changes: [boolean, string][] } {
  const monitor = new GatewayMonitor({ address: "127.0.0.1", intervalMs: 50, timeoutMs: 400, rise: 2, fall: 2, logger: silentLogger(), ...options });
  const changes: [boolean, string][] = [];
  monitor.onChange((reachable, detail) => changes.push([reachable, detail]));
  monitors.push(monitor);
  return { monitor, changes };
}

function fakePing(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe("GatewayMonitor", () => {
  it("finds 127.0.0.1 reachable after `rise` replies, with a round-trip time", async () => {
    const { monitor, changes } = gatewayMonitor({});
    expect(monitor.reachable()).toBe(false);
    await monitor.start();
    expect(await waitFor(() => changes.length > 0, 3_000)).toBe(true);
    expect(changes).toHaveLength(1);
    expect(changes[0]?.[0]).toBe(true);
    expect(changes[0]?.[1]).toMatch(/^reply from 127\.0\.0\.1 in [\d.]+ ms$/);
    expect(monitor.reachable()).toBe(true);
    expect(monitor.lastRttMs()).toBeGreaterThanOrEqual(0);
    expect(monitor.lastRttMs()).toBeLessThan(400);
  });

  it("stays unreachable, without a change event, when ping never gets a reply", async () => {
    const { monitor, changes } = gatewayMonitor({ pingCommand: "/bin/false", fall: 1 });
    await monitor.start();
    expect(await waitFor(() => monitor.detail() !== "not pinged yet", 2_000)).toBe(true);
    await sleep(200);
    expect(monitor.reachable()).toBe(false);
    expect(monitor.lastRttMs()).toBeNull();
    expect(monitor.detail()).toBe("no reply from 127.0.0.1 within 400 ms");
    expect(changes).toEqual([]);
  });

  it("turns unreachable after `fall` lost replies, and runs one long-running ping with the expected arguments", async () => {
    const up = join(dir, "gateway-up");
    const argsFile = join(dir, "ping-args");
    const startsFile = join(dir, "ping-starts");
    writeFileSync(up, "");
    // Sends an echo every 50 ms like iputils ping and answers while the marker exists.
    const ping = fakePing(
      "fake-ping",
      `printf '%s ' "$@" > "${argsFile}"\necho start >> "${startsFile}"\nseq=1\nwhile :; do\n  if [ -e "${up}" ]; then echo "64 bytes from 127.0.0.1: icmp_seq=$seq ttl=64 time=0.123 ms"; fi\n  seq=$((seq + 1))\n  sleep 0.05\ndone`,
    );
    const { monitor, changes } = gatewayMonitor({ pingCommand: ping, timeoutMs: 300, rise: 1, fall: 3 });
    await monitor.start();
    expect(await waitFor(() => changes.length === 1, 2_000)).toBe(true);
    expect(changes[0]).toEqual([true, "reply from 127.0.0.1 in 0.123 ms"]);
    expect(monitor.lastRttMs()).toBe(0.123);
    expect(readFileSync(argsFile, "utf8").trim()).toBe("-n -O -i 0.05 127.0.0.1");

    unlinkSync(up);
    const lostAt = performance.now();
    expect(await waitFor(() => changes.length === 2, 3_000)).toBe(true);
    // Three lost replies, each judged at its deadline (300 ms after its echo): not before the third.
    expect(performance.now() - lostAt).toBeGreaterThanOrEqual(300);
    expect(changes[1]).toEqual([false, "no reply from 127.0.0.1 within 300 ms"]);
    expect(monitor.reachable()).toBe(false);
    expect(monitor.lastRttMs()).toBeNull();
    // The same process all along: no ping per probe.
    expect(readFileSync(startsFile, "utf8").trim().split("\n")).toHaveLength(1);
  });

  it("counts a reply later than the timeout as lost", async () => {
    // The reply to the first echo comes 350 ms after it was sent (the fake sleeps as long).
    const ping = fakePing("slow-ping", `sleep 0.35\necho "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=350 ms"\nexec sleep 60`);
    const { monitor, changes } = gatewayMonitor({ pingCommand: ping, intervalMs: 1_000, timeoutMs: 300, rise: 1, fall: 1 });
    await monitor.start();
    expect(await waitFor(() => monitor.detail() !== "not pinged yet", 2_000)).toBe(true);
    expect(monitor.detail()).toBe("no reply from 127.0.0.1 within 300 ms (one came after 350 ms)");
    expect(monitor.reachable()).toBe(false);
    expect(monitor.lastRttMs()).toBeNull();
    expect(changes).toEqual([]);
  });

  it("judges each echo on its own deadline when ping prints nothing, and kills ping on stop", async () => {
    const pidFile = join(dir, "hung-ping.pid");
    const ping = fakePing("hung-ping", `echo $$ > "${pidFile}"\nexec sleep 60`);
    const { monitor } = gatewayMonitor({ pingCommand: ping, timeoutMs: 100, rise: 1, fall: 1 });
    const startedAt = performance.now();
    await monitor.start();
    expect(await waitFor(() => monitor.detail() !== "not pinged yet", 2_000)).toBe(true);
    // The first echo's deadline: its timeout plus the start-up slack, not sooner.
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(100);
    expect(monitor.detail()).toBe("no reply from 127.0.0.1 within 100 ms");
    // The shell's redirection creates the file before echo writes the pid: wait for the pid.
    const writtenPid = (): number => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : 0);
    expect(await waitFor(() => writtenPid() > 0)).toBe(true);
    const pid = writtenPid();
    await monitor.stop();
    expect(await waitFor(() => notRunning(pid), 2_000)).toBe(true);
  });

  it("takes ping's count again when its echoes fell behind the estimate (replies in time count)", async () => {
    const printed = join(dir, "behind-ping-printed");
    // Silent for 1.5 s (some 25 echoes judged lost at 50 ms), then answers from icmp_seq=1,
    // as if ping had sent far fewer echoes than estimated; it notes each reply it prints.
    const ping = fakePing("behind-ping", `sleep 1.5\nseq=1\nwhile :; do\n  echo "64 bytes from 127.0.0.1: icmp_seq=$seq ttl=64 time=0.1 ms"\n  echo $seq >> "${printed}"\n  seq=$((seq + 1))\n  sleep 0.05\ndone`);
    const { monitor, changes } = gatewayMonitor({ pingCommand: ping, timeoutMs: 100, rise: 2, fall: 1 });
    let repliesWhenReachable = 0;
    monitor.onChange(() => {
      repliesWhenReachable = readFileSync(printed, "utf8").trim().split("\n").length;
    });
    await monitor.start();
    expect(await waitFor(() => changes.length === 1, 5_000)).toBe(true);
    expect(changes[0]).toEqual([true, "reply from 127.0.0.1 in 0.1 ms"]);
    // Reachable after `rise` replies, not after ping's count caught up with the estimate.
    expect(repliesWhenReachable).toBeLessThanOrEqual(4);
  });

  it("starts ping again when it dies, and a dead ping counts as a failure", async () => {
    const startsFile = join(dir, "dying-ping-starts");
    // Answers twice, then dies as if killed.
    const ping = fakePing("dying-ping", `echo start >> "${startsFile}"\necho "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.2 ms"\nsleep 0.05\necho "64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.2 ms"\nkill -TERM $$`);
    const { monitor, changes } = gatewayMonitor({ pingCommand: ping, rise: 2, fall: 1 });
    await monitor.start();
    expect(await waitFor(() => changes.length >= 2, 3_000)).toBe(true);
    expect(changes[0]).toEqual([true, "reply from 127.0.0.1 in 0.2 ms"]);
    expect(changes[1]).toEqual([false, "ping 127.0.0.1 exited (signal SIGTERM)"]);
    expect(await waitFor(() => existsSync(startsFile) && readFileSync(startsFile, "utf8").trim().split("\n").length >= 2, 3_000)).toBe(true);
    // Restarted, it answers again: reachable again after `rise` replies.
    expect(await waitFor(() => changes.length >= 3, 3_000)).toBe(true);
    expect(changes[2]?.[0]).toBe(true);
  });

  it("reports ping's own error", async () => {
    const ping = fakePing("broken-ping", 'echo "ping: connect: Network is unreachable" >&2\nexit 2');
    const { monitor } = gatewayMonitor({ pingCommand: ping, fall: 1 });
    await monitor.start();
    expect(await waitFor(() => monitor.detail() !== "not pinged yet", 2_000)).toBe(true);
    expect(monitor.detail()).toBe("ping 127.0.0.1 failed: ping: connect: Network is unreachable");
  });

  it("refuses an address that is not IPv4", () => {
    const make = () => new GatewayMonitor({ address: "-f", intervalMs: 50, timeoutMs: 400, rise: 1, fall: 1, logger: silentLogger() });
    expect(make).toThrow(MnhaError);
    expect(make).toThrow(/not an IPv4 address/);
  });

  it("runs a ping that dies once nobody reads it, even while the gateway is silent (an agent killed outright leaves no ping behind)", async () => {
    // A throwaway namespace whose 127.0.0.1 never answers an echo: the gateway down.
    const netns = new NetnsLab();
    try {
      const ns = await netns.namespace("gw-orphan");
      await run(["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "mnha_ut"]);
      await run(["ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "mnha_ut", "out", "{ type filter hook output priority 0; }"]);
      await run(["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "mnha_ut", "out", "icmp", "type", "echo-request", "drop"]);
      const { monitor } = gatewayMonitor({ intervalMs: 200, pingCommand: defaultPingCommand() });
      const [file, ...args] = monitor.pingArgv();
      const ping = spawn("ip", ["netns", "exec", ns, file as string, ...args], { stdio: ["ignore", "pipe", "ignore"] });
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => ping.on("exit", (code, signal) => resolve(signal ?? code)));
      const lines: string[] = [];
      ping.stdout.setEncoding("utf8").on("data", (chunk: string) => lines.push(chunk));
      expect(await waitFor(() => lines.join("").includes("no answer yet"), 3_000)).toBe(true);
      // The reader goes away, as when the agent is SIGKILLed: the next line kills ping.
      ping.stdout.destroy();
      const outcome = await Promise.race([exited, sleep(3_000).then(() => "still running")]);
      if (outcome === "still running") ping.kill("SIGKILL");
      expect(outcome).toBe("SIGPIPE");
    } finally {
      await netns.cleanup();
    }
  });

  it("uses the installed ping by default", () => {
    expect(existsSync(defaultPingCommand())).toBe(true);
  });
});

describe("parsePingReply", () => {
  it.each([
    { line: "64 bytes from 10.0.0.1: icmp_seq=7 ttl=64 time=0.293 ms", reply: { seq: 7, rttMs: 0.293 } },
    { line: "64 bytes from 10.0.0.1: icmp_seq=65535 ttl=64 time<1 ms", reply: { seq: 65535, rttMs: 1 } },
    { line: "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.", reply: null },
    { line: "From 10.0.0.2 icmp_seq=3 Destination Host Unreachable", reply: null },
    { line: "no answer yet for icmp_seq=4", reply: null },
  ])("$line", ({ line, reply }) => {
    expect(parsePingReply(line)).toEqual(reply);
  });
});

describe("parsePingRtt", () => {
  it.each([
    { line: "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.293 ms", rtt: 0.293 },
    { line: "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=12 ms", rtt: 12 },
    { line: "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time<1 ms", rtt: 1 },
    { line: "1 packets transmitted, 0 received, 100% packet loss, time 0ms", rtt: null },
  ])("$line: $rtt", ({ line, rtt }) => {
    expect(parsePingRtt(line)).toBe(rtt);
  });
});
