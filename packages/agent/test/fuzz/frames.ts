/**
 * fast-check arbitraries for peer-link frames: every valid handshake and link message, and
 * mutations of them (a field dropped, added, renamed or retyped, huge and negative numbers,
 * unicode, deep nesting, oversized frames, broken JSON text). Shared by the protocol, the
 * handshake and the election fuzz tests.
 */
import fc from "fast-check";
import { MAX_EPOCH, MAX_FRAME_BYTES, type HandshakeMessage, type Heartbeat, type LinkMessage, type Refuse } from "@mnha/protocol";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

// ---- valid values ------------------------------------------------------------------------

export const nodeNameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);
export const nonceArb = fc.stringMatching(/^[A-Za-z0-9+/=_-]{16,128}$/);
export const proofArb = fc.stringMatching(/^[0-9a-f]{64}$/);
// "__proto__" is left out: an origin is also a watermark key, and the decoder (zod's record)
// never keeps that key as its own, so such a message would not decode to itself.
const originArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,80}$/).filter((origin) => origin !== "__proto__");
const versionArb = fc.integer({ min: 1, max: 1_000 });
const versionsArb = fc.array(versionArb, { minLength: 1, maxLength: 16 });
const shortText = (max: number) => fc.string({ maxLength: Math.min(max, 40), unit: "grapheme" }).filter((s) => s.length <= max);
const idArb = fc.string({ minLength: 1, maxLength: 64 });
const epochArbDefault = fc.oneof(fc.nat({ max: 20 }), fc.nat(), fc.constant(MAX_EPOCH));
const refuseCodeArb = fc.constantFrom<Refuse["code"]>("bad-frame", "unsupported-version", "auth-failed", "unknown-peer", "duplicate-link", "not-ready", "protocol");
const roleArb = fc.constantFrom<Heartbeat["role"]>("starting", "standby", "claiming", "holder", "handing-off", "receiving", "stopping");
const keepalivedArb = fc.constantFrom<Heartbeat["keepalived"]>("unknown", "init", "backup", "master", "fault", "stopped");

export const refuseArb: fc.Arbitrary<Refuse> = fc.record(
  { type: fc.constant("refuse" as const), code: refuseCodeArb, message: shortText(500), versions: fc.array(versionArb, { maxLength: 16 }) },
  { requiredKeys: ["type", "code", "message"] },
);

export const handshakeMessageArb: fc.Arbitrary<HandshakeMessage> = fc.oneof(
  fc.record({ type: fc.constant("hello" as const), node: nodeNameArb, versions: versionsArb, nonce: nonceArb }),
  fc.record({ type: fc.constant("challenge" as const), node: nodeNameArb, version: versionArb, nonce: nonceArb }),
  fc.record({ type: fc.constant("auth" as const), proof: proofArb }),
  fc.record({ type: fc.constant("welcome" as const), version: versionArb, proof: proofArb }),
  refuseArb,
);

export interface LinkMessageBias {
  /** Node names to draw from (the election test passes self, peer and strangers). */
  names?: fc.Arbitrary<string>;
  epochs?: fc.Arbitrary<number>;
  ids?: fc.Arbitrary<string>;
}

export function heartbeatArb(bias: LinkMessageBias = {}): fc.Arbitrary<Heartbeat> {
  const names = bias.names ?? nodeNameArb;
  return fc.record({
    type: fc.constant("heartbeat" as const),
    seq: fc.nat(),
    node: names,
    epoch: bias.epochs ?? epochArbDefault,
    holder: fc.option(names, { nil: null }),
    role: roleArb,
    eligible: fc.boolean(),
    reasons: fc.array(shortText(200), { maxLength: 4 }),
    gatewayReachable: fc.boolean(),
    leaseRemainingMs: fc.oneof(fc.constant(0), fc.nat({ max: 3_600_000 })),
    vipPresent: fc.boolean(),
    keepalived: keepalivedArb,
    services: fc.array(fc.record({ name: shortText(64), healthy: fc.boolean(), critical: fc.boolean() }), { maxLength: 4 }),
  });
}

const syncEventArb = fc.record({
  origin: originArb,
  seq: fc.integer({ min: 1 }),
  node: nodeNameArb,
  wallMs: fc.nat(),
  monoMs: fc.double({ min: 0, max: 1e12, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  type: fc.string({ minLength: 1, maxLength: 64 }),
  service: fc.option(shortText(64), { nil: null }),
  message: shortText(2_000),
  // "__proto__" is left out: the decoder never keeps it as an own key (zod's record), so a
  // message carrying it does not decode to itself; such a key is no valid field name.
  fields: fc.dictionary(
    fc.string({ maxLength: 64 }).filter((key) => key !== "__proto__"),
    fc.jsonValue({ maxDepth: 3 }),
    { maxKeys: 4 },
  ),
});
const syncSampleArb = fc.record({
  origin: originArb,
  seq: fc.integer({ min: 1 }),
  node: nodeNameArb,
  wallMs: fc.nat(),
  series: fc.string({ minLength: 1, maxLength: 128 }),
  value: fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
});
const watermarksArb = fc.record({ events: fc.dictionary(originArb, fc.nat(), { maxKeys: 3 }), samples: fc.dictionary(originArb, fc.nat(), { maxKeys: 3 }) });

export function linkMessageArb(bias: LinkMessageBias = {}): fc.Arbitrary<LinkMessage> {
  const names = bias.names ?? nodeNameArb;
  const epochs = bias.epochs ?? epochArbDefault;
  const ids = bias.ids ?? idArb;
  return fc.oneof(
    { weight: 4, arbitrary: heartbeatArb(bias) },
    fc.record({ type: fc.constant("handoff-offer" as const), id: ids, epoch: epochs, from: names, to: names, reason: shortText(200) }),
    fc.record({ type: fc.constant("handoff-ready" as const), id: ids, epoch: epochs }),
    fc.record({ type: fc.constant("handoff-reject" as const), id: ids, epoch: epochs, reason: shortText(200) }),
    fc.record({ type: fc.constant("handoff-released" as const), id: ids, epoch: epochs }),
    fc.record({ type: fc.constant("sync-hello" as const), have: watermarksArb }),
    fc.record({ type: fc.constant("sync-batch" as const), id: fc.nat(), events: fc.array(syncEventArb, { maxLength: 2 }), samples: fc.array(syncSampleArb, { maxLength: 2 }) }),
    fc.record({ type: fc.constant("sync-ack" as const), id: fc.nat(), have: watermarksArb }),
    refuseArb,
  );
}

// ---- mutations -------------------------------------------------------------------------------

/** What a mutation did, so a test can check that the decoder's reason names it. */
export interface Mutation {
  kind: "drop" | "add" | "rename" | "retype" | "number" | "unicode" | "nest" | "oversize" | "text";
  /** Keys from the message root to the object that was changed. */
  at: string[];
  /** The field the reason should name (drop, add, rename, retype, number, unicode, nest). */
  key?: string;
  /** For rename: the new name (either name is a fair reason). */
  newKey?: string;
  detail: string;
}

export interface MutatedFrame {
  original: unknown;
  frame: string;
  mutation: Mutation;
}

/** Tokens spliced into the JSON text verbatim (numbers JSON.stringify cannot write, deep nesting). */
const RAW_PREFIX = "\u0000raw:";

const fieldNameArb = fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,19}$/);

/** A JSON value of a different kind than `value` (string for a number, array for a string, ...). */
function otherKind(value: unknown): fc.Arbitrary<Json> {
  const kind = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  const options: fc.Arbitrary<Json>[] = [];
  if (kind !== "string") options.push(fc.string({ maxLength: 8 }));
  if (kind !== "number") options.push(fc.integer({ min: -5, max: 5 }));
  if (kind !== "boolean") options.push(fc.boolean());
  if (kind !== "null") options.push(fc.constant(null));
  if (kind !== "array") options.push(fc.array(fc.integer(), { maxLength: 2 }));
  if (kind !== "object") options.push(fc.constant({ x: 1 }));
  return fc.oneof(...options);
}

/** Numbers a schema must not accept where it expects a small non-negative integer. */
const nastyNumberArb = fc.constantFrom(
  "-1",
  "-0.5",
  "1.5",
  "1e308",
  "-1e308",
  "1e400",
  "9007199254740993",
  "123456789012345678901234567890",
  "0.1e1",
  "-0",
  "1E-400",
  "4294967296",
);

const unicodeArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" }),
  fc.string({ minLength: 1, maxLength: 20, unit: "binary" }),
  fc.constantFrom("\u0000", "mn1\u200b", "ｍｎ１", "\ud800", "\udfff", "💥💥💥", "\u202emn1", "mn1\n", " mn1", "ǅ".repeat(70)),
);

/** Every object in `value` with the key path to it (root first). */
function objectsIn(value: unknown, at: string[] = []): { at: string[]; obj: JsonObject }[] {
  if (value === null || typeof value !== "object") return [];
  const found: { at: string[]; obj: JsonObject }[] = [];
  if (!Array.isArray(value)) found.push({ at, obj: value as JsonObject });
  for (const [key, child] of Object.entries(value as object)) found.push(...objectsIn(child, [...at, key]));
  return found;
}

function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function navigate(root: unknown, at: string[]): JsonObject {
  let current = root as Record<string, unknown>;
  for (const key of at) current = current[key] as Record<string, unknown>;
  return current as JsonObject;
}

/** Sets a key as an own, enumerable property (works for "__proto__" too). */
function setOwn(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
}

/** JSON text with RAW tokens spliced in verbatim. */
function serialize(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000raw:((?:[^"\\]|\\.)*)"/g, (_m, token: string) => JSON.parse(`"${token}"`) as string);
}

function raw(token: string): string {
  return `${RAW_PREFIX}${token}`;
}

/** One structural mutation of one object inside `message`. */
function structuralMutation(message: unknown, options: { maxNestDepth: number }): fc.Arbitrary<MutatedFrame> {
  const targets = objectsIn(message);
  return fc
    .record({
      target: fc.constantFrom(...targets),
      pick: fc.nat(),
      kind: fc.constantFrom<Mutation["kind"]>("drop", "add", "rename", "retype", "number", "unicode", "nest"),
      newKey: fc.oneof({ weight: 4, arbitrary: fieldNameArb }, fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty")),
      seed: fc.nat(),
    })
    .chain(({ target, pick, kind, newKey }) => {
      const keys = Object.keys(target.obj);
      const key = keys.length > 0 ? keys[pick % keys.length]! : undefined;
      const build = (mutate: (obj: JsonObject) => Mutation): MutatedFrame => {
        const copy = cloneJson(message);
        const mutation = mutate(navigate(copy, target.at));
        return { original: message, frame: serialize(copy), mutation };
      };
      if (kind === "add" || key === undefined) {
        return fc.jsonValue({ maxDepth: 2 }).map((value) =>
          build((obj) => {
            const name = Object.prototype.hasOwnProperty.call(obj, newKey) ? `${newKey}_x` : newKey;
            setOwn(obj, name, value);
            return { kind: "add", at: target.at, key: name, detail: `added ${name}` };
          }),
        );
      }
      switch (kind) {
        case "drop":
          return fc.constant(
            build((obj) => {
              delete obj[key];
              return { kind, at: target.at, key, detail: `dropped ${key}` };
            }),
          );
        case "rename":
          return fc.constant(
            build((obj) => {
              const name = Object.prototype.hasOwnProperty.call(obj, newKey) ? `${newKey}_x` : newKey;
              setOwn(obj, name, obj[key] ?? null);
              delete obj[key];
              return { kind, at: target.at, key, newKey: name, detail: `renamed ${key} to ${name}` };
            }),
          );
        case "retype":
          return otherKind(target.obj[key]).map((value) =>
            build((obj) => {
              obj[key] = value;
              return { kind, at: target.at, key, detail: `${key} = ${JSON.stringify(value)}` };
            }),
          );
        case "number":
          return nastyNumberArb.map((token) =>
            build((obj) => {
              obj[key] = raw(token);
              return { kind, at: target.at, key, detail: `${key} = ${token}` };
            }),
          );
        case "unicode":
          return unicodeArb.map((text) =>
            build((obj) => {
              obj[key] = text;
              return { kind, at: target.at, key, detail: `${key} = ${JSON.stringify(text)}` };
            }),
          );
        default:
          return fc.integer({ min: 2, max: options.maxNestDepth }).map((depth) =>
            build((obj) => {
              obj[key] = raw(`${"[".repeat(depth)}${"]".repeat(depth)}`);
              return { kind: "nest", at: target.at, key, detail: `${key} nested ${depth} deep` };
            }),
          );
      }
    });
}

/** Damage to the JSON text itself: cut, spliced, wrapped, prefixed. */
function textMutation(message: unknown): fc.Arbitrary<MutatedFrame> {
  const text = JSON.stringify(message);
  return fc
    .oneof(
      fc.nat({ max: text.length - 1 }).map((cut) => ({ frame: text.slice(0, cut), detail: `cut at ${cut}` })),
      fc.tuple(fc.nat({ max: text.length }), fc.string({ minLength: 1, maxLength: 4, unit: "binary" })).map(([at, junk]) => ({ frame: text.slice(0, at) + junk + text.slice(at), detail: `inserted ${JSON.stringify(junk)} at ${at}` })),
      fc.constantFrom(`[${text}]`, `\ufeff${text}`, `${text}${text}`, `${text} x`, `"${text}"`, ` \n\t${text}\n`, text.replace(/"type"/, '"type":"x","type"')).map((frame) => ({ frame, detail: "wrapped" })),
    )
    .map(({ frame, detail }) => ({ original: message, frame, mutation: { kind: "text" as const, at: [], detail } }));
}

/** Grows one string field so that the frame exceeds `limit` bytes. */
function oversizeMutation(message: unknown, limit: number): fc.Arbitrary<MutatedFrame> {
  const strings = objectsIn(message).flatMap(({ at, obj }) => Object.keys(obj).filter((k) => typeof obj[k] === "string").map((key) => ({ at, key })));
  if (strings.length === 0) return fc.constant({ original: message, frame: `${JSON.stringify(message)}${" ".repeat(limit)}`, mutation: { kind: "oversize", at: [], detail: "padded with spaces" } });
  return fc.tuple(fc.constantFrom(...strings), fc.constantFrom("a", "é", "💥"), fc.integer({ min: 1, max: 64 })).map(([{ at, key }, unit, extra]) => {
    const copy = cloneJson(message);
    const obj = navigate(copy, at);
    const bytes = Buffer.byteLength(unit);
    obj[key] = unit.repeat(Math.ceil((limit + extra) / bytes));
    return { original: message, frame: JSON.stringify(copy), mutation: { kind: "oversize", at, key, detail: `${key} grown past ${limit} bytes with ${JSON.stringify(unit)}` } };
  });
}

export interface MutationOptions {
  /** Deepest nesting a "nest" mutation writes (the decoder must refuse or survive it). */
  maxNestDepth?: number;
  /** Frame size limit the oversize mutation exceeds. */
  limit?: number;
}

/** Mutations of messages drawn from `valid`. */
export function mutatedFrameArb(valid: fc.Arbitrary<unknown>, options: MutationOptions = {}): fc.Arbitrary<MutatedFrame> {
  const maxNestDepth = options.maxNestDepth ?? 500;
  const limit = options.limit ?? MAX_FRAME_BYTES;
  return valid.chain((message) =>
    fc.oneof(
      { weight: 12, arbitrary: structuralMutation(message, { maxNestDepth }) },
      { weight: 4, arbitrary: textMutation(message) },
      { weight: 1, arbitrary: oversizeMutation(message, limit) },
    ),
  );
}

/** Frames that are not messages at all: random text (unicode, control characters), random JSON, binary noise. */
export const junkFrameArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200, unit: "binary" }),
  fc.string({ maxLength: 200, unit: "grapheme" }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("utf8")),
  fc.constantFrom("", "null", "{}", "[]", "true", "0", '""', '{"type":null}', '{"type":"hello"}', '{"type":"heartbeat"}', '{"type":{"$ne":1}}', '{"__proto__":{"type":"auth"}}'),
);
