/**
 * MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), for SASL CRAM-MD5 only: WebCrypto
 * has no MD5. MD5 is broken for collision resistance; HMAC-MD5 as CRAM-MD5
 * uses it is still what servers expect. Do not use these for anything else.
 *
 * @module
 */

/** Per-round left-rotation amounts (RFC 1321 section 3.4). */
// deno-fmt-ignore
const SHIFTS = new Uint8Array([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);

/** T[i] = floor(2^32 * |sin(i + 1)|) (RFC 1321 section 3.4). */
const SINES = Uint32Array.from(
  { length: 64 },
  (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32),
);

const BLOCK_BYTES = 64;

/** Folds one 64-byte block at `offset` of `bytes` into `state`. */
function processBlock(state: Uint32Array, bytes: Uint8Array, offset: number, words: Uint32Array) {
  for (let i = 0; i < 16; i++) {
    const o = offset + i * 4;
    words[i] = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  for (let i = 0; i < 64; i++) {
    let f: number, g: number;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const sum = (a + f + SINES[i] + words[g]) | 0;
    const s = SHIFTS[i];
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

/**
 * The 16-byte MD5 digest of `data` (RFC 1321).
 *
 * @example
 * ```ts
 * md5(new TextEncoder().encode("abc")); // 90 01 50 98 3c d2 4f b0 d6 96 3f 7d 28 e1 7f 72
 * ```
 */
export function md5(data: Uint8Array): Uint8Array {
  const state = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  const words = new Uint32Array(16);
  const whole = data.length - (data.length % BLOCK_BYTES);
  for (let offset = 0; offset < whole; offset += BLOCK_BYTES) {
    processBlock(state, data, offset, words);
  }
  // Padding: 0x80, zeros to 56 mod 64, then the bit length as 64-bit little-endian.
  const rest = data.length - whole;
  const tail = new Uint8Array(rest < 56 ? BLOCK_BYTES : 2 * BLOCK_BYTES);
  tail.set(data.subarray(whole));
  tail[rest] = 0x80;
  const bitsLow = (data.length * 8) >>> 0;
  const bitsHigh = Math.floor(data.length / 2 ** 29) >>> 0;
  const view = new DataView(tail.buffer);
  view.setUint32(tail.length - 8, bitsLow, true);
  view.setUint32(tail.length - 4, bitsHigh, true);
  for (let offset = 0; offset < tail.length; offset += BLOCK_BYTES) {
    processBlock(state, tail, offset, words);
  }
  const digest = new Uint8Array(16);
  const out = new DataView(digest.buffer);
  for (let i = 0; i < 4; i++) out.setUint32(i * 4, state[i], true);
  return digest;
}

/**
 * The 16-byte HMAC-MD5 of `data` under `key` (RFC 2104), as SASL CRAM-MD5
 * (RFC 2195) needs.
 */
export function hmacMd5(key: Uint8Array, data: Uint8Array): Uint8Array {
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(key.length > BLOCK_BYTES ? md5(key) : key);
  const inner = new Uint8Array(BLOCK_BYTES + data.length);
  const outer = new Uint8Array(BLOCK_BYTES + 16);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  inner.set(data, BLOCK_BYTES);
  outer.set(md5(inner), BLOCK_BYTES);
  return md5(outer);
}

/** Lower-case hexadecimal of `bytes`, as CRAM-MD5 sends the digest. */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
