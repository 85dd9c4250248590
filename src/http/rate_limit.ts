/**
 * Rate limits (`RATE_LIMIT`, contract section 2): messages per caller per
 * fixed window aligned to the Unix epoch, counted in the store before any
 * SMTP work. A batch counts each message; a request over the limit counts
 * nothing and is answered 429 `rate_limited` with `Retry-After` and the
 * `RateLimit-Policy` / `RateLimit` fields of
 * draft-ietf-httpapi-ratelimit-headers-11 (Structured Field lists: a quoted
 * policy name with `q` quota and `w` window in seconds; `r` remaining and
 * `t` seconds until the window resets). Each message is one quota unit.
 *
 * @module
 */

import type { Store } from "../store/store.ts";
import type { RateLimit } from "./config_values.ts";

/** The name of the one policy in `RateLimit-Policy` / `RateLimit`. */
export const RATE_LIMIT_POLICY = "messages";

/** The outcome of counting a request's messages. */
export interface RateDecision {
  /** Whether the messages were counted: the request may go on. */
  allowed: boolean;
  /** The `RateLimit-Policy` and `RateLimit` fields (plus `Retry-After` when refused). */
  headers: Record<string, string>;
  /** Seconds until the window resets (the refusal's `Retry-After`). */
  retryAfterS: number;
  /** Messages still allowed in this window. */
  remaining: number;
}

/** Options of {@linkcode consumeRate}. */
export interface ConsumeRateOptions {
  /** The limit that applies to this caller. */
  limit: RateLimit;
  /** Messages the request would send. */
  count: number;
  /** The current time (epoch ms). Default `Date.now()`. */
  now?: number;
}

/**
 * Counts `options.count` messages for `subject` when they fit in the current
 * window, atomically in `store`; refuses (counting nothing) when they do not.
 *
 * @example
 * ```ts
 * const decision = await consumeRate(store, "address:203.0.113.7", {
 *   limit: { limit: 60, windowMs: 3_600_000 },
 *   count: 1,
 * });
 * ```
 */
export async function consumeRate(
  store: Store,
  subject: string,
  options: ConsumeRateOptions,
): Promise<RateDecision> {
  const { limit, windowMs } = options.limit;
  const output = await store.run(`rate:${subject}`, "consume", {
    count: options.count,
    limit,
    windowMs,
    now: options.now ?? Date.now(),
  });
  // A partial second still has to pass: round up, and never say 0 while refusing.
  const retryAfterS = Math.max(1, Math.ceil(output.resetMs / 1000));
  const headers = rateLimitHeaders(options.limit, output.remaining, retryAfterS);
  if (!output.allowed) headers["Retry-After"] = String(retryAfterS);
  return { allowed: output.allowed, headers, retryAfterS, remaining: output.remaining };
}

/**
 * The `RateLimit-Policy` and `RateLimit` fields for `limit` with `remaining`
 * messages left and `resetS` seconds to the window's end, e.g.
 * `"messages";q=60;w=3600` and `"messages";r=59;t=1800`.
 */
export function rateLimitHeaders(
  limit: RateLimit,
  remaining: number,
  resetS: number,
): Record<string, string> {
  return {
    "RateLimit-Policy": `"${RATE_LIMIT_POLICY}";q=${limit.limit};w=${
      Math.round(limit.windowMs / 1000)
    }`,
    "RateLimit": `"${RATE_LIMIT_POLICY}";r=${remaining};t=${resetS}`,
  };
}

/** The message of a 429: how many messages the window allows and when it resets. */
export function rateLimitedMessage(limit: RateLimit, count: number, retryAfterS: number): string {
  const window = describeWindow(limit.windowMs);
  if (count > limit.limit) {
    return `This request has ${count} messages, more than the ${limit.limit} allowed per ` +
      `${window} (RATE_LIMIT): nothing was sent. Send fewer at a time.`;
  }
  return `Rate limit reached: at most ${limit.limit} messages per ${window} (RATE_LIMIT); ` +
    `nothing was sent. Try again in ${retryAfterS} s.`;
}

function describeWindow(windowMs: number): string {
  const units: [number, string][] = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"]];
  for (const [size, unit] of units) {
    if (windowMs % size === 0) return `${windowMs / size} ${unit}`;
  }
  return `${windowMs / 1000} s`;
}
