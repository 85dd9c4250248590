/**
 * The OpenAPI document of the HTTP API (`GET /openapi.json`): route
 * descriptions and the handler that serves the document generated from the
 * valibot schemas.
 *
 * @module
 */

import type { Hono, MiddlewareHandler } from "hono";
import { describeRoute, openAPIRouteHandler, resolver } from "hono-openapi";
import type { Config } from "./config.ts";
import {
  BatchDoneSchema,
  BatchResultSchema,
  HealthSchema,
  ResultSchema,
  RouteErrorSchema,
  StatusEventSchema,
} from "./schemas.ts";

/** The version of the HTTP API in the OpenAPI document. */
export const API_VERSION = "1.0.0";

const jsonResult = { "application/json": { schema: resolver(ResultSchema) } };

/** The description of `POST /send`. */
export function describeSend(config: Config): MiddlewareHandler {
  return describeRoute({
    summary: "Send one message",
    description: "Answers with the Result. With `Accept: text/event-stream` it answers 200 at " +
      "once and streams `status` events, then `completed` (the Result). " +
      `At most ${config.maxRecipients} recipients; body at most ${config.maxMessageBytes} bytes.`,
    responses: {
      200: {
        description: "Sent (JSON), or the event stream (SSE): `event: status` (StatusEvent) " +
          "per step, then `event: completed` (Result).",
        content: {
          ...jsonResult,
          "text/event-stream": { schema: resolver(StatusEventSchema) },
        },
      },
      ...errorResponses(),
    },
  });
}

/** The description of `POST /send/batch`. */
export function describeBatch(config: Config): MiddlewareHandler {
  return describeRoute({
    summary: "Send several messages",
    description:
      `1 to ${config.maxBatch} messages, sent concurrently. Always 200 with one Result ` +
      "per message in input order. With SSE, `status` and `completed` events carry `index`, " +
      "and a final `event: done` counts the outcomes.",
    responses: {
      200: {
        description: "The results (JSON), or the event stream (SSE): `status` and " +
          "`completed` events with `index`, then `event: done` (BatchDone).",
        content: {
          "application/json": { schema: resolver(BatchResultSchema) },
          "text/event-stream": { schema: resolver(BatchDoneSchema) },
        },
      },
      ...errorResponses(),
    },
  });
}

/** The description of `GET /health`. */
export function describeHealth(): MiddlewareHandler {
  return describeRoute({
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
  });
}

/** The `GET /openapi.json` handler: the document of every route described in `app`. */
export function openApiHandler(app: Hono, config: Config): MiddlewareHandler {
  return openAPIRouteHandler(app, {
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
  });
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
