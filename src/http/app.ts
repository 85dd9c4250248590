/**
 * The HTTP function as a Hono app, built from a {@linkcode Config} by
 * {@linkcode createApp}, so every entry point (Deno, Workers, `deno task dev`)
 * and every test builds it the same way.
 *
 * Order of checks for the send routes: origin (403), API key (401), content
 * type (415), body size (413), JSON and schema (400), policy (413, 403); only
 * then SMTP.
 *
 * @module
 */

import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { describeRoute, openAPIRouteHandler, resolver, validator } from "hono-openapi";
import type * as v from "valibot";
import { parseMailbox } from "../message/address.ts";
import { toValidationIssues } from "../message/schema.ts";
import { SmtpClient } from "../smtp/client.ts";
import { isAbortError, SmtpError } from "../smtp/errors.ts";
import type { ResultError } from "../smtp/result.ts";
import type { Connect } from "../socket/socket.ts";
import type { Config } from "./config.ts";
import { admitBatch, admitMessage, isRefusal, type Policy, validationProblem } from "./policy.ts";
import { problem, resultErrorOf, tokenOf } from "./problems.ts";
import { createRedactor, type Redact, secretsOf } from "./redact.ts";
import {
  BatchDoneSchema,
  BatchRequestSchema,
  BatchResultSchema,
  HealthSchema,
  ResultSchema,
  RouteErrorSchema,
  SendRequestSchema,
  StatusEventSchema,
} from "./schemas.ts";
import {
  type ClientLease,
  handleBatch,
  handleSend,
  jsonBody,
  logError,
  type SendDependencies,
} from "./send.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** The socket factory (default: the Deno adapter). Workers pass `cloudflareConnect`. */
  connect?: Connect;
  /**
   * Create an SMTP client per request and close it when the request is done
   * (Workers: sockets cannot outlive a request). Default: one pooled client
   * shared by all requests, keeping connections warm.
   */
  perRequestClient?: boolean;
  /** Use this client instead of creating one (tests, embedding); it is never closed by the app. */
  client?: SmtpClient;
}

/** The version of the HTTP API in the OpenAPI document. */
export const API_VERSION = "1.0.0";

const ROUTES = "POST /send, POST /send/batch, GET /health, GET /openapi.json";

/**
 * Builds the HTTP function from a validated configuration.
 *
 * @example
 * ```ts
 * const app = createApp(loadConfig(Deno.env.toObject()));
 * Deno.serve(app.fetch);
 * ```
 * @throws {TypeError | RangeError} when the SMTP settings are invalid (no I/O happens here).
 */
export function createApp(config: Config, options: AppOptions = {}): Hono {
  const redact = createRedactor(secretsOf(config));
  const deps: SendDependencies = { config, redact, acquire: clientSource(config, options) };
  const policy: Policy = {
    config,
    defaultFrom: config.mailFrom === undefined ? undefined : parseMailbox(config.mailFrom),
  };
  const reply = (c: Context, body: unknown, status: number, headers?: Record<string, string>) =>
    jsonBody(c, redact, body, status, headers);
  const app = new Hono();

  app.use(requestId());
  app.use(secureHeaders());
  app.use(methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      reply(c, routeError("method_not_allowed", `Use ${methods.join(" or ")} here.`), 405, {
        Allow: methods.join(", "),
      }),
  }));
  app.use(originGuard(config, redact));
  if (config.corsOrigins.length > 0) {
    app.use(cors({
      origin: config.corsOrigins.includes("*") ? "*" : config.corsOrigins,
      allowMethods: ["GET", "POST"],
      allowHeaders: ["Authorization", "Content-Type", "Accept"],
      exposeHeaders: ["X-Request-Id", "Retry-After"],
      maxAge: 600,
    }));
  }
  app.notFound((c) =>
    reply(c, routeError("not_found", `There is no such route; the routes are ${ROUTES}.`), 404)
  );
  app.onError((error, c) => errorResponse(c, redact, error));

  const auth = authGuard(config, redact);
  const json = requireJson(redact);
  const limit = bodyLimit({
    maxSize: config.maxMessageBytes,
    onError: (c) =>
      reply(
        c,
        problem(
          "too_large",
          `The request body is larger than ${config.maxMessageBytes} bytes (MAX_MESSAGE_BYTES).`,
        ),
        413,
      ),
  });
  const invalid = (issues: v.BaseIssue<unknown>[], data: unknown, c: Context) =>
    reply(c, validationProblem(toValidationIssues(issues), tokenOf(data)), 400);

  app.post(
    "/send",
    describeRoute(sendRoute(config)),
    auth,
    json,
    limit,
    validator("json", SendRequestSchema, (result, c) => {
      if (!result.success) return invalid(result.error as v.BaseIssue<unknown>[], result.data, c);
    }),
    (c) => {
      const message = admitMessage(c.req.valid("json"), policy);
      if (isRefusal(message)) return reply(c, message.body, message.status);
      return handleSend(c, message, deps);
    },
  );

  app.post(
    "/send/batch",
    describeRoute(batchRoute(config)),
    auth,
    json,
    limit,
    validator("json", BatchRequestSchema, (result, c) => {
      if (!result.success) return invalid(result.error as v.BaseIssue<unknown>[], undefined, c);
    }),
    (c) => {
      const messages = admitBatch(c.req.valid("json").messages, policy);
      if (isRefusal(messages)) return reply(c, messages.body, messages.status);
      return handleBatch(c, messages, deps);
    },
  );

  app.get("/health", describeRoute(healthRoute()), healthGuard(auth), async (c) => {
    if (!wantsSmtpCheck(c)) return reply(c, { status: "ok" }, 200);
    const lease = deps.acquire(c);
    try {
      await lease.client.verify({ signal: c.req.raw.signal });
      return reply(c, { status: "ok" }, 200);
    } catch (error) {
      return reply(c, { status: "error", error: healthError(c, redact, error) }, 502);
    } finally {
      lease.release();
    }
  });

  app.get(
    "/openapi.json",
    openAPIRouteHandler(app, {
      documentation: {
        info: {
          title: "edgemail",
          version: API_VERSION,
          description: "Send email over SMTP from an HTTP function. Every send answers with a " +
            "Result; with `Accept: text/event-stream` the progress streams as server-sent events.",
        },
        components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
        ...(config.apiKeys.length > 0 ? { security: [{ bearer: [] }] } : {}),
      },
      defaultValidationErrorResponse: {
        description: "The body is not valid JSON or does not match the schema " +
          "(`error.type` is `validation`, `error.issues` lists the problems).",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Result" } } },
      },
    }),
  );

  return app;
}

/** Provides the SMTP client of a request: shared and pooled, or one per request. */
function clientSource(config: Config, options: AppOptions): (c: Context) => ClientLease {
  const given = options.client;
  if (given !== undefined) return () => ({ client: given, release: () => {} });
  const clientOptions = { ...config.smtp, connect: options.connect ?? config.smtp.connect };
  // Constructed now so that invalid options fail at start-up; it does no I/O.
  const shared = new SmtpClient(clientOptions);
  if (!options.perRequestClient) return () => ({ client: shared, release: () => {} });
  return (c) => {
    const client = new SmtpClient(clientOptions);
    return {
      client,
      release: () => {
        const closing = client.close().catch(() => {});
        try {
          c.executionCtx.waitUntil(closing);
        } catch {
          // No execution context (Deno, tests): the close runs on by itself.
        }
      },
    };
  };
}

function routeError(type: "not_found" | "method_not_allowed", message: string) {
  return { error: { type, message } };
}

/** 403 for a browser origin outside `CORS_ORIGINS` (preflight included). */
function originGuard(config: Config, redact: Redact): MiddlewareHandler {
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
function authGuard(config: Config, redact: Redact): MiddlewareHandler {
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
function healthGuard(auth: MiddlewareHandler): MiddlewareHandler {
  return async (c, next) => wantsSmtpCheck(c) ? await auth(c, next) : await next();
}

function wantsSmtpCheck(c: Context): boolean {
  const value = c.req.query("smtp");
  return value !== undefined && !["", "0", "false"].includes(value.toLowerCase());
}

/** 415 unless the body is declared as `application/json`. */
function requireJson(redact: Redact): MiddlewareHandler {
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

function healthError(c: Context, redact: Redact, error: unknown): ResultError {
  if (error instanceof SmtpError) return resultErrorOf(error);
  if (isAbortError(error)) {
    // The caller went away mid-check: nothing went wrong on our side.
    return { type: "cancelled", message: "The health check was cancelled by the caller." };
  }
  logError(c, redact, error);
  return { type: "protocol", message: "The SMTP check failed unexpectedly; see the server log." };
}

/** Errors thrown to Hono: malformed JSON (400), auth (its own response), or a bug (500). */
function errorResponse(c: Context, redact: Redact, error: Error): Response {
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

const jsonResult = { "application/json": { schema: resolver(ResultSchema) } };

function sendRoute(config: Config) {
  return {
    summary: "Send one message",
    description: "Answers with the Result. With `Accept: text/event-stream` it answers 200 at " +
      "once and streams `status` events, then `completed` (the Result). " +
      `At most ${config.maxRecipients} recipients; body at most ${config.maxMessageBytes} bytes.`,
    responses: {
      200: {
        description: "Sent (JSON), or the event stream (SSE).",
        content: {
          ...jsonResult,
          "text/event-stream": {
            schema: resolver(StatusEventSchema),
            description:
              "`event: status` (StatusEvent) per step, then `event: completed` (Result).",
          },
        },
      },
      ...errorResponses(),
    },
  };
}

function batchRoute(config: Config) {
  return {
    summary: "Send several messages",
    description:
      `1 to ${config.maxBatch} messages, sent concurrently. Always 200 with one Result ` +
      "per message in input order. With SSE, `status` and `completed` events carry `index`, " +
      "and a final `event: done` counts the outcomes.",
    responses: {
      200: {
        description: "The results (JSON), or the event stream (SSE).",
        content: {
          "application/json": { schema: resolver(BatchResultSchema) },
          "text/event-stream": {
            schema: resolver(BatchDoneSchema),
            description: "`status` and `completed` events with `index`, then `event: done`.",
          },
        },
      },
      ...errorResponses(),
    },
  };
}

function healthRoute() {
  return {
    summary: "Health check",
    description: "With `?smtp=1` it also opens an SMTP session (greeting, EHLO, TLS, AUTH, QUIT).",
    responses: {
      200: {
        description: "Healthy.",
        content: { "application/json": { schema: resolver(HealthSchema) } },
      },
      502: {
        description: "The SMTP check failed.",
        content: { "application/json": { schema: resolver(HealthSchema) } },
      },
      404: {
        description: "Unknown route.",
        content: { "application/json": { schema: resolver(RouteErrorSchema) } },
      },
    },
  };
}

function errorResponses() {
  const failed = (description: string) => ({ description, content: jsonResult });
  return {
    401: failed("`unauthorized`: API key missing or wrong."),
    403: failed("`forbidden`: sender, recipient or origin not allowed."),
    413: failed("`too_large`: body, recipients or batch over the limit."),
    415: failed("The body is not `application/json`."),
    422: failed("`rejected`: the server permanently refused."),
    502: failed("`connection`, `tls`, `auth`, `protocol` or `unknown_outcome`."),
    503: failed("`transient`: a temporary refusal; see `Retry-After`."),
    504: failed("`timeout`: a step passed its deadline."),
  };
}
