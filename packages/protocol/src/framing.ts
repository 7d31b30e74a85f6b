/**
 * Sealed frames: after the handshake, every frame on the peer link is one binary WebSocket
 * message sealed with AES-256-GCM under a per-direction session key (see handshake.ts for
 * the key schedule). This module holds the pure rules — layout, nonce, sequence checks — so
 * that both ends and the tests agree on them byte for byte; the cipher itself is supplied by
 * the agent (this package has no Node imports).
 *
 *   byte 0        format (1)
 *   bytes 1-8     sequence number, unsigned big-endian (0 for the first frame in a direction)
 *   bytes 9..n-16 ciphertext of the JSON text of one LinkMessage (UTF-8)
 *   last 16 bytes GCM tag
 *
 * The GCM nonce is 4 zero bytes followed by the same 8 sequence bytes; the 9 header bytes are
 * the additional authenticated data. Keys are fresh for every connection and separate for
 * each direction, so a (key, nonce) pair is never used twice.
 */

export const SEALED_FRAME_FORMAT = 1;
export const SEALED_HEADER_BYTES = 9;
export const SEALED_TAG_BYTES = 16;
export const SEALED_NONCE_BYTES = 12;
/** What sealing adds to a frame. */
export const SEALED_OVERHEAD_BYTES = SEALED_HEADER_BYTES + SEALED_TAG_BYTES;
/** Sequence numbers stay exact in a JS number; a link would need ~285 000 years at 1 000 frames/s to reach this. */
export const MAX_SEALED_SEQ = Number.MAX_SAFE_INTEGER;

/** Why a sealed frame was refused. Each closes the link. */
export type FrameFault =
  /** Shorter than a header and a tag, or of an unknown format. */
  | "truncated"
  /** The tag does not verify: injected, modified or cut by somebody without the session key. */
  | "forged"
  /** Authentic, but its sequence number was already received. */
  | "replayed"
  /** Authentic, but frames before it are missing (reordered or dropped). */
  | "reordered";

/** The refuse code sent to the peer, and shown in the event, for each fault. */
export const FRAME_FAULT_CODES = {
  truncated: "truncated-frame",
  forged: "forged-frame",
  replayed: "replayed-frame",
  reordered: "reordered-frame",
} as const satisfies Record<FrameFault, string>;

/** The 9-byte header (also the GCM additional data) for sequence number `seq`. */
export function sealedHeader(seq: number): Uint8Array {
  checkSeq(seq);
  const header = new Uint8Array(SEALED_HEADER_BYTES);
  header[0] = SEALED_FRAME_FORMAT;
  writeSeq(header, 1, seq);
  return header;
}

/** The 12-byte GCM nonce for sequence number `seq`: 4 zero bytes, then the sequence number. */
export function sealedNonce(seq: number): Uint8Array {
  checkSeq(seq);
  const nonce = new Uint8Array(SEALED_NONCE_BYTES);
  writeSeq(nonce, 4, seq);
  return nonce;
}

export type SealedFrameParts =
  | { ok: true; seq: number; header: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array }
  | { ok: false; fault: "truncated"; reason: string };

/** Splits a received frame into its parts; nothing is trusted until the tag verifies. */
export function splitSealedFrame(frame: Uint8Array): SealedFrameParts {
  if (frame.length < SEALED_OVERHEAD_BYTES) {
    return { ok: false, fault: "truncated", reason: `a sealed frame of ${frame.length} bytes is shorter than its ${SEALED_OVERHEAD_BYTES}-byte header and tag` };
  }
  if (frame[0] !== SEALED_FRAME_FORMAT) {
    return { ok: false, fault: "truncated", reason: `unknown sealed frame format ${frame[0]}` };
  }
  const high = readUint32(frame, 1);
  const low = readUint32(frame, 5);
  // Above 2^53 the number would not be exact; such a frame cannot be authentic (we never send one).
  const seq = high >= 0x200000 ? -1 : high * 0x1_0000_0000 + low;
  return {
    ok: true,
    seq,
    header: frame.subarray(0, SEALED_HEADER_BYTES),
    ciphertext: frame.subarray(SEALED_HEADER_BYTES, frame.length - SEALED_TAG_BYTES),
    tag: frame.subarray(frame.length - SEALED_TAG_BYTES),
  };
}

/**
 * Where an authentic frame's sequence number stands against the one expected next. Frames
 * are accepted strictly in order, so anything else closes the link.
 */
export function checkSequence(expected: number, received: number): { ok: true } | { ok: false; fault: "replayed" | "reordered"; reason: string } {
  if (received === expected) return { ok: true };
  if (received < expected) return { ok: false, fault: "replayed", reason: `frame ${received} was already received (expected ${expected}): replayed` };
  return { ok: false, fault: "reordered", reason: `frame ${received} arrived before frame ${expected}: reordered or dropped` };
}

function checkSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEALED_SEQ) throw new RangeError(`sealed frame sequence number out of range: ${seq}`);
}

function writeSeq(into: Uint8Array, offset: number, seq: number): void {
  const high = Math.floor(seq / 0x1_0000_0000);
  const low = seq % 0x1_0000_0000;
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}

function readUint32(from: Uint8Array, offset: number): number {
  return new DataView(from.buffer, from.byteOffset, from.byteLength).getUint32(offset);
}
