/**
 * Who is calling (contract section 3, "Public callers"): a *server* caller
 * holds an API key and sends no `Origin`; everyone else is *public* — no keys
 * configured, or a browser (any key a page holds is public). Public callers
 * are rate-limited by client address and get errors without server detail:
 * the type, phase, codes and a generic message, never server text, host
 * names, ports or user names (those go to the log).
 *
 * The client address comes from the platform: `CF-Connecting-IP` on Workers
 * (set by Cloudflare), the connection's remote address on Deno, or with
 * `TRUST_PROXY=1` the last hop of `X-Forwarded-For` (the one the proxy in
 * front added; earlier hops are whatever the client claimed).
 *
 * @module
 */

import type { Context } from "hono";
import type { SmtpPhase } from "../smtp/errors.ts";
import type { ReplySummary, ResultError } from "../smtp/result.ts";
import type { HttpErrorType, HttpResult, HttpResultError } from "./problems.ts";

/** What the app knows about a request's caller. */
export interface Caller {
  /** `public` (no API key, or a browser) or `server` (an API key and no `Origin`). */
  kind: "public" | "server";
  /**
   * Idempotency keys are scoped to this: a SHA-256 (hex) of the API key for
   * server callers, of the `Origin` for public ones. The key itself is never kept.
   */
  scope: string;
  /** The rate-limit subject: `key:<sha256 of the API key>` or `address:<client address>`. */
  subject: string;
}

/** Reads the client address of a request the platform's way; `undefined` when unknown. */
export type AddressSource = (c: Context) => string | undefined;

/** Options of {@linkcode identifyCaller}. */
export interface IdentifyOptions {
  /** Whether `API_KEYS` is set (otherwise every caller is public). */
  apiKeys: boolean;
  /** `TRUST_PROXY=1`: the last hop of `X-Forwarded-For` is the client (Deno behind a proxy). */
  trustProxy: boolean;
  /** The platform's client address. Default {@linkcode denoRemoteAddress}. */
  address?: AddressSource;
}

/** The connection's remote address under `Deno.serve`/`deno serve` (Hono's `c.env` is its info). */
export const denoRemoteAddress: AddressSource = (c) => {
  const info = c.env as { remoteAddr?: { hostname?: unknown } } | undefined;
  const hostname = info?.remoteAddr?.hostname;
  return typeof hostname === "string" ? hostname : undefined;
};

/** `CF-Connecting-IP`, which Cloudflare sets on every request to a Worker (clients cannot). */
export const cloudflareConnectingIp: AddressSource = (c) => c.req.header("CF-Connecting-IP");

/**
 * The caller of a request that passed the API-key check.
 *
 * @example
 * ```ts
 * const caller = await identifyCaller(c, { apiKeys: true, trustProxy: false });
 * ```
 */
export async function identifyCaller(c: Context, options: IdentifyOptions): Promise<Caller> {
  const origin = c.req.header("Origin");
  const apiKey = options.apiKeys ? bearerToken(c.req.header("Authorization")) : undefined;
  if (apiKey !== undefined && origin === undefined) {
    const hash = await sha256Hex(`key:${apiKey}`);
    return { kind: "server", scope: hash, subject: `key:${hash}` };
  }
  return {
    kind: "public",
    scope: await sha256Hex(`origin:${origin ?? ""}`),
    subject: `address:${clientAddress(c, options)}`,
  };
}

/** Whether a request comes from a public caller (decidable before the API-key check). */
export function isPublicRequest(c: Context, apiKeys: boolean): boolean {
  return !apiKeys || c.req.header("Origin") !== undefined;
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/**
 * The client address a public caller is counted by: with `trustProxy`, the
 * last `X-Forwarded-For` hop when it is an IP address, else the platform's
 * address; IPv6 addresses count per /64 (one host usually holds a whole /64).
 */
export function clientAddress(c: Context, options: Omit<IdentifyOptions, "apiKeys">): string {
  const source = options.address ?? denoRemoteAddress;
  if (options.trustProxy) {
    const hops = (c.req.header("X-Forwarded-For") ?? "").split(",");
    const last = normalizeAddress(hops[hops.length - 1]);
    if (last !== undefined) return last;
  }
  return normalizeAddress(source(c)) ?? "unknown";
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * An IP address in the form it is counted by, or `undefined` when `text` is
 * not one: IPv4 as is (also when IPv4-mapped), IPv6 as its /64 prefix.
 */
export function normalizeAddress(text: string | undefined): string | undefined {
  const value = text?.trim().replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "").toLowerCase();
  if (value === undefined || value === "") return undefined;
  if (IPV4.test(value)) return value;
  const mapped = value.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped !== null && IPV4.test(mapped[1])) return mapped[1];
  const groups = expandIpv6(value);
  if (groups === undefined) return undefined;
  return `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address (no leading zeros), or `undefined`. */
function expandIpv6(value: string): string[] | undefined {
  if (!/^[0-9a-f:]+$/.test(value) || value.length > 39) return undefined;
  const halves = value.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) {
    return undefined;
  }
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((group) => !/^[0-9a-f]{1,4}$/.test(group))) return undefined;
  return groups.map((group) => group.replace(/^0+(?=.)/, ""));
}

/** SHA-256 of `text` (UTF-8) as lowercase hex, with WebCrypto. */
export async function sha256Hex(text: string | ArrayBuffer): Promise<string> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** What a public caller is told for each outcome: no server text, hosts, ports or users. */
const PUBLIC_MESSAGES: Partial<Record<HttpErrorType, string>> = {
  connection: "The mail server could not be reached, or the connection to it was lost.",
  tls: "A secure connection to the mail server could not be established.",
  auth: "The mail server did not accept this service's login.",
  rejected: "The mail server refused the message.",
  transient: "The mail server refused the message for now; try again later.",
  timeout: "The mail server did not answer in time.",
  protocol: "The mail server answered in a way this service does not understand.",
  unknown_outcome: "The message was sent, but the mail server's confirmation never came: it " +
    "may have been delivered. Check before sending it again.",
  cancelled: "The send was cancelled before the message was sent.",
};

const PUBLIC_PHASE_MESSAGES: Partial<Record<SmtpPhase, string>> = {
  rcpt: "The mail server refused a recipient.",
  mail: "The mail server refused the sender.",
};

/**
 * An SMTP error as a public caller sees it: type, phase and codes, with a
 * generic message. Errors the HTTP layer wrote itself (validation, policy,
 * internal) carry no server detail and pass unchanged.
 */
export function publicError<E extends ResultError | HttpResultError>(error: E): E {
  const generic = (error.type === "rejected" || error.type === "transient") &&
      error.phase !== undefined
    ? PUBLIC_PHASE_MESSAGES[error.phase] ?? PUBLIC_MESSAGES[error.type]
    : PUBLIC_MESSAGES[error.type];
  if (generic === undefined) return error;
  const out = { type: error.type, message: generic } as E;
  if (error.phase !== undefined) out.phase = error.phase;
  if (error.code !== undefined) out.code = error.code;
  if (error.enhancedCode !== undefined) out.enhancedCode = error.enhancedCode;
  return out;
}

/**
 * A Result as a public caller sees it: the server's reply text, refusal
 * texts and error message are replaced; codes, phases and addresses stay.
 */
export function publicResult<T extends HttpResult>(result: T): T {
  const out: T = {
    ...result,
    rejected: result.rejected.map((rejection) => ({
      ...rejection,
      message: "Refused by the mail server.",
    })),
  };
  if (result.response !== undefined) out.response = replyCodes(result.response);
  if (result.error !== undefined) out.error = publicError(result.error);
  return out;
}

/** A server reply as a public caller sees it: `250 2.0.0 Ok: queued as X` → `250 2.0.0`. */
function replyCodes(response: string): string {
  return response.match(/^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?/)?.[0].replace("-", " ") ?? "";
}

/** A status event's reply as a public caller sees it: the codes, no text. */
export function publicReply(reply: ReplySummary): ReplySummary {
  const out: ReplySummary = { code: reply.code, message: "" };
  if (reply.enhancedCode !== undefined) out.enhancedCode = reply.enhancedCode;
  return out;
}
