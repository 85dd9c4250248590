/**
 * Skipping a suite whose real peer is missing: a clear message on a
 * developer's machine, but a failure in CI (`CI` set, as `.ci/run` does), where
 * a silently skipped suite would hide exactly what CI is there to run.
 *
 * @module
 */

/**
 * Returns `reason` for `describe(…, { skip })`, or throws it when running in
 * CI. `undefined` (nothing missing) passes through.
 */
export function skipOutsideCi(reason: string | undefined): string | undefined {
  if (reason !== undefined && Deno.env.get("CI")) {
    throw new Error(`${reason} CI must run this suite, so it fails instead of skipping.`);
  }
  return reason;
}
