/**
 * MIME parameters (`filename`, `name`) as header tokens: a quoted-string when
 * the value is short printable ASCII, else RFC 2231 continuations, or RFC
 * 2047 encoded-words for the readers that ignore RFC 2231.
 *
 * @module
 */

import { encodeWords, MAX_WORD_LENGTH } from "./encoded_words.ts";
import { isPrintableAscii, PREFERRED_LINE_LENGTH, quotedString } from "./header_text.ts";
import { hexEscape } from "./quoted_printable.ts";

const encoder = new TextEncoder();

/** RFC 2231 attribute-char (ASCII without specials, `*`, `'`, `%`). */
const ATTRIBUTE_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;
/** Longest parameter value sent as a plain quoted-string. */
const PLAIN_PARAMETER_LENGTH = 60;

/** Whether a parameter value can be sent as a plain quoted-string. */
function isPlainParameter(value: string): boolean {
  return isPrintableAscii(value) && !value.includes("=?") &&
    value.length <= PLAIN_PARAMETER_LENGTH;
}

/** Percent-encodes one code point per RFC 2231. */
function percentEncode(char: string): string {
  if (ATTRIBUTE_CHAR.test(char)) return char;
  let out = "";
  for (const byte of encoder.encode(char)) out += hexEscape(byte, "%");
  return out;
}

/**
 * Encodes a MIME parameter (`filename`) as header tokens: `key="value"` when
 * the value is short printable ASCII, otherwise RFC 2231 `key*=UTF-8''…` split
 * into numbered continuations (`key*0*=…`, `key*1*=…`) at code point
 * boundaries. The caller separates the tokens with `;`.
 */
export function rfc2231Tokens(key: string, value: string): string[] {
  if (isPlainParameter(value)) return [`${key}=${quotedString(value)}`];
  // Room on a folded line: " " + key + "*N*=" (+ "UTF-8''" on the first) + segment + ";".
  const firstRoom = PREFERRED_LINE_LENGTH - 2 - `${key}*0*=UTF-8''`.length;
  const laterRoom = PREFERRED_LINE_LENGTH - 2 - `${key}*99*=`.length;
  const segments: string[] = [];
  let current = "";
  for (const char of value) {
    const encoded = percentEncode(char);
    const room = segments.length === 0 ? firstRoom : laterRoom;
    if (current.length + encoded.length > room && current.length > 0) {
      segments.push(current);
      current = "";
    }
    current += encoded;
  }
  segments.push(current);
  if (segments.length === 1) return [`${key}*=UTF-8''${segments[0]}`];
  return segments.map((segment, index) =>
    index === 0 ? `${key}*0*=UTF-8''${segment}` : `${key}*${index}*=${segment}`
  );
}

/**
 * Encodes a parameter for old readers that ignore RFC 2231 (`name=` in
 * `Content-Type`): a quoted-string holding RFC 2047 encoded-words when the
 * value is not plain ASCII. The words are separate tokens so they can be folded.
 */
export function rfc2047ParameterTokens(key: string, value: string): string[] {
  if (isPlainParameter(value)) return [`${key}=${quotedString(value)}`];
  const words = encodeWords(value, { firstLength: MAX_WORD_LENGTH - key.length - 2 });
  words[0] = `${key}="${words[0]}`;
  words[words.length - 1] += '"';
  return words;
}
