/**
 * The outcome of a send, shared by the library, the HTTP responses and the
 * SSE `completed` event (contract section 3, "Result").
 *
 * @module
 */

import type { SmtpErrorType, SmtpPhase } from "./errors.ts";

/** One recipient the server refused. */
export interface RecipientRejection {
  /** The address as it went into RCPT TO. */
  address: string;
  /** The server's reply code (550...). */
  code: number;
  /** The enhanced status code, when sent (`5.1.1`). */
  enhancedCode?: string;
  /** The server's reply text. */
  message: string;
}

/** A parsed server reply, as reported in status events. */
export interface ReplySummary {
  /** 3-digit reply code. */
  code: number;
  /** RFC 3463 enhanced status code, when the server sent one. */
  enhancedCode?: string;
  /** The reply text, lines joined with a space, without codes. */
  message: string;
}

/** Whether Delivery Status Notifications were asked for and offered. */
export interface DsnOutcome {
  /** The message asked for DSN. */
  requested: boolean;
  /** The server advertised the DSN extension, so the parameters were sent. */
  supported: boolean;
}

/** The error part of a failed or cancelled {@linkcode SendResult}. */
export interface ResultError {
  /** What went wrong. */
  type: SmtpErrorType;
  /** A human-readable explanation without secrets. */
  message: string;
  /** Where it went wrong. */
  phase?: SmtpPhase;
  /** The server's reply code, if any. */
  code?: number;
  /** The enhanced status code, if any. */
  enhancedCode?: string;
}

/** The completion result of one send. */
export interface SendResult {
  /** How the send ended. */
  status: "sent" | "failed" | "cancelled";
  /** The caller's token, unchanged, or `null`. */
  token: unknown;
  /** The Message-ID header of the composed message. */
  messageId: string;
  /** Recipients the server accepted (RCPT TO form). */
  accepted: string[];
  /** Recipients the server refused. */
  rejected: RecipientRejection[];
  /** The server's reply to the message data, when it got that far. */
  response?: string;
  /** Present when the message asked for DSN. */
  dsn?: DsnOutcome;
  /** Present when `status` is not `sent`. */
  error?: ResultError;
}

/** A progress event: one protocol step started or done. */
export interface StatusEvent {
  /** The protocol step. */
  phase: SmtpPhase;
  /** Whether the step started or finished. */
  state: "started" | "done";
  /** The recipient, for `rcpt` steps. */
  recipient?: string;
  /** The server's reply that finished the step. */
  reply?: ReplySummary;
}
