import { afterEach, describe, expect, it } from "vitest";
import { LineTool, RequestDeadline, type LineToolExit } from "../../src/util/line-tool.js";

const tools: LineTool[] = [];

afterEach(async () => {
  await Promise.all(tools.splice(0).map((tool) => tool.stop()));
});

/** A LineTool over `sh -c SCRIPT` (a constant script: no input is interpolated). */
function tool(script: string, onExit: (exit: LineToolExit) => "now" | "backoff", extra: { lines?: string[]; starts?: { n: number }; delays?: number[] } = {}): LineTool {
  const t = new LineTool({
    argv: () => ["/bin/sh", "-c", script],
    onStarted: () => {
      if (extra.starts) extra.starts.n += 1;
    },
    onLine: (line) => extra.lines?.push(line),
    onExit,
    onRestartScheduled: (delayMs) => extra.delays?.push(delayMs),
    backoff: { initialMs: 50, maxMs: 200 },
  });
  tools.push(t);
  return t;
}

/** Generous: a loaded CI machine can take seconds to start a few shells; the assertions are about order and delays, not speed. */
async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("LineTool", () => {
  it("hands over stdout lines, and the first stderr line and exit code when the run ends", async () => {
    const lines: string[] = [];
    const exits: LineToolExit[] = [];
    const t = tool("echo one; echo two; echo oops >&2; echo later >&2; exit 3", (exit) => {
      exits.push(exit);
      return "backoff";
    }, { lines });
    t.start();
    await until(() => exits.length === 1);
    expect(lines).toEqual(["one", "two"]);
    expect(exits[0]).toMatchObject({ code: 3, signal: null, spawnError: null, stderrLine: "oops" });
  });

  it("starts again after a growing backoff, or at once for a planned end", async () => {
    const starts = { n: 0 };
    const delays: number[] = [];
    const t = tool("exit 1", () => "backoff", { starts, delays });
    t.start();
    await until(() => starts.n >= 3);
    expect(delays.slice(0, 2)).toEqual([50, 100]);
    await t.stop();

    const planned = { n: 0 };
    const plannedDelays: number[] = [];
    const p = tool("exit 0", () => "now", { starts: planned, delays: plannedDelays });
    p.start();
    await until(() => planned.n >= 5);
    expect(plannedDelays).toEqual([]);
  });

  it("reports a tool that cannot be started as a spawn error", async () => {
    const exits: LineToolExit[] = [];
    const t = new LineTool({ argv: () => ["/nonexistent/tool"], onStarted: () => undefined, onLine: () => undefined, onExit: (exit) => (exits.push(exit), "backoff"), backoff: { initialMs: 1_000, maxMs: 1_000 } });
    tools.push(t);
    t.start();
    await until(() => exits.length === 1);
    expect((exits[0]?.spawnError as NodeJS.ErrnoException | null)?.code).toBe("ENOENT");
  });

  it("stop kills the run, waits for it, and nothing restarts afterwards", async () => {
    const starts = { n: 0 };
    let exits = 0;
    const t = tool("while :; do sleep 1; done", () => (exits++, "now"), { starts });
    t.start();
    expect(t.alive()).toBe(true);
    await t.stop();
    expect(t.alive()).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(starts.n).toBe(1);
    expect(exits).toBe(0);
  });
});

describe("RequestDeadline", () => {
  it("judges once at the deadline; re-arming or clearing voids the earlier judgment", async () => {
    const deadline = new RequestDeadline();
    const judged: string[] = [];
    deadline.arm(performance.now() + 30, () => judged.push("first"));
    deadline.arm(performance.now() + 60, () => judged.push("second"));
    // Until the second deadline fires (generous on a loaded machine): by then the first one's
    // time has passed too, so it had its chance to fire and must not have.
    for (const started = performance.now(); judged.length === 0 && performance.now() - started < 5_000; ) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(judged).toEqual(["second"]);
    deadline.arm(performance.now() + 20, () => judged.push("third"));
    deadline.clear();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(judged).toEqual(["second"]);
  });
});
