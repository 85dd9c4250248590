/**
 * One SMTP connection's state machine: greeting, EHLO, TLS, AUTH, then
 * transactions. Commands that may be pipelined (RFC 2920) go out in one write
 * and their replies are read in order from a FIFO, so MAIL, every RCPT and
 * DATA cost one round trip together.
 *
 * @module
 */

import { type Connect, type SmtpSocket, TLS_HANDSHAKE_ERROR } from "../socket/socket.ts";
import { concatBytes } from "./bytes.ts";
import { Capabilities } from "./capabilities.ts";
import { greetCommand, mailFromCommand, needsSmtputf8, rcptToCommand } from "./commands.ts";
import { canonicalizeLineEnds, encodeData } from "./data_encoder.ts";
import { abortErrorFrom, withDeadline } from "./deadline.ts";
import { isAbortError, SmtpError, type SmtpErrorType, type SmtpPhase } from "./errors.ts";
import { ReplyReader, type SmtpReply, summarizeReply } from "./reply.ts";
import type { DsnOutcome, RecipientRejection, StatusEvent } from "./result.ts";
import {
  chooseMechanism,
  createSaslClient,
  credentialForms,
  echoesCredentials,
  type SaslCredentials,
} from "./sasl.ts";

/** How the connection is protected. */
export type TlsMode = "starttls" | "implicit" | "opportunistic" | "none";

/** Credentials for SMTP AUTH. */
export interface SmtpAuth {
  /** The user name. */
  username: string;
  /** The password (PLAIN, LOGIN, CRAM-MD5). */
  password?: string;
  /** An OAuth 2 access token (XOAUTH2). */
  accessToken?: string;
  /** Preferred mechanism: `plain`, `login`, `cram-md5` or `xoauth2`. */
  mechanism?: string;
}

/** Everything a session needs to open a connection. */
export interface SessionOptions {
  /** Server host name; also the name its certificate must match. */
  host: string;
  /** Server port. */
  port: number;
  /** TLS mode. */
  tls: TlsMode;
  /** Credentials, when the server requires AUTH. */
  auth?: SmtpAuth;
  /** Allow AUTH on a plaintext connection (only with `tls: "none"`). */
  allowInsecureAuth?: boolean;
  /** Extra trusted CA certificates (PEM). */
  caCerts?: string[];
  /** The EHLO name. */
  name: string;
  /** Deadline of each step, in milliseconds. */
  timeoutMs: number;
  /** The socket factory. */
  connect: Connect;
}

/** Per-call options: cancellation and progress. */
export interface StepOptions {
  /** Cancels the step (up to the final dot of a message). */
  signal?: AbortSignal;
  /** Receives progress events. */
  onStatus?: (event: StatusEvent) => void;
}

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

const encoder = new TextEncoder();
const QUIT_TIMEOUT_MS = 2000;
const MAX_AUTH_ROUNDS = 8;
// RFC 4954 4: an initial response that makes the line longer than this goes after a 334.
const MAX_AUTH_LINE = 500;

/** One open SMTP connection. Use {@linkcode SmtpSession.open}. */
export class SmtpSession {
  #options: SessionOptions;
  #socket: SmtpSocket;
  #reader: ReplyReader;
  #capabilities = new Capabilities();
  #broken = false;
  #closed = false;
  #transactions = 0;
  #phase: SmtpPhase = "connect";

  private constructor(options: SessionOptions, socket: SmtpSocket) {
    this.#options = options;
    this.#socket = socket;
    this.#reader = new ReplyReader(socket);
  }

  /** Connects, reads the greeting, says EHLO, secures the connection and authenticates. */
  static async open(options: SessionOptions, step: StepOptions = {}): Promise<SmtpSession> {
    const socket = await connectSocket(options, step);
    const session = new SmtpSession(options, socket);
    try {
      await session.#handshake(step);
      return session;
    } catch (error) {
      await session.destroy();
      throw error;
    }
  }

  /** The capabilities the server advertised (after TLS, only the post-TLS ones). */
  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  /** Whether the connection is protected by TLS. */
  get secure(): boolean {
    return this.#socket.secure;
  }

  /** Completed transactions on this connection. */
  get transactions(): number {
    return this.#transactions;
  }

  /** Whether another transaction may use this connection. */
  get reusable(): boolean {
    return !this.#broken && !this.#closed && !this.#reader.idleActivity;
  }

  /** Marks the connection idle: anything the server sends or a hang-up now retires it. */
  park(): void {
    this.#reader.watchIdle();
  }

  /** Takes the connection out of the idle state for a transaction. */
  unpark(): void {
    this.#reader.stopWatching();
  }

  /** The protocol step the session is in (or ended in). */
  get phase(): SmtpPhase {
    return this.#phase;
  }

  /**
   * Runs one mail transaction. Resolves when the server accepted the message;
   * rejects with an {@linkcode SmtpError} or an `AbortError`. The session stays
   * reusable after a refusal the server answered cleanly.
   */
  async send(tx: Transaction, step: StepOptions = {}): Promise<TransactionOutcome> {
    if (!this.reusable) {
      throw new SmtpError("connection", "This SMTP connection is closed.", { phase: "mail" });
    }
    try {
      return await this.#transaction(tx, step);
    } catch (error) {
      if (this.#broken) await this.destroy();
      throw error;
    }
  }

  /** Says QUIT and closes, within a short bound. Never rejects. */
  async quit(): Promise<void> {
    if (this.#closed) return;
    if (!this.#broken) {
      try {
        const deadline = Math.min(this.#options.timeoutMs, QUIT_TIMEOUT_MS);
        await withDeadline(this.#socket.write(encoder.encode("QUIT\r\n")), {
          timeoutMs: deadline,
          phase: this.#phase,
          what: "QUIT to be written",
        });
        await this.#reader.read({
          phase: this.#phase,
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
    if (this.#closed) return;
    this.#closed = true;
    this.#broken = true;
    await this.#socket.close();
  }

  // --- connection set-up ---

  async #handshake(step: StepOptions): Promise<void> {
    const { tls } = this.#options;
    this.#phase = "greeting";
    const greeting = await this.#read("the server's greeting", step);
    status(step, { phase: "greeting", state: "done", reply: summarizeReply(greeting) });
    if (greeting.code !== 220) {
      throw replyError(
        greeting,
        "greeting",
        "The server refused the connection",
        sessionErrorType(greeting),
      );
    }

    await this.#ehlo(step);
    if (!this.#socket.secure && (tls === "starttls" || tls === "opportunistic")) {
      await this.#startTls(step);
    }
    if (this.#options.auth) await this.#authenticate(this.#options.auth, step);
  }

  async #ehlo(step: StepOptions): Promise<void> {
    this.#phase = "ehlo";
    status(step, { phase: "ehlo", state: "started" });
    await this.#write(greetCommand("EHLO", this.#options.name) + "\r\n", step);
    let reply = await this.#read("the reply to EHLO", step);
    if (reply.code === 500 || reply.code === 502) {
      // A server without ESMTP: HELO, and no extensions at all.
      await this.#write(greetCommand("HELO", this.#options.name) + "\r\n", step);
      reply = await this.#read("the reply to HELO", step);
      if (reply.code !== 250) {
        throw replyError(reply, "ehlo", "The server refused HELO", sessionErrorType(reply));
      }
      this.#capabilities = new Capabilities();
    } else if (reply.code === 250) {
      this.#capabilities = Capabilities.fromEhloReply(reply);
    } else {
      throw replyError(reply, "ehlo", "The server refused EHLO", sessionErrorType(reply));
    }
    status(step, { phase: "ehlo", state: "done", reply: summarizeReply(reply) });
  }

  async #startTls(step: StepOptions): Promise<void> {
    const required = this.#options.tls === "starttls";
    this.#phase = "starttls";
    if (!this.#capabilities.has("STARTTLS")) {
      if (!required) return;
      this.#broken = true;
      throw new SmtpError(
        "tls",
        "The server does not offer STARTTLS, and TLS is required. Use a server or port with " +
          'TLS (465 with tls "implicit"), or set tls to "opportunistic" to allow plaintext.',
        { phase: "starttls" },
      );
    }
    status(step, { phase: "starttls", state: "started" });
    await this.#write("STARTTLS\r\n", step);
    const reply = await this.#read("the reply to STARTTLS", step);
    if (reply.code !== 220) {
      if (!required) return;
      this.#broken = true;
      throw replyError(reply, "starttls", "The server refused STARTTLS", "tls");
    }
    if (this.#reader.bufferedBytes > 0) {
      // Bytes after the 220 were written before TLS: a man in the middle may
      // have injected them to be read as if they came over TLS (CVE-2011-0411 class).
      this.#broken = true;
      throw new SmtpError(
        "tls",
        "The server sent data after its STARTTLS reply and before the TLS handshake " +
          "(possible response injection); the connection was dropped.",
        { phase: "starttls", code: reply.code, response: reply.raw },
      );
    }
    try {
      this.#socket = await withDeadline(
        this.#socket.startTls({ hostname: this.#options.host, caCerts: this.#options.caCerts }),
        {
          timeoutMs: this.#options.timeoutMs,
          phase: "starttls",
          what: "the TLS handshake",
          signal: step.signal,
        },
      );
    } catch (error) {
      // Closing the old socket (when the session is destroyed) ends a handshake that hangs.
      this.#broken = true;
      throw isAbortError(error) ? error : asTlsError(error, "starttls");
    }
    this.#reader.replaceSocket(this.#socket);
    status(step, { phase: "starttls", state: "done", reply: summarizeReply(reply) });
    try {
      // Only the capabilities sent over TLS count (RFC 3207 4.2).
      await this.#ehlo(step);
    } catch (error) {
      // On some platforms the handshake completes lazily: its failure shows here.
      throw error instanceof SmtpError && (error.type === "connection" || error.type === "tls")
        ? asTlsError(error, "starttls")
        : error;
    }
  }

  async #authenticate(auth: SmtpAuth, step: StepOptions): Promise<void> {
    this.#phase = "auth";
    if (!this.#socket.secure) {
      const mayAuth = this.#options.tls === "none" && this.#options.allowInsecureAuth;
      if (!mayAuth) {
        this.#broken = true;
        throw this.#options.tls === "opportunistic"
          ? new SmtpError(
            "tls",
            "The server did not offer STARTTLS, and credentials are never sent over plaintext. " +
              'Use tls "starttls" or "implicit" with a server that supports TLS.',
            { phase: "starttls" },
          )
          : new SmtpError(
            "auth",
            "Refusing to authenticate over a plaintext connection. Use TLS, or allow it " +
              "explicitly (allowInsecureAuth / insecure_auth=1) on a trusted network.",
            { phase: "auth" },
          );
      }
    }
    const credentials: SaslCredentials = auth;
    const offered = this.#capabilities.authMechanisms;
    let mechanism;
    try {
      mechanism = chooseMechanism(offered, credentials, auth.mechanism);
    } catch (error) {
      throw new SmtpError("auth", (error as Error).message, { phase: "auth" });
    }
    if (!mechanism) {
      throw new SmtpError(
        "auth",
        offered.length === 0
          ? "The server does not offer AUTH, but credentials were configured."
          : `None of the server's AUTH mechanisms (${offered.join(", ")}) fits the credentials.`,
        { phase: "auth" },
      );
    }
    status(step, { phase: "auth", state: "started" });
    const sasl = createSaslClient(mechanism, credentials);
    let pending: string | undefined;
    let line = `AUTH ${mechanism}`;
    if (sasl.initialResponse !== undefined) {
      if (line.length + 1 + sasl.initialResponse.length <= MAX_AUTH_LINE) {
        line += ` ${sasl.initialResponse}`;
      } else {
        pending = sasl.initialResponse;
      }
    }
    // Everything we send in this exchange; server text that repeats any of it is withheld.
    const sent = credentialForms(credentials);
    if (sasl.initialResponse !== undefined) sent.push(sasl.initialResponse);
    await this.#write(line + "\r\n", step);
    for (let round = 0; round < MAX_AUTH_ROUNDS; round++) {
      const reply = withholdEcho(await this.#read("the reply to AUTH", step), sent);
      if (reply.code === 235) {
        status(step, { phase: "auth", state: "done", reply: summarizeReply(reply) });
        return;
      }
      if (reply.code !== 334) {
        throw replyError(
          reply,
          "auth",
          "Authentication failed",
          reply.code >= 500 ? "auth" : undefined,
        );
      }
      const answer = pending ?? await sasl.respond(reply.lines[0].trim());
      pending = undefined;
      sent.push(answer);
      await this.#write(answer + "\r\n", step);
    }
    this.#broken = true;
    throw new SmtpError("protocol", "The server kept the AUTH exchange going for too long.", {
      phase: "auth",
    });
  }

  // --- transactions ---

  async #transaction(tx: Transaction, step: StepOptions): Promise<TransactionOutcome> {
    const caps = this.#capabilities;
    this.#phase = "mail";
    const utf8 = tx.smtputf8 || needsSmtputf8([tx.envelope.from, ...tx.envelope.to]);
    if (utf8 && !caps.has("SMTPUTF8")) {
      throw new SmtpError(
        "rejected",
        "The message has a non-ASCII mailbox name, and the server does not support SMTPUTF8. " +
          "Use ASCII addresses or a server that offers SMTPUTF8.",
        { phase: "mail" },
      );
    }
    const eightBit = tx.eightBit || utf8;
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
      eightBitMime: eightBit && caps.has("8BITMIME"),
      smtputf8: utf8,
      ret: dsn?.return,
      envelopeId: dsn?.envelopeId,
    });
    const rcpts = tx.envelope.to.map((address) =>
      rcptToCommand(address, dsn ? { notify: dsn.notify, originalRecipient: address } : {})
    );
    const pipelining = caps.has("PIPELINING");
    // BDAT LAST pipelined behind the RCPTs costs one round trip per message, but a
    // refused recipient then no longer stops the message for the others: only
    // when that cannot matter (one recipient, or allowPartial).
    if (pipelining && caps.has("CHUNKING") && (tx.envelope.to.length === 1 || tx.allowPartial)) {
      return await this.#chunkedTransaction(tx, [mail, ...rcpts], step, dsnSupported);
    }

    status(step, { phase: "mail", state: "started" });
    let mailReply: SmtpReply;
    const rcptReplies: SmtpReply[] = [];
    let dataReply: SmtpReply | undefined;
    if (pipelining) {
      await this.#write([mail, ...rcpts, "DATA"].join("\r\n") + "\r\n", step);
      for (const address of tx.envelope.to) {
        status(step, { phase: "rcpt", state: "started", recipient: address });
      }
      mailReply = await this.#read("the reply to MAIL FROM", step);
      this.#reportMail(mailReply, step);
      try {
        this.#phase = "rcpt";
        for (const address of tx.envelope.to) {
          rcptReplies.push(await this.#read("the reply to RCPT TO", step));
          this.#reportRcpt(address, rcptReplies.at(-1)!, step);
        }
        this.#phase = "data";
        status(step, { phase: "data", state: "started" });
        dataReply = await this.#read("the reply to DATA", step);
      } catch (error) {
        // A server that refused MAIL (421 included) may hang up before the
        // other replies: the refusal is the error worth reporting.
        if (isPositive(mailReply) || isAbortError(error)) throw error;
        await this.destroy();
        throw replyError(mailReply, "mail", "The server refused the sender");
      }
    } else {
      await this.#write(mail + "\r\n", step);
      mailReply = await this.#read("the reply to MAIL FROM", step);
      this.#reportMail(mailReply, step);
      if (!isPositive(mailReply)) {
        await this.#reset(step);
        throw replyError(mailReply, "mail", "The server refused the sender");
      }
      this.#phase = "rcpt";
      for (const [i, address] of tx.envelope.to.entries()) {
        status(step, { phase: "rcpt", state: "started", recipient: address });
        await this.#write(rcpts[i] + "\r\n", step);
        rcptReplies.push(await this.#read("the reply to RCPT TO", step));
        this.#reportRcpt(address, rcptReplies.at(-1)!, step);
      }
    }

    if (!isPositive(mailReply)) {
      await this.#abandonTransaction(dataReply, step);
      throw replyError(mailReply, "mail", "The server refused the sender");
    }
    const { accepted, rejected, refusal } = judgeRecipients(tx, rcptReplies);
    if (refusal) {
      await this.#abandonTransaction(dataReply, step);
      throw refusal;
    }

    if (!pipelining) {
      this.#phase = "data";
      status(step, { phase: "data", state: "started" });
      await this.#write("DATA\r\n", step);
      dataReply = await this.#read("the reply to DATA", step);
    }
    if (dataReply!.code !== 354) {
      const error = replyError(dataReply!, "data", "The server refused DATA");
      error.rejected = rejected;
      await this.#reset(step);
      throw error;
    }
    status(step, { phase: "data", state: "done", reply: summarizeReply(dataReply!) });

    const finalReply = await this.#writeMessage(tx, step);
    if (!isPositive(finalReply)) {
      const error = replyError(finalReply, "message", "The server refused the message");
      error.rejected = rejected;
      throw error;
    }
    this.#transactions++;
    const outcome: TransactionOutcome = { accepted, rejected, response: finalReply.raw };
    if (tx.dsn) outcome.dsn = { requested: true, supported: dsnSupported };
    return outcome;
  }

  /**
   * One transaction with CHUNKING (RFC 3030): MAIL, every RCPT and the message
   * as `BDAT` chunks, the first in the same write as the commands. The last
   * chunk (`BDAT n LAST`) plays the part of the final dot: cancellation is
   * honoured until it is written, and a lost connection afterwards means the
   * outcome is unknown.
   */
  async #chunkedTransaction(
    tx: Transaction,
    commands: string[],
    step: StepOptions,
    dsnSupported: boolean,
  ): Promise<TransactionOutcome> {
    status(step, { phase: "mail", state: "started" });
    for (const address of tx.envelope.to) {
      status(step, { phase: "rcpt", state: "started", recipient: address });
    }
    status(step, { phase: "message", state: "started" });
    let pending = encoder.encode(commands.join("\r\n") + "\r\n");
    let chunks = 0;
    const iterator = canonicalizeLineEnds(tx.chunks())[Symbol.iterator]();
    let current = iterator.next();
    while (true) {
      const next = current.done ? current : iterator.next();
      const last = next.done === true;
      const piece = current.done ? new Uint8Array(0) : current.value;
      const header = encoder.encode(`BDAT ${piece.length}${last ? " LAST" : ""}\r\n`);
      const bytes = concatBytes(pending, header, piece);
      pending = new Uint8Array(0);
      chunks++;
      if (!last) {
        await this.#write(bytes, step);
        this.#phase = "message"; // the first write carried MAIL and RCPT; the rest is data
        current = next;
        continue;
      }
      if (step.signal?.aborted) {
        await this.destroy();
        throw abortErrorFrom(step.signal);
      }
      try {
        // From here on the message may be delivered: no cancellation any more.
        await this.#write(bytes, {});
      } catch (error) {
        throw this.#finalWriteFailure(error);
      }
      this.#phase = "message";
      break;
    }

    const replies: SmtpReply[] = [];
    const expected = 1 + tx.envelope.to.length + chunks;
    try {
      while (replies.length < expected) {
        replies.push(await this.#read("the server's replies to the message", {}));
        this.#reportChunkedReply(tx, replies, expected, step);
      }
    } catch (error) {
      const [mailReply, ...rest] = replies;
      const rcptReplies = rest.slice(0, tx.envelope.to.length);
      // A refusal already read means nothing can have been delivered.
      if (mailReply && !isPositive(mailReply)) {
        throw replyError(mailReply, "mail", "The server refused the sender");
      }
      if (rcptReplies.length === tx.envelope.to.length && !rcptReplies.some(isPositive)) {
        throw judgeRecipients(tx, rcptReplies).refusal!;
      }
      // A refused chunk fails the whole transaction (RFC 3030).
      const chunkRefusal = rest.slice(tx.envelope.to.length).find((reply) => !isPositive(reply));
      if (chunkRefusal) throw replyError(chunkRefusal, "message", "The server refused the message");
      throw this.#unknownOutcome(error);
    }

    const [mailReply, ...rest] = replies;
    const rcptReplies = rest.slice(0, tx.envelope.to.length);
    const { accepted, rejected, refusal } = judgeRecipients(tx, rcptReplies);
    const chunkRefusal = rest.slice(tx.envelope.to.length).find((reply) => !isPositive(reply));
    if (!isPositive(mailReply) || refusal || chunkRefusal) {
      // Leave no half-finished transaction behind on a connection that goes back to the pool.
      await this.#reset(step);
      if (!isPositive(mailReply)) {
        throw replyError(mailReply, "mail", "The server refused the sender");
      }
      if (refusal) throw refusal;
      const error = replyError(chunkRefusal!, "message", "The server refused the message");
      error.rejected = rejected;
      throw error;
    }
    const finalReply = rest.at(-1)!;
    this.#transactions++;
    const outcome: TransactionOutcome = { accepted, rejected, response: finalReply.raw };
    if (tx.dsn) outcome.dsn = { requested: true, supported: dsnSupported };
    return outcome;
  }

  /** Reports the reply just read in a chunked transaction as the step it answers. */
  #reportChunkedReply(
    tx: Transaction,
    replies: SmtpReply[],
    expected: number,
    step: StepOptions,
  ): void {
    const index = replies.length - 1;
    const reply = replies[index];
    const recipients = tx.envelope.to.length;
    if (index === 0) this.#reportMail(reply, step);
    else if (index <= recipients) this.#reportRcpt(tx.envelope.to[index - 1], reply, step);
    else if (index === expected - 1) {
      status(step, { phase: "message", state: "done", reply: summarizeReply(reply) });
    }
  }

  /**
   * A write of the last bytes that failed did not hand the end of the data to
   * the network, so nothing can be delivered: a connection failure. One that
   * timed out may still complete later: the outcome is unknown.
   */
  #finalWriteFailure(error: unknown): unknown {
    this.#broken = true;
    if (error instanceof SmtpError && error.type === "connection") return error;
    return this.#unknownOutcome(error);
  }

  #unknownOutcome(error: unknown): SmtpError {
    this.#broken = true;
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

  /**
   * Streams the message and reads the server's verdict. Cancellation is
   * honoured until the last chunk (which carries the final dot) is written;
   * after that, a lost connection means the outcome is unknown.
   */
  async #writeMessage(tx: Transaction, step: StepOptions): Promise<SmtpReply> {
    this.#phase = "message";
    status(step, { phase: "message", state: "started" });
    const iterator = encodeData(tx.chunks())[Symbol.iterator]();
    let current = iterator.next();
    while (!current.done) {
      const next = iterator.next();
      if (next.done) break; // `current` is the last chunk: it ends with CRLF.CRLF
      await this.#write(current.value, step);
      current = next;
    }
    if (step.signal?.aborted) {
      this.#broken = true;
      await this.destroy();
      throw new DOMException("The send was cancelled.", "AbortError");
    }
    try {
      // From here on the message may be delivered: no cancellation any more.
      await this.#write(current.value!, {});
    } catch (error) {
      throw this.#finalWriteFailure(error);
    }
    try {
      const reply = await this.#read("the reply to the end of the message", {});
      status(step, { phase: "message", state: "done", reply: summarizeReply(reply) });
      return reply;
    } catch (error) {
      throw this.#unknownOutcome(error);
    }
  }

  #reportMail(reply: SmtpReply, step: StepOptions): void {
    status(step, { phase: "mail", state: "done", reply: summarizeReply(reply) });
  }

  #reportRcpt(recipient: string, reply: SmtpReply, step: StepOptions): void {
    status(step, { phase: "rcpt", state: "done", recipient, reply: summarizeReply(reply) });
  }

  /**
   * Ends a transaction that must not deliver. If a pipelined DATA was already
   * accepted (354), the only way out that cannot deliver is to drop the
   * connection: the final dot is never sent.
   */
  async #abandonTransaction(dataReply: SmtpReply | undefined, step: StepOptions): Promise<void> {
    if (dataReply?.code === 354) {
      this.#broken = true;
      await this.destroy();
      return;
    }
    await this.#reset(step);
  }

  async #reset(step: StepOptions): Promise<void> {
    try {
      await this.#write("RSET\r\n", step);
      const reply = await this.#read("the reply to RSET", step);
      if (reply.code !== 250) this.#broken = true;
    } catch {
      this.#broken = true;
    }
  }

  // --- I/O with deadlines ---

  async #write(data: string | Uint8Array, step: StepOptions): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      await withDeadline(this.#socket.write(bytes), {
        timeoutMs: this.#options.timeoutMs,
        phase: this.#phase,
        what: "the server to accept our data",
        signal: step.signal,
      });
    } catch (error) {
      throw this.#failed(error);
    }
  }

  async #read(what: string, step: StepOptions): Promise<SmtpReply> {
    try {
      return await this.#reader.read({
        phase: this.#phase,
        timeoutMs: this.#options.timeoutMs,
        signal: step.signal,
        what,
      });
    } catch (error) {
      throw this.#failed(error);
    }
  }

  /** Marks the connection unusable and turns platform errors into typed ones. */
  #failed(error: unknown): unknown {
    this.#broken = true;
    if (error instanceof SmtpError || isAbortError(error)) return error;
    // workerd reports a failed handshake on the first read or write after it.
    if (isTlsHandshakeFailure(error)) return asTlsError(error, this.#phase);
    return new SmtpError(
      "connection",
      `The connection to the SMTP server failed: ${describe(error)}`,
      {
        phase: this.#phase,
        cause: error,
      },
    );
  }
}

async function connectSocket(options: SessionOptions, step: StepOptions): Promise<SmtpSocket> {
  status(step, { phase: "connect", state: "started" });
  const implicit = options.tls === "implicit";
  const giveUp = new AbortController();
  const pending = options.connect({
    hostname: options.host,
    port: options.port,
    tls: implicit,
    caCerts: options.caCerts,
    signal: giveUp.signal,
  });
  try {
    const socket = await withDeadline(pending, {
      timeoutMs: options.timeoutMs,
      phase: "connect",
      what: `a connection to ${options.host}:${options.port}`,
      signal: step.signal,
    });
    status(step, { phase: "connect", state: "done" });
    return socket;
  } catch (error) {
    // A connection half open, or completing after we gave up, must not leak.
    giveUp.abort();
    pending.then((socket) => socket.close(), () => {});
    if (error instanceof SmtpError || isAbortError(error)) throw error;
    if (isTlsHandshakeFailure(error)) throw asTlsError(error, "connect");
    throw new SmtpError(
      "connection",
      `Could not connect to ${options.host}:${options.port}: ${describe(error)}. ` +
        "Check the host, the port and that outbound connections to it are allowed.",
      { phase: "connect", cause: error },
    );
  }
}

function status(step: StepOptions, event: StatusEvent): void {
  try {
    step.onStatus?.(event);
  } catch {
    // A failing progress listener must not break the send.
  }
}

function isPositive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

function rejection(address: string, reply: SmtpReply): RecipientRejection {
  const result: RecipientRejection = { address, code: reply.code, message: reply.message };
  if (reply.enhancedCode !== undefined) result.enhancedCode = reply.enhancedCode;
  return result;
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
    rejected.every((r) => r.code < 500) ? "transient" : "rejected",
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

/**
 * The error type of a refusal before any transaction (greeting, EHLO): 4xx is
 * transient; 5xx refuses the session itself, not a sender, recipient or
 * content, so it counts as a failure to reach the service (`connection`).
 */
function sessionErrorType(reply: SmtpReply): SmtpErrorType {
  return reply.code >= 400 && reply.code < 500 ? "transient" : "connection";
}

/** The error type a negative reply stands for: 4xx transient, 5xx permanent. */
function errorTypeForReply(reply: SmtpReply): SmtpErrorType {
  if (reply.code >= 400 && reply.code < 500) return "transient";
  if (reply.code >= 500) return "rejected";
  return "protocol";
}

function replyError(
  reply: SmtpReply,
  phase: SmtpPhase,
  what: string,
  type: SmtpErrorType = errorTypeForReply(reply),
): SmtpError {
  return new SmtpError(type, `${what}: ${reply.code} ${reply.message}`.trim(), {
    phase,
    code: reply.code,
    enhancedCode: reply.enhancedCode,
    response: reply.raw,
  });
}

/** What replaces server text that repeated part of what we sent during AUTH. */
const WITHHELD = "(server text withheld: it repeated the credentials)";

/**
 * `reply` with its text withheld when it repeats anything in `sent` (some
 * servers quote the AUTH response or the user name back); codes stay.
 * A 334 challenge is kept: the mechanism must read it.
 */
function withholdEcho(reply: SmtpReply, sent: readonly string[]): SmtpReply {
  if (reply.code === 334 || !echoesCredentials(reply.raw, sent)) return reply;
  const prefix = [String(reply.code), reply.enhancedCode].filter(Boolean).join(" ");
  return { ...reply, lines: [WITHHELD], message: WITHHELD, raw: `${prefix} ${WITHHELD}` };
}

function isTlsHandshakeFailure(error: unknown): boolean {
  return (error as Error)?.name === TLS_HANDSHAKE_ERROR;
}

function asTlsError(error: unknown, phase: SmtpPhase): SmtpError {
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

function describe(error: unknown): string {
  if (error instanceof SmtpError) return error.message;
  if (error instanceof Error) return error.message || error.name;
  return "unknown error";
}
