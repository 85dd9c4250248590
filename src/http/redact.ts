/**
 * A last line of defence for secrets: every text the HTTP function writes out
 * (each string of a JSON body or an SSE frame's data, each log line) passes a
 * redactor that replaces the configured SMTP credentials (in plain,
 * JSON-escaped, percent-encoded and base64 forms) and the API keys, should one
 * ever reach such a text through a server reply or an unexpected error.
 *
 * @module
 */

import { credentialForms } from "../smtp/sasl.ts";
import { SMTP_PHASES } from "../smtp/types.ts";
import type { Config } from "./config.ts";
import { HTTP_ERROR_TYPES } from "./problems.ts";

/** What replaces a secret. */
export const REDACTED = "[redacted]";

/** Shorter secrets are not searched for: they would match ordinary words. */
const MIN_SECRET_LENGTH = 6;

/** Replaces every configured secret in a text. */
export type Redact = (text: string) => string;

/**
 * The secrets of a configuration: the SMTP password or token, the API keys,
 * and the base64 forms the credentials take in AUTH (the user name alone is
 * not listed: it may be an ordinary address elsewhere in a result).
 */
export function secretsOf(config: Config): string[] {
  const auth = config.smtp.auth;
  const forms = auth === undefined
    ? []
    : credentialForms(auth).filter((form) => form !== auth.username);
  return [...new Set([...forms, ...config.apiKeys])];
}

/**
 * A redactor for `secrets`: each is replaced as written, as it appears inside
 * a JSON string (escaped), percent-encoded, and in base64 at any alignment
 * (so that base64 of a longer text holding the secret is caught too),
 * longest first.
 */
export function createRedactor(secrets: readonly string[]): Redact {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of encodedForms(secret)) {
      if (form.length >= MIN_SECRET_LENGTH) needles.add(form);
    }
  }
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const needle of ordered) out = out.replaceAll(needle, REDACTED);
    return out;
  };
}

/**
 * The fixed vocabulary of an answer, by key: values our code writes from a
 * closed set (outcome, error type, phase, state). They cannot carry a secret,
 * so they are never redacted: a password spelled `failed` or `rejected` must not
 * hide the outcome, nor tell the caller what the password is.
 */
const VOCABULARY: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["status", new Set(["sent", "failed", "cancelled", "ok", "error"])],
  ["type", new Set<string>(HTTP_ERROR_TYPES)],
  ["phase", new Set<string>(SMTP_PHASES)],
  ["state", new Set(["started", "done"])],
]);

/**
 * `value` as JSON text with every string value redacted, not the text: a
 * secret that spells a key, a keyword (`true`) or a piece of JSON syntax
 * (`"status":"`) then cannot change the structure, and the fixed vocabulary
 * (`status`, `error.type`, `phase`, `state`) is kept. Used for every JSON
 * body and every SSE frame's data.
 *
 * @example
 * ```ts
 * const redact = createRedactor(["status"]);
 * stringifyRedacted({ status: "sent", response: "250 status ok" }, redact);
 * // '{"status":"sent","response":"250 [redacted] ok"}'
 * ```
 */
export function stringifyRedacted(value: unknown, redact: Redact): string {
  return JSON.stringify(value, (key, item) => {
    if (typeof item !== "string" || VOCABULARY.get(key)?.has(item)) return item;
    return redact(item);
  });
}

/** The ways `secret` can be written into a text we send out. */
function encodedForms(secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1)];
  try {
    forms.push(encodeURIComponent(secret));
  } catch {
    // A lone surrogate cannot be percent-encoded, nor sent in a URL.
  }
  return [...forms, ...base64Runs(secret)];
}

const encoder = new TextEncoder();

/**
 * The base64 characters that encode `secret` whatever bytes precede it: for
 * each of the three alignments, the groups made only of the secret's bytes.
 */
function base64Runs(secret: string): string[] {
  const bytes = encoder.encode(secret);
  const runs: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    // Skip the bytes that share a group with the unknown bytes before the secret.
    const skip = (3 - offset) % 3;
    const whole = Math.floor((bytes.length - skip) / 3) * 3;
    if (whole <= 0) continue;
    const standard = toBase64(bytes.subarray(skip, skip + whole));
    runs.push(standard, standard.replaceAll("+", "-").replaceAll("/", "_"));
  }
  return runs;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
