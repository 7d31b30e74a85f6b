import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quoteArg, quoteCommand } from "../../src/provision/shell-quote.js";

/** What a real POSIX shell makes of the quoted command: the argv it would run. */
function parsedByShell(argv: string[]): string[] {
  const script = `for a in ${argv.map(quoteArg).join(" ")}; do printf '%s\\0' "$a"; done`;
  const out = execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("quoteCommand", () => {
  it("leaves plain words bare and quotes everything else", () => {
    expect(quoteCommand(["mnha", "preflight", "--json", "/opt/mnha/bin/x", "a=b,c:d@e"])).toBe("mnha preflight --json /opt/mnha/bin/x a=b,c:d@e");
    expect(quoteArg("")).toBe("''");
    expect(quoteArg("two words")).toBe("'two words'");
    expect(quoteArg("it's")).toBe("'it'\\''s'");
    expect(quoteArg("$(reboot)")).toBe("'$(reboot)'");
  });

  it("a shell reads back exactly the arguments, for hostile values", () => {
    const hostile = ["$(touch /tmp/pwned)", "`id`", "a;b", "x && y", "'", "\"", "\\", "\n", "*", "~root", "-rf /", "a\tb", "${HOME}", "!", "#c", "é中"];
    expect(parsedByShell(hostile)).toEqual(hostile);
  });

  it("round-trips arbitrary strings through /bin/sh (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary", minLength: 0, maxLength: 12 }).filter((s) => !s.includes("\0") && !/[\ud800-\udfff]/.test(s)), { minLength: 1, maxLength: 4 }), (args) => {
        expect(parsedByShell(args)).toEqual(args);
      }),
      { numRuns: 60 },
    );
  });

  it("refuses a NUL byte and an empty command", () => {
    expect(() => quoteArg("a\0b")).toThrow(/NUL/);
    expect(() => quoteCommand([])).toThrow(/empty/);
  });
});
