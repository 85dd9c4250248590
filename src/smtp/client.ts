/**
 * `SmtpClient`: validates and composes messages, queues each send on the
 * connection pool (`pool.ts`), and reports every completion once, as a
 * resolved or rejected promise and as a `completed` event (the .NET
 * `SendAsync` model). Options are checked in `options.ts`.
 *
 * @module
 */

import { composeMessage } from "../message/compose.ts";
import {
  isValidatedMessage,
  type MessageInput,
  parseMessage,
  type ValidatedMessage,
} from "../message/schema.ts";
import { isAbortError, SmtpError } from "./errors.ts";
import { resolvePoolOptions, resolveSessionOptions, type SmtpClientOptions } from "./options.ts";
import { ConnectionPool, type PoolSendReport } from "./pool.ts";
import { SmtpSession } from "./session.ts";
import type { Transaction } from "./transaction_plan.ts";
import type { SendResult, SmtpPhase, StatusEvent, StepOptions } from "./types.ts";
import type { SessionOptions } from "./handshake.ts";

export type { SmtpAuth } from "./handshake.ts";
export { MAX_TIMER_MS, type PoolOptions, type SmtpClientOptions } from "./options.ts";
export type { TlsMode } from "./types.ts";

/** Options of one send. */
export interface SendOptions {
  /** Cancels the send until the end of the message data has been written. */
  signal?: AbortSignal;
  /** Returned unchanged with the completion (default: the message's `token`). */
  token?: unknown;
  /**
   * Receives a progress event for each protocol step. The `message` step's
   * `started` event comes before any byte of the message data is written.
   */
  onStatus?: (event: StatusEvent) => void;
  /**
   * Called once, right after the end of the message data (the final dot, or
   * `BDAT … LAST`) was handed to the network, before the server's verdict:
   * from then on the message may have been delivered whatever happens, and it
   * is never sent again. Not called when the send ends before that point.
   */
  onDataWritten?: () => void;
  /**
   * Called once, as the message data is about to begin; the end of the data
   * (the final dot, or `BDAT … LAST`) is not written until the promise it
   * returns resolves, so what it records (an "about to be delivered" mark,
   * say) is stored before the message can be delivered. The rest of the
   * data, and other sends on the connection, go on meanwhile. If it rejects,
   * or does not settle within `timeoutMs`, the send fails before the end of
   * its data (`internal`, or `timeout`): nothing was delivered. Sends without
   * it never wait.
   */
  beforeDataEnd?: () => Promise<void> | void;
}

/** The detail of the `completed` event. */
export interface CompletedDetail {
  /** The result, whatever the outcome. */
  result: SendResult;
  /** The error, when the send did not succeed. */
  error?: unknown;
  /** Whether the send was cancelled. */
  cancelled: boolean;
  /** The caller's token. */
  token: unknown;
}

/**
 * Sends mail over SMTP. Several sends may run at once: they share a pool of
 * connections and never interleave on one connection; sends queued for one
 * connection are pipelined.
 *
 * @example
 * ```ts
 * await using client = new SmtpClient({ host: "smtp.example.com", auth: { username, password } });
 * const result = await client.send({ from: "a@example.com", to: "b@example.org", text: "Hi" });
 * ```
 */
export class SmtpClient extends EventTarget {
  #session: SessionOptions;
  #pool: ConnectionPool;
  #active = new Set<Promise<unknown>>();
  #closed = false;

  /** Validates `options`; throws a TypeError or RangeError naming the field. No I/O happens here. */
  constructor(options: SmtpClientOptions) {
    super();
    this.#session = resolveSessionOptions(options);
    this.#pool = new ConnectionPool(this.#session, resolvePoolOptions(options.pool));
  }

  /**
   * Sends `message`. Resolves with the result when the message was accepted;
   * rejects with an {@linkcode SmtpError} (its `result` holds the full result)
   * or an `AbortError`. The message is validated and snapshotted now, unless
   * it is a `ValidatedMessage` (what `parseMessage` returns: already valid
   * and frozen), which is sent as it is.
   */
  send(message: MessageInput | ValidatedMessage, options: SendOptions = {}): Promise<SendResult> {
    if (isValidatedMessage(message)) return this.#start(message, options);
    let parsed: ValidatedMessage;
    try {
      parsed = parseMessage(message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#start(parsed, options);
  }

  /**
   * Sends a message `parseMessage` (or `safeParseMessage`) returned, without
   * validating it again: one pass over a large message instead of two. Throws
   * a TypeError for anything else.
   */
  sendValidated(message: ValidatedMessage, options: SendOptions = {}): Promise<SendResult> {
    if (!isValidatedMessage(message)) {
      return Promise.reject(
        new TypeError(
          "sendValidated takes what parseMessage returned (a ValidatedMessage); use send().",
        ),
      );
    }
    return this.#start(message, options);
  }

  /**
   * Opens a connection, goes through greeting, EHLO, TLS and AUTH, and says
   * QUIT: a health check of the configuration. Throws an {@linkcode SmtpError}.
   */
  async verify(options: { signal?: AbortSignal } = {}): Promise<void> {
    const session = await SmtpSession.open(this.#session, { signal: options.signal });
    await session.quit();
  }

  /** Waits for sends in flight, then closes every connection. New sends are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#active]);
    await this.#pool.close();
  }

  /** Same as {@linkcode SmtpClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #start(message: ValidatedMessage, options: SendOptions): Promise<SendResult> {
    if (this.#closed) {
      return Promise.reject(
        new DOMException(
          "This SmtpClient is closed; create a new one to send.",
          "InvalidStateError",
        ),
      );
    }
    const run = this.#send(message, options);
    this.#active.add(run);
    // One handler for both outcomes: no catch-then-finally pair of promises per send.
    const forget = () => this.#active.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #send(message: ValidatedMessage, options: SendOptions): Promise<SendResult> {
    const token = options.token ?? message.token ?? null;
    const report: PoolSendReport = { dsnSupported: false };
    let phase: SmtpPhase = "connect";
    let dataWritten = false;
    let messageId = "";
    try {
      const composed = composeMessage(message);
      messageId = composed.messageId;
      const transaction: Transaction = {
        envelope: composed.envelope,
        size: composed.size,
        smtputf8: composed.smtputf8,
        eightBit: composed.eightBit,
        chunks: () => composed.chunks(),
        dsn: message.dsn,
        allowPartial: message.allowPartial ?? false,
      };
      const { beforeDataEnd } = options;
      // Once per send, also when it goes to a second connection.
      let hook: Promise<void> | undefined;
      const step: StepOptions = {
        signal: options.signal,
        beforeDataEnd: beforeDataEnd && (() => (hook ??= Promise.resolve().then(beforeDataEnd))),
        onStatus: (event) => {
          phase = event.phase;
          options.onStatus?.(event);
        },
        onDataWritten: () => {
          dataWritten = true;
          options.onDataWritten?.();
        },
      };
      const outcome = await this.#pool.send(transaction, step, report);
      const result: SendResult = { status: "sent", token, messageId, ...outcome };
      this.#complete({ result, cancelled: false, token });
      return result;
    } catch (error) {
      const base = { token, messageId };
      if (isAbortError(error)) {
        const result: SendResult = {
          status: "cancelled",
          ...base,
          accepted: [],
          rejected: [],
          error: {
            type: "cancelled",
            message:
              "The send was cancelled before the message was complete; nothing was delivered.",
            phase,
          },
        };
        if (message.dsn) result.dsn = { requested: true, supported: report.dsnSupported };
        // One AbortError per send, so the result can be found from it (signals may be shared).
        const abort = new DOMException("The send was cancelled.", "AbortError");
        cancelledResults.set(abort, result);
        this.#complete({ result, error: abort, cancelled: true, token });
        throw abort;
      }
      // An unexpected failure (not a typed SMTP one) delivered nothing unless the
      // end of the data was already written (contract section 3).
      const cause = error instanceof SmtpError ? error : unexpected(error, phase, dataWritten);
      const result = failedResult(cause, base);
      if (message.dsn) result.dsn = { requested: true, supported: report.dsnSupported };
      const smtpError = new SmtpError(cause.type, cause.message, {
        ...cause.options,
        token,
        result,
      });
      this.#complete({ result, error: smtpError, cancelled: false, token });
      throw smtpError;
    }
  }

  #complete(detail: CompletedDetail): void {
    this.dispatchEvent(new CustomEvent<CompletedDetail>("completed", { detail }));
  }
}

/** The error for a failure that is no SMTP outcome: a bug or a platform surprise. */
function unexpected(error: unknown, phase: SmtpPhase, dataWritten: boolean): SmtpError {
  const reason = (error as Error)?.message ?? "unknown error";
  return dataWritten
    ? new SmtpError(
      "unknown_outcome",
      `The send failed unexpectedly after the whole message was written (${reason}): it may ` +
        "or may not have been delivered. It was not retried.",
      { phase: "message", cause: error },
    )
    : new SmtpError(
      "internal",
      `The send failed unexpectedly before the message data was complete (${reason}); ` +
        "nothing was delivered.",
      { phase, cause: error },
    );
}

/**
 * Sends `message` and resolves with the {@linkcode SendResult} whatever the
 * outcome (sent, failed or cancelled). Only an invalid message rejects, with
 * the validation error.
 */
export async function sendSettled(
  client: SmtpClient,
  message: MessageInput | ValidatedMessage,
  options: SendOptions = {},
): Promise<SendResult> {
  try {
    return await client.send(message, options);
  } catch (error) {
    const result = resultOf(error);
    if (result) return result;
    throw error;
  }
}

const cancelledResults = new WeakMap<object, SendResult>();

/**
 * The full {@linkcode SendResult} behind an error `send` rejected with (an
 * `SmtpError` or the `AbortError` of a cancelled send); `undefined` for other errors.
 */
export function resultOf(error: unknown): SendResult | undefined {
  if (error instanceof SmtpError) return error.result;
  if (typeof error === "object" && error !== null) return cancelledResults.get(error);
  return undefined;
}

function failedResult(error: SmtpError, base: { token: unknown; messageId: string }): SendResult {
  const result: SendResult = {
    status: "failed",
    ...base,
    accepted: [],
    rejected: error.rejected,
    error: { type: error.type, message: error.message, phase: error.phase },
  };
  if (error.code !== undefined) result.error!.code = error.code;
  if (error.enhancedCode !== undefined) result.error!.enhancedCode = error.enhancedCode;
  if (error.response !== undefined) result.response = error.response;
  return result;
}
