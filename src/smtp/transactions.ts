/**
 * The transaction stream of one connection: MAIL, RCPT and DATA (or BDAT)
 * for one or more queued transactions, written as command groups (RFC 2920)
 * and answered through one reply interpreter.
 *
 * Every command written is queued with what its reply means; one reader
 * takes the replies in order and files each with its transaction, whose
 * verdict (`transaction_replies.ts`) says whether it is still pending, may
 * go on to its data, was refused, or was accepted — for lock-step,
 * pipelined and BDAT sends alike (MailKit's queued commands are the model).
 * The plan of a transaction is `transaction_plan.ts`, the output buffer
 * `command_writer.ts`, and how a send ends when the connection fails
 * `transaction_recovery.ts`.
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
import { CommandWriter } from "./command_writer.ts";
import { canonicalizeLineEnds, DataEncoder } from "./data_encoder.ts";
import { abortErrorFrom } from "./deadline.ts";
import { SmtpError } from "./errors.ts";
import { type SmtpReply, summarizeReply } from "./reply.ts";
import { Flight, type QueuedSend, type SendSource } from "./transaction_flight.ts";
import { type Plan, planTransaction } from "./transaction_plan.ts";
import {
  closingError,
  settlementAfterFailure,
  settlementOfRefusal,
} from "./transaction_recovery.ts";
import { verdict } from "./transaction_replies.ts";
import { emitStatus } from "./types.ts";
import type { Wire } from "./wire.ts";

/** The command a reply answers. */
type Expected =
  | { kind: "rset" }
  | { kind: "mail" | "rcpt" | "data" | "chunk" | "end"; flight: Flight };

/** What is written per group at most before it goes out (larger content is streamed). */
const FLUSH_BYTES = 64 * 1024;

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
  #writer: CommandWriter;
  #woken = false;
  /** A transaction may be open on the server: RSET before the next MAIL. */
  #resetPending = false;
  #started = 0;
  #failure: unknown;
  #lockStepWanted = false;
  /** The DATA filter of every message on this stream, one after the other. */
  #dataEncoder: DataEncoder | undefined;

  /** A stream over `wire`; `started` transactions already ran on the connection. */
  constructor(wire: Wire, options: StreamOptions, started: number) {
    this.#wire = wire;
    this.#writer = new CommandWriter(wire);
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
        await this.#writer.flush();
        if (this.#unsettled() === 0 && this.#expected.length === 0) {
          if (!this.#resetPending) return;
          this.#queueReset();
          await this.#writer.flush();
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
    flight.startHook();
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
      if (last && flight.holdsDataEnd && !await this.#holdDataEnd(flight)) {
        flight.abandoned = true;
        this.#queueReset();
        return;
      }
      const piece = current.done ? new Uint8Array(0) : current.value;
      this.#writer.command(`BDAT ${piece.length}${last ? " LAST" : ""}`);
      this.#writer.queue(piece);
      this.#expect({ kind: last ? "end" : "chunk", flight });
      if (last) {
        // From here on the message may be delivered: no cancellation any more.
        this.#writer.endQueued(flight);
        this.#wire.phase = "message";
        if (this.#writer.queuedBytes >= FLUSH_BYTES) await this.#writer.flush();
        return;
      }
      await this.#writer.flush();
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
    flight.startHook();
    this.#command("DATA", { kind: "data", flight });
    // DATA ends a group: nothing more until its 354.
    await this.#writer.flush();
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
    // Reused buffers are safe: each chunk is written before the one after next is asked for,
    // and the last one is copied when queued, before the next message restarts the encoder.
    this.#dataEncoder ??= new DataEncoder({ reuseBuffers: true });
    const iterator = this.#dataEncoder.encode(tx.chunks())[Symbol.iterator]();
    let current = iterator.next();
    while (!current.done) {
      const next = iterator.next();
      if (next.done) break; // `current` is the last chunk: it ends with CRLF.CRLF
      await this.#writer.write(current.value, step.signal);
      current = next;
    }
    if (flight.cancelled || (flight.holdsDataEnd && !await this.#holdDataEnd(flight))) {
      flight.abandoned = true;
      await this.#drop(flight);
      return;
    }
    // From here on the message may be delivered: no cancellation any more.
    this.#writer.queue(current.value!);
    this.#writer.endQueued(flight);
    this.#expect({ kind: "end", flight });
    // With PIPELINING the next transaction's commands join this write.
    if (!this.#pipelining) await this.#flushAndWait();
  }

  /**
   * Waits for `flight`'s `beforeDataEnd` hook before the end of its data is
   * queued. While the hook runs, what is already queued goes out: only the end
   * of this message waits. `false` when the end must not be written: the hook
   * failed (the send fails with its error), or meanwhile the send was
   * cancelled or refused, or the connection failed.
   */
  async #holdDataEnd(flight: Flight): Promise<boolean> {
    if (flight.hookPending) await this.#writer.flush();
    const failure = await flight.hookOutcome(this.#wire.timeoutMs);
    if (failure) flight.finish({ ok: false, error: failure, retry: false });
    if (this.#wire.broken) flight.finish(settlementAfterFailure(flight, this.#closedError()));
    return !flight.settled;
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
    for (let i = 0; i < flight.commands.length; i++) {
      if (i > 0 && (this.#wire.broken || flight.settled)) return false;
      this.#queueEnvelopeCommand(flight, i);
      await this.#flushAndWait();
    }
    return !this.#wire.broken && !flight.settled;
  }

  /** Queues MAIL and the RCPTs as one group. */
  #queueEnvelope(flight: Flight): void {
    for (let i = 0; i < flight.commands.length; i++) this.#queueEnvelopeCommand(flight, i);
  }

  /** Queues MAIL (`i` = 0) or the RCPT of recipient `i - 1`, with its `started` event. */
  #queueEnvelopeCommand(flight: Flight, i: number): void {
    if (i === 0) {
      emitStatus(flight.step, { phase: "mail", state: "started" });
      this.#command(flight.commands[0], { kind: "mail", flight });
    } else {
      const recipient = flight.tx.envelope.to[i - 1];
      emitStatus(flight.step, { phase: "rcpt", state: "started", recipient });
      this.#command(flight.commands[i], { kind: "rcpt", flight });
    }
  }

  #queueReset(): void {
    this.#command("RSET", { kind: "rset" });
    this.#resetPending = false;
    for (const flight of this.#flights) flight.resetFollows = true;
  }

  /** Queues the command `line` and what its reply answers. */
  #command(line: string, expected: Expected): void {
    this.#writer.command(line);
    this.#expect(expected);
  }

  #closedError(): SmtpError {
    return new SmtpError("connection", "The connection to the SMTP server was closed.", {
      phase: "mail",
    });
  }

  async #flushAndWait(): Promise<void> {
    await this.#writer.flush();
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
        const what = describeExpected(expected);
        reply = this.#wire.readBuffered(what) ?? await this.#wire.read(what);
      } catch (error) {
        return await this.#stopReading(error);
      }
      this.#expected.shift();
      this.#interpret(expected, reply);
      if (reply.code === 421 && this.#expected.length > 0) {
        // The server is closing the connection: what it had not answered yet goes elsewhere.
        return await this.#stopReading(closingError(reply, this.#wire.phase));
      }
      if (this.#expected.length === 0) {
        for (const resolve of this.#replyWaiters.splice(0)) resolve();
      }
      this.wake();
    }
  }

  /** The reader stops on `error`: every open transaction ends with it, the connection goes. */
  async #stopReading(error: unknown): Promise<void> {
    this.#failure ??= error;
    this.#fail(error);
    this.#readerActive = false;
    await this.#wire.destroy();
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
      const settlement = settlementOfRefusal(flight, decided.error, {
        reply,
        pipelining: this.#pipelining,
      });
      if (settlement.lockStep) {
        this.#lockStepWanted = true;
        this.#wire.markBroken();
      }
      flight.finish(settlement);
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
    for (const flight of open) flight.finish(settlementAfterFailure(flight, error));
  }
}

/** What each expected reply answers, for timeout and protocol errors. */
const ANSWERS: Record<Expected["kind"], string> = {
  rset: "the reply to RSET",
  mail: "the reply to MAIL FROM",
  rcpt: "the reply to RCPT TO",
  data: "the reply to DATA",
  chunk: "the reply to BDAT",
  end: "the reply to the end of the message",
};

function describeExpected(expected: Expected): string {
  return ANSWERS[expected.kind];
}
