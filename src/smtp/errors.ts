/**
 * Typed errors of the SMTP client. Every failure a caller can see is an
 * {@linkcode SmtpError} with a `type` (what went wrong) and a `phase` (where).
 * Messages never carry passwords, tokens or AUTH payloads.
 *
 * @module
 */

import type { RecipientRejection, SendResult, SmtpErrorType, SmtpPhase } from "./types.ts";

export { SMTP_ERROR_TYPES, SMTP_PHASES } from "./types.ts";
export type { SmtpErrorType, SmtpPhase } from "./types.ts";

/** Everything an {@linkcode SmtpError} can carry besides its message. */
export interface SmtpErrorOptions {
  /** The protocol step. */
  phase: SmtpPhase;
  /** The server's 3-digit reply code, when a reply caused the error. */
  code?: number;
  /** The RFC 3463 enhanced status code (`5.1.1`), when the server sent one. */
  enhancedCode?: string;
  /** The server's reply text, when a reply caused the error. */
  response?: string;
  /** Per-recipient refusals known when the error happened. */
  rejected?: RecipientRejection[];
  /** The caller's token of the send that failed. */
  token?: unknown;
  /** The full result of the failed send, when this error ends a send. */
  result?: SendResult;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** A typed SMTP failure: `type` says what, `phase` says where. */
export class SmtpError extends Error {
  /** What went wrong. */
  readonly type: SmtpErrorType;
  /** The protocol step in which it went wrong. */
  readonly phase: SmtpPhase;
  /** The server's reply code, if a reply caused it. */
  readonly code?: number;
  /** The enhanced status code, if the server sent one. */
  readonly enhancedCode?: string;
  /** The server's reply text, if a reply caused it. */
  readonly response?: string;
  /** Per-recipient refusals. */
  readonly rejected: RecipientRejection[];
  /** The caller's token. */
  readonly token: unknown;
  /** The full result of the failed send, when this error ended a send. */
  readonly result?: SendResult;

  /** Creates an error; `message` must not contain secrets. */
  constructor(type: SmtpErrorType, message: string, options: SmtpErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SmtpError";
    this.type = type;
    this.phase = options.phase;
    this.code = options.code;
    this.enhancedCode = options.enhancedCode;
    this.response = options.response;
    this.rejected = options.rejected ?? [];
    this.token = options.token ?? null;
    if (options.result !== undefined) this.result = options.result;
  }

  /** The fields this error was built from, to build a fuller one from them. */
  get options(): SmtpErrorOptions {
    return {
      phase: this.phase,
      code: this.code,
      enhancedCode: this.enhancedCode,
      response: this.response,
      rejected: this.rejected,
      token: this.token,
      result: this.result,
      cause: this.cause,
    };
  }
}

/** Whether `error` is the DOMException an aborted AbortSignal produces. */
export function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}
