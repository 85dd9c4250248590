/**
 * Reads a JSON request body once: the size limit is enforced while the bytes
 * arrive (with or without `Content-Length`), each chunk is dropped as soon as
 * it is copied into one buffer, that buffer is decoded once as strict UTF-8
 * and dropped, and the text is parsed once.
 * Long string values (base64 attachments) are not copied out of the text by
 * the parser: they become slices of it (see {@linkcode parseJsonSharingStrings}).
 * So a 14 MB body costs about one copy of its text, never also a buffered copy
 * of the bytes, a cached second text (as Hono's `bodyLimit` plus
 * `validator("json")` keep) or a parsed copy of each long string.
 *
 * Web-standard only (Request, streams, TextDecoder): the same code runs on
 * Deno and Workers.
 *
 * @module
 */

import { plainBase64Scan } from "../message/base64.ts";

/** Options of {@linkcode readJsonBody}. */
export interface ReadJsonBodyOptions {
  /** The largest accepted body, in bytes (`MAX_MESSAGE_BYTES`). */
  maxBytes: number;
}

/** Why a body was refused: the HTTP status, the error type and a message for the caller. */
export interface BodyRefusal {
  /** Not read: `ok` is false. */
  ok: false;
  /** 413 when the body is too large, 400 when it is not UTF-8 JSON. */
  status: 400 | 413;
  /** The error type of the response (CONTRACT section 3). */
  type: "too_large" | "validation";
  /** What is wrong; it never repeats any of the body. */
  message: string;
}

/** The result of {@linkcode readJsonBody}: the parsed value, or why the body was refused. */
export type JsonBody = { ok: true; value: unknown } | BodyRefusal;

/** Reads `request`'s body as JSON; see the module documentation. */
export async function readJsonBody(
  request: Request,
  options: ReadJsonBodyOptions,
): Promise<JsonBody> {
  const { maxBytes } = options;
  const tooLarge: BodyRefusal = {
    ok: false,
    status: 413,
    type: "too_large",
    message: `The request body is larger than ${maxBytes} bytes (MAX_MESSAGE_BYTES).`,
  };
  const header = request.headers.get("Content-Length");
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    // Refused before reading: cancel the stream so the connection is not kept busy.
    await request.body?.cancel().catch(() => {});
    return tooLarge;
  }
  const text = await readText(request.body, maxBytes, declared);
  if (text === TOO_LARGE) return tooLarge;
  if (text === NOT_UTF8) {
    return {
      ok: false,
      status: 400,
      type: "validation",
      message: "The request body is not valid UTF-8.",
    };
  }
  try {
    return { ok: true, value: parseJsonSharingStrings(text) };
  } catch {
    // JSON.parse's message quotes the input: it is not passed on.
    return {
      ok: false,
      status: 400,
      type: "validation",
      message: "The request body is not valid JSON.",
    };
  }
}

const TOO_LARGE = Symbol("too large");
const NOT_UTF8 = Symbol("not UTF-8");

/**
 * The body as text: its bytes are gathered into one buffer (grown by
 * doubling, or straight to `Content-Length` once the first mebibyte has
 * arrived, so a declared size alone reserves no memory), decoded once, and the
 * buffer dropped. Gathering stops, and the stream is cancelled, once more than
 * `maxBytes` arrived.
 *
 * One buffer rather than pieces decoded as they come and joined at the end
 * (measured: +41 MiB at the peak for 14 MiB, against +29 MiB): the pieces fill
 * V8's young generation, which grows, and the join copies them all.
 */
async function readText(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  declared: number | undefined,
): Promise<string | typeof TOO_LARGE | typeof NOT_UTF8> {
  if (body === null) return "";
  const bytes = await gatherBytes(body, { maxBytes, declared });
  if (bytes === TOO_LARGE) return TOO_LARGE;
  const text = decodeUtf8(bytes);
  release(bytes.buffer);
  return text;
}

/**
 * Frees a buffer's memory now rather than at some later garbage collection
 * (which, with few allocations on the JavaScript heap, may not come for the
 * rest of the request): a `transfer` to length 0 detaches it. Measured on a
 * 14 MB body through `Deno.serve`: the chunks read and the gathered bytes
 * otherwise all stay resident until the request ends.
 */
function release(buffer: ArrayBufferLike): void {
  const own = buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (typeof own.transfer === "function" && !own.resizable) own.transfer(0);
}

/**
 * Releases a chunk read from the stream once it is copied, when the reader
 * owns its buffer: every chunk of a byte stream (enqueueing one transfers its
 * buffer to the stream, so its producer cannot touch it again), and of other
 * streams only a chunk that spans its whole buffer (a view of part of a
 * buffer may share it with its producer).
 */
function releaseChunk(chunk: Uint8Array, byteStream: boolean): void {
  const { buffer } = chunk;
  if (typeof SharedArrayBuffer === "function" && buffer instanceof SharedArrayBuffer) return;
  if (byteStream || (chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength)) {
    release(buffer);
  }
}

interface GatherOptions {
  maxBytes: number;
  declared: number | undefined;
}

/**
 * The body's bytes in one buffer, copied chunk by chunk, each chunk released
 * as soon as it is copied. Not read BYOB even where the body is a byte stream
 * (`Deno.serve`'s and Workers' are): measured on `Deno.serve` with a 14 MB
 * body, its BYOB reads still go through a 64 KiB buffer per read that is left
 * to the garbage collector, +16 MB at the peak (44 MB against 30 MB).
 */
async function gatherBytes(
  body: ReadableStream<Uint8Array>,
  options: GatherOptions,
): Promise<Uint8Array | typeof TOO_LARGE> {
  return await gatherChunks(body.getReader(), { ...options, byteStream: isByteStream(body) });
}

/** What {@linkcode observeBody} calls: with each chunk before passing it on, and once at the end. */
export interface BodyObserver {
  /** Sees a chunk; the chunk is passed on once this settles. */
  chunk(bytes: Uint8Array): void | Promise<void>;
  /** Called once after the last chunk, before the stream ends. */
  end(): void | Promise<void>;
}

/**
 * `body` with each chunk shown to `observer` before it is passed on (the
 * `Idempotency-Key` hash of a body as it streams by). A byte stream stays a
 * byte stream, each chunk's buffer handed along, so that
 * {@linkcode readJsonBody} can still release every chunk once copied: through
 * a `TransformStream` it may release none of `Deno.serve`'s partly filled
 * chunks (measured: +11 MB at the peak for a 14 MB body).
 */
export function observeBody(
  body: ReadableStream<Uint8Array>,
  observer: BodyObserver,
): ReadableStream<Uint8Array> {
  if (!isByteStream(body)) {
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, controller) {
          await observer.chunk(chunk);
          controller.enqueue(chunk);
        },
        flush: () => observer.end(),
      }),
    );
  }
  const reader = body.getReader();
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      // A byte stream never yields an empty chunk (nor takes one): each read passes one on.
      const { done, value } = await reader.read();
      if (done) {
        await observer.end();
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      await observer.chunk(value);
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** Whether `body` is a byte stream (it can be read BYOB); leaves it unlocked. */
function isByteStream(body: ReadableStream<Uint8Array>): boolean {
  try {
    body.getReader({ mode: "byob" }).releaseLock();
    return true;
  } catch {
    return false;
  }
}

/** The size to grow a buffer of `size` octets to so that it holds `needed`. */
function grownSize(size: number, needed: number, options: GatherOptions): number {
  const { declared, maxBytes } = options;
  const target = declared !== undefined && declared >= needed ? declared : size * 2;
  return Math.min(Math.max(target, needed), maxBytes);
}

/** The first buffer's size: `Content-Length` up to a mebibyte, so a claim alone reserves little. */
function firstSize(options: GatherOptions): number {
  return Math.min(options.declared ?? INITIAL_BUFFER, TRUSTED_DECLARED, options.maxBytes);
}

/** A copy of `bytes[0, length)` in a buffer of `size` octets; the old buffer is released. */
function grow(bytes: Uint8Array, length: number, size: number): Uint8Array<ArrayBuffer> {
  const grown = new Uint8Array(size);
  grown.set(bytes.subarray(0, length));
  release(bytes.buffer);
  return grown;
}

/** Copies the chunks of a stream into one buffer. */
async function gatherChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  options: GatherOptions & { byteStream: boolean },
): Promise<Uint8Array | typeof TOO_LARGE> {
  let buffer = new Uint8Array(firstSize(options));
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const needed = length + value.byteLength;
      if (needed > options.maxBytes) {
        await reader.cancel().catch(() => {});
        return TOO_LARGE;
      }
      if (needed > buffer.length) {
        buffer = grow(buffer, length, grownSize(buffer.length, needed, options));
      }
      buffer.set(value, length);
      releaseChunk(value, options.byteStream);
      length = needed;
    }
  } finally {
    reader.releaseLock();
  }
  return buffer.subarray(0, length);
}

/**
 * Strict UTF-8 decoding in one native pass. The lenient decoder is used
 * first: it builds the string straight from the bytes, while the strict one
 * (in Deno) goes through a second full-size copy, tripling the peak for a
 * large body. Only text with a U+FFFD in it, which is what the lenient
 * decoder puts in place of invalid bytes, is decoded again strictly.
 */
function decodeUtf8(bytes: Uint8Array): string | typeof NOT_UTF8 {
  const text = new TextDecoder().decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return NOT_UTF8;
  }
}

/** The first buffer's size for a body without `Content-Length`. */
const INITIAL_BUFFER = 65536;
/** Most of a declared `Content-Length` reserved before any byte arrived. */
const TRUSTED_DECLARED = 1 << 20;

/** String values at least this long are shared with the text instead of copied. */
const SHARED_STRING_LENGTH = 65536;
/**
 * A character JSON strings may not contain unescaped (controls), or a
 * backslash; written as a negated class, which V8 searches about 5x faster.
 */
const NOT_PLAIN_STRING = /[^\u0020-\u005b\u005d-\uffff]/;

/**
 * `JSON.parse(text)`, except that long string values without escapes come
 * back as slices of `text` (which share its memory) rather than as copies:
 * each is replaced by a short placeholder before parsing and put back by the
 * reviver. The quotes are paired exactly as the JSON grammar pairs them
 * (an unescaped `"` always opens or closes a string), and only contents that
 * are valid as they stand (no control character, no backslash) are replaced,
 * so a text is accepted or refused exactly as by `JSON.parse`. Object keys
 * are never replaced.
 *
 * @throws {SyntaxError} when `text` is not JSON (its message may quote the text).
 */
export function parseJsonSharingStrings(text: string): unknown {
  if (text.length < SHARED_STRING_LENGTH) return JSON.parse(text);
  const spans: number[] = [];
  let at = 0;
  for (;;) {
    const open = text.indexOf('"', at);
    if (open === -1) break;
    const close = closingQuote(text, open);
    if (close === -1) break; // unterminated: JSON.parse reports it
    at = close + 1;
    if (close - open - 1 < SHARED_STRING_LENGTH || isKey(text, at)) continue;
    // Plain base64 (what long strings mostly are) is checked natively, 10x faster.
    const content = text.slice(open + 1, close);
    if (plainBase64Scan(content) === undefined && NOT_PLAIN_STRING.test(content)) continue;
    spans.push(open + 1, close);
  }
  if (spans.length === 0) return JSON.parse(text);
  // A random marker: no string of the request can look like a placeholder by chance.
  const marker = `\u0000${crypto.randomUUID()}:`;
  const pieces: string[] = [];
  let from = 0;
  for (let i = 0; i < spans.length; i += 2) {
    pieces.push(text.slice(from, spans[i]), JSON.stringify(`${marker}${i}`).slice(1, -1));
    from = spans[i + 1];
  }
  pieces.push(text.slice(from));
  return JSON.parse(pieces.join(""), (_key, value) => {
    if (typeof value !== "string" || !value.startsWith(marker)) return value;
    const index = Number(value.slice(marker.length));
    return text.slice(spans[index], spans[index + 1]);
  });
}

/** The index of the quote that closes the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Whether the string that ended just before `at` is an object key (a `:` follows). */
function isKey(text: string, at: number): boolean {
  while (at < text.length) {
    const code = text.charCodeAt(at);
    if (code !== 32 && code !== 9 && code !== 10 && code !== 13) return code === 58;
    at++;
  }
  return false;
}
