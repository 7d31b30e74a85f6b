/**
 * fast-check parameters for every fuzz file in the repository (protocol, shared and agent
 * tests import this one helper, so a failure is replayed the same way everywhere).
 *
 * - A run uses a fresh random seed; on failure fast-check prints `seed` and `path`.
 * - Replay:   MNHA_FUZZ_SEED=<seed> MNHA_FUZZ_PATH=<path> pnpm vitest run --project unit <file>
 * - Soak:     MNHA_FUZZ_RUNS=20 multiplies every property's number of runs.
 */
import type fc from "fast-check";

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${name}=${JSON.stringify(text)}: expected a number`);
  return value;
}

/** `numRuns` tuned per property so each file stays well under the unit test budget. */
export function fuzzParameters<T>(numRuns: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  const seed = envNumber("MNHA_FUZZ_SEED");
  const path = process.env["MNHA_FUZZ_PATH"];
  const scale = envNumber("MNHA_FUZZ_RUNS") ?? 1;
  return {
    numRuns: Math.max(1, Math.round(numRuns * scale)),
    ...(seed === undefined ? {} : { seed }),
    ...(path === undefined || path === "" ? {} : { path }),
    ...extra,
  };
}
