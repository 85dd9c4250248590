/**
 * The `deno task dev` entry. Serves the HTTP function on
 * `http://127.0.0.1:8000` (`PORT` overrides). With no SMTP settings (neither
 * `SMTP_URL` nor `SMTP_HOST`) it starts the embedded development mail server on
 * `127.0.0.1:2525` (`DEV_SMTP_PORT` overrides), sends through it, and serves
 * the stored messages at `GET /dev/outbox` (folder `./.outbox/`,
 * `EDGEMAIL_OUTBOX_DIR` overrides). With SMTP settings it sends there, exactly
 * as configured. `0` as a port picks a free one; the start-up line tells which.
 *
 * @module
 */

import { Hono } from "hono";
import { createApp } from "../http/app.ts";
import { type Config, ConfigError, loadConfig } from "../http/config.ts";
import { type LogFormat, logFormatOf } from "../http/logging.ts";
import {
  drainExitCode,
  GracefulShutdown,
  resolvesWithin,
  ShutdownConfigError,
  shutdownTimeoutMs,
} from "../http/shutdown.ts";
import { denoConnect } from "../socket/deno.ts";
import { provideDigests } from "../hash/digests.ts";
import { denoDigests } from "../hash/deno.ts";
import { openDenoKvStore } from "../store/deno_kv.ts";
import type { Store } from "../store/store.ts";
import { DEV_SMTP_PORT, type DevMailServer, startDevMailServer } from "./mail_server.ts";
import { createOutboxRoutes } from "./outbox.ts";
import { createPlaygroundRoutes } from "./playground.ts";

/** The HTTP port when `PORT` is unset. */
export const DEV_HTTP_PORT = 8000;

/** The sender used in development mode when `MAIL_FROM` is unset. */
export const DEV_MAIL_FROM = "edgemail dev <dev@localhost>";

/** Where the outbox is when `EDGEMAIL_OUTBOX_DIR` is unset. */
export const DEV_OUTBOX_DIR = ".outbox";

const HOSTNAME = "127.0.0.1";

// Settings that only make sense together with SMTP_HOST.
const SMTP_HOST_SETTINGS = [
  "SMTP_PORT",
  "SMTP_USER",
  "SMTP_PASS",
  "SMTP_TLS",
  "SMTP_INSECURE_AUTH",
];

type Env = Record<string, string | undefined>;

/** A reason not to start, said to the user as is. */
class StartupError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

/**
 * Runs the development server until SIGINT or SIGTERM. Resolves with the exit
 * code: 0 after a clean shutdown, 1 when it could not start or the shutdown
 * had to cut work at `SHUTDOWN_TIMEOUT_MS`.
 */
export async function main(env: Env = Deno.env.toObject()): Promise<number> {
  provideDigests(denoDigests);
  let mailServer: DevMailServer | undefined;
  let store: Store | undefined;
  try {
    const port = readPort(env, "PORT", DEV_HTTP_PORT);
    const embedded = !env.SMTP_URL && !env.SMTP_HOST;
    let outboxDir: string | undefined;
    let appEnv = env;
    if (embedded) {
      rejectLoneHostSettings(env);
      outboxDir = env.EDGEMAIL_OUTBOX_DIR || DEV_OUTBOX_DIR;
      mailServer = await startMailServer(readPort(env, "DEV_SMTP_PORT", DEV_SMTP_PORT), outboxDir, {
        recipientDelayMs: readDelay(env),
      });
      appEnv = embeddedEnv(env, mailServer);
    }
    // Only mail that stays in the embedded server may skip the no-open-relay rule.
    const config = readConfig(appEnv, embedded);
    const root = new Hono();
    if (outboxDir !== undefined) {
      root.route("/dev", createOutboxRoutes(outboxDir));
      // The playground (GET /) only where mail stays on this machine.
      root.route("/", createPlaygroundRoutes());
    }
    // Idempotency keys (and RATE_LIMIT, when set) live in Deno KV, as with `deno task start`.
    store = await openStore(config);
    // Requests in flight at SIGINT/SIGTERM get SHUTDOWN_TIMEOUT_MS to finish (src/http/shutdown.ts).
    const graceful = new GracefulShutdown({ timeoutMs: readShutdownTimeout(env) });
    const connect = graceful.wrapConnect(config.smtp.connect ?? denoConnect);
    const logFormat = readLogFormat(env);
    root.mount("/", createApp(config, { store, connect, logFormat }).fetch);

    // Listen for signals before the start-up line, which tells scripts they may send one.
    const signalled = untilSignal();
    const shutdown = new AbortController();
    const server = serve(graceful.wrapFetch(root.fetch), port, shutdown.signal, (actualPort) => {
      const where = `http://${HOSTNAME}:${actualPort}`;
      console.log(
        (mailServer && outboxDir !== undefined
          ? embeddedLine(where, mailServer, outboxDir)
          : configuredLine(where, config)) + originsNote(config),
      );
    });
    await signalled;
    // Not shutdown.abort(): Deno.serve's abort signal cuts the connections in flight.
    // shutdown() stops accepting and lets them finish; the drain bounds how long.
    const stopped = server.shutdown();
    const drain = await graceful.drain();
    // Past the bound the last responses (unknown_outcome…) were handed over but may not be
    // written yet; a stalled reader would hold `stopped` forever, so it gets a moment only.
    if (drain === "drained") await stopped;
    else await resolvesWithin(stopped.catch(() => {}), FORCED_RESPONSES_MS);
    await mailServer?.close();
    await store.close();
    return drainExitCode(drain);
  } catch (error) {
    await mailServer?.close();
    await store?.close();
    if (!(error instanceof StartupError)) throw error;
    for (const problem of error.problems) console.error(`edgemail dev: ${problem}`);
    return 1;
  }
}

/** After a forced drain, how long the responses handed over may take to be written. */
const FORCED_RESPONSES_MS = 2000;

/** `PORT`-like variables: an integer 0..65535, 0 meaning any free port. */
function readPort(env: Env, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new StartupError([`${name} must be a port number from 0 to 65535 (0 picks a free one).`]);
  }
  return Number(value);
}

/** `DEV_SMTP_DELAY_MS`: the embedded server waits this long before accepting each recipient. */
function readDelay(env: Env): number {
  const value = env.DEV_SMTP_DELAY_MS;
  if (value === undefined || value === "") return 0;
  if (!/^\d{1,6}$/.test(value)) {
    throw new StartupError(["DEV_SMTP_DELAY_MS must be a number of milliseconds (0 to 999999)."]);
  }
  return Number(value);
}

function rejectLoneHostSettings(env: Env): void {
  const lone = SMTP_HOST_SETTINGS.filter((name) => env[name]);
  if (lone.length > 0) {
    throw new StartupError(
      lone.map((name) =>
        `${name} is set but SMTP_HOST is not: set SMTP_HOST to use a real SMTP server, ` +
        `or unset ${name} to use the embedded development mail server.`
      ),
    );
  }
}

async function startMailServer(
  port: number,
  outboxDir: string,
  options: { recipientDelayMs: number },
): Promise<DevMailServer> {
  try {
    return await startDevMailServer({
      ...options,
      hostname: HOSTNAME,
      port,
      outboxDir,
      onMessage: ({ path }) => console.log(`edgemail dev: message saved as ${path}`),
    });
  } catch (error) {
    throw new StartupError([error instanceof Error ? error.message : String(error)]);
  }
}

/** The environment the app sees in embedded mode: SMTP via the development mail server. */
function embeddedEnv(env: Env, mailServer: DevMailServer): Env {
  return {
    ...env,
    SMTP_URL: `smtp://dev:dev@${mailServer.hostname}:${mailServer.port}`,
    SMTP_CA_CERT: mailServer.caCert,
    MAIL_FROM: env.MAIL_FROM || DEV_MAIL_FROM,
  };
}

async function openStore(config: Config): Promise<Store> {
  try {
    return await openDenoKvStore({ path: config.kvPath });
  } catch (error) {
    throw new StartupError([(error as Error).message]);
  }
}

function readConfig(env: Env, development: boolean): Config {
  try {
    return loadConfig(env, { development, localOrigins: true });
  } catch (error) {
    if (error instanceof ConfigError) throw new StartupError(error.problems);
    throw error;
  }
}

/** `LOG_FORMAT`, or a start-up problem naming it. */
function readLogFormat(env: Env): LogFormat {
  try {
    return logFormatOf(env);
  } catch (error) {
    throw new StartupError([(error as Error).message]);
  }
}

/** Which browser pages may call, for the start-up line. */
function originsNote(config: Config): string {
  if (config.localOrigins) {
    return "; pages on http://localhost:* and http://127.0.0.1:* may call it (CORS_ORIGINS overrides)";
  }
  return config.corsOrigins.length > 0
    ? `; browser origins: CORS_ORIGINS (${config.corsOrigins.length})`
    : "; no browser page may call it: set ALLOWED_TO to let http://localhost:* pages call " +
      "(mail leaves this machine), or CORS_ORIGINS";
}

/** `SHUTDOWN_TIMEOUT_MS`, or a start-up problem naming it. */
function readShutdownTimeout(env: Env): number {
  try {
    return shutdownTimeoutMs(env);
  } catch (error) {
    if (error instanceof ShutdownConfigError) throw new StartupError([error.message]);
    throw error;
  }
}

function serve(
  handler: (request: Request) => Response | Promise<Response>,
  port: number,
  signal: AbortSignal,
  onListen: (port: number) => void,
): Deno.HttpServer {
  try {
    return Deno.serve({
      hostname: HOSTNAME,
      port,
      signal,
      onListen: ({ port }) => onListen(port),
    }, handler);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    throw new StartupError([
      `cannot listen on http://${HOSTNAME}:${port} (the port is in use): set PORT to a free port.`,
    ]);
  }
}

function embeddedLine(where: string, mailServer: DevMailServer, outboxDir: string): string {
  const folder = outboxDir === DEV_OUTBOX_DIR
    ? `./${DEV_OUTBOX_DIR}/`
    : `${outboxDir.replace(/\/+$/, "")}/`;
  return `edgemail dev: listening on ${where} — no SMTP configured, mail goes to the embedded ` +
    `server ${mailServer.hostname}:${mailServer.port} and is saved in ${folder} (GET /dev/outbox)`;
}

function configuredLine(where: string, config: Config): string {
  const { host, port, tls } = config.smtp;
  return `edgemail dev: listening on ${where} — mail goes to the SMTP server ${host}:${port} ` +
    `(TLS: ${tls}); no embedded server`;
}

/** Resolves on the first SIGINT or SIGTERM; a second one ends the process at once. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = () => {
      if (received) Deno.exit(130);
      received = true;
      resolve();
    };
    Deno.addSignalListener("SIGINT", onSignal);
    // Windows has no SIGTERM.
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSignal);
  });
}

if (import.meta.main) Deno.exit(await main());
