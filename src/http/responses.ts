/**
 * How the HTTP function writes its answers: JSON bodies through the redactor,
 * routing errors (404, 405) and the answer to an exception thrown to Hono.
 * Every handler and guard answers through these, so every body is redacted
 * and has the same `Content-Type`.
 *
 * @module
 */

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { logError, noteErrorType } from "./logging.ts";
import { validationProblem } from "./policy.ts";
import { type Redact, stringifyRedacted } from "./redact.ts";

/** A JSON response whose string values went through the redactor. */
export function jsonBody(
  c: Context,
  redact: Redact,
  body: unknown,
  status: number,
  headers: Record<string, string> = {},
): Response {
  const type = errorTypeOf(body);
  if (type !== undefined) noteErrorType(c, type);
  return c.newResponse(stringifyRedacted(body, redact), status as 200, {
    ...headers,
    "Content-Type": "application/json; charset=UTF-8",
  });
}

/** The body of a routing error (404, 405): `{ error: { type, message } }`. */
export function routeError(
  type: "not_found" | "method_not_allowed",
  message: string,
): { error: { type: "not_found" | "method_not_allowed"; message: string } } {
  return { error: { type, message } };
}

/**
 * The answer to an error thrown to Hono: malformed JSON (400), a response the
 * thrower built (auth), or a bug (500, details in the log only).
 */
export function errorResponse(c: Context, redact: Redact, error: Error): Response {
  if (error instanceof HTTPException) {
    if (error.res !== undefined) return error.getResponse();
    if (error.status === 400) {
      // Hono's validator throws this for a body that is not JSON.
      return jsonBody(
        c,
        redact,
        validationProblem([{ path: "", message: "is not valid JSON" }], null),
        400,
      );
    }
  }
  logError(c, redact, error);
  return jsonBody(c, redact, {
    error: {
      type: "internal",
      message: "An internal error occurred; the server log has the details (X-Request-Id).",
    },
  }, 500);
}

function errorTypeOf(body: unknown): string | undefined {
  const error = (body as { error?: { type?: unknown } } | null)?.error;
  return typeof error?.type === "string" ? error.type : undefined;
}
