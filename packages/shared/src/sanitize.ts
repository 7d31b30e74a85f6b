/**
 * Strings that came from the peer or the network (event messages, service names, refusal
 * reasons, check output) are shown in operators' terminals. A terminal obeys control
 * characters: ESC[2J clears the screen, OSC 52 writes the clipboard, a bell rings, C1 CSI
 * (U+009B) acts like ESC[. So such strings lose every control character at ingest and again
 * when rendered; this is the one function both use.
 */
/* eslint-disable no-control-regex -- matching control characters is what this module is for */

/** ESC [ ... final byte (CSI), and the one-byte C1 form U+009B. */
const CSI = /(?:\x1b\[|\u009b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?/g;
/** OSC, DCS, SOS, PM, APC (ESC ] P X ^ _ or their C1 forms) up to BEL or ST, or the end. */
const CONTROL_STRING = /(?:\x1b[\]PX^_]|[\u0090\u0098\u009d\u009e\u009f])[\s\S]*?(?:\x07|\x1b\\|\u009c|$)/g;
/** Any other escape sequence: ESC, intermediate bytes, one final byte. */
const OTHER_ESCAPE = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
/**
 * Left-over C0 (newline and tab are handled apart), DEL, C1, and the Unicode controls that
 * reorder or hide text on screen (bidi embeddings/overrides/isolates, line/paragraph separators).
 */
const LONE_CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** Quick test: most strings have nothing to strip. */
const ANY_CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export interface SanitizeOptions {
  /** Keep newline and tab (multi-line messages); otherwise each becomes a space. Default true. */
  keepNewlines?: boolean;
}

/** The text without control characters or escape sequences (their parameters go too). */
export function stripControlChars(text: string, options: SanitizeOptions = {}): string {
  if (!ANY_CONTROL.test(text)) return text;
  let clean = text.replace(CONTROL_STRING, "").replace(CSI, "").replace(OTHER_ESCAPE, "").replace(LONE_CONTROLS, "");
  if (options.keepNewlines === false) clean = clean.replace(/[\n\t]/g, " ");
  return clean;
}

/**
 * A JSON-like value with every string in it (object keys included) stripped, however deep;
 * other values are kept as they are. Nesting is bounded by the caller's schema; a value past
 * `maxDepth` is replaced by null rather than walked.
 */
export function stripControlCharsDeep<T>(value: T, maxDepth = 32): T {
  return deep(value, maxDepth) as T;
}

function deep(value: unknown, depthLeft: number): unknown {
  if (typeof value === "string") return stripControlChars(value);
  if (value === null || typeof value !== "object") return value;
  if (depthLeft <= 0) return null;
  if (Array.isArray(value)) return value.map((item) => deep(item, depthLeft - 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) out[stripControlChars(key)] = deep(item, depthLeft - 1);
  return out;
}
