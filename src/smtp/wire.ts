/**
 * One connection's I/O: every write and every reply read goes through a
 * {@linkcode Wire}, with the step's deadline, and any failure marks the
 * connection broken and becomes a typed {@linkcode SmtpError}.
 *
 * @module
 */

import { type SmtpSocket, TLS_HANDSHAKE_ERROR } from "../socket/socket.ts";
import { DeadlineTimer } from "./deadline.ts";
import { isAbortError, SmtpError } from "./errors.ts";
import { ReplyReader, type SmtpReply } from "./reply.ts";
import type { SmtpPhase } from "./types.ts";

const encoder = new TextEncoder();

/** The socket of one SMTP connection, with deadlines and typed failures. */
export class Wire {
  #socket: SmtpSocket;
  #reader: ReplyReader;
  #deadlines = new DeadlineTimer();
  #timeoutMs: number;
  #broken = false;
  #closed = false;
  /** The protocol step the connection is in, carried by the errors it raises. */
  phase: SmtpPhase = "connect";

  /** Talks over `socket`; each write and each reply gets `timeoutMs`. */
  constructor(socket: SmtpSocket, timeoutMs: number) {
    this.#socket = socket;
    this.#reader = new ReplyReader(socket, {
      deadline: (promise, options) => this.#deadlines.guard(promise, options),
    });
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline of one step, in milliseconds. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** The socket (replaced by the TLS one after STARTTLS). */
  get socket(): SmtpSocket {
    return this.#socket;
  }

  /** The reply reader (for idle watching and STARTTLS checks). */
  get reader(): ReplyReader {
    return this.#reader;
  }

  /** Whether a failure or a refusal made the connection unusable. */
  get broken(): boolean {
    return this.#broken || this.#closed;
  }

  /** Whether the socket was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the connection unusable for further transactions. */
  markBroken(): void {
    this.#broken = true;
  }

  /** Continues on the TLS socket; anything read before the upgrade is discarded. */
  replaceSocket(socket: SmtpSocket): void {
    this.#socket = socket;
    this.#reader.replaceSocket(socket);
  }

  /** Writes `data` in one write, within the deadline; `signal` cancels the wait. */
  async write(data: string | Uint8Array, signal?: AbortSignal): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      await this.#deadlines.guard(this.#socket.write(bytes), {
        timeoutMs: this.#timeoutMs,
        phase: this.phase,
        what: "the server to accept our data",
        signal,
      });
    } catch (error) {
      throw this.failed(error);
    }
  }

  /** Reads the next reply within the deadline; `what` names it in a timeout. */
  async read(what: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}) {
    try {
      return await this.#reader.read({
        phase: this.phase,
        timeoutMs: options.timeoutMs ?? this.#timeoutMs,
        signal: options.signal,
        what,
      }) as SmtpReply;
    } catch (error) {
      throw this.failed(error);
    }
  }

  /**
   * The next reply if it is already buffered whole and one line, else
   * `undefined` (then {@linkcode Wire.read} it): no promise per pipelined reply.
   */
  readBuffered(what: string): SmtpReply | undefined {
    try {
      return this.#reader.takeBuffered({ phase: this.phase, timeoutMs: this.#timeoutMs, what });
    } catch (error) {
      throw this.failed(error);
    }
  }

  /** Closes the socket at once. Never rejects. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#broken = true;
    this.#deadlines.stop();
    await this.#socket.close();
  }

  /** Marks the connection unusable and turns platform errors into typed ones. */
  failed(error: unknown): unknown {
    this.#broken = true;
    if (error instanceof SmtpError || isAbortError(error)) return error;
    // workerd reports a failed handshake on the first read or write after it.
    if (isTlsHandshakeFailure(error)) return asTlsError(error, this.phase);
    return new SmtpError(
      "connection",
      `The connection to the SMTP server failed: ${describe(error)}`,
      { phase: this.phase, cause: error },
    );
  }
}

/** Whether `error` is an adapter's TLS handshake failure. */
export function isTlsHandshakeFailure(error: unknown): boolean {
  return (error as Error)?.name === TLS_HANDSHAKE_ERROR;
}

/** `error` as a `tls` error of `phase` (a timeout stays a timeout). */
export function asTlsError(error: unknown, phase: SmtpPhase): SmtpError {
  if (error instanceof SmtpError && error.type === "timeout") return error;
  if (error instanceof SmtpError && error.type === "tls") {
    return new SmtpError("tls", error.message, { phase, cause: error.cause });
  }
  return new SmtpError(
    "tls",
    `The TLS handshake with the server failed: ${describe(error)}. Check that the server's ` +
      "certificate is valid for its host name and issued by a trusted CA (caCerts / SMTP_CA_CERT).",
    { phase, cause: error },
  );
}

/** A short description of `error` for messages. */
export function describe(error: unknown): string {
  if (error instanceof SmtpError) return error.message;
  if (error instanceof Error) return error.message || error.name;
  return "unknown error";
}
