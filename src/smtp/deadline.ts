/**
 * Deadlines and cancellation for single protocol steps: every wait in the
 * client goes through {@linkcode withDeadline}, so no wait is unbounded.
 *
 * @module
 */

import { SmtpError, type SmtpPhase } from "./errors.ts";

/** Options for {@linkcode withDeadline}. */
export interface DeadlineOptions {
  /** How long the step may take. */
  timeoutMs: number;
  /** The deadline to name in the error, when `timeoutMs` is what is left of a longer one. */
  reportedMs?: number;
  /** The protocol step, for the timeout error. */
  phase: SmtpPhase;
  /** What is being waited for, e.g. "the server's reply to MAIL FROM". */
  what: string;
  /** Cancels the wait with an `AbortError`. */
  signal?: AbortSignal;
}

/**
 * Resolves like `promise`, or rejects with a `timeout` {@linkcode SmtpError}
 * after `timeoutMs`, or with an `AbortError` when `signal` aborts. The
 * original promise is left running; callers close the connection it belongs to.
 */
export function withDeadline<T>(promise: Promise<T>, options: DeadlineOptions): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortErrorFrom(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new SmtpError(
          "timeout",
          `Timed out after ${
            options.reportedMs ?? options.timeoutMs
          } ms waiting for ${options.what}. ` +
            "Check that the server is reachable and responsive, or raise timeoutMs.",
          { phase: options.phase },
        ),
      );
    }, options.timeoutMs);
    const onAbort = () => {
      cleanup();
      reject(abortErrorFrom(signal!));
    };
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error) => {
        cleanup();
        reject(error);
      },
    );
  });
}

/** The `AbortError` to reject with when `signal` aborted. */
export function abortErrorFrom(signal: AbortSignal): DOMException {
  const reason = signal.reason;
  if (reason instanceof DOMException && reason.name === "AbortError") return reason;
  return new DOMException("The send was cancelled.", "AbortError");
}
