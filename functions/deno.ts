/**
 * The Deno entry — Deno, Deno Deploy, Supabase Edge Functions:
 * `deno serve --allow-net --allow-env --allow-read --allow-write functions/deno.ts`.
 * The configuration is read from the environment once, at start-up; a bad
 * one stops it with one line per problem. Idempotency claims and rate-limit
 * counters live in Deno KV (`KV_PATH`, a local SQLite file; the platform's KV
 * on Deno Deploy). Where Deno has no KV (Supabase Edge Functions), there is no
 * store: `Idempotency-Key` answers 501 and a public configuration must set
 * `RATE_LIMIT=off`. On SIGTERM or SIGINT it stops accepting and lets requests in
 * flight finish for up to `SHUTDOWN_TIMEOUT_MS` (default 30 000) before it exits,
 * 0 or, when that bound cut work, 1 (see src/http/shutdown.ts).
 *
 * @module
 */

import type { Hono } from "hono";
import { createApp } from "../src/http/app.ts";
import { ConfigError, loadConfig } from "../src/http/config.ts";
import { logFormatOf } from "../src/http/logging.ts";
import {
  drainExitCode,
  GracefulShutdown,
  onTerminationSignal,
  ShutdownConfigError,
  shutdownTimeoutMs,
} from "../src/http/shutdown.ts";
import { SmtpClient } from "../src/smtp/client.ts";
import { denoConnect } from "../src/socket/deno.ts";
import { hasDenoKv, openDenoKvStore } from "../src/store/deno_kv.ts";
import { StoreError } from "../src/store/store.ts";
import { provideDigests } from "../src/hash/digests.ts";
import { denoDigests } from "../src/hash/deno.ts";

// Static imports: Deno Deploy and Supabase carry only what the module graph reaches.
provideDigests(denoDigests);

let app: Hono;
let client: SmtpClient;
let shutdown: GracefulShutdown;
try {
  const env = Deno.env.toObject();
  const config = loadConfig(env, { store: hasDenoKv() });
  shutdown = new GracefulShutdown({ timeoutMs: shutdownTimeoutMs(env) });
  // One pooled client whose connections the shutdown can close at its bound.
  client = new SmtpClient({
    ...config.smtp,
    connect: shutdown.wrapConnect(config.smtp.connect ?? denoConnect),
  });
  const store = config.store
    ? await openDenoKvStore({
      path: config.kvPath,
      deployed: env.DENO_DEPLOYMENT_ID !== undefined,
    })
    : undefined;
  app = createApp(config, { store, client, logFormat: logFormatOf(env) });
} catch (error) {
  // RangeError: LOG_FORMAT (its message names it).
  const known = error instanceof ConfigError || error instanceof StoreError ||
    error instanceof ShutdownConfigError || error instanceof RangeError;
  if (!known) throw error;
  console.error(`edgemail cannot start. ${error.message}`);
  Deno.exit(1);
}

// SIGTERM/SIGINT: `deno serve` stops accepting by itself; requests in flight, then the sends that
// outlived their request (client.close() waits for them and says QUIT), run on for up to
// SHUTDOWN_TIMEOUT_MS in all, and the process exits: 0, or 1 when the bound cut work.
onTerminationSignal(async () => {
  const code = drainExitCode(await shutdown.drain({ settle: () => client.close() }));
  Deno.exitCode = code;
  // Nothing should be left to keep the process alive; if something is, do not wait for it.
  Deno.unrefTimer(setTimeout(() => Deno.exit(code), 2000));
});

// The connection info becomes Hono's `c.env`: the client address of public callers.
export default {
  fetch: shutdown.wrapFetch((request: Request, info: Deno.ServeHandlerInfo) =>
    app.fetch(request, info)
  ),
} satisfies Deno.ServeDefaultExport;
