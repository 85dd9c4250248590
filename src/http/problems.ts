/**
 * How outcomes become HTTP responses (contract section 3): the status code of
 * each error type, `Retry-After` on temporary refusals, and the JSON bodies of
 * errors found before any SMTP happens (validation, auth, policy, routing).
 *
 * @module
 */

import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ValidationIssue } from "../message/validation_issues.ts";
import { SMTP_ERROR_TYPES, type SmtpError } from "../smtp/errors.ts";
import type { ResultError, SendResult } from "../smtp/result.ts";

/**
 * Every `error.type` an HTTP answer can carry (contract section 3): the SMTP
 * outcomes, then the ones only the HTTP layer raises.
 */
export const HTTP_ERROR_TYPES = [
  ...SMTP_ERROR_TYPES,
  "validation",
  "unauthorized",
  "forbidden",
  "too_large",
  "unsupported_media_type",
  "not_found",
  "method_not_allowed",
  "conflict",
  "idempotency_mismatch",
  "rate_limited",
  "idempotency_unavailable",
] as const;

/** An `error.type` of an HTTP answer. */
export type HttpErrorType = typeof HTTP_ERROR_TYPES[number];

/** The `error` of a request refused before any SMTP happened. */
export interface ProblemError {
  /** The error type (contract section 3). */
  type: HttpErrorType;
  /** What went wrong and what to do, without secrets or input values. */
  message: string;
  /** Schema problems, for `validation`. */
  issues?: ValidationIssue[];
}

/** The body of a request refused before any SMTP: a failed Result without a message. */
export interface ProblemBody {
  /** Always `failed`. */
  status: "failed";
  /** The request's token when it could be read, else `null`. */
  token: unknown;
  /** Always empty: nothing was sent. */
  accepted: string[];
  /** Always empty: nothing was sent. */
  rejected: never[];
  /** What went wrong. */
  error: ProblemError;
}

/** Seconds a client should wait after a temporary refusal (`Retry-After` on 503). */
export const RETRY_AFTER_SECONDS = 60;

/**
 * The HTTP status of a client that went away. It is never seen by anyone and
 * only shows in access logs (the nginx convention).
 */
export const CLIENT_CLOSED_REQUEST = 499;

/** The HTTP status of each error type (contract section 3, status table). */
export const STATUS_BY_ERROR_TYPE: Record<HttpErrorType, ContentfulStatusCode> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  rejected: 422,
  idempotency_mismatch: 422,
  rate_limited: 429,
  internal: 500,
  idempotency_unavailable: 501,
  connection: 502,
  tls: 502,
  auth: 502,
  protocol: 502,
  unknown_outcome: 502,
  transient: 503,
  timeout: 504,
  cancelled: CLIENT_CLOSED_REQUEST as ContentfulStatusCode,
};

/** The `error` of an HTTP Result: an SMTP outcome or one of the HTTP layer's. */
export type HttpResultError = Omit<ResultError, "type"> & {
  type: HttpErrorType;
  issues?: ValidationIssue[];
};

/** A Result as the HTTP function answers it: `messageId` is absent when nothing was composed. */
export type HttpResult = Omit<SendResult, "messageId" | "error"> & {
  messageId?: string;
  error?: HttpResultError;
};

/** The HTTP status of a send's Result: 200 when sent, else by its error type. */
export function statusOfResult(result: HttpResult): ContentfulStatusCode {
  if (result.status === "sent") return 200;
  if (result.status === "cancelled") return STATUS_BY_ERROR_TYPE.cancelled;
  return STATUS_BY_ERROR_TYPE[result.error?.type ?? "protocol"];
}

/** Extra response headers for a status: `Retry-After` on 503. */
export function headersForStatus(status: number): Record<string, string> {
  return status === 503 ? { "Retry-After": String(RETRY_AFTER_SECONDS) } : {};
}

/**
 * The body of a request refused before any SMTP happened.
 *
 * @example
 * ```ts
 * problem("forbidden", "to[0] is not allowed by ALLOWED_TO.");
 * ```
 */
export function problem(
  type: ProblemError["type"],
  message: string,
  options: { issues?: ValidationIssue[]; token?: unknown } = {},
): ProblemBody {
  const error: ProblemError = { type, message };
  if (options.issues !== undefined) error.issues = options.issues;
  return { status: "failed", token: options.token ?? null, accepted: [], rejected: [], error };
}

/**
 * The token of a request body, when it is one a Result may echo (a string or
 * a finite number); anything else is `null`, so nothing else is echoed.
 */
export function tokenOf(body: unknown): string | number | null {
  if (typeof body !== "object" || body === null || !("token" in body)) return null;
  const token = (body as { token: unknown }).token;
  if (typeof token === "string" || (typeof token === "number" && Number.isFinite(token))) {
    return token;
  }
  return null;
}

/** The `error` part of a Result for an {@linkcode SmtpError} (type, message, phase, codes). */
export function resultErrorOf(error: SmtpError): ResultError {
  const out: ResultError = { type: error.type, message: error.message, phase: error.phase };
  if (error.code !== undefined) out.code = error.code;
  if (error.enhancedCode !== undefined) out.enhancedCode = error.enhancedCode;
  return out;
}
