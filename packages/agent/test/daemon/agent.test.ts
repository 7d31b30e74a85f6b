import { DUPLICATE_CHECK_MIN_PROTOCOL_VERSION, DUPLICATE_CHECK_PROBLEM_MAX, PAIR_SETTINGS_MIN_PROTOCOL_VERSION, decodeLinkMessage, encode, type Heartbeat } from "@mnha/protocol";
import { isMnhaError } from "@mnha/shared";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Agent } from "../../src/daemon/agent.js";
import { operatorError } from "../../src/daemon/run.js";
import type { MetricsSnapshot } from "../../src/metrics/metrics.js";
import { loadedConfig, memoryParts, silentLogger, type MemoryParts } from "./in-memory.js";

/**
 * The daemon with in-memory parts: start order, a start that fails undoing itself, stop, the
 * watchdog's repair reaching Keepalived, and status. No root, no Keepalived, no sockets.
 */

const START_ORDER = ["store", "sync", "keepalived", "control", "services", "gateway", "peer link", "sampler"];
const agents: Agent[] = [];

function makeAgent(parts: MemoryParts, overrides: Parameters<typeof loadedConfig>[0] = {}): Agent {
  const agent = new Agent({ loaded: loadedConfig(overrides), logger: silentLogger, components: parts.components, vipPollMs: 20 });
  agents.push(agent);
  return agent;
}

const dirs: string[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop("test over").catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.useRealTimers();
});

describe("the agent daemon (in-memory parts)", () => {
  it("starts its parts in order (Keepalived, gate closed, before any socket) and stops them in reverse", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts);
    await agent.start();
    expect(parts.journal).toEqual(START_ORDER.map((p) => `start ${p}`));
    expect(parts.keepalived.gate).toBe(false);
    parts.journal.length = 0;
    await agent.stop("test");
    expect(parts.journal).toEqual([...START_ORDER].reverse().map((p) => `stop ${p}`));
    expect(parts.store.events.map((e) => e.type)).toEqual(expect.arrayContaining(["config.loaded", "agent.started", "agent.stopping", "agent.stopped"]));
  });

  it.each(START_ORDER)("a start that fails at %s stops what it had started, in reverse order, and throws", async (failing) => {
    const parts = memoryParts();
    const part = { store: parts.store, sync: parts.sync, keepalived: parts.keepalived, control: parts.control, services: parts.services, gateway: parts.gateway, "peer link": parts.link, sampler: parts.sampler }[failing]!;
    part.failStart = new Error(`${failing} broke`);
    const agent = makeAgent(parts);
    await expect(agent.start()).rejects.toThrow(`${failing} broke`);
    const index = START_ORDER.indexOf(failing);
    const started = START_ORDER.slice(0, index);
    expect(parts.journal).toEqual([...START_ORDER.slice(0, index + 1).map((p) => `start ${p}`), `stop ${failing}`, ...[...started].reverse().map((p) => `stop ${p}`)]);
    expect(parts.store.events.some((e) => e.type === "agent.start-failed")).toBe(true);
    // Nothing is left running: a later stop has nothing to do.
    parts.journal.length = 0;
    await agent.stop("again");
    expect(parts.journal).toEqual([]);
  });

  it("records the store's failure and recovery, and after a recovery tells the peer again what the store holds", async () => {
    const parts = memoryParts();
    await makeAgent(parts).start();
    const reason = "FILE_GONE: /var/lib/mnha/mnha.db was removed or renamed while the store had it open; it is created again";
    parts.store.alert({ kind: "degraded", reason });
    expect(parts.sync.announcements).toEqual([]);
    parts.store.alert({ kind: "recovered", afterMs: 300, reason });
    expect(parts.store.events.filter((e) => e.type.startsWith("store."))).toEqual([
      { type: "store.degraded", message: `audit store degraded: ${reason}; HA goes on, records are kept in memory` },
      { type: "store.recovered", message: `audit store recovered after 0 s (${reason})` },
    ]);
    expect(parts.sync.announcements).toEqual([`the audit store recovered (${reason})`]);
  });

  it("puts its control socket back when the file is removed by hand, and says so in the audit", async () => {
    const parts = memoryParts();
    await makeAgent(parts).start();
    parts.control.socketRemoved = true;
    await vi.waitFor(() => expect(parts.store.events.map((e) => e.type)).toContain("control.repaired"), { timeout: 5_000, interval: 50 });
    expect(parts.store.events.find((e) => e.type === "control.repaired")?.message).toMatch(/^control socket \S+ was removed by hand: listening on it again$/);
    expect(parts.control.socketRemoved).toBe(false);
  });

  it("says once that it could not listen on a removed control socket, and keeps trying until it can", async () => {
    const parts = memoryParts();
    await makeAgent(parts).start();
    parts.control.failures = 3;
    parts.control.socketRemoved = true;
    await vi.waitFor(() => expect(parts.store.events.map((e) => e.type)).toContain("control.repaired"), { timeout: 8_000, interval: 50 });
    const types = parts.store.events.map((e) => e.type).filter((t) => t.startsWith("control."));
    expect(types).toEqual(["control.repair-failed", "control.repaired"]);
    expect(parts.store.events.find((e) => e.type === "control.repair-failed")?.message).toContain("cannot listen (test)");
  });

  it("refuses a config whose peer is this node itself (PEER_IS_SELF), before starting anything", () => {
    const parts = memoryParts();
    // (parseConfig refuses it first, with the same code; this is the daemon's own guard.)
    const loaded = loadedConfig();
    loaded.config.peers[0]!.address = loaded.config.node.address;
    let error: unknown;
    try {
      new Agent({ loaded, logger: silentLogger, components: parts.components });
    } catch (e) {
      error = e;
    }
    expect(isMnhaError(error) && error.code).toBe("PEER_IS_SELF");
    expect(parts.journal).toEqual([]);
  });

  it("alone and healthy, claims the VIP: epoch on disk, gate open, lease renewed every tick", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    expect(parts.epochs.writes).toEqual([1]);
    const renewals = parts.keepalived.renewals;
    await vi.waitFor(() => expect(parts.keepalived.renewals).toBeGreaterThan(renewals + 3), { timeout: 5_000, interval: 20 });
  });

  it("the watchdog: a holder whose VIP never appears has Keepalived repaired, and status says how long the VIP is unanswered", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, {
      timings: { heartbeatIntervalMs: 20, leaseMs: 200, vipRepairAfterMs: 300, vipGiveUpAfterMs: 5_000, peerVipUnansweredMs: 6_000 },
      arpGuard: { enabled: false },
      keepalived: { advertIntMs: 100 },
    });
    await agent.start();
    await vi.waitFor(() => expect(parts.keepalived.repairs).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(parts.keepalived.repairs[0]).toMatch(/VIP has not been on its interface/);
    await vi.waitFor(() => expect(parts.store.events.map((e) => e.type)).toEqual(expect.arrayContaining(["watchdog.vip-repair", "watchdog.repaired"])), { timeout: 2_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 1_100));
    const status = await agent.status();
    expect(status.vipOwner).toBeNull();
    expect(status.vipUnansweredMs).toBeGreaterThanOrEqual(1_000);
    // The VIP appears (Keepalived reached MASTER): served, the watchdog's clock stops.
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await vi.waitFor(async () => expect((await agent.status()).vipOwner).toBe("mn1"), { timeout: 2_000, interval: 20 });
    expect((await agent.status()).vipUnansweredMs).toBeNull();
    expect(parts.store.events.map((e) => e.type)).toContain("watchdog.vip-restored");
  });

  it("status, metrics and the audit show the holder's duplicate-address check: idle before the VIP, failing while its own MAC cannot be read, running once it can", async () => {
    const parts = memoryParts();
    let macError: Error | null = new Error("ENOENT: no such file /sys/class/net/br_eth0/address");
    parts.components.arpGuard.ownMac = async () => {
      if (macError !== null) throw macError;
      return "02:00:00:00:00:01";
    };
    let collect: (() => MetricsSnapshot) | null = null;
    parts.components.metrics = (collector) => {
      collect = collector;
      return { start: async () => undefined, stop: async () => undefined };
    };
    const scrape = (): MetricsSnapshot => {
      if (collect === null) throw new Error("the agent gave the metrics server no collector");
      return collect();
    };
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { duplicateCheckIntervalMs: 50 }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    expect((await agent.status()).duplicateCheck).toEqual({ state: "idle", problem: null, lastCheckMsAgo: null });
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await vi.waitFor(async () => expect((await agent.status()).duplicateCheck?.state).toBe("failing"), { timeout: 5_000, interval: 20 });
    const failing = await agent.status();
    expect(failing.duplicateCheck?.problem).toBe("own MAC unknown: ENOENT: no such file /sys/class/net/br_eth0/address");
    expect(failing.vipOwner, "a blind check does not take the VIP away").toBe("mn1");
    expect(scrape().duplicateCheckFailing).toBe(true);
    const audited = parts.store.events.filter((e) => e.type.startsWith("duplicate-check."));
    expect(audited.map((e) => e.type)).toEqual(["duplicate-check.failing"]);
    expect(audited[0]?.message).toMatch(/^duplicate-address check NOT RUNNING while this node holds the VIP: own MAC unknown: ENOENT: no such file \/sys\/class\/net\/br_eth0\/address;/);
    macError = null;
    await vi.waitFor(async () => expect((await agent.status()).duplicateCheck?.state).toBe("running"), { timeout: 5_000, interval: 20 });
    expect((await agent.status()).duplicateCheck?.lastCheckMsAgo).toBeLessThan(1_000);
    expect(scrape().duplicateCheckFailing).toBe(false);
  });
});

describe("the duplicate check's outage at agent stop", () => {
  it("a holder stopped while its check cannot run: the outage is closed in the audit before agent.stopped", async () => {
    const parts = memoryParts();
    parts.components.arpGuard.ownMac = async () => {
      throw new Error("ENOENT: no such file /sys/class/net/br_eth0/address");
    };
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { duplicateCheckIntervalMs: 50 }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await vi.waitFor(async () => expect((await agent.status()).duplicateCheck?.state).toBe("failing"), { timeout: 5_000, interval: 20 });
    await agent.stop("test");
    const types = parts.store.events.map((e) => e.type).filter((type) => type.startsWith("duplicate-check.") || type.startsWith("agent.stop"));
    expect(types).toEqual(["duplicate-check.failing", "agent.stopping", "duplicate-check.ended", "agent.stopped"]);
    // Closed by the role leaving holder as the agent stops; DuplicateCheckAudit.stop() closes any outage still open.
    expect(parts.store.events.find((e) => e.type === "duplicate-check.ended")?.message).toMatch(/^duplicate-address check no longer due: this node stopped holding the VIP after /);
  });
});

describe("heartbeats carry the holder's duplicate check to the peer (peer protocol v4 on)", () => {
  it("on a v4 link each heartbeat says the check's state and problem; on a v3 link the field is left out, since a v3 agent would refuse the whole link on it", async () => {
    const parts = memoryParts();
    parts.components.arpGuard.ownMac = async () => {
      throw new Error("x".repeat(500));
    };
    parts.link.up = { version: DUPLICATE_CHECK_MIN_PROTOCOL_VERSION };
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { duplicateCheckIntervalMs: 50 }, keepalived: { advertIntMs: 100 } });
    const heartbeats = (): Heartbeat[] => parts.link.sent.filter((m): m is Heartbeat => m.type === "heartbeat");
    await agent.start();
    await vi.waitFor(() => expect(heartbeats().length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    expect(heartbeats()[0]?.duplicateCheck).toEqual({ state: "idle", problem: null });
    // The peer is silent: this node claims, and its check fails on the unreadable MAC.
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await vi.waitFor(() => expect(heartbeats().at(-1)?.duplicateCheck?.state).toBe("failing"), { timeout: 5_000, interval: 20 });
    const sent = heartbeats().at(-1);
    // The MAC error is 500 characters: shortened to what the schema takes, so the peer never refuses the frame.
    expect(sent?.duplicateCheck?.problem?.length).toBe(DUPLICATE_CHECK_PROBLEM_MAX);
    expect(sent?.duplicateCheck?.problem).toMatch(/^own MAC unknown: x+…$/);
    expect(decodeLinkMessage(encode(sent as Heartbeat)), "the peer's decoder takes the frame").toMatchObject({ ok: true });

    // The link renegotiated with an older peer (v3): no field, and the frame is what a v3 agent decodes.
    parts.link.up = { version: DUPLICATE_CHECK_MIN_PROTOCOL_VERSION - 1 };
    const before = heartbeats().length;
    await vi.waitFor(() => expect(heartbeats().length).toBeGreaterThan(before + 2), { timeout: 5_000, interval: 20 });
    for (const heartbeat of heartbeats().slice(before + 1)) expect(heartbeat).not.toHaveProperty("duplicateCheck");
  });
});

describe("the peer's duplicate check in status", () => {
  it("status shows the peer's check as its last heartbeat said it, and nothing from a peer that does not send it", async () => {
    const parts = memoryParts();
    parts.link.up = { version: DUPLICATE_CHECK_MIN_PROTOCOL_VERSION };
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 } });
    await agent.start();
    const peerHeartbeat = (seq: number, extra: Partial<Heartbeat>): Heartbeat => ({ type: "heartbeat", seq, node: "mn2", epoch: 0, holder: null, role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [], ...extra });
    const weakened = { state: "running", problem: "1 of 2 arpings failing (checks less often): /usr/bin/arping exited (code 2)" } as const;
    parts.link.emit({ kind: "message", message: peerHeartbeat(1, { duplicateCheck: weakened }) });
    await vi.waitFor(async () => expect((await agent.status()).peer).toMatchObject({ node: "mn2", duplicateCheck: weakened }), { timeout: 2_000, interval: 20 });
    // The same peer, now on an older agent: the next heartbeat has no field, and status does not keep the old one.
    parts.link.emit({ kind: "message", message: peerHeartbeat(2, { role: "standby" }) });
    await vi.waitFor(async () => expect((await agent.status()).peer).not.toHaveProperty("duplicateCheck"), { timeout: 2_000, interval: 20 });
  });
});

describe("a node whose Keepalived directory is not writable", () => {
  it("is not eligible while it does not hold the VIP (it could not open its gate), says why, and is eligible again once writable; a holder keeps the VIP", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 } });
    // Unwritable before it ever held: it never claims.
    parts.keepalived.unwritable = "/var/lib/mnha/keepalived is not writable (EROFS)";
    await agent.start();
    await vi.waitFor(async () => expect((await agent.status()).self.reasons).toContain("/var/lib/mnha/keepalived is not writable (EROFS): it could not open its Keepalived gate, so it cannot take the VIP"), { timeout: 2_000, interval: 20 });
    expect((await agent.status()).self.eligible).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(parts.keepalived.gate).toBe(false);

    // Writable again (the self-check says so): eligible, and alone it claims.
    parts.keepalived.setUnwritable(null);
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    expect((await agent.status()).self.eligible).toBe(true);

    // The holder's directory goes read-only: it keeps the VIP, and stays eligible.
    parts.keepalived.setUnwritable("/var/lib/mnha/keepalived is not writable (EROFS)");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(parts.keepalived.gate).toBe(true);
    expect((await agent.status()).self).toMatchObject({ role: "holder", eligible: true });
  });
});

describe("the distribution's keepalived.service beside the agent's own Keepalived (read once at start)", () => {
  const start = async (unit: { enabled: string; active: boolean } | Error) => {
    const parts = memoryParts();
    const agent = new Agent({ loaded: loadedConfig(), logger: silentLogger, components: { ...parts.components, distributionKeepalived: async () => { if (unit instanceof Error) throw unit; return unit; } }, vipPollMs: 20 });
    agents.push(agent);
    await agent.start();
    // The read is not awaited by start: give it its turn.
    await new Promise((r) => setTimeout(r, 50));
    return parts.store.events.filter((e) => e.type.startsWith("keepalived.unit-"));
  };

  it("enabled: a warning that a reboot or a package upgrade would start it, with the fix", async () => {
    const said = await start({ enabled: "enabled", active: false });
    expect(said).toHaveLength(1);
    expect(said[0]?.type).toBe("keepalived.unit-enabled");
    expect(said[0]?.message).toMatch(/keepalived\.service is enabled: a reboot or a keepalived package upgrade would start it beside this agent's own Keepalived; run systemctl disable --now keepalived\.service && systemctl mask keepalived\.service/);
  });

  it("running now: an error (a second VRRP instance on this node)", async () => {
    const said = await start({ enabled: "disabled", active: true });
    expect(said.map((e) => e.type)).toEqual(["keepalived.unit-running"]);
    expect(said[0]?.message).toMatch(/keepalived\.service is running beside this agent's own Keepalived \(keepalived\.mode: child\): a second VRRP instance on this node/);
  });

  it("masked, disabled or absent, or unreadable: nothing said", async () => {
    for (const unit of [{ enabled: "masked", active: false }, { enabled: "disabled", active: false }, { enabled: "absent", active: false }, new Error("no bus")]) expect(await start(unit)).toEqual([]);
  });
});

describe("a VIP on a standby's interface that nobody owns (added by hand, a network config, a killed Keepalived)", () => {
  it("is taken off after it has sat there 2 s with the gate closed and Keepalived not MASTER; a removal that fails is said once, as an error, and tried again", async () => {
    const parts = memoryParts();
    // Not eligible while its Keepalived directory is unwritable: it stays a standby.
    parts.keepalived.setUnwritable("/var/lib/mnha/keepalived is read-only (EROFS)");
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    await vi.waitFor(async () => expect((await agent.status()).self.role).toBe("standby"), { timeout: 5_000, interval: 20 });
    parts.keepalived.emit("fault");
    parts.keepalived.strayRemovable = false;
    const addedAt = performance.now();
    parts.keepalived.vip = true;
    const types = () => parts.store.events.map((e) => e.type);
    await vi.waitFor(() => expect(types()).toContain("vip.stray"), { timeout: 5_000, interval: 20 });
    expect(performance.now() - addedAt).toBeGreaterThanOrEqual(1_900);
    const stray = parts.store.events.find((e) => e.type === "vip.stray");
    expect(stray?.message).toMatch(/is on .* although mn1 does not hold it, and the agent could not remove it: remove it by hand \(ip addr del/);
    // Tried again, not said again.
    const tries = parts.keepalived.strayRemovals;
    await vi.waitFor(() => expect(parts.keepalived.strayRemovals).toBeGreaterThan(tries), { timeout: 5_000, interval: 20 });
    expect(types().filter((t) => t === "vip.stray")).toHaveLength(1);
    // The removal works now: gone, and said.
    parts.keepalived.strayRemovable = true;
    await vi.waitFor(() => expect(types()).toContain("vip.stray-removed"), { timeout: 5_000, interval: 20 });
    expect(parts.keepalived.vip).toBe(false);
    expect(parts.keepalived.gate).toBe(false);
    expect((await agent.status()).self.role).toBe("standby");
  });

  it("in maintenance mode (which acts on nothing) is only reported, once, with how to remove it", async () => {
    const parts = memoryParts();
    parts.keepalived.setUnwritable("/var/lib/mnha/keepalived is read-only (EROFS)");
    // Maintenance mode is kept in the data dir's operator state file.
    const dataDir = mkdtempSync(join(tmpdir(), "mnha-stray-"));
    dirs.push(dataDir);
    const agent = makeAgent(parts, { dataDir, timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    await vi.waitFor(async () => expect((await agent.status()).self.role).toBe("standby"), { timeout: 5_000, interval: 20 });
    const on = await parts.handlers!.maintenance!({ on: true, node: "this", reason: "network work", by: "root" });
    expect(on).toMatchObject({ on: true, changed: true });
    parts.keepalived.emit("fault");
    parts.keepalived.vip = true;
    const strays = () => parts.store.events.filter((e) => e.type.startsWith("vip.stray"));
    await vi.waitFor(() => expect(strays()).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(strays()[0]).toMatchObject({ type: "vip.stray" });
    expect(strays()[0]?.message).toMatch(/left in place because maintenance mode acts on nothing: remove it \(ip addr del .*\) or turn maintenance off/);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(strays()).toHaveLength(1);
    expect(parts.keepalived.strayRemovals).toBe(0);
    expect(parts.keepalived.vip).toBe(true);
  });

  it("is left alone while the VIP is this node's: a holder's VIP, gate open, is never touched", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 }, arpGuard: { enabled: false }, keepalived: { advertIntMs: 100 } });
    await agent.start();
    await vi.waitFor(() => expect(parts.keepalived.gate).toBe(true), { timeout: 5_000, interval: 20 });
    parts.keepalived.vip = true;
    parts.keepalived.emit("master");
    await new Promise((r) => setTimeout(r, 2_600));
    expect(parts.keepalived.strayRemovals).toBe(0);
    expect(parts.keepalived.vip).toBe(true);
    expect(parts.store.events.map((e) => e.type).filter((t) => t.startsWith("vip.stray"))).toEqual([]);
  });
});

describe("the settings both nodes must share", () => {
  it("are sent on a v5 link up; a peer's different VIP prefix is said in the audit and in status, and that they agree again once fixed", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 } });
    await agent.start();
    parts.link.up = { version: PAIR_SETTINGS_MIN_PROTOCOL_VERSION };
    parts.link.emit({ kind: "up", peer: "mn2", version: PAIR_SETTINGS_MIN_PROTOCOL_VERSION, remote: "10.0.0.12:7946" });
    const sent = parts.link.sent.find((m) => m.type === "pair-settings");
    if (sent?.type !== "pair-settings") throw new Error("no pair-settings sent on link up");
    const vip = sent.settings["vip"] as string;
    const theirs = { ...sent.settings, vip: vip.replace(/\/\d+$/, "/25") };
    parts.link.emit({ kind: "message", message: { type: "pair-settings", settings: theirs } });
    await vi.waitFor(async () => expect((await agent.status()).pairSettings).toEqual({ compared: true, differences: [{ name: "vip", here: vip, peer: theirs.vip }] }), { timeout: 2_000, interval: 20 });
    expect(parts.store.events.filter((e) => e.type === "pair.settings-differ").map((e) => e.message)).toEqual([
      `SETTINGS DIFFER between mn1 and mn2: vip ${vip} here, ${theirs.vip} on mn2; the two nodes must agree: fix the config file of the wrong node, then restart its agent`,
    ]);
    parts.link.emit({ kind: "message", message: { type: "pair-settings", settings: sent.settings } });
    await vi.waitFor(() => expect(parts.store.events.some((e) => e.type === "pair.settings-agree")).toBe(true), { timeout: 2_000, interval: 20 });
    expect((await agent.status()).pairSettings).toEqual({ compared: true, differences: [] });
  });

  it("are not sent on a link of an older protocol (the peer would refuse the whole link on them)", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts);
    await agent.start();
    parts.link.up = { version: PAIR_SETTINGS_MIN_PROTOCOL_VERSION - 1 };
    parts.link.emit({ kind: "up", peer: "mn2", version: PAIR_SETTINGS_MIN_PROTOCOL_VERSION - 1, remote: "10.0.0.12:7946" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(parts.link.sent.some((m) => m.type === "pair-settings")).toBe(false);
    expect((await agent.status()).pairSettings).toEqual({ compared: false, differences: [] });
  });
});

describe("an epoch file that holds no epoch", () => {
  it("is said in the audit at start (which file, what it held), and the agent runs from epoch 0", async () => {
    const parts = memoryParts();
    parts.components.epochs.readProblem = () => 'does not hold an epoch ("garbage")';
    parts.components.epochs.path = () => "/var/lib/mnha/epoch";
    const agent = makeAgent(parts);
    await agent.start();
    const said = parts.store.events.filter((e) => e.type === "agent.epoch-unreadable");
    expect(said).toHaveLength(1);
    expect(said[0]?.message).toBe('/var/lib/mnha/epoch does not hold an epoch ("garbage"): started from epoch 0; the peer\'s epoch is adopted when it is heard, and the file is written again at the next epoch change');

    const fine = memoryParts();
    fine.components.epochs.readProblem = () => null;
    await makeAgent(fine).start();
    expect(fine.store.events.some((e) => e.type === "agent.epoch-unreadable")).toBe(false);
  });
});

describe("why the peer link is down, in status", () => {
  it("status carries the link's last failed dial while the peer is not heard, and drops it once it is", async () => {
    const parts = memoryParts();
    const agent = makeAgent(parts, { timings: { heartbeatIntervalMs: 20, leaseMs: 200 } });
    await agent.start();
    const failure = { code: "peer-refused:auth-failed", reason: "refused by the peer (auth-failed): peer failed authentication", msAgo: 300, hint: "the two nodes hold different shared secrets" };
    parts.link.failure = failure;
    expect((await agent.status()).peer).toMatchObject({ node: "mn2", connected: false, dialFailure: failure });

    parts.link.up = { version: DUPLICATE_CHECK_MIN_PROTOCOL_VERSION };
    const heartbeat: Heartbeat = { type: "heartbeat", seq: 1, node: "mn2", epoch: 0, holder: null, role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [] };
    parts.link.emit({ kind: "message", message: heartbeat });
    await vi.waitFor(async () => expect((await agent.status()).peer.connected).toBe(true), { timeout: 2_000, interval: 20 });
    expect((await agent.status()).peer).not.toHaveProperty("dialFailure");
  });
});

describe("operator errors", () => {
  it("a port in use and a full disk get their own codes, whichever part met them", () => {
    const inUse = Object.assign(new Error("listen EADDRINUSE: address already in use 10.0.0.11:7946"), { code: "EADDRINUSE" });
    expect(operatorError(inUse)).toMatchObject({ code: "PORT_IN_USE" });
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    expect(operatorError(full)).toMatchObject({ code: "DISK_FULL", hint: expect.stringContaining("free space") });
    const other = new Error("something else");
    expect(operatorError(other)).toBe(other);
  });
});
