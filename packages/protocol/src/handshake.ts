import { PROTOCOL_VERSIONS } from "./messages.js";

/**
 * The handshake authenticates both sides with HMACs over one transcript and derives the
 * session keys from it; the secret itself never crosses the wire. The HMAC and HKDF are
 * computed by the caller (the protocol package has no crypto of its own so that it stays
 * free of Node imports).
 *
 *   dialer   → hello     {node, versions, nonce_d}
 *   listener → challenge {node, version, nonce_l}                     (no proof: nothing to guess against)
 *   dialer   → auth      {proof_d = HMAC(secret, proofInput("dialer"))}
 *   listener → welcome   {version, proof_l = HMAC(secret, proofInput("listener"))}
 *
 * The dialer proves first, so a stranger who connects and says hello learns nothing it could
 * test secret guesses against; the listener proves only to a dialer that has already proved.
 * The transcript binds both names, both nonces, the versions the dialer offered and the one
 * chosen, so a relay that strips versions from the hello (a downgrade) makes both proofs fail.
 *
 * Session keys, one per direction, fresh for every connection:
 *   key = HKDF-SHA256(ikm = secret, salt = transcript, info = SESSION_KEY_INFO[direction], 32 bytes)
 */
export interface TranscriptFields {
  dialer: string;
  listener: string;
  /** The versions the dialer offered in its hello, in its order. */
  offered: readonly number[];
  /** The version the listener chose. */
  version: number;
  dialerNonce: string;
  listenerNonce: string;
}

export const TRANSCRIPT_LABEL = "mnha-link-v2";

/** The handshake transcript: the same text on both sides when nobody tampered with the hello or challenge. */
export function handshakeTranscript(fields: TranscriptFields): string {
  return [TRANSCRIPT_LABEL, fields.dialer, fields.listener, fields.offered.join(","), String(fields.version), fields.dialerNonce, fields.listenerNonce].join("\n");
}

/** What each side's proof is an HMAC of: bound to the side, so a proof cannot be reflected to its author. */
export function proofInput(side: "dialer" | "listener", fields: TranscriptFields): string {
  return `proof ${side}\n${handshakeTranscript(fields)}`;
}

/** HKDF `info` for each direction's key. */
export const SESSION_KEY_INFO = {
  "dialer-to-listener": "mnha-link-v2 key dialer->listener",
  "listener-to-dialer": "mnha-link-v2 key listener->dialer",
} as const;
export const SESSION_KEY_BYTES = 32;

/** The highest version both sides speak, or null. */
export function chooseVersion(offered: readonly number[], supported: readonly number[] = PROTOCOL_VERSIONS): number | null {
  const common = offered.filter((v) => supported.includes(v));
  return common.length === 0 ? null : Math.max(...common);
}

/** Constant-time comparison of two hex proofs (lengths are public). */
export function proofsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
