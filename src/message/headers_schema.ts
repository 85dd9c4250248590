/**
 * The `headers` field of a message: custom header fields, with the names
 * edgemail writes itself ({@linkcode RESERVED_HEADERS}) refused, and values
 * bounded so that they can always be folded into valid header lines.
 *
 * @module
 */

import * as v from "valibot";
import { headerTextProblem } from "./header_text.ts";
import { checkedString, lengthProblem } from "./field_schemas.ts";

/** Longest custom header value, in characters. */
export const MAX_HEADER_VALUE = 4096;
/** Most custom header fields in one message. */
export const MAX_HEADERS = 64;

/**
 * Header fields a message may not set through `headers`, lowercase. The
 * composer writes the structural ones itself (From, To, Cc, Subject, Date,
 * Message-ID, MIME-Version, Reply-To, Content-*); Bcc must never appear; and
 * the trace and authentication fields (Received, Return-Path, DKIM and ARC
 * signatures, Authentication-Results, Resent-*) are for the servers on the
 * way, not for the sender to forge. Sender is refused because it claims an
 * identity that the allowlists do not check.
 */
export const RESERVED_HEADERS: readonly string[] = [
  "from",
  "to",
  "cc",
  "bcc",
  "subject",
  "date",
  "message-id",
  "mime-version",
  "reply-to",
  "sender",
  "return-path",
  "received",
  "received-spf",
  "delivered-to",
  "dkim-signature",
  "domainkey-signature",
  "authentication-results",
];
/** Prefixes of reserved header names (`Content-Type`, `Resent-From`, `ARC-Seal`, ...). */
export const RESERVED_HEADER_PREFIXES: readonly string[] = ["content-", "resent-", "arc-"];

/** Longest accepted custom header name. */
const MAX_HEADER_NAME = 64;
/** Longest run of non-space characters in an ASCII header value (so it can be folded within 998). */
const MAX_HEADER_WORD = 900;

/** Why `name` cannot be a custom header name, or `undefined`. */
function headerNameProblem(name: string): string | undefined {
  if (name.length > MAX_HEADER_NAME || name.length === 0 || /[^\x21-\x39\x3b-\x7e]/.test(name)) {
    return `is not a valid header name (printable ASCII without spaces or ':', at most ${MAX_HEADER_NAME} characters)`;
  }
  const lower = name.toLowerCase();
  if (
    RESERVED_HEADERS.includes(lower) ||
    RESERVED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix))
  ) {
    return "is a structural header that edgemail sets itself; use the message fields instead";
  }
  return undefined;
}

/** Why `value` cannot be a custom header value, or `undefined`. */
function headerValueProblem(value: string): string | undefined {
  const problem = lengthProblem(value, MAX_HEADER_VALUE) ?? headerTextProblem(value);
  if (problem !== undefined) return problem;
  if (
    !/[^\p{ASCII}]/u.test(value) && value.split(/[ \t]/).some((w) => w.length > MAX_HEADER_WORD)
  ) {
    return `has more than ${MAX_HEADER_WORD} characters without a space, so it cannot be folded`;
  }
  return undefined;
}

/**
 * Custom header fields: an object of names to values, at most
 * {@linkcode MAX_HEADERS} of them, every name and value checked.
 */
export const HeadersSchema: v.GenericSchema<Record<string, string>> = v.pipe(
  v.record(
    checkedString(undefined, headerNameProblem),
    checkedString("must be a string", headerValueProblem),
    "must be an object of header names to string values",
  ),
  v.check(
    (headers) => Object.keys(headers).length <= MAX_HEADERS,
    `must have at most ${MAX_HEADERS} header fields`,
  ),
);
