/**
 * The reply reader: turns the server's bytes into SMTP replies (RFC 5321
 * 4.2), strictly. A reply may arrive split across reads at any byte; every
 * line is bounded in length, every reply in line count, and every read has a
 * deadline.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import { SmtpError, type SmtpErrorOptions } from "./errors.ts";
import { type DeadlineOptions, withDeadline } from "./deadline.ts";
import type { SmtpSocket } from "../socket/socket.ts";
import type { ReplySummary, SmtpErrorType, SmtpPhase } from "./types.ts";

/** One complete server reply. */
export interface SmtpReply {
  /** The 3-digit reply code. */
  code: number;
  /** The RFC 3463 enhanced status code of the first line, if any (`5.1.1`). */
  enhancedCode?: string;
  /** The text of each line, after the code and separator. */
  lines: string[];
  /** The text of the lines without codes and enhanced codes, joined with a space. */
  message: string;
  /** The reply as received, lines joined with `\n` (for error reports). */
  raw: string;
}

/** Limits of the reply reader. */
export interface ReplyReaderOptions {
  /** Longest accepted reply line in octets, excluding CRLF. Default 4096 (RFC 5321 asks for 512). */
  maxLineLength?: number;
  /** Most lines in one reply. Default 512. */
  maxLines?: number;
  /** How a socket read gets its deadline; default {@linkcode withDeadline}. */
  deadline?: <T>(promise: Promise<T>, options: DeadlineOptions) => Promise<T>;
}

/** Options of one {@linkcode ReplyReader.read}. */
export interface ReadReplyOptions {
  /** The protocol step, carried by errors. */
  phase: SmtpPhase;
  /** Deadline for the whole reply. */
  timeoutMs: number;
  /** Cancels the wait. */
  signal?: AbortSignal;
  /** What the reply answers, for the timeout message. */
  what?: string;
}

const CR = 0x0d;
const LF = 0x0a;
const ENHANCED_CODE = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;
const decoder = new TextDecoder();

/** Reads replies from one socket, keeping bytes that arrive ahead of time. */
export class ReplyReader {
  #socket: SmtpSocket;
  #buffer: Uint8Array = new Uint8Array(0);
  #maxLineLength: number;
  #maxLines: number;
  #deadline: <T>(promise: Promise<T>, options: DeadlineOptions) => Promise<T>;
  #pendingRead: Promise<Uint8Array | null> | undefined;
  /** Where the line {@linkcode ReplyReader.#peekLine} found last ends, its LF included. */
  #peekedEnd = 0;
  #watching = false;
  #idleActivity = false;

  /** Reads from `socket`. */
  constructor(socket: SmtpSocket, options: ReplyReaderOptions = {}) {
    this.#socket = socket;
    this.#maxLineLength = options.maxLineLength ?? 4096;
    this.#maxLines = options.maxLines ?? 512;
    this.#deadline = options.deadline ?? withDeadline;
  }

  /** Bytes received beyond the last reply read (a reply the server sent early). */
  get bufferedBytes(): number {
    return this.#buffer.length;
  }

  /**
   * Starts reading while the connection is idle in a pool, so that a server
   * that speaks unprompted (a 421 before closing) or hangs up is noticed
   * before the next transaction is written. The bytes are kept for the next
   * {@linkcode ReplyReader.read}.
   */
  watchIdle(): void {
    this.#watching = true;
    // Bytes nobody asked for would shift every later reply by one.
    if (this.#buffer.length > 0) this.#idleActivity = true;
    if (this.#pendingRead) return;
    const pending = this.#socket.read();
    this.#pendingRead = pending;
    const noticed = () => {
      if (this.#watching) this.#idleActivity = true;
    };
    pending.then(noticed, noticed);
  }

  /** Ends {@linkcode ReplyReader.watchIdle}; a read still pending serves the next reply. */
  stopWatching(): void {
    this.#watching = false;
  }

  /** Whether the server sent anything, or closed, while watched as idle. */
  get idleActivity(): boolean {
    return this.#idleActivity;
  }

  /**
   * Continues on a new socket (after STARTTLS). Anything buffered from the
   * plaintext connection is discarded: it was not protected by TLS.
   */
  replaceSocket(socket: SmtpSocket): void {
    this.#socket = socket;
    this.#buffer = new Uint8Array(0);
  }

  /** Reads the next complete reply. */
  async read(options: ReadReplyOptions): Promise<SmtpReply> {
    let lines: ReplyLine[] | undefined;
    // One deadline for the whole reply: a server trickling bytes cannot stretch it.
    const deadline = Date.now() + options.timeoutMs;
    while (true) {
      // A line already buffered (the usual case for pipelined replies) costs no promise.
      const line = this.#takeLine(options) ?? await this.#readLine(options, deadline);
      const { code, separator, text } = parseReplyLine(line, options.phase);
      if (lines === undefined) {
        if (separator !== "-") return singleLineReply(code, text);
        lines = [];
      } else if (code !== lines[0].code) {
        throw protocolError(
          options.phase,
          `a multi-line reply whose codes differ (${lines[0].code} then ${code})`,
        );
      }
      lines.push({ code, text });
      if (separator !== "-") return buildReply(lines);
      if (lines.length >= this.#maxLines) {
        throw protocolError(options.phase, `a reply longer than ${this.#maxLines} lines`);
      }
    }
  }

  /**
   * The next reply, without waiting, when the buffer already holds all of it
   * and it is one line (as pipelined replies usually are); else `undefined`,
   * and nothing is consumed. Throws the errors {@linkcode ReplyReader.read}
   * would for the same bytes.
   */
  takeBuffered(options: ReadReplyOptions): SmtpReply | undefined {
    const line = this.#peekLine(options);
    if (line === undefined) return undefined;
    const { code, separator, text } = parseReplyLine(line, options.phase);
    if (separator === "-") return undefined;
    this.#buffer = this.#buffer.subarray(this.#peekedEnd);
    return singleLineReply(code, text);
  }

  /** The next line if the buffer holds all of it (consumed, without CRLF); else `undefined`. */
  #takeLine(options: ReadReplyOptions): string | undefined {
    const line = this.#peekLine(options);
    if (line !== undefined) this.#buffer = this.#buffer.subarray(this.#peekedEnd);
    return line;
  }

  /** The next line if the buffer holds all of it (without CRLF, not consumed); else `undefined`. */
  #peekLine(options: ReadReplyOptions): string | undefined {
    const lf = this.#buffer.indexOf(LF);
    if (lf === -1) return undefined;
    if (lf === 0 || this.#buffer[lf - 1] !== CR) {
      throw protocolError(options.phase, "a reply line ended by a bare LF instead of CRLF");
    }
    if (lf - 1 > this.#maxLineLength) {
      throw protocolError(options.phase, `a reply line longer than ${this.#maxLineLength} octets`);
    }
    const line = this.#buffer.subarray(0, lf - 1);
    if (line.includes(CR)) {
      throw protocolError(options.phase, "a reply line containing a bare CR");
    }
    this.#peekedEnd = lf + 1;
    return decoder.decode(line);
  }

  async #readLine(options: ReadReplyOptions, deadline: number): Promise<string> {
    while (true) {
      if (this.#buffer.length > this.#maxLineLength + 1) {
        throw protocolError(
          options.phase,
          `a reply line longer than ${this.#maxLineLength} octets`,
        );
      }
      const pending = this.#pendingRead ?? this.#socket.read();
      this.#pendingRead = undefined;
      const chunk = await this.#deadline(pending, {
        timeoutMs: Math.max(0, deadline - Date.now()),
        reportedMs: options.timeoutMs,
        phase: options.phase,
        what: options.what ?? "the server's reply",
        signal: options.signal,
      });
      if (chunk === null) {
        // A last line the server ended with its FIN instead of CRLF (a "421 … closing"
        // written in haste) still says what the server meant.
        const last = this.#unterminatedLastLine();
        if (last !== undefined) return last;
        throw new SmtpError(
          "connection",
          "The server closed the connection before it finished its reply.",
          { phase: options.phase },
        );
      }
      this.#buffer = this.#buffer.length === 0 ? chunk : concatBytes(this.#buffer, chunk);
      const line = this.#takeLine(options);
      if (line !== undefined) return line;
    }
  }

  /** The buffered bytes as a final reply line without its CRLF, consumed; else `undefined`. */
  #unterminatedLastLine(): string | undefined {
    if (this.#buffer.length === 0 || this.#buffer.includes(CR) || this.#buffer.includes(LF)) {
      return undefined;
    }
    const text = decoder.decode(this.#buffer);
    const separator = replySeparator(text);
    if (separator === undefined || separator === "-") return undefined;
    this.#buffer = new Uint8Array(0);
    return text;
  }
}

/** The parts of a reply reported in status events and results. */
export function summarizeReply(reply: SmtpReply): ReplySummary {
  return reply.enhancedCode === undefined
    ? { code: reply.code, message: reply.message }
    : { code: reply.code, enhancedCode: reply.enhancedCode, message: reply.message };
}

/** Whether `reply` is a positive completion (2xx). */
export function isPositive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/** The error type a negative reply stands for: 4xx transient, 5xx permanent. */
export function errorTypeForReply(reply: SmtpReply): SmtpErrorType {
  if (reply.code >= 400 && reply.code < 500) return "transient";
  if (reply.code >= 500) return "rejected";
  return "protocol";
}

/**
 * The error a refusal stands for: `what` (e.g. "The server refused the
 * sender") followed by the reply's code and text.
 */
export function replyError(
  reply: SmtpReply,
  phase: SmtpPhase,
  what: string,
  options: { type?: SmtpErrorType } & Omit<SmtpErrorOptions, "phase"> = {},
): SmtpError {
  const { type = errorTypeForReply(reply), ...rest } = options;
  return new SmtpError(type, `${what}: ${reply.code} ${reply.message}`.trim(), {
    ...rest,
    phase,
    code: reply.code,
    enhancedCode: reply.enhancedCode,
    response: reply.raw,
  });
}

/** One reply line: its code and its text after the separator. */
interface ReplyLine {
  code: string;
  text: string;
}

/** `line` split into its code, separator and text; protocol error when it has no reply code. */
function parseReplyLine(
  line: string,
  phase: SmtpPhase,
): ReplyLine & { separator: string } {
  const separator = replySeparator(line);
  if (separator === undefined) {
    throw protocolError(phase, "a reply line that does not start with a 3-digit code");
  }
  return { code: line.slice(0, 3), separator, text: line.length > 4 ? line.slice(4) : "" };
}

/**
 * The separator of a reply line (`" "`, `"-"`, or `""` for a bare code), or
 * `undefined` when the line does not start with a reply code (2xx-5xx, second
 * digit 0-5), checked without a regular expression per line.
 */
function replySeparator(line: string): string | undefined {
  if (line.length < 3) return undefined;
  const c0 = line.charCodeAt(0);
  const c1 = line.charCodeAt(1);
  const c2 = line.charCodeAt(2);
  if (c0 < 0x32 || c0 > 0x35 || c1 < 0x30 || c1 > 0x35 || c2 < 0x30 || c2 > 0x39) {
    return undefined;
  }
  if (line.length === 3) return "";
  const separator = line[3];
  return separator === " " || separator === "-" ? separator : undefined;
}

/** The enhanced code of a reply whose first line is `code` `text`, if it has one. */
function enhancedCodeOf(code: string, text: string): string | undefined {
  // ENHANCED_CODE needs a dot second; most texts without an enhanced code are rejected here.
  if (text.charCodeAt(1) !== 0x2e) return undefined;
  const enhanced = ENHANCED_CODE.exec(text);
  // An enhanced code counts only when its class agrees with the reply code (RFC 3463).
  return enhanced && enhanced[1] === code[0]
    ? `${enhanced[1]}.${enhanced[2]}.${enhanced[3]}`
    : undefined;
}

/** {@linkcode buildReply} for a reply of one line. */
function singleLineReply(code: string, text: string): SmtpReply {
  const enhancedCode = enhancedCodeOf(code, text);
  return {
    code: Number(code),
    enhancedCode,
    lines: [text],
    message: enhancedCode !== undefined && text.startsWith(enhancedCode)
      ? text.slice(enhancedCode.length).trimStart()
      : text,
    raw: `${code} ${text}`.trimEnd(),
  };
}

function buildReply(lines: ReplyLine[]): SmtpReply {
  const code = Number(lines[0].code);
  const enhancedCode = enhancedCodeOf(lines[0].code, lines[0].text);
  const texts = lines.map(({ text }) =>
    enhancedCode !== undefined && text.startsWith(enhancedCode)
      ? text.slice(enhancedCode.length).trimStart()
      : text
  );
  return {
    code,
    enhancedCode,
    lines: lines.map(({ text }) => text),
    message: texts.filter((text) => text !== "").join(" "),
    raw: lines.map((line, i) =>
      `${line.code}${i === lines.length - 1 ? " " : "-"}${line.text}`.trimEnd()
    ).join("\n"),
  };
}

function protocolError(phase: SmtpPhase, what: string): SmtpError {
  return new SmtpError("protocol", `The server sent ${what}; this is not valid SMTP.`, { phase });
}
