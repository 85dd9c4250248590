/**
 * Shared settings of the fuzz suites: a fixed seed per suite, so every run
 * checks the same cases and a failure can be replayed exactly. fast-check
 * prints the seed and the shrunk counterexample when a property fails; set
 * `FUZZ_SEED` to replay or vary it and `FUZZ_RUNS` to scale the number of runs
 * (e.g. `FUZZ_RUNS=10` for a longer search).
 *
 * @module
 */

import type fc from "fast-check";

/** Run settings for one property: `runs` (scaled by `FUZZ_RUNS`) with `seed` unless `FUZZ_SEED` is set. */
export function fuzzParameters<T>(runs: number, seed: number): fc.Parameters<T> {
  const scale = Number(Deno.env.get("FUZZ_RUNS") ?? "1");
  const override = Deno.env.get("FUZZ_SEED");
  return {
    numRuns: Math.max(1, Math.round(runs * (Number.isFinite(scale) && scale > 0 ? scale : 1))),
    seed: override === undefined ? seed : Number(override),
    // Bounded shrinking: a failure is reported in seconds, not minutes.
    endOnFailure: false,
    interruptAfterTimeLimit: 30_000,
    markInterruptAsFailure: true,
  };
}
