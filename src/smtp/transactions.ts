/**
 * The transaction stream of one connection: MAIL, RCPT and DATA (or BDAT)
 * for one or more queued transactions, written as command groups (RFC 2920)
 * and answered through one reply interpreter.
 *
 * Every command written is queued with what its reply means; one reader
 * takes the replies in order and one function ({@linkcode verdict}) says,
 * from the replies a transaction has so far, whether it is still pending,
 * may go on to its data, was refused, or was accepted — for lock-step,
 * pipelined and BDAT sends alike (MailKit's queued commands and
 * `ParseCommandQueueResponses` are the model).
 *
 * Pipelining across messages (RFC 2920 3.1): the content and final dot of
 * message N open a group, so message N+1's MAIL, RCPT and DATA go in the same
 * write; with CHUNKING, whole `MAIL, RCPT, BDAT n LAST` transactions follow
 * each other without waiting. Groups end only where they must: at DATA (the
 * 354 wait), and everything waits for its reply on a server without
 * PIPELINING.
 *
 * @module
 */

import type { Capabilities } from "./capabilities.ts";
import { mailFromCommand, needsSmtputf8, rcptToCommand } from "./commands.ts";
import { canonicalizeLineEnds, encodeData } from "./data_encoder.ts";
import { abortErrorFrom } from "./deadline.ts";
import { SmtpError } from "./errors.ts";
import { isPositive, replyError, type SmtpReply, summarizeReply } from "./reply.ts";
import {
  type DsnOutcome,
  emitStatus,
  type RecipientRejection,
  type SmtpPhase,
  type StepOptions,
} from "./types.ts";
import type { Wire } from "./wire.ts";

/** DSN parameters of one message (RFC 3461). */
export interface DsnRequest {
  /** When to notify: success, failure, delay, or never alone. */
  notify?: readonly string[];
  /** What to return in a failure notice. */
  return?: "headers" | "full";
  /** The envelope identifier. */
  envelopeId?: string;
}

/** One message ready for the wire. */
export interface Transaction {
  /** MAIL FROM and RCPT TO addresses, normalised. */
  envelope: { from: string; to: readonly string[] };
  /** Exact size of the message in octets. */
  size: number;
  /** The headers need SMTPUTF8. */
  smtputf8: boolean;
  /** The content has 8-bit octets. */
  eightBit: boolean;
  /** The message bytes, from the start each time it is called. */
  chunks(): Iterable<Uint8Array>;
  /** DSN parameters, when asked for. */
  dsn?: DsnRequest;
  /** Send to the accepted recipients when some are refused. */
  allowPartial: boolean;
}

/** What a successful transaction reports. */
export interface TransactionOutcome {
  /** Recipients the server accepted. */
  accepted: string[];
  /** Recipients the server refused (only with `allowPartial`). */
  rejected: RecipientRejection[];
  /** The server's reply to the message data. */
  response: string;
  /** Present when DSN was asked for. */
  dsn?: DsnOutcome;
}

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

/** What the replies a transaction has so far say about it. */
type Verdict =
  | { state: "pending" }
  | { state: "go" }
  | { state: "refused"; error: SmtpError }
  | { state: "accepted"; outcome: TransactionOutcome };

/** The command a reply answers. */
type Expected =
  | { kind: "rset" }
  | { kind: "mail" | "rcpt" | "data" | "chunk" | "end"; flight: Flight };

/** What is written per group at most before it goes out (larger content is streamed). */
const FLUSH_BYTES = 64 * 1024;
const encoder = new TextEncoder();
/** Postfix and others answer illegal pipelining with 5.5.0 and words like these. */
const SYNC_ERROR = /pipelin|synchroni[sz]/i;

/** One transaction on its way through the stream. */
class Flight {
  readonly send: QueuedSend;
  readonly tx: Transaction;
  readonly step: StepOptions;
  /** BDAT (CHUNKING) or DATA. */
  readonly chunked: boolean;
  /** Transactions this connection started before this one. */
  readonly ordinal: number;
  readonly dsnSupported: boolean;
  readonly commands: string[];
  mailReply?: SmtpReply;
  rcptReplies: SmtpReply[] = [];
  dataReply?: SmtpReply;
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
  settled = false;
  /** Resolves when the reply to DATA has been read (or the stream failed). */
  readonly dataAnswered: Promise<void>;
  #answerData!: () => void;
  #onAbort?: () => void;

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

  get cancelled(): boolean {
    return !this.endQueued && this.step.signal?.aborted === true;
  }

  finish(settlement: SendSettlement): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#onAbort) this.step.signal?.removeEventListener("abort", this.#onAbort);
    this.send.settle(settlement);
  }
}

/** The commands of one transaction and how its data goes. */
interface Plan {
  commands: string[];
  chunked: boolean;
  dsnSupported: boolean;
}

/**
 * The MAIL and RCPT commands of `tx` for a server with `caps`, and whether
 * its data goes as BDAT. Throws an {@linkcode SmtpError} when the server
 * cannot take the message at all (too big, or SMTPUTF8 needed but missing).
 */
export function planTransaction(tx: Transaction, caps: Capabilities, pipelining: boolean): Plan {
  const utf8 = tx.smtputf8 || needsSmtputf8([tx.envelope.from, ...tx.envelope.to]);
  if (utf8 && !caps.has("SMTPUTF8")) {
    throw new SmtpError(
      "rejected",
      "The message has a non-ASCII mailbox name, and the server does not support SMTPUTF8. " +
        "Use ASCII addresses or a server that offers SMTPUTF8.",
      { phase: "mail" },
    );
  }
  const limit = caps.sizeLimit;
  if (limit !== undefined && tx.size > limit) {
    throw new SmtpError(
      "rejected",
      `The message is ${tx.size} octets; the server accepts at most ${limit} (its SIZE limit).`,
      { phase: "mail", code: 552, enhancedCode: "5.3.4" },
    );
  }
  const dsnSupported = caps.has("DSN");
  const dsn = tx.dsn && dsnSupported ? tx.dsn : undefined;
  const mail = mailFromCommand(tx.envelope.from, {
    size: caps.has("SIZE") ? tx.size : undefined,
    eightBitMime: (tx.eightBit || utf8) && caps.has("8BITMIME"),
    smtputf8: utf8,
    ret: dsn?.return,
    envelopeId: dsn?.envelopeId,
  });
  const rcpts = tx.envelope.to.map((address) =>
    rcptToCommand(address, dsn ? { notify: dsn.notify, originalRecipient: address } : {})
  );
  // BDAT LAST pipelined behind the RCPTs costs no wait at all, but a refused
  // recipient then no longer stops the message for the others: only when that
  // cannot matter (one recipient, or allowPartial).
  const chunked = pipelining && caps.has("CHUNKING") &&
    (tx.envelope.to.length === 1 || tx.allowPartial);
  return { commands: [mail, ...rcpts], chunked, dsnSupported };
}

/**
 * The single reply interpreter: what the replies `flight` has so far mean.
 * A refusal already read decides, whatever comes after it.
 */
function verdict(flight: Flight): Verdict {
  const { tx } = flight;
  const recipients = tx.envelope.to.length;
  if (flight.mailReply && !isPositive(flight.mailReply)) {
    return refused(replyError(flight.mailReply, "mail", "The server refused the sender"));
  }
  if (flight.rcptReplies.length < recipients) return { state: "pending" };
  const { accepted, rejected, refusal } = judgeRecipients(tx, flight.rcptReplies);
  if (refusal) return refused(refusal);
  if (!flight.chunked) {
    if (!flight.dataReply) return { state: "pending" };
    if (flight.dataReply.code !== 354) {
      return refused(
        replyError(flight.dataReply, "data", "The server refused DATA", { rejected }),
      );
    }
  }
  // A refused chunk fails the whole transaction (RFC 3030).
  const chunkRefusal = flight.chunkReplies.find((reply) => !isPositive(reply));
  if (chunkRefusal) {
    return refused(
      replyError(chunkRefusal, "message", "The server refused the message", { rejected }),
    );
  }
  if (!flight.endReply) return flight.chunked ? { state: "pending" } : { state: "go" };
  if (!isPositive(flight.endReply)) {
    return refused(
      replyError(flight.endReply, "message", "The server refused the message", { rejected }),
    );
  }
  const outcome: TransactionOutcome = { accepted, rejected, response: flight.endReply.raw };
  if (tx.dsn) outcome.dsn = { requested: true, supported: flight.dsnSupported };
  return { state: "accepted", outcome };
}

function refused(error: SmtpError): Verdict {
  return { state: "refused", error };
}

/** Options of {@linkcode TransactionStream}. */
export interface StreamOptions {
  /** The server's capabilities. */
  capabilities: Capabilities;
  /** Pipeline (RFC 2920); `false` waits for every reply (no PIPELINING, or it failed before). */
  pipelining: boolean;
}

/**
 * Runs the transactions a {@linkcode SendSource} hands out on one connection
 * until the source is empty and every transaction is settled, or the
 * connection fails. Every send taken is settled exactly once.
 */
export class TransactionStream {
  #wire: Wire;
  #caps: Capabilities;
  #pipelining: boolean;
  #expected: Expected[] = [];
  #replyWaiters: (() => void)[] = [];
  #flights: Flight[] = [];
  #reading: Promise<void> | undefined;
  #readerActive = false;
  #wake: (() => void) | undefined;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #outEnds: Flight[] = [];
  /** The flight whose data end is the last thing queued, if it is. */
  #tailEnd: Flight | undefined;
  #woken = false;
  /** A transaction may be open on the server: RSET before the next MAIL. */
  #resetPending = false;
  #started = 0;
  #failure: unknown;
  #lockStepWanted = false;

  /** A stream over `wire`; `started` transactions already ran on the connection. */
  constructor(wire: Wire, options: StreamOptions, started: number) {
    this.#wire = wire;
    this.#caps = options.capabilities;
    this.#pipelining = options.pipelining;
    this.#started = started;
  }

  /** Transactions started on this connection, including earlier streams'. */
  get started(): number {
    return this.#started;
  }

  /** Whether the server refused our pipelining on this connection. */
  get lockStepWanted(): boolean {
    return this.#lockStepWanted;
  }

  /** Lets a stream waiting for sends or replies look at its source again. */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    if (wake) wake();
    else this.#woken = true;
  }

  /** Runs until there is nothing left to send and nothing left to hear. Never rejects. */
  async run(source: SendSource): Promise<void> {
    try {
      await this.#writeLoop(source);
    } catch (error) {
      // A failed write: the replies already on their way may still say more (a refusal),
      // unless the connection is stuck rather than gone.
      this.#failure ??= error;
      this.#wire.markBroken();
      if (!(error instanceof SmtpError && error.type === "connection")) await this.#wire.destroy();
    }
    await this.#reading;
    if (this.#flights.some((flight) => !flight.settled)) {
      // A stream that stopped early still settles whatever it had taken.
      this.#fail(
        this.#failure ?? new SmtpError(
          "connection",
          "The connection to the SMTP server was closed before the send finished.",
          { phase: this.#wire.phase },
        ),
      );
    }
  }

  // --- writing ---

  async #writeLoop(source: SendSource): Promise<void> {
    while (!this.#wire.broken) {
      const send = source.take();
      if (!send) {
        await this.#flush();
        if (this.#unsettled() === 0 && this.#expected.length === 0) {
          if (!this.#resetPending) return;
          this.#queueReset();
          await this.#flush();
          await this.#drained();
          continue;
        }
        await this.#idle();
        continue;
      }
      const flight = await this.#begin(send);
      if (!flight) continue;
      if (flight.chunked) await this.#writeChunked(flight);
      else await this.#writeWithData(flight);
    }
  }

  /** Plans a send; settles it at once when it cannot go to this server. */
  async #begin(send: QueuedSend): Promise<Flight | undefined> {
    if (send.step.signal?.aborted) {
      send.settle({ ok: false, error: abortErrorFrom(send.step.signal), retry: false });
      return undefined;
    }
    let plan: Plan;
    try {
      plan = planTransaction(send.transaction, this.#caps, this.#pipelining);
    } catch (error) {
      send.settle({ ok: false, error, retry: false });
      return undefined;
    }
    this.#flights = this.#flights.filter((flight) => !flight.settled);
    // A BDAT transaction still unanswered may have failed: make the next one start clean.
    const previous = this.#flights.at(-1);
    if (this.#resetPending || previous?.chunked) {
      this.#queueReset();
      if (!this.#pipelining) await this.#flushAndWait();
      if (this.#wire.broken) {
        send.settle({ ok: false, error: this.#closedError(), retry: true });
        return undefined;
      }
    }
    const flight = new Flight(send, plan, this.#started++);
    this.#flights.push(flight);
    flight.watchCancellation(() => this.#abandon(flight));
    return flight;
  }

  /** MAIL, RCPT…, then `BDAT n` chunks, the last with LAST: no wait in between. */
  async #writeChunked(flight: Flight): Promise<void> {
    const { tx, step } = flight;
    this.#wire.phase = "mail";
    this.#queueEnvelope(flight);
    emitStatus(step, { phase: "message", state: "started" });
    // Reused buffers are safe: each chunk is flushed before the one after next is asked for.
    const iterator = canonicalizeLineEnds(tx.chunks(), { reuseBuffers: true })[Symbol.iterator]();
    let current = iterator.next();
    while (true) {
      const next = current.done ? current : iterator.next();
      const last = next.done === true;
      if (flight.cancelled || this.#wire.broken) {
        // RFC 3030: RSET discards the chunks already sent; nothing is delivered.
        flight.abandoned = true;
        this.#queueReset();
        return;
      }
      const piece = current.done ? new Uint8Array(0) : current.value;
      this.#queue(encoder.encode(`BDAT ${piece.length}${last ? " LAST" : ""}\r\n`));
      this.#queue(piece);
      this.#expect({ kind: last ? "end" : "chunk", flight });
      if (last) {
        // From here on the message may be delivered: no cancellation any more.
        this.#endQueued(flight);
        this.#wire.phase = "message";
        if (this.#outBytes >= FLUSH_BYTES) await this.#flush();
        return;
      }
      await this.#flush();
      this.#wire.phase = "message";
      current = next;
    }
  }

  /** MAIL, RCPT…, DATA; after the 354, the content and the final dot. */
  async #writeWithData(flight: Flight): Promise<void> {
    const { tx, step } = flight;
    this.#wire.phase = "mail";
    if (!await this.#writeEnvelope(flight)) {
      // Refused or cancelled in lock-step: the server may hold the transaction open.
      this.#resetPending = true;
      return;
    }
    emitStatus(step, { phase: "data", state: "started" });
    this.#queue(encoder.encode("DATA\r\n"));
    this.#expect({ kind: "data", flight });
    // DATA ends a group: nothing more until its 354.
    await this.#flush();
    await flight.dataAnswered;
    if (this.#wire.broken) return;
    const decided = verdict(flight);
    if (decided.state !== "go" || flight.cancelled) {
      flight.abandoned = true;
      if (flight.dataReply?.code === 354) {
        // After a 354 the only way out that cannot deliver is to drop the
        // connection: the final dot is never sent.
        await this.#drop(flight);
      } else if (!flight.resetFollows) {
        this.#resetPending = true;
      }
      return;
    }
    emitStatus(step, { phase: "data", state: "done", reply: summarizeReply(flight.dataReply!) });
    emitStatus(step, { phase: "message", state: "started" });
    this.#wire.phase = "message";
    // Reused buffers are safe: each chunk is written before the one after next is asked for.
    const iterator = encodeData(tx.chunks(), { reuseBuffers: true })[Symbol.iterator]();
    let current = iterator.next();
    while (!current.done) {
      const next = iterator.next();
      if (next.done) break; // `current` is the last chunk: it ends with CRLF.CRLF
      await this.#write(current.value, step.signal);
      current = next;
    }
    if (flight.cancelled) {
      flight.abandoned = true;
      await this.#drop(flight);
      return;
    }
    // From here on the message may be delivered: no cancellation any more.
    this.#queue(current.value!);
    this.#endQueued(flight);
    this.#expect({ kind: "end", flight });
    // With PIPELINING the next transaction's commands join this write.
    if (!this.#pipelining) await this.#flushAndWait();
  }

  /**
   * MAIL and the RCPTs: queued as one group with PIPELINING; else one by one,
   * each answered first. Resolves `false` when the transaction cannot go on.
   */
  async #writeEnvelope(flight: Flight): Promise<boolean> {
    if (this.#pipelining) {
      this.#queueEnvelope(flight);
      return true;
    }
    const [mail, ...rcpts] = flight.commands;
    emitStatus(flight.step, { phase: "mail", state: "started" });
    this.#queue(encoder.encode(mail + "\r\n"));
    this.#expect({ kind: "mail", flight });
    await this.#flushAndWait();
    for (const [i, recipient] of flight.tx.envelope.to.entries()) {
      if (this.#wire.broken || flight.settled) return false;
      emitStatus(flight.step, { phase: "rcpt", state: "started", recipient });
      this.#queue(encoder.encode(rcpts[i] + "\r\n"));
      this.#expect({ kind: "rcpt", flight });
      await this.#flushAndWait();
    }
    return !this.#wire.broken && !flight.settled;
  }

  /** Queues MAIL and the RCPTs as one group. */
  #queueEnvelope(flight: Flight): void {
    const [mail, ...rcpts] = flight.commands;
    emitStatus(flight.step, { phase: "mail", state: "started" });
    this.#queue(encoder.encode(mail + "\r\n"));
    this.#expect({ kind: "mail", flight });
    flight.tx.envelope.to.forEach((recipient, i) => {
      emitStatus(flight.step, { phase: "rcpt", state: "started", recipient });
      this.#queue(encoder.encode(rcpts[i] + "\r\n"));
      this.#expect({ kind: "rcpt", flight });
    });
  }

  #queueReset(): void {
    this.#queue(encoder.encode("RSET\r\n"));
    this.#expect({ kind: "rset" });
    this.#resetPending = false;
    for (const flight of this.#flights) flight.resetFollows = true;
  }

  #queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    this.#tailEnd = undefined;
  }

  /** The bytes queued last end `flight`'s data: it is committed now. */
  #endQueued(flight: Flight): void {
    flight.endQueued = true;
    this.#outEnds.push(flight);
    this.#tailEnd = flight;
  }

  #closedError(): SmtpError {
    return new SmtpError("connection", "The connection to the SMTP server was closed.", {
      phase: "mail",
    });
  }

  /** Writes what is queued as one write. */
  async #flush(): Promise<void> {
    if (this.#out.length === 0) return;
    const parts = this.#out;
    const ends = this.#outEnds;
    const tailEnd = this.#tailEnd;
    this.#out = [];
    this.#outBytes = 0;
    this.#outEnds = [];
    this.#tailEnd = undefined;
    const bytes = parts.length === 1 ? parts[0] : concat(parts);
    try {
      await this.#wire.write(bytes);
    } catch (error) {
      // The ends in a write that failed may or may not have reached the server,
      // except the very last bytes of a write that failed on the connection or
      // stalled past its deadline (a zero window): a write that never completed
      // never handed its last byte over, and the connection is closed at once.
      const lost = error instanceof SmtpError &&
          (error.type === "connection" || error.type === "timeout")
        ? tailEnd
        : undefined;
      for (const flight of ends) {
        if (flight === lost) continue;
        flight.endWritten = true;
        notifyDataWritten(flight);
      }
      throw error;
    }
    for (const flight of ends) {
      flight.endWritten = true;
      notifyDataWritten(flight);
    }
  }

  /** Writes content bytes at once (they are not part of a command group). */
  async #write(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.#flush();
    await this.#wire.write(bytes, signal);
  }

  async #flushAndWait(): Promise<void> {
    await this.#flush();
    await this.#drained();
  }

  /** Resolves once every reply expected so far has been read. */
  #drained(): Promise<void> {
    if (this.#expected.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#replyWaiters.push(resolve));
  }

  /** Waits for a reply, a new send or a cancellation. */
  #idle(): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /**
   * `flight` was cancelled before its data end was committed. Unless the
   * server still owes the verdict on a message whose data went out, the
   * connection is closed at once: nothing more is written for it, and the
   * sends behind it go to another connection.
   */
  #abandon(flight: Flight): void {
    const owed = this.#flights.some((f) => f !== flight && !f.settled && f.endQueued);
    if (!owed && !this.#wire.closed) {
      this.#failure ??= new SmtpError(
        "connection",
        "The connection was closed to abandon a cancelled send.",
        { phase: flight.phase },
      );
      this.#wire.markBroken();
      this.#wire.destroy();
    }
    this.wake();
  }

  /** Drops the connection to abandon `flight` after a 354; later sends go elsewhere. */
  async #drop(flight: Flight): Promise<void> {
    this.#failure = new SmtpError(
      "connection",
      "The connection was closed to abandon a transaction that must not deliver.",
      { phase: flight.phase },
    );
    if (!flight.settled) {
      const decided = verdict(flight);
      flight.finish(
        decided.state === "refused"
          ? { ok: false, error: decided.error, retry: false }
          : { ok: false, error: abortErrorFrom(flight.step.signal!), retry: false },
      );
    }
    await this.#wire.destroy();
  }

  // --- reading ---

  #expect(expected: Expected): void {
    this.#expected.push(expected);
    if (this.#readerActive) return;
    this.#readerActive = true;
    this.#reading = this.#readLoop();
  }

  /** Reads while replies are expected; `#readerActive` drops the moment there are none. */
  async #readLoop(): Promise<void> {
    // Replies come only for what was written: let the writer go first.
    await Promise.resolve();
    while (true) {
      if (this.#expected.length === 0) {
        this.#readerActive = false;
        return;
      }
      const expected = this.#expected[0];
      let reply: SmtpReply;
      try {
        this.#wire.phase = expected.kind === "rset" ? this.#wire.phase : expected.flight.phase;
        reply = await this.#wire.read(describeExpected(expected));
      } catch (error) {
        this.#failure ??= error;
        this.#fail(error);
        this.#readerActive = false;
        await this.#wire.destroy();
        return;
      }
      this.#expected.shift();
      this.#interpret(expected, reply);
      if (reply.code === 421 && this.#expected.length > 0) {
        // The server is closing the connection: what it had not answered yet goes elsewhere.
        const closing = new SmtpError(
          "transient",
          `The server is closing the connection: ${reply.code} ${reply.message}`.trim(),
          { phase: this.#wire.phase, code: reply.code, enhancedCode: reply.enhancedCode },
        );
        this.#failure ??= closing;
        this.#fail(closing);
        this.#readerActive = false;
        await this.#wire.destroy();
        return;
      }
      if (this.#expected.length === 0) {
        for (const resolve of this.#replyWaiters.splice(0)) resolve();
      }
      this.wake();
    }
  }

  /** Files `reply` with the transaction it answers and acts on the verdict. */
  #interpret(expected: Expected, reply: SmtpReply): void {
    if (reply.code === 421) this.#wire.markBroken(); // the server is closing the connection
    if (expected.kind === "rset") {
      if (reply.code !== 250) this.#wire.markBroken();
      return;
    }
    const { flight } = expected;
    const step = flight.step;
    switch (expected.kind) {
      case "mail":
        flight.mailReply = reply;
        emitStatus(step, { phase: "mail", state: "done", reply: summarizeReply(reply) });
        break;
      case "rcpt": {
        const recipient = flight.tx.envelope.to[flight.rcptReplies.length];
        flight.rcptReplies.push(reply);
        emitStatus(step, { phase: "rcpt", state: "done", recipient, reply: summarizeReply(reply) });
        break;
      }
      case "data":
        flight.dataReply = reply;
        flight.answerData();
        break;
      case "chunk":
        flight.chunkReplies.push(reply);
        break;
      case "end":
        flight.endReply = reply;
        emitStatus(step, { phase: "message", state: "done", reply: summarizeReply(reply) });
        break;
    }
    this.#review(flight, reply);
  }

  /** Settles `flight` once its replies decide it. */
  #review(flight: Flight, reply: SmtpReply): void {
    if (flight.settled) return;
    const decided = verdict(flight);
    if (decided.state === "accepted") {
      flight.finish({ ok: true, outcome: decided.outcome });
    } else if (decided.state === "refused") {
      const syncError = this.#pipelining && isSyncError(reply) && !flight.endQueued;
      if (syncError) {
        this.#lockStepWanted = true;
        this.#wire.markBroken();
      }
      // A 421 means the server is going away: nothing was delivered, another connection may do.
      const closing = reply.code === 421 && !flight.endQueued && flight.ordinal > 0;
      flight.finish({
        ok: false,
        error: decided.error,
        retry: syncError || closing,
        lockStep: syncError,
      });
      // A transaction the server may still hold open is reset before the next one.
      if (!flight.endReply && !flight.resetFollows) this.#resetPending = true;
    }
  }

  #unsettled(): number {
    return this.#flights.filter((flight) => !flight.settled).length;
  }

  /**
   * The connection failed: every transaction still open ends now. One whose
   * refusal was already read is that refusal; one whose data end was written
   * has an unknown outcome; the others were not delivered, and those behind
   * an earlier transaction on this connection may go to a new one.
   */
  #fail(error: unknown): void {
    this.#wire.markBroken();
    for (const flight of this.#flights) flight.answerData();
    for (const resolve of this.#replyWaiters.splice(0)) resolve();
    this.wake();
    const open = this.#flights.filter((flight) => !flight.settled);
    this.#flights = [];
    this.#expected = [];
    for (const flight of open) {
      const decided = verdict(flight);
      if (decided.state === "refused") {
        flight.finish({ ok: false, error: decided.error, retry: false });
      } else if (decided.state === "accepted") {
        flight.finish({ ok: true, outcome: decided.outcome });
      } else if (flight.endWritten) {
        flight.finish({ ok: false, error: unknownOutcome(error), retry: false });
      } else {
        flight.finish({
          ok: false,
          error: asFailureOf(error, flight.phase),
          retry: flight.ordinal > 0 && !flight.cancelled,
        });
      }
    }
  }
}

function notifyDataWritten(flight: Flight): void {
  try {
    flight.step.onDataWritten?.();
  } catch {
    // A failing listener must not break the send.
  }
}

/** Whether `reply` refuses our pipelining (Postfix: 503/554 5.5.0 "improper command pipelining"). */
function isSyncError(reply: SmtpReply): boolean {
  return (reply.code === 503 || reply.code === 554) && SYNC_ERROR.test(reply.message);
}

function describeExpected(expected: Expected): string {
  switch (expected.kind) {
    case "rset":
      return "the reply to RSET";
    case "mail":
      return "the reply to MAIL FROM";
    case "rcpt":
      return "the reply to RCPT TO";
    case "data":
      return "the reply to DATA";
    case "chunk":
      return "the reply to BDAT";
    case "end":
      return "the reply to the end of the message";
  }
}

/** `error` as the failure of a send in `phase`, before its data end was written. */
function asFailureOf(error: unknown, phase: SmtpPhase): unknown {
  if (!(error instanceof SmtpError) || error.phase === phase) return error;
  return new SmtpError(error.type, error.message, { ...error.options, phase });
}

/** The error of a send whose data end was written and whose verdict never came. */
function unknownOutcome(error: unknown): SmtpError {
  // A garbled reply after the final dot says no more than a lost connection does.
  const what = error instanceof SmtpError && error.type === "protocol"
    ? "an invalid reply came back"
    : "the connection was lost";
  return new SmtpError(
    "unknown_outcome",
    `The whole message was sent, then ${what} before the server confirmed it: the ` +
      "message may or may not have been delivered. It was not retried.",
    { phase: "message", cause: error },
  );
}

function rejection(address: string, reply: SmtpReply): RecipientRejection {
  const result: RecipientRejection = { address, code: reply.code, message: reply.message };
  if (reply.enhancedCode !== undefined) result.enhancedCode = reply.enhancedCode;
  return result;
}

/**
 * Whether a refused recipient may succeed later. RFC 5321 4.5.3.1.10: a 552
 * to RCPT ("too many recipients") is to be treated as the 452 it should have been.
 */
function isTemporaryRecipientRefusal(rejection: RecipientRejection): boolean {
  return rejection.code < 500 || rejection.code === 552;
}

/**
 * Splits the RCPT replies into accepted and refused recipients, and returns
 * the error that ends the transaction when the partial policy says so.
 */
function judgeRecipients(tx: Transaction, replies: readonly SmtpReply[]): {
  accepted: string[];
  rejected: RecipientRejection[];
  refusal?: SmtpError;
} {
  const accepted: string[] = [];
  const rejected: RecipientRejection[] = [];
  tx.envelope.to.forEach((address, i) => {
    if (isPositive(replies[i])) accepted.push(address);
    else rejected.push(rejection(address, replies[i]));
  });
  if (accepted.length > 0 && (rejected.length === 0 || tx.allowPartial)) {
    return { accepted, rejected };
  }
  const first = rejected[0];
  const refusal = new SmtpError(
    rejected.every(isTemporaryRecipientRefusal) ? "transient" : "rejected",
    accepted.length === 0
      ? `The server refused every recipient (${rejected.length}).`
      : `The server refused ${rejected.length} of ${tx.envelope.to.length} recipients; ` +
        "nothing was sent (set allowPartial to send to the accepted ones).",
    {
      phase: "rcpt",
      code: first.code,
      enhancedCode: first.enhancedCode,
      response: replies[tx.envelope.to.indexOf(first.address)].raw,
      rejected,
    },
  );
  return { accepted, rejected, refusal };
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
