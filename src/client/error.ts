/**
 * {@linkcode EdgemailError}, what the browser client rejects with, and the one
 * table of HTTP statuses per error type it uses (contract section 3).
 *
 * @module
 */

import type { ValidationIssue } from "../message/validation_issues.ts";
import type { EmailResult } from "./types.ts";

/**
 * The `error.type` values of contract section 3, SMTP outcomes and HTTP-only ones.
 *
 * @example
 * ```ts
 * const retryable = (type: EdgemailErrorType) =>
 *   ["transient", "timeout", "connection", "rate_limited", "conflict"].includes(type);
 * ```
 */
export type EdgemailErrorType =
  | "connection"
  | "tls"
  | "auth"
  | "rejected"
  | "transient"
  | "timeout"
  | "protocol"
  | "unknown_outcome"
  | "cancelled"
  | "validation"
  | "unauthorized"
  | "forbidden"
  | "too_large"
  | "unsupported_media_type"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "idempotency_mismatch"
  | "rate_limited"
  | "idempotency_unavailable"
  | "internal";

/**
 * The HTTP status of the error types whose status the client must infer
 * (contract section 3, status table): every type an SSE `completed` Result
 * can carry, so that an SSE send reports the status the same request would
 * have had without SSE, and the types {@linkcode typeForStatus} gives an
 * answer that is not from edgemail. `cancelled` is 499, the status the
 * function logs for a client that went away. Types only ever answered as
 * JSON (`conflict`, `idempotency_mismatch`, `unsupported_media_type`,
 * `idempotency_unavailable`) come with their status and are left out to
 * keep the bundle small.
 *
 * @example
 * ```ts
 * STATUS_BY_TYPE.rejected; // 422
 * ```
 */
export const STATUS_BY_TYPE: Readonly<Partial<Record<EdgemailErrorType, number>>> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  rejected: 422,
  rate_limited: 429,
  cancelled: 499,
  internal: 500,
  connection: 502,
  tls: 502,
  auth: 502,
  protocol: 502,
  unknown_outcome: 502,
  transient: 503,
  timeout: 504,
};

/**
 * The type of an answer that carries no edgemail error (a proxy's error
 * page): the first type with that status, else `protocol`.
 *
 * @example
 * ```ts
 * typeForStatus(429); // "rate_limited"
 * ```
 */
export function typeForStatus(status: number): EdgemailErrorType {
  return (Object.keys(STATUS_BY_TYPE) as EdgemailErrorType[]).find((type) =>
    STATUS_BY_TYPE[type] === status
  ) ?? "protocol";
}

/**
 * What an {@linkcode EdgemailError} carries besides its message.
 *
 * @example
 * ```ts
 * new EdgemailError("Over the limit.", { type: "rate_limited", status: 429, retryAfter: 30 });
 * ```
 */
export interface EdgemailErrorOptions {
  /** The error type. */
  type: EdgemailErrorType;
  /** The HTTP status (or the one an SSE send would have had); 0 when no response came. */
  status: number;
  /** The Result (or error body) the server answered, when it sent one. */
  result?: EmailResult;
  /** The schema problems of a `validation` error. */
  issues?: ValidationIssue[];
  /** Seconds to wait before retrying, from `Retry-After`. */
  retryAfter?: number;
  /** The underlying error (a network failure). */
  cause?: unknown;
}

/**
 * A send that did not end in `sent`, or a request the function refused.
 *
 * `status` is the HTTP status of contract section 3 (for an SSE send, the one
 * the same request would have had without SSE), or `0` when no HTTP response
 * arrived at all (network failure, CORS refusal, wrong URL).
 *
 * @example
 * ```ts
 * import { EdgemailError, sendEmail } from "@edgemail/edgemail/client";
 *
 * try {
 *   await sendEmail("https://mail.example.com", { to: "bob@example.org", text: "Hi" });
 * } catch (error) {
 *   if (error instanceof EdgemailError && error.type === "validation") {
 *     for (const issue of error.issues ?? []) console.log(issue.path, issue.message);
 *   } else if (error instanceof EdgemailError && error.retryAfter !== undefined) {
 *     console.log(`try again in ${error.retryAfter} s`);
 *   }
 * }
 * ```
 */
export class EdgemailError extends Error {
  // `declare`: set by Object.assign below, which keeps the bundle small.
  /** The error type (contract section 3). */
  declare readonly type: EdgemailErrorType;
  /** The HTTP status; 0 when no response arrived. */
  declare readonly status: number;
  /** The Result (or error body) the server answered, when it sent one. */
  declare readonly result?: EmailResult;
  /** The schema problems of a `validation` error: `{ path, message }` each. */
  declare readonly issues?: ValidationIssue[];
  /** Seconds to wait before retrying, when the server said (`Retry-After`). */
  declare readonly retryAfter?: number;

  /** Creates the error; the client does this, callers only catch it. */
  constructor(message: string, options: EdgemailErrorOptions) {
    super(message, options);
    Object.assign(this, options).name = "EdgemailError";
  }
}
