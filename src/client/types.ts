/**
 * The shapes the browser client sends and receives (contract sections 3 and 4b).
 *
 * @module
 */

import type { MessageInput } from "../message/schema.ts";
import type { SendResult, StatusEvent } from "../smtp/result.ts";

/**
 * The message as the HTTP function takes it (contract section 3).
 *
 * @example
 * ```ts
 * const message: EmailMessage = {
 *   from: "Ann <ann@example.com>",
 *   to: ["bob@example.org"],
 *   subject: "Hello",
 *   text: "Hi Bob",
 *   attachments: [{ filename: "a.txt", content: btoa("hello") }],
 * };
 * ```
 */
export type EmailMessage = MessageInput;

/**
 * A Result as the function answers it: `messageId` is absent when the
 * request was refused before a message was composed.
 *
 * @example
 * ```ts
 * const result: EmailResult = await sendEmail(baseUrl, message);
 * console.log(result.messageId, result.accepted, result.response);
 * ```
 */
export type EmailResult = Omit<SendResult, "messageId"> & { messageId?: string };

/**
 * A `status` event: one protocol step started or done.
 *
 * @example
 * ```ts
 * const onStatus = (event: EmailStatusEvent) =>
 *   console.log(event.index ?? "", event.phase, event.state, event.reply?.code ?? "");
 * ```
 */
export interface EmailStatusEvent extends StatusEvent {
  /** The message's `token`, or `null`. */
  token: unknown;
  /** The message's position in a batch (batches only). */
  index?: number;
}

/**
 * Options of `sendEmail` and `sendBatch`.
 *
 * @example
 * ```ts
 * const options: SendEmailOptions = {
 *   apiKey: "key-1",
 *   idempotencyKey: true,
 *   signal: AbortSignal.timeout(60_000),
 *   onStatus: (event) => console.log(event.phase, event.state),
 * };
 * ```
 */
export interface SendEmailOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Aborts the request. The promise then rejects with the signal's reason, as
   * `fetch` does: an `AbortError` DOMException for `controller.abort()`.
   */
  signal?: AbortSignal;
  /** Sent as `Idempotency-Key`; `true` sends a fresh `crypto.randomUUID()`. */
  idempotencyKey?: string | true;
  /**
   * Asks for server-sent events and receives every `status` event as it
   * arrives. If it throws, the request is cancelled and the promise rejects
   * with what it threw.
   */
  onStatus?: (event: EmailStatusEvent) => void;
  /** The `fetch` to use (a Workers service binding's, a test's); default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * What `sendBatch` resolves with: one Result per message, in input order.
 *
 * @example
 * ```ts
 * const { results }: BatchResult = await sendBatch(baseUrl, [m1, m2]);
 * const failed = results.filter((result) => result.status !== "sent");
 * ```
 */
export interface BatchResult {
  /** The Results, whatever each one's status. */
  results: EmailResult[];
}
