/**
 * What the HTTP function writes to its log: unexpected errors (redacted, with
 * the request id so a user's `X-Request-Id` finds them).
 *
 * @module
 */

import type { Context } from "hono";
import type { Redact } from "./redact.ts";

/** The request id Hono's `requestId()` middleware set, or `-`. */
export function requestIdOf(c: Context): string {
  return (c.get("requestId" as never) as string | undefined) ?? "-";
}

/** Logs an unexpected error: name, message and stack, redacted. */
export function logError(c: Context, redact: Redact, error: unknown): void {
  const text = error instanceof Error
    ? (error.stack ?? `${error.name}: ${error.message}`)
    : String(error);
  console.error(redact(`edgemail: request ${requestIdOf(c)}: internal error: ${text}`));
}
