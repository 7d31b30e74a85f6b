import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { dropOutputOnClosedPipe } from "../../src/cli/main.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Runs the CLI as a process whose stdout reader is gone before it writes (`mnha … | head -0`). */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe("the CLI's output to a reader that has gone", () => {
  it("--help into a closed pipe ends with exit 0 and no stack trace", async () => {
    const { code, stderr } = await runWithClosedStdout(["--help"]);
    expect(stderr).not.toContain("EPIPE");
    expect(stderr).toBe("");
    expect(code).toBe(0);
  }, 30_000);

  it("a closed pipe is dropped; any other stream error is still thrown", () => {
    expect(() => dropOutputOnClosedPipe(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).not.toThrow();
    expect(() => dropOutputOnClosedPipe(Object.assign(new Error("write EIO"), { code: "EIO" }))).toThrow("EIO");
  });
});
