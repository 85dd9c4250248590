/**
 * The Deno entry — Deno, Deno Deploy, Supabase Edge Functions:
 * `deno serve --allow-net --allow-env --allow-read functions/deno.ts`.
 * The configuration is read from the environment once, at start-up; a bad
 * one stops it with one line per problem.
 *
 * @module
 */

import type { Hono } from "hono";
import { createApp } from "../src/http/app.ts";
import { ConfigError, loadConfig } from "../src/http/config.ts";

let app: Hono;
try {
  app = createApp(loadConfig(Deno.env.toObject()));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`edgemail cannot start. ${error.message}`);
  Deno.exit(1);
}

export default { fetch: (request) => app.fetch(request) } satisfies Deno.ServeDefaultExport;
