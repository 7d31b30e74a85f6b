/**
 * Property-based fuzzing of the CLI's argument handling: `main(argv, io)` with random argv
 * (commands, flags in mnha and zsha2 single-dash spellings, values, junk) never throws, always
 * returns a documented exit code (0-4), and says something whenever it fails: a usage error
 * prints a message on stderr (or a JSON error on stdout under --json), never "unexpected
 * error" and never a stack trace.
 *
 * Nothing real is touched: every run passes --socket pointing at a temp path where nothing
 * listens, --config only ever names temp files, the daemon module is a fake, stdin is no TTY.
 *
 * Replay: see fuzz-options.ts (MNHA_FUZZ_SEED, MNHA_FUZZ_PATH, MNHA_FUZZ_RUNS).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../../src/cli/main.js";
import { fuzzParameters } from "./fuzz-options.js";

const dir = mkdtempSync(join(tmpdir(), "mnha-cli-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = "correct-horse-battery-staple-42";
/** Nothing listens here: every command that needs the agent finds it unreachable. */
const SOCKET = join(dir, "nobody-listens.sock");
const VALID_CONFIG = join(dir, "valid.yaml");
const INVALID_CONFIG = join(dir, "invalid.yaml");
const BROKEN_YAML = join(dir, "broken.yaml");
const MISSING_CONFIG = join(dir, "missing.yaml");
writeFileSync(
  VALID_CONFIG,
  [
    "node: { name: mn1, address: 10.0.0.11 }",
    "peers: [{ name: mn2, address: 10.0.0.12 }]",
    "vip: { address: 10.0.0.100, interface: eth0 }",
    "gateway: { address: 10.0.0.1 }",
    `auth: { secret: ${SECRET} }`,
    `controlSocket: ${SOCKET}`,
    "",
  ].join("\n"),
  { mode: 0o600 },
);
writeFileSync(INVALID_CONFIG, "node: { name: 'bad name!', address: 300.1.1.1 }\nauth: { secret: short }\n", { mode: 0o600 });
writeFileSync(BROKEN_YAML, "node: {\n  name: [mn1\n", { mode: 0o600 });

const EXIT_CODES = [0, 1, 2, 3, 4];

const COMMANDS = ["status", "show-config", "demote", "events", "failovers", "metrics", "version", "agent", "help", "install-ha", "start-node", "stop-node", "upgrade-ha", "upgrade-mn", "collect-log"];
const FLAGS = ["--json", "-json", "--yes", "-yes", "--help", "-help", "-h", "--version", "-version", "-V", "--", "-", "--jsno", "-j", "-yes=1", "--json=true", "--keepui", "-stopvip", "---json", "--no-json"];
const VALUE_FLAGS = ["--limit", "-limit", "--timeout", "-timeout", "--type", "-type", "--since", "-since", "--until", "-until", "--node", "-node", "--service", "-service", "--series", "-series"];
const CONFIGS = [VALID_CONFIG, INVALID_CONFIG, BROKEN_YAML, MISSING_CONFIG, dir];

const valueArb = fc.oneof(
  fc.constantFrom("0", "1", "5", "-1", "1.5", "1e3", "50000", "99999999999999999999", "", " ", "2h", "30m", "3d", "2026-11-25 03:12", "yesterday", "mn1", "role-changed", "election", "💥", "\u0000"),
  fc.nat().map(String),
  fc.string({ maxLength: 12 }),
);

/** Anything that could redirect the CLI to a real socket or config is left out of the junk. */
const junkArb = fc.string({ maxLength: 16, unit: "grapheme" }).filter((s) => !/socket|config/i.test(s));

const tokensArb: fc.Arbitrary<string[]> = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...COMMANDS).map((c) => [c]) },
      { weight: 3, arbitrary: fc.constantFrom(...FLAGS).map((f) => [f]) },
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...VALUE_FLAGS), valueArb, fc.boolean()).map(([f, v, joined]) => (joined ? [`${f}=${v}`] : [f, v])) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom("--config", "-config"), fc.constantFrom(...CONFIGS), fc.boolean()).map(([f, v, joined]) => (joined ? [`${f}=${v}`] : [f, v])) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom("--socket", "-socket"), fc.boolean()).map(([f, joined]) => (joined ? [`${f}=${SOCKET}`] : [f, SOCKET])) },
      { weight: 2, arbitrary: junkArb.map((j) => [j]) },
    ),
    { maxLength: 7 },
  )
  .map((groups) => groups.flat());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], programPath: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    stdin: Object.assign(new PassThrough(), { isTTY: false }),
    env: { MNHA_CONFIG: VALID_CONFIG },
    // `mnha agent` must not start a daemon here: a fake that says it ran and stopped.
    loadAgentModule: async () => ({ runAgent: async () => 0 }),
  };
  // The socket first, as a global option: whatever the rest says, the CLI only ever dials SOCKET.
  const code = await main(["/usr/bin/node", programPath, "--socket", SOCKET, ...args], io);
  return { code, stdout, stderr };
}

function jsonError(stdout: string): { code?: unknown; message?: unknown } | null {
  try {
    const parsed = JSON.parse(stdout) as { error?: { code?: unknown; message?: unknown } };
    return parsed && typeof parsed === "object" && parsed.error ? parsed.error : null;
  } catch {
    return null;
  }
}

/** The contract of one run. */
function checkRun(args: string[], result: Run): void {
  const context = `argv ${JSON.stringify(args)} -> exit ${result.code}\nstdout: ${result.stdout.slice(0, 300)}\nstderr: ${result.stderr.slice(0, 300)}`;
  expect(EXIT_CODES, context).toContain(result.code);
  expect(result.stderr, context).not.toMatch(/unexpected error|this is a bug in mnha/);
  expect(result.stderr + result.stdout, context).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
  expect(result.stderr + result.stdout, context).not.toContain(SECRET);
  if (result.code !== 0) {
    // A failure always says something: on stderr, or as a JSON error on stdout (--json).
    const said = result.stderr.trim().length > 0 || jsonError(result.stdout) !== null;
    expect(said, `a silent failure: ${context}`).toBe(true);
  }
  if (result.code === 2 && jsonError(result.stdout) === null) expect(result.stderr.trim().length, `a usage error without a message: ${context}`).toBeGreaterThan(0);
  if (result.code === 3) expect(result.stderr + result.stdout, context).toContain(SOCKET);
}

describe("mnha CLI on random argv", () => {
  it("never throws, exits 0-4, and a failure always prints a message (mnha and zsha2 spellings)", async () => {
    await fc.assert(
      fc.asyncProperty(tokensArb, fc.constantFrom("/usr/bin/mnha", "/usr/local/bin/zsha2"), async (args, programPath) => {
        let result: Run | undefined;
        try {
          result = await run(args, programPath);
        } catch (error) {
          throw new Error(`main() threw on ${JSON.stringify(args)}: ${error instanceof Error ? error.stack : String(error)}`);
        }
        checkRun(args, result);
      }),
      fuzzParameters(1_000),
    );
  });

  it("each command with random flags and values: the same contract", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...COMMANDS), tokensArb, async (command, rest) => {
        const args = [command, ...rest];
        checkRun(args, await run(args, "/usr/bin/mnha"));
      }),
      fuzzParameters(1_000),
    );
  });

  it("a bad value for a numeric flag is a usage error (exit 2) that names the flag", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<[string, string]>(["events", "--limit"], ["events", "-limit"], ["failovers", "--limit"], ["demote", "--timeout"], ["demote", "-timeout"]),
        fc.oneof(fc.constantFrom("0", "-1", "1.5", "1e3", "abc", "", " 5", "5 ", "99999999999999999999", "0x10", "٣"), fc.string({ maxLength: 6 }).filter((s) => !/^\d+$/.test(s))),
        fc.boolean(),
        async ([command, flag], value, joined) => {
          const args = joined ? [command, `${flag}=${value}`, "--yes"] : [command, flag, value, "--yes"];
          const result = await run(args, "/usr/bin/mnha");
          checkRun(args, result);
          expect(result.code, JSON.stringify(args)).toBe(2);
          expect(result.stderr).toContain(flag.replace(/^-+/, "--"));
        },
      ),
      fuzzParameters(150),
    );
  });

  it("an unknown command or flag is a usage error (exit 2) that says so", async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[a-z][a-z-]{2,12}$/).filter((w) => !COMMANDS.includes(w)), fc.boolean(), async (word, asFlag) => {
        const args = asFlag ? ["status", `--${word}`] : [word];
        const result = await run(args, "/usr/bin/mnha");
        checkRun(args, result);
        expect(result.code, JSON.stringify(args)).toBe(2);
        expect(result.stderr).toMatch(/unknown (command|option)/);
      }),
      fuzzParameters(150),
    );
  });
});
