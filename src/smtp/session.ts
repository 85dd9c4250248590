/**
 * One SMTP connection: opened and set up by `handshake.ts`, then handed the
 * sends queued for it, which its {@linkcode TransactionStream} pipelines
 * (RFC 2920) until there are none left; parked idle in between, and closed
 * with QUIT.
 *
 * @module
 */

import type { Capabilities } from "./capabilities.ts";
import { withDeadline } from "./deadline.ts";
import { openConnection, type SessionOptions } from "./handshake.ts";
import type { QueuedSend, SendSettlement, SendSource } from "./transaction_flight.ts";
import type { Transaction, TransactionOutcome } from "./transaction_plan.ts";
import { TransactionStream } from "./transactions.ts";
import type { SmtpPhase, StepOptions } from "./types.ts";
import type { Wire } from "./wire.ts";

export type { SessionOptions, SmtpAuth } from "./handshake.ts";
export type { DsnRequest, Transaction, TransactionOutcome } from "./transaction_plan.ts";

/** How a session uses its connection. */
export interface SessionMode {
  /**
   * Pipeline when the server offers PIPELINING. Default `true`; `false` after
   * a server refused our pipelining, to send in lock-step.
   */
  pipelining?: boolean;
}

const encoder = new TextEncoder();
const QUIT_TIMEOUT_MS = 2000;

/** One open SMTP connection. Use {@linkcode SmtpSession.open}. */
export class SmtpSession {
  #wire: Wire;
  #capabilities: Capabilities;
  #pipelining: boolean;
  #stream: TransactionStream | undefined;
  #started = 0;
  #lockStepWanted = false;

  private constructor(wire: Wire, capabilities: Capabilities, mode: SessionMode) {
    this.#wire = wire;
    this.#capabilities = capabilities;
    this.#pipelining = (mode.pipelining ?? true) && capabilities.has("PIPELINING");
  }

  /** Connects, reads the greeting, says EHLO, secures the connection and authenticates. */
  static async open(
    options: SessionOptions,
    step: StepOptions = {},
    mode: SessionMode = {},
  ): Promise<SmtpSession> {
    const { wire, capabilities } = await openConnection(options, step);
    return new SmtpSession(wire, capabilities, mode);
  }

  /** The capabilities the server advertised (after TLS, only the post-TLS ones). */
  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  /** Whether the connection is protected by TLS. */
  get secure(): boolean {
    return this.#wire.socket.secure;
  }

  /** Whether commands are pipelined on this connection. */
  get pipelining(): boolean {
    return this.#pipelining;
  }

  /** Transactions started on this connection. */
  get transactions(): number {
    return this.#stream?.started ?? this.#started;
  }

  /** Whether the server refused our pipelining on this connection. */
  get lockStepWanted(): boolean {
    return this.#lockStepWanted;
  }

  /** Whether another transaction may use this connection. */
  get reusable(): boolean {
    return !this.#wire.broken && !this.#wire.reader.idleActivity;
  }

  /** The protocol step the session is in (or ended in). */
  get phase(): SmtpPhase {
    return this.#wire.phase;
  }

  /** Marks the connection idle: anything the server sends or a hang-up now retires it. */
  park(): void {
    this.#wire.reader.watchIdle();
  }

  /** Takes the connection out of the idle state for a transaction. */
  unpark(): void {
    this.#wire.reader.stopWatching();
  }

  /**
   * Sends what `source` hands out, pipelined, until it has nothing more and
   * every send taken is settled (or the connection failed). Never rejects.
   */
  async run(source: SendSource): Promise<void> {
    const stream = new TransactionStream(this.#wire, {
      capabilities: this.#capabilities,
      pipelining: this.#pipelining,
    }, this.#started);
    this.#stream = stream;
    try {
      await stream.run(source);
    } finally {
      this.#started = stream.started;
      this.#lockStepWanted ||= stream.lockStepWanted;
      this.#stream = undefined;
    }
  }

  /** Tells a running session that its source may have more to give. */
  wake(): void {
    this.#stream?.wake();
  }

  /**
   * Runs one mail transaction. Resolves when the server accepted the message;
   * rejects with an {@linkcode SmtpError} or an `AbortError`. The session stays
   * reusable after a refusal the server answered cleanly.
   */
  async send(tx: Transaction, step: StepOptions = {}): Promise<TransactionOutcome> {
    let settlement: SendSettlement | undefined;
    const send: QueuedSend = { transaction: tx, step, settle: (s) => (settlement = s) };
    let taken = false;
    await this.run({
      take: () => {
        if (taken) return undefined;
        taken = true;
        return send;
      },
    });
    if (!settlement) throw new Error("The transaction ended without an outcome.");
    if (!settlement.ok) throw settlement.error;
    return settlement.outcome;
  }

  /** Says QUIT and closes, within a short bound. Never rejects. */
  async quit(): Promise<void> {
    if (this.#wire.closed) return;
    if (!this.#wire.broken) {
      try {
        const deadline = Math.min(this.#wire.timeoutMs, QUIT_TIMEOUT_MS);
        await withDeadline(this.#wire.socket.write(encoder.encode("QUIT\r\n")), {
          timeoutMs: deadline,
          phase: this.#wire.phase,
          what: "QUIT to be written",
        });
        await this.#wire.reader.read({
          phase: this.#wire.phase,
          timeoutMs: deadline,
          what: "the reply to QUIT",
        });
      } catch {
        // The server may close first; the connection is going away either way.
      }
    }
    await this.destroy();
  }

  /** Closes the connection at once, without QUIT. Never rejects. */
  async destroy(): Promise<void> {
    await this.#wire.destroy();
  }
}
