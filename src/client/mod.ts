/**
 * The edgemail browser client: send through a running edgemail function from
 * a web page, Deno, Workers or Node 18+ (web-standard `fetch` and streams
 * only). With `onStatus` each protocol step arrives live over server-sent
 * events; without it, one JSON request.
 *
 * ```ts
 * import { EdgemailError, sendEmail } from "@edgemail/edgemail/client";
 *
 * try {
 *   const result = await sendEmail("http://127.0.0.1:8000", {
 *     to: "bob@example.org",
 *     subject: "Hello",
 *     text: "Hi Bob",
 *   }, { onStatus: (event) => console.log(event.phase, event.state, event.reply?.code) });
 *   console.log("sent", result.messageId);
 * } catch (error) {
 *   if (error instanceof EdgemailError) console.log(error.type, error.status, error.message);
 * }
 * ```
 *
 * A prebuilt, minified browser module of this client is checked in at
 * `src/client/dist/edgemail_client.js` (`deno task build:client`).
 *
 * @module
 */

import { request, resultError } from "./request.ts";
import type { BatchResult, EmailMessage, EmailResult, SendEmailOptions } from "./types.ts";

export { EdgemailError, type EdgemailErrorOptions, type EdgemailErrorType } from "./error.ts";
export type {
  BatchResult,
  EmailMessage,
  EmailResult,
  EmailStatusEvent,
  SendEmailOptions,
} from "./types.ts";
// The shapes those types are made of, so that the client's API is documented in full.
export type { AddressInput, AddressListInput } from "../message/address_schema.ts";
export type { AttachmentInput } from "../message/attachment_schema.ts";
export type { DsnOptions, MessageInput } from "../message/schema.ts";
export type { ValidationIssue } from "../message/validation_issues.ts";
// The Result types: DsnOutcome, RecipientRejection, ReplySummary, ResultError, SendResult, StatusEvent.
export type * from "../smtp/result.ts";
export type { SmtpErrorType, SmtpPhase } from "../smtp/errors.ts";

/**
 * Sends one message through the function at `baseUrl` (`POST <baseUrl>/send`).
 *
 * Resolves with the Result when it was sent. Otherwise rejects with an
 * {@linkcode EdgemailError} (`type`, `status`, `result`, `issues`,
 * `retryAfter`), or with an `AbortError` when `options.signal` aborts. A
 * server-sent event stream that ends before its `completed` event rejects
 * with type `unknown_outcome` (status 502): the message may have been sent.
 *
 * @example
 * ```ts
 * import { sendEmail } from "@edgemail/edgemail/client";
 *
 * const controller = new AbortController();
 * const result = await sendEmail("https://mail.example.com", {
 *   from: "Shop <shop@example.com>",
 *   to: ["bob@example.org"],
 *   subject: "Your order",
 *   html: "<p>Thanks!</p>",
 * }, {
 *   apiKey: "key-1",
 *   idempotencyKey: true,
 *   signal: controller.signal,
 *   onStatus: ({ phase, state, reply }) => console.log(phase, state, reply?.code),
 * });
 * console.log(result.accepted);
 * ```
 */
export async function sendEmail(
  baseUrl: string | URL,
  message: EmailMessage,
  options: SendEmailOptions = {},
): Promise<EmailResult> {
  const result = await request(baseUrl, "/send", message, options) as EmailResult;
  if (result.status !== "sent") throw resultError(result);
  return result;
}

/**
 * Sends several messages in one request (`POST <baseUrl>/send/batch`), which
 * the function sends concurrently over shared connections.
 *
 * Resolves with `{ results }`, one Result per message in input order,
 * whatever each one's status; `onStatus` events carry the message's
 * `index`. Rejects with an {@linkcode EdgemailError} only when the request
 * as a whole is refused (validation, auth, too large…) or its answer is
 * lost, and with an `AbortError` when `options.signal` aborts.
 *
 * @example
 * ```ts
 * import { sendBatch } from "@edgemail/edgemail/client";
 *
 * const { results } = await sendBatch("https://mail.example.com", [
 *   { to: "ann@example.org", subject: "Hi Ann", text: "…" },
 *   { to: "bob@example.org", subject: "Hi Bob", text: "…" },
 * ], { apiKey: "key-1", onStatus: (event) => console.log(event.index, event.phase) });
 * const failed = results.filter((result) => result.status !== "sent");
 * ```
 */
export async function sendBatch(
  baseUrl: string | URL,
  messages: EmailMessage[],
  options: SendEmailOptions = {},
): Promise<BatchResult> {
  if (!Array.isArray(messages)) throw new TypeError("messages must be an array");
  return await request(
    baseUrl,
    "/send/batch",
    { messages },
    options,
    messages.length,
  ) as BatchResult;
}
