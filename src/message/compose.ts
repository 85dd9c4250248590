/**
 * Turns a validated {@linkcode Message} into an RFC 5322 / MIME message and
 * its SMTP envelope. The result is lazy: attachments stay as the base64 text
 * they arrived in and are re-wrapped, in large slices, straight into one
 * reused output buffer while the message is read, so a large attachment is
 * never held twice in memory and is passed over once after its validation.
 *
 * MIME structure:
 * - text only: `text/plain`; html only: `text/html`; neither (and no
 *   attachments): an empty `text/plain`;
 * - text and html: `multipart/alternative`;
 * - attachments with a `contentId` and html: `multipart/related` around the
 *   html (referenced from it as `cid:<contentId>`);
 * - other attachments: `multipart/mixed` around all of the above.
 *
 * Text is UTF-8, quoted-printable (`7bit` when it is a single short-line
 * printable ASCII part); attachments are base64 in 76-column lines.
 * Every line ends in CRLF and is at most 998 octets (78 where possible).
 * Bcc addresses go into the envelope only, never into a header.
 *
 * @module
 */

import { type Mailbox, normalizeDomain } from "./address.ts";
import {
  Base64Rewrapper,
  type Base64Scan,
  bytesToBase64,
  scanBase64,
  wrappedBase64Size,
} from "./base64.ts";
import { displayNameTokens, encodeWords, unstructuredTokens } from "./encoded_words.ts";
import { foldHeader, joinGroups } from "./header_fold.ts";
import { isSpacedWords, PREFERRED_LINE_LENGTH } from "./header_text.ts";
import { rfc2047ParameterTokens, rfc2231Tokens } from "./mime_parameters.ts";
import { encodeQuotedPrintable, isSevenBitText, toCrlf } from "./quoted_printable.ts";
import { type Attachment, base64ScanOf } from "./attachment_schema.ts";
import type { Message } from "./schema.ts";

/** The SMTP envelope: `MAIL FROM` and the `RCPT TO` list. */
export interface Envelope {
  /** The sender's normalised address. */
  from: string;
  /** to + cc + bcc, normalised, duplicates (case-insensitive) removed, in that order. */
  to: string[];
}

/** A composed message, ready for the DATA encoder. */
export interface ComposedMessage {
  /** The Message-ID header value: `<random@sender-domain>`. */
  messageId: string;
  /** Where the message goes. */
  envelope: Envelope;
  /** The envelope or the headers contain a non-ASCII local part, so the server must offer SMTPUTF8. */
  smtputf8: boolean;
  /** The message contains 8-bit octets (only raw UTF-8 addresses in headers, see `smtputf8`). */
  eightBit: boolean;
  /** The exact number of octets {@linkcode ComposedMessage.chunks} yields. */
  size: number;
  /**
   * The message octets in chunks of 64 KiB (the last one shorter), generated
   * lazily. Each call starts again from the beginning. The chunks are views of
   * one buffer that is reused: a chunk is valid until the next one is asked
   * for, so copy it (as the DATA encoder does) to keep it. A message smaller
   * than 64 KiB gets a buffer of its own size.
   */
  chunks(): Iterable<Uint8Array>;
}

/** Options for {@linkcode composeMessage}. */
export interface ComposeOptions {
  /** The Date header; defaults to now. */
  date?: Date;
  /** The domain of the Message-ID; defaults to the sender's domain. */
  messageIdDomain?: string;
}

/** Size of the chunks `chunks()` yields. */
export const CHUNK_SIZE = 65536;

/** Base64 text kept as given and re-wrapped while reading. */
interface Base64Body {
  content: string;
  /** What validation found out (the padded length, whether it is in plain form). */
  scan: Base64Scan;
}

/** A MIME leaf: header lines (each ending in CRLF) and a body. */
interface Leaf {
  kind: "leaf";
  headers: string;
  /** Encoded text (ASCII), or base64 to re-wrap lazily. */
  body: string | Base64Body;
  /** Text after a base64 body (the final CRLF of a standalone part). */
  tail?: string;
}

/** A multipart node; its boundary is chosen when the tree is written. */
interface Multipart {
  kind: "multipart";
  subtype: "mixed" | "alternative" | "related";
  parts: MimeNode[];
}

type MimeNode = Leaf | Multipart;
/** What the writer produces: text (to be UTF-8 encoded) or a lazy base64 body. */
type Piece = string | Base64Body;

/** Matches any character outside ASCII. */
const NON_ASCII = /[^\p{ASCII}]/u;

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An RFC 5322 date-time in UTC: `Thu, 21 Nov 2024 23:22:00 +0000`. */
export function formatDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("The date is not a valid Date");
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ` +
    `${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:` +
    `${two(date.getUTCSeconds())} +0000`;
}

/** Lowercase hex of `bytes` random bytes. */
function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * A random boundary. It contains `=_`, which quoted-printable and base64
 * output can never contain, so only 7bit text and headers need checking.
 */
function newBoundary(): string {
  return `=_edgemail_${randomHex(16)}`;
}

/** Header tokens for one mailbox: `Name <a@b>` or `a@b`. */
function mailboxTokens(mailbox: Mailbox): string[] {
  if (mailbox.name === undefined) return [mailbox.address];
  return [...displayNameTokens(mailbox.name), `<${mailbox.address}>`];
}

/** An address header (`From`, `To`, `Cc`, `Reply-To`). */
function addressHeader(name: string, mailboxes: readonly Mailbox[]): string {
  return foldHeader(name, joinGroups(mailboxes.map(mailboxTokens), ","));
}

/** Tokens for a custom header value: ASCII as is (folded at spaces), anything else encoded. */
function customValueTokens(name: string, value: string): string[] {
  // Printable words with single spaces fold at those spaces and stay as given
  // (structured headers such as List-Unsubscribe must). Anything else (tabs,
  // runs of spaces, non-ASCII) becomes encoded-words, which fold anywhere and
  // keep every character.
  if (value === "" || isSpacedWords(value)) return value.split(" ");
  return encodeWords(value, { firstLength: PREFERRED_LINE_LENGTH - name.length - 2 });
}

/**
 * A text part. A quoted-printable body always ends with a soft line break
 * (`=`), so the line end before the next boundary (or the end of the message)
 * decodes to nothing in every parser, whether or not it counts that line end
 * as part of the body; the text comes back exactly as given (line ends
 * normalised). A standalone part ends the message and so gets a final CRLF;
 * it may be `7bit` when it is short-line ASCII that ends with a line end.
 * Long text that is largely not ASCII (64 Ki characters or more, and more
 * than one UTF-8 octet in ten beyond the first of each character) is sent as
 * base64 instead: about 1.37 octets per octet rather than up to 3, encoded
 * natively rather than per character.
 */
function textLeaf(text: string, subtype: "plain" | "html", standalone: boolean): Leaf {
  const contentType = `Content-Type: text/${subtype}; charset=utf-8\r\n`;
  const crlf = toCrlf(text);
  const bytes = crlf.length >= BASE64_TEXT_LENGTH && NON_ASCII.test(crlf)
    ? new TextEncoder().encode(crlf)
    : undefined;
  if (bytes !== undefined && (bytes.length - crlf.length) * 10 > bytes.length) {
    const content = bytesToBase64(bytes);
    return {
      kind: "leaf",
      headers: `${contentType}Content-Transfer-Encoding: base64\r\n`,
      body: { content, scan: scanBase64(content) },
      tail: standalone ? "\r\n" : undefined,
    };
  }
  const sevenBit = standalone && isSevenBitText(text) && (crlf === "" || crlf.endsWith("\r\n"));
  let body = crlf;
  if (!sevenBit) body = `${encodeQuotedPrintable(text)}=${standalone ? "\r\n" : ""}`;
  return {
    kind: "leaf",
    headers: `${contentType}Content-Transfer-Encoding: ${
      sevenBit ? "7bit" : "quoted-printable"
    }\r\n`,
    body,
  };
}

/** Text parts at least this long may be sent as base64 (see textLeaf). */
const BASE64_TEXT_LENGTH = 65536;

/** An attachment part; `inline` for parts of a multipart/related. */
function attachmentLeaf(attachment: Attachment, inline: boolean): Leaf {
  const { filename, contentType, contentId } = attachment;
  const type = foldHeader(
    "Content-Type",
    joinGroups([[contentType], rfc2047ParameterTokens("name", filename)], ";"),
  );
  const disposition = foldHeader(
    "Content-Disposition",
    joinGroups(
      [[inline ? "inline" : "attachment"], ...rfc2231Tokens("filename", filename).map((t) => [t])],
      ";",
    ),
  );
  const id = contentId === undefined ? "" : `Content-ID: <${contentId}>\r\n`;
  return {
    kind: "leaf",
    headers: `${type}Content-Transfer-Encoding: base64\r\n${disposition}${id}`,
    body: { content: attachment.content, scan: base64ScanOf(attachment) },
  };
}

/** Builds the MIME tree for the bodies and attachments of `message`. */
function buildTree(message: Message): MimeNode {
  const { text, html, attachments } = message;
  const standalone = attachments.length === 0 && (text === undefined || html === undefined);
  const inline = html === undefined ? [] : attachments.filter((a) => a.contentId !== undefined);
  const files = attachments.filter((a) => !inline.includes(a));

  let htmlNode: MimeNode | undefined = html === undefined
    ? undefined
    : textLeaf(html, "html", standalone);
  if (htmlNode !== undefined && inline.length > 0) {
    htmlNode = {
      kind: "multipart",
      subtype: "related",
      parts: [htmlNode, ...inline.map((a) => attachmentLeaf(a, true))],
    };
  }
  const textNode = text === undefined ? undefined : textLeaf(text, "plain", standalone);
  let body: MimeNode | undefined = textNode !== undefined && htmlNode !== undefined
    ? { kind: "multipart", subtype: "alternative", parts: [textNode, htmlNode] }
    : textNode ?? htmlNode;
  if (files.length > 0) {
    const parts = files.map((a) => attachmentLeaf(a, false));
    body = { kind: "multipart", subtype: "mixed", parts: body ? [body, ...parts] : parts };
  }
  return body ?? textLeaf("", "plain", true);
}

/** Every header and text body in a subtree (what a boundary must not occur in). */
function textsOf(node: MimeNode): string[] {
  if (node.kind === "multipart") return node.parts.flatMap(textsOf);
  return typeof node.body === "string" ? [node.headers, node.body] : [node.headers];
}

/** A boundary that occurs in none of `texts` and does not overlap `taken`. */
function pickBoundary(texts: readonly string[], taken: readonly string[]): string {
  for (;;) {
    const boundary = newBoundary();
    const clash = texts.some((text) => text.includes(boundary)) ||
      taken.some((other) => other.includes(boundary) || boundary.includes(other));
    if (!clash) return boundary;
  }
}

/**
 * Writes a node: its header lines, the blank line and its body, without a
 * final CRLF (which belongs to the next boundary). `taken` collects the
 * boundaries in use so that nested ones never overlap.
 */
function writeNode(node: MimeNode, out: Piece[], taken: string[]): void {
  if (node.kind === "leaf") {
    out.push(node.headers, "\r\n", node.body);
    if (node.tail !== undefined) out.push(node.tail);
    return;
  }
  const boundary = pickBoundary(textsOf(node), taken);
  taken.push(boundary);
  out.push(
    foldHeader("Content-Type", [`multipart/${node.subtype};`, `boundary="${boundary}"`]),
    "\r\n",
  );
  for (const part of node.parts) {
    out.push(`--${boundary}\r\n`);
    writeNode(part, out, taken);
    out.push("\r\n");
  }
  out.push(`--${boundary}--`);
}

/**
 * A run of output: ASCII text (written with `encodeInto`, one octet per
 * character), the UTF-8 octets of other text (only headers with raw UTF-8
 * addresses), or a base64 body.
 */
type Segment = string | Uint8Array | Base64Body;

/** Merges adjacent text pieces; text with non-ASCII characters is encoded as UTF-8 now. */
function toSegments(pieces: readonly Piece[]): Segment[] {
  const encoder = new TextEncoder();
  const segments: Segment[] = [];
  let text = "";
  const flush = () => {
    if (text !== "") segments.push(NON_ASCII.test(text) ? encoder.encode(text) : text);
    text = "";
  };
  for (const piece of pieces) {
    if (typeof piece === "string") {
      text += piece;
    } else {
      flush();
      if (piece.scan.chars > 0) segments.push(piece);
    }
  }
  flush();
  return segments;
}

/** The number of octets a segment stands for, computed without producing them. */
function segmentSize(segment: Segment): number {
  if (typeof segment === "string" || segment instanceof Uint8Array) return segment.length;
  return wrappedBase64Size(segment.scan.chars);
}

/**
 * Yields the segments as chunks of exactly CHUNK_SIZE octets (the last one
 * shorter), all views of one buffer of at most CHUNK_SIZE octets that is
 * refilled once the consumer asks for the next chunk.
 */
function* emit(segments: readonly Segment[], size: number): Generator<Uint8Array> {
  if (size === 0) return;
  const encoder = new TextEncoder();
  const chunk = new Uint8Array(Math.min(size, CHUNK_SIZE));
  let pos = 0;
  for (const segment of segments) {
    if (typeof segment === "string") {
      // ASCII: encodeInto writes one octet per character, so it fills the chunk exactly.
      let rest = segment;
      for (;;) {
        const { read, written } = encoder.encodeInto(rest, chunk.subarray(pos));
        pos += written;
        if (read === rest.length) break;
        rest = rest.slice(read);
        yield chunk;
        pos = 0;
      }
    } else if (segment instanceof Uint8Array) {
      let offset = 0;
      while (offset < segment.length) {
        const count = Math.min(chunk.length - pos, segment.length - offset);
        chunk.set(segment.subarray(offset, offset + count), pos);
        pos += count;
        offset += count;
        if (pos === chunk.length) {
          yield chunk;
          pos = 0;
        }
      }
    } else {
      // Base64 is re-wrapped straight into the output chunk: no intermediate copy.
      const rewrapper = new Base64Rewrapper(segment.content, segment.scan);
      for (;;) {
        pos = rewrapper.writeInto(chunk, pos);
        if (pos < chunk.length) break;
        yield chunk;
        pos = 0;
      }
    }
    if (pos === chunk.length) {
      yield chunk;
      pos = 0;
    }
  }
  if (pos > 0) yield chunk.subarray(0, pos);
}

/** to + cc + bcc without case-insensitive duplicates, first spelling kept. */
function recipients(message: Message): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const mailbox of [...message.to, ...message.cc, ...message.bcc]) {
    const key = mailbox.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(mailbox.address);
  }
  return out;
}

/** The message header block (without the MIME headers of the body). */
function messageHeaders(message: Message, from: Mailbox, date: Date, messageId: string): string {
  const { to, cc, replyTo, subject, headers } = message;
  let out = `Date: ${formatDate(date)}\r\n` + addressHeader("From", [from]);
  if (replyTo.length > 0) out += addressHeader("Reply-To", replyTo);
  if (to.length > 0) out += addressHeader("To", to);
  else if (cc.length === 0) out += "To: undisclosed-recipients:;\r\n";
  if (cc.length > 0) out += addressHeader("Cc", cc);
  if (subject !== undefined && subject !== "") {
    out += foldHeader("Subject", unstructuredTokens("Subject", subject));
  }
  out += `Message-ID: ${messageId}\r\nMIME-Version: 1.0\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    out += foldHeader(name, customValueTokens(name, value));
  }
  return out;
}

/**
 * Composes `message` (validated by `parseMessage`) into MIME octets and an
 * envelope. Bcc recipients are in `envelope.to` only.
 *
 * @example
 * ```ts
 * const composed = composeMessage(parseMessage({ from: "a@example.com", to: "b@example.org", text: "Hi" }));
 * composed.envelope; // { from: "a@example.com", to: ["b@example.org"] }
 * ```
 * @throws {TypeError} when the message has no sender or no recipient, or `messageIdDomain` is invalid.
 */
export function composeMessage(message: Message, options: ComposeOptions = {}): ComposedMessage {
  const from = message.from;
  if (from === undefined) {
    throw new TypeError("The message has no sender: set from, or pass defaultFrom to parseMessage");
  }
  const to = recipients(message);
  if (to.length === 0) throw new TypeError("The message has no recipient in to, cc or bcc");
  const domain = options.messageIdDomain === undefined
    ? from.address.slice(from.address.lastIndexOf("@") + 1)
    : normalizeDomain(options.messageIdDomain);
  const messageId = `<${crypto.randomUUID()}@${domain}>`;

  const headers = messageHeaders(message, from, options.date ?? new Date(), messageId);
  const pieces: Piece[] = [headers];
  const tree = buildTree(message);
  writeNode(tree, pieces, []);
  // A standalone text part already ends with CRLF (see textLeaf); a multipart
  // ends with its close delimiter, which needs one.
  if (tree.kind === "multipart") pieces.push("\r\n");
  const segments = toSegments(pieces);
  const size = segments.reduce((sum, segment) => sum + segmentSize(segment), 0);
  const headerMailboxes = [from, ...message.to, ...message.cc, ...message.replyTo];
  return {
    messageId,
    envelope: { from: from.address, to },
    smtputf8: [...headerMailboxes, ...message.bcc].some((m) => m.smtputf8),
    eightBit: headerMailboxes.some((m) => m.smtputf8),
    size,
    chunks: () => emit(segments, size),
  };
}
