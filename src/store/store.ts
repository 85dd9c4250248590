/**
 * The one small store that idempotency claims and rate-limit counters live
 * in. It knows a handful of named steps ({@linkcode STEPS}): each is a pure
 * function from the record at a key (or none) to the record that replaces it
 * and an answer. An adapter's only job is to run a step atomically on one key:
 * Deno KV with a versionstamp check (`deno_kv.ts`), a Durable Object's
 * single-threaded storage (`durable_object.ts`), a `Map` (`memory.ts`). The
 * rest of the code does not know which one runs.
 *
 * Deadlines are part of the records and every step compares them with the
 * `now` it is given: nothing relies on a platform deleting expired entries.
 *
 * @module
 */

import {
  type StepInput,
  type StepName,
  type StepOutput,
  STEPS,
  type StoredRecord,
} from "./steps.ts";

export type { StepInput, StepName, StepOutput, StoredRecord };
export { STEPS };

/** Runs the store's steps atomically, one key at a time. */
export interface Store {
  /**
   * Runs step `name` on the record at `key` as one atomic operation: no other
   * step on that key sees the record between the read and the write.
   */
  run<N extends StepName>(key: string, name: N, input: StepInput<N>): Promise<StepOutput<N>>;
  /** Releases the store's resources (a Deno KV handle); further runs fail. */
  close(): void | Promise<void>;
}

/** The store could not complete an operation (contention, an unreachable backend). */
export class StoreError extends Error {
  /** Creates the error; `cause` is the backend's error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
  }
}

/**
 * Applies step `name` to `current` and says what to store: the new record,
 * `null` to delete it, or `undefined` to leave it as it is.
 */
export function applyStep<N extends StepName>(
  name: N,
  current: StoredRecord | undefined,
  input: StepInput<N>,
): { next: StoredRecord | null | undefined; output: StepOutput<N> } {
  const step = STEPS[name] as (
    current: StoredRecord | undefined,
    input: StepInput<N>,
  ) => { next: StoredRecord | null | undefined; output: StepOutput<N> };
  if (typeof step !== "function") throw new StoreError(`The store has no step named ${name}.`);
  return step(current, input);
}

/**
 * When a record may be forgotten (epoch milliseconds): adapters use it only to
 * clean up (Deno KV `expireIn`, a Durable Object alarm), never for answers.
 */
export function forgetAfter(record: StoredRecord): number {
  switch (record.kind) {
    case "in_flight":
      // A dead claim whose data was written turns into a stored unknown_outcome when it is
      // next read: it must survive its lease by a whole TTL.
      return record.leaseUntil + record.ttlMs;
    case "completed":
      return record.expiresAt;
    case "counter":
      return record.windowStart + record.windowMs;
  }
}
