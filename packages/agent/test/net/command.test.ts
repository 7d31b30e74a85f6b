import { describe, expect, it } from "vitest";
import { runCommand as runChecked } from "../../src/checks/command.js";
import { describeFailure, runCommand } from "../../src/net/command.js";

/** net/command.ts runs commands through the agent's one runCommand (checks/command.ts). */
const node = process.execPath;

describe("runCommand (net)", () => {
  it("keeps stdout and stderr apart, with the exit code", async () => {
    const result = await runCommand([node, "-e", "process.stdout.write('data'); process.stderr.write('oops'); process.exit(3)"]);
    expect(result).toEqual({ code: 3, signal: null, stdout: "data", stderr: "oops", timedOut: false, error: null });
    expect(describeFailure(["x"], result)).toBe("x failed (exit code 3): oops");
  });

  it("keeps a large stdout whole (ip -j output), beyond the checks' 4 KiB", async () => {
    const result = await runCommand([node, "-e", "process.stdout.write('x'.repeat(100000))"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toHaveLength(100_000);
  });

  it("a command that cannot be run, and one that runs too long, are results, not exceptions", async () => {
    expect(await runCommand(["/nonexistent/mnha-no-such-binary"])).toMatchObject({ code: null, error: "/nonexistent/mnha-no-such-binary could not be run (ENOENT)" });
    const slow = await runCommand([node, "-e", "setTimeout(() => {}, 10000)"], { timeoutMs: 200 });
    expect(slow).toMatchObject({ code: null, timedOut: true, error: null });
  });

  it("the checks' runner reports both streams too, and the interleaved output", async () => {
    const result = await runChecked([node, "-e", "process.stdout.write('a'); process.stderr.write('b')"], { timeoutMs: 5_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: "a", stderr: "b" });
    expect(result.output.split("").sort().join("")).toBe("ab");
  });
});
