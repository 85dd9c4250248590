/**
 * The hashes WebCrypto lacks on Deno, from the audited @noble/hashes:
 * HMAC-MD5 for CRAM-MD5 and a SHA-256 that takes its input piece by piece.
 * `digests.ts` loads this module only where the platform has no native
 * equivalent, through a specifier bundlers do not follow: a Worker bundle
 * (whose platform has both) never carries it.
 *
 * @module
 */

import { hmac } from "@noble/hashes/hmac.js";
import { md5 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** HMAC-MD5 (RFC 2104) of `message` under `key`. */
export function hmacMd5(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmac(md5, key, message);
}

/** An incremental SHA-256: `update` with each piece, then `digest` once. */
export function createSha256(): { update(bytes: Uint8Array): void; digest(): Uint8Array } {
  return sha256.create();
}
