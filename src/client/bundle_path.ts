/**
 * Where the prebuilt browser module of the client lives: one minified ES
 * module (`deno task build:client`, checked in) that a page can import as is,
 * such as the playground of `deno task dev`.
 *
 * @example
 * ```ts
 * import { CLIENT_BUNDLE_URL } from "./bundle_path.ts";
 *
 * const script = await Deno.readTextFile(CLIENT_BUNDLE_URL);
 * const response = new Response(script, {
 *   headers: { "Content-Type": "text/javascript; charset=utf-8" },
 * });
 * ```
 *
 * @module
 */

/** The file URL of `src/client/dist/edgemail_client.js`. */
export const CLIENT_BUNDLE_URL: URL = new URL("./dist/edgemail_client.js", import.meta.url);

/** The most bytes the minified bundle may have (contract section 7). */
export const CLIENT_BUNDLE_MAX_BYTES = 6144;
