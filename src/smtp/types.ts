/**
 * The shared vocabulary of the SMTP client: error types, protocol phases, TLS
 * modes, and the shapes of results and progress events. A leaf module (it
 * imports nothing), so errors, results and the session can all use it
 * without importing each other.
 *
 * @module
 */

/**
 * Every outcome type the SMTP client reports (contract section 3). The HTTP
 * layer adds its own (`validation`, `unauthorized`, …) on top of these.
 */
export const SMTP_ERROR_TYPES = [
  "connection",
  "tls",
  "auth",
  "rejected",
  "transient",
  "timeout",
  "protocol",
  "unknown_outcome",
  "cancelled",
  "internal",
] as const;

/** What went wrong; the HTTP layer maps each to a status code. */
export type SmtpErrorType = typeof SMTP_ERROR_TYPES[number];

/** Every protocol step, in the order a send goes through them. */
export const SMTP_PHASES = [
  "connect",
  "greeting",
  "ehlo",
  "starttls",
  "auth",
  "mail",
  "rcpt",
  "data",
  "message",
] as const;

/** The protocol step in which something happened. */
export type SmtpPhase = typeof SMTP_PHASES[number];

/** How the connection is protected (contract section 2, `SMTP_TLS`). */
export const TLS_MODES = ["starttls", "implicit", "opportunistic", "none"] as const;

/** How the connection is protected. */
export type TlsMode = typeof TLS_MODES[number];

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

/** Per-send options the session sees: cancellation and progress. */
export interface StepOptions {
  /** Cancels the send until the end of its message data has been written. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onStatus?: (event: StatusEvent) => void;
  /**
   * Called once, right after the end of the message data (the final dot, or
   * `BDAT … LAST`) was handed to the network: from then on the message may
   * be delivered whatever happens, and it is never resent.
   */
  onDataWritten?: () => void;
  /**
   * Called once, as the message data is about to begin (when DATA or the
   * first `BDAT` is queued); the end of the data (the final dot, or
   * `BDAT … LAST`) is not written until the promise it returns resolves, so
   * whatever it records is recorded before the message can be delivered. The
   * rest of the data and other sends' commands go on meanwhile. If it rejects
   * (or does not settle within the step timeout), the send fails before the
   * end of its data (`internal`, or `timeout`): nothing is delivered.
   */
  beforeDataEnd?: () => Promise<void> | void;
}

/** Calls `step.onStatus`; a listener that throws must not break the send. */
export function emitStatus(step: StepOptions, event: StatusEvent): void {
  try {
    step.onStatus?.(event);
  } catch {
    // A failing progress listener must not break the send.
  }
}
