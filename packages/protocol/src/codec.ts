import type { z } from "zod";
import { HandshakeMessageSchema, LinkMessageSchema, MAX_FRAME_BYTES, type HandshakeMessage, type LinkMessage } from "./messages.js";

export type DecodeResult<T> = { ok: true; message: T } | { ok: false; code: "too-large" | "not-json" | "invalid"; reason: string };

/**
 * Decodes one frame. Never throws: every failure comes back as a reason that names
 * what was wrong, fit for a log line and for the `refuse` sent to the peer.
 */
function decodeWith<T>(schema: z.ZodType<T>, frame: string, maxBytes: number): DecodeResult<T> {
  // Each UTF-16 unit is 1-3 UTF-8 bytes (a surrogate pair, 2 units, is 4): the length bounds
  // the byte length from both sides, so bytes are counted only when it cannot tell.
  if (frame.length > maxBytes || (frame.length * 3 > maxBytes && utf8Length(frame) > maxBytes)) {
    return { ok: false, code: "too-large", reason: `frame of ${utf8Length(frame)} bytes exceeds the ${maxBytes}-byte limit` };
  }
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    return { ok: false, code: "not-json", reason: "frame is not valid JSON" };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : "message";
    return { ok: false, code: "invalid", reason: `${where}: ${issue?.message ?? "invalid"}` };
  }
  return { ok: true, message: parsed.data };
}

export function decodeHandshake(frame: string, maxBytes = MAX_FRAME_BYTES): DecodeResult<HandshakeMessage> {
  return decodeWith(HandshakeMessageSchema, frame, maxBytes);
}

export function decodeLinkMessage(frame: string, maxBytes = MAX_FRAME_BYTES): DecodeResult<LinkMessage> {
  return decodeWith(LinkMessageSchema, frame, maxBytes);
}

export function encode(message: HandshakeMessage | LinkMessage): string {
  return JSON.stringify(message);
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
