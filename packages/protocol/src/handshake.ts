import { PROTOCOL_VERSIONS } from "./messages.js";

/**
 * The handshake authenticates both sides with an HMAC over a transcript; the secret
 * itself never crosses the wire. The HMAC is computed by the caller (the protocol package
 * has no crypto of its own so that it stays free of Node imports).
 *
 *   dialer   → hello     {node, versions, nonce_d}
 *   listener → challenge {node, version, nonce_l, proof_l = HMAC(secret, transcript("listener"))}
 *   dialer   → auth      {proof_d = HMAC(secret, transcript("dialer"))}
 *   listener → welcome   {version}
 *
 * Each proof binds both nonces, both names, the chosen version and the side's role, so a
 * proof cannot be replayed on another connection or reflected back to its author.
 */
export function authTranscript(
  side: "dialer" | "listener",
  fields: { dialer: string; listener: string; dialerNonce: string; listenerNonce: string; version: number },
): string {
  return ["mnha-auth-v1", side, fields.dialer, fields.listener, fields.dialerNonce, fields.listenerNonce, String(fields.version)].join("\n");
}

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
