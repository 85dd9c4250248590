/**
 * `GET /health`: `{ "status": "ok" }`, and with `?smtp=1` a full SMTP session
 * (greeting, EHLO, TLS, AUTH, QUIT) answering 200 or 502 with the error.
 * Public callers get the type, phase and codes; the detail goes to the log.
 *
 * @module
 */

import type { Context, Handler } from "hono";
import { isAbortError, SmtpError } from "../smtp/errors.ts";
import type { ResultError } from "../smtp/result.ts";
import { isPublicRequest, publicError } from "./caller.ts";
import type { ClientLease } from "./client_lease.ts";
import { wantsSmtpCheck } from "./guards.ts";
import { logError } from "./logging.ts";
import { resultErrorOf } from "./problems.ts";
import type { Redact } from "./redact.ts";
import { jsonBody } from "./responses.ts";

/** What {@linkcode healthHandler} needs. */
export interface HealthOptions {
  /** Applied to every body and log line. */
  redact: Redact;
  /** Provides the SMTP client for `?smtp=1`. */
  acquire(c: Context): ClientLease;
  /** Whether API keys are configured (a request without `Origin` is then a server caller). */
  apiKeys: boolean;
}

/** The `GET /health` handler. */
export function healthHandler(options: HealthOptions): Handler {
  const { redact } = options;
  return async (c) => {
    if (!wantsSmtpCheck(c)) return jsonBody(c, redact, { status: "ok" }, 200);
    const lease = options.acquire(c);
    try {
      await lease.client.verify({ signal: c.req.raw.signal });
      return jsonBody(c, redact, { status: "ok" }, 200);
    } catch (error) {
      const detail = healthError(c, redact, error);
      if (!isPublicRequest(c, options.apiKeys)) {
        return jsonBody(c, redact, { status: "error", error: detail }, 502);
      }
      console.info(redact(`edgemail: SMTP health check failed: ${detail.message}`));
      return jsonBody(c, redact, { status: "error", error: publicError(detail) }, 502);
    } finally {
      lease.release();
    }
  };
}

function healthError(c: Context, redact: Redact, error: unknown): ResultError {
  if (error instanceof SmtpError) return resultErrorOf(error);
  if (isAbortError(error)) {
    // The caller went away mid-check: nothing went wrong on our side.
    return { type: "cancelled", message: "The health check was cancelled by the caller." };
  }
  logError(c, redact, error);
  return { type: "protocol", message: "The SMTP check failed unexpectedly; see the server log." };
}
