import { z } from "zod";
import { MAX_EPOCH } from "./messages.js";

/**
 * Messages between an agent and the witness (`mnha witness`), after the same handshake as the
 * peer link (the witness is the listener, named "witness") and sealed the same way. Strict
 * schemas: unknown fields are refused.
 */

/** The name the witness gives itself in the handshake. */
export const WITNESS_NAME = "witness";
/** Frames on the witness link are small: refused above this. */
export const MAX_WITNESS_FRAME_BYTES = 4 * 1024;

const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);
const epoch = z.number().int().nonnegative().max(MAX_EPOCH);
const requestId = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const durationMs = z.number().int().nonnegative().max(3_600_000);

/** Agent → witness: grant me (or renew my grant) at this epoch for this long. */
export const WitnessAcquireSchema = z.strictObject({ type: z.literal("witness-acquire"), id: requestId, epoch, leaseMs: durationMs });
/** Agent → witness: my grant is free (my gate is closed). */
export const WitnessReleaseSchema = z.strictObject({ type: z.literal("witness-release"), epoch });
/** Agent → witness: who holds the grant (status; grants nothing). */
export const WitnessQuerySchema = z.strictObject({ type: z.literal("witness-query"), id: requestId });
/** Witness → agent: the answer to an acquire or a query. */
export const WitnessReplySchema = z.strictObject({
  type: z.literal("witness-reply"),
  id: requestId,
  granted: z.boolean(),
  holder: nodeName.nullable(),
  holderEpoch: epoch,
  /** How long the holder's grant still runs, by the witness's clock. */
  remainingMs: durationMs,
  /** The length granted (0 when not granted). */
  leaseMs: durationMs,
});

export const WitnessMessageSchema = z.discriminatedUnion("type", [WitnessAcquireSchema, WitnessReleaseSchema, WitnessQuerySchema, WitnessReplySchema]);
export type WitnessMessage = z.infer<typeof WitnessMessageSchema>;
export type WitnessReply = z.infer<typeof WitnessReplySchema>;

export function decodeWitnessMessage(text: string): { ok: true; message: WitnessMessage } | { ok: false; reason: string } {
  if (text.length > MAX_WITNESS_FRAME_BYTES) return { ok: false, reason: `frame of ${text.length} characters exceeds ${MAX_WITNESS_FRAME_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "frame is not valid JSON" };
  }
  const parsed = WitnessMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `${issue && issue.path.length > 0 ? issue.path.join(".") : "message"}: ${issue?.message ?? "invalid"}` };
  }
  return { ok: true, message: parsed.data };
}
