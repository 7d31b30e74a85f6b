import { describe, expect, it } from "vitest";
import { DUPLICATE_CHECK_PROBLEM_MAX, checkSequence, handshakeTranscript, proofInput, sealedHeader, sealedNonce, splitSealedFrame, SEALED_OVERHEAD_BYTES, chooseVersion, decodeHandshake, decodeLinkMessage, encode, MAX_FRAME_BYTES, proofsEqual, type Heartbeat } from "../src/index.js";

const heartbeat: Heartbeat = {
  type: "heartbeat",
  seq: 3,
  node: "mn1",
  epoch: 4,
  holder: "mn1",
  role: "holder",
  eligible: true,
  reasons: [],
  gatewayReachable: true,
  leaseRemainingMs: 600,
  vipPresent: true,
  keepalived: "master",
  services: [{ name: "mn", healthy: true, critical: true }],
};

describe("codec", () => {
  it("round-trips a heartbeat", () => {
    expect(decodeLinkMessage(encode(heartbeat))).toEqual({ ok: true, message: heartbeat });
  });

  it("round-trips a v4 heartbeat with the sender's duplicate check", () => {
    const withCheck: Heartbeat = { ...heartbeat, duplicateCheck: { state: "failing", problem: "x".repeat(DUPLICATE_CHECK_PROBLEM_MAX) } };
    expect(decodeLinkMessage(encode(withCheck))).toEqual({ ok: true, message: withCheck });
  });

  it.each([
    ["not JSON", "{oops", "not-json"],
    ["unknown duplicate-check state", JSON.stringify({ ...heartbeat, duplicateCheck: { state: "blind", problem: null } }), "invalid"],
    ["too long a duplicate-check problem", JSON.stringify({ ...heartbeat, duplicateCheck: { state: "failing", problem: "x".repeat(DUPLICATE_CHECK_PROBLEM_MAX + 1) } }), "invalid"],
    ["an unknown duplicate-check field", JSON.stringify({ ...heartbeat, duplicateCheck: { state: "running", problem: null, lastCheckMsAgo: 3 } }), "invalid"],
    ["unknown type", JSON.stringify({ type: "nope" }), "invalid"],
    ["unknown field", JSON.stringify({ ...heartbeat, extra: 1 }), "invalid"],
    ["negative epoch", JSON.stringify({ ...heartbeat, epoch: -1 }), "invalid"],
    ["bad node name", JSON.stringify({ ...heartbeat, node: "../etc" }), "invalid"],
    ["oversized", JSON.stringify({ ...heartbeat, reasons: ["x".repeat(MAX_FRAME_BYTES)] }), "too-large"],
  ])("refuses %s with a reason", (_name, frame, code) => {
    const result = decodeLinkMessage(frame);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(code);
      expect(result.reason.length).toBeGreaterThan(5);
    }
  });

  it("counts UTF-8 bytes, not characters, at the size limit", () => {
    // "é" is 2 bytes: with the quotes, 149 of them make exactly 300 bytes (151 characters), 150 make 302.
    expect(decodeLinkMessage(JSON.stringify("é".repeat(149)), 300)).toMatchObject({ ok: false, code: "invalid" });
    expect(decodeLinkMessage(JSON.stringify("é".repeat(150)), 300)).toMatchObject({ ok: false, code: "too-large", reason: "frame of 302 bytes exceeds the 300-byte limit" });
    // Short enough that even 3 bytes a character fit: not counted, and not refused by size.
    expect(decodeLinkMessage(JSON.stringify("€".repeat(98)), 300)).toMatchObject({ ok: false, code: "invalid" });
  });

  it("handshake frames are not link messages and vice versa", () => {
    const hello = encode({ type: "hello", node: "mn1", versions: [1], nonce: "a".repeat(44) });
    expect(decodeHandshake(hello).ok).toBe(true);
    expect(decodeLinkMessage(hello).ok).toBe(false);
    expect(decodeHandshake(encode(heartbeat)).ok).toBe(false);
  });

  it("counts multi-byte characters against the size limit", () => {
    const frame = JSON.stringify({ ...heartbeat, reasons: ["é".repeat(20)] });
    expect(decodeLinkMessage(frame, frame.length).ok).toBe(false);
  });
});

describe("handshake helpers", () => {
  it("chooses the highest common version, or none", () => {
    expect(chooseVersion([1, 2, 3], [1, 2])).toBe(2);
    expect(chooseVersion([99], [1])).toBeNull();
  });
  it("proof inputs differ by side, so a proof cannot be reflected", () => {
    const fields = { dialer: "mn1", listener: "mn2", offered: [2], dialerNonce: "a", listenerNonce: "b", version: 2 };
    expect(proofInput("dialer", fields)).not.toBe(proofInput("listener", fields));
  });
  it("the transcript binds the offered version list: a trimmed offer gives another transcript", () => {
    const fields = { dialer: "mn1", listener: "mn2", offered: [2, 3], dialerNonce: "a", listenerNonce: "b", version: 2 };
    expect(handshakeTranscript(fields)).not.toBe(handshakeTranscript({ ...fields, offered: [2] }));
    expect(handshakeTranscript(fields)).not.toBe(handshakeTranscript({ ...fields, offered: [3, 2] }));
    expect(handshakeTranscript(fields)).toBe(["mnha-link-v2", "mn1", "mn2", "2,3", "2", "a", "b"].join("\n"));
  });
  it("compares proofs", () => {
    expect(proofsEqual("ab", "ab")).toBe(true);
    expect(proofsEqual("ab", "ac")).toBe(false);
    expect(proofsEqual("ab", "abc")).toBe(false);
  });
});

describe("sealed frame layout", () => {
  it("header: format byte then the big-endian sequence number; nonce: 4 zero bytes then the same 8 bytes", () => {
    const seq = 2 ** 40 + 5;
    const header = sealedHeader(seq);
    expect([...header]).toEqual([1, 0, 0, 1, 0, 0, 0, 0, 5]);
    expect([...sealedNonce(seq)]).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5]);
    expect(() => sealedHeader(-1)).toThrow(RangeError);
    expect(() => sealedHeader(2 ** 53)).toThrow(RangeError);
  });
  it("splits a frame into header, ciphertext and tag, and calls anything shorter than the overhead truncated", () => {
    const frame = new Uint8Array([...sealedHeader(7), 0xaa, 0xbb, ...new Array<number>(16).fill(0xcc)]);
    const parts = splitSealedFrame(frame);
    expect(parts.ok && parts.seq).toBe(7);
    expect(parts.ok && [...parts.ciphertext]).toEqual([0xaa, 0xbb]);
    expect(parts.ok && parts.tag.length).toBe(16);
    expect(splitSealedFrame(frame.subarray(0, SEALED_OVERHEAD_BYTES - 1))).toMatchObject({ ok: false, fault: "truncated" });
    const unknownFormat = frame.slice();
    unknownFormat[0] = 9;
    expect(splitSealedFrame(unknownFormat)).toMatchObject({ ok: false, fault: "truncated", reason: expect.stringContaining("format 9") });
    // A sequence number above 2^53 cannot be authentic: reported as -1, never rounded.
    const huge = frame.slice();
    huge.fill(0xff, 1, 9);
    expect(splitSealedFrame(huge)).toMatchObject({ ok: true, seq: -1 });
  });
  it("accepts frames strictly in order: an old number is a replay, a later one means frames are missing", () => {
    expect(checkSequence(3, 3)).toEqual({ ok: true });
    expect(checkSequence(3, 1)).toMatchObject({ ok: false, fault: "replayed" });
    expect(checkSequence(3, 4)).toMatchObject({ ok: false, fault: "reordered" });
  });
});
