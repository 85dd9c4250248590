/**
 * The two hashes edgemail needs beyond WebCrypto's one-shot digests, on the
 * platform's own implementation where it has one:
 * - HMAC-MD5 for CRAM-MD5 (RFC 2195): RFC 2104 over `crypto.subtle.digest("MD5")`
 *   where that exists (Cloudflare Workers);
 * - a SHA-256 fed piece by piece, for hashing a request body as it streams by:
 *   `crypto.DigestStream` where that exists (Cloudflare Workers).
 *
 * Elsewhere they come from a {@linkcode DigestProvider}: the one an entry point
 * handed to {@linkcode provideDigests}, else one loaded on first use through a
 * specifier bundlers do not follow — `deno.ts` (`node:crypto` SHA-256, @noble
 * HMAC-MD5), or `noble.ts` alone where there is no `node:crypto` — so a Worker
 * bundle does not carry a hash library its platform already has.
 *
 * @module
 */

/**
 * Hash implementations a runtime's entry point hands over, imported statically
 * so that platforms which build the module graph ahead of time (Deno Deploy,
 * Supabase's bundler) carry them: a dynamic import through a variable is not
 * in that graph. Used before the dynamic fallback below.
 */
export interface DigestProvider {
  /** HMAC-MD5 (RFC 2104). */
  hmacMd5(key: Uint8Array, message: Uint8Array): Uint8Array;
  /** A new incremental SHA-256. */
  createSha256(): { update(bytes: Uint8Array): unknown; digest(): Uint8Array };
}

let provided: DigestProvider | undefined;

/**
 * Makes `provider` the source of HMAC-MD5 (where the platform has no native MD5)
 * and of the streaming SHA-256 (where it has no `crypto.DigestStream`).
 *
 * @example
 * ```ts
 * import { denoDigests } from "./deno.ts";
 * provideDigests(denoDigests);
 * ```
 */
export function provideDigests(provider: DigestProvider): void {
  provided = provider;
}

/** An incremental SHA-256: write each piece, then read the hex digest once. */
export interface StreamingSha256 {
  /** Adds bytes (in order; wait for each before the next). */
  update(bytes: Uint8Array): Promise<void>;
  /** The lowercase hex digest of everything added; call once, after the last `update`. */
  digest(): Promise<string>;
}

// Variables, not literals: bundlers do not follow them (see the module doc).
const DENO_DIGESTS_MODULE = "./deno.ts";
const NOBLE_MODULE = "./noble.ts";
let fallback: Promise<DigestProvider> | undefined;

/** The provided digests, else `deno.ts`'s, else (no `node:crypto`) `noble.ts`'s. */
function digestProvider(): Promise<DigestProvider> {
  if (provided !== undefined) return Promise.resolve(provided);
  fallback ??= (import(DENO_DIGESTS_MODULE) as Promise<typeof import("./deno.ts")>).then(
    (module) => module.denoDigests,
    () => import(NOBLE_MODULE) as Promise<typeof import("./noble.ts")>,
  );
  return fallback;
}

/** Lowercase hex of `bytes`. */
export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

const MD5_BLOCK_BYTES = 64;
let nativeMd5: Promise<boolean> | undefined;

/** Whether `crypto.subtle.digest` computes MD5 here (it does on Workers, not on Deno). */
function hasNativeMd5(): Promise<boolean> {
  nativeMd5 ??= crypto.subtle.digest("MD5", new Uint8Array(0)).then(() => true, () => false);
  return nativeMd5;
}

async function md5(...parts: Uint8Array[]): Promise<Uint8Array> {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("MD5", bytes));
}

/** HMAC-MD5 (RFC 2104) of `message` under `key`, as CRAM-MD5 sends it. */
export async function hmacMd5(key: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  if (!(await hasNativeMd5())) return (await digestProvider()).hmacMd5(key, message);
  const block = new Uint8Array(MD5_BLOCK_BYTES);
  block.set(key.length > MD5_BLOCK_BYTES ? await md5(key) : key);
  const inner = await md5(block.map((byte) => byte ^ 0x36), message);
  return await md5(block.map((byte) => byte ^ 0x5c), inner);
}

/** A new {@linkcode StreamingSha256}. */
export async function streamingSha256(): Promise<StreamingSha256> {
  const DigestStream = (crypto as { DigestStream?: new (algorithm: string) => DigestStream })
    .DigestStream;
  if (DigestStream !== undefined) {
    const stream = new DigestStream("SHA-256");
    const writer = stream.getWriter();
    return {
      update: (bytes) => writer.write(bytes),
      digest: async () => {
        await writer.close();
        return bytesToHex(new Uint8Array(await stream.digest));
      },
    };
  }
  const hash = (await digestProvider()).createSha256();
  return {
    update: (bytes) => Promise.resolve(void hash.update(bytes)),
    digest: () => Promise.resolve(bytesToHex(new Uint8Array(hash.digest()))),
  };
}

/** Cloudflare's `crypto.DigestStream`: a writable stream whose `digest` settles at close. */
interface DigestStream extends WritableStream<Uint8Array> {
  readonly digest: Promise<ArrayBuffer>;
}
