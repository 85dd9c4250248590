/**
 * The options of `SmtpClient`, checked before any I/O: each problem throws a
 * TypeError or RangeError naming the field. Also the one source of the
 * enumerations and syntax checks the HTTP configuration shares (TLS modes,
 * SASL mechanisms, host syntax, the CR/LF/NUL rule).
 *
 * @module
 */

import type { Connect } from "../socket/socket.ts";
import { assertCommandSafe, COMMAND_UNSAFE } from "./commands.ts";
import type { SessionOptions, SmtpAuth } from "./handshake.ts";
import { SASL_MECHANISMS } from "./sasl.ts";
import { TLS_MODES, type TlsMode } from "./types.ts";

export { COMMAND_UNSAFE } from "./commands.ts";
export { TLS_MODES, type TlsMode } from "./types.ts";

/** The SASL mechanism names `auth.mechanism` and `SMTP_AUTH` accept, lower-case. */
export const AUTH_MECHANISMS = SASL_MECHANISMS.map((name) => name.toLowerCase()) as readonly (
  | "plain"
  | "login"
  | "cram-md5"
  | "xoauth2"
)[];

/** A DNS host name (RFC 1123 labels, an optional final dot); IPv4 addresses match too. */
export const HOST_NAME =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** An IP address literal in brackets, or an IPv6 address without them. */
const IP_LITERAL = /^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$/;

/** Whether `text` is a host name or an IP address a connection can go to. */
export function isHost(text: string): boolean {
  return HOST_NAME.test(text) || IP_LITERAL.test(text);
}

/** Timers fire at once beyond this many milliseconds (a signed 32-bit delay). */
export const MAX_TIMER_MS = 2_147_483_647;

/** Connection pool settings. */
export interface PoolOptions {
  /** Most connections open at once. Default 5. */
  maxConnections?: number;
  /** Messages sent on one connection before it is replaced. Default 100. */
  maxMessagesPerConnection?: number;
  /** How long an idle connection stays open. Default 5000 ms. */
  idleTimeoutMs?: number;
}

/** Options of `SmtpClient`. */
export interface SmtpClientOptions {
  /** The SMTP server's host name (also checked against its TLS certificate). */
  host: string;
  /** The port. Default 465 with `tls: "implicit"`, else 587. */
  port?: number;
  /** TLS mode. Default `"implicit"` on port 465, else `"starttls"` (required). */
  tls?: TlsMode;
  /** Credentials for SMTP AUTH. */
  auth?: SmtpAuth;
  /** Allow AUTH over plaintext; only together with `tls: "none"`. */
  allowInsecureAuth?: boolean;
  /** Extra trusted CA certificates (PEM), in addition to the system roots. */
  caCerts?: string[];
  /** The name sent in EHLO. Default `localhost`. */
  name?: string;
  /** Deadline of each step (connect, each reply), in milliseconds. Default 30000. */
  timeoutMs?: number;
  /** Connection pool settings. */
  pool?: PoolOptions;
  /** The socket factory. Default: the Deno adapter (`denoConnect`). */
  connect?: Connect;
}

/** Checks `options` and fills in the defaults; throws a TypeError or RangeError naming the field. */
export function resolveSessionOptions(options: SmtpClientOptions): SessionOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("SmtpClient needs an options object with at least `host`.");
  }
  const { host } = options;
  if (typeof host !== "string" || host === "" || !isHost(host)) {
    throw new TypeError("host must be a host name or an IP address, such as smtp.example.com.");
  }
  const tls = options.tls ?? (options.port === 465 ? "implicit" : "starttls");
  if (!TLS_MODES.includes(tls)) {
    throw new TypeError(`tls must be one of ${TLS_MODES.join(", ")}.`);
  }
  const port = options.port ?? (tls === "implicit" ? 465 : 587);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError("port must be an integer from 1 to 65535.");
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) {
    throw new RangeError(
      `timeoutMs must be a positive number of milliseconds, at most ${MAX_TIMER_MS}.`,
    );
  }
  const name = options.name ?? "localhost";
  if (typeof name !== "string" || name === "") {
    throw new TypeError("name must be a non-empty string.");
  }
  assertCommandSafe(name, "name");
  if (options.allowInsecureAuth && tls !== "none") {
    throw new TypeError(
      'allowInsecureAuth only applies with tls "none"; TLS connections need no such flag.',
    );
  }
  if (options.auth !== undefined) validateAuth(options.auth);
  if (options.caCerts !== undefined && !Array.isArray(options.caCerts)) {
    throw new TypeError("caCerts must be an array of PEM strings.");
  }
  return {
    host: host.replace(/^\[(.*)\]$/, "$1"),
    port,
    tls,
    auth: options.auth ? { ...options.auth } : undefined,
    allowInsecureAuth: options.allowInsecureAuth ?? false,
    caCerts: options.caCerts ? [...options.caCerts] : undefined,
    name,
    timeoutMs,
    connect: options.connect ?? defaultConnect,
  };
}

function validateAuth(auth: SmtpAuth): void {
  if (typeof auth !== "object" || auth === null) {
    throw new TypeError("auth must be an object with username and password (or accessToken).");
  }
  if (typeof auth.username !== "string" || auth.username === "") {
    throw new TypeError("auth.username must be a non-empty string.");
  }
  const hasPassword = typeof auth.password === "string" && auth.password !== "";
  const hasToken = typeof auth.accessToken === "string" && auth.accessToken !== "";
  if (!hasPassword && !hasToken) {
    throw new TypeError("auth needs a non-empty password or accessToken.");
  }
  for (const field of ["username", "password", "accessToken"] as const) {
    const value = auth[field];
    if (typeof value === "string" && COMMAND_UNSAFE.test(value)) {
      throw new TypeError(`auth.${field} must not contain CR, LF or NUL characters.`);
    }
  }
  const mechanism = auth.mechanism?.toLowerCase();
  if (mechanism !== undefined && !(AUTH_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new TypeError(`auth.mechanism must be one of ${AUTH_MECHANISMS.join(", ")}.`);
  }
}

/** Checks the pool settings and fills in the defaults; throws a RangeError naming the field. */
export function resolvePoolOptions(pool: PoolOptions = {}): Required<PoolOptions> {
  const resolved = {
    maxConnections: pool.maxConnections ?? 5,
    maxMessagesPerConnection: pool.maxMessagesPerConnection ?? 100,
    idleTimeoutMs: pool.idleTimeoutMs ?? 5000,
  };
  for (const [field, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_TIMER_MS) {
      throw new RangeError(`pool.${field} must be a positive integer, at most ${MAX_TIMER_MS}.`);
    }
  }
  return resolved;
}

let denoConnectPromise: Promise<Connect> | undefined;

// A variable, not a literal: bundlers do not follow it, so a Worker bundle (which always
// passes `connect`) does not carry the Deno adapter.
const DENO_ADAPTER = "../socket/deno.ts";

/** The default socket factory: the Deno adapter, loaded only when first used. */
const defaultConnect: Connect = async (options) => {
  denoConnectPromise ??= import(DENO_ADAPTER).then((m) => m.denoConnect);
  if (!("Deno" in globalThis)) {
    throw new TypeError(
      "No socket factory: pass `connect` (e.g. cloudflareConnect on Cloudflare Workers).",
    );
  }
  return (await denoConnectPromise)(options);
};
