/**
 * The crypto behind sealed frames (@mnha/protocol framing.ts): session keys derived with
 * HKDF from the shared secret and the handshake transcript, and AES-256-GCM per frame with
 * the sequence number in the nonce. One `SessionCipher` per authenticated connection.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import {
  SESSION_KEY_BYTES,
  SESSION_KEY_INFO,
  SEALED_TAG_BYTES,
  checkSequence,
  handshakeTranscript,
  sealedHeader,
  sealedNonce,
  splitSealedFrame,
  type FrameFault,
  type TranscriptFields,
} from "@mnha/protocol";

export interface SessionKeys {
  dialerToListener: Buffer;
  listenerToDialer: Buffer;
}

/** Both directions' keys: HKDF-SHA256(secret, salt = transcript, info = direction). */
export function deriveSessionKeys(secret: string, fields: TranscriptFields): SessionKeys {
  const salt = Buffer.from(handshakeTranscript(fields), "utf8");
  const key = (info: string): Buffer => Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), salt, Buffer.from(info, "utf8"), SESSION_KEY_BYTES));
  return { dialerToListener: key(SESSION_KEY_INFO["dialer-to-listener"]), listenerToDialer: key(SESSION_KEY_INFO["listener-to-dialer"]) };
}

export type OpenResult = { ok: true; text: string; seq: number } | { ok: false; fault: FrameFault; reason: string };

export class SessionCipher {
  // ES private fields: the keys never show in JSON.stringify, a log line or a test diff.
  #sendSeq = 0;
  #receiveSeq = 0;
  readonly #sendKey: Buffer;
  readonly #receiveKey: Buffer;

  constructor(keys: SessionKeys, side: "dialer" | "listener") {
    this.#sendKey = side === "dialer" ? keys.dialerToListener : keys.listenerToDialer;
    this.#receiveKey = side === "dialer" ? keys.listenerToDialer : keys.dialerToListener;
  }

  /** Seals one frame's text under the next sequence number. */
  seal(text: string): Buffer {
    const seq = this.#sendSeq++;
    const header = sealedHeader(seq);
    const cipher = createCipheriv("aes-256-gcm", this.#sendKey, sealedNonce(seq), { authTagLength: SEALED_TAG_BYTES });
    cipher.setAAD(header);
    // One copy per frame (ten a second each way): the tag is read once final() has run.
    return Buffer.concat([header, cipher.update(text, "utf8"), cipher.final(), cipher.getAuthTag()]);
  }

  /**
   * Opens one received frame. The tag is checked before the sequence number is believed, so
   * a forged header is reported as forged, and a genuine frame out of place as replayed or
   * reordered. Any fault is final: the caller closes the link.
   */
  open(frame: Uint8Array): OpenResult {
    const parts = splitSealedFrame(frame);
    if (!parts.ok) return parts;
    if (parts.seq < 0) return { ok: false, fault: "forged", reason: "frame failed authentication (sequence number out of range)" };
    let text: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#receiveKey, sealedNonce(parts.seq), { authTagLength: SEALED_TAG_BYTES });
      decipher.setAAD(parts.header);
      decipher.setAuthTag(parts.tag);
      const head = decipher.update(parts.ciphertext);
      // final() verifies the tag; for GCM it returns nothing more, so usually nothing is copied.
      const tail = decipher.final();
      text = (tail.length === 0 ? head : Buffer.concat([head, tail])).toString("utf8");
    } catch {
      return { ok: false, fault: "forged", reason: `frame ${parts.seq} failed authentication: injected, modified or cut by someone without the session key` };
    }
    const order = checkSequence(this.#receiveSeq, parts.seq);
    if (!order.ok) return order;
    this.#receiveSeq++;
    return { ok: true, text, seq: parts.seq };
  }
}
