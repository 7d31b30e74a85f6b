import { describe, expect, it } from "vitest";
import { blockedOutcomeKey, ClaimRetryDigest, type ElectionEventRecord } from "../../src/daemon/claim-retry-digest.js";

/**
 * The events of blocked claim tries, as the election core emits them during a partition in
 * which the old holder still answers: recorded in full at first and once a minute, counted in
 * between; anything else ends the digest with the count first and nothing lost.
 */

const HOLDER_MAC = "02:4d:4e:48:41:0b";
let clock = 1_000_000;

function event(type: string, fields: Record<string, unknown>, message = type): ElectionEventRecord {
  return { type, message, fields, wallMs: 1_800_000_000_000 + clock, monoMs: clock };
}

/** One try: standby -> claiming, claim-started, then blocked by `mac` (or, with `mac` null, the claim goes through). */
function tryOnce(digest: ClaimRetryDigest, mac: string | null, afterMs = 500): ElectionEventRecord[][] {
  clock += afterMs;
  const out = [digest.offer(event("role-changed", { from: "standby", to: "claiming", reason: "holder gone; checking nobody answers for the VIP" })), digest.offer(event("claim-started", { probeId: clock }))];
  clock += 45;
  if (mac === null) {
    out.push(digest.offer(event("role-changed", { from: "claiming", to: "holder", reason: "claimed the VIP at epoch 2", epoch: 2 })));
    return out;
  }
  out.push(digest.offer(event("role-changed", { from: "claiming", to: "standby", reason: "claim blocked by ARP guard" })));
  out.push(digest.offer(event("claim-blocked", { detail: `10.0.0.100 answered by ${mac} after ${40 + (clock % 9)} ms` })));
  return out;
}

const types = (batches: ElectionEventRecord[][]) => batches.flat().map((e) => (e.type === "role-changed" ? `${String(e.fields["from"])}->${String(e.fields["to"])}` : e.type));

describe("blocked claim tries (a partition in which the old holder still answers for the VIP)", () => {
  it("the outcome's key leaves out the probe's timing", () => {
    expect(blockedOutcomeKey(`10.0.0.100 answered by ${HOLDER_MAC} after 47 ms`)).toBe(`10.0.0.100 answered by ${HOLDER_MAC}`);
    expect(blockedOutcomeKey(`10.0.0.100 answered by ${HOLDER_MAC} after 4.5 ms`)).toBe(`10.0.0.100 answered by ${HOLDER_MAC}`);
  });

  it("the first try is recorded in full, the next ones of the same minute only counted, then a full try a minute on, after the count", () => {
    const digest = new ClaimRetryDigest(60_000);
    expect(types(tryOnce(digest, HOLDER_MAC))).toEqual(["standby->claiming", "claim-started", "claiming->standby", "claim-blocked"]);
    // About two tries a second for 54.5 s: none recorded.
    let quiet = 0;
    for (let i = 0; i < 100; i++) quiet += tryOnce(digest, HOLDER_MAC).flat().length;
    expect(quiet).toBe(0);
    const full = tryOnce(digest, HOLDER_MAC, 6_000).flat();
    expect(full.map((e) => e.type)).toEqual(["claim-retries", "role-changed", "claim-started", "role-changed", "claim-blocked"]);
    expect(full[0]?.fields).toMatchObject({ count: 100 });
    expect(full[0]?.message).toMatch(/^100 more claim tries from \S+ to \S+ were blocked the same way \(someone answers for the VIP: 10\.0\.0\.100 answered by 02:4d:4e:48:41:0b\) and are not recorded one by one/);
    // And quiet again after it.
    expect(tryOnce(digest, HOLDER_MAC).flat()).toEqual([]);
  });

  it("the holder dies during the partition: the try that goes through is recorded whole, with its own times, after the count", () => {
    const digest = new ClaimRetryDigest(60_000);
    tryOnce(digest, HOLDER_MAC);
    for (let i = 0; i < 5; i++) tryOnce(digest, HOLDER_MAC);
    const before = clock;
    const batches = tryOnce(digest, null);
    // Held while the probe ran: nothing recorded until the try ended.
    expect(batches[0]).toEqual([]);
    expect(batches[1]).toEqual([]);
    const recorded = batches.flat();
    expect(types([recorded])).toEqual(["claim-retries", "standby->claiming", "claim-started", "claiming->holder"]);
    expect(recorded[0]?.fields["count"]).toBe(5);
    // The held events keep the moment they happened (what the failover record's cause reads).
    expect(recorded[1]?.monoMs).toBe(before + 500);
    expect(recorded[2]?.monoMs).toBe(before + 500);
    expect(recorded[3]?.monoMs).toBe(before + 545);
  });

  it("another MAC answering is a new outcome: recorded in full", () => {
    const digest = new ClaimRetryDigest(60_000);
    tryOnce(digest, HOLDER_MAC);
    tryOnce(digest, HOLDER_MAC);
    const other = tryOnce(digest, "02:aa:bb:cc:dd:ee").flat();
    expect(types([other])).toEqual(["claim-retries", "standby->claiming", "claim-started", "claiming->standby", "claim-blocked"]);
    expect(other[0]?.fields["count"]).toBe(1);
    expect(String(other[4]?.fields["detail"])).toContain("02:aa:bb:cc:dd:ee");
    // ... and the digest goes on for that one.
    expect(tryOnce(digest, "02:aa:bb:cc:dd:ee").flat()).toEqual([]);
  });

  it("any other election event ends the digest, the count said first; a stop says what is left", () => {
    const digest = new ClaimRetryDigest(60_000);
    tryOnce(digest, HOLDER_MAC);
    tryOnce(digest, HOLDER_MAC);
    clock += 100;
    const heard = digest.offer(event("peer-heard", {}));
    expect(heard.map((e) => e.type)).toEqual(["claim-retries", "peer-heard"]);
    // Nothing pending now; a new streak starts with a full try.
    expect(types(tryOnce(digest, HOLDER_MAC))).toHaveLength(4);
    tryOnce(digest, HOLDER_MAC);
    tryOnce(digest, HOLDER_MAC);
    expect(digest.pendingSummary({ wallMs: 0, monoMs: clock }).map((e) => [e.type, e.fields["count"]])).toEqual([["claim-retries", 2]]);
    expect(digest.pendingSummary({ wallMs: 0, monoMs: clock })).toEqual([]);
  });

  it("an event in the middle of a held try ends it: the held events come first, in order, with nothing dropped", () => {
    const digest = new ClaimRetryDigest(60_000);
    tryOnce(digest, HOLDER_MAC);
    clock += 500;
    expect(digest.offer(event("role-changed", { from: "standby", to: "claiming" }))).toEqual([]);
    expect(digest.offer(event("claim-started", {}))).toEqual([]);
    const adopted = digest.offer(event("epoch-adopted", { epoch: 3 }));
    expect(types([adopted])).toEqual(["standby->claiming", "claim-started", "epoch-adopted"]);
  });
});
