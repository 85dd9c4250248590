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
import type { ValidatedMessage } from "../message/schema.ts";
import { sendSettled, type SmtpClient } from "../smtp/client.ts";
import type { StatusEvent } from "../smtp/result.ts";
import type { ClientLease } from "./client_lease.ts";
import { sendSessionOf } from "./idempotency.ts";
import { logError, requestIdOf } from "./logging.ts";
import { headersForStatus, type HttpResult, statusOfResult } from "./problems.ts";
import type { Redact } from "./redact.ts";
import { jsonBody } from "./responses.ts";
import { EventStream, eventStreamResponse } from "./sse.ts";

/** What the handlers need from the app. */
export interface SendDependencies {
  /** Interval of SSE `: keepalive` comments, in milliseconds. */
  keepaliveMs: number;
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

/**
 * Answers `POST /send` for a validated message whose `from` is resolved. A
 * `ValidatedMessage`: the client sends it as it is, without parsing it again.
 */
export async function handleSend(
  c: Context,
  message: ValidatedMessage,
  deps: SendDependencies,
): Promise<Response> {
  if (wantsEventStream(c)) return streamSends(c, [message], deps, { batch: false });
  const lease = deps.acquire(c);
  try {
    const result = await settle(c, lease.client, message, deps, {});
    // Stored (or released) before answering: a retry after this answer replays it.
    const session = sendSessionOf(c);
    await session?.finish([result]);
    const status = statusOfResult(result);
    return jsonBody(
      c,
      deps.redact,
      session?.view(result) ?? result,
      status,
      headersForStatus(status),
    );
  } finally {
    lease.release();
  }
}

/** Answers `POST /send/batch`: every message concurrently, results in input order. */
export async function handleBatch(
  c: Context,
  messages: ValidatedMessage[],
  deps: SendDependencies,
): Promise<Response> {
  if (wantsEventStream(c)) return streamSends(c, messages, deps, { batch: true });
  const lease = deps.acquire(c);
  try {
    const results = await Promise.all(
      messages.map((message, index) => settle(c, lease.client, message, deps, { index })),
    );
    const session = sendSessionOf(c);
    await session?.finish(results);
    const shown = session === undefined ? results : results.map((result) => session.view(result));
    return jsonBody(c, deps.redact, { results: shown }, 200);
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

function streamSends(
  c: Context,
  messages: ValidatedMessage[],
  deps: SendDependencies,
  options: { batch: boolean },
): Response {
  c.header("X-Accel-Buffering", "no");
  return eventStreamResponse(c, async (stream) => {
    const events = new EventStream(stream, {
      keepaliveMs: deps.keepaliveMs,
      redact: deps.redact,
    });
    const gone = new AbortController();
    stream.onAbort(() => gone.abort());
    const lease = deps.acquire(c);
    const session = sendSessionOf(c);
    try {
      const results = await Promise.all(messages.map(async (message, i) => {
        const index = options.batch ? { index: i } : {};
        const token = message.token ?? null;
        const result = await settle(c, lease.client, message, deps, {
          index: i,
          gone: gone.signal,
          onStatus: (event) => {
            const data = statusData(event, token);
            if (data.reply !== undefined && session !== undefined) {
              data.reply = session.viewReply(data.reply);
            }
            void events.emit("status", { ...index, ...data });
          },
        });
        if (!options.batch) await session?.finish([result]);
        await events.emit("completed", { ...index, ...(session?.view(result) ?? result) });
        return result;
      }));
      if (options.batch) await session?.finish(results);
      if (options.batch) await events.emit("done", countResults(results));
    } catch (error) {
      // Not reached by SMTP outcomes (settle() resolves with them): a bug. The
      // client gets a sanitised Result, the log gets the details.
      logError(c, deps.redact, error);
      await session?.abandon();
      // Which sends had written their data is not known here: say so.
      await events.emit("completed", internalErrorResult(null, true));
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
  message: ValidatedMessage,
  deps: SendDependencies,
  options: { index?: number; gone?: AbortSignal; onStatus?: (event: StatusEvent) => void },
): Promise<HttpResult> {
  const request = c.req.raw.signal;
  const cancel = new AbortController();
  const settled = Promise.withResolvers<void>();
  const abort = () => cancel.abort(new DOMException("The HTTP client went away.", "AbortError"));
  if (request.aborted || options.gone?.aborted) abort();
  request.addEventListener("abort", abort, { once: true });
  options.gone?.addEventListener("abort", abort, { once: true });
  // Whether the end of the data left: only then can a failure here be an unknown outcome.
  let dataWritten = false;
  try {
    const onStatus = (event: StatusEvent) => {
      // From the message data on, the send must complete even if the client leaves.
      if (event.phase === "message" && event.state === "started") {
        outliveRequest(c, settled.promise);
      }
      options.onStatus?.(event);
    };
    // An Idempotency-Key claim is marked before the end of the data is written: if this
    // process dies from then on, a retry is told unknown_outcome instead of sending again.
    const beforeDataEnd = sendSessionOf(c)?.beforeDataEnd(options.index ?? 0);
    const result = await sendSettled(client, message, {
      signal: cancel.signal,
      onStatus,
      beforeDataEnd,
      onDataWritten: () => void (dataWritten = true),
    });
    if (cancel.signal.aborted && result.status !== "cancelled") logLateOutcome(c, deps, result);
    return result;
  } catch (error) {
    logError(c, deps.redact, error);
    return internalErrorResult(message.token ?? null, dataWritten);
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
  executionContextOf(c)?.waitUntil(work.catch(() => {}));
}

/** Each request's execution context, or null where there is none (Deno). */
const executionContexts = new WeakMap<
  Context,
  { waitUntil(work: Promise<unknown>): void } | null
>();

/**
 * `c.executionCtx`, asked once per request: where there is none, Hono's
 * getter throws, and building that error for every message of a batch cost
 * 7.5 µs a message (5 % of a batch's CPU at RTT 0).
 */
function executionContextOf(c: Context): { waitUntil(work: Promise<unknown>): void } | null {
  let context = executionContexts.get(c);
  if (context === undefined) {
    try {
      context = c.executionCtx;
    } catch {
      context = null; // No execution context (Deno): nothing cancels the work with the request.
    }
    executionContexts.set(c, context);
  }
  return context;
}

/** The Result of a send that failed in an unexpected way: honest that the outcome is unknown. */
/**
 * The Result of a send a bug interrupted: `unknown_outcome` once the end of its
 * data was written (it may have been delivered), `internal` before (it was not).
 */
function internalErrorResult(token: unknown, dataWritten: boolean): HttpResult {
  return {
    status: "failed",
    token,
    accepted: [],
    rejected: [],
    error: dataWritten
      ? {
        type: "unknown_outcome",
        message: "An internal error interrupted the send after the whole message was sent: it " +
          "may or may not have been delivered. The server log has the details (look for the " +
          "X-Request-Id).",
      }
      : {
        type: "internal",
        message: "An internal error interrupted the send before the message was sent: it was " +
          "not delivered. The server log has the details (look for the X-Request-Id).",
      },
  };
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
