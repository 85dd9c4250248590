/**
 * The security headers set on every response: the same set, with the same
 * values, as Hono's `secureHeaders()` with its defaults (which this replaced
 * to keep the Worker small: its CSP, nonce and permissions-policy builders are
 * never used here). An API answering JSON and SSE needs no content policy.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";

/** Header name → value, set on every response (replacing a value a handler set). */
export const SECURE_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Origin-Agent-Cluster": "?1",
  "Referrer-Policy": "no-referrer",
  "Strict-Transport-Security": "max-age=15552000; includeSubDomains",
  "X-Content-Type-Options": "nosniff",
  "X-DNS-Prefetch-Control": "off",
  "X-Download-Options": "noopen",
  "X-Frame-Options": "SAMEORIGIN",
  "X-Permitted-Cross-Domain-Policies": "none",
  "X-XSS-Protection": "0",
};

/** Sets {@linkcode SECURE_HEADERS} on the response and removes `X-Powered-By`. */
export function secureHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(SECURE_HEADERS)) c.res.headers.set(name, value);
    c.res.headers.delete("X-Powered-By");
  };
}
