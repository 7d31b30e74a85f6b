/**
 * Strangers and an on-path relay against the peer link (issue 11), in the lab.
 *
 * 1. From the client namespace (a host on the segment that is not the peer), every attack on
 *    both agents' peer port is reset at the TCP level: nothing is parsed, no handshake starts.
 * 2. From the peer's own address (the attack script run in the other MN's namespace: a spoofer,
 *    or a compromised process on the peer host) the attacks reach the handshake and each is
 *    refused with the right code; the challenge a stranger gets carries no proof (the dialer
 *    proves first); half an HTTP request is cut after the handshake timeout, not after ~30 s.
 * 3. Refusals are summarised: a handful of local `peer.refusals` events, not one per refusal.
 * 4. An on-path relay (nftables NAT through the client namespace) carries the real link; the
 *    traffic it sees after the handshake is sealed, and a frame it forges — the plain handoff
 *    offer at epoch 999 of the issue, or a sealed-looking binary frame — is refused, the link
 *    closes saying why and comes back, and the forged epoch never reaches either core.
 * Throughout, the client sees one MAC, the VIP stays on the holder and the epoch is unchanged.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSIONS } from "@mnha/protocol";
import type { HaEvent } from "../../packages/agent/src/contracts.js";
import { CLIENT_ADDRESS, HOSTS, LAB_DIR, PEER_PORT, nodePaths, peerOf, type MnNode } from "../lab/constants.js";
import { runIn, sleep, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { PeerRelay } from "../lab/peer-relay.js";
import { expectNeverTwoMacs, expectNoMove, expectServedWithin, labArchiveDir, runScenario } from "./scenario.js";

const lab = new Lab();
const HOSTILE_SCRIPT = `${LAB_DIR}/hostile-peer.mjs`;
const ATTACK_TIMEOUT_MS = 8_000;
/** The agent's handshake timeout (PeerLink default) bounds how long half a request is kept. */
const HANDSHAKE_TIMEOUT_MS = 2_000;

interface AttackRecord {
  attack: string;
  opened: boolean;
  received: string[];
  close: { code: number; reason: string } | null;
  error: string | null;
  tookMs: number;
}

/** From the peer's address: what the agent must answer (the refuse frame's code). */
const HANDSHAKE_ATTACKS: { attack: string; refuse: string | null; closeCode: number }[] = [
  { attack: "wrong-secret", refuse: "auth-failed", closeCode: 1008 },
  { attack: "unknown-peer", refuse: "unknown-peer", closeCode: 1008 },
  { attack: "future-version", refuse: "unsupported-version", closeCode: 1008 },
  // ws cuts an oversized frame itself (close 1009, "message too big") before any refuse frame.
  { attack: "oversized", refuse: null, closeCode: 1009 },
  { attack: "garbage", refuse: "bad-frame", closeCode: 1008 },
  { attack: "binary", refuse: "bad-frame", closeCode: 1008 },
  { attack: "heartbeat", refuse: "not-ready", closeCode: 1008 },
];
const ALL_ATTACKS = [...HANDSHAKE_ATTACKS.map((a) => a.attack), "half-http"];

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("hostile-peer") });
});

/** Runs the attacks against `target` from `fromNamespace`, one connection at a time. */
async function attackAgent(target: MnNode, fromNamespace: string, attacks: readonly string[]): Promise<AttackRecord[]> {
  const result = await runIn(
    fromNamespace,
    process.execPath,
    [HOSTILE_SCRIPT, "--host", HOSTS[target].address, "--port", String(PEER_PORT), "--claim", peerOf(target), "--timeout-ms", String(ATTACK_TIMEOUT_MS), ...attacks],
    { timeoutMs: attacks.length * ATTACK_TIMEOUT_MS + 5_000 },
  );
  if (result.code !== 0) throw new Error(`hostile-peer.mjs against ${target} failed (exit ${result.code}): ${result.stderr.trim()}`);
  return result.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as AttackRecord);
}

/** The agent's own events (`mnha events --json` on the node), oldest first. */
async function agentEvents(node: MnNode, type: string): Promise<HaEvent[]> {
  const result = await lab.agentCli(node, ["events", "--json", "--limit", "1000", "--type", type], 10_000);
  if (result.code !== 0) throw new Error(`mnha events on ${node} failed (exit ${result.code}): ${result.stderr.trim()}`);
  return (JSON.parse(result.stdout) as HaEvent[]).filter((e) => e.node === node && e.type === type).sort((a, b) => a.seq - b.seq);
}

function expectResetAtTcp(target: MnNode, records: AttackRecord[]): void {
  expect(records.map((r) => r.attack)).toEqual(ALL_ATTACKS);
  for (const record of records) {
    const where = `${record.attack} from the client against ${target}: ${JSON.stringify(record)}`;
    // No WebSocket was ever opened and not one byte came back: reset before any parsing.
    if (record.attack !== "half-http") expect(record.opened, where).toBe(false);
    expect(record.received, where).toEqual([]);
    expect(record.tookMs, where).toBeLessThan(ATTACK_TIMEOUT_MS);
  }
}

function expectRefusedInHandshake(target: MnNode, records: AttackRecord[]): void {
  expect(records.map((r) => r.attack)).toEqual(ALL_ATTACKS);
  for (const expected of HANDSHAKE_ATTACKS) {
    const record = records.find((r) => r.attack === expected.attack)!;
    const where = `${expected.attack} from the peer's address against ${target}: ${JSON.stringify(record)}`;
    expect(record.opened, where).toBe(true);
    expect(record.close?.code, where).toBe(expected.closeCode);
    expect(record.tookMs, where).toBeLessThan(ATTACK_TIMEOUT_MS);
    const frames = record.received.map((text) => JSON.parse(text) as Record<string, unknown>);
    expect(frames.some((f) => f["type"] === "welcome"), where).toBe(false);
    if (expected.refuse === null) {
      expect(frames, where).toEqual([]);
      continue;
    }
    expect(frames[frames.length - 1], where).toMatchObject({ type: "refuse", code: expected.refuse });
    if (expected.attack === "future-version") expect(frames[frames.length - 1]?.["versions"], where).toEqual([...PROTOCOL_VERSIONS]);
    if (expected.attack === "wrong-secret") {
      expect(frames.map((f) => f["type"]), where).toEqual(["challenge", "refuse"]);
      // The dialer proves first: the challenge carries a nonce and nothing derived from the secret.
      expect(Object.keys(frames[0] ?? {}).sort(), where).toEqual(["node", "nonce", "type", "version"]);
    }
  }
  // Half an HTTP request is cut after the handshake timeout (it used to be held ~30 s).
  const half = records.find((r) => r.attack === "half-http")!;
  expect(half.opened, JSON.stringify(half)).toBe(true);
  expect(half.error ?? "", JSON.stringify(half)).not.toContain("still open");
  expect(half.tookMs, JSON.stringify(half)).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 500);
  expect(half.tookMs, JSON.stringify(half)).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 3_000);
}

/** Warning lines in the agent's log that mention the client's address. */
function logLinesAbout(node: MnNode, text: string): string[] {
  return readFileSync(nodePaths(node).agentLog, "utf8")
    .split("\n")
    .filter((line) => line.includes(text));
}

describe("strangers on the segment attack the peer-link port", () => {
  it("strangers are reset at TCP, handshake attacks from the peer's address are refused, refusals are summarised, and the pair's HA carries on undisturbed", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const epochBefore = (await lab.agentStatus(holder)).self.epoch;
    const disconnectsBefore = new Map<MnNode, number>();
    const refusalEventsBefore = new Map<MnNode, number>();
    for (const node of [holder, standby]) {
      disconnectsBefore.set(node, (await agentEvents(node, "peer.disconnected")).length);
      refusalEventsBefore.set(node, (await agentEvents(node, "peer.refusals")).length);
    }
    const fromClient = new Map<MnNode, AttackRecord[]>();
    const fromPeer = new Map<MnNode, AttackRecord[]>();

    const run = await runScenario(lab, before, {
      name: "hostile peers",
      fault: async ({ sampler }) => {
        for (const target of [holder, standby]) {
          sampler.mark(`attacking ${target} from the client`);
          fromClient.set(target, await attackAgent(target, HOSTS.client.namespace, ALL_ATTACKS));
          sampler.mark(`attacking ${target} from its peer's address`);
          fromPeer.set(target, await attackAgent(target, HOSTS[peerOf(target)].namespace, ALL_ATTACKS));
        }
      },
      outcome: async () => {
        for (const target of [holder, standby]) {
          expectResetAtTcp(target, fromClient.get(target)!);
          expectRefusedInHandshake(target, fromPeer.get(target)!);
        }
      },
      observeMs: 2_000,
    });

    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectNoMove(run, holder);
    for (const node of [holder, standby]) {
      expect((await agentEvents(node, "peer.disconnected")).length, `peer.disconnected events on ${node} during the attack`).toBe(disconnectsBefore.get(node));
      const status = await lab.agentStatus(node);
      expect(status.peer.connected, `${node} still sees its peer`).toBe(true);
      expect(status.self.epoch, `${node}'s epoch`).toBe(epochBefore);
      expect(status.vipOwner, `${node}'s view of the VIP owner`).toBe(holder);
    }
    expect(await lab.holder()).toBe(holder);

    // 16 refusals per agent (8 reset at TCP, 8 in the handshake) make a few summary events, not 16.
    for (const target of [holder, standby]) {
      const summaries = await waitFor(
        `${target}'s peer.refusals summaries to cover all 16 refusals`,
        async () => {
          const events = (await agentEvents(target, "peer.refusals")).slice(refusalEventsBefore.get(target));
          const covered = events.reduce((sum, e) => sum + Number(e.fields["count"] ?? 0), 0);
          return covered >= 16 ? events : undefined;
        },
        { timeoutMs: 45_000, intervalMs: 1_000 },
      );
      expect(summaries.length, `${target}: ${summaries.map((e) => e.message).join(" | ")}`).toBeLessThanOrEqual(4);
      const byCode: Record<string, number> = {};
      for (const event of summaries) for (const [code, n] of Object.entries(event.fields["byCode"] as Record<string, number>)) byCode[code] = (byCode[code] ?? 0) + n;
      expect(byCode["stranger-address"], `${target} by code: ${JSON.stringify(byCode)}`).toBe(ALL_ATTACKS.length);
      for (const code of ["auth-failed", "unknown-peer", "unsupported-version", "bad-frame", "not-ready"]) expect(byCode[code] ?? 0, `${target}: ${code}`).toBeGreaterThanOrEqual(1);
      expect(summaries.some((e) => (e.fields["sources"] as string[]).includes(CLIENT_ADDRESS)), `${target} names the client`).toBe(true);
      // One summary line per report in the log, not one warning per refusal.
      expect(logLinesAbout(target, "peer failed authentication").filter((l) => l.includes('"level":40')).length).toBe(0);
    }
  });
});

describe("an on-path relay between the agents", () => {
  it("sees only sealed frames after the handshake; a forged frame closes the link saying why, and never reaches the core", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const epochBefore = (await lab.agentStatus(holder)).self.epoch;
    const relay = await PeerRelay.start();
    let injectedText = 0;
    let injectedSealed = 0;
    try {
      // Restart the standby's agent: both new dials now go through the relay.
      await lab.stopAgent(standby);
      await lab.startAgent(standby);
      await waitFor(
        "the peer link to come up through the relay",
        async () => {
          const up = (await lab.agentStatus(holder)).peer.connected && (await lab.agentStatus(standby)).peer.connected;
          return up && relay.events.some((e) => e.event === "connection") ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      await sleep(1_500); // heartbeats flow through the relay
      const disconnectsBefore = new Map<MnNode, number>();
      for (const node of [holder, standby]) disconnectsBefore.set(node, (await agentEvents(node, "peer.disconnected")).length);

      const run = await runScenario(lab, before, {
        name: "on-path relay",
        fault: async ({ sampler }) => {
          const mark = relay.events.length;
          relay.command("stats");
          const stats = await relay.next("relay stats", mark, (e) => e.event === "stats");
          const live = (stats["connections"] as { upgraded: boolean; toListener: Record<string, number>; toDialer: Record<string, number> }[]).filter((c) => c.upgraded);
          expect(live.length, JSON.stringify(stats)).toBeGreaterThanOrEqual(1);
          for (const c of live) {
            // The four handshake frames are text; everything after them is sealed and unreadable.
            expect(c.toListener["binary"]! + c.toDialer["binary"]!, JSON.stringify(c)).toBeGreaterThan(0);
            expect(c.toListener["text"]! + c.toDialer["text"]!, JSON.stringify(c)).toBeLessThanOrEqual(4);
            expect(c.toListener["plaintextInBinary"]! + c.toDialer["plaintextInBinary"]!, JSON.stringify(c)).toBe(0);
            expect(c.toListener["plaintextHeartbeats"]! + c.toDialer["plaintextHeartbeats"]!, JSON.stringify(c)).toBe(0);
          }

          sampler.mark("relay injects a plain handoff-offer at epoch 999");
          const textMark = relay.events.length;
          relay.command("inject-text");
          const text = await relay.next("the text injection", textMark, (e) => e.event === "injected");
          injectedText = (text["connections"] as number[]).length;
          await waitForForgedRefusal(disconnectsBefore, 1);

          sampler.mark("relay injects a sealed-looking forged frame");
          await waitFor("the link back through the relay", async () => ((await lab.agentStatus(holder)).peer.connected && (await lab.agentStatus(standby)).peer.connected ? true : undefined), {
            timeoutMs: 30_000,
            intervalMs: 250,
          });
          await sleep(500);
          const sealedMark = relay.events.length;
          relay.command("inject-sealed");
          const sealed = await relay.next("the sealed injection", sealedMark, (e) => e.event === "injected");
          injectedSealed = (sealed["connections"] as number[]).length;
          await waitForForgedRefusal(disconnectsBefore, 2);
        },
        outcome: async () => {
          await waitFor("the link back through the relay", async () => ((await lab.agentStatus(holder)).peer.connected && (await lab.agentStatus(standby)).peer.connected ? true : undefined), {
            timeoutMs: 30_000,
            intervalMs: 250,
          });
        },
        observeMs: 2_000,
      });

      expect(injectedText).toBeGreaterThanOrEqual(1);
      expect(injectedSealed).toBeGreaterThanOrEqual(1);
      expectNeverTwoMacs(run);
      expectServedWithin(run);
      expectNoMove(run, holder);
      // The forged epoch never reached a core: same epoch, same holder, no handoff was even considered.
      for (const node of [holder, standby]) {
        const status = await lab.agentStatus(node);
        expect(status.self.epoch, `${node}'s epoch`).toBe(epochBefore);
        expect(status.vipOwner, `${node}'s view of the VIP owner`).toBe(holder);
        const handoffs = (await lab.agentCli(node, ["events", "--json", "--limit", "1000"], 10_000)).stdout;
        expect(handoffs).not.toContain("forged-by-relay");
        expect(handoffs).not.toContain('"epoch":999');
      }
      expect(await lab.holder()).toBe(holder);
    } finally {
      await relay.stop();
    }

    /** Each injection: the accepting agent refuses (forged-frame) and the link drops on both sides, saying so. */
    async function waitForForgedRefusal(disconnectsBefore: Map<MnNode, number>, nth: number): Promise<void> {
      await waitFor(
        `peer.disconnected naming forged-frame on both agents (${nth})`,
        async () => {
          for (const node of [holder, standby]) {
            const since = (await agentEvents(node, "peer.disconnected")).slice(disconnectsBefore.get(node));
            if (since.filter((e) => e.message.includes("forged-frame")).length < nth) return undefined;
          }
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 250 },
      );
    }
  });
});
