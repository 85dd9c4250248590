/**
 * RFC 2047 encoded-words for header text that cannot go out as it is:
 * subjects, custom header values and display names, as UTF-8 words of at
 * most 75 characters, Q or B encoded, never cutting a UTF-8 sequence.
 *
 * @module
 */

import { bytesToBase64 } from "./base64.ts";
import {
  isPrintableAscii,
  isSpacedWords,
  PREFERRED_LINE_LENGTH,
  quotedString,
} from "./header_text.ts";
import { hexEscape } from "./quoted_printable.ts";

/** Longest encoded-word (RFC 2047 section 2). */
export const MAX_WORD_LENGTH = 75;

const encoder = new TextEncoder();

/** Characters a Q-encoded word may carry literally in every context (RFC 2047 section 5 (3)). */
function isQSafe(byte: number): boolean {
  return (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) ||
    byte === 33 || byte === 42 || byte === 43 || byte === 45 || byte === 47;
}

/** Q-encoding of UTF-8 bytes. */
function qEncode(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    out += byte === 32 ? "_" : isQSafe(byte) ? String.fromCharCode(byte) : hexEscape(byte);
  }
  return out;
}

/** Length of the Q-encoding of UTF-8 bytes. */
function qLength(bytes: Uint8Array): number {
  let length = 0;
  for (const byte of bytes) length += byte === 32 || isQSafe(byte) ? 1 : 3;
  return length;
}

/** Options for {@linkcode encodeWords}. */
export interface EncodeWordsOptions {
  /** Maximum length of the first word (room left on the header's first line). Default `length`. */
  firstLength?: number;
  /** Maximum length of every other word. Default and upper bound 75. */
  length?: number;
}

/**
 * Encodes text as a sequence of RFC 2047 encoded-words (UTF-8, Q or B,
 * whichever is shorter), each at most 75 characters, split only between
 * code points so that no UTF-8 sequence is ever cut. Decoders join adjacent
 * words and drop the whitespace between them, so the words may be folded
 * freely. The Q alphabet is the restrictive one valid in phrases too.
 */
export function encodeWords(text: string, options: EncodeWordsOptions = {}): string[] {
  const whole = encoder.encode(text);
  const useB = Math.ceil(whole.length / 3) * 4 < qLength(whole);
  const prefix = useB ? "=?UTF-8?B?" : "=?UTF-8?Q?";
  const overhead = prefix.length + 2;
  const room = (max: number) => {
    const chars = Math.max(max, overhead + 12) - overhead;
    return useB ? Math.floor(chars / 4) * 3 : chars;
  };
  const measure = (bytes: Uint8Array) => useB ? bytes.length : qLength(bytes);
  const encode = (bytes: Uint8Array) => useB ? bytesToBase64(bytes) : qEncode(bytes);

  const length = Math.min(options.length ?? MAX_WORD_LENGTH, MAX_WORD_LENGTH);
  const words: string[] = [];
  let limit = room(Math.min(options.firstLength ?? length, length));
  let pending: number[] = [];
  let used = 0;
  for (const char of text) {
    const bytes = encoder.encode(char);
    const cost = measure(bytes);
    if (used + cost > limit && pending.length > 0) {
      words.push(prefix + encode(Uint8Array.from(pending)) + "?=");
      pending = [];
      used = 0;
      limit = room(length);
    }
    pending.push(...bytes);
    used += cost;
  }
  if (pending.length > 0 || words.length === 0) {
    words.push(prefix + encode(Uint8Array.from(pending)) + "?=");
  }
  return words;
}

/**
 * Whether unstructured header text (a subject) can go out as is: printable
 * ASCII words separated by single spaces, no leading or trailing whitespace,
 * nothing that looks like an encoded-word, and no word too long to fold.
 * Anything else is sent as encoded-words so that parsers recover it exactly.
 */
export function isPlainHeaderText(text: string): boolean {
  return isSpacedWords(text) && !text.includes("=?") &&
    text.split(" ").every((word) => word.length <= PREFERRED_LINE_LENGTH - 2);
}

/**
 * Tokens for an unstructured header value (`Subject`, custom headers): the
 * words themselves when {@linkcode isPlainHeaderText} holds, encoded-words
 * otherwise. `name` is the header's name, which takes room on the first line.
 */
export function unstructuredTokens(name: string, text: string): string[] {
  if (isPlainHeaderText(text)) return text.split(" ");
  return encodeWords(text, { firstLength: PREFERRED_LINE_LENGTH - name.length - 2 });
}

/** Longest encoded-word in a display name. */
const NAME_WORD_LENGTH = 66;

/**
 * Renders a display name as header tokens: atoms as they are, other
 * printable ASCII as a quoted-string, anything else as encoded-words.
 */
export function displayNameTokens(name: string): string[] {
  if (isSpacedWords(name, /[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]/)) {
    if (!name.includes("=?") && name.length <= 60) return name.split(" ");
  }
  if (isPrintableAscii(name) && !name.includes("=?") && name.length <= 60) {
    return [quotedString(name)];
  }
  // Short enough that the first word fits after the longest address header name ("Reply-To: ").
  return encodeWords(name, { firstLength: NAME_WORD_LENGTH, length: NAME_WORD_LENGTH });
}
