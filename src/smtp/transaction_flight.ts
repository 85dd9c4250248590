/**
 * A send on its way through a connection: what the pool hands a stream
 * ({@linkcode QueuedSend}, from a {@linkcode SendSource}), how it ends
 * ({@linkcode SendSettlement}), and the per-transaction state the stream
 * keeps ({@linkcode Flight}): the replies so far, whether the end of its
 * data is committed or written, its cancellation, and the `beforeDataEnd`
 * hook that holds the end of its data. Settled exactly once.
 *
 * @module
 */

import { abortErrorFrom } from "./deadline.ts";
import { SmtpError } from "./errors.ts";
import type { SmtpReply } from "./reply.ts";
import type { Plan, Transaction, TransactionOutcome } from "./transaction_plan.ts";
import type { TransactionReplies } from "./transaction_replies.ts";
import type { SmtpPhase, StepOptions } from "./types.ts";
import { describe } from "./wire.ts";

/** How a queued send ended on this connection. */
export type SendSettlement =
  | { ok: true; outcome: TransactionOutcome }
  | {
    ok: false;
    error: unknown;
    /**
     * Nothing was delivered, and the fault was the connection's (lost, closed
     * with 421, or refusing our pipelining): the send may go to a new connection.
     */
    retry: boolean;
    /** The server refused our pipelining: the new connection should not pipeline. */
    lockStep?: boolean;
  };

/** A send handed to a connection. */
export interface QueuedSend {
  /** The message. */
  readonly transaction: Transaction;
  /** Its cancellation and progress callbacks. */
  readonly step: StepOptions;
  /** Ends the send; called exactly once by the stream that took it. */
  settle(settlement: SendSettlement): void;
}

/** Where a stream gets its sends from (the pool's queue). */
export interface SendSource {
  /** The next send for this connection, or `undefined` when there is none (yet). */
  take(): QueuedSend | undefined;
}

/** One transaction on its way through the stream, with the replies it has so far. */
export class Flight implements TransactionReplies {
  /** The send this transaction runs. */
  readonly send: QueuedSend;
  /** Its message. */
  readonly tx: Transaction;
  /** Its cancellation and progress callbacks. */
  readonly step: StepOptions;
  /** BDAT (CHUNKING) or DATA. */
  readonly chunked: boolean;
  /** Transactions this connection started before this one. */
  readonly ordinal: number;
  /** The server advertised DSN. */
  readonly dsnSupported: boolean;
  /** MAIL FROM and the RCPTs, without CRLF. */
  readonly commands: string[];
  /** The reply to MAIL FROM. */
  mailReply?: SmtpReply;
  /** The replies to the RCPTs so far. */
  rcptReplies: SmtpReply[] = [];
  /** The reply to DATA. */
  dataReply?: SmtpReply;
  /** The replies to the BDAT chunks before the last. */
  chunkReplies: SmtpReply[] = [];
  /** The reply to the final dot or to `BDAT … LAST`. */
  endReply?: SmtpReply;
  /** The end of the data is in the output (committed: cancellation no longer applies). */
  endQueued = false;
  /** The end of the data was handed to the network. */
  endWritten = false;
  /** The transaction was abandoned (RSET or no data) after it was cancelled or refused. */
  abandoned = false;
  /** An RSET went out after this transaction's commands. */
  resetFollows = false;
  /** The send has its settlement. */
  settled = false;
  /** Resolves when the reply to DATA has been read (or the stream failed). */
  readonly dataAnswered: Promise<void>;
  #answerData!: () => void;
  #onAbort?: () => void;
  /** What `step.beforeDataEnd` came to: nothing when the end may go, else the send's error. */
  #hook?: Promise<SmtpError | undefined>;
  #hookSettled = false;

  /** The flight of `send`, planned as `plan`, the `ordinal`-th on its connection. */
  constructor(send: QueuedSend, plan: Plan, ordinal: number) {
    this.send = send;
    this.tx = send.transaction;
    this.step = send.step;
    this.chunked = plan.chunked;
    this.ordinal = ordinal;
    this.dsnSupported = plan.dsnSupported;
    this.commands = plan.commands;
    this.dataAnswered = new Promise((resolve) => (this.#answerData = resolve));
  }

  /** Which step a failure now belongs to. */
  get phase(): SmtpPhase {
    if (this.endQueued || this.dataReply?.code === 354) return "message";
    if (!this.mailReply) return "mail";
    if (this.rcptReplies.length < this.tx.envelope.to.length) return "rcpt";
    return this.chunked ? "message" : "data";
  }

  /** Resolves {@linkcode Flight.dataAnswered}. */
  answerData(): void {
    this.#answerData();
  }

  /** Settles the send early when the caller cancels before the end of the data is committed. */
  watchCancellation(onCancelled: () => void): void {
    const signal = this.step.signal;
    if (!signal) return;
    this.#onAbort = () => {
      if (this.endQueued || this.settled) return;
      this.finish({ ok: false, error: abortErrorFrom(signal), retry: false });
      onCancelled();
    };
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The caller cancelled before the end of the data was committed. */
  get cancelled(): boolean {
    return !this.endQueued && this.step.signal?.aborted === true;
  }

  /** The end of the data was handed to the network: tells `step.onDataWritten`. */
  dataWritten(): void {
    this.endWritten = true;
    try {
      this.step.onDataWritten?.();
    } catch {
      // A failing listener must not break the send.
    }
  }

  /** Whether the end of the data waits for `step.beforeDataEnd`. */
  get holdsDataEnd(): boolean {
    return this.step.beforeDataEnd !== undefined;
  }

  /** Whether `step.beforeDataEnd` was called and has not settled yet. */
  get hookPending(): boolean {
    return this.#hook !== undefined && !this.#hookSettled;
  }

  /** Calls `step.beforeDataEnd`, once, as the data is about to begin. */
  startHook(): void {
    const hook = this.step.beforeDataEnd;
    if (!hook || this.#hook) return;
    let running: Promise<void> | void;
    try {
      running = hook();
    } catch (error) {
      running = Promise.reject(error);
    }
    this.#hook = Promise.resolve(running).then(
      () => undefined,
      (error) =>
        new SmtpError(
          "internal",
          `The send was stopped before the end of its message data, because its ` +
            `beforeDataEnd hook failed (${describe(error)}). Nothing was delivered.`,
          { phase: "message", cause: error },
        ),
    ).finally(() => (this.#hookSettled = true));
  }

  /**
   * Waits, at most `timeoutMs` or until cancelled, for `step.beforeDataEnd`
   * (called now if it was not yet). Resolves `undefined` when the end of the
   * data may be written, else with the error the send fails with.
   */
  async hookOutcome(timeoutMs: number): Promise<SmtpError | DOMException | undefined> {
    this.startHook();
    if (!this.#hook) return undefined;
    const signal = this.step.signal;
    if (signal?.aborted) return abortErrorFrom(signal);
    let stop!: (error: SmtpError | DOMException) => void;
    const stopped = new Promise<SmtpError | DOMException>((resolve) => (stop = resolve));
    const timer = setTimeout(() =>
      stop(
        new SmtpError(
          "timeout",
          `The send's beforeDataEnd hook did not finish within ${timeoutMs} ms, so the end ` +
            "of the message data was not written: nothing was delivered.",
          { phase: "message" },
        ),
      ), timeoutMs);
    const onAbort = () => stop(abortErrorFrom(signal!));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([this.#hook, stopped]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Settles the send, once; later calls do nothing. */
  finish(settlement: SendSettlement): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#onAbort) this.step.signal?.removeEventListener("abort", this.#onAbort);
    this.send.settle(settlement);
  }
}
