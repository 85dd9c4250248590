/**
 * The Cloudflare Workers entry (`main` in `wrangler.toml`): the edgemail HTTP
 * function on `connect()` from `cloudflare:sockets`.
 *
 * The app is built once per isolate, on the first request, from the Worker's
 * `[vars]` and secrets. Sockets cannot outlive a request on Workers, so each
 * request gets its own SMTP client (no cross-request pool). Idempotency
 * claims and rate-limit counters live in the `EdgemailStore` Durable Object
 * exported here and bound as `EDGEMAIL_STORE` in `wrangler.toml`; public
 * callers are counted by `CF-Connecting-IP`.
 *
 * @module
 */

import type { ExecutionContext, Hono } from "hono";
import { createApp } from "../src/http/app.ts";
import { ConfigError, loadConfig } from "../src/http/config.ts";
import { logFormatOf } from "../src/http/logging.ts";
import { cloudflareConnectingIp } from "../src/http/caller.ts";
import { cloudflareConnect } from "../src/socket/cloudflare.ts";
import {
  durableObjectStore,
  isDurableObjectNamespace,
  STORE_BINDING,
} from "../src/store/durable_object.ts";

/** The Durable Object class behind `EDGEMAIL_STORE` (`wrangler.toml`). */
export { EdgemailStore } from "../src/store/durable_object.ts";

let app: Hono | undefined;

/** Builds the app on first use; a configuration error is retried on the next request. */
function appFor(env: Record<string, unknown>): Hono {
  if (app !== undefined) return app;
  const namespace = env[STORE_BINDING];
  const hasStore = isDurableObjectNamespace(namespace);
  const variables = stringVariables(env);
  const config = loadConfig(variables, { store: hasStore });
  if (config.smtp.caCerts !== undefined) {
    console.warn(
      "edgemail: SMTP_CA_CERT is ignored on Cloudflare Workers: certificates are checked " +
        "against the platform trust store. Use a server certificate from a public CA.",
    );
  }
  if (config.trustProxy) {
    console.warn(
      "edgemail: TRUST_PROXY is ignored on Cloudflare Workers: the client address is always " +
        "CF-Connecting-IP, which Cloudflare sets (X-Forwarded-For is whatever the client sent).",
    );
  }
  app = createApp({ ...config, trustProxy: false }, {
    connect: cloudflareConnect,
    perRequestClient: true,
    store: hasStore ? durableObjectStore(namespace) : undefined,
    clientAddress: cloudflareConnectingIp,
    logFormat: logFormatOf(variables),
  });
  return app;
}

/** Text bindings only: `[vars]` and secrets (other binding kinds are not configuration). */
function stringVariables(env: Record<string, unknown>): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === "string") variables[name] = value;
  }
  return variables;
}

function configurationFailure(error: unknown): Response {
  // The problems name variables, never values; still, they are for the operator, not callers.
  const detail = error instanceof ConfigError ? error.message : String(error);
  console.error(`edgemail: the Worker is not configured correctly.\n${detail}`);
  return Response.json({
    error: {
      type: "internal",
      message: "The service is not configured correctly; the Worker's log says what to fix.",
    },
  }, { status: 500 });
}

export default {
  fetch(request: Request, env: Record<string, unknown>, ctx: ExecutionContext) {
    let worker: Hono;
    try {
      worker = appFor(env);
    } catch (error) {
      return configurationFailure(error);
    }
    return worker.fetch(request, env, ctx);
  },
};
