/**
 * Redaction for everything that leaves the node in a diagnostic bundle: the known secret
 * values themselves, and anything that looks like `password=...`, `"token": "..."`,
 * `IDENTIFIED BY '...'` or keepalived's `auth_pass ...`. Applied on the node that collects
 * a part and again by the CLI over the whole archive.
 */

export const REDACTED = "[redacted]";

const SECRET_KEY = /secret|password|passwd|token|auth_pass|api[_-]?key|private[_-]?key/i;

const PATTERNS: RegExp[] = [
  // key=value, key: value, "key": "value", --password=value (quotes kept out of the value)
  /((?:secret|password|passwd|pwd|token|auth_pass|api[_-]?key)["']?\s*[=:]\s*)("[^"\n]*"|'[^'\n]*'|[^\s,;}\]]+)/gi,
  // SQL: IDENTIFIED BY 'x', PASSWORD('x')
  /(IDENTIFIED\s+(?:BY|VIA\s+\S+\s+USING)\s+)('[^'\n]*'|"[^"\n]*")/gi,
  // keepalived: auth_pass VALUE
  /(\bauth_pass\s+)(\S+)/gi,
  // HTTP: Authorization: Bearer X / Basic X
  /(\bauthorization\s*[:=]\s*(?:bearer|basic)\s+)(\S+)/gi,
  // mysql -pSECRET (a short option glued to its value)
  /((?:^|\s)-p)(\S{3,})/g,
];

/** Every string value under a secret-looking key in a config-like object, however deep. */
export function secretValuesIn(value: unknown, depth = 0): string[] {
  if (value === null || typeof value !== "object" || depth > 32) return [];
  const found: string[] = [];
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(key) && typeof item === "string") found.push(item);
    else found.push(...secretValuesIn(item, depth + 1));
  }
  return found;
}

/** The text with every known secret value and every secret-looking assignment replaced. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(REDACTED);
  }
  for (const pattern of PATTERNS) {
    out = out.replace(pattern, (_match, head: string, value: string) => (value === REDACTED || value === `"${REDACTED}"` ? `${head}${value}` : `${head}${REDACTED}`));
  }
  return out;
}

/** A config-like object with every value under a secret-looking key replaced. */
export function redactObject(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > 32) return "[...]";
  if (Array.isArray(value)) return value.map((item) => redactObject(item, depth + 1));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, SECRET_KEY.test(key) && item !== undefined ? REDACTED : redactObject(item, depth + 1)]));
}
