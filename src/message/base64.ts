/**
 * base64 without decoding: validation ({@linkcode scanBase64}), sizes, and
 * re-wrapping into 76-column CRLF lines straight into the caller's buffers
 * ({@linkcode Base64Rewrapper}), with native scans over large slices.
 *
 * @module
 */

/** Length of a base64 body line (RFC 2045), without CRLF. */
export const BASE64_LINE_LENGTH = 76;

const encoder = new TextEncoder();

/** Anything but the standard alphabet: padding, whitespace, URL-safe letters or invalid input. */
const NOT_PLAIN_DATA = /[^A-Za-z0-9+/]/;
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

/** `Uint8Array.prototype.setFromBase64` (ES2026), where the platform has it. */
type SetFromBase64 = (
  this: Uint8Array,
  text: string,
  options: { lastChunkHandling: "loose" | "stop-before-partial" },
) => { read: number; written: number };
const nativeSetFromBase64 =
  (Uint8Array.prototype as unknown as { setFromBase64?: SetFromBase64 }).setFromBase64;
/** Characters decoded per native call (whole 4-character groups) into the scratch buffer. */
const NATIVE_SLICE = 65536;
let nativeScratch: Uint8Array | undefined;

/**
 * The scan of `content` when it is in plain form (standard alphabet, no
 * whitespace, 0-2 `=` at the end, a possible length), else `undefined`: then
 * {@linkcode scanBase64}'s general scan decides (and explains). Where the
 * platform has a native base64 decoder it checks the text, over slices into
 * one small scratch buffer (the decoded octets are thrown away): about 10x
 * faster than a pattern (0.7 ms for 14 MB, against 9). Elsewhere a pattern does.
 */
export function plainBase64Scan(content: string): Base64Scan | undefined {
  const padding = content.endsWith("==") ? 2 : content.endsWith("=") ? 1 : 0;
  const data = content.length - padding;
  const rest = data % 4;
  if (rest === 1 || (padding > 0 && rest + padding !== 4)) return undefined;
  const plain = nativeSetFromBase64 === undefined
    ? !NOT_PLAIN_DATA.test(padding === 0 ? content : content.slice(0, data))
    : decodesAsPlain(content, data, nativeSetFromBase64);
  return plain ? { chars: paddedLength(data, padding), data, plain: true } : undefined;
}

/** Whether the native decoder reads all of `content` as `data` characters and their padding. */
function decodesAsPlain(content: string, data: number, decode: SetFromBase64): boolean {
  const scratch = nativeScratch ??= new Uint8Array((NATIVE_SLICE / 4) * 3);
  let written = 0;
  try {
    for (let start = 0; start < content.length; start += NATIVE_SLICE) {
      const slice = content.slice(start, start + NATIVE_SLICE);
      const last = start + NATIVE_SLICE >= content.length;
      const result = decode.call(scratch, slice, {
        lastChunkHandling: last ? "loose" : "stop-before-partial",
      });
      if (result.read !== slice.length) return false;
      written += result.written;
    }
  } catch {
    return false; // not base64
  }
  // The decoder skips whitespace and accepts '=' ending a middle slice: either leaves fewer
  // octets than the length promises (by at least one, except for the one length left out).
  return written === Math.floor((data * 3) / 4);
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
  const plain = plainBase64Scan(content);
  if (plain !== undefined) return plain;
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

/** Base64 of `bytes`, natively where the platform has `Uint8Array.prototype.toBase64`. */
export function bytesToBase64(bytes: Uint8Array): string {
  const native = (bytes as Uint8Array & { toBase64?: () => string }).toBase64;
  if (typeof native === "function") return native.call(bytes);
  const parts: string[] = [];
  // 3 × 8192 bytes: whole base64 groups, so the parts can simply be joined.
  for (let i = 0; i < bytes.length; i += 24576) {
    parts.push(btoa(String.fromCharCode(...bytes.subarray(i, i + 24576))));
  }
  return parts.join("");
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
