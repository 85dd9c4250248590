/**
 * The valibot schemas of the request bodies: what the send routes validate at
 * run time. Kept apart from the response schemas in `schemas.ts`, which only
 * the OpenAPI build and tests need: a bundler keeps every schema a module
 * builds at its top level, used or not, so the Worker imports only this file.
 *
 * @module
 */

import * as v from "valibot";
import { ValidatedMessageSchema } from "../message/schema.ts";

// ValidatedMessageSchema: what a route validated is sent as it is (SmtpClient.sendValidated).

/** A message as the request body of `POST /send` (`components/schemas/Message`). */
export const SendRequestSchema = v.pipe(ValidatedMessageSchema, v.metadata({ ref: "Message" }));

/** The body of `POST /send/batch`: 1 or more messages (at most `MAX_BATCH`, checked apart). */
export const BatchRequestSchema = v.pipe(
  v.strictObject(
    {
      messages: v.pipe(
        v.array(ValidatedMessageSchema, "must be an array of messages"),
        v.minLength(1, "must hold at least one message"),
      ),
    },
    (issue) =>
      issue.path === undefined
        ? 'must be an object { "messages": [ … ] }'
        : issue.expected === "never"
        ? "is not a known field"
        : "is required",
  ),
  v.metadata({ ref: "BatchRequest" }),
);
