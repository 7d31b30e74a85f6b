/**
 * Steps the machine's wall clock, as NTP's makestep or an operator's `date -s` do, and puts
 * it back. The clock is shared by every namespace, so this is for the fault suite only (run
 * alone), never for the test suite, whose lab files run side by side.
 */
import { monoNow, run, sleep } from "./exec.js";

async function setWallClock(epochMs: number): Promise<void> {
  await run("date", ["-u", "-s", `@${(epochMs / 1000).toFixed(3)}`]);
}

/**
 * Moves the wall clock by `offsetMs` for `holdMs`, then back to the right time, counted on the
 * monotonic clock from before the step (off by the few milliseconds `date` takes to run).
 */
export async function stepWallClock(offsetMs: number, holdMs: number): Promise<void> {
  const wallBefore = Date.now();
  const monoBefore = monoNow();
  const rightNow = (): number => wallBefore + (monoNow() - monoBefore);
  await setWallClock(rightNow() + offsetMs);
  try {
    await sleep(holdMs);
  } finally {
    await setWallClock(rightNow());
  }
}
