/**
 * A guard against a test hanging forever when the code under test is broken.
 *
 * @module
 */

/** Guards against a hang only; never reached when the code works. */
const HANG_GUARD_MS = 10_000;

/** Options for {@linkcode guard}. */
export interface GuardOptions {
  /** How long `promise` may take before the test fails; 10 000 ms when left out. */
  ms?: number;
}

/**
 * Settles like `promise`, or rejects with "`what` hung" once `options.ms`
 * have passed. Not a timing assertion: only a hang turns into a failure.
 */
export function guard<T>(
  promise: Promise<T>,
  what: string,
  options: GuardOptions = {},
): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} hung`)), options.ms ?? HANG_GUARD_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}
