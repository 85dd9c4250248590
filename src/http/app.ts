/**
 * The HTTP function as a Hono app, built from a {@linkcode Config} by
 * {@linkcode createApp}, so every entry point (Deno, Workers, `deno task dev`)
 * and every test builds it the same way. This module only wires routes and
 * middleware; each concern lives in its own module (guards, responses,
 * OpenAPI, logging, the send and health handlers, the client's lifecycle).
 *
 * Order of checks for the send routes: origin (403), API key (401), content
 * type (415), body size (413), JSON and schema (400), policy (413, 403), then
 * the `Idempotency-Key` claim (replay, 409, 422) and the rate limit (429);
 * only then SMTP.
 *
 * @module
 */

import type { Context } from "hono";
// Four routes: the small PatternRouter preset (hono/tiny) instead of the full router set.
import { Hono } from "hono/tiny";
import { requestId } from "hono/request-id";
import { parseMailbox } from "../message/address.ts";
import type { SmtpClient } from "../smtp/client.ts";
import type { Connect } from "../socket/socket.ts";
import { memoryStore } from "../store/memory.ts";
import type { Store } from "../store/store.ts";
import type { AddressSource } from "./caller.ts";
import { clientSource } from "./client_lease.ts";
import type { Config } from "./config.ts";
import {
  authGuard,
  corsHeaders,
  healthGuard,
  originGuard,
  requireJson,
  validBody,
  validJson,
} from "./guards.ts";
import { healthHandler } from "./health.ts";
import { captureIdempotencyKey, type GuardOptions, guardSends } from "./idempotency.ts";
import { type LogFormat, requestLog } from "./logging.ts";
import { openApiHandler } from "./openapi.ts";
import {
  admitBatch,
  admitMessage,
  isRefusal,
  type Policy,
  recipientCountRefusal,
} from "./policy.ts";
import { createRedactor, secretsOf } from "./redact.ts";
import { errorResponse, jsonBody, routeError } from "./responses.ts";
import { BatchRequestSchema, SendRequestSchema } from "./request_schemas.ts";
import { secureHeaders } from "./secure_headers.ts";
import { handleBatch, handleSend, type SendDependencies } from "./send.ts";

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
  /**
   * Where idempotency claims and rate-limit counters live: Deno KV
   * (`openDenoKvStore`) or the Durable Object (`durableObjectStore`). Default:
   * an in-memory store, good for one long-lived process only. Ignored when
   * `config.store` is false (the platform has none).
   */
  store?: Store;
  /** The client address of a public caller. Default: the Deno connection's remote address. */
  clientAddress?: AddressSource;
  /** One log line per request (`LOG_FORMAT`, see `logFormatOf`): default `plain`. */
  logFormat?: LogFormat;
}

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
  const acquire = clientSource(
    { ...config.smtp, connect: options.connect ?? config.smtp.connect },
    options,
  );
  const deps: SendDependencies = { keepaliveMs: config.keepaliveMs, redact, acquire };
  const policy: Policy = {
    config,
    defaultFrom: config.mailFrom === undefined ? undefined : parseMailbox(config.mailFrom),
  };
  const reply = (c: Context, body: unknown, status: number, headers?: Record<string, string>) =>
    jsonBody(c, redact, body, status, headers);
  const guard: GuardOptions = {
    config,
    store: config.store ? (options.store ?? memoryStore()) : undefined,
    redact,
    address: options.clientAddress,
  };
  const app = new Hono();

  app.use(requestId());
  app.use(requestLog(options.logFormat ?? "plain"));
  app.use(secureHeaders());
  // A refused origin gets its 403 (and its log line) before CORS can answer a preflight.
  app.use(originGuard(config, redact));
  app.use(corsHeaders(config));
  app.notFound((c) => {
    const methods = allowedMethods(app, c.req.path);
    if (methods.length === 0) {
      return reply(
        c,
        routeError("not_found", `There is no such route; the routes are ${ROUTES}.`),
        404,
      );
    }
    const message = `Use ${methods.join(" or ")} here.`;
    return reply(c, routeError("method_not_allowed", message), 405, { Allow: methods.join(", ") });
  });
  app.onError((error, c) => errorResponse(c, redact, error));

  const auth = authGuard(config, redact);
  const json = requireJson(redact);
  const idempotencyKey = captureIdempotencyKey(guard);
  // The body is read once, with MAX_MESSAGE_BYTES counted as it arrives (413); MAX_RECIPIENTS
  // is counted in the parsed JSON before validation builds any address (413).
  const body = (batch: boolean) => ({
    config,
    redact,
    precheck: (value: unknown) => recipientCountRefusal(value, config, { batch }),
  });

  app.post(
    "/send",
    auth,
    json,
    idempotencyKey,
    validJson(SendRequestSchema, body(false)),
    async (c) => {
      const message = admitMessage(validBody(c, SendRequestSchema), policy);
      if (isRefusal(message)) return reply(c, message.body, message.status);
      const refused = await guardSends(c, [message], { ...guard, batch: false });
      if (refused !== undefined) return refused;
      return handleSend(c, message, deps);
    },
  );

  app.post(
    "/send/batch",
    auth,
    json,
    idempotencyKey,
    validJson(BatchRequestSchema, body(true)),
    async (c) => {
      const messages = admitBatch(validBody(c, BatchRequestSchema).messages, policy);
      if (isRefusal(messages)) return reply(c, messages.body, messages.status);
      const refused = await guardSends(c, messages, { ...guard, batch: true });
      if (refused !== undefined) return refused;
      return handleBatch(c, messages, deps);
    },
  );

  app.get(
    "/health",
    healthGuard(auth),
    healthHandler({ redact, acquire, apiKeys: config.apiKeys.length > 0 }),
  );

  app.get("/openapi.json", openApiHandler(config));

  return app;
}

/**
 * The methods a route path answers (a GET route also answers HEAD): a request
 * that matched no route but whose path has one gets 405 with these in `Allow`.
 * The routes are plain paths, so comparing the path is the whole match.
 */
function allowedMethods(app: Hono, path: string): string[] {
  const methods = new Set<string>();
  for (const route of app.routes) {
    if (route.path !== path || route.method === "ALL") continue;
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
  }
  return [...methods];
}
