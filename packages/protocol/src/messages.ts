import { z } from "zod";

/**
 * Every frame on the peer link is one JSON object matching exactly one of these schemas.
 * Schemas are strict: unknown fields are refused, so two versions never silently
 * disagree about what a message means.
 */

/**
 * Version 2: the dialer proves first, the transcript binds the offered versions, and every
 * frame after the handshake is sealed (framing.ts). Version 1 (plain frames, listener proves
 * first) is no longer spoken: a peer still on it is refused with unsupported-version.
 */
export const PROTOCOL_VERSIONS = [2, 3, 4, 5] as const;
export const CURRENT_PROTOCOL_VERSION = 5;
/**
 * Version 3 frames are version 2's plus the ops-request action `db-reseed`. A version 2 agent
 * refuses the whole link on an action it does not know, so it is sent only on a link that
 * negotiated at least this version.
 */
export const DB_RESEED_MIN_PROTOCOL_VERSION = 3;
/**
 * Version 4 frames are version 3's plus the heartbeat field `duplicateCheck`. A version 2 or 3
 * agent refuses the whole link on a field it does not know, so it is sent only on a link that
 * negotiated at least this version.
 */
export const DUPLICATE_CHECK_MIN_PROTOCOL_VERSION = 4;
/**
 * Version 5 frames are version 4's plus the `pair-settings` message. An older agent refuses
 * the whole link on a message type it does not know, so it is sent only on a link that
 * negotiated at least this version.
 */
export const PAIR_SETTINGS_MIN_PROTOCOL_VERSION = 5;
/** Frames above this size are refused before parsing (ws `maxPayload`). */
export const MAX_FRAME_BYTES = 256 * 1024;

const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "node names are 1-63 letters, digits, '.', '_' or '-'");
const nonce = z.string().regex(/^[A-Za-z0-9+/=_-]{16,128}$/, "a nonce is 16-128 base64 characters");
const proof = z.string().regex(/^[0-9a-f]{64}$/, "a proof is a hex HMAC-SHA256");
/**
 * Epochs grow by one per change of holder; the bound keeps epoch + 1 exact and far from 2^53,
 * so a corrupt or hostile value can never wedge the link with numbers JSON cannot carry.
 */
export const MAX_EPOCH = 2 ** 48;
const epoch = z.number().int().nonnegative().max(MAX_EPOCH);
const durationMs = z.number().int().nonnegative().max(3_600_000);

// ---- handshake ---------------------------------------------------------------

/** Dialer → listener: who I am, which protocol versions I speak, my challenge. */
export const HelloSchema = z.strictObject({
  type: z.literal("hello"),
  node: nodeName,
  versions: z.array(z.number().int().positive()).min(1).max(16),
  nonce,
});

/** Listener → dialer: the chosen version and my challenge. No proof yet: the dialer proves first. */
export const ChallengeSchema = z.strictObject({
  type: z.literal("challenge"),
  node: nodeName,
  version: z.number().int().positive(),
  nonce,
});

/** Dialer → listener: proof that I know the secret too. */
export const AuthSchema = z.strictObject({
  type: z.literal("auth"),
  proof,
});

/** Listener → dialer: the dialer proved itself; here is my proof, and the link is open. */
export const WelcomeSchema = z.strictObject({
  type: z.literal("welcome"),
  version: z.number().int().positive(),
  proof,
});

/** Either side, before closing: why the link is refused. Never carries secrets. */
export const RefuseSchema = z.strictObject({
  type: z.literal("refuse"),
  code: z.enum([
    "bad-frame",
    "unsupported-version",
    "auth-failed",
    "unknown-peer",
    "duplicate-link",
    "not-ready",
    "protocol",
    // Sealed frames after the handshake (framing.ts FRAME_FAULT_CODES).
    "truncated-frame",
    "forged-frame",
    "replayed-frame",
    "reordered-frame",
  ]),
  message: z.string().max(500),
  versions: z.array(z.number().int().positive()).max(16).optional(),
});

// ---- HA state ----------------------------------------------------------------

export const RoleSchema = z.enum(["starting", "standby", "claiming", "holder", "handing-off", "receiving", "stopping"]);
export type Role = z.infer<typeof RoleSchema>;

export const KeepalivedStateSchema = z.enum(["unknown", "init", "backup", "master", "fault", "stopped"]);
export type KeepalivedState = z.infer<typeof KeepalivedStateSchema>;

export const ServiceHealthSchema = z.strictObject({
  name: z.string().max(64),
  healthy: z.boolean(),
  critical: z.boolean(),
});

/** A node's database as its heartbeat reports it (db enabled only). */
export const DbSummarySchema = z.strictObject({
  alive: z.boolean(),
  readOnly: z.boolean().nullable(),
  /** Why the replica is broken, else null. */
  broken: z.string().max(200).nullable(),
  seedIncomplete: z.boolean(),
  lagSeconds: z.number().int().nonnegative().max(100_000_000).nullable(),
  gtidBinlogPos: z.string().max(1000).nullable(),
  gtidCurrentPos: z.string().max(1000).nullable(),
  semiSyncMasterActive: z.boolean().nullable(),
  slaveIoRunning: z.string().max(16).nullable().optional(),
  slaveSqlRunning: z.string().max(16).nullable().optional(),
  lastIoError: z.string().max(200).nullable().optional(),
  lastSqlError: z.string().max(200).nullable().optional(),
});
export type DbSummaryMessage = z.infer<typeof DbSummarySchema>;

/** Longest `duplicateCheck.problem` a heartbeat carries; the sender shortens longer text to fit. */
export const DUPLICATE_CHECK_PROBLEM_MAX = 300;

/**
 * The sender's duplicate-address check (rule 7 of docs/protocol.md), so that `mnha status` on
 * either node shows a holder that is blind to a second holder. disabled: interval 0; idle: not
 * holding the VIP; running; failing: holds the VIP and cannot check.
 */
export const DuplicateCheckSummarySchema = z.strictObject({
  state: z.enum(["disabled", "idle", "running", "failing"]),
  /** What stops the check (failing) or weakens it (running); else null. */
  problem: z.string().max(DUPLICATE_CHECK_PROBLEM_MAX).nullable(),
});
export type DuplicateCheckSummary = z.infer<typeof DuplicateCheckSummarySchema>;

/** Sent every heartbeat interval in both directions. */
export const HeartbeatSchema = z.strictObject({
  type: z.literal("heartbeat"),
  seq: z.number().int().nonnegative(),
  node: nodeName,
  epoch,
  /** Who this node believes holds the VIP in `epoch` (null: nobody). */
  holder: nodeName.nullable(),
  role: RoleSchema,
  /** All critical services healthy, gateway reachable, not in maintenance. */
  eligible: z.boolean(),
  /** Why not eligible, for operators ("service mn failed", "gateway unreachable"). */
  reasons: z.array(z.string().max(200)).max(16),
  gatewayReachable: z.boolean(),
  /** If this node holds the VIP: how long its lease stays valid from the moment of sending. */
  leaseRemainingMs: durationMs,
  vipPresent: z.boolean(),
  keepalived: KeepalivedStateSchema,
  services: z.array(ServiceHealthSchema).max(32),
  /** The sender's MariaDB, when mnha manages it (docs/database.md). Optional: added in round 2 of the db work. */
  db: DbSummarySchema.optional(),
  /** The sender's duplicate-address check. Optional: protocol v4 on (DUPLICATE_CHECK_MIN_PROTOCOL_VERSION). */
  duplicateCheck: DuplicateCheckSummarySchema.optional(),
});

/** Holder → standby: "take the VIP at `epoch`" (planned switchover or the holder failing). */
export const HandoffOfferSchema = z.strictObject({
  type: z.literal("handoff-offer"),
  id: z.string().min(1).max(64),
  epoch,
  from: nodeName,
  to: nodeName,
  reason: z.string().max(200),
  /**
   * The holder's gtid_binlog_pos once its database is read-only (db enabled): the taker
   * answers `handoff-ready` only once it has applied it (bounded by db.catchUpTimeoutMs).
   */
  gtidBinlogPos: z.string().max(1000).optional(),
});

/** Standby → holder: my gate is open, release the VIP now. */
export const HandoffReadySchema = z.strictObject({
  type: z.literal("handoff-ready"),
  id: z.string().min(1).max(64),
  epoch,
});

/** Standby → holder: I will not take it, and why. */
export const HandoffRejectSchema = z.strictObject({
  type: z.literal("handoff-reject"),
  id: z.string().min(1).max(64),
  epoch,
  reason: z.string().max(200),
});

/** Holder → standby: my gate is closed; the VIP is yours at `epoch`. */
export const HandoffReleasedSchema = z.strictObject({
  type: z.literal("handoff-released"),
  id: z.string().min(1).max(64),
  epoch,
});

// ---- audit and monitoring data sync -----------------------------------------------------

const originId = z.string().regex(/^[A-Za-z0-9_.:-]{1,80}$/, "an origin id of 1-80 letters, digits, '.', '_', ':' or '-'");
const seq = z.number().int().positive();
/** Structured event fields: JSON nested at most 16 levels, so re-encoding can never overflow. */
export const MAX_FIELDS_DEPTH = 16;
const jsonFields = z.record(z.string().max(64), z.unknown()).superRefine((value, ctx) => {
  for (const [key, item] of Object.entries(value)) {
    if (1 + jsonDepth(item) > MAX_FIELDS_DEPTH) ctx.addIssue({ code: "custom", path: [key], message: `a value nested at most ${MAX_FIELDS_DEPTH} levels deep` });
  }
});

/** Depth of a JSON value, measured without recursion (a hostile value may be very deep). */
function jsonDepth(root: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (value === null || typeof value !== "object") continue;
    if (depth > max) max = depth;
    if (max > MAX_FIELDS_DEPTH) return max;
    for (const child of Object.values(value as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return max;
}

/** One audit event as replicated: identified by (origin, seq), immutable. */
export const SyncEventSchema = z.strictObject({
  origin: originId,
  seq,
  node: nodeName,
  wallMs: z.number().int().nonnegative(),
  monoMs: z.number().nonnegative(),
  type: z.string().min(1).max(64),
  service: z.string().max(64).nullable(),
  message: z.string().max(2_000),
  fields: jsonFields,
});

/** One monitoring sample: one value of one series at one instant. */
export const SyncSampleSchema = z.strictObject({
  origin: originId,
  seq,
  node: nodeName,
  wallMs: z.number().int().nonnegative(),
  series: z.string().min(1).max(128),
  value: z.number(),
});

/** Per origin, the highest sequence number held with no gap before it. */
export const WatermarksSchema = z.strictObject({
  events: z.record(originId, z.number().int().nonnegative()),
  samples: z.record(originId, z.number().int().nonnegative()),
});

/** On link up, each side says what it holds; the other sends what is missing (any origin). */
export const SyncHelloSchema = z.strictObject({
  type: z.literal("sync-hello"),
  have: WatermarksSchema,
});

/** A batch of records; the receiver stores them (idempotently) and acknowledges. */
export const SyncBatchSchema = z.strictObject({
  type: z.literal("sync-batch"),
  id: z.number().int().nonnegative(),
  events: z.array(SyncEventSchema).max(2_000),
  samples: z.array(SyncSampleSchema).max(10_000),
});

/** Stored durably up to these watermarks (the sender may send the next batch). */
export const SyncAckSchema = z.strictObject({
  type: z.literal("sync-ack"),
  id: z.number().int().nonnegative(),
  have: WatermarksSchema,
});

// ---- operator operations across the pair ----------------------------------------------

const operatorName = z.string().max(128);
const opsReason = z.string().max(500);

/** This node's operator modes, sent on link up and on each change (shown in the peer's status). */
export const OpsStateSchema = z.strictObject({
  type: z.literal("ops-state"),
  maintenance: z.strictObject({ since: z.number().int().nonnegative(), by: operatorName, reason: opsReason }).nullable(),
  stopped: z.strictObject({ since: z.number().int().nonnegative(), by: operatorName, keepUi: z.boolean() }).nullable(),
});

/**
 * Asks the peer to do an operator action on itself (mnha maintenance --node peer, collect-log;
 * db-reseed, protocol 3 on: the VIP holder asks the standby to copy its database, mnha restore).
 */
export const OpsRequestSchema = z.strictObject({
  type: z.literal("ops-request"),
  id: z.string().min(1).max(64),
  action: z.enum(["maintenance-on", "maintenance-off", "collect", "db-reseed"]),
  by: operatorName,
  reason: opsReason,
  sinceMs: z.number().int().nonnegative().optional(),
  /** With maintenance-on: also stop or start the MN services (UI and database kept), as `mnha restore` needs. */
  services: z.enum(["stop", "start"]).optional(),
});

/** The peer's answer; `files` (collect only) is a bounded, redacted diagnostic bundle. */
export const OpsReplySchema = z.strictObject({
  type: z.literal("ops-reply"),
  id: z.string().min(1).max(64),
  ok: z.boolean(),
  message: z.string().max(2_000),
  files: z.array(z.strictObject({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/), text: z.string().max(160 * 1024) })).max(32).optional(),
});

/**
 * Either side, on link up (protocol v5 on): the settings the two nodes must share (the VIP,
 * the gateway, the timings the election's safety argument rests on, Keepalived's router),
 * by name, as text. A map rather than fields, so that a later agent may add a setting without
 * a new protocol version: each side compares only the names both sent.
 */
export const PairSettingsSchema = z.strictObject({
  type: z.literal("pair-settings"),
  settings: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_.]{0,63}$/), z.string().max(200)).refine((s) => Object.keys(s).length <= 64, "at most 64 settings"),
});

export const HandshakeMessageSchema = z.discriminatedUnion("type", [HelloSchema, ChallengeSchema, AuthSchema, WelcomeSchema, RefuseSchema]);
export const LinkMessageSchema = z.discriminatedUnion("type", [
  HeartbeatSchema,
  HandoffOfferSchema,
  HandoffReadySchema,
  HandoffRejectSchema,
  HandoffReleasedSchema,
  SyncHelloSchema,
  SyncBatchSchema,
  SyncAckSchema,
  OpsStateSchema,
  OpsRequestSchema,
  OpsReplySchema,
  PairSettingsSchema,
  RefuseSchema,
]);

export type Hello = z.infer<typeof HelloSchema>;
export type Challenge = z.infer<typeof ChallengeSchema>;
export type Auth = z.infer<typeof AuthSchema>;
export type Welcome = z.infer<typeof WelcomeSchema>;
export type Refuse = z.infer<typeof RefuseSchema>;
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
export type HandoffOffer = z.infer<typeof HandoffOfferSchema>;
export type HandoffReady = z.infer<typeof HandoffReadySchema>;
export type HandoffReject = z.infer<typeof HandoffRejectSchema>;
export type HandoffReleased = z.infer<typeof HandoffReleasedSchema>;
export type PairSettings = z.infer<typeof PairSettingsSchema>;
export type HandshakeMessage = z.infer<typeof HandshakeMessageSchema>;
export type LinkMessage = z.infer<typeof LinkMessageSchema>;
export type PeerMessage = z.infer<typeof LinkMessageSchema>;
export type SyncEvent = z.infer<typeof SyncEventSchema>;
export type SyncSample = z.infer<typeof SyncSampleSchema>;
export type Watermarks = z.infer<typeof WatermarksSchema>;
export type SyncHello = z.infer<typeof SyncHelloSchema>;
export type SyncBatch = z.infer<typeof SyncBatchSchema>;
export type SyncAck = z.infer<typeof SyncAckSchema>;
export type OpsState = z.infer<typeof OpsStateSchema>;
export type OpsRequest = z.infer<typeof OpsRequestSchema>;
export type OpsReply = z.infer<typeof OpsReplySchema>;
