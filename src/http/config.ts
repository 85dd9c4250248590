/**
 * The HTTP function's configuration, read from environment variables
 * (contract section 2) and validated with valibot. Every problem is reported
 * at once, one message per variable, naming it; values are never repeated,
 * so secrets cannot leak into start-up logs.
 *
 * @module
 */

import * as v from "valibot";
import { normalizeDomain, parseMailbox } from "../message/address.ts";
import {
  AUTH_MECHANISMS,
  COMMAND_UNSAFE,
  HOST_NAME,
  isHost,
  MAX_TIMER_MS,
  TLS_MODES,
} from "../smtp/options.ts";
import type { SmtpAuth, SmtpClientOptions, TlsMode } from "../smtp/client.ts";

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

/** SMTP settings with the defaults filled in. */
export type ResolvedSmtpOptions = SmtpClientOptions & { port: number; tls: TlsMode };

/** The validated configuration that {@linkcode createApp} takes. */
export interface Config {
  /** How to reach the SMTP server; passed to `SmtpClient`. */
  smtp: ResolvedSmtpOptions;
  /** The default sender (`MAIL_FROM`), as configured. */
  mailFrom?: string;
  /** Senders a request may use; `undefined` allows any (development mode only). */
  allowedFrom?: Allowlist;
  /** Recipients a request may use; `undefined` allows any. */
  allowedTo?: Allowlist;
  /** Accepted bearer tokens; empty means the endpoint is public. */
  apiKeys: string[];
  /** Origins allowed to call from a browser (`*` for any). */
  corsOrigins: string[];
  /** Largest accepted request body, in bytes. */
  maxMessageBytes: number;
  /** Most to+cc+bcc addresses in one message. */
  maxRecipients: number;
  /** Most messages in one batch. */
  maxBatch: number;
  /** Interval of SSE `: keepalive` comments, in milliseconds (15000). */
  keepaliveMs: number;
  /** Whether the development-mode relaxations apply. */
  development: boolean;
  /** Rate limits per kind of caller (`RATE_LIMIT`); `undefined` means none. */
  rateLimit: { public?: RateLimit; server?: RateLimit };
  /** Take a public caller's address from `X-Forwarded-For`'s last hop (`TRUST_PROXY=1`). */
  trustProxy: boolean;
  /** How long an `Idempotency-Key` and its outcome are kept, in milliseconds. */
  idempotencyTtlMs: number;
  /** Deno: the Deno KV file (`KV_PATH`); `undefined` means the default. */
  kvPath?: string;
  /**
   * Whether the platform has a store for idempotency claims and rate-limit
   * counters; without one, `Idempotency-Key` answers 501.
   */
  store: boolean;
}

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Development mode (`deno task dev`): no open-relay refusal, and any `from`
   * is allowed when `ALLOWED_FROM` is unset.
   */
  development?: boolean;
  /**
   * Whether the platform has a store (Deno KV, a Durable Object binding).
   * Default `true`. Without one a public configuration must set
   * `RATE_LIMIT=off`, since limits could not be kept.
   */
  store?: boolean;
}

/** The configuration is invalid; `problems` has one message per problem, naming the variable. */
export class ConfigError extends Error {
  /** One message per problem; never contains a configured value. */
  readonly problems: string[];

  /** Creates the error from its problem list. */
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `- ${problem}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Defaults of the numeric settings (contract section 2). */
export const CONFIG_DEFAULTS = {
  maxMessageBytes: 26_214_400,
  maxRecipients: 50,
  maxBatch: 100,
  timeoutMs: 30_000,
  keepaliveMs: 15_000,
  idempotencyTtlS: 86_400,
  publicRateLimit: { limit: 60, windowMs: 3_600_000 },
} as const;

/** Characters RFC 6750 allows in a bearer token; others could never be presented. */
const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/** A variable's value is wrong; the message says why without repeating it. */
class Problem extends Error {}

/** The SMTP connection described by `SMTP_URL`. */
interface SmtpUrl {
  host: string;
  port: number;
  tls: TlsMode;
  user?: string;
  pass?: string;
  insecureAuth: boolean;
}

/**
 * One optional variable: unset or blank means absent; otherwise `parse` turns
 * the text into the value or throws a {@linkcode Problem} whose message
 * becomes the variable's issue.
 */
function variable<T>(parse: (text: string) => T) {
  return v.pipe(
    v.optional(v.string("must be text")),
    v.rawTransform(({ dataset, addIssue, NEVER }): T | undefined => {
      const text = dataset.value;
      if (text === undefined || text.trim() === "") return undefined;
      try {
        return parse(text);
      } catch (error) {
        addIssue({
          message: error instanceof Problem ? error.message : "has an invalid value",
        });
        return NEVER;
      }
    }),
  );
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const value = Number(text.trim());
    if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
      throw new Problem(
        max === Number.MAX_SAFE_INTEGER
          ? `must be a whole number of at least ${min}`
          : `must be a whole number from ${min} to ${max}`,
      );
    }
    return value;
  };
}

function commandSafe(what: string) {
  return (text: string): string => {
    if (COMMAND_UNSAFE.test(text)) {
      throw new Problem(`${what} must not contain CR, LF or NUL characters`);
    }
    return text;
  };
}

function hostName(text: string): string {
  const host = text.trim();
  if (!isHost(host)) {
    throw new Problem("must be a host name or an IP address, such as smtp.example.com");
  }
  return host.replace(/^\[(.*)\]$/, "$1");
}

function tlsMode(text: string): TlsMode {
  const mode = text.trim().toLowerCase() as TlsMode;
  if (!TLS_MODES.includes(mode)) throw new Problem(`must be one of ${TLS_MODES.join(", ")}`);
  return mode;
}

function flag(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (["1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new Problem("must be 1 or 0");
}

const WINDOW_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `RATE_LIMIT`: `off`, or `<messages>/<window>` such as `20/60s`, `500/1h`, `10000/1d`. */
function rateLimit(text: string): RateLimit | "off" {
  const value = text.trim().toLowerCase();
  if (value === "off") return "off";
  const match = value.match(/^(\d{1,9})\s*\/\s*(\d{0,9})([smhd])$/);
  const limit = Number(match?.[1]);
  const windowMs = Number(match?.[2] || "1") * WINDOW_UNITS_MS[match?.[3] ?? "s"];
  if (match === null || limit < 1 || windowMs < 1000 || windowMs > 366 * 86_400_000) {
    throw new Problem(
      "must be off or <messages>/<window> with a window in s, m, h or d (such as 20/60s, " +
        "500/1h or 10000/1d), at least 1 message and a window from 1s to 366d",
    );
  }
  return { limit, windowMs };
}

function mechanism(text: string): string {
  const value = text.trim().toLowerCase();
  if (!(AUTH_MECHANISMS as readonly string[]).includes(value)) {
    throw new Problem(`must be one of ${AUTH_MECHANISMS.join(", ")}`);
  }
  return value;
}

function pem(text: string): string {
  // One-line .env files often carry PEM with literal "\n" sequences.
  const value = text.includes("\n") ? text : text.replaceAll("\\n", "\n");
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(value)) {
    throw new Problem("must hold one or more PEM certificates (-----BEGIN CERTIFICATE----- …)");
  }
  return value;
}

function ehloName(text: string): string {
  const name = text.trim();
  if (!HOST_NAME.test(name) && !/^\[[0-9A-Fa-f:.]+\]$/.test(name)) {
    throw new Problem("must be a host name (the name sent in EHLO), such as mail.example.com");
  }
  return name;
}

function mailbox(text: string): string {
  try {
    parseMailbox(text);
  } catch (error) {
    throw new Problem(`is not a valid address: ${(error as Error).message}`);
  }
  return text.trim();
}

/** Splits a comma list, trimming entries and dropping blank ones. */
function list(text: string): string[] {
  return text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
}

function allowlist(text: string): Allowlist {
  const result: Allowlist = { addresses: [], domains: [] };
  list(text).forEach((entry, index) => {
    try {
      if (entry.startsWith("@")) result.domains.push(normalizeDomain(entry.slice(1)));
      else result.addresses.push(parseMailbox(entry).address);
    } catch (error) {
      throw new Problem(
        `entry ${index + 1} is not an address or @domain: ${(error as Error).message}`,
      );
    }
  });
  if (result.addresses.length + result.domains.length === 0) {
    throw new Problem("lists no address or @domain");
  }
  return result;
}

function apiKeys(text: string): string[] {
  const keys = list(text);
  if (keys.length === 0) throw new Problem("is set but lists no key");
  keys.forEach((key, index) => {
    if (!BEARER_TOKEN.test(key)) {
      throw new Problem(
        `key ${index + 1} has characters a bearer token cannot carry ` +
          "(use letters, digits and . _ ~ + / -)",
      );
    }
  });
  return keys;
}

function origins(text: string): string[] {
  return list(text).map((entry, index) => {
    if (entry === "*") return entry;
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      // The URL error message repeats the input, so it is not passed on.
    }
    if (origin === undefined || origin === "null" || origin !== entry.replace(/\/$/, "")) {
      throw new Problem(
        `entry ${index + 1} is not an origin like https://app.example.com (scheme, host and ` +
          "optional port; no path)",
      );
    }
    return origin;
  });
}

function percentDecoded(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Problem(`has a malformed percent-encoding in the ${what}`);
  }
}

/** Parses `smtp://[user[:pass]@]host[:port][?tls=…&insecure_auth=1]` or `smtps://…`. */
function smtpUrl(text: string): SmtpUrl {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new Problem("is not a URL like smtp://user:pass@smtp.example.com:587");
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== "smtp" && scheme !== "smtps") {
    throw new Problem("must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)");
  }
  if (url.pathname !== "" && url.pathname !== "/") {
    throw new Problem("must not have a path: smtp://user:pass@host:port");
  }
  if (url.hash !== "") throw new Problem("must not have a #fragment");
  const host = hostName(url.hostname);
  let tls: TlsMode = scheme === "smtps" ? "implicit" : "starttls";
  let insecureAuth = false;
  for (const [key, value] of url.searchParams) {
    if (key === "tls") {
      if (scheme === "smtps") {
        throw new Problem("?tls= only applies to smtp:// (smtps:// is always implicit TLS)");
      }
      if (!["starttls", "opportunistic", "none"].includes(value)) {
        throw new Problem("?tls= must be opportunistic, none or starttls");
      }
      tls = value as TlsMode;
    } else if (key === "insecure_auth") {
      if (value !== "1" && value !== "0") throw new Problem("&insecure_auth= must be 1 or 0");
      insecureAuth = value === "1";
    } else {
      // The key is not quoted: an unencoded "?" in a password makes the rest of it a "key".
      throw new Problem(
        "has an unknown query parameter (only tls and insecure_auth are allowed; " +
          "percent-encode ? and # in the user name and password)",
      );
    }
  }
  if (insecureAuth && tls !== "none") {
    throw new Problem("&insecure_auth=1 only applies with ?tls=none");
  }
  const port = url.port === "" ? (tls === "implicit" ? 465 : 587) : Number(url.port);
  if (port < 1 || port > 65535) throw new Problem("has a port outside 1..65535");
  const user = url.username === "" ? undefined : percentDecoded(url.username, "user name");
  const pass = url.password === "" ? undefined : percentDecoded(url.password, "password");
  commandSafe("the user name")(user ?? "");
  commandSafe("the password")(pass ?? "");
  return { host, port, tls, user, pass, insecureAuth };
}

/** The environment variables edgemail reads, each validated on its own. */
const EnvSchema = v.object({
  SMTP_URL: variable(smtpUrl),
  SMTP_HOST: variable(hostName),
  SMTP_PORT: variable(integer(1, 65535)),
  SMTP_USER: variable(commandSafe("the user name")),
  SMTP_PASS: variable(commandSafe("the password")),
  SMTP_TLS: variable(tlsMode),
  SMTP_INSECURE_AUTH: variable(flag),
  SMTP_CA_CERT: variable(pem),
  SMTP_AUTH: variable(mechanism),
  SMTP_NAME: variable(ehloName),
  SMTP_TIMEOUT_MS: variable(integer(1, MAX_TIMER_MS)),
  MAIL_FROM: variable(mailbox),
  ALLOWED_FROM: variable(allowlist),
  ALLOWED_TO: variable(allowlist),
  API_KEYS: variable(apiKeys),
  CORS_ORIGINS: variable(origins),
  MAX_MESSAGE_BYTES: variable(integer(1)),
  MAX_RECIPIENTS: variable(integer(1)),
  MAX_BATCH: variable(integer(1)),
  RATE_LIMIT: variable(rateLimit),
  TRUST_PROXY: variable(flag),
  IDEMPOTENCY_TTL_S: variable(integer(1, 366 * 86_400)),
  KV_PATH: variable(commandSafe("the path")),
});

type Env = v.InferOutput<typeof EnvSchema>;

/**
 * Reads and validates the configuration from environment variables.
 *
 * @example
 * ```ts
 * const config = loadConfig(Deno.env.toObject());
 * ```
 * @throws {ConfigError} listing every problem, one per variable, naming it (never its value).
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  options: LoadConfigOptions = {},
): Config {
  const development = options.development ?? false;
  const parsed = v.safeParse(EnvSchema, env);
  // Problems of how variables combine are reported together with those of single
  // variables, so one start-up attempt lists everything to fix.
  const problems = combinationProblems(env, development, options.store ?? true);
  if (!parsed.success) {
    throw new ConfigError([
      ...parsed.issues.map((issue) => {
        const name = issue.path?.map((item) => String(item.key)).join(".") ?? "configuration";
        return `${name} ${issue.message}.`;
      }),
      ...problems,
    ]);
  }
  const vars = parsed.output;
  const smtp = problems.length === 0 ? smtpOptions(vars, problems) : undefined;
  if (problems.length > 0 || smtp === undefined) throw new ConfigError(problems);
  return {
    smtp,
    mailFrom: vars.MAIL_FROM,
    allowedFrom: senderAllowlist(vars, development),
    allowedTo: vars.ALLOWED_TO,
    apiKeys: vars.API_KEYS ?? [],
    corsOrigins: vars.CORS_ORIGINS ?? [],
    maxMessageBytes: vars.MAX_MESSAGE_BYTES ?? CONFIG_DEFAULTS.maxMessageBytes,
    maxRecipients: vars.MAX_RECIPIENTS ?? CONFIG_DEFAULTS.maxRecipients,
    maxBatch: vars.MAX_BATCH ?? CONFIG_DEFAULTS.maxBatch,
    keepaliveMs: CONFIG_DEFAULTS.keepaliveMs,
    development,
    rateLimit: rateLimits(vars.RATE_LIMIT, development),
    trustProxy: vars.TRUST_PROXY ?? false,
    idempotencyTtlMs: (vars.IDEMPOTENCY_TTL_S ?? CONFIG_DEFAULTS.idempotencyTtlS) * 1000,
    kvPath: vars.KV_PATH,
    store: options.store ?? true,
  };
}

/**
 * `RATE_LIMIT` for each kind of caller: when unset, public callers get the
 * default, except in development mode, where mail never leaves the machine.
 */
function rateLimits(
  value: RateLimit | "off" | undefined,
  development: boolean,
): Config["rateLimit"] {
  if (value === "off" || (value === undefined && development)) return {};
  if (value === undefined) return { public: { ...CONFIG_DEFAULTS.publicRateLimit } };
  return { public: value, server: value };
}

/** `ALLOWED_FROM`, plus `MAIL_FROM`, which is always allowed; any sender in development when unset. */
function senderAllowlist(vars: Env, development: boolean): Allowlist | undefined {
  if (vars.ALLOWED_FROM === undefined && development) return undefined;
  const allowlist: Allowlist = {
    addresses: [...vars.ALLOWED_FROM?.addresses ?? []],
    domains: [...vars.ALLOWED_FROM?.domains ?? []],
  };
  if (vars.MAIL_FROM !== undefined) {
    allowlist.addresses.push(parseMailbox(vars.MAIL_FROM).address);
  }
  return allowlist;
}

/**
 * Problems of which variables are set together, judged on presence alone so
 * they are found even when some values are invalid.
 */
function combinationProblems(
  env: Record<string, string | undefined>,
  development: boolean,
  store: boolean,
): string[] {
  const set = (name: string) => (env[name] ?? "").trim() !== "";
  const problems: string[] = [];
  if (set("SMTP_URL") && set("SMTP_HOST")) {
    problems.push("SMTP_URL and SMTP_HOST are both set: use one of them.");
  }
  if (!set("SMTP_URL") && !set("SMTP_HOST")) {
    problems.push(
      "No SMTP server: set SMTP_URL (smtp://user:pass@smtp.example.com:587) or SMTP_HOST.",
    );
  }
  const rateLimitOff = (env.RATE_LIMIT ?? "").trim().toLowerCase() === "off";
  const publicCallers = !set("API_KEYS") || set("CORS_ORIGINS");
  if (!store && set("RATE_LIMIT") && !rateLimitOff) {
    problems.push(
      "RATE_LIMIT is set, but this platform has no store to count in (no Deno KV, as on " +
        "Supabase Edge Functions, or no EDGEMAIL_STORE Durable Object binding on Workers): " +
        "set RATE_LIMIT=off, or run where a store exists.",
    );
  } else if (!store && publicCallers && !rateLimitOff) {
    problems.push(
      "RATE_LIMIT: public callers (API_KEYS unset, or CORS_ORIGINS set) are rate-limited by " +
        "default, but this platform has no store to count in (no Deno KV, as on Supabase Edge " +
        "Functions, or no EDGEMAIL_STORE Durable Object binding on Workers); a limit per " +
        "short-lived isolate would be a pretence. Set RATE_LIMIT=off to run without one, or " +
        "run where a store exists.",
    );
  }
  if (development) return problems;
  if (!set("API_KEYS") && !set("ALLOWED_TO")) {
    problems.push(
      "No open relay: API_KEYS is unset, so the endpoint would be public and could send to " +
        "anyone. Set API_KEYS (bearer tokens), or set ALLOWED_TO to the addresses or @domains " +
        "it may send to.",
    );
  } else if (set("CORS_ORIGINS") && !set("ALLOWED_TO")) {
    problems.push(
      "No open relay: CORS_ORIGINS is set, so web pages call the endpoint, and any API key " +
        "a page holds is public: set ALLOWED_TO to the addresses or @domains it may send to " +
        "(for a contact form, the site owner's address).",
    );
  }
  return problems;
}

/** Combines `SMTP_URL` or `SMTP_HOST` and friends into client options; pushes problems. */
function smtpOptions(vars: Env, problems: string[]): ResolvedSmtpOptions | undefined {
  const url = vars.SMTP_URL;
  if (url !== undefined) {
    for (const name of ["SMTP_PORT", "SMTP_TLS", "SMTP_INSECURE_AUTH"] as const) {
      if (vars[name] !== undefined) {
        problems.push(`${name} only applies with SMTP_HOST: put it into SMTP_URL instead.`);
      }
    }
    if (url.user !== undefined && vars.SMTP_USER !== undefined) {
      problems.push("SMTP_USER is set and SMTP_URL has a user name too: use one of them.");
    }
    if (url.pass !== undefined && vars.SMTP_PASS !== undefined) {
      problems.push("SMTP_PASS is set and SMTP_URL has a password too: use one of them.");
    }
  }
  const tls = url?.tls ?? vars.SMTP_TLS ?? (vars.SMTP_PORT === 465 ? "implicit" : "starttls");
  const options: ResolvedSmtpOptions = {
    host: url?.host ?? vars.SMTP_HOST!,
    port: url?.port ?? vars.SMTP_PORT ?? (tls === "implicit" ? 465 : 587),
    tls,
    timeoutMs: vars.SMTP_TIMEOUT_MS ?? CONFIG_DEFAULTS.timeoutMs,
  };
  if (vars.SMTP_NAME !== undefined) options.name = vars.SMTP_NAME;
  if (vars.SMTP_CA_CERT !== undefined) options.caCerts = [vars.SMTP_CA_CERT];
  const auth = smtpAuth(url?.user ?? vars.SMTP_USER, url?.pass ?? vars.SMTP_PASS, vars, problems);
  if (auth !== undefined) {
    options.auth = auth;
    const insecure = url?.insecureAuth ?? vars.SMTP_INSECURE_AUTH ?? false;
    if (tls === "none" && !insecure) {
      problems.push(
        url !== undefined
          ? "SMTP_URL has credentials with ?tls=none, which would send them unencrypted: add " +
            "&insecure_auth=1 to allow that (trusted networks only), or use TLS."
          : "SMTP_USER is set with SMTP_TLS=none, which would send the password unencrypted: " +
            "set SMTP_INSECURE_AUTH=1 to allow that (trusted networks only), or use TLS.",
      );
    }
    if (tls === "none" && insecure) options.allowInsecureAuth = true;
  }
  return options;
}

function smtpAuth(
  user: string | undefined,
  pass: string | undefined,
  vars: Env,
  problems: string[],
): SmtpAuth | undefined {
  if (user === undefined && pass === undefined) {
    if (vars.SMTP_AUTH !== undefined) {
      problems.push("SMTP_AUTH is set but there is no user name (SMTP_USER or SMTP_URL).");
    }
    return undefined;
  }
  if (user === undefined) {
    problems.push("A password is set but no user name: set SMTP_USER or put it into SMTP_URL.");
    return undefined;
  }
  if (pass === undefined) {
    problems.push(
      "A user name is set but no password: set SMTP_PASS or put it into SMTP_URL (user:pass@).",
    );
    return undefined;
  }
  if (vars.SMTP_AUTH === "xoauth2") {
    return { username: user, accessToken: pass, mechanism: "xoauth2" };
  }
  return vars.SMTP_AUTH === undefined
    ? { username: user, password: pass }
    : { username: user, password: pass, mechanism: vars.SMTP_AUTH };
}
