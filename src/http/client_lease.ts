/**
 * Where a request's SMTP client comes from: one pooled client shared by every
 * request of the isolate (Deno), a fresh one per request closed when the
 * request is done (Workers: sockets cannot outlive a request), or a client
 * the embedder gave.
 *
 * @module
 */

import type { Context } from "hono";
import { SmtpClient, type SmtpClientOptions } from "../smtp/client.ts";

/** An SMTP client for the duration of one request. */
export interface ClientLease {
  /** The client to send with. */
  client: SmtpClient;
  /** Called once the request is done with the client. */
  release(): void;
}

/** Options of {@linkcode clientSource}. */
export interface ClientSourceOptions {
  /** One client per request, closed after it (Workers). Default: one shared pool. */
  perRequestClient?: boolean;
  /** Use this client for every request; it is never closed here. */
  client?: SmtpClient;
}

/**
 * Provides the SMTP client of a request. The shared client is constructed at
 * once, so invalid SMTP options fail at start-up; construction does no I/O.
 *
 * @example
 * ```ts
 * const acquire = clientSource({ host: "127.0.0.1", port: 2525, tls: "none" });
 * ```
 * @throws {TypeError | RangeError} when the SMTP options are invalid.
 */
export function clientSource(
  smtp: SmtpClientOptions,
  options: ClientSourceOptions = {},
): (c: Context) => ClientLease {
  const given = options.client;
  if (given !== undefined) return () => ({ client: given, release: () => {} });
  const shared = new SmtpClient(smtp);
  if (!options.perRequestClient) return () => ({ client: shared, release: () => {} });
  return (c) => {
    const client = new SmtpClient(smtp);
    return {
      client,
      release: () => {
        const closing = client.close().catch(() => {});
        try {
          c.executionCtx.waitUntil(closing);
        } catch {
          // No execution context (Deno, tests): the close runs on by itself.
        }
      },
    };
  };
}
