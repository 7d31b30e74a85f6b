import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// The mechanism as collect-log uses it: a staging directory and a half-written file beside the
// final one, in a child that is interrupted the way an operator interrupts it.
let base = "";

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "mnha-temp-files-test-"));
});

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});

/** What the child left in its $TMPDIR (tsx keeps its compile cache there too). */
const left = (): string[] => readdirSync(base).filter((name) => !name.startsWith("tsx-")).sort();

function child(): ReturnType<typeof spawn> {
  const module = resolve(__dirname, "../../src/util/temp-files.ts");
  const partial = join(base, ".bundle.tar.gz.partial");
  const script = [
    `import { writeFileSync } from "node:fs";`,
    `import { makeTempDir, removeOnExit } from ${JSON.stringify(module)};`,
    `const staging = makeTempDir("mnha-collect-", "stage the bundle's files");`,
    `writeFileSync(${JSON.stringify(partial)}, "half an archive");`,
    `removeOnExit(${JSON.stringify(partial)});`,
    `process.stdout.write("ready");`,
    `setInterval(() => undefined, 1000);`,
  ].join("\n");
  const started = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, TMPDIR: base }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(started);
  return started;
}

describe("temporary files that must not outlive their command", () => {
  it("Ctrl-C during collect-log's tar takes the staging directory and the half-written archive with it, and still ends the process", async () => {
    const running = child();
    await new Promise<void>((ready, fail) => {
      running.stdout!.once("data", () => ready());
      running.once("exit", () => fail(new Error("the child exited before it was ready")));
    });
    expect(left()).toEqual([".bundle.tar.gz.partial", expect.stringMatching(/^mnha-collect-\d+-/)]);
    const exited = new Promise<NodeJS.Signals | null>((done) => running.once("exit", (_code, signal) => done(signal)));
    running.kill("SIGINT");
    expect(await exited).toBe("SIGINT");
    expect(left()).toEqual([]);
    expect(existsSync(join(base, ".bundle.tar.gz.partial"))).toBe(false);
  });
});
