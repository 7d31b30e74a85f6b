/**
 * Property-based fuzzing of the frame decoders. Whatever arrives on the wire — random text,
 * random JSON, or a valid message with one thing wrong — `decodeLinkMessage` and
 * `decodeHandshake` never throw; they refuse with a code and a reason that names what was
 * wrong, and accept only what re-validates under the schema and encodes again.
 *
 * Replay a failure: MNHA_FUZZ_SEED=<seed> MNHA_FUZZ_PATH=<path> pnpm vitest run --project unit
 * packages/protocol/test/fuzz.test.ts -t "<test name>" (see packages/agent/test/fuzz/fuzz-options.ts).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  HandshakeMessageSchema,
  LinkMessageSchema,
  MAX_FRAME_BYTES,
  decodeHandshake,
  decodeLinkMessage,
  encode,
  type DecodeResult,
  type HandshakeMessage,
  type LinkMessage,
} from "../src/index.js";
// One set of frame generators and one replay switch for every fuzz file in the repository.
import { fuzzParameters } from "../../agent/test/fuzz/fuzz-options.js";
import { handshakeMessageArb, junkFrameArb, linkMessageArb, mutatedFrameArb, type MutatedFrame } from "../../agent/test/fuzz/frames.js";

type Decoder<T> = (frame: string, maxBytes?: number) => DecodeResult<T>;

interface Codec<T> {
  name: string;
  decode: Decoder<T>;
  schema: z.ZodType<T>;
}

type AnyMessage = HandshakeMessage | LinkMessage;
const LINK: Codec<AnyMessage> = { name: "decodeLinkMessage", decode: decodeLinkMessage, schema: LinkMessageSchema };
const HANDSHAKE: Codec<AnyMessage> = { name: "decodeHandshake", decode: decodeHandshake, schema: HandshakeMessageSchema };
const CODECS = [LINK, HANDSHAKE];

/**
 * The decoder's contract for one frame. Returns the result so a property can say more.
 * - never throws;
 * - ok: the message re-validates and survives encode → decode unchanged;
 * - not ok: a known code and a reason that says where and what ("<field>: <problem>").
 */
function checkDecode<T extends AnyMessage>(codec: Codec<T>, frame: string): DecodeResult<T> {
  let result: DecodeResult<T> | undefined;
  expect(() => (result = codec.decode(frame)), `${codec.name} threw on ${preview(frame)}`).not.toThrow();
  const decoded = result as DecodeResult<T>;
  if (decoded.ok) {
    expect(codec.schema.safeParse(decoded.message).success, `${codec.name} accepted a message the schema refuses: ${preview(frame)}`).toBe(true);
    // Compared as JSON text: -0 and 0 are the same number on the wire.
    const text = encode(decoded.message);
    const again = codec.decode(text);
    expect(again.ok && encode(again.message), `${codec.name}: accepted message does not survive encode/decode`).toBe(text);
    return decoded;
  }
  expect(["too-large", "not-json", "invalid"]).toContain(decoded.code);
  expect(typeof decoded.reason).toBe("string");
  expect(decoded.reason.trim().length, `empty reason for ${preview(frame)}`).toBeGreaterThan(0);
  if (decoded.code === "invalid") expect(decoded.reason, "an invalid frame's reason is '<where>: <what>'").toMatch(/^\S.*?: \S/s);
  if (decoded.code === "too-large") expect(decoded.reason).toContain(`${MAX_FRAME_BYTES}-byte limit`);
  return decoded;
}

function preview(frame: string): string {
  return JSON.stringify(frame.length > 200 ? `${frame.slice(0, 200)}... (${frame.length} chars)` : frame);
}

/** The reason names the field the mutation touched (or, for a rename, either name). */
function expectReasonNames(result: DecodeResult<unknown>, mutated: MutatedFrame): void {
  if (result.ok) return;
  const { mutation } = mutated;
  const why = `${mutation.detail} at ${JSON.stringify(mutation.at)} gave ${JSON.stringify(result)}`;
  switch (mutation.kind) {
    case "oversize":
      expect(result.code, why).toBe("too-large");
      return;
    case "text":
      return;
    default: {
      // JSON text of an exotic key is escaped inside the reason; name it the way zod prints it.
      // A value nested too deep may be refused at the field that holds it (its depth bound).
      const onPath = mutation.kind === "nest" ? mutation.at.map(String) : [];
      const names = [mutation.key, mutation.newKey, ...onPath].filter((k): k is string => k !== undefined).flatMap((k) => [k, JSON.stringify(k).slice(1, -1)]);
      expect(result.code, why).toBe("invalid");
      expect(
        names.some((name) => result.reason.includes(name)),
        why,
      ).toBe(true);
    }
  }
}

describe("decoders on random input", () => {
  for (const codec of CODECS) {
    it(`${codec.name}: random text and binary noise never throw and are refused with a reason`, () => {
      fc.assert(
        fc.property(junkFrameArb, (frame) => {
          checkDecode(codec, frame);
        }),
        fuzzParameters(3_000),
      );
    });

    it(`${codec.name}: random JSON values are refused as invalid (never not-json) unless they are messages`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }))), (value) => {
          const result = checkDecode(codec, JSON.stringify(value) ?? "null");
          if (!result.ok) expect(result.code).toBe("invalid");
        }),
        fuzzParameters(2_000),
      );
    });
  }
});

describe("decoders on valid messages", () => {
  it("every generated link message decodes to itself (the generators are right)", () => {
    fc.assert(
      fc.property(linkMessageArb(), (message) => {
        const result = checkDecode(LINK, encode(message));
        expect(result).toEqual({ ok: true, message: JSON.parse(JSON.stringify(message)) });
      }),
      fuzzParameters(1_000),
    );
  });

  it("every generated handshake message decodes to itself", () => {
    fc.assert(
      fc.property(handshakeMessageArb, (message) => {
        expect(checkDecode(HANDSHAKE, encode(message))).toEqual({ ok: true, message });
      }),
      fuzzParameters(1_000),
    );
  });

  it("a message of one phase is never accepted in the other (only refuse is common)", () => {
    fc.assert(
      fc.property(fc.oneof(linkMessageArb(), handshakeMessageArb), (message) => {
        const asLink = checkDecode(LINK, encode(message));
        const asHandshake = checkDecode(HANDSHAKE, encode(message));
        if (message.type !== "refuse") expect(asLink.ok && asHandshake.ok).toBe(false);
        if (!asHandshake.ok) expect(asHandshake.reason).toMatch(/^type: /);
        if (!asLink.ok) expect(asLink.reason).toMatch(/^type: /);
      }),
      fuzzParameters(1_000),
    );
  });
});

describe("decoders on mutated messages", () => {
  it("decodeLinkMessage: a dropped, added, renamed or retyped field, a nasty number, unicode, nesting, an oversized or broken frame", () => {
    fc.assert(
      fc.property(mutatedFrameArb(linkMessageArb()), (mutated) => {
        expectReasonNames(checkDecode(LINK, mutated.frame), mutated);
      }),
      fuzzParameters(4_000),
    );
  });

  it("decodeHandshake: the same mutations of handshake messages", () => {
    fc.assert(
      fc.property(mutatedFrameArb(handshakeMessageArb), (mutated) => {
        expectReasonNames(checkDecode(HANDSHAKE, mutated.frame), mutated);
      }),
      fuzzParameters(4_000),
    );
  });

  it("numbers: negative, fractional, huge and unsafe epochs are refused naming the field", () => {
    const epochFrame = fc.tuple(fc.constantFrom("handoff-ready", "handoff-released"), fc.constantFrom("-1", "-0.0001", "0.5", "1e21", "9007199254740992", "1e400", "-1e400", "NaN", "Infinity", '"1"', "true", "null", "[1]")).map(
      ([type, epoch]) => `{"type":"${type}","id":"x","epoch":${epoch}}`,
    );
    fc.assert(
      fc.property(epochFrame, (frame) => {
        const result = checkDecode(LINK, frame);
        expect(result.ok, frame).toBe(false);
        if (!result.ok && result.code === "invalid") expect(result.reason).toMatch(/^epoch: /);
        if (!result.ok && result.code === "not-json") expect(frame).toMatch(/NaN|Infinity/);
      }),
      fuzzParameters(200),
    );
  });

  it("a frame over the limit is refused by size before it is parsed, whatever it holds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4_096 }), fc.constantFrom("a", "é", "💥", "{", "\u0000"), fc.integer({ min: 64, max: 1_024 }), (extra, unit, limit) => {
        const frame = unit.repeat(Math.ceil((limit + extra) / Buffer.byteLength(unit)));
        for (const codec of CODECS) {
          const result = codec.decode(frame, limit);
          expect(result).toMatchObject({ ok: false, code: "too-large" });
          if (!result.ok) expect(result.reason).toContain(`${limit}-byte limit`);
        }
      }),
      fuzzParameters(300),
    );
  });
});

describe("regressions found by fuzzing", () => {
  /**
   * BUG: SyncEventSchema.fields is z.record(string, z.unknown()): a peer can nest a value
   * thousands of levels deep inside a 256 KiB frame. The decoder accepts it, but JSON.stringify
   * of the decoded message (the store, a relay, a log) overflows the stack. Fix: bound the
   * depth of `fields` values in packages/protocol/src/messages.ts (a JSON value schema of depth
   * <= 8, or a refine on depth).
   */
  it("a sync-batch whose event fields nest 50 000 deep is refused (regression: it was accepted and could not be encoded again)", () => {
    const depth = 50_000;
    const event = { origin: "mn2", seq: 1, node: "mn2", wallMs: 1, monoMs: 1, type: "t", service: null, message: "m", fields: { x: 0 } };
    const frame = JSON.stringify({ type: "sync-batch", id: 1, events: [event], samples: [] }).replace('{"x":0}', `{"x":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    expect(frame.length).toBeLessThan(MAX_FRAME_BYTES);
    checkDecode(LINK, frame);
  });
});
