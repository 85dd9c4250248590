/**
 * What the HTTP function writes to its log: one line per request (`LOG_FORMAT`
 * plain or JSON lines; never a secret, a query or a body), and unexpected
 * errors (redacted, with the request id so a user's `X-Request-Id` finds them).
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
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

/** How request log lines are written (`LOG_FORMAT`): plain text, JSON lines, or not at all. */
export type LogFormat = "plain" | "json" | "off";

const LOG_FORMATS: readonly LogFormat[] = ["plain", "json", "off"];

/**
 * `LOG_FORMAT` from the environment: `plain` (default), `json` or `off`.
 *
 * @throws {RangeError} naming the variable when the value is something else.
 */
export function logFormatOf(env: Record<string, string | undefined>): LogFormat {
  const value = (env.LOG_FORMAT ?? "").trim().toLowerCase();
  if (value === "") return "plain";
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new RangeError("LOG_FORMAT must be plain, json or off.");
}

const ERROR_TYPE = "edgemail.errorType";

/** Notes the `error.type` of the answer, for the request's log line. */
export function noteErrorType(c: Context, type: string): void {
  c.set(ERROR_TYPE as never, type as never);
}

/**
 * One log line per request once its answer starts: method, path (never the
 * query or a body), status, the error type when there is one, the duration
 * in milliseconds and the request id. `plain`:
 * `edgemail: POST /send 422 rejected 41ms 5b0c…`; `json`: one JSON object per line.
 */
export function requestLog(format: LogFormat): MiddlewareHandler {
  if (format === "off") return async (_c, next) => await next();
  return async (c, next) => {
    const started = performance.now();
    await next();
    const line = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      error: (c.get(ERROR_TYPE as never) as string | undefined) ?? null,
      durationMs: Math.round(performance.now() - started),
      requestId: requestIdOf(c),
    };
    console.info(
      format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), ...line })
        : `edgemail: ${line.method} ${line.path} ${line.status}` +
          `${line.error === null ? "" : ` ${line.error}`} ${line.durationMs}ms ${line.requestId}`,
    );
  };
}
