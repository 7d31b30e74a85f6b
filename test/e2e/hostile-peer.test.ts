/**
 * Strangers on the segment. From the client namespace, a stranger connects to the peer-link
 * port (7946) of the holder's and the standby's agents and tries what an intruder or a broken
 * peer would: a handshake without the secret (as the real peer, and under an unknown name), a
 * future protocol version, an oversized frame, garbage, a binary frame, and a heartbeat with no
 * handshake at all. Each connection is refused with the right code, and each refusal is logged
 * (`mnha events` type peer.refused, and the agent's log). Meanwhile the pair carries on
 * undisturbed: the VIP stays on the holder, no second MAC ever answers, nothing moves, the
 * epoch stays the same and the real peer link never drops.
 *
 * Bounded: 7 connections per agent, one at a time, each with a 5 s limit.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HaEvent } from "../../packages/agent/src/contracts.js";
import { CLIENT_ADDRESS, HOSTS, LAB_DIR, PEER_PORT, nodePaths, peerOf, type MnNode } from "../lab/constants.js";
import { runIn, waitFor } from "../lab/exec.js";
import { Lab } from "../lab/lab.js";
import { expectNeverTwoMacs, expectNoMove, expectServedWithin, labArchiveDir, runScenario } from "./scenario.js";

const lab = new Lab();
const HOSTILE_SCRIPT = `${LAB_DIR}/hostile-peer.mjs`;
const ATTACK_TIMEOUT_MS = 5_000;

interface AttackRecord {
  attack: string;
  opened: boolean;
  received: string[];
  close: { code: number; reason: string } | null;
  error: string | null;
  tookMs: number;
}

/** Each attack, what the agent must answer (the refuse frame's code) and the code it logs. */
const ATTACKS: { attack: string; refuse: string | null; logged: string; closeCode: number }[] = [
  { attack: "wrong-secret", refuse: "auth-failed", logged: "auth-failed", closeCode: 1008 },
  { attack: "unknown-peer", refuse: "unknown-peer", logged: "unknown-peer", closeCode: 1008 },
  { attack: "future-version", refuse: "unsupported-version", logged: "unsupported-version", closeCode: 1008 },
  // ws cuts an oversized frame itself (close 1009, "message too big") before any refuse frame.
  { attack: "oversized", refuse: null, logged: "bad-frame", closeCode: 1009 },
  { attack: "garbage", refuse: "bad-frame", logged: "bad-frame", closeCode: 1008 },
  { attack: "binary", refuse: "bad-frame", logged: "bad-frame", closeCode: 1008 },
  { attack: "heartbeat", refuse: "not-ready", logged: "not-ready", closeCode: 1008 },
];

beforeAll(async () => {
  await lab.up({ fresh: true });
});

afterAll(async () => {
  await lab.down({ archiveTo: labArchiveDir("hostile-peer") });
});

/** Runs every attack against one agent from the client namespace, one connection at a time. */
async function attackAgent(target: MnNode): Promise<AttackRecord[]> {
  const result = await runIn(
    HOSTS.client.namespace,
    process.execPath,
    [HOSTILE_SCRIPT, "--host", HOSTS[target].address, "--port", String(PEER_PORT), "--claim", peerOf(target), "--timeout-ms", String(ATTACK_TIMEOUT_MS), ...ATTACKS.map((a) => a.attack)],
    { timeoutMs: ATTACKS.length * ATTACK_TIMEOUT_MS + 5_000 },
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

function fromClient(event: HaEvent): boolean {
  return String(event.fields["remote"] ?? "").startsWith(`${CLIENT_ADDRESS}:`);
}

interface LogLine {
  level: number;
  msg: string;
  remote?: string;
  code?: string;
  reason?: string;
}

/** Warnings in the agent's log about connections from the client. */
function refusalLogLines(node: MnNode): LogLine[] {
  return readFileSync(nodePaths(node).agentLog, "utf8")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return [];
      }
    })
    .filter((l) => l.level >= 40 && String(l.remote ?? "").startsWith(`${CLIENT_ADDRESS}:`));
}

function expectRefusedOnTheWire(target: MnNode, records: AttackRecord[]): void {
  expect(records.map((r) => r.attack)).toEqual(ATTACKS.map((a) => a.attack));
  for (const expected of ATTACKS) {
    const record = records.find((r) => r.attack === expected.attack)!;
    const where = `${expected.attack} against ${target}: ${JSON.stringify(record)}`;
    expect(record.opened, where).toBe(true);
    expect(record.close?.code, where).toBe(expected.closeCode);
    expect(record.tookMs, where).toBeLessThan(ATTACK_TIMEOUT_MS);
    const frames = record.received.map((text) => JSON.parse(text) as { type: string; code?: string; message?: string; versions?: number[] });
    // Nothing past the handshake's first step: at most a challenge, never a welcome.
    expect(frames.some((f) => f.type === "welcome"), where).toBe(false);
    if (expected.refuse === null) {
      expect(frames, where).toEqual([]);
      continue;
    }
    const refuse = frames[frames.length - 1];
    expect(refuse, where).toMatchObject({ type: "refuse", code: expected.refuse });
    expect(refuse?.message?.length ?? 0, where).toBeGreaterThan(0);
    if (expected.attack === "future-version") expect(refuse?.versions, where).toEqual([1]);
    if (expected.attack === "wrong-secret") expect(frames.map((f) => f.type), where).toEqual(["challenge", "refuse"]);
  }
}

describe("strangers on the segment attack the peer-link port", () => {
  it("each attack is refused and logged, and the pair's HA carries on undisturbed", async () => {
    const before = await lab.reset();
    const { holder, standby } = before;
    const epochBefore = (await lab.agentStatus(holder)).self.epoch;
    const disconnectsBefore = new Map<MnNode, number>();
    for (const node of [holder, standby]) disconnectsBefore.set(node, (await agentEvents(node, "peer.disconnected")).length);
    const attacks = new Map<MnNode, AttackRecord[]>();

    const run = await runScenario(lab, before, {
      name: "hostile peers",
      fault: async ({ sampler }) => {
        for (const target of [holder, standby]) {
          sampler.mark(`attacking ${target}`);
          attacks.set(target, await attackAgent(target));
        }
      },
      outcome: async () => {
        for (const target of [holder, standby]) {
          expectRefusedOnTheWire(target, attacks.get(target)!);
          // Every refusal is an event on the attacked agent, with the code and the client's address.
          const refused = await waitFor(
            `${target} to record a peer.refused event for each of the ${ATTACKS.length} attacks`,
            async () => {
              const events = (await agentEvents(target, "peer.refused")).filter(fromClient);
              return events.length >= ATTACKS.length ? events : undefined;
            },
            { timeoutMs: 10_000, intervalMs: 250 },
          );
          const codes = refused.map((e) => String(e.fields["code"])).sort();
          expect(codes, `peer.refused codes on ${target}`).toEqual(ATTACKS.map((a) => a.logged).sort());
          for (const event of refused) {
            expect(event.message, `peer.refused on ${target}`).toContain(CLIENT_ADDRESS);
            expect(String(event.fields["reason"] ?? "").length).toBeGreaterThan(0);
          }
          // And in the agent's log, as warnings naming the client and the code.
          const logged = refusalLogLines(target).map((l) => l.code);
          for (const attack of ATTACKS) expect(logged, `${target}'s log`).toContain(attack.logged);
        }
      },
      observeMs: 2_000,
    });

    // The client saw nothing happen.
    expectNeverTwoMacs(run);
    expectServedWithin(run);
    expectNoMove(run, holder);
    // The real peer link stayed up throughout, and nobody changed the epoch.
    for (const node of [holder, standby]) {
      expect((await agentEvents(node, "peer.disconnected")).length, `peer.disconnected events on ${node} during the attack`).toBe(disconnectsBefore.get(node));
      const status = await lab.agentStatus(node);
      expect(status.peer.connected, `${node} still sees its peer`).toBe(true);
      expect(status.self.epoch, `${node}'s epoch`).toBe(epochBefore);
      expect(status.vipOwner, `${node}'s view of the VIP owner`).toBe(holder);
    }
    expect(await lab.holder()).toBe(holder);
  });
});
