/**
 * The store's steps, as pure functions: the record at a key (or none) and an
 * input give the record that replaces it and an answer. Every adapter runs the
 * same functions, so Deno KV, Durable Objects and the in-memory store agree on
 * every rule; `now` comes in with the input, so expiry is decided here, from
 * deadlines kept in the records.
 *
 * Idempotency claims: `claim` takes a free key (or one whose claim expired
 * before its data was written), answers a stored outcome (`replay`), a
 * running one (`in_flight`) or another body (`mismatch`). The owner then
 * `renew`s its lease, marks each message whose end of data it is about to
 * write (`markWritten`), and ends with `complete` (store the outcome) or
 * `release` (forget the key, so a retry really retries). A claim whose lease
 * ran out after a message was marked becomes a stored `unknown_outcome`: it is
 * never sent again.
 *
 * Rate limits: `consume` counts messages in fixed windows aligned to the
 * epoch and refuses, counting nothing, what would go over the limit.
 *
 * @module
 */

/** A running claim of an idempotency key. */
export interface InFlightClaim {
  /** Which record this is. */
  kind: "in_flight";
  /** The random id of the request that holds the claim. */
  owner: string;
  /** SHA-256 (hex) of the request body. */
  bodyHash: string;
  /** The lease ends here (epoch ms) unless renewed. */
  leaseUntil: number;
  /** How long an outcome is kept once stored (`IDEMPOTENCY_TTL_S`), in ms. */
  ttlMs: number;
  /** Each message's `token` (for the results of an expired claim). */
  tokens: unknown[];
  /** Indexes of the messages whose end of data may have been written. */
  written: number[];
}

/** A stored outcome of an idempotency key. */
export interface CompletedClaim {
  /** Which record this is. */
  kind: "completed";
  /** SHA-256 (hex) of the request body. */
  bodyHash: string;
  /** The Result of each message, in order (one for `POST /send`). */
  results: unknown[];
  /** Kept until here (epoch ms). */
  expiresAt: number;
}

/** A rate-limit counter: messages counted in the current window. */
export interface WindowCounter {
  /** Which record this is. */
  kind: "counter";
  /** Start of the window (epoch ms, a multiple of `windowMs`). */
  windowStart: number;
  /** Length of the window, in ms. */
  windowMs: number;
  /** Messages counted in it. */
  count: number;
}

/** Anything the store holds. */
export type StoredRecord = InFlightClaim | CompletedClaim | WindowCounter;

/** Input of `claim`. */
export interface ClaimInput {
  /** A random id for the claiming request. */
  owner: string;
  /** SHA-256 (hex) of the request body. */
  bodyHash: string;
  /** Each message's token, in order. */
  tokens: unknown[];
  /** Lease length (2 × `SMTP_TIMEOUT_MS`), in ms. */
  leaseMs: number;
  /** How long an outcome is kept, in ms. */
  ttlMs: number;
  /** The current time, epoch ms. */
  now: number;
}

/** Answer of `claim`. */
export type ClaimOutput =
  | { kind: "claimed" }
  | { kind: "replay"; results: unknown[] }
  | { kind: "in_flight"; retryAfterMs: number }
  | { kind: "mismatch" };

/** Input of the steps of a claim's owner. */
export interface OwnerInput {
  /** The owner id given to `claim`. */
  owner: string;
  /** The current time, epoch ms. */
  now: number;
}

/** Input of `renew`. */
export interface RenewInput extends OwnerInput {
  /** New lease length from `now`, in ms. */
  leaseMs: number;
}

/** Input of `markWritten`. */
export interface MarkWrittenInput extends RenewInput {
  /** The message whose end of data is about to be written. */
  index: number;
}

/** Input of `complete`. */
export interface CompleteInput extends OwnerInput {
  /** The Result of each message, in order. */
  results: unknown[];
}

/** Answer of the owner's steps: whether the claim was still this owner's. */
export interface OwnerOutput {
  /** `false` when the claim expired and was settled or taken over. */
  held: boolean;
}

/** Input of `consume`. */
export interface ConsumeInput {
  /** Messages to count. */
  count: number;
  /** Most messages per window. */
  limit: number;
  /** Window length, in ms. */
  windowMs: number;
  /** The current time, epoch ms. */
  now: number;
}

/** Answer of `consume`. */
export interface ConsumeOutput {
  /** Whether the messages were counted (within the limit). */
  allowed: boolean;
  /** Messages left in this window after this request. */
  remaining: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

type Step<I, O> = (
  current: StoredRecord | undefined,
  input: I,
) => { next: StoredRecord | null | undefined; output: O };

/** The text of the Result of a message whose claim expired after its data was written. */
export const EXPIRED_AFTER_DATA_MESSAGE =
  "The request sending this message stopped after its data was written and before the " +
  "server's reply: it may have been delivered, so it is never sent again for this " +
  "Idempotency-Key.";

/** The text of the Result of a batch's message whose data was not written before the claim expired. */
export const EXPIRED_BEFORE_DATA_MESSAGE =
  "The request sending this batch stopped before this message's data was written: it was " +
  "not delivered. Send it again with a new Idempotency-Key.";

/**
 * The record as it stands at `now`: expired outcomes and counters are gone; a
 * claim whose lease ran out is gone when no data was written, else it becomes
 * the stored outcome (`unknown_outcome` for the marked messages).
 */
function settle(record: StoredRecord | undefined, now: number): StoredRecord | undefined {
  if (record === undefined) return undefined;
  switch (record.kind) {
    case "completed":
      return record.expiresAt > now ? record : undefined;
    case "counter":
      return record.windowStart + record.windowMs > now ? record : undefined;
    case "in_flight":
      if (record.leaseUntil > now) return record;
      if (record.written.length === 0) return undefined;
      return {
        kind: "completed",
        bodyHash: record.bodyHash,
        results: record.tokens.map((token, index) => expiredResult(token, record.written, index)),
        expiresAt: now + record.ttlMs,
      };
  }
}

function expiredResult(token: unknown, written: number[], index: number): unknown {
  const afterData = written.includes(index);
  return {
    status: "failed",
    token,
    accepted: [],
    rejected: [],
    error: afterData
      ? { type: "unknown_outcome", phase: "message", message: EXPIRED_AFTER_DATA_MESSAGE }
      : { type: "internal", message: EXPIRED_BEFORE_DATA_MESSAGE },
  };
}

/** `next` for a step that only reads: store what settling changed, else nothing. */
function settled(
  current: StoredRecord | undefined,
  record: StoredRecord | undefined,
): StoredRecord | null | undefined {
  if (record === current) return undefined;
  return record ?? null;
}

const claim: Step<ClaimInput, ClaimOutput> = (current, input) => {
  const record = settle(current, input.now);
  if (record === undefined || record.kind === "counter") {
    return {
      next: {
        kind: "in_flight",
        owner: input.owner,
        bodyHash: input.bodyHash,
        leaseUntil: input.now + input.leaseMs,
        ttlMs: input.ttlMs,
        tokens: input.tokens,
        written: [],
      },
      output: { kind: "claimed" },
    };
  }
  const next = settled(current, record);
  if (record.bodyHash !== input.bodyHash) return { next, output: { kind: "mismatch" } };
  if (record.kind === "completed") {
    return { next, output: { kind: "replay", results: record.results } };
  }
  return { next, output: { kind: "in_flight", retryAfterMs: record.leaseUntil - input.now } };
};

/**
 * The owner's claim, or `undefined` when it is no longer theirs. A claim past
 * its lease is still the owner's as long as nobody settled it: no other
 * request can have seen it free.
 */
function ownClaim(current: StoredRecord | undefined, owner: string): InFlightClaim | undefined {
  return current?.kind === "in_flight" && current.owner === owner ? current : undefined;
}

const renew: Step<RenewInput, OwnerOutput> = (current, input) => {
  const own = ownClaim(current, input.owner);
  if (own === undefined) return { next: undefined, output: { held: false } };
  return {
    next: { ...own, leaseUntil: Math.max(own.leaseUntil, input.now + input.leaseMs) },
    output: { held: true },
  };
};

const markWritten: Step<MarkWrittenInput, OwnerOutput> = (current, input) => {
  const own = ownClaim(current, input.owner);
  if (own === undefined) return { next: undefined, output: { held: false } };
  const written = own.written.includes(input.index) ? own.written : [...own.written, input.index];
  return {
    next: { ...own, written, leaseUntil: Math.max(own.leaseUntil, input.now + input.leaseMs) },
    output: { held: true },
  };
};

const complete: Step<CompleteInput, OwnerOutput> = (current, input) => {
  const own = ownClaim(current, input.owner);
  if (own === undefined) return { next: undefined, output: { held: false } };
  return {
    next: {
      kind: "completed",
      bodyHash: own.bodyHash,
      results: input.results,
      expiresAt: input.now + own.ttlMs,
    },
    output: { held: true },
  };
};

const release: Step<OwnerInput, OwnerOutput> = (current, input) => {
  const own = ownClaim(current, input.owner);
  if (own === undefined) return { next: undefined, output: { held: false } };
  return { next: null, output: { held: true } };
};

const consume: Step<ConsumeInput, ConsumeOutput> = (current, input) => {
  const windowStart = Math.floor(input.now / input.windowMs) * input.windowMs;
  const resetMs = windowStart + input.windowMs - input.now;
  const counted = current?.kind === "counter" && current.windowStart === windowStart &&
      current.windowMs === input.windowMs
    ? current.count
    : 0;
  if (counted + input.count > input.limit) {
    return {
      next: undefined,
      output: { allowed: false, remaining: Math.max(0, input.limit - counted), resetMs },
    };
  }
  const count = counted + input.count;
  return {
    next: { kind: "counter", windowStart, windowMs: input.windowMs, count },
    output: { allowed: true, remaining: input.limit - count, resetMs },
  };
};

/** The steps by name, with their input and output types. */
export const STEPS = { claim, renew, markWritten, complete, release, consume } as const;

/** The name of a step. */
export type StepName = keyof typeof STEPS;
/** The input of step `N`. */
export type StepInput<N extends StepName> = Parameters<(typeof STEPS)[N]>[1];
/** The answer of step `N`. */
export type StepOutput<N extends StepName> = ReturnType<(typeof STEPS)[N]>["output"];
