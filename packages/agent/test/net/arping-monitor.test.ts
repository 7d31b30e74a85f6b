import { silentLogger } from "@mnha/shared";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { DuplicateCheckReport } from "../../src/contracts.js";
import { ArpGuard } from "../../src/net/arp-guard.js";
import { ArpingMonitor, arpingSchedule, parseArpingReplyLine } from "../../src/net/arping-monitor.js";
import { captureLogger } from "../peer/helpers.js";
import { NetnsLab, run } from "./netns-lab.js";

const VIP = "10.0.0.100";
const OWN = "02:00:00:00:00:0a";
const OTHER = "02:00:00:00:00:0c";
const THIRD = "02:00:00:00:00:0d";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("parseArpingReplyLine", () => {
  it("reads the MAC and round trip of a reply for the VIP, and nothing else", () => {
    expect(parseArpingReplyLine(`Unicast reply from ${VIP} [7A:D3:7E:68:C3:FB]  0.577ms`, VIP)).toEqual({ mac: "7a:d3:7e:68:c3:fb", rttMs: 0.577 });
    expect(parseArpingReplyLine(`Broadcast reply from ${VIP} [7A:D3:7E:68:C3:FB]  12.100ms`, VIP)).toEqual({ mac: "7a:d3:7e:68:c3:fb", rttMs: 12.1 });
    expect(parseArpingReplyLine(`Unicast reply from ${VIP} [7A:D3:7E:68:C3:FB]`, VIP)).toEqual({ mac: "7a:d3:7e:68:c3:fb", rttMs: null });
    expect(parseArpingReplyLine("Unicast reply from 10.0.0.9 [11:22:33:44:55:66]  0.5ms", VIP)).toBeNull();
    expect(parseArpingReplyLine(`ARPING ${VIP} from 0.0.0.0 eth0`, VIP)).toBeNull();
    expect(parseArpingReplyLine("Sent 4 probes (4 broadcast(s))", VIP)).toBeNull();
  });
});

describe("arpingSchedule", () => {
  it("spreads the interval over staggered arpings with whole-second periods, or declines", () => {
    expect(arpingSchedule(500, 200)).toEqual({ streams: 2, periodSeconds: 1 });
    expect(arpingSchedule(1_000, 200)).toEqual({ streams: 1, periodSeconds: 1 });
    expect(arpingSchedule(700, 200)).toEqual({ streams: 2, periodSeconds: 1 });
    expect(arpingSchedule(2_500, 200)).toEqual({ streams: 1, periodSeconds: 2 });
    expect(arpingSchedule(250, 200)).toEqual({ streams: 4, periodSeconds: 1 });
    expect(arpingSchedule(0, 200), "0: the check is off").toBeNull();
    expect(arpingSchedule(100, 200), "would need 10 arpings").toBeNull();
    expect(arpingSchedule(500, 900), "a window as long as the period cannot be told apart").toBeNull();
  });
});

/**
 * A fake arping: a shell script that prints reply lines at scripted times, as iputils arping
 * would (each line's round trip counted from the request it answers), then exits.
 */
class FakeArping {
  readonly dir = mkdtempSync(join(tmpdir(), "mnha-fake-arping-"));
  readonly command = join(this.dir, "arping");
  readonly starts = join(this.dir, "starts");

  /** `fail.when`: a sh condition (given this fake's dir) under which a start fails at once: exit 2, `fail.stderr` on stderr. */
  constructor(body: string, fail?: { when: (dir: string) => string; stderr: string }) {
    writeFileSync(this.starts, "");
    const failing = fail ? `if ${fail.when(this.dir)}; then echo "${fail.stderr}" >&2; exit 2; fi\n` : "";
    writeFileSync(this.command, `#!/bin/sh\necho "$$ $(date +%s%N) $*" >> ${this.starts}\n${failing}echo "ARPING ${VIP} from 0.0.0.0 eth0"\n${body}\n`);
    chmodSync(this.command, 0o755);
  }

  startLines(): string[] {
    return readFileSync(this.starts, "utf8").split("\n").filter((l) => l !== "");
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A fake arping's body that answers nobody, every second, until killed. */
const QUIET = ["while true; do", "sleep 1", "done"].join("\n");

const reply = (mac: string, rttMs: number) => `echo "Unicast reply from ${VIP} [${mac.toUpperCase()}]  ${rttMs.toFixed(3)}ms"`;

function monitorWith(fake: FakeArping, streams = 1, lifetimeSeconds = 600): { monitor: ArpingMonitor; checks: DuplicateCheckReport[] } {
  const options = { iface: "eth0", vip: VIP, intervalMs: 1_000 / streams, timeoutMs: 200, command: fake.command, ownMac: async () => OWN, logger: silentLogger(), lifetimeSeconds };
  const monitor = new ArpingMonitor(options, { streams, periodSeconds: 1 });
  const checks: DuplicateCheckReport[] = [];
  monitor.onCheck((c) => checks.push(c));
  return { monitor, checks };
}

describe("ArpingMonitor judging each request (fake arping)", () => {
  it("reports per request: the other MACs in time, nobody when silent, a late answer as none; an exit reports nothing and arping is started again", async () => {
    const fake = new FakeArping(
      [
        // request 1 (t≈0.05 s): two other holders and ourselves answer
        "sleep 0.05",
        `${reply(OTHER, 0.5)}; ${reply(OWN, 0.6)}; ${reply(THIRD, 0.7)}`,
        // request 2 (t≈1.05 s): nobody; request 3 (t≈2.05 s): an answer 350 ms late (window 200 ms)
        "sleep 2.35",
        reply(OTHER, 350),
        // request 4 (t≈3.05 s): the other holder again
        "sleep 0.7",
        reply(OTHER, 0.4),
        "sleep 0.3",
        "echo 'arping: recvfrom: Network is down' >&2",
        "exit 2",
      ].join("\n"),
    );
    const { monitor, checks } = monitorWith(fake);
    try {
      monitor.setActive(true);
      await sleep(3_600);
      expect(checks.map((c) => [...c.otherMacs].sort())).toEqual([[OTHER, THIRD].sort(), [], [], [OTHER]]);
      expect(checks.every((c) => c.ownMac === OWN)).toBe(true);
      expect(checks[0]?.detail).toContain(OTHER);
      expect(checks[1]?.detail).toContain("no other answer");
      // arping exited at ≈3.35 s: nothing reported for its cut-short request; started again after ≈1 s.
      await sleep(1_000);
      expect(checks.length, "no check from an arping that exited").toBeLessThanOrEqual(5);
      await sleep(1_500);
      expect(fake.startLines().length).toBeGreaterThanOrEqual(2);
      expect(fake.startLines()[0]).toContain(`-b -s 0.0.0.0 -i 1 -w 600 -I eth0 ${VIP}`);
    } finally {
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);

  it("an arping that reached its own -w deadline (exit 1, no answer) is started again at once, not after the failure backoff", async () => {
    // Lifetime 1 s: an exit after ≥ 0.5 s with status 0/1 and a quiet stderr is the planned end.
    const fake = new FakeArping(["sleep 0.6", "exit 1"].join("\n"));
    const { monitor, checks } = monitorWith(fake, 1, 1);
    try {
      monitor.setActive(true);
      await sleep(1_300);
      // Planned restarts at ≈0.6 s and ≈1.2 s; after a failure the next start would come at ≈1.6 s.
      expect(fake.startLines().length).toBeGreaterThanOrEqual(2);
      expect(fake.startLines()[0]).toContain("-w 1 ");
      expect(checks.length, "each run's first request judged: nobody answered").toBeGreaterThanOrEqual(1);
      expect(checks.every((c) => c.otherMacs.length === 0)).toBe(true);
    } finally {
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);

  it("runs the arpings only while active, staggered evenly, and reports nothing once inactive", async () => {
    const fake = new FakeArping(["while true; do", "sleep 0.2", reply(OTHER, 0.3), "sleep 0.8", "done"].join("\n"));
    const { monitor, checks } = monitorWith(fake, 2);
    try {
      monitor.setActive(true);
      await sleep(1_500);
      const starts = fake.startLines();
      expect(starts.length).toBe(2);
      const [first, second] = starts.map((line) => Number(line.split(" ")[1]) / 1e6);
      expect((second ?? 0) - (first ?? 0), "the second arping starts half a period after the first").toBeGreaterThan(300);
      expect((second ?? 0) - (first ?? 0)).toBeLessThan(900);
      expect(checks.length).toBeGreaterThanOrEqual(2);
      expect(checks.every((c) => c.otherMacs.length === 1 && c.otherMacs[0] === OTHER)).toBe(true);
      monitor.setActive(false);
      const seen = checks.length;
      await sleep(1_200);
      expect(checks.length).toBe(seen);
      const pids = starts.map((line) => Number(line.split(" ")[0]));
      for (const pid of pids) expect(() => process.kill(pid, 0), `arping ${pid} stopped`).toThrow();
      expect(fake.startLines().length).toBe(2);
    } finally {
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);

  it("status: failing while every arping fails (named by its exit), running again once one judges a request", async () => {
    // Broken while the flag exists: exits at once as arping does without CAP_NET_RAW; then answers nobody.
    const fake = new FakeArping(QUIET, { when: (dir) => `[ -e ${join(dir, "broken")} ]`, stderr: "arping: socket: Operation not permitted" });
    const brokenFlag = join(fake.dir, "broken");
    writeFileSync(brokenFlag, "");
    const { monitor, checks } = monitorWith(fake, 2);
    const states: string[] = [];
    monitor.onStateChange((status) => states.push(status.state));
    try {
      monitor.setActive(true);
      // Both staggered arpings (the second starts 500 ms in) have failed at least once by now.
      await sleep(1_500);
      expect(monitor.status()).toEqual({ state: "failing", problem: `${fake.command} exited (code 2): arping: socket: Operation not permitted`, lastCheckMsAgo: null });
      expect(checks).toEqual([]);
      rmSync(brokenFlag);
      // Started again after its backoff (2 s by now); running once a request is judged (no answer).
      await vi.waitFor(() => expect(monitor.status().state).toBe("running"), { timeout: 8_000, interval: 50 });
      const status = monitor.status();
      expect(checks.length).toBeGreaterThan(0);
      expect(status.lastCheckMsAgo).toBeLessThan(1_500);
      await vi.waitFor(() => expect(monitor.status().problem).toBeNull(), { timeout: 8_000, interval: 50 });
      monitor.setActive(false);
      expect(states, "each change of state told once (one arping failing of two is still running)").toEqual(["running", "failing", "running", "idle"]);
    } finally {
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);

  it("status: one arping of two failing is still running, and says which failed and that it checks less often", async () => {
    // The first arping started takes the token and fails; every later one answers nobody.
    const fake = new FakeArping(QUIET, { when: (dir) => `rm ${join(dir, "fail-once")} 2>/dev/null`, stderr: "arping: recvfrom: Network is down" });
    writeFileSync(join(fake.dir, "fail-once"), "");
    const { monitor } = monitorWith(fake, 2);
    const states: string[] = [];
    monitor.onStateChange((status) => states.push(status.state));
    try {
      monitor.setActive(true);
      await vi.waitFor(() => expect(monitor.status().problem).toBe(`1 of 2 arpings failing (checks less often): ${fake.command} exited (code 2): arping: recvfrom: Network is down`), { timeout: 3_000, interval: 10 });
      expect(monitor.status().state).toBe("running");
      // Restarted after its 1 s backoff, it judges a request: nothing failing any more.
      await vi.waitFor(() => expect(monitor.status().problem).toBeNull(), { timeout: 8_000, interval: 50 });
      expect(states, "never failing: the other arping kept checking").toEqual(["running"]);
    } finally {
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);

  it("status: an arping binary deleted by hand is failing, named with the path and ENOENT; the VIP's holder is told nothing else", async () => {
    const missing = join(tmpdir(), "mnha-no-such-dir", "arping");
    const options = { iface: "eth0", vip: VIP, intervalMs: 500, timeoutMs: 200, command: missing, ownMac: async () => OWN, logger: silentLogger() };
    const monitor = new ArpingMonitor(options, { streams: 2, periodSeconds: 1 });
    const checks: DuplicateCheckReport[] = [];
    monitor.onCheck((c) => checks.push(c));
    try {
      monitor.setActive(true);
      await vi.waitFor(() => expect(monitor.status()).toEqual({ state: "failing", problem: `${missing} could not be run (ENOENT)`, lastCheckMsAgo: null }), { timeout: 4_000, interval: 20 });
      expect(checks, "no check reported: a broken tool must not take the VIP away").toEqual([]);
      monitor.setActive(false);
      expect(monitor.status().state).toBe("idle");
    } finally {
      monitor.stop();
    }
  }, 20_000);

  it("while its own MAC cannot be looked up: keeps trying each interval, says so once, starts the arpings when it works; inactive stops the tries", async () => {
    const fake = new FakeArping(QUIET);
    const { logger, lines } = captureLogger();
    let lookups = 0;
    let failFor = 6;
    const ownMac = async (): Promise<string> => {
      lookups++;
      if (lookups <= failFor) throw new Error("eth0: no such device");
      return OWN;
    };
    const monitor = new ArpingMonitor({ iface: "eth0", vip: VIP, intervalMs: 100, timeoutMs: 50, command: fake.command, ownMac, logger }, { streams: 1, periodSeconds: 1 });
    const said = (text: string) => lines.filter((l) => l.msg.includes(text));
    let again: ArpingMonitor | null = null;
    try {
      expect(monitor.status()).toEqual({ state: "idle", problem: null, lastCheckMsAgo: null });
      monitor.setActive(true);
      await sleep(450);
      expect(lookups, "tried again each interval").toBeGreaterThanOrEqual(3);
      expect(fake.startLines(), "no arping without our MAC").toEqual([]);
      expect(monitor.status()).toMatchObject({ state: "failing", problem: expect.stringMatching(/^own MAC on eth0 unknown \(eth0: no such device\), \d+ tries$/) });
      await sleep(800);
      expect(lookups).toBe(7);
      expect(monitor.status().state, "our MAC known, the arping started").toBe("running");
      expect(said("own MAC unknown"), "said once, not at each try").toHaveLength(1);
      expect(said("own MAC unknown")[0]).toMatchObject({ level: 40, failures: 1 });
      expect(said("own MAC found")[0]).toMatchObject({ level: 30, failures: 6 });
      expect(fake.startLines()).toHaveLength(1);

      // Deactivated while the lookup fails: the tries stop with it.
      monitor.stop();
      again = new ArpingMonitor({ iface: "eth0", vip: VIP, intervalMs: 100, timeoutMs: 50, command: fake.command, ownMac, logger }, { streams: 1, periodSeconds: 1 });
      lookups = 0;
      failFor = Number.POSITIVE_INFINITY;
      again.setActive(true);
      await sleep(350);
      again.setActive(false);
      const triedWhileActive = lookups;
      expect(triedWhileActive).toBeGreaterThanOrEqual(2);
      await sleep(400);
      expect(lookups, "no lookup after deactivation").toBe(triedWhileActive);
    } finally {
      again?.stop();
      monitor.stop();
      fake.cleanup();
    }
  }, 20_000);
});

// Real iputils arping on a namespace segment: the holder sees the other holder, then sees it gone.
describe("ArpingMonitor with real arping on a namespace segment", () => {
  const lab = new NetnsLab();
  let hostB = "";
  let hostC = "";
  let macB = "";
  let macC = "";

  beforeAll(async () => {
    const sw = await lab.namespace("arpm-sw");
    hostB = await lab.namespace("arpm-b");
    hostC = await lab.namespace("arpm-c");
    await lab.bridge(sw, "br0");
    await lab.plug({ ns: hostB, iface: "arpmb0", cidr: "10.251.3.3/24" }, sw, "br0", "mb");
    await lab.plug({ ns: hostC, iface: "arpmc0", cidr: "10.251.3.4/24" }, sw, "br0", "mc");
    await lab.addAddress(hostB, "arpmb0", "10.251.3.50/24");
    await lab.addAddress(hostC, "arpmc0", "10.251.3.50/24");
    macB = await lab.mac(hostB, "arpmb0");
    macC = await lab.mac(hostC, "arpmc0");
  });
  afterAll(() => lab.cleanup());

  it("reports the other holder's MAC every interval, then nobody once it let the address go", async () => {
    const guard = new ArpGuard({ iface: "arpmb0", vip: "10.251.3.50", timeoutMs: 200, logger: silentLogger(), netns: hostB });
    const watch = guard.duplicateWatch(500);
    expect(watch).not.toBeNull();
    const checks: DuplicateCheckReport[] = [];
    watch?.onCheck((c) => checks.push(c));
    try {
      watch?.setActive(true);
      await sleep(2_600);
      const both = checks.length;
      expect(both, "about one check per 500 ms").toBeGreaterThanOrEqual(3);
      expect(checks.every((c) => c.ownMac === macB && c.otherMacs.length === 1 && c.otherMacs[0] === macC)).toBe(true);
      await run(["ip", "-n", hostC, "addr", "del", "10.251.3.50/24", "dev", "arpmc0"]);
      await sleep(2_600);
      const after = checks.slice(both + 2); // a request already answered may still be reported
      expect(after.length).toBeGreaterThanOrEqual(2);
      expect(after.every((c) => c.otherMacs.length === 0)).toBe(true);
    } finally {
      watch?.stop();
    }
  }, 30_000);
});
