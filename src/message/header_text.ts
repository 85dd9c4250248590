/**
 * What text may go into a header, and the line length the encoders aim for:
 * the checks shared by the message schema, the address parser and the header
 * encoders. Reasons never repeat the text.
 *
 * @module
 */

/** Preferred maximum header line length (RFC 5322 section 2.1.1), without CRLF. */
export const PREFERRED_LINE_LENGTH = 78;

/**
 * Why `text` cannot go into a header (display names, subjects, header values,
 * file names), or `undefined` when it can: CR, LF, NUL and the other C0
 * controls (tab excepted) and DEL are refused, and so are lone surrogates.
 * The reason never repeats the text.
 */
export function headerTextProblem(text: string): string | undefined {
  if (/[\r\n]/.test(text)) return "must not contain line breaks (CR or LF)";
  if (text.includes("\0")) return "must not contain NUL";
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\x01-\x08\x0b-\x1f\x7f]/.test(text)) return "must not contain control characters";
  if (!text.isWellFormed()) return "is not well-formed Unicode (it contains a lone surrogate)";
  return undefined;
}

/**
 * Whether `text` is words separated by single spaces, with no space at
 * either end; `notWord` matches a character that is neither a word character
 * nor a space (default: anything but printable ASCII). Checked with character
 * searches, never a backtracking pattern.
 */
export function isSpacedWords(text: string, notWord: RegExp = NOT_PRINTABLE_OR_SPACE): boolean {
  return text.length > 0 && !notWord.test(text) && !text.includes("  ") &&
    text[0] !== " " && text[text.length - 1] !== " ";
}
/** A character that is neither printable ASCII nor a space. */
const NOT_PRINTABLE_OR_SPACE = /[^\x20-\x7e]/;

/** Whether `text` is printable ASCII and spaces only. */
export function isPrintableAscii(text: string): boolean {
  return !NOT_PRINTABLE_OR_SPACE.test(text);
}

/** `text` as a quoted-string (RFC 5322): in double quotes, `\` and `"` escaped. */
export function quotedString(text: string): string {
  return `"${text.replace(/[\\"]/g, "\\$&")}"`;
}
