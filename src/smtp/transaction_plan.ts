/**
 * What one mail transaction is, and its plan for a given server: the MAIL
 * and RCPT commands with their parameters (SIZE, 8BITMIME, SMTPUTF8, DSN),
 * and whether the data goes as DATA or BDAT. A message the server cannot
 * take at all (too big, SMTPUTF8 missing) is refused here, before a byte is
 * written.
 *
 * @module
 */

import type { Capabilities } from "./capabilities.ts";
import { mailFromCommand, needsSmtputf8, rcptToCommand } from "./commands.ts";
import { SmtpError } from "./errors.ts";
import type { DsnOutcome, RecipientRejection } from "./types.ts";

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

/** The commands of one transaction and how its data goes. */
export interface Plan {
  /** MAIL FROM, then one RCPT TO per recipient, without CRLF. */
  commands: string[];
  /** The data goes as `BDAT` chunks (CHUNKING), not DATA. */
  chunked: boolean;
  /** The server advertised DSN, so the DSN parameters are in the commands. */
  dsnSupported: boolean;
}

/**
 * The MAIL and RCPT commands of `tx` for a server with `caps`, and whether
 * its data goes as BDAT (only when `pipelining`). Throws an
 * {@linkcode SmtpError} when the server cannot take the message at all (too
 * big, or SMTPUTF8 needed but missing).
 */
export function planTransaction(tx: Transaction, caps: Capabilities, pipelining: boolean): Plan {
  const utf8 = tx.smtputf8 || needsSmtputf8([tx.envelope.from, ...tx.envelope.to]);
  if (utf8 && !caps.has("SMTPUTF8")) {
    throw new SmtpError(
      "rejected",
      "The message has a non-ASCII mailbox name, and the server does not support SMTPUTF8. " +
        "Use ASCII addresses or a server that offers SMTPUTF8.",
      { phase: "mail" },
    );
  }
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
    eightBitMime: (tx.eightBit || utf8) && caps.has("8BITMIME"),
    smtputf8: utf8,
    ret: dsn?.return,
    envelopeId: dsn?.envelopeId,
  });
  const rcpts = tx.envelope.to.map((address) =>
    rcptToCommand(address, dsn ? { notify: dsn.notify, originalRecipient: address } : {})
  );
  // BDAT LAST pipelined behind the RCPTs costs no wait at all, but a refused
  // recipient then no longer stops the message for the others: only when that
  // cannot matter (one recipient, or allowPartial).
  const chunked = pipelining && caps.has("CHUNKING") &&
    (tx.envelope.to.length === 1 || tx.allowPartial);
  return { commands: [mail, ...rcpts], chunked, dsnSupported };
}
