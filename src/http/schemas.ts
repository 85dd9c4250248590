/**
 * The valibot schemas of the HTTP API besides the message itself: the batch
 * request (from `request_schemas.ts`), the Result, the batch answer, the
 * health answer and the error bodies. The OpenAPI document is generated from
 * these and `MessageSchema`. Only the OpenAPI build and tests import this
 * module; the app validates with `request_schemas.ts`.
 *
 * @module
 */

import * as v from "valibot";
import { SMTP_PHASES } from "../smtp/types.ts";
import { HTTP_ERROR_TYPES } from "./problems.ts";

// One source per enumeration: the SMTP outcomes and phases from smtp/, the HTTP-only types on top.
const ERROR_TYPES = HTTP_ERROR_TYPES;
const PHASES = SMTP_PHASES;

/** The request bodies (validated at run time), re-exported with the response schemas. */
export { BatchRequestSchema, SendRequestSchema } from "./request_schemas.ts";

const TokenSchema = v.nullable(v.union([v.string(), v.number()]));

const ReplySchema = v.object({
  code: v.number(),
  enhancedCode: v.optional(v.string()),
  message: v.string(),
});

const RejectionSchema = v.object({
  address: v.string(),
  code: v.number(),
  enhancedCode: v.optional(v.string()),
  message: v.string(),
});

const IssueSchema = v.object({
  path: v.pipe(v.string(), v.description("Where, like `to[1]`; empty for the whole body.")),
  message: v.pipe(v.string(), v.description("What is wrong; the value is never repeated.")),
});

const ResultErrorSchema = v.object({
  type: v.picklist(ERROR_TYPES),
  message: v.string(),
  phase: v.optional(v.picklist(PHASES)),
  code: v.optional(v.number()),
  enhancedCode: v.optional(v.string()),
  issues: v.optional(v.array(IssueSchema)),
});

/** The outcome of one send: the synchronous body and the SSE `completed` data. */
export const ResultSchema = v.pipe(
  v.object({
    status: v.picklist(["sent", "failed", "cancelled"]),
    token: TokenSchema,
    messageId: v.optional(
      v.pipe(v.string(), v.description("Absent when the request was refused before sending.")),
    ),
    accepted: v.array(v.string()),
    rejected: v.array(RejectionSchema),
    response: v.optional(v.string()),
    dsn: v.optional(v.object({ requested: v.boolean(), supported: v.boolean() })),
    error: v.optional(ResultErrorSchema),
  }),
  v.metadata({ ref: "Result" }),
);

/** The synchronous answer of `POST /send/batch`, in input order. */
export const BatchResultSchema = v.pipe(
  v.object({ results: v.array(ResultSchema) }),
  v.metadata({ ref: "BatchResult" }),
);

/** A progress event of the SSE stream (`event: status`). */
export const StatusEventSchema = v.pipe(
  v.object({
    phase: v.picklist(PHASES),
    state: v.picklist(["started", "done"]),
    token: TokenSchema,
    index: v.optional(v.pipe(v.number(), v.description("Batch only: the message's position."))),
    recipient: v.optional(v.string()),
    reply: v.optional(ReplySchema),
  }),
  v.metadata({ ref: "StatusEvent" }),
);

/** The final SSE event of a batch (`event: done`). */
export const BatchDoneSchema = v.pipe(
  v.object({ sent: v.number(), failed: v.number(), cancelled: v.number() }),
  v.metadata({ ref: "BatchDone" }),
);

/** `GET /health`. */
export const HealthSchema = v.pipe(
  v.object({ status: v.picklist(["ok", "error"]), error: v.optional(ResultErrorSchema) }),
  v.metadata({ ref: "Health" }),
);

/** The body of routing errors (404, 405). */
export const RouteErrorSchema = v.pipe(
  v.object({
    error: v.object({ type: v.picklist(["not_found", "method_not_allowed"]), message: v.string() }),
  }),
  v.metadata({ ref: "RouteError" }),
);
