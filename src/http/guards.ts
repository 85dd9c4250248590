/**
 * The checks a request passes before any handler runs, each a Hono
 * middleware answering in JSON: the browser origin (403), the API key (401),
 * the content type (415), the body size (413), and the API key of
 * `GET /health?smtp=1`.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import type { Config } from "./config.ts";
import { problem } from "./problems.ts";
import type { Redact } from "./redact.ts";
import { jsonBody } from "./responses.ts";

/** 403 for a browser origin outside `CORS_ORIGINS` (preflight included). */
export function originGuard(config: Config, redact: Redact): MiddlewareHandler {
  const anyOrigin = config.corsOrigins.includes("*");
  return async (c, next) => {
    const origin = c.req.header("Origin");
    if (
      origin === undefined || anyOrigin || config.corsOrigins.includes(origin) ||
      origin === new URL(c.req.url).origin
    ) {
      return await next();
    }
    return jsonBody(
      c,
      redact,
      problem("forbidden", "This origin may not call edgemail: add it to CORS_ORIGINS."),
      403,
    );
  };
}

/** Bearer auth against `API_KEYS` (constant-time); every failure is a JSON 401. */
export function authGuard(config: Config, redact: Redact): MiddlewareHandler {
  if (config.apiKeys.length === 0) return async (_c, next) => await next();
  const unauthorized = (message: string) => () =>
    new Response(redact(JSON.stringify(problem("unauthorized", message))), {
      status: 401,
      headers: { "Content-Type": "application/json; charset=UTF-8" },
    });
  return bearerAuth({
    token: config.apiKeys,
    noAuthenticationHeader: {
      message: unauthorized("An API key is required: send Authorization: Bearer <key>."),
    },
    invalidAuthenticationHeader: {
      message: unauthorized("The Authorization header must be Bearer <key>."),
    },
    invalidToken: { message: unauthorized("The API key is not valid.") },
  });
}

/** `GET /health?smtp=1` opens an SMTP session: it needs the API key when keys are set. */
export function healthGuard(auth: MiddlewareHandler): MiddlewareHandler {
  return async (c, next) => wantsSmtpCheck(c) ? await auth(c, next) : await next();
}

/** Whether `GET /health` asks for an SMTP check (`?smtp=1`, anything but empty/0/false). */
export function wantsSmtpCheck(c: Context): boolean {
  const value = c.req.query("smtp");
  return value !== undefined && !["", "0", "false"].includes(value.toLowerCase());
}

/** 415 unless the body is declared as `application/json`. */
export function requireJson(redact: Redact): MiddlewareHandler {
  return async (c, next) => {
    const type = (c.req.header("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") return await next();
    return jsonBody(
      c,
      redact,
      problem("validation", "Send the body as JSON, with Content-Type: application/json."),
      415,
    );
  };
}

/** 413 for a body over `MAX_MESSAGE_BYTES`, by its `Content-Length` or as it streams in. */
export function sizeGuard(config: Config, redact: Redact): MiddlewareHandler {
  return bodyLimit({
    maxSize: config.maxMessageBytes,
    onError: (c) =>
      jsonBody(
        c,
        redact,
        problem(
          "too_large",
          `The request body is larger than ${config.maxMessageBytes} bytes (MAX_MESSAGE_BYTES).`,
        ),
        413,
      ),
  });
}
