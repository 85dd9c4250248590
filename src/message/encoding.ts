/**
 * MIME encodings used by the composer: quoted-printable bodies, base64
 * validation and re-wrapping (without decoding), RFC 2047 encoded-words,
 * RFC 2231 parameters and header folding. Every function produces CRLF line
 * ends and lines of at most 78 characters where the input allows it (998 at
 * worst).
 *
 * @module
 */

/** Preferred maximum header line length (RFC 5322 section 2.1.1), without CRLF. */
export const PREFERRED_LINE_LENGTH = 78;
/** Length of a base64 body line (RFC 2045), without CRLF. */
export const BASE64_LINE_LENGTH = 76;
/** Longest encoded-word (RFC 2047 section 2). */
const MAX_WORD_LENGTH = 75;
/** Longest quoted-printable line, the soft break `=` included (RFC 2045). */
const QP_LINE_LENGTH = 76;

const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/** `=XX` for one octet. */
function hexEscape(byte: number): string {
  return `=${HEX[byte >> 4]}${HEX[byte & 15]}`;
}

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

// ---------------------------------------------------------------------------
// base64

/** Anything but the standard alphabet and padding: whitespace, URL-safe letters or invalid input. */
const NOT_PLAIN_BASE64 = /[^A-Za-z0-9+/=]/;
/** Whitespace, which base64 may contain anywhere (it is ignored). */
const BASE64_SPACE = /[ \t\r\n]+/g;
/** Anything a base64 text without whitespace may not contain. */
const NOT_BASE64 = /[^A-Za-z0-9+/\-_=]/;
/** A character other than padding. */
const NOT_PADDING = /[^=]/;
/** How many input characters are cleaned at a time (bounds the temporary strings). */
const BASE64_BLOCK = 49152;

/** Per-character class for the exact (error-path) scan. */
const B64_DATA = 1;
const B64_SPACE = 2;
const B64_PAD = 3;
const B64_CLASS = new Uint8Array(128);
for (const char of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") {
  B64_CLASS[char.charCodeAt(0)] = B64_DATA;
}
for (const char of " \t\r\n") B64_CLASS[char.charCodeAt(0)] = B64_SPACE;
B64_CLASS["=".charCodeAt(0)] = B64_PAD;

/** What {@linkcode scanBase64} found out about a valid base64 text. */
export interface Base64Scan {
  /** The number of base64 characters it stands for once padded (a multiple of 4). */
  chars: number;
  /** The number of data characters (letters, digits and `+/-_`). */
  data: number;
  /** Whether it is the standard alphabet only, without whitespace: data, then 0-2 `=`. */
  plain: boolean;
}

/** The rules on the amount of data and padding; returns the padded length. */
function paddedLength(data: number, padding: number): number {
  const rest = data % 4;
  if (rest === 1) {
    throw new TypeError("is not valid base64: its length is not possible (one extra character)");
  }
  if (padding > 0 && (rest === 0 || rest + padding !== 4)) {
    throw new TypeError("is not valid base64: wrong amount of '=' padding");
  }
  return rest === 0 ? data : data + 4 - rest;
}

/**
 * The exact, character by character check, used only once the fast scan has
 * seen a problem: it finds the offset to report. Throws for invalid input.
 */
function explainBase64(content: string): never {
  let data = 0;
  let padding = 0;
  for (let i = 0; i < content.length; i++) {
    const code = content.charCodeAt(i);
    const kind = code < 128 ? B64_CLASS[code] : 0;
    if (kind === B64_SPACE) continue;
    if (kind === B64_PAD) {
      padding++;
      continue;
    }
    if (kind === 0) {
      throw new TypeError(`is not valid base64: unexpected character at offset ${i}`);
    }
    if (padding > 0) {
      throw new TypeError(`is not valid base64: data after '=' padding at offset ${i}`);
    }
    data++;
  }
  paddedLength(data, padding);
  // The fast scan and this loop disagree: a bug, reported as such rather than as a valid text.
  throw new Error("internal error: the base64 scanners disagree");
}

/**
 * Validates base64 text without decoding it, with native scans over large
 * slices (no loop per character). Accepted: the standard and URL-safe
 * alphabets, whitespace anywhere (ignored), padding present or omitted.
 *
 * @throws {TypeError} saying what is wrong and where (an offset, never the
 * content), phrased to follow a field name: `content: is not valid base64: …`.
 */
export function scanBase64(content: string): Base64Scan {
  if (!NOT_PLAIN_BASE64.test(content)) {
    const pad = content.indexOf("=");
    if (pad === -1) {
      return { chars: paddedLength(content.length, 0), data: content.length, plain: true };
    }
    if (content.length - pad > 2 || NOT_PADDING.test(content.slice(pad))) explainBase64(content);
    return { chars: paddedLength(pad, content.length - pad), data: pad, plain: true };
  }
  let data = 0;
  let padding = 0;
  for (let start = 0; start < content.length; start += BASE64_BLOCK) {
    const block = content.slice(start, start + BASE64_BLOCK).replace(BASE64_SPACE, "");
    if (NOT_BASE64.test(block)) explainBase64(content);
    const pad = padding > 0 ? 0 : block.indexOf("=");
    if (pad === -1) {
      data += block.length;
      continue;
    }
    const tail = pad === 0 ? block : block.slice(pad);
    if (NOT_PADDING.test(tail)) explainBase64(content);
    data += pad;
    padding += tail.length;
  }
  return { chars: paddedLength(data, padding), data, plain: false };
}

/**
 * Validates base64 text without decoding it and returns the number of base64
 * characters it stands for once padded (a multiple of 4); see
 * {@linkcode scanBase64}.
 *
 * @throws {TypeError} saying what is wrong and where (an offset, never the content).
 */
export function measureBase64(content: string): number {
  return scanBase64(content).chars;
}

/** Size in octets of `chars` base64 characters in lines of 76 joined by CRLF (no final CRLF). */
export function wrappedBase64Size(chars: number): number {
  return chars === 0 ? 0 : chars + 2 * (Math.ceil(chars / BASE64_LINE_LENGTH) - 1);
}

/**
 * Re-wraps validated base64 text (see {@linkcode scanBase64}) into lines of
 * 76 characters joined by CRLF, without decoding: whitespace is dropped, the
 * URL-safe alphabet is mapped to the standard one and missing padding is
 * added. It works on slices of the text (a line at a time, joined natively
 * into one string per output buffer) and writes straight into the caller's
 * buffers, so the content is never copied as a whole. No final CRLF.
 */
export class Base64Rewrapper {
  /** The text, dropped once it has been read to its end. */
  #content: string;
  /** Where the next block of `#content` starts (general form only). */
  #next = 0;
  /** The data characters being written (all of `#content` when it is plain) and the position. */
  #data: string;
  #position = 0;
  /** The end of the data in `#data` (the padding of a plain text is left out). */
  #dataEnd: number;
  #column = 0;
  #written = 0;
  #padded = false;
  /** Octets of a line break still to write (2: CRLF, 1: its LF), when a target filled up mid-break. */
  #breakDue = 0;

  /**
   * Starts at the beginning of `content`, which must have passed
   * {@linkcode scanBase64}; pass its result as `scan` to skip scanning again.
   */
  constructor(content: string, scan: Base64Scan = scanBase64(content)) {
    if (scan.plain) {
      this.#content = "";
      this.#data = content;
      this.#dataEnd = scan.data;
    } else {
      this.#content = content;
      this.#data = "";
      this.#dataEnd = 0;
    }
  }

  /** Loads the next block of data characters; false at the end (after the padding). */
  #refill(): boolean {
    this.#position = 0;
    const content = this.#content;
    while (this.#next < content.length) {
      const block = content.slice(this.#next, this.#next + BASE64_BLOCK);
      this.#next += BASE64_BLOCK;
      const cleaned = block.replace(BASE64_SPACE, "");
      const pad = cleaned.indexOf("=");
      const data = pad === -1 ? cleaned : cleaned.slice(0, pad);
      if (data.length === 0) continue;
      this.#data = data.replaceAll("-", "+").replaceAll("_", "/");
      this.#dataEnd = this.#data.length;
      return true;
    }
    this.#content = "";
    const missing = this.#padded ? 0 : (4 - (this.#written % 4)) % 4;
    this.#padded = true;
    this.#data = "=".repeat(missing);
    this.#dataEnd = missing;
    return missing > 0;
  }

  /**
   * Writes output into `target` from `offset` until it is full or the output
   * ends; returns the offset after the last octet written.
   */
  writeInto(target: Uint8Array, offset: number): number {
    while (offset < target.length) {
      if (this.#breakDue > 0) {
        target[offset++] = this.#breakDue === 2 ? 13 : 10;
        this.#breakDue--;
        continue;
      }
      if (this.#position === this.#dataEnd) {
        this.#data = "";
        if (!this.#refill()) break;
      }
      if (this.#column === BASE64_LINE_LENGTH) {
        this.#column = 0;
        this.#breakDue = 2;
        continue;
      }
      offset = this.#writeLines(target, offset);
    }
    return offset;
  }

  /**
   * Writes as many data characters as fit (with the line breaks between
   * them) in one native copy, then spreads the lines apart in place, from the
   * last one back, to open the CRLF gaps: no string or buffer per line.
   */
  #writeLines(target: Uint8Array, offset: number): number {
    const line = BASE64_LINE_LENGTH;
    const room = target.length - offset;
    const available = this.#dataEnd - this.#position;
    // The rest of the current line, then lines that each cost a CRLF and 76 characters.
    const first = line - this.#column;
    let count = room <= first ? room : first + Math.floor((room - first) / (line + 2)) * line +
      Math.max(0, ((room - first) % (line + 2)) - 2);
    count = Math.min(count, available);
    const breaks = count > first ? Math.floor((count - first - 1) / line) + 1 : 0;
    const piece = this.#data.slice(this.#position, this.#position + count);
    encoder.encodeInto(piece, target.subarray(offset, offset + count));
    for (let j = breaks - 1; j >= 0; j--) {
      const from = offset + first + j * line;
      const to = Math.min(from + line, offset + count);
      const shift = 2 * (j + 1);
      target.copyWithin(from + shift, from, to);
      target[from + shift - 2] = 13;
      target[from + shift - 1] = 10;
    }
    this.#position += count;
    this.#written += count;
    this.#column = breaks === 0 ? this.#column + count : count - first - (breaks - 1) * line;
    return offset + count + 2 * breaks;
  }
}

/**
 * Yields the output of a {@linkcode Base64Rewrapper} in fresh chunks of
 * `chunkSize` octets (the last one shorter).
 */
export function* wrapBase64(content: string, chunkSize = 65536): Generator<Uint8Array> {
  const rewrapper = new Base64Rewrapper(content);
  for (;;) {
    const chunk = new Uint8Array(chunkSize);
    const end = rewrapper.writeInto(chunk, 0);
    if (end > 0) yield end === chunkSize ? chunk : chunk.subarray(0, end);
    if (end < chunkSize) return;
  }
}

/** Base64 of a small byte array (header-sized data). */
function base64OfBytes(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// ---------------------------------------------------------------------------
// RFC 2047 encoded-words

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
  const encode = (bytes: Uint8Array) => useB ? base64OfBytes(bytes) : qEncode(bytes);

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
  if (!NOT_PRINTABLE_OR_SPACE.test(name) && !name.includes("=?") && name.length <= 60) {
    return [`"${name.replace(/[\\"]/g, "\\$&")}"`];
  }
  // Short enough that the first word fits after the longest address header name ("Reply-To: ").
  return encodeWords(name, { firstLength: NAME_WORD_LENGTH, length: NAME_WORD_LENGTH });
}

// ---------------------------------------------------------------------------
// RFC 2231 parameters

/** RFC 2231 attribute-char (ASCII without specials, `*`, `'`, `%`). */
const ATTRIBUTE_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;
/** Longest parameter value sent as a plain quoted-string. */
const PLAIN_PARAMETER_LENGTH = 60;

/** Whether a parameter value can be sent as a plain quoted-string. */
function isPlainParameter(value: string): boolean {
  return !NOT_PRINTABLE_OR_SPACE.test(value) && !value.includes("=?") &&
    value.length <= PLAIN_PARAMETER_LENGTH;
}

/** Percent-encodes one code point per RFC 2231. */
function percentEncode(char: string): string {
  if (ATTRIBUTE_CHAR.test(char)) return char;
  let out = "";
  for (const byte of encoder.encode(char)) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  return out;
}

/**
 * Encodes a MIME parameter (`filename`) as header tokens: `key="value"` when
 * the value is short printable ASCII, otherwise RFC 2231 `key*=UTF-8''…` split
 * into numbered continuations (`key*0*=…`, `key*1*=…`) at code point
 * boundaries. The caller separates the tokens with `;`.
 */
export function rfc2231Tokens(key: string, value: string): string[] {
  if (isPlainParameter(value)) return [`${key}="${value.replace(/[\\"]/g, "\\$&")}"`];
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
  if (isPlainParameter(value)) return [`${key}="${value.replace(/[\\"]/g, "\\$&")}"`];
  const words = encodeWords(value, { firstLength: MAX_WORD_LENGTH - key.length - 2 });
  words[0] = `${key}="${words[0]}`;
  words[words.length - 1] += '"';
  return words;
}

// ---------------------------------------------------------------------------
// Folding

/**
 * Builds a header field `Name: token token …` followed by CRLF, folding
 * (CRLF + space) in place of a separating space wherever a line would
 * otherwise pass 78 characters. Empty tokens stand for extra spaces and are
 * never folded before, so unfolding restores the exact value. A token longer
 * than a line stays whole; callers bound token lengths to keep lines ≤ 998.
 */
export function foldHeader(name: string, tokens: readonly string[]): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let lineHasToken = false;
  for (const token of tokens) {
    const fits = line.length + 1 + token.length <= PREFERRED_LINE_LENGTH;
    const worthFolding = lineHasToken || 1 + token.length <= PREFERRED_LINE_LENGTH;
    if (!fits && token.length > 0 && worthFolding && line.trim() !== "") {
      lines.push(line);
      line = ` ${token}`;
    } else {
      line += ` ${token}`;
    }
    lineHasToken = true;
  }
  lines.push(line);
  return lines.join("\r\n") + "\r\n";
}

/**
 * Appends `separator` to each token that ends a group (every group but the
 * last), flattening the groups: used to put `,` between mailboxes and `;`
 * between parameters.
 */
export function joinGroups(groups: readonly string[][], separator: string): string[] {
  const tokens: string[] = [];
  groups.forEach((group, index) => {
    const copy = [...group];
    if (index < groups.length - 1) copy[copy.length - 1] += separator;
    tokens.push(...copy);
  });
  return tokens;
}
