import { MAX_FRAME_BYTES, SyncEventSchema, SyncSampleSchema, encode, type SyncBatch, type SyncEvent, type SyncSample, type Watermarks } from "@mnha/protocol";
import { isLocalOnlyEventType } from "../store/schema.js";
import type { HeldSeqs, SeqRecord } from "./held-seqs.js";

/** Room left in a frame for the envelope when one record alone is above the batch budget. */
const FRAME_MARGIN_BYTES = 1024;

export interface BatchInput {
  id: number;
  /** What the store returned for `cursor`, oldest first. */
  read: { events: SyncEvent[]; samples: SyncSample[] };
  cursor: Watermarks;
  /** What the peer is known to hold already (those records are not sent again). */
  peerHolds: { events: HeldSeqs; samples: HeldSeqs };
  /** Encoded batch size limit (a single record above it still goes alone, up to the frame limit). */
  maxBytes: number;
}

export interface BuiltBatch {
  /** Null when every record read was held by the peer, invalid or unsendable. */
  batch: SyncBatch | null;
  /** Exact size of the encoded batch frame. */
  bytes: number;
  /** Where the next read starts: past everything consumed, before anything left for later. */
  cursor: Watermarks;
  /** Records that can never be sent (schema-invalid or above the frame limit); skipped. */
  unsendable: { kind: "event" | "sample"; origin: string; seq: number; reason: string }[];
}

type Kind = "events" | "samples";

/**
 * Turns one store read into one batch that fits the byte budget. Records are taken in the
 * store's order; the first one that does not fit ends the batch, and the cursor stays
 * before it. The cursor assumes the store's order is ascending by seq within each origin.
 */
export function buildBatch(input: BatchInput): BuiltBatch {
  const envelope = utf8Bytes(encode({ type: "sync-batch", id: input.id, events: [], samples: [] }));
  const cursor: Watermarks = { events: { ...input.cursor.events }, samples: { ...input.cursor.samples } };
  const unsendable: BuiltBatch["unsendable"] = [];
  const chosen: { events: SyncEvent[]; samples: SyncSample[] } = { events: [], samples: [] };
  let bytes = envelope;
  let full = false;

  const take = <R extends SeqRecord>(kind: Kind, records: readonly R[], out: R[], validate: (record: R) => string | null): void => {
    const consumedUpTo = new Map<string, number>();
    const leftFrom = new Map<string, number>();
    for (const record of records) {
      if (full) {
        leftFrom.set(record.origin, Math.min(leftFrom.get(record.origin) ?? Infinity, record.seq));
        continue;
      }
      const consume = (): void => {
        consumedUpTo.set(record.origin, Math.max(consumedUpTo.get(record.origin) ?? 0, record.seq));
      };
      if (input.peerHolds[kind].holds(record.origin, record.seq)) {
        consume();
        continue;
      }
      const problem = validate(record);
      if (problem !== null) {
        unsendable.push({ kind: kind === "events" ? "event" : "sample", origin: record.origin, seq: record.seq, reason: problem });
        consume();
        continue;
      }
      const size = utf8Bytes(JSON.stringify(record));
      const added = size + (out.length > 0 ? 1 : 0);
      const empty = chosen.events.length === 0 && chosen.samples.length === 0;
      if (bytes + added <= input.maxBytes || (empty && envelope + size <= MAX_FRAME_BYTES - FRAME_MARGIN_BYTES)) {
        out.push(record);
        bytes += added;
        consume();
        // A record above the budget travels alone.
        if (bytes > input.maxBytes) full = true;
        continue;
      }
      if (empty) {
        unsendable.push({ kind: kind === "events" ? "event" : "sample", origin: record.origin, seq: record.seq, reason: `${size} bytes encoded, above the ${MAX_FRAME_BYTES}-byte frame limit` });
        consume();
        continue;
      }
      full = true;
      leftFrom.set(record.origin, record.seq);
    }
    const origins = new Set([...consumedUpTo.keys(), ...leftFrom.keys()]);
    for (const origin of origins) {
      const before = cursor[kind][origin] ?? 0;
      const left = leftFrom.get(origin);
      const next = left !== undefined ? left - 1 : (consumedUpTo.get(origin) ?? before);
      if (next > before) cursor[kind][origin] = next;
    }
  };

  // The store never reads local-only events for the peer; should one come through, it stays here.
  take("events", input.read.events, chosen.events, (record) =>
    isLocalOnlyEventType(record.type) ? `event type ${record.type} is local-only, never replicated` : schemaProblem(SyncEventSchema.safeParse(record)),
  );
  take("samples", input.read.samples, chosen.samples, (record) => schemaProblem(SyncSampleSchema.safeParse(record)));

  const batch: SyncBatch | null =
    chosen.events.length + chosen.samples.length === 0 ? null : { type: "sync-batch", id: input.id, events: chosen.events, samples: chosen.samples };
  return { batch, bytes: batch === null ? 0 : bytes, cursor, unsendable };
}

function schemaProblem(result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }): string | null {
  if (result.success) return null;
  const issue = result.error?.issues[0];
  return issue ? `${issue.path.map(String).join(".") || "record"}: ${issue.message}` : "invalid record";
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}
