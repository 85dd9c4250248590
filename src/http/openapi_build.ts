/**
 * Generates the OpenAPI 3.1 document of the HTTP API from the valibot schemas
 * (`deno task build:openapi` writes `src/http/openapi.json`). The function
 * serves that prebuilt file ({@link ./openapi.ts}), so the JSON Schema
 * converter is a build-time tool and never part of a deployed function.
 * A test fails when the checked-in file differs from what this generates.
 *
 * @module
 */

import { toJsonSchemaDefs } from "@valibot/to-json-schema";
import type * as v from "valibot";
import denoJson from "../../deno.json" with { type: "json" };
import { AddressListSchema, AddressSchema } from "../message/address_schema.ts";
import { ValidatedMessageSchema } from "../message/schema.ts";
import {
  BatchDoneSchema,
  BatchRequestSchema,
  BatchResultSchema,
  HealthSchema,
  ResultSchema,
  RouteErrorSchema,
  StatusEventSchema,
} from "./schemas.ts";

/** Where the generated document is checked in, for readers and tools. */
export const OPENAPI_PATH = new URL("./openapi.json", import.meta.url);

/**
 * Where the function's copy is checked in: the same document, minified and
 * gzipped, as base64 in a module (≈4 KB instead of ≈17 KB in the Worker bundle).
 */
export const OPENAPI_PACKED_PATH = new URL("./openapi_packed.ts", import.meta.url);

type AnySchema = v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>;

/** The named schemas, each emitted once under `components/schemas` and referenced. */
const DEFINITIONS: Record<string, AnySchema> = {
  Address: AddressSchema as AnySchema,
  AddressList: AddressListSchema as AnySchema,
  // The request schemas validate with it; the document is MessageSchema's (the seal is no shape).
  Message: ValidatedMessageSchema as AnySchema,
  BatchRequest: BatchRequestSchema as AnySchema,
  Result: ResultSchema as AnySchema,
  BatchResult: BatchResultSchema as AnySchema,
  StatusEvent: StatusEventSchema as AnySchema,
  BatchDone: BatchDoneSchema as AnySchema,
  Health: HealthSchema as AnySchema,
  RouteError: RouteErrorSchema as AnySchema,
};

const CONVERSION = {
  target: "draft-2020-12",
  definitions: DEFINITIONS,
  // The message schema checks what JSON Schema cannot say (base64, address syntax): those
  // checks stay in valibot; the document says the shape.
  errorMode: "ignore",
  overrideRef: ({ referenceId }: { referenceId: string }) => `#/components/schemas/${referenceId}`,
} as const;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** A JSON response whose body is the named schema. */
function jsonResponse(description: string, schema: string, headers?: Record<string, unknown>) {
  return {
    description,
    ...(headers === undefined ? {} : { headers }),
    content: { "application/json": { schema: ref(schema) } },
  };
}

const RETRY_AFTER = {
  "Retry-After": {
    description: "Seconds to wait before trying again.",
    schema: { type: "integer", minimum: 0 },
  },
};

const RATE_LIMIT_HEADERS = {
  ...RETRY_AFTER,
  "RateLimit-Policy": {
    description: "The limit (draft-ietf-httpapi-ratelimit-headers-11).",
    schema: { type: "string" },
  },
  RateLimit: {
    description: "What is left of the limit in this window.",
    schema: { type: "string" },
  },
};

const IDEMPOTENCY_KEY = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description: "1–255 visible ASCII characters, no space. A retry with the same key and the " +
    "same body sends nothing and answers the stored outcome (`Idempotent-Replayed: true`).",
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7E]+$" },
};

/** The error answers of both send routes (contract section 3, status table). */
function sendErrors() {
  const failed = (description: string, headers?: Record<string, unknown>) =>
    jsonResponse(description, "Result", headers);
  return {
    400: failed(
      "`validation`: the body is not JSON or fails the schema; `error.issues` lists each " +
        "problem with its path. The input is never echoed.",
    ),
    401: failed("`unauthorized`: the API key is missing or wrong."),
    403: failed("`forbidden`: the sender, a recipient or the browser origin is not allowed."),
    409: failed("`conflict`: a request with this Idempotency-Key is in progress.", RETRY_AFTER),
    413: failed("`too_large`: the body (`MAX_MESSAGE_BYTES`), the recipients or the batch."),
    415: failed("`unsupported_media_type`: the body is not `application/json`."),
    422: failed(
      "`rejected`: the server permanently refused; or `idempotency_mismatch`: the " +
        "Idempotency-Key was used with another body.",
    ),
    429: failed("`rate_limited`: over `RATE_LIMIT`; nothing was sent.", RATE_LIMIT_HEADERS),
    500: failed("`internal`: an unexpected failure before any data was written."),
    501: failed("`idempotency_unavailable`: Idempotency-Key on a platform with no store."),
    502: failed(
      "`connection`, `tls`, `auth`, `protocol`, or `unknown_outcome` (the message may have " +
        "been delivered: never retried automatically).",
    ),
    503: failed("`transient`: a temporary (4xx) refusal.", RETRY_AFTER),
    504: failed("`timeout`: an SMTP step passed its deadline (`SMTP_TIMEOUT_MS`)."),
  };
}

const EVENT_STREAM = {
  "text/event-stream": {
    schema: {
      type: "string",
      description: "Server-sent events; each `data` line is JSON of the schema its event names.",
    },
  },
};

/** The OpenAPI document, as `GET /openapi.json` serves it before its per-deployment parts. */
export function buildOpenApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "edgemail",
      version: denoJson.version,
      description: "Send email over SMTP from an HTTP function. Every send answers with a " +
        "Result; with `Accept: text/event-stream` the progress streams as server-sent events.",
      license: { name: "MIT", identifier: "MIT" },
    },
    servers: [{ url: "http://127.0.0.1:8000", description: "`deno task dev`" }],
    paths: {
      "/send": {
        post: {
          operationId: "send",
          summary: "Send one message",
          description: "Answers with the Result. With `Accept: text/event-stream` it answers " +
            "200 at once and streams `event: status` (StatusEvent) per protocol step, then " +
            "`event: completed` (Result). At most `MAX_RECIPIENTS` (50) recipients.",
          parameters: [IDEMPOTENCY_KEY],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("Message") } },
          },
          responses: {
            200: {
              description: "Sent (JSON: the Result), or the event stream (SSE): " +
                "`status` events (StatusEvent), then `completed` (Result).",
              content: { "application/json": { schema: ref("Result") }, ...EVENT_STREAM },
            },
            ...sendErrors(),
          },
        },
      },
      "/send/batch": {
        post: {
          operationId: "sendBatch",
          summary: "Send several messages",
          description: "1 to `MAX_BATCH` (100) messages, sent concurrently. Always 200 with one " +
            "Result per message, in input order. With SSE, `status` and `completed` events " +
            "carry `index`, and a final `event: done` (BatchDone) counts the outcomes.",
          parameters: [IDEMPOTENCY_KEY],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("BatchRequest") } },
          },
          responses: {
            200: {
              description: "The results (JSON: BatchResult), or the event stream (SSE): " +
                "`status` and `completed` events with `index`, then `done` (BatchDone).",
              content: { "application/json": { schema: ref("BatchResult") }, ...EVENT_STREAM },
            },
            ...sendErrors(),
          },
        },
      },
      "/health": {
        get: {
          operationId: "health",
          // Open without a key, also when API_KEYS is set (then `?smtp=1` needs one).
          security: [],
          summary: "Health check",
          description: '`{ "status": "ok" }`. With `?smtp=1` it also opens an SMTP session ' +
            "(greeting, EHLO, TLS, AUTH, QUIT); that needs the API key when keys are set.",
          parameters: [{
            name: "smtp",
            in: "query",
            required: false,
            description: "`1` to check the SMTP session too.",
            schema: { type: "string", enum: ["1", "0"] },
          }],
          responses: {
            200: jsonResponse("Healthy.", "Health"),
            401: jsonResponse("`?smtp=1` without the API key.", "Result"),
            502: jsonResponse("The SMTP check failed; `error` says how.", "Health"),
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          security: [],
          summary: "This document",
          responses: {
            200: {
              description: "The OpenAPI 3.1 document.",
              content: { "application/json": { schema: { type: "object" } } },
            },
          },
        },
      },
    },
    components: {
      schemas: withoutRefMetadata(toJsonSchemaDefs(DEFINITIONS, CONVERSION)),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "One of `API_KEYS`." },
      },
    },
  };
}

/** Drops the `ref` metadata (the schemas' component names) the converter copies into each. */
function withoutRefMetadata(schemas: Record<string, object>): Record<string, object> {
  return Object.fromEntries(
    Object.entries(schemas).map(([name, schema]) => {
      const { ref: _, ...rest } = schema as Record<string, unknown>;
      return [name, rest];
    }),
  );
}

/** The document as checked in: JSON with two-space indents and a final newline. */
export function openApiText(): string {
  return JSON.stringify(buildOpenApiDocument(), null, 2) + "\n";
}

/** The module that carries the packed document (see {@linkcode OPENAPI_PACKED_PATH}). */
export async function packedModuleText(): Promise<string> {
  const json = JSON.stringify(buildOpenApiDocument());
  const gzipped = await new Response(
    new Blob([json]).stream().pipeThrough(new CompressionStream("gzip")),
  ).bytes();
  return [
    "// Generated by `deno task build:openapi` from src/http/openapi_build.ts: do not edit.",
    "// src/http/openapi.json is the same document, readable.",
    "",
    "/** The OpenAPI document: minified JSON, gzipped, base64. */",
    `export const OPENAPI_GZIP_BASE64 =\n  "${gzipped.toBase64()}";`,
    "",
  ].join("\n");
}

if (import.meta.main) {
  await Deno.writeTextFile(OPENAPI_PATH, openApiText());
  await Deno.writeTextFile(OPENAPI_PACKED_PATH, await packedModuleText());
  console.log(`wrote ${OPENAPI_PATH.pathname} and ${OPENAPI_PACKED_PATH.pathname}`);
}
