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
      reject(timeoutError(options));
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

function timeoutError(options: DeadlineOptions): SmtpError {
  return new SmtpError(
    "timeout",
    `Timed out after ${options.reportedMs ?? options.timeoutMs} ms waiting for ${options.what}. ` +
      "Check that the server is reachable and responsive, or raise timeoutMs.",
    { phase: options.phase },
  );
}

/** A step waiting under a {@linkcode DeadlineTimer}. */
interface PendingStep {
  at: number;
  options: DeadlineOptions;
  reject: (error: unknown) => void;
}

/**
 * {@linkcode withDeadline} for the steps of one connection, on one shared
 * timer: a `setTimeout` and `clearTimeout` for every write and every read
 * cost about 5 µs per message of a busy connection. The timer is armed for
 * the earliest deadline and moved only when a step with an earlier one comes
 * (steps usually share one timeout, so deadlines come in order); when it
 * fires, the steps due fail and it is armed for the next. A step with a
 * `signal` goes through `withDeadline`.
 */
export class DeadlineTimer {
  #pending = new Set<PendingStep>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #stopped = false;

  /** Resolves like `promise`, or rejects with a `timeout` error as {@linkcode withDeadline} does. */
  guard<T>(promise: Promise<T>, options: DeadlineOptions): Promise<T> {
    if (options.signal) return withDeadline(promise, options);
    return new Promise<T>((resolve, reject) => {
      const step: PendingStep = { at: Date.now() + options.timeoutMs, options, reject };
      this.#pending.add(step);
      if (step.at < this.#timerAt) this.#arm(step.at);
      promise.then(
        (value) => {
          this.#done(step);
          resolve(value);
        },
        (error) => {
          this.#done(step);
          reject(error);
        },
      );
    });
  }

  /** The connection is closed: the timer goes once no step waits any more. */
  stop(): void {
    this.#stopped = true;
    if (this.#pending.size === 0) this.#disarm();
  }

  #done(step: PendingStep): void {
    this.#pending.delete(step);
    // Otherwise an idle timer only fires once more and is not armed again.
    if (this.#stopped && this.#pending.size === 0) this.#disarm();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const step of this.#pending) {
      if (step.at <= now) {
        this.#pending.delete(step);
        step.reject(timeoutError(step.options));
      } else if (step.at < next) {
        next = step.at;
      }
    }
    if (next !== Infinity) this.#arm(next);
  }
}

/** The `AbortError` to reject with when `signal` aborted. */
export function abortErrorFrom(signal: AbortSignal): DOMException {
  const reason = signal.reason;
  if (reason instanceof DOMException && reason.name === "AbortError") return reason;
  return new DOMException("The send was cancelled.", "AbortError");
}
