/**
 * The send handlers: one message or a batch, answered synchronously (the
 * Result as JSON) or as server-sent events (`status` events, then `completed`;
 * batches add `index` and end with `done`). A client that goes away cancels
 * every send that has not finished writing its message data; sends past that
 * point complete and their outcome is logged.
 *
 * @module
 */

import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Message } from "../message/schema.ts";
import { sendSettled, type SmtpClient } from "../smtp/client.ts";
import type { StatusEvent } from "../smtp/result.ts";
import type { Config } from "./config.ts";
import { headersForStatus, type HttpResult, statusOfResult } from "./problems.ts";
import type { Redact } from "./redact.ts";
import { EventStream } from "./sse.ts";

/** An SMTP client for the duration of one request. */
export interface ClientLease {
  /** The client to send with. */
  client: SmtpClient;
  /** Called once the request is done with the client. */
  release(): void;
}

/** What the handlers need from the app. */
export interface SendDependencies {
  /** The configuration (keepalive interval). */
  config: Config;
  /** Applied to every body, frame and log line. */
  redact: Redact;
  /** Provides the client for a request. */
  acquire(c: Context): ClientLease;
}

/** The SSE `status` data: the client's event plus the token (and index in batches). */
interface StatusData extends StatusEvent {
  token: unknown;
  index?: number;
}

/** Whether the request asks for server-sent events. */
function wantsEventStream(c: Context): boolean {
  return (c.req.header("Accept") ?? "").toLowerCase().includes("text/event-stream");
}

/** Answers `POST /send` for a validated message whose `from` is resolved. */
export async function handleSend(
  c: Context,
  message: Message,
  deps: SendDependencies,
): Promise<Response> {
  if (wantsEventStream(c)) return streamSends(c, [message], deps, { batch: false });
  const lease = deps.acquire(c);
  try {
    const result = await settle(c, lease.client, message, deps, {});
    const status = statusOfResult(result);
    return jsonBody(c, deps.redact, result, status, headersForStatus(status));
  } finally {
    lease.release();
  }
}

/** Answers `POST /send/batch`: every message concurrently, results in input order. */
export async function handleBatch(
  c: Context,
  messages: Message[],
  deps: SendDependencies,
): Promise<Response> {
  if (wantsEventStream(c)) return streamSends(c, messages, deps, { batch: true });
  const lease = deps.acquire(c);
  try {
    const results = await Promise.all(
      messages.map((message) => settle(c, lease.client, message, deps, {})),
    );
    return jsonBody(c, deps.redact, { results }, 200);
  } finally {
    lease.release();
  }
}

/** Counts a batch's results by status (the `done` event). */
export function countResults(
  results: readonly HttpResult[],
): { sent: number; failed: number; cancelled: number } {
  const counts = { sent: 0, failed: 0, cancelled: 0 };
  for (const result of results) counts[result.status]++;
  return counts;
}

/** A JSON response whose text went through the redactor. */
export function jsonBody(
  c: Context,
  redact: Redact,
  body: unknown,
  status: number,
  headers: Record<string, string> = {},
): Response {
  return c.newResponse(redact(JSON.stringify(body)), status as 200, {
    ...headers,
    "Content-Type": "application/json; charset=UTF-8",
  });
}

function streamSends(
  c: Context,
  messages: Message[],
  deps: SendDependencies,
  options: { batch: boolean },
): Response {
  c.header("X-Accel-Buffering", "no");
  // No onError argument: Hono would write the raw exception message to the client.
  return streamSSE(c, async (stream) => {
    const events = new EventStream(stream, {
      keepaliveMs: deps.config.keepaliveMs,
      redact: deps.redact,
    });
    const gone = new AbortController();
    stream.onAbort(() => gone.abort());
    const lease = deps.acquire(c);
    try {
      const results = await Promise.all(messages.map(async (message, i) => {
        const index = options.batch ? { index: i } : {};
        const token = message.token ?? null;
        const result = await settle(c, lease.client, message, deps, {
          gone: gone.signal,
          onStatus: (event) =>
            void events.emit("status", { ...index, ...statusData(event, token) }),
        });
        await events.emit("completed", { ...index, ...result });
        return result;
      }));
      if (options.batch) await events.emit("done", countResults(results));
    } catch (error) {
      // Not reached by SMTP outcomes (settle() resolves with them): a bug. The
      // client gets a sanitised Result, the log gets the details.
      logError(c, deps.redact, error);
      await events.emit("completed", internalErrorResult(null));
    } finally {
      // Every send has ended: give the client back before waiting on a slow reader.
      lease.release();
      await events.finish();
    }
  });
}

/** The SSE form of a status event: with the token; the AUTH reply text is left out. */
function statusData(event: StatusEvent, token: unknown): StatusData {
  const data: StatusData = { phase: event.phase, state: event.state, token };
  if (event.recipient !== undefined) data.recipient = event.recipient;
  if (event.reply !== undefined) {
    data.reply = event.phase === "auth"
      ? { code: event.reply.code, enhancedCode: event.reply.enhancedCode, message: "" }
      : event.reply;
  }
  return data;
}

/**
 * Sends one message and resolves with its Result whatever happens. The send
 * is cancelled when the request's signal or `gone` aborts; when the client
 * went away but the send completed anyway, the outcome is logged.
 */
async function settle(
  c: Context,
  client: SmtpClient,
  message: Message,
  deps: SendDependencies,
  options: { gone?: AbortSignal; onStatus?: (event: StatusEvent) => void },
): Promise<HttpResult> {
  const request = c.req.raw.signal;
  const cancel = new AbortController();
  const settled = Promise.withResolvers<void>();
  const abort = () => cancel.abort(new DOMException("The HTTP client went away.", "AbortError"));
  if (request.aborted || options.gone?.aborted) abort();
  request.addEventListener("abort", abort, { once: true });
  options.gone?.addEventListener("abort", abort, { once: true });
  try {
    const onStatus = (event: StatusEvent) => {
      // From the message data on, the send must complete even if the client leaves.
      if (event.phase === "message" && event.state === "started") {
        outliveRequest(c, settled.promise);
      }
      options.onStatus?.(event);
    };
    const result = await sendSettled(client, message, { signal: cancel.signal, onStatus });
    if (cancel.signal.aborted && result.status !== "cancelled") logLateOutcome(c, deps, result);
    return result;
  } catch (error) {
    logError(c, deps.redact, error);
    return internalErrorResult(message.token ?? null);
  } finally {
    settled.resolve();
    request.removeEventListener("abort", abort);
    options.gone?.removeEventListener("abort", abort);
  }
}

/**
 * On Workers, keeps the invocation alive until `work` settles, so a send whose
 * message data is on its way completes (and is logged) after the client went
 * away. Registered only then: before it, workerd cancelling the invocation on
 * a disconnect is exactly the abandonment the contract asks for. Other
 * runtimes have no execution context and keep running anyway.
 */
function outliveRequest(c: Context, work: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(work.catch(() => {}));
  } catch {
    // No execution context (Deno): nothing cancels the work with the request.
  }
}

/** The Result of a send that failed in an unexpected way: honest that the outcome is unknown. */
function internalErrorResult(token: unknown): HttpResult {
  return {
    status: "failed",
    token,
    accepted: [],
    rejected: [],
    error: {
      type: "unknown_outcome",
      message: "An internal error interrupted the send; the message may or may not have been " +
        "delivered. The server log has the details (look for the X-Request-Id).",
    },
  };
}

function requestIdOf(c: Context): string {
  return (c.get("requestId" as never) as string | undefined) ?? "-";
}

function logLateOutcome(c: Context, deps: SendDependencies, result: HttpResult): void {
  const outcome = result.status === "sent"
    ? `sent (${result.response ?? "no reply text"})`
    : `${result.status}: ${result.error?.type} ${result.error?.message ?? ""}`;
  console.info(deps.redact(
    `edgemail: request ${requestIdOf(c)}: the client went away after the message data was ` +
      `sent; message ${result.messageId} ${outcome}`,
  ));
}

/** Logs an unexpected error: name, message and stack, redacted. */
export function logError(c: Context, redact: Redact, error: unknown): void {
  const text = error instanceof Error
    ? (error.stack ?? `${error.name}: ${error.message}`)
    : String(error);
  console.error(redact(`edgemail: request ${requestIdOf(c)}: internal error: ${text}`));
}
