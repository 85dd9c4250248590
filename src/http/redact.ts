/**
 * A last line of defence for secrets: every text the HTTP function writes out
 * (error bodies, SSE frames, log lines) passes a redactor that replaces the
 * configured SMTP password or access token and the API keys, should one ever
 * reach such a text through a server reply or an unexpected error.
 *
 * @module
 */

import type { Config } from "./config.ts";

/** What replaces a secret. */
export const REDACTED = "[redacted]";

/** Shorter secrets are not searched for: they would match ordinary words. */
const MIN_SECRET_LENGTH = 6;

/** Replaces every configured secret in a text. */
export type Redact = (text: string) => string;

/** The secrets of a configuration: the SMTP password or token and the API keys. */
export function secretsOf(config: Config): string[] {
  const auth = config.smtp.auth;
  return [auth?.password, auth?.accessToken, ...config.apiKeys]
    .filter((secret): secret is string => typeof secret === "string");
}

/**
 * A redactor for `secrets`: each is replaced as written and as it appears
 * inside a JSON string (escaped), longest first.
 */
export function createRedactor(secrets: readonly string[]): Redact {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    needles.add(secret);
    needles.add(JSON.stringify(secret).slice(1, -1));
  }
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const needle of ordered) out = out.replaceAll(needle, REDACTED);
    return out;
  };
}
