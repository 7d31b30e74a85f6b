/**
 * Property-based fuzzing of the election core with messages that pass the schema but carry
 * nonsense: stale and huge epochs, strangers' names, unknown handoff ids, contradictory
 * heartbeats, mixed with random health, gateway, timer and operator inputs. The core never
 * throws, never opens the gate while it is not eligible, never goes back in epoch, never asks
 * the link to send a frame the peer's decoder would refuse, and a message that is not from its
 * peer (or names no pending handoff) changes nothing. And the link never hands the core a
 * frame that fails the schema.
 *
 * Replay: see fuzz-options.ts (MNHA_FUZZ_SEED, MNHA_FUZZ_PATH, MNHA_FUZZ_RUNS).
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { LinkMessageSchema, MAX_EPOCH, MAX_FRAME_BYTES, decodeLinkMessage, encode, type Heartbeat, type LinkMessage } from "@mnha/protocol";
import { ElectionCore, type ElectionEffect, type ElectionInput, type ElectionSettings, type ElectionSnapshot } from "../../src/core/election.js";
import { RecordingRelay, freePort, makeNode, sendSealedUnchecked, waitFor, type TestNode } from "../peer/helpers.js";
import { fuzzParameters } from "./fuzz-options.js";
import { heartbeatArb, junkFrameArb, linkMessageArb, mutatedFrameArb, nodeNameArb } from "./frames.js";

const SELF = "mn1";
const PEER = "mn2";

function settingsFor(self: string, peer: string, over: Partial<ElectionSettings> = {}): ElectionSettings {
  return {
    self,
    peer,
    heartbeatIntervalMs: 100,
    peerLossMs: 300,
    leaseMs: 600,
    takeoverMarginMs: 150,
    maxClockDrift: 0.01,
    startupGraceMs: 800,
    handoffTimeoutMs: 1_500,
    arpGuard: true,
    arpRetryMs: 500,
    initialEpoch: 0,
    ...over,
  };
}

/** Operator-readable reasons, some long (a failing check's detail can be a whole stderr line). */
const reasonArb = fc.oneof(
  fc.constantFrom("service mn failed (connect ECONNREFUSED 127.0.0.1:8080)", "service db failed (timed out after 1000 ms)", "service ui not checked yet"),
  fc.string({ maxLength: 150 }),
);

interface Names {
  self: string;
  peer: string;
}

/** Names a message may carry: mostly the pair's own, sometimes a stranger's. */
function namesArb(names: Names): fc.Arbitrary<string> {
  return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(names.self, names.peer) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom("stranger", `${names.peer}x`, names.peer.toUpperCase()), nodeNameArb) });
}

/** Handoff ids: the shape the core makes (so some match a pending handoff), and junk. */
function idsArb(names: Names): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fc.constantFrom(names.self, names.peer), fc.nat({ max: 6 }), fc.integer({ min: 1, max: 4 })).map(([n, e, s]) => `${n}-${e}-${s}`.slice(0, 64)),
    fc.string({ minLength: 1, maxLength: 64 }),
  );
}

// Huge but not at 2^53: epochs next to Number.MAX_SAFE_INTEGER are a known bug, pinned below.
const epochArb = fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 1e12, 2 ** 48) });

interface Step {
  dtMs: number;
  input: ElectionInput;
  /** Set the message's epoch to the core's epoch plus this, when the step runs (a plausible peer). */
  relativeEpoch?: number;
}

/** ARP results for "the probe the core is waiting for" (resolved while the sequence runs). */
const PENDING_PROBE = -1;

/** Mostly true: a pair that is mostly healthy reaches holder, handoffs and claims. */
const mostly = (value: boolean) => fc.oneof({ weight: 4, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: fc.constant(!value) });

function inputArb(names: Names): fc.Arbitrary<ElectionInput> {
  const message = linkMessageArb({ names: namesArb(names), epochs: epochArb, ids: idsArb(names) });
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant<ElectionInput>({ kind: "tick" }) },
    { weight: 1, arbitrary: fc.constant<ElectionInput>({ kind: "wake" }) },
    { weight: 2, arbitrary: fc.record({ healthy: mostly(true), reasons: fc.array(reasonArb, { maxLength: 4 }) }).map(({ healthy, reasons }): ElectionInput => ({ kind: "services", healthy, reasons })) },
    { weight: 1, arbitrary: mostly(true).map((reachable): ElectionInput => ({ kind: "gateway", reachable })) },
    { weight: 1, arbitrary: mostly(false).map((on): ElectionInput => ({ kind: "maintenance", on })) },
    { weight: 1, arbitrary: fc.constant<ElectionInput>({ kind: "peer-up" }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((reason): ElectionInput => ({ kind: "peer-down", reason })) },
    { weight: 8, arbitrary: message.map((m): ElectionInput => ({ kind: "peer-message", message: m })) },
    {
      weight: 3,
      arbitrary: fc
        .record({ probeId: fc.oneof({ weight: 3, arbitrary: fc.constant(PENDING_PROBE) }, fc.nat({ max: 8 })), occupied: mostly(false), detail: fc.string({ maxLength: 40 }) })
        .map((r): ElectionInput => ({ kind: "arp-result", ...r })),
    },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8 }).map((requestId): ElectionInput => ({ kind: "demote", requestId })) },
  );
}

/** The peer as a correct node would speak: at (about) the core's epoch, often a healthy standby. */
function plausiblePeerArb(names: Names): fc.Arbitrary<{ input: ElectionInput; relativeEpoch: number }> {
  const heartbeat = heartbeatArb({ names: fc.constant(names.peer) }).chain((hb) =>
    fc.record({ role: fc.constantFrom<Heartbeat["role"]>("standby", "standby", "holder", "claiming", "receiving"), eligible: mostly(true), holder: fc.constantFrom(names.self, names.peer, null), leaseRemainingMs: fc.constantFrom(0, 0, 600) }).map((over) => ({ ...hb, ...over })),
  );
  const offer = fc.record({ type: fc.constant("handoff-offer" as const), id: idsArb(names), epoch: fc.constant(0), from: fc.constant(names.peer), to: fc.constant(names.self), reason: fc.constant("operator demote") });
  return fc.record({ message: fc.oneof({ weight: 4, arbitrary: heartbeat }, offer), relativeEpoch: fc.constantFrom(0, 0, 0, 1, -1) }).map(({ message, relativeEpoch }) => ({ input: { kind: "peer-message", message }, relativeEpoch }));
}

function stepsArb(names: Names): fc.Arbitrary<Step[]> {
  const dt = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 150 }) }, { weight: 1, arbitrary: fc.integer({ min: 150, max: 3_000 }) });
  const step = fc.oneof(
    { weight: 3, arbitrary: fc.record({ dtMs: dt, input: inputArb(names) }) },
    { weight: 1, arbitrary: fc.tuple(dt, plausiblePeerArb(names)).map(([dtMs, p]): Step => ({ dtMs, ...p })) },
  );
  return fc.array(step, { minLength: 1, maxLength: 60 });
}

/** The step's input as it runs: relative epochs and the pending ARP probe filled in. */
function resolveInput(step: Step, core: ElectionCore, now: number, pendingProbe: number): ElectionInput {
  const { input } = step;
  if (input.kind === "arp-result" && input.probeId === PENDING_PROBE) return { ...input, probeId: pendingProbe };
  if (step.relativeEpoch !== undefined && input.kind === "peer-message" && "epoch" in input.message) {
    return { kind: "peer-message", message: { ...input.message, epoch: Math.max(0, core.snapshot(now).epoch + step.relativeEpoch) } as LinkMessage };
  }
  return input;
}

/** The contract of one step. Returns the effects. */
function checkedStep(core: ElectionCore, now: number, input: ElectionInput, before: ElectionSnapshot): { effects: ElectionEffect[]; after: ElectionSnapshot } {
  let effects: ElectionEffect[] = [];
  expect(() => (effects = core.step(now, input)), `step threw on ${JSON.stringify(input)}`).not.toThrow();
  const after = core.snapshot(now);
  const context = `${JSON.stringify(input)} in ${before.role}@${before.epoch} -> ${JSON.stringify(effects)}`;
  // The gate opens only on an eligible node.
  if (effects.some((e) => e.kind === "set-gate" && e.open)) expect(after.eligible, `gate opened while not eligible: ${context}`).toBe(true);
  // The last gate effect is the gate's state.
  const gates = effects.filter((e): e is Extract<ElectionEffect, { kind: "set-gate" }> => e.kind === "set-gate");
  expect(after.gateOpen).toBe(gates.length > 0 ? gates[gates.length - 1]!.open : before.gateOpen);
  // Epochs only go up, and what is persisted is never below what was known.
  expect(after.epoch, `epoch went back: ${context}`).toBeGreaterThanOrEqual(before.epoch);
  for (const e of effects) if (e.kind === "persist-epoch") expect(e.epoch).toBeGreaterThanOrEqual(before.epoch);
  // Whatever it asks the link to send, the peer's decoder must accept.
  for (const e of effects) {
    if (e.kind !== "send") continue;
    const checked = LinkMessageSchema.safeParse(e.message);
    expect(checked.success, `the core asks to send a frame the peer must refuse (${checked.error?.issues[0]?.path.join(".")}: ${checked.error?.issues[0]?.message}): ${JSON.stringify(e.message)}`).toBe(true);
  }
  // An offer at or below the known epoch never opens the gate.
  if (input.kind === "peer-message" && input.message.type === "handoff-offer" && input.message.epoch <= before.epoch) {
    expect(gates.some((g) => g.open), `stale offer opened the gate: ${context}`).toBe(false);
  }
  return { effects, after };
}

/** Is this message certainly not addressed to the core's pair (wrong sender, unknown handoff)? */
function isJunk(message: LinkMessage, names: Names): boolean {
  switch (message.type) {
    case "heartbeat":
      return message.node !== names.peer;
    case "handoff-offer":
      return message.from !== names.peer || message.to !== names.self;
    case "handoff-ready":
    case "handoff-reject":
    case "handoff-released":
      // Handoff ids are "<name>-<epoch>-<n>"; "~" is not allowed in a node name, so these match nothing.
      return message.id.includes("~");
    case "refuse":
      return true;
    default:
      return false;
  }
}

/** One fuzz sequence under the step contract; returns the core at its end. */
function runSequence(healthyStart: boolean, initialEpoch: number, steps: Step[], shutdownAtEnd: boolean): ElectionCore {
  const core = new ElectionCore(settingsFor(SELF, PEER, { initialEpoch }), 0);
  let now = 0;
  let pendingProbe = 0;
  if (healthyStart) {
    checkedStep(core, now, { kind: "services", healthy: true, reasons: [] }, core.snapshot(now));
    checkedStep(core, now, { kind: "gateway", reachable: true }, core.snapshot(now));
  }
  // Shutdown is final (the core stays "stopping"), so it only ends a sequence.
  const all: Step[] = shutdownAtEnd ? [...steps, { dtMs: 10, input: { kind: "shutdown", requestId: "stop" } }, { dtMs: 2_000, input: { kind: "tick" } }] : steps;
  for (const step of all) {
    now += step.dtMs;
    const input = resolveInput(step, core, now, pendingProbe);
    for (const e of checkedStep(core, now, input, core.snapshot(now)).effects) if (e.kind === "arp-probe") pendingProbe = e.probeId;
  }
  return core;
}

describe("election core on nonsense that passes the schema", () => {
  it("random input sequences: never throws, never opens the gate while ineligible, never goes back in epoch, sends only valid frames", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.nat({ max: 5 }), stepsArb({ self: SELF, peer: PEER }), fc.boolean(), (healthyStart, initialEpoch, steps, shutdownAtEnd) => {
        runSequence(healthyStart, initialEpoch, steps, shutdownAtEnd);
      }),
      fuzzParameters(2_500),
    );
  });

  it("an offer taken at the protocol's bound, then a stop: no handoff at an epoch past the bound (a counterexample the fuzz found)", () => {
    const heartbeat = (epoch: number, eligible: boolean): LinkMessage => ({ type: "heartbeat", seq: 0, node: PEER, epoch, holder: SELF, role: "standby", eligible, reasons: [], gatewayReachable: false, leaseRemainingMs: 0, vipPresent: false, keepalived: "unknown", services: [] });
    const steps: Step[] = [
      { dtMs: 0, input: { kind: "peer-message", message: heartbeat(MAX_EPOCH, false) }, relativeEpoch: 0 },
      { dtMs: 0, input: { kind: "peer-message", message: { type: "handoff-offer", id: "mn1-0-1", epoch: MAX_EPOCH, from: PEER, to: SELF, reason: "" } } },
      { dtMs: 0, input: { kind: "peer-message", message: heartbeat(0, true) }, relativeEpoch: 0 },
    ];
    const core = runSequence(true, 0, steps, true);
    expect(core.snapshot(10_000).epoch).toBe(MAX_EPOCH);
  });

  it("at the protocol's bound a node neither claims nor offers a handoff: both would need an epoch the peer must refuse", () => {
    const names = { self: SELF, peer: PEER };
    const core = new ElectionCore(settingsFor(SELF, PEER, { initialEpoch: MAX_EPOCH }), 0);
    checkedStep(core, 0, HEALTHY, core.snapshot(0));
    checkedStep(core, 0, { kind: "gateway", reachable: true }, core.snapshot(0));
    // The peer is gone: a node below the bound would probe and claim within a second or two.
    for (let now = 100; now <= 10_000; now += 100) {
      const { effects } = checkedStep(core, now, { kind: "tick" }, core.snapshot(now));
      expect(effects.some((e) => e.kind === "arp-probe" || (e.kind === "set-gate" && e.open))).toBe(false);
    }
    expect(core.snapshot(10_000).role).toBe("standby");
    // A holder at the bound (a claim from just below it) keeps the VIP when asked to demote, and says why.
    const holder = new ElectionCore(settingsFor(SELF, PEER), 0);
    holder.step(0, HEALTHY);
    holder.step(0, { kind: "gateway", reachable: true });
    holder.step(0, { kind: "peer-up" });
    holder.step(10, { kind: "peer-message", message: { ...peerStandbyHeartbeat(names, MAX_EPOCH - 1, 1), holder: PEER, role: "holder", leaseRemainingMs: 600 } });
    let now = 10;
    while (holder.snapshot(now).role !== "holder" && now < 10_000) {
      now += 100;
      for (const e of checkedStep(holder, now, { kind: "tick" }, holder.snapshot(now)).effects) {
        if (e.kind === "arp-probe") checkedStep(holder, now, { kind: "arp-result", probeId: e.probeId, occupied: false, detail: "" }, holder.snapshot(now));
      }
    }
    expect(holder.snapshot(now)).toMatchObject({ role: "holder", epoch: MAX_EPOCH });
    checkedStep(holder, now, { kind: "peer-up" }, holder.snapshot(now));
    checkedStep(holder, now + 10, { kind: "peer-message", message: peerStandbyHeartbeat(names, MAX_EPOCH - 1, 2) }, holder.snapshot(now + 10));
    const demoted = checkedStep(holder, now + 20, { kind: "demote", requestId: "op" }, holder.snapshot(now + 20)).effects;
    expect(demoted).toContainEqual(expect.objectContaining({ kind: "request-done", requestId: "op", ok: false, message: `no healthy peer to take the VIP: epoch ${MAX_EPOCH} is at the protocol's bound: no handoff can follow` }));
    const stopped = checkedStep(holder, now + 30, { kind: "shutdown", requestId: "stop" }, holder.snapshot(now + 30)).effects;
    expect(stopped.some((e) => e.kind === "send" && e.message.type === "handoff-offer")).toBe(false);
  });

  it("a message from a stranger, for an unknown handoff, or a refuse changes nothing (same state as a core that got none)", () => {
    const junk = linkMessageArb({ names: namesArb({ self: SELF, peer: PEER }), epochs: epochArb, ids: fc.string({ maxLength: 60 }).map((s) => `~${s}`) }).filter((m) => isJunk(m, { self: SELF, peer: PEER }));
    fc.assert(
      fc.property(stepsArb({ self: SELF, peer: PEER }), fc.array(fc.tuple(fc.nat({ max: 60 }), junk), { minLength: 1, maxLength: 10 }), (steps, insertions) => {
        const withJunk = new ElectionCore(settingsFor(SELF, PEER), 0);
        const twin = new ElectionCore(settingsFor(SELF, PEER), 0);
        let now = 0;
        const junkAt = new Map<number, LinkMessage[]>();
        for (const [at, message] of insertions) junkAt.set(at % steps.length, [...(junkAt.get(at % steps.length) ?? []), message]);
        for (const core of [withJunk, twin]) {
          core.step(0, { kind: "services", healthy: true, reasons: [] });
          core.step(0, { kind: "gateway", reachable: true });
        }
        steps.forEach((step, index) => {
          now += step.dtMs;
          withJunk.step(now, resolveInput(step, withJunk, now, 1));
          twin.step(now, resolveInput(step, twin, now, 1));
          for (const message of junkAt.get(index) ?? []) {
            const effects = checkedStep(withJunk, now, { kind: "peer-message", message }, withJunk.snapshot(now)).effects;
            const twinEffects = twin.step(now, { kind: "wake" });
            // The junk may be answered (a reject) or noted (an event), but nothing else happens.
            const substantive = (list: ElectionEffect[]) => list.filter((e) => e.kind !== "event" && !(e.kind === "send" && e.message.type === "handoff-reject"));
            expect(substantive(effects), `junk ${JSON.stringify(message)}`).toEqual(substantive(twinEffects));
            expect(withJunk.snapshot(now), `junk ${JSON.stringify(message)}`).toEqual(twin.snapshot(now));
          }
        });
      }),
      fuzzParameters(500),
    );
  });
});

// ---- directed: states that random sequences reach only rarely ------------------------------

const HEALTHY: ElectionInput = { kind: "services", healthy: true, reasons: [] };

/** Drives a fresh core to holder (peer silent, ARP guard clear) and returns it with the time. */
function holderCore(names: Names): { core: ElectionCore; now: number } {
  const core = new ElectionCore(settingsFor(names.self, names.peer), 0);
  core.step(0, HEALTHY);
  core.step(0, { kind: "gateway", reachable: true });
  let now = 0;
  let probeId: number | null = null;
  while (probeId === null && now < 5_000) {
    now += 100;
    for (const e of core.step(now, { kind: "tick" })) if (e.kind === "arp-probe") probeId = e.probeId;
  }
  if (probeId === null) throw new Error("the core never started a claim");
  core.step(now, { kind: "arp-result", probeId, occupied: false, detail: "no answer" });
  if (core.snapshot(now).role !== "holder") throw new Error(`expected holder, got ${core.snapshot(now).role}`);
  return { core, now };
}

/** The peer, heard as a healthy standby at the core's epoch. */
function peerStandbyHeartbeat(names: Names, epoch: number, seq: number): Heartbeat {
  return { type: "heartbeat", seq, node: names.peer, epoch, holder: names.self, role: "standby", eligible: true, reasons: [], gatewayReachable: true, leaseRemainingMs: 0, vipPresent: false, keepalived: "backup", services: [] };
}

const namesPairArb = fc.tuple(nodeNameArb, nodeNameArb).filter(([a, b]) => a !== b).map(([self, peer]) => ({ self, peer }));

describe("election core: what it sends in a handoff is always a valid frame", () => {
  it("a holder with a healthy standby peer offers the VIP on demote, with names up to 63 characters", () => {
    fc.assert(
      fc.property(namesPairArb, (names) => {
        const { core, now } = holderCore(names);
        core.step(now, { kind: "peer-up" });
        checkedStep(core, now + 10, { kind: "peer-message", message: peerStandbyHeartbeat(names, core.snapshot(now).epoch, 1) }, core.snapshot(now + 10));
        const { effects } = checkedStep(core, now + 20, { kind: "demote", requestId: "r1" }, core.snapshot(now + 20));
        expect(effects.some((e) => e.kind === "send" && e.message.type === "handoff-offer")).toBe(true);
      }),
      fuzzParameters(300, { examples: [[{ self: "a".repeat(63), peer: "b".repeat(63) }]] }),
    );
  });

  it("a holder whose services fail offers the VIP with its reasons, however long they are", () => {
    fc.assert(
      fc.property(fc.array(reasonArb, { minLength: 1, maxLength: 6 }), fc.boolean(), (reasons, gatewayLost) => {
        const names = { self: SELF, peer: PEER };
        const { core, now } = holderCore(names);
        core.step(now, { kind: "peer-up" });
        core.step(now + 10, { kind: "peer-message", message: peerStandbyHeartbeat(names, core.snapshot(now).epoch, 1) });
        // Losing the gateway alone makes it hand over (the offer then names only the gateway).
        const first = gatewayLost ? checkedStep(core, now + 15, { kind: "gateway", reachable: false }, core.snapshot(now + 15)).effects : [];
        const { effects } = checkedStep(core, now + 20, { kind: "services", healthy: false, reasons }, core.snapshot(now + 20));
        expect([...first, ...effects].some((e) => e.kind === "send" && e.message.type === "handoff-offer")).toBe(true);
      }),
      fuzzParameters(300, {
        examples: [[["service mn failed (connect ECONNREFUSED 127.0.0.1:8080)", "service ui failed (connect ECONNREFUSED 127.0.0.1:5000)", "service db failed (connect ECONNREFUSED)"], true]],
      }),
    );
  });

  it("a standby that cannot take the VIP rejects an offer with its reasons, however long they are", () => {
    fc.assert(
      fc.property(fc.array(reasonArb, { minLength: 1, maxLength: 6 }), fc.boolean(), (reasons, gatewayLost) => {
        const core = new ElectionCore(settingsFor(SELF, PEER), 0);
        core.step(0, { kind: "services", healthy: false, reasons });
        core.step(0, { kind: "gateway", reachable: !gatewayLost });
        core.step(10, { kind: "peer-up" });
        const offer: LinkMessage = { type: "handoff-offer", id: `${PEER}-1-1`, epoch: 1, from: PEER, to: SELF, reason: "operator demote" };
        const { effects } = checkedStep(core, 20, { kind: "peer-message", message: offer }, core.snapshot(20));
        expect(effects.some((e) => e.kind === "send" && e.message.type === "handoff-reject")).toBe(true);
      }),
      fuzzParameters(300, {
        examples: [[["service mn failed (connect ECONNREFUSED 127.0.0.1:8080)", "service ui failed (connect ECONNREFUSED 127.0.0.1:5000)", "service db failed (connect ECONNREFUSED)"], true]],
      }),
    );
  });

  /**
   * KNOWN BUG (passes while the bug exists; remove .fails once fixed). The protocol accepts any
   * safe-integer epoch, and the core adopts whatever its peer reports. A peer (a bad epoch file,
   * a bug, a hostile but authenticated node) at Number.MAX_SAFE_INTEGER makes this node's next
   * claim or handoff use MAX_SAFE_INTEGER + 1, which every heartbeat then carries and the peer's
   * decoder refuses: the link is refused frame after frame for good. Fix: bound epochs in the
   * protocol well below 2^53 (e.g. .max(2 ** 48)) and have the core refuse to adopt an epoch
   * at the bound (packages/protocol/src/messages.ts `epoch`, election.ts onHeartbeat/onHandoffOffer).
   */
  it("a peer at a huge epoch is never adopted past the bound, and the next claim still sends frames the peer accepts (regression)", () => {
    fc.assert(
      fc.property(fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 52, MAX_EPOCH, MAX_EPOCH - 1), (epoch) => {
        const names = { self: SELF, peer: PEER };
        const core = new ElectionCore(settingsFor(SELF, PEER), 0);
        core.step(0, HEALTHY);
        core.step(0, { kind: "gateway", reachable: true });
        core.step(0, { kind: "peer-up" });
        core.step(10, { kind: "peer-message", message: { ...peerStandbyHeartbeat(names, epoch, 1), holder: PEER, role: "holder", leaseRemainingMs: 600 } });
        expect(core.snapshot(10).epoch).toBe(epoch < MAX_EPOCH ? epoch : 0);
        // The peer goes silent; this node claims at epoch + 1, which must still be a valid epoch.
        let now = 10;
        let probeId: number | null = null;
        while (probeId === null && now < 5_000) {
          now += 100;
          for (const e of checkedStep(core, now, { kind: "tick" }, core.snapshot(now)).effects) if (e.kind === "arp-probe") probeId = e.probeId;
        }
        expect(probeId).not.toBeNull();
        checkedStep(core, now, { kind: "arp-result", probeId: probeId!, occupied: false, detail: "" }, core.snapshot(now));
        const fields = core.heartbeatFields(now);
        const heartbeat: LinkMessage = { type: "heartbeat", seq: 1, node: SELF, vipPresent: true, keepalived: "master", services: [], ...fields };
        const decoded = decodeLinkMessage(encode(heartbeat));
        expect(decoded.ok, `heartbeat at epoch ${fields.epoch} is refused by the peer: ${decoded.ok ? "" : decoded.reason}`).toBe(true);
      }),
      fuzzParameters(10),
    );
  });
});

// ---- the link's decode path: only schema-valid messages reach the core -------------------------

describe("peer link: an invalid frame from an authenticated peer never reaches the core", () => {
  const running: TestNode[] = [];
  const relays: RecordingRelay[] = [];
  afterEach(async () => {
    await Promise.all([...running.splice(0).map((n) => n.link.stop()), ...relays.splice(0).map((r) => r.stop())]);
  });

  it("frames a buggy peer seals after the handshake: valid ones are delivered as decoded, every other one is refused and closes the link", async () => {
    const portA = await freePort();
    const portB = await freePort();
    const relayPort = await freePort();
    const nowhere = await freePort();
    const relay = await RecordingRelay.start(relayPort, portB);
    relays.push(relay);
    // A dials B through the relay (B cannot dial back); A itself sends the frames, sealed.
    const a = makeNode({ name: "mn-a", port: portA, peerName: "mn-b", peerPort: relayPort, reconnectInitialMs: 10, reconnectMaxMs: 20 });
    const b = makeNode({ name: "mn-b", port: portB, peerName: "mn-a", peerPort: nowhere, reconnectInitialMs: 10, reconnectMaxMs: 20 });
    running.push(a, b);
    await b.link.start();
    await a.link.start();

    const frames = fc.sample(
      fc.oneof(
        { weight: 3, arbitrary: mutatedFrameArb(linkMessageArb(), { maxNestDepth: 50 }).map((m) => m.frame) },
        { weight: 1, arbitrary: junkFrameArb },
        { weight: 2, arbitrary: linkMessageArb().map(encode) },
        { weight: 1, arbitrary: heartbeatArb({ names: fc.constant("mn-a") }).map(encode) },
      ),
      fuzzParameters(80),
    );
    let delivered = 0;
    let refused = 0;
    for (const frame of frames) {
      await waitFor(() => b.link.connected() && a.link.connected(), "the link to come back", 5_000);
      const messagesBefore = b.messages().length;
      const refusalsBefore = b.refusals().length;
      const downsBefore = b.count("down");
      // Sealed with A's session key: only a peer holding it gets this far (strangers are refused as forged-frame).
      expect(sendSealedUnchecked(a.link, frame)).toBe(true);
      // What the wire carries: UTF-8 has no lone surrogates (they travel as U+FFFD).
      const expected = decodeLinkMessage(Buffer.from(frame, "utf8").toString("utf8"));
      const isRefuse = expected.ok && expected.message.type === "refuse";
      await waitFor(() => b.messages().length > messagesBefore || b.refusals().length > refusalsBefore || b.count("down") > downsBefore, `an outcome for ${frame.slice(0, 80)}`, 3_000);
      if (expected.ok && !isRefuse) {
        expect(b.messages().slice(messagesBefore)).toEqual([expected.message]);
        delivered++;
      } else {
        expect(b.messages().length, `a bad frame reached the core: ${frame.slice(0, 200)}`).toBe(messagesBefore);
        if (expected.ok && expected.message.type === "refuse" && expected.message.code === "duplicate-link") {
          // The peer closing a surplus link is routine: the link goes down, and it is no refusal.
          expect(b.count("down")).toBeGreaterThan(downsBefore);
          expect(b.refusals().length).toBe(refusalsBefore);
          refused++;
          continue;
        }
        const refusal = b.refusals()[refusalsBefore]!;
        if (expected.ok) expect(refusal.reason).toContain("refused by the peer");
        // ws itself cuts an oversized frame before the decoder sees it; its reason names the limit.
        else if (expected.code === "too-large") expect(refusal).toMatchObject({ code: "bad-frame", reason: expect.stringContaining(`${MAX_FRAME_BYTES}-byte limit`) });
        else expect(refusal).toMatchObject({ code: "bad-frame", reason: expect.stringContaining(expected.reason.slice(0, 40)) });
        refused++;
      }
    }
    // Everything the link ever delivered passes the schema.
    for (const message of b.messages()) expect(LinkMessageSchema.safeParse(message).success).toBe(true);
    expect(delivered + refused).toBe(frames.length);
  }, 60_000);
});
