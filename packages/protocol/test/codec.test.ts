import { describe, expect, it } from "vitest";
import { authTranscript, chooseVersion, decodeHandshake, decodeLinkMessage, encode, MAX_FRAME_BYTES, proofsEqual, type Heartbeat } from "../src/index.js";

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

  it.each([
    ["not JSON", "{oops", "not-json"],
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
  it("transcripts differ by side, so a proof cannot be reflected", () => {
    const fields = { dialer: "mn1", listener: "mn2", dialerNonce: "a", listenerNonce: "b", version: 1 };
    expect(authTranscript("dialer", fields)).not.toBe(authTranscript("listener", fields));
  });
  it("compares proofs", () => {
    expect(proofsEqual("ab", "ab")).toBe(true);
    expect(proofsEqual("ab", "ac")).toBe(false);
    expect(proofsEqual("ab", "abc")).toBe(false);
  });
});
