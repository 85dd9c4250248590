/**
 * The checks a request passes before any handler runs, each a Hono
 * middleware answering in JSON: the browser origin (403), the API key (401),
 * the content type (415), the body size (413), and the API key of
 * `GET /health?smtp=1`.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { toValidationIssues } from "../message/validation_issues.ts";
import { readJsonBody } from "./body.ts";
import type { Config } from "./config.ts";
import { type Refusal, validationProblem } from "./policy.ts";
import { sha256Hex } from "./caller.ts";
import { problem, tokenOf } from "./problems.ts";
import type { Redact } from "./redact.ts";
import { jsonBody } from "./responses.ts";

/** The headers every response exposes to a browser page (`Access-Control-Expose-Headers`). */
export const EXPOSED_HEADERS = [
  "Retry-After",
  "X-Request-Id",
  "Idempotent-Replayed",
  "RateLimit",
  "RateLimit-Policy",
];

// `deno task dev` with no CORS_ORIGINS: any page served from this machine over http.
const LOCAL_DEV_ORIGIN = /^http:\/\/(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$/;

/**
 * Whether a browser origin may call: listed in `CORS_ORIGINS` (or `*`), the
 * function's own origin, or — under `deno task dev` with no `CORS_ORIGINS`
 * (`Config.localOrigins`) — any `http://localhost:*` / `http://127.0.0.1:*` page.
 */
export function originAllowed(config: Config): (origin: string, self: string) => boolean {
  const anyOrigin = config.corsOrigins.includes("*");
  const localDev = config.localOrigins;
  return (origin, self) =>
    anyOrigin || origin === self || config.corsOrigins.includes(origin) ||
    (localDev && LOCAL_DEV_ORIGIN.test(origin));
}

/** The request headers a preflight allows. */
const ALLOWED_REQUEST_HEADERS = "Authorization,Content-Type,Accept,Idempotency-Key";

/**
 * CORS on every response: the preflight (any `OPTIONS`: 204) allows the
 * methods and request headers the API takes (`Idempotency-Key` included) for
 * 600 s, and every answer to an allowed origin names it and exposes
 * {@linkcode EXPOSED_HEADERS}. The headers and their values are those of
 * Hono's `cors()` with these options, which this specialises (its option
 * handling is not shipped to the Worker).
 */
export function corsHeaders(config: Config): MiddlewareHandler {
  const allowed = originAllowed(config);
  const exposed = EXPOSED_HEADERS.join(",");
  return async (c, next) => {
    // Set on the context's response before the handler runs, so they carry over to its answer.
    const headers = c.res.headers;
    const origin = c.req.header("Origin");
    if (origin && allowed(origin, new URL(c.req.url).origin)) {
      headers.set("Access-Control-Allow-Origin", origin);
    }
    headers.set("Access-Control-Expose-Headers", exposed);
    if (c.req.method === "OPTIONS") {
      headers.append("Vary", "Origin");
      headers.set("Access-Control-Max-Age", "600");
      headers.set("Access-Control-Allow-Methods", "GET,POST");
      headers.set("Access-Control-Allow-Headers", ALLOWED_REQUEST_HEADERS);
      headers.append("Vary", "Access-Control-Request-Headers");
      headers.delete("Content-Length");
      headers.delete("Content-Type");
      return new Response(null, { headers, status: 204, statusText: "No Content" });
    }
    await next();
    c.header("Vary", "Origin", { append: true });
  };
}

/** Most refused origins remembered for the once-per-origin log line. */
const LOGGED_ORIGINS_MAX = 100;

/**
 * 403 for a browser origin that may not call (preflight included). Each
 * refused origin is logged once, with the variable to set, so a page that
 * only sees `TypeError: Failed to fetch` has its answer in the server log.
 */
export function originGuard(config: Config, redact: Redact): MiddlewareHandler {
  const allowed = originAllowed(config);
  const logged = new Set<string>();
  return async (c, next) => {
    const origin = c.req.header("Origin");
    if (origin === undefined || allowed(origin, new URL(c.req.url).origin)) return await next();
    if (!logged.has(origin) && logged.size < LOGGED_ORIGINS_MAX) {
      logged.add(origin);
      console.warn(redact(
        `edgemail: refused a request from the browser origin ${JSON.stringify(origin)}: ` +
          "to allow it, add it to CORS_ORIGINS (a comma list of origins). Logged once per origin.",
      ));
    }
    return jsonBody(
      c,
      redact,
      problem("forbidden", "This origin may not call edgemail: add it to CORS_ORIGINS."),
      403,
    );
  };
}

/** What `Authorization: Bearer <token>` may carry (RFC 6750 `b64token`). */
const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * Bearer auth against `API_KEYS`; every failure is a JSON 401 with its
 * `WWW-Authenticate` challenge (RFC 6750: `realm=""` when no key was sent,
 * `error="invalid_request"` for a malformed header, `error="invalid_token"`
 * for an unknown key). Keys are compared as SHA-256 digests, each in full and
 * against every key, so the time taken says nothing about any key.
 */
export function authGuard(config: Config, redact: Redact): MiddlewareHandler {
  if (config.apiKeys.length === 0) return async (_c, next) => await next();
  let keyDigests: Promise<string[]> | undefined;
  const refuse = (c: Context, challenge: string, message: string) =>
    jsonBody(c, redact, problem("unauthorized", message), 401, {
      "WWW-Authenticate": `Bearer ${challenge}`,
    });
  return async (c, next) => {
    const header = c.req.header("Authorization");
    if (!header) {
      return refuse(c, 'realm=""', "An API key is required: send Authorization: Bearer <key>.");
    }
    const token = /^bearer /i.test(header) ? header.slice(7).trimStart() : "";
    if (!BEARER_TOKEN.test(token)) {
      return refuse(c, 'error="invalid_request"', "The Authorization header must be Bearer <key>.");
    }
    keyDigests ??= Promise.all(config.apiKeys.map((key) => sha256Hex(key)));
    const digest = await sha256Hex(token);
    let known = false;
    for (const keyDigest of await keyDigests) known = sameDigest(keyDigest, digest) || known;
    if (!known) return refuse(c, 'error="invalid_token"', "The API key is not valid.");
    return await next();
  };
}

/** Compares two hex digests of equal length in constant time (no early exit). */
function sameDigest(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
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
      problem(
        "unsupported_media_type",
        "Send the body as JSON, with Content-Type: application/json.",
      ),
      415,
    );
  };
}

const VALID_BODY = "edgemail.validBody";

/** Options of {@linkcode validJson}. */
export interface ValidJsonOptions {
  /** `MAX_MESSAGE_BYTES`. */
  config: Config;
  /** Applied to every answer. */
  redact: Redact;
  /** A check of the parsed JSON before the schema runs (the recipient count). */
  precheck?: (value: unknown) => Refusal | undefined;
}

/**
 * Reads the JSON body once (413 over `MAX_MESSAGE_BYTES`, counted as the
 * bytes arrive; 400 when it is not UTF-8 JSON) and validates it against
 * `schema` (400 with every issue; the input is never echoed, only a valid
 * `token`). The handler takes the output with {@linkcode validBody}.
 */
export function validJson<S extends v.GenericSchema>(
  schema: S,
  options: ValidJsonOptions,
): MiddlewareHandler {
  const { config, redact } = options;
  return async (c, next) => {
    const body = await readJsonBody(c.req.raw, { maxBytes: config.maxMessageBytes });
    if (!body.ok) {
      const answer = body.status === 413
        ? problem("too_large", body.message)
        : validationProblem([{ path: "", message: notJsonIssue(body.message) }], null);
      return jsonBody(c, redact, answer, body.status);
    }
    const refusal = options.precheck?.(body.value);
    if (refusal !== undefined) return jsonBody(c, redact, refusal.body, refusal.status);
    const parsed = v.safeParse(schema, body.value);
    if (!parsed.success) {
      const issues = toValidationIssues(parsed.issues as unknown as v.BaseIssue<unknown>[]);
      return jsonBody(c, redact, validationProblem(issues, tokenOf(body.value)), 400);
    }
    c.set(VALID_BODY as never, parsed.output as never);
    return await next();
  };
}

/** The body {@linkcode validJson} validated, typed by its schema. */
export function validBody<S extends v.GenericSchema>(c: Context, _schema: S): v.InferOutput<S> {
  return c.get(VALID_BODY as never) as v.InferOutput<S>;
}

function notJsonIssue(message: string): string {
  return /UTF-8/.test(message) ? "is not valid UTF-8" : "is not valid JSON";
}
