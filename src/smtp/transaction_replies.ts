/**
 * The reply interpreter of a transaction: from the replies it has so far
 * (MAIL, each RCPT, DATA, each BDAT chunk, the end of the data), one
 * function ({@linkcode verdict}) says whether it is still pending, may go on
 * to its data, was refused, or was accepted — for lock-step, pipelined and
 * BDAT sends alike (MailKit's `ParseCommandQueueResponses` is the model).
 *
 * @module
 */

import { SmtpError } from "./errors.ts";
import { isPositive, replyError, type SmtpReply } from "./reply.ts";
import type { Transaction, TransactionOutcome } from "./transaction_plan.ts";
import type { RecipientRejection } from "./types.ts";

/** The replies one transaction has had so far. */
export interface TransactionReplies {
  /** The transaction. */
  readonly tx: Transaction;
  /** Its data goes as BDAT (no 354 to wait for). */
  readonly chunked: boolean;
  /** The server advertised DSN. */
  readonly dsnSupported: boolean;
  /** The reply to MAIL FROM. */
  readonly mailReply?: SmtpReply;
  /** The replies to the RCPTs, in order. */
  readonly rcptReplies: readonly SmtpReply[];
  /** The reply to DATA. */
  readonly dataReply?: SmtpReply;
  /** The replies to the BDAT chunks before the last. */
  readonly chunkReplies: readonly SmtpReply[];
  /** The reply to the final dot or to `BDAT … LAST`. */
  readonly endReply?: SmtpReply;
}

/** What the replies a transaction has so far say about it. */
export type Verdict =
  | { state: "pending" }
  | { state: "go" }
  | { state: "refused"; error: SmtpError }
  | { state: "accepted"; outcome: TransactionOutcome };

/** Postfix and others answer illegal pipelining with 5.5.0 and words like these. */
const SYNC_ERROR = /pipelin|synchroni[sz]/i;

/**
 * What the replies of a transaction so far mean. A refusal already read
 * decides, whatever comes after it.
 */
export function verdict(replies: TransactionReplies): Verdict {
  const { tx } = replies;
  const recipients = tx.envelope.to.length;
  if (replies.mailReply && !isPositive(replies.mailReply)) {
    return refused(replyError(replies.mailReply, "mail", "The server refused the sender"));
  }
  if (replies.rcptReplies.length < recipients) return { state: "pending" };
  const { accepted, rejected, refusal } = judgeRecipients(tx, replies.rcptReplies);
  if (refusal) return refused(refusal);
  if (!replies.chunked) {
    if (!replies.dataReply) return { state: "pending" };
    if (replies.dataReply.code !== 354) {
      return refused(
        replyError(replies.dataReply, "data", "The server refused DATA", { rejected }),
      );
    }
  }
  // A refused chunk fails the whole transaction (RFC 3030).
  const chunkRefusal = replies.chunkReplies.find((reply) => !isPositive(reply));
  if (chunkRefusal) {
    return refused(
      replyError(chunkRefusal, "message", "The server refused the message", { rejected }),
    );
  }
  if (!replies.endReply) return replies.chunked ? { state: "pending" } : { state: "go" };
  if (!isPositive(replies.endReply)) {
    return refused(
      replyError(replies.endReply, "message", "The server refused the message", { rejected }),
    );
  }
  const outcome: TransactionOutcome = { accepted, rejected, response: replies.endReply.raw };
  if (tx.dsn) outcome.dsn = { requested: true, supported: replies.dsnSupported };
  return { state: "accepted", outcome };
}

/** Whether `reply` refuses our pipelining (Postfix: 503/554 5.5.0 "improper command pipelining"). */
export function isSyncError(reply: SmtpReply): boolean {
  return (reply.code === 503 || reply.code === 554) && SYNC_ERROR.test(reply.message);
}

function refused(error: SmtpError): Verdict {
  return { state: "refused", error };
}

function rejection(address: string, reply: SmtpReply): RecipientRejection {
  const result: RecipientRejection = { address, code: reply.code, message: reply.message };
  if (reply.enhancedCode !== undefined) result.enhancedCode = reply.enhancedCode;
  return result;
}

/**
 * Whether a refused recipient may succeed later. RFC 5321 4.5.3.1.10: a 552
 * to RCPT ("too many recipients") is to be treated as the 452 it should have been.
 */
function isTemporaryRecipientRefusal(rejection: RecipientRejection): boolean {
  return rejection.code < 500 || rejection.code === 552;
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
    rejected.every(isTemporaryRecipientRefusal) ? "transient" : "rejected",
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
