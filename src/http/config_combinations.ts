/**
 * The problems of which environment variables are set together: one SMTP
 * server, rate limits only where a store can count, and no open relay.
 *
 * @module
 */

/** What {@linkcode combinationProblems} needs to know of the platform and mode. */
export interface CombinationOptions {
  /** Development mode (`deno task dev`): no open-relay refusal. */
  development: boolean;
  /** Whether the platform has a store to count rate limits in. */
  store: boolean;
}

/**
 * Problems of which variables are set together, judged on presence alone so
 * they are found even when some values are invalid.
 */
export function combinationProblems(
  env: Record<string, string | undefined>,
  options: CombinationOptions,
): string[] {
  const { development, store } = options;
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
