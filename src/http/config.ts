/**
 * The HTTP function's configuration, read from environment variables
 * (contract section 2) and validated with valibot. Every problem is reported
 * at once, one message per variable, naming it; values are never repeated,
 * so secrets cannot leak into start-up logs.
 *
 * @module
 */

import * as v from "valibot";
import { parseMailbox } from "../message/address.ts";
import { MAX_TIMER_MS } from "../smtp/options.ts";
import { combinationProblems } from "./config_combinations.ts";
import {
  type Allowlist,
  allowlist,
  apiKeys,
  commandSafe,
  ehloName,
  flag,
  hostName,
  integer,
  mailbox,
  mechanism,
  origins,
  pem,
  type RateLimit,
  rateLimit,
  tlsMode,
  variable,
} from "./config_values.ts";
import { DEFAULT_SMTP_TIMEOUT_MS, type ResolvedSmtpOptions, smtpOptions } from "./smtp_config.ts";
import { smtpUrl } from "./smtp_url.ts";

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
  /**
   * Whether any `http://localhost:*` / `http://127.0.0.1:*` page may call
   * (`deno task dev` without `CORS_ORIGINS`; with a real SMTP server only when
   * `ALLOWED_TO` bounds where those pages can send).
   */
  localOrigins: boolean;
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
   * `deno task dev`: pages on this machine may call when `CORS_ORIGINS` is
   * unset. Default: as `development`. Outside development mode it needs
   * `ALLOWED_TO`, since a page's calls are public (no open relay).
   */
  localOrigins?: boolean;
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
  timeoutMs: DEFAULT_SMTP_TIMEOUT_MS,
  keepaliveMs: 15_000,
  idempotencyTtlS: 86_400,
  publicRateLimit: { limit: 60, windowMs: 3_600_000 },
} as const;

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
  SMTP_POOL_MAX: variable(integer(1, 1000)),
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
  const problems = combinationProblems(env, { development, store: options.store ?? true });
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
    localOrigins: (options.localOrigins ?? development) && vars.CORS_ORIGINS === undefined &&
      (development || vars.ALLOWED_TO !== undefined),
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
