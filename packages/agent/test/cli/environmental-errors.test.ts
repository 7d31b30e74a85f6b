import { describe, expect, it } from "vitest";
import { environmentalError, reportError, type CliIo } from "../../src/cli/cli-io.js";
import { ExitCode } from "../../src/cli/exit-codes.js";

/** A Node.js system error as fs throws it. */
function systemError(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: refused, open '${path}'`), { code, path, syscall: "open" });
}

function report(error: unknown): { code: number; stderr: string } {
  let stderr = "";
  const io = { stdout: { write: () => true }, stderr: { write: (t: string) => ((stderr += t), true) }, env: {} } as unknown as CliIo;
  return { code: reportError(io, "mnha", error, false), stderr };
}

describe("errors from the machine, met where no adapter expected them", () => {
  it("a full file system is DISK_FULL with the place and df, not 'a bug in mnha'", () => {
    const result = report(systemError("ENOSPC", "/var/tmp/x"));
    expect(result.code).toBe(ExitCode.failed);
    expect(result.stderr).toBe("mnha: no space left on /var/tmp/x (ENOSPC): ENOSPC: refused, open '/var/tmp/x'\nhint: free space there (df -h /var/tmp/x), then run the command again\n");
    expect(environmentalError(systemError("EDQUOT", "/home/q"))).toMatchObject({ code: "DISK_FULL" });
  });

  it("a read-only file system and a refused permission get their own fix; permission exits 4", () => {
    expect(report(systemError("EROFS", "/etc/mnha/x")).stderr).toMatch(/^mnha: \/etc\/mnha\/x is on a read-only file system \(EROFS\).*\nhint: remount it read-write/);
    const denied = report(systemError("EACCES", "/etc/mnha/mnha.yaml"));
    expect(denied.code).toBe(ExitCode.permission);
    expect(denied.stderr).toMatch(/^mnha: not allowed to use \/etc\/mnha\/mnha\.yaml \(EACCES\).*\nhint: run mnha as root/);
  });

  it("anything else is still an unexpected error, reported as a bug", () => {
    expect(environmentalError(new Error("boom"))).toBeNull();
    expect(environmentalError(systemError("ECONNRESET", "x"))).toBeNull();
    const result = report(new TypeError("x is undefined"));
    expect(result.code).toBe(ExitCode.failed);
    expect(result.stderr).toMatch(/unexpected error: x is undefined\nhint: this is a bug in mnha/);
  });
});
