/**
 * The Deno entry — Deno, Deno Deploy, Supabase Edge Functions:
 * `deno serve --allow-net --allow-env --allow-read --allow-write functions/deno.ts`.
 * The configuration is read from the environment once, at start-up; a bad
 * one stops it with one line per problem. Idempotency claims and rate-limit
 * counters live in Deno KV (`KV_PATH`, a local SQLite file; the platform's KV
 * on Deno Deploy). Where Deno has no KV (Supabase Edge Functions), there is no
 * store: `Idempotency-Key` answers 501 and a public configuration must set
 * `RATE_LIMIT=off`.
 *
 * @module
 */

import type { Hono } from "hono";
import { createApp } from "../src/http/app.ts";
import { ConfigError, loadConfig } from "../src/http/config.ts";
import { logFormatOf } from "../src/http/logging.ts";
import { hasDenoKv, openDenoKvStore } from "../src/store/deno_kv.ts";
import { StoreError } from "../src/store/store.ts";

let app: Hono;
try {
  const env = Deno.env.toObject();
  const config = loadConfig(env, { store: hasDenoKv() });
  const store = config.store
    ? await openDenoKvStore({
      path: config.kvPath,
      deployed: env.DENO_DEPLOYMENT_ID !== undefined,
    })
    : undefined;
  app = createApp(config, { store, logFormat: logFormatOf(env) });
} catch (error) {
  // RangeError: LOG_FORMAT (its message names it).
  const known = error instanceof ConfigError || error instanceof StoreError ||
    error instanceof RangeError;
  if (!known) {
    throw error;
  }
  console.error(`edgemail cannot start. ${error.message}`);
  Deno.exit(1);
}

// The connection info becomes Hono's `c.env`: the client address of public callers.
export default {
  fetch: (request, info) => app.fetch(request, info),
} satisfies Deno.ServeDefaultExport;
