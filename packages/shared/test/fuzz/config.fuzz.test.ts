/**
 * Property-based fuzzing of the config loader. Random values, mutations of the documented
 * example (docs/mnha.example.yaml) and damaged YAML text never crash `parseConfig` or
 * `loadConfig`: a config is either valid, or refused with an MnhaError whose every problem
 * names a path and what it expects. The secret never appears in any error.
 *
 * Replay: MNHA_FUZZ_SEED=<seed> MNHA_FUZZ_PATH=<path> pnpm vitest run --project unit
 * packages/shared/test/fuzz/config.fuzz.test.ts -t "<test name>" (see packages/agent/test/fuzz/fuzz-options.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, MIN_SECRET_BITS, MnhaError, loadConfig, parseConfig, redactedConfig, secretStrengthBits, type ConfigProblem } from "../../src/index.js";
// One replay switch for every fuzz file in the repository.
import { fuzzParameters } from "../../../agent/test/fuzz/fuzz-options.js";

const EXAMPLE_TEXT = readFileSync(new URL("../../../../docs/mnha.example.yaml", import.meta.url), "utf8");
const EXAMPLE = parse(EXAMPLE_TEXT) as Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), "mnha-config-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Secrets as operators make them: base64 from /dev/urandom, or a pass phrase. */
/** Secrets the config accepts: 32 random bytes' worth (base64 of random bytes, or a long passphrase). */
const secretArb = fc
  .oneof(
    fc.uint8Array({ minLength: 32, maxLength: 48 }).map((bytes) => Buffer.from(bytes).toString("base64")),
    fc.stringMatching(/^[a-z]{6,10}(-[a-z]{6,10}){6}$/),
  )
  .filter((secret) => secretStrengthBits(secret) >= MIN_SECRET_BITS);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// ---- the error contract --------------------------------------------------------------------------

/**
 * Problems reported at an object that holds the secret ("auth", or the whole file) print that
 * object, secret included: a known bug, pinned in "known bugs" below. Until it is fixed the
 * random properties check the secret everywhere except in such runs.
 */
function reportsAnObjectHoldingTheSecret(problems: readonly ConfigProblem[]): boolean {
  return problems.some((p) => (p.path === "auth" || p.path === "(top level)") && p.value !== null && typeof p.value === "object");
}

/** parseConfig/loadConfig either succeed or throw an MnhaError that says what and where. */
function expectClearError(error: unknown, secret: string | null, context: string): void {
  expect(error, `not an MnhaError: ${String(error)} (${context})`).toBeInstanceOf(MnhaError);
  const e = error as MnhaError;
  expect(e.message.trim().length).toBeGreaterThan(0);
  expect(e.hint?.trim().length ?? 0, `no hint for ${e.code}: ${e.message}`).toBeGreaterThan(0);
  let problems: readonly ConfigProblem[] = [];
  if (e instanceof ConfigError) {
    problems = e.problems;
    expect(e.code).toBe("CONFIG_INVALID");
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) {
      expect(typeof problem.path).toBe("string");
      // Not trimmed: an unknown key " " is reported as the path " " (odd to read, but it is the key).
      expect(problem.path.length, `a problem without a path: ${JSON.stringify(problem)}`).toBeGreaterThan(0);
      expect(typeof problem.expected).toBe("string");
      expect(problem.expected.trim().length, `a problem that does not say what is expected: ${JSON.stringify(problem)}`).toBeGreaterThan(0);
      expect(e.message).toContain(`  - ${problem.path}: `);
    }
  } else {
    expect(["CONFIG_NOT_FOUND", "CONFIG_UNREADABLE", "CONFIG_SYNTAX", "SECRET_UNREADABLE", "SECRET_INSECURE"]).toContain(e.code);
  }
  if (secret !== null && !reportsAnObjectHoldingTheSecret(problems)) {
    const everything = [e.message, e.hint ?? "", JSON.stringify(e.toJSON()), JSON.stringify(problems)].join("\n");
    expect(everything.includes(secret), `the secret appears in the error: ${e.message}`).toBe(false);
  }
}

function tryParse(raw: unknown, secret: string | null): "valid" | "invalid" {
  try {
    const config = parseConfig(raw, "fuzz.yaml");
    if (secret !== null) expect(JSON.stringify(redactedConfig(config)).includes(secret), "the secret in the redacted config").toBe(false);
    return "valid";
  } catch (error) {
    expectClearError(error, secret, JSON.stringify(raw)?.slice(0, 300) ?? String(raw));
    return "invalid";
  }
}

// ---- mutations of the documented example --------------------------------------------------------------

/** The example with an inline secret instead of the secret file. */
function exampleWithSecret(secret: string): Record<string, unknown> {
  const copy = structuredClone(EXAMPLE);
  copy["auth"] = { secret };
  return copy;
}

/** Every path to a value inside `value` (objects and arrays), root excluded. */
function pathsIn(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([key, child]) => [[...at, key], ...pathsIn(child, [...at, key])]);
}

function parentOf(root: unknown, path: (string | number)[]): Record<string | number, unknown> {
  let current = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) current = current[key] as Record<string | number, unknown>;
  return current;
}

const nastyValueArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e21, -1e21, 65536, 2 ** 53, "", " ", "0", "true", "10.0.0", "999.1.1.1", "::1", "/", "relative/path", "*/15 * * *", "é", "💥", "\u0000", [], {}, [null], { "": 1 }),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.string({ maxLength: 300, unit: "grapheme" }),
  fc.integer(),
  fc.double(),
);

const keyArb = fc.oneof(fc.stringMatching(/^[a-z][A-Za-z]{0,12}$/), fc.constantFrom("__proto__", "constructor", "secret", "Secret", "password", "token", "", " ", "node "));

type Mutation = { kind: "drop" | "set" | "add"; path: (string | number)[]; key?: string; value?: Json };

function mutationArb(root: unknown): fc.Arbitrary<Mutation> {
  const paths = pathsIn(root);
  return fc.oneof(
    fc.constantFrom(...paths).map((path): Mutation => ({ kind: "drop", path })),
    fc.tuple(fc.constantFrom(...paths), nastyValueArb).map(([path, value]): Mutation => ({ kind: "set", path, value })),
    fc.tuple(fc.constantFrom<(string | number)[]>([], ...paths), keyArb, nastyValueArb).map(([path, key, value]): Mutation => ({ kind: "add", path, key, value })),
  );
}

function applyMutation(root: Record<string, unknown>, m: Mutation): void {
  if (m.kind === "add") {
    const object = m.path.reduce<unknown>((current, key) => (current === null || typeof current !== "object" ? undefined : (current as Record<string | number, unknown>)[key]), root);
    if (object === null || typeof object !== "object" || Array.isArray(object)) return;
    Object.defineProperty(object, m.key!, { value: m.value, enumerable: true, configurable: true, writable: true });
    return;
  }
  const parent = parentOf(root, m.path);
  if (parent === null || typeof parent !== "object") return;
  const key = m.path[m.path.length - 1]!;
  if (m.kind === "drop") {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else parent[key] = m.value;
}

/** One to three mutations of the example (each drawn on the example as mutated so far). */
const mutatedExampleArb = fc.tuple(secretArb, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.nat()).map(([secret, picks, seed]) => {
  const config = exampleWithSecret(secret);
  const applied: Mutation[] = [];
  picks.forEach((pick, index) => {
    const [mutation] = fc.sample(mutationArb(config), { numRuns: 1, seed: seed + pick + index });
    applyMutation(config, mutation!);
    applied.push(mutation!);
  });
  return { secret, config, applied };
});

// ---- damaged YAML text ------------------------------------------------------------------------------------

const SECRET_FILE_LINE = /^( *)secretFile: \/etc\/mnha\/secret.*$/m;

/** The example's text pointing at a real secret file (mode 0600) in the temp dir. */
function exampleText(secretFile: string): string {
  return EXAMPLE_TEXT.replace(SECRET_FILE_LINE, `$1secretFile: ${secretFile}`);
}

const textDamageArb = fc.oneof(
  fc.constant({ name: "intact", apply: (t: string) => t }),
  fc.nat().map((n) => ({ name: `line ${n} deleted`, apply: (t: string) => withLines(t, (lines) => lines.splice(n % lines.length, 1)) })),
  fc.nat().map((n) => ({ name: `line ${n} doubled`, apply: (t: string) => withLines(t, (lines) => lines.splice(n % lines.length, 0, lines[n % lines.length]!)) })),
  fc.tuple(fc.nat(), fc.constantFrom(" ", "  ", "\t", "- ", "? ", ": ", "#", "&a ", "*a ", "!!binary ", "!!set ", "<<: *a", "---", "...", "%YAML 1.2", "'", '"', "{", "[", "|", ">", "@", "`")).map(([n, junk]) => ({
    name: `${JSON.stringify(junk)} at line ${n}`,
    apply: (t: string) => withLines(t, (lines) => (lines[n % lines.length] = junk + lines[n % lines.length]!)),
  })),
  fc.tuple(fc.nat(), fc.string({ maxLength: 20, unit: "binary" })).map(([n, junk]) => ({ name: `${JSON.stringify(junk)} inserted at ${n}`, apply: (t: string) => t.slice(0, n % t.length) + junk + t.slice(n % t.length) })),
  fc.nat().map((n) => ({ name: `cut at ${n}`, apply: (t: string) => t.slice(0, n % t.length) })),
  fc.constant({ name: "tabs for indentation", apply: (t: string) => t.replace(/^ {2}/gm, "\t") }),
  fc.constant({ name: "CRLF line ends", apply: (t: string) => t.replace(/\n/g, "\r\n") }),
  fc.constant({ name: "a BOM", apply: (t: string) => `\ufeff${t}` }),
  fc.constant({ name: "duplicate top-level key", apply: (t: string) => `${t}\nnode:\n  name: mn9\n` }),
  fc.constant({ name: "a second document", apply: (t: string) => `${t}\n---\nnode: {}\n` }),
);

function withLines(text: string, edit: (lines: string[]) => unknown): string {
  const lines = text.split("\n");
  edit(lines);
  return lines.join("\n");
}

let fileCounter = 0;
function writeTemp(name: string, text: string, mode = 0o600): string {
  const file = join(dir, `${name}-${fileCounter++}`);
  writeFileSync(file, text, { mode });
  return file;
}

/**
 * The yaml library's own errors for aliases (unresolved, or too many) escape loadConfig: a known
 * bug, pinned in "known bugs" below. The random properties accept exactly those until it is fixed.
 */
function isKnownAliasBug(error: unknown): boolean {
  return error instanceof ReferenceError && /alias/i.test(error.message);
}

function tryLoad(file: string, secret: string | null, context: string): "valid" | "invalid" {
  try {
    const loaded = loadConfig(file);
    if (secret !== null) expect(JSON.stringify(redactedConfig(loaded.config)).includes(secret)).toBe(false);
    return "valid";
  } catch (error) {
    if (isKnownAliasBug(error)) return "invalid";
    expectClearError(error, secret, context);
    return "invalid";
  }
}

// ---- properties ---------------------------------------------------------------------------------------------

describe("parseConfig on random values", () => {
  it("random JSON values: valid, or a ConfigError whose every problem has a path and an expectation", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.dictionary(fc.constantFrom("node", "peers", "vip", "gateway", "auth", "timings", "services", "x"), fc.jsonValue({ maxDepth: 3 }))), (raw) => {
        expect(tryParse(raw, null)).toBe("invalid");
      }),
      fuzzParameters(1_500),
    );
  });
});

describe("parseConfig on mutations of the documented example", () => {
  it("the example with an inline secret is valid (the starting point is right)", () => {
    fc.assert(
      fc.property(secretArb, (secret) => {
        expect(tryParse(exampleWithSecret(secret), secret)).toBe("valid");
      }),
      fuzzParameters(50),
    );
  });

  it("dropped, retyped, nasty and unknown fields: never a crash, every problem names a path and an expectation, never the secret", () => {
    let invalid = 0;
    fc.assert(
      fc.property(mutatedExampleArb, ({ secret, config }) => {
        if (tryParse(config, secret) === "invalid") invalid++;
      }),
      fuzzParameters(1_500),
    );
    // The mutations mostly break the config (else this property would prove little).
    expect(invalid).toBeGreaterThan(0);
  });

  it("a wrong auth.secret is refused without echoing it", () => {
    fc.assert(
      fc.property(fc.oneof(
        // A marker makes each secret unlike any word of an error message ("alue" is in "value").
        fc.string({ maxLength: 12 }).map((s) => `~S~${s}`),
        fc.integer({ min: 1_000_000 }),
        fc.array(fc.string({ maxLength: 8 }).map((s) => `~S~${s}`), { minLength: 1, maxLength: 2 }),
      ), (badSecret) => {
        const config = { ...exampleWithSecret("x".repeat(20)), auth: { secret: badSecret } };
        let error: unknown = null;
        try {
          parseConfig(config);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ConfigError);
        const text = [(error as ConfigError).message, JSON.stringify((error as ConfigError).toJSON())].join("\n");
        for (const piece of [badSecret].flat()) if (String(piece).length >= 4) expect(text.includes(String(piece)), text).toBe(false);
      }),
      fuzzParameters(300),
    );
  });
});

describe("loadConfig on YAML files", () => {
  it("damaged YAML text of the example: loaded, or an MnhaError (syntax or invalid) with a hint; never the secret", () => {
    fc.assert(
      fc.property(secretArb, textDamageArb, (secret, damage) => {
        const secretFile = writeTemp("secret", `${secret}\n`);
        const text = damage.apply(exampleText(secretFile));
        tryLoad(writeTemp("config.yaml", text), secret, damage.name);
      }),
      fuzzParameters(600),
    );
  });

  it("mutated examples written as YAML: the same verdict as parseConfig, never the secret", () => {
    fc.assert(
      fc.property(mutatedExampleArb, ({ secret, config }) => {
        const file = writeTemp("mutated.yaml", JSON.stringify(config));
        // JSON is YAML: the loader must agree with the parser on the same document.
        expect(tryLoad(file, secret, "mutated")).toBe(tryParse(JSON.parse(JSON.stringify(config)), secret));
      }),
      fuzzParameters(400),
    );
  });

  it("random text: an MnhaError, never anything else", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200, unit: "binary" }), fc.string({ maxLength: 200, unit: "grapheme" }), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        expect(tryLoad(writeTemp("random.yaml", text), null, JSON.stringify(text))).toBe("invalid");
      }),
      fuzzParameters(800),
    );
  });
});

describe("known bugs (each test passes while the bug exists; remove .fails once fixed)", () => {
  /**
   * BUG (secret leak): parseConfig prints the value at each problem's path. A problem reported
   * at `auth` (both secret and secretFile given, or two unknown keys in auth) or at the top level
   * (two unknown top-level keys) prints the whole object, auth.secret included, in the message and,
   * untruncated, in error.fields.problems[].value. redactIfSecret (packages/shared/src/config.ts)
   * only redacts a string whose own path names a secret. Fix: redact recursively — any key
   * matching /secret|password|token/ anywhere inside the value.
   */
  it("a problem reported at auth or at the top level does not print auth.secret", () => {
    const secret = "leaked-secret-value-0123456789";
    const cases = [
      { ...exampleWithSecret(secret), auth: { secret, secretFile: "/etc/mnha/secret" } },
      { ...exampleWithSecret(secret), auth: { secret, colour: 1, flavour: 2 } },
      { auth: { secret }, ...exampleWithSecret(secret), colour: 1, flavour: 2 },
    ];
    for (const config of cases) {
      let error: unknown = null;
      try {
        parseConfig(config);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(JSON.stringify((error as ConfigError).toJSON())).not.toContain(secret);
    }
  });

  /**
   * BUG: `doc.toJS()` in loadConfig throws the yaml library's ReferenceError for an alias whose
   * anchor is missing (`<<: *defaults` without `&defaults`: "Unresolved alias") and for an alias
   * bomb ("Excessive alias count ..."); doc.errors is empty for both. The CLI then reports
   * "unexpected error ... this is a bug in mnha" (exit 1) instead of a config error (exit 2).
   * Fix: wrap doc.toJS() in loadConfig (packages/shared/src/config.ts) and throw
   * MnhaError("CONFIG_SYNTAX", `config file ... is not valid YAML: ${message}`) with the usual hint.
   */
  it("an unresolved YAML alias is refused with an MnhaError", () => {
    const text = exampleText("/nonexistent").replace(/^gateway:$/m, "gateway: *gatewayDefaults\nunused:");
    expectClearError(captureError(() => loadConfig(writeTemp("unresolved.yaml", text))), null, "unresolved alias");
  });

  it("a YAML alias bomb is refused with an MnhaError", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]", "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]", ""].join("\n");
    expectClearError(captureError(() => loadConfig(writeTemp("bomb.yaml", bomb))), null, "alias bomb");
  });
});

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}
