/**
 * How a transaction ends when its connection fails under it or refuses it:
 * which sends nothing reached and may go, once, to a new connection
 * (`retry`), which must go there in lock-step (the server refused our
 * pipelining), and which had the end of their data written and so have an
 * unknown outcome, never resent.
 *
 * @module
 */

import { SmtpError } from "./errors.ts";
import type { SmtpReply } from "./reply.ts";
import type { Flight, SendSettlement } from "./transaction_flight.ts";
import { isSyncError, verdict } from "./transaction_replies.ts";
import type { SmtpPhase } from "./types.ts";

/**
 * The settlement of `flight`, still open when its connection failed with
 * `error`. One whose refusal was already read is that refusal; one whose data
 * end was written has an unknown outcome; the others were not delivered, and
 * those behind an earlier transaction on this connection may go to a new one.
 */
export function settlementAfterFailure(flight: Flight, error: unknown): SendSettlement {
  const decided = verdict(flight);
  if (decided.state === "refused") return { ok: false, error: decided.error, retry: false };
  if (decided.state === "accepted") return { ok: true, outcome: decided.outcome };
  if (flight.endWritten) return { ok: false, error: unknownOutcome(error), retry: false };
  return {
    ok: false,
    error: asFailureOf(error, flight.phase),
    retry: flight.ordinal > 0 && !flight.cancelled,
  };
}

/**
 * The settlement of `flight` refused with `error` by `reply`. A refusal of
 * our pipelining (on a pipelined connection, before the data end) is retried
 * in lock-step; a 421 means the server is going away: nothing was delivered,
 * and a send behind an earlier one may go to another connection.
 */
export function settlementOfRefusal(
  flight: Flight,
  error: SmtpError,
  options: { reply: SmtpReply; pipelining: boolean },
): SendSettlement & { ok: false } {
  const { reply } = options;
  const syncError = options.pipelining && isSyncError(reply) && !flight.endQueued;
  const closing = reply.code === 421 && !flight.endQueued && flight.ordinal > 0;
  return { ok: false, error, retry: syncError || closing, lockStep: syncError };
}

/** The failure of the sends a server left unanswered when it replied 421 in `phase`. */
export function closingError(reply: SmtpReply, phase: SmtpPhase): SmtpError {
  return new SmtpError(
    "transient",
    `The server is closing the connection: ${reply.code} ${reply.message}`.trim(),
    { phase, code: reply.code, enhancedCode: reply.enhancedCode },
  );
}

/** The error of a send whose data end was written and whose verdict never came. */
export function unknownOutcome(error: unknown): SmtpError {
  // A garbled reply after the final dot says no more than a lost connection does.
  const what = !(error instanceof SmtpError)
    ? "the connection was lost"
    : error.type === "protocol"
    ? "an invalid reply came back"
    : error.type === "timeout"
    ? "no reply came within the deadline"
    : "the connection was lost";
  return new SmtpError(
    "unknown_outcome",
    `The whole message was sent, then ${what} before the server confirmed it: the ` +
      "message may or may not have been delivered. It was not retried.",
    { phase: "message", cause: error },
  );
}

/** `error` as the failure of a send in `phase`, before its data end was written. */
function asFailureOf(error: unknown, phase: SmtpPhase): unknown {
  if (!(error instanceof SmtpError) || error.phase === phase) return error;
  return new SmtpError(error.type, error.message, { ...error.options, phase });
}
