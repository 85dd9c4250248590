/**
 * The request the edgemail function expects: a JSON `POST` with an API key,
 * for `app.request()`, `fetch` and a Worker's `fetch` alike.
 *
 * @module
 */

/** Options for {@linkcode jsonPost}. */
export interface JsonPostOptions {
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** The `Accept` header; none when left out. */
  accept?: string;
  /** Aborts the request: the client going away. */
  signal?: AbortSignal;
}

/** A `POST` of `body` as JSON, authorised with `options.apiKey`. */
export function jsonPost(body: unknown, options: JsonPostOptions): RequestInit {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${options.apiKey}`,
    "Content-Type": "application/json",
  };
  if (options.accept !== undefined) headers.Accept = options.accept;
  return { method: "POST", headers, body: JSON.stringify(body), signal: options.signal };
}
