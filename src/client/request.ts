/**
 * One request to the function: JSON, or server-sent events over POST parsed
 * with npm:eventsource-parser. Every way it can end becomes a value, an
 * {@linkcode EdgemailError} or an `AbortError`. Written for a small bundle.
 *
 * @module
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";
import {
  EdgemailError,
  type EdgemailErrorOptions,
  type EdgemailErrorType,
  STATUS_BY_TYPE,
  typeForStatus,
} from "./error.ts";
import type { EmailResult, SendEmailOptions } from "./types.ts";

/** What the errors of one response carry: its status and headers. */
type ResponseInfo = Pick<EdgemailErrorOptions, "status" | "retryAfter">;

/** An {@linkcode EdgemailError} of `type`, by default with the table's status. */
function fail(
  message: string,
  type: EdgemailErrorType,
  options?: Partial<EdgemailErrorOptions>,
): EdgemailError {
  return new EdgemailError(message, { status: STATUS_BY_TYPE[type] ?? 500, ...options, type });
}

/**
 * POSTs `body` as JSON to `<base><path>` and resolves with the answer: a
 * Result, or for a batch of `count` messages `{ results }`.
 */
export async function request(
  base: string | URL,
  path: string,
  body: unknown,
  options: SendEmailOptions,
  count?: number,
): Promise<unknown> {
  const { signal, idempotencyKey: key } = options;
  const url = String(base).replace(/\/+$/, "") + path;
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (options.onStatus) headers.Accept = "text/event-stream";
  if (options.apiKey) headers.Authorization = "Bearer " + options.apiKey;
  if (key) headers["Idempotency-Key"] = key === true ? crypto.randomUUID() : key;
  // Once the signal has aborted, every failure is its reason, as with fetch: for
  // `controller.abort()` an AbortError DOMException.
  const orAbort = (error: unknown) => signal?.aborted ? signal.reason : error;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal,
    });
  } catch (cause) {
    throw orAbort(fail(
      `Could not reach ${url} (${cause}): is the function running, and does its CORS_ORIGINS ` +
        "allow this page?",
      "connection",
      { status: 0, cause },
    ));
  }
  const info: ResponseInfo = {
    status: response.status,
    retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
  };
  // The function took the request: losing its answer leaves the outcome unknown.
  const read = <T>(promise: Promise<T>) =>
    promise.catch((cause) => {
      throw orAbort(lostError(url, cause));
    });
  const type = response.headers.get("Content-Type") ?? "";
  try {
    if (response.ok && /^text\/event-stream/i.test(type)) {
      return await readEvents(response, url, read, options, count);
    }
    const text = await read(response.text());
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON: a proxy's error page, or not the function at all (reported below).
    }
    if (response.ok && (count === undefined ? data?.status : data?.results)) {
      return data;
    }
    if (!response.ok && data?.error?.type) throw resultError(data, info);
    throw fail(
      `${url} answered ${info.status} ${type}, not as edgemail does: check the URL.`,
      typeForStatus(info.status),
      info,
    );
  } catch (error) {
    throw orAbort(error);
  }
}

/** The error for a Result that is not `sent`; the status is the table's unless `info` has one. */
export function resultError(result: EmailResult, info?: ResponseInfo): EdgemailError {
  const error = result.error as EmailResult["error"] & { issues?: [] };
  // Every Result that is not `sent` has an error (contract section 3).
  return fail(error?.message ?? result.status, error?.type ?? "protocol", {
    ...info,
    result,
    issues: error?.issues,
  });
}

/** Reads the event stream: `status` events to `onStatus`, until the outcome is in. */
async function readEvents(
  response: Response,
  url: string,
  read: <T>(promise: Promise<T>) => Promise<T>,
  options: SendEmailOptions,
  count?: number,
): Promise<unknown> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const results: EmailResult[] = [];
  // A batch is complete with one Result per message; anything less is a cut-off answer.
  const outcome = () => {
    if (Object.keys(results).length === count) return { results };
    throw lostError(url);
  };
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (let chunk; !(chunk = await read(reader.read())).done;) {
      parser.feed(chunk.value);
      for (const { event, data } of events.splice(0)) {
        // An onStatus that aborted sees no further events.
        options.signal?.throwIfAborted();
        let payload;
        try {
          payload = JSON.parse(data);
        } catch {
          throw fail(`${url} sent a ${event} event that is not JSON.`, "protocol");
        }
        if (event === "status") options.onStatus!(payload);
        else if (event === "completed" && count === undefined) return payload;
        else if (event === "completed") results[payload.index] = payload;
        else if (event === "done") return outcome();
      }
    }
  } finally {
    // Ends the request once the outcome is in, or on any error (a throwing onStatus).
    reader.cancel().catch(() => {});
  }
  return outcome();
}

/** The answer was cut off after the function took the request: the message may have gone out. */
function lostError(url: string, cause?: unknown): EdgemailError {
  return fail(
    `The answer from ${url} was cut off: the message may have been sent.`,
    "unknown_outcome",
    { cause },
  );
}

/**
 * `Retry-After` in seconds. Only the delay-seconds form, which edgemail and
 * common proxies send; an HTTP date (rare) gives `undefined`, to keep the
 * bundle small.
 */
function retryAfterSeconds(value: string | null): number | undefined {
  const seconds = Number(value);
  return value && seconds >= 0 ? seconds : undefined;
}
