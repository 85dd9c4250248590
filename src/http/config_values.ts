/**
 * Parsers for the values of single environment variables (contract section
 * 2): each turns the text into a value or throws a {@linkcode ValueProblem}
 * whose message says what is wrong without repeating the value, and
 * {@linkcode variable} makes one of them a valibot schema for an optional
 * variable.
 *
 * @module
 */

import * as v from "valibot";
import { normalizeDomain, parseMailbox } from "../message/address.ts";
import { AUTH_MECHANISMS, COMMAND_UNSAFE, HOST_NAME, isHost, TLS_MODES } from "../smtp/options.ts";
import type { TlsMode } from "../smtp/client.ts";

/** Addresses and domains a request may use (`ALLOWED_FROM` / `ALLOWED_TO`), normalised. */
export interface Allowlist {
  /** Exact addresses in RCPT form (`local@a-label-domain`, domain lowercased). */
  addresses: string[];
  /** Whole domains (`@example.com` entries), lowercase A-labels. */
  domains: string[];
}

/** A rate limit: at most `limit` messages per fixed window of `windowMs`, aligned to the epoch. */
export interface RateLimit {
  /** Most messages per window. */
  limit: number;
  /** The window length, in milliseconds. */
  windowMs: number;
}

/** Characters RFC 6750 allows in a bearer token; others could never be presented. */
const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/** A variable's value is wrong; the message says why without repeating it. */
export class ValueProblem extends Error {}

/** The valibot schema {@linkcode variable} makes: optional text in, the parsed value out. */
export type VariableSchema<T> = v.SchemaWithPipe<
  readonly [
    v.OptionalSchema<v.StringSchema<string>, undefined>,
    v.RawTransformAction<string | undefined, T | undefined>,
  ]
>;

/**
 * One optional variable: unset or blank means absent; otherwise `parse` turns
 * the text into the value or throws a {@linkcode ValueProblem} whose message
 * becomes the variable's issue.
 */
export function variable<T>(parse: (text: string) => T): VariableSchema<T> {
  return v.pipe(
    v.optional(v.string("must be text")),
    v.rawTransform(({ dataset, addIssue, NEVER }): T | undefined => {
      const text = dataset.value;
      if (text === undefined || text.trim() === "") return undefined;
      try {
        return parse(text);
      } catch (error) {
        addIssue({
          message: error instanceof ValueProblem ? error.message : "has an invalid value",
        });
        return NEVER;
      }
    }),
  );
}

/** A parser of whole numbers from `min` to `max`. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text: string): number => {
    const value = Number(text.trim());
    if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
      throw new ValueProblem(
        max === Number.MAX_SAFE_INTEGER
          ? `must be a whole number of at least ${min}`
          : `must be a whole number from ${min} to ${max}`,
      );
    }
    return value;
  };
}

/** A parser of text that may go into an SMTP command (no CR, LF or NUL); `what` names it. */
export function commandSafe(what: string): (text: string) => string {
  return (text: string): string => {
    if (COMMAND_UNSAFE.test(text)) {
      throw new ValueProblem(`${what} must not contain CR, LF or NUL characters`);
    }
    return text;
  };
}

/** A host name or IP address (an IPv6 address may be in brackets, which are dropped). */
export function hostName(text: string): string {
  const host = text.trim();
  if (!isHost(host)) {
    throw new ValueProblem("must be a host name or an IP address, such as smtp.example.com");
  }
  return host.replace(/^\[(.*)\]$/, "$1");
}

/** One of the {@linkcode TLS_MODES}, in any case. */
export function tlsMode(text: string): TlsMode {
  const mode = text.trim().toLowerCase() as TlsMode;
  if (!TLS_MODES.includes(mode)) throw new ValueProblem(`must be one of ${TLS_MODES.join(", ")}`);
  return mode;
}

/** A flag: 1, true or yes; 0, false or no. */
export function flag(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (["1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new ValueProblem("must be 1 or 0");
}

const WINDOW_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `RATE_LIMIT`: `off`, or `<messages>/<window>` such as `20/60s`, `500/1h`, `10000/1d`. */
export function rateLimit(text: string): RateLimit | "off" {
  const value = text.trim().toLowerCase();
  if (value === "off") return "off";
  const match = value.match(/^(\d{1,9})\s*\/\s*(\d{0,9})([smhd])$/);
  const limit = Number(match?.[1]);
  const windowMs = Number(match?.[2] || "1") * WINDOW_UNITS_MS[match?.[3] ?? "s"];
  if (match === null || limit < 1 || windowMs < 1000 || windowMs > 366 * 86_400_000) {
    throw new ValueProblem(
      "must be off or <messages>/<window> with a window in s, m, h or d (such as 20/60s, " +
        "500/1h or 10000/1d), at least 1 message and a window from 1s to 366d",
    );
  }
  return { limit, windowMs };
}

/** One of the {@linkcode AUTH_MECHANISMS}, in any case; lowercased. */
export function mechanism(text: string): string {
  const value = text.trim().toLowerCase();
  if (!(AUTH_MECHANISMS as readonly string[]).includes(value)) {
    throw new ValueProblem(`must be one of ${AUTH_MECHANISMS.join(", ")}`);
  }
  return value;
}

/** One or more PEM certificates; literal `\\n` sequences stand for line ends. */
export function pem(text: string): string {
  // One-line .env files often carry PEM with literal "\n" sequences.
  const value = text.includes("\n") ? text : text.replaceAll("\\n", "\n");
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(value)) {
    throw new ValueProblem(
      "must hold one or more PEM certificates (-----BEGIN CERTIFICATE----- …)",
    );
  }
  return value;
}

/** The name sent in EHLO: a host name or an address literal such as `[192.0.2.1]`. */
export function ehloName(text: string): string {
  const name = text.trim();
  if (!HOST_NAME.test(name) && !/^\[[0-9A-Fa-f:.]+\]$/.test(name)) {
    throw new ValueProblem("must be a host name (the name sent in EHLO), such as mail.example.com");
  }
  return name;
}

/** One address, such as `App <app@example.com>`; returned as written (trimmed). */
export function mailbox(text: string): string {
  try {
    parseMailbox(text);
  } catch (error) {
    throw new ValueProblem(`is not a valid address: ${(error as Error).message}`);
  }
  return text.trim();
}

/** Splits a comma list, trimming entries and dropping blank ones. */
function list(text: string): string[] {
  return text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
}

/** A comma list of addresses and `@domain`s, normalised to their RCPT form. */
export function allowlist(text: string): Allowlist {
  const result: Allowlist = { addresses: [], domains: [] };
  list(text).forEach((entry, index) => {
    try {
      if (entry.startsWith("@")) result.domains.push(normalizeDomain(entry.slice(1)));
      else result.addresses.push(parseMailbox(entry).address);
    } catch (error) {
      throw new ValueProblem(
        `entry ${index + 1} is not an address or @domain: ${(error as Error).message}`,
      );
    }
  });
  if (result.addresses.length + result.domains.length === 0) {
    throw new ValueProblem("lists no address or @domain");
  }
  return result;
}

/** A comma list of bearer tokens (RFC 6750 characters only). */
export function apiKeys(text: string): string[] {
  const keys = list(text);
  if (keys.length === 0) throw new ValueProblem("is set but lists no key");
  keys.forEach((key, index) => {
    if (!BEARER_TOKEN.test(key)) {
      throw new ValueProblem(
        `key ${index + 1} has characters a bearer token cannot carry ` +
          "(use letters, digits and . _ ~ + / -)",
      );
    }
  });
  return keys;
}

/** A comma list of web origins (`https://app.example.com`) or `*`. */
export function origins(text: string): string[] {
  return list(text).map((entry, index) => {
    if (entry === "*") return entry;
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      // The URL error message repeats the input, so it is not passed on.
    }
    if (origin === undefined || origin === "null" || origin !== entry.replace(/\/$/, "")) {
      throw new ValueProblem(
        `entry ${index + 1} is not an origin like https://app.example.com (scheme, host and ` +
          "optional port; no path)",
      );
    }
    return origin;
  });
}

/** `text` percent-decoded; `what` names the part of the value for the problem. */
export function percentDecoded(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ValueProblem(`has a malformed percent-encoding in the ${what}`);
  }
}
