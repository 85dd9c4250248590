/**
 * The hashes of the Deno entry points (`functions/deno.ts`, `deno task dev`):
 * SHA-256 from `node:crypto` (native: 14 MB in 7-9 ms, @noble's in 62-74 ms)
 * and HMAC-MD5 from the audited @noble/hashes, both imported statically so
 * that Deno Deploy and Supabase, which build the module graph ahead of time,
 * carry them. Hand them over with `provideDigests(denoDigests)`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { DigestProvider } from "./digests.ts";
import { hmacMd5 } from "./noble.ts";

/** Deno's hash implementations, for {@linkcode provideDigests}. */
export const denoDigests: DigestProvider = {
  hmacMd5,
  createSha256: () => createHash("sha256"),
};
