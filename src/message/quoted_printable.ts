/**
 * Text bodies: line ends in CRLF form, the test for `7bit`, and
 * quoted-printable (RFC 2045 section 6.7) over the UTF-8 bytes, with lines of
 * at most 76 characters.
 *
 * @module
 */

import { PREFERRED_LINE_LENGTH } from "./header_text.ts";

/** Longest quoted-printable line, the soft break `=` included (RFC 2045). */
const QP_LINE_LENGTH = 76;

const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/**
 * One octet as `escape` and two uppercase hex digits: `=XX` in quoted-printable
 * and Q-encoded words, `%XX` in RFC 2231 parameters.
 */
export function hexEscape(byte: number, escape: "=" | "%" = "="): string {
  return `${escape}${HEX[byte >> 4]}${HEX[byte & 15]}`;
}

/** Converts every line end (CRLF, lone CR, lone LF) to CRLF. */
export function toCrlf(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\r\n");
}

/**
 * Whether `text` can be sent as `7bit` unchanged: printable ASCII (and tab)
 * only, no line longer than 78 characters, no whitespace at a line end (which
 * transports may strip).
 */
export function isSevenBitText(text: string): boolean {
  if (/[^\x20-\x7e\t\r\n]/.test(text)) return false;
  return text.split(/\r\n|\r|\n/).every((line) =>
    line.length <= PREFERRED_LINE_LENGTH && !/[ \t]$/.test(line)
  );
}

/**
 * Encodes text as quoted-printable (RFC 2045 section 6.7) over its UTF-8
 * bytes. Line ends of any kind become hard CRLF breaks; long lines get soft
 * breaks so that no line exceeds 76 characters; escapes are never split.
 * The result ends with CRLF only if the text ends with a line end.
 *
 * Works a line at a time with native replaces and slices: only the
 * characters that need escaping are handled one by one.
 */
export function encodeQuotedPrintable(text: string): string {
  const lines = text.split(/\r\n|\r|\n/);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) out.push("\r\n");
    const line = lines[i];
    if (line !== "") out.push(softWrap(escapeQuotedPrintable(line)));
  }
  return out.join("");
}

/** Characters other than those quoted-printable keeps literally (33-126 but "=", space, tab). */
const QP_UNSAFE = /[^\x21-\x3c\x3e-\x7e \t]/gu;
/** The escapes of each character seen, since text repeats the same few. */
const qpEscapes = new Map<string, string>();

/** `=XX` escapes for the UTF-8 bytes of one character. */
function qpEscape(char: string): string {
  let escaped = qpEscapes.get(char);
  if (escaped === undefined) {
    escaped = "";
    for (const byte of encoder.encode(char)) escaped += hexEscape(byte);
    if (qpEscapes.size < 4096) qpEscapes.set(char, escaped);
  }
  return escaped;
}

/** One line (no CR or LF) with its unsafe characters and a final space or tab escaped. */
function escapeQuotedPrintable(line: string): string {
  const escaped = line.replace(QP_UNSAFE, qpEscape);
  const last = escaped.charCodeAt(escaped.length - 1);
  return last === 32 || last === 9 ? escaped.slice(0, -1) + hexEscape(last) : escaped;
}

/**
 * Breaks an escaped line into lines of at most 75 characters plus a soft
 * break `=`, never inside an `=XX` escape (every `=` starts one).
 */
function softWrap(escaped: string): string {
  const room = QP_LINE_LENGTH - 1;
  if (escaped.length <= room) return escaped;
  const parts: string[] = [];
  let from = 0;
  while (escaped.length - from > room) {
    let cut = from + room;
    if (escaped.charCodeAt(cut - 1) === 61) cut -= 1;
    else if (escaped.charCodeAt(cut - 2) === 61) cut -= 2;
    parts.push(escaped.slice(from, cut));
    from = cut;
  }
  parts.push(escaped.slice(from));
  return parts.join("=\r\n");
}
