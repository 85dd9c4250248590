/**
 * `Idempotency-Key` (contract section 3, "Idempotency") and the guard that
 * runs after the policy and before any SMTP: rate limit and idempotency
 * claim.
 *
 * A key is 1–255 visible ASCII characters, scoped to the route and the
 * caller (a hash of the API key, or of a public caller's `Origin`). The
 * first request claims it; its outcome is stored when something may have
 * been delivered or never will be (`sent`, `rejected`, `unknown_outcome`),
 * and any other outcome releases the key so a retry really retries. A
 * request with the same key and a byte-identical body (compared by SHA-256)
 * sends nothing and answers the stored Result(s) — JSON, or SSE `completed`
 * events — with `Idempotent-Replayed: true`; a running one answers 409
 * `conflict` with `Retry-After`; another body answers 422
 * `idempotency_mismatch`. The running request renews its lease every
 * `SMTP_TIMEOUT_MS / 2`; the lease lasts `2 × SMTP_TIMEOUT_MS`. Before the end
 * of a message's data is written, the claim is marked: the SMTP client holds
 * the final dot (or `BDAT … LAST`) until the mark is stored
 * (`SendOptions.beforeDataEnd`), so a marked claim that expires (its process
 * died) becomes a stored `unknown_outcome`, and a process that dies before
 * the mark is stored cannot have delivered the message.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import type { Message } from "../message/schema.ts";
import type { Store } from "../store/store.ts";
import { streamingSha256 } from "../hash/digests.ts";
import type { ReplySummary } from "../smtp/result.ts";
import {
  type AddressSource,
  type Caller,
  identifyCaller,
  publicReply,
  publicResult,
} from "./caller.ts";
import { observeBody } from "./body.ts";
import { type Config, CONFIG_DEFAULTS } from "./config.ts";
import { headersForStatus, type HttpResult, problem, statusOfResult } from "./problems.ts";
import { consumeRate, rateLimitedMessage } from "./rate_limit.ts";
import type { Redact } from "./redact.ts";
import { jsonBody } from "./responses.ts";
import { sseFrame } from "./sse.ts";

/** The request header. */
export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** The response header of a replay. */
export const REPLAYED_HEADER = "Idempotent-Replayed";
/** Longest accepted key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Most seconds a 409 asks to wait (`Retry-After`) while the first request runs. */
export const IN_FLIGHT_RETRY_S = 5;

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const CAPTURED = "edgemail.idempotency";
const SESSION = "edgemail.sendSession";

/** What the guard needs from the app. */
export interface GuardOptions {
  /** The configuration (API keys, rate limits, TTL, SMTP timeout). */
  config: Config;
  /** The store; `undefined` on a platform without one. */
  store?: Store;
  /** Applied to every body. */
  redact: Redact;
  /** The platform's client address. */
  address?: AddressSource;
  /** The current time (tests). Default `Date.now`. */
  now?: () => number;
}

/** The key of a request that sent `Idempotency-Key`, and the hash of its body once read. */
interface Captured {
  key: string;
  /** SHA-256 (hex) of the body bytes; `undefined` until the body has been read to its end. */
  bodyHash(): string | undefined;
}

/**
 * Why an `Idempotency-Key` value is refused, or `undefined` when it is fine.
 * The message names the header and never repeats the value.
 */
export function idempotencyKeyProblem(value: string): string | undefined {
  if (value.length === 0 || value.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    return `The ${IDEMPOTENCY_HEADER} header must have 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} ` +
      `characters (it has ${value.length}); a random UUID is a good key.`;
  }
  if (!VISIBLE_ASCII.test(value)) {
    return `The ${IDEMPOTENCY_HEADER} header may only hold visible ASCII characters, without ` +
      "spaces or control characters; a random UUID is a good key.";
  }
  return undefined;
}

/**
 * Middleware for the send routes, before the body is read: checks an
 * `Idempotency-Key` header (400 naming it; 501 `idempotency_unavailable`
 * without a store) and passes the body through a SHA-256 as the body reader
 * consumes it, so the exact bytes are compared without keeping a copy.
 */
export function captureIdempotencyKey(options: GuardOptions): MiddlewareHandler {
  return async (c, next) => {
    // Headers normalise surrounding whitespace; the raw value is what the client sent.
    const value = c.req.raw.headers.get(IDEMPOTENCY_HEADER);
    if (value === null) return await next();
    const refused = idempotencyKeyProblem(value);
    if (refused !== undefined) {
      return jsonBody(
        c,
        options.redact,
        problem("validation", refused, {
          issues: [{ path: `headers.${IDEMPOTENCY_HEADER}`, message: refused }],
        }),
        400,
      );
    }
    if (options.store === undefined) {
      return jsonBody(
        c,
        options.redact,
        problem(
          "idempotency_unavailable",
          `This platform has no store for ${IDEMPOTENCY_HEADER} (Supabase Edge Functions have ` +
            "no Deno KV; on Workers, bind the EDGEMAIL_STORE Durable Object): send the request " +
            "without it, or deploy where a store exists.",
        ),
        501,
      );
    }
    c.set(
      CAPTURED as never,
      { key: value, bodyHash: await hashBody(c) } satisfies Captured as never,
    );
    return await next();
  };
}

/**
 * Replaces the request's body with the same bytes passing through a SHA-256
 * (as Hono's `bodyLimit` replaces it with a counting stream); the returned
 * function gives the digest once the stream has ended.
 */
async function hashBody(c: Context): Promise<() => string | undefined> {
  const original = c.req.raw;
  const hash = await streamingSha256();
  let digest: string | undefined;
  if (original.body === null) {
    digest = await hash.digest();
    return () => digest;
  }
  // The stream ends only after end() has settled, so the digest is there by then.
  const body = observeBody(original.body, {
    chunk: (bytes) => hash.update(bytes),
    end: async () => {
      digest = await hash.digest();
    },
  });
  c.req.raw = new Request(original, { body, duplex: "half" } as RequestInit);
  return () => digest;
}

/**
 * What the send handlers report to and ask of the guard while they send:
 * the hook that marks a message's data as about to be written, store or
 * release the outcome, and show results and replies the way this caller may
 * see them.
 */
export interface SendSession {
  /** The caller. */
  readonly caller: Caller;
  /** Headers for the final response (`RateLimit-Policy` / `RateLimit`). */
  readonly headers: Record<string, string>;
  /**
   * The `beforeDataEnd` hook of message `index` (see `SendOptions`): stores
   * the claim's "data written" mark and resolves once it is stored; rejects
   * when the store fails, so the message is not sent. `undefined` for a
   * request without `Idempotency-Key`: nothing to wait for.
   */
  beforeDataEnd(index: number): (() => Promise<void>) | undefined;
  /** Stores the outcome (or releases the key) once every message has one. */
  finish(results: HttpResult[]): Promise<void>;
  /**
   * Ends the claim after an unexpected failure, when the outcomes are not
   * known: released if no message reached its data, else left to expire (and
   * become `unknown_outcome` for the marked messages).
   */
  abandon(): Promise<void>;
  /** A Result as this caller may see it (for a public caller, the detail goes to the log). */
  view<T extends HttpResult>(result: T): T;
  /** A status event's reply as this caller may see it. */
  viewReply(reply: ReplySummary): ReplySummary;
}

/** The {@linkcode SendSession} of a request that passed {@linkcode guardSends}. */
export function sendSessionOf(c: Context): SendSession | undefined {
  return c.get(SESSION as never) as SendSession | undefined;
}

/**
 * The guard between policy and SMTP: identifies the caller, answers a
 * replay / 409 / 422 for a known `Idempotency-Key`, counts the messages
 * against `RATE_LIMIT` (429, releasing the claim), and otherwise returns
 * `undefined` with a {@linkcode SendSession} set on the context.
 */
export async function guardSends(
  c: Context,
  messages: Message[],
  options: GuardOptions & { batch: boolean },
): Promise<Response | undefined> {
  const { config, store, redact } = options;
  const now = options.now ?? Date.now;
  const caller = await identifyCaller(c, {
    apiKeys: config.apiKeys.length > 0,
    trustProxy: config.trustProxy,
    address: options.address,
  });
  const captured = c.get(CAPTURED as never) as Captured | undefined;
  const bodyHash = captured?.bodyHash();
  if (captured !== undefined && bodyHash === undefined) {
    // The schema has read the whole body by now; not having its hash is a bug.
    throw new Error("The request body was not read to its end before the idempotency check.");
  }
  const tokens = messages.map((message) => message.token ?? null);
  const token = options.batch ? null : tokens[0];
  let claim: Claim | undefined;
  if (captured !== undefined && store !== undefined) {
    const key = `idem:${options.batch ? "batch" : "send"}:${caller.scope}:${captured.key}`;
    const owner = crypto.randomUUID();
    const leaseMs = 2 * (config.smtp.timeoutMs ?? CONFIG_DEFAULTS.timeoutMs);
    const output = await store.run(key, "claim", {
      owner,
      bodyHash: bodyHash!,
      tokens,
      leaseMs,
      ttlMs: config.idempotencyTtlMs,
      now: now(),
    });
    if (output.kind === "replay") {
      const results = output.results as HttpResult[];
      const view = caller.kind === "public" ? results.map(publicResult) : results;
      return replay(c, redact, view, options.batch);
    }
    if (output.kind === "in_flight") {
      // The running request usually ends within seconds; its lease can be much longer.
      const seconds = Math.min(
        IN_FLIGHT_RETRY_S,
        Math.max(1, Math.ceil(output.retryAfterMs / 1000)),
      );
      return jsonBody(
        c,
        redact,
        problem(
          "conflict",
          `A request with this ${IDEMPOTENCY_HEADER} is still in progress: retry in ${seconds} s ` +
            "to get its outcome.",
          { token },
        ),
        409,
        { "Retry-After": String(seconds) },
      );
    }
    if (output.kind === "mismatch") {
      return jsonBody(
        c,
        redact,
        problem(
          "idempotency_mismatch",
          `This ${IDEMPOTENCY_HEADER} was used with a different body: a different request needs ` +
            "a new key.",
          { token },
        ),
        422,
      );
    }
    claim = new Claim(store, key, owner, { leaseMs, now });
  }
  const limit = config.rateLimit[caller.kind];
  let headers: Record<string, string> = {};
  if (limit !== undefined && store !== undefined) {
    let decision;
    try {
      decision = await consumeRate(store, caller.subject, {
        limit,
        count: messages.length,
        now: now(),
      });
    } catch (error) {
      await claim?.release();
      throw error;
    }
    headers = decision.headers;
    if (!decision.allowed) {
      await claim?.release();
      return jsonBody(
        c,
        redact,
        problem(
          "rate_limited",
          rateLimitedMessage(limit, messages.length, decision.retryAfterS),
          { token },
        ),
        429,
        headers,
      );
    }
  }
  const session: SendSession = {
    caller,
    headers,
    beforeDataEnd: (index) => claim && (() => claim.markWritten(index)),
    finish: async (results) => {
      if (claim === undefined) return;
      if (isStorable(results)) await claim.complete(results);
      else await claim.release();
    },
    abandon: async () => await claim?.abandon(),
    view: (result) => {
      if (caller.kind === "server") return result;
      if (result.error !== undefined) logPublicDetail(c, redact, result);
      return publicResult(result);
    },
    viewReply: (reply) => caller.kind === "public" ? publicReply(reply) : reply,
  };
  c.set(SESSION as never, session as never);
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return undefined;
}

/**
 * Whether results are kept for replays: when something may have been
 * delivered (`sent`, `unknown_outcome`) or never will be (every message
 * `rejected`, a permanent refusal). Anything else — only temporary or
 * local failures, cancellations — releases the key.
 */
export function isStorable(results: readonly HttpResult[]): boolean {
  const delivered = results.some((result) =>
    result.status === "sent" || result.error?.type === "unknown_outcome"
  );
  return delivered ||
    (results.length > 0 && results.every((result) => result.error?.type === "rejected"));
}

/** The running claim of one request: renews its lease until finished. */
class Claim {
  #store: Store;
  #key: string;
  #owner: string;
  #leaseMs: number;
  #now: () => number;
  #renewal: ReturnType<typeof setInterval>;
  /** Store operations in order: a mark always lands before the outcome. */
  #queue: Promise<unknown> = Promise.resolve();
  #done = false;
  #marked = false;

  constructor(
    store: Store,
    key: string,
    owner: string,
    options: { leaseMs: number; now: () => number },
  ) {
    this.#store = store;
    this.#key = key;
    this.#owner = owner;
    this.#leaseMs = options.leaseMs;
    this.#now = options.now;
    this.#renewal = setInterval(() => {
      this.#enqueue(() =>
        this.#store.run(this.#key, "renew", {
          owner: this.#owner,
          leaseMs: this.#leaseMs,
          now: this.#now(),
        })
      );
    }, Math.max(50, Math.floor(this.#leaseMs / 4)));
  }

  /** Marks message `index` as about to be delivered; rejects when the store failed. */
  async markWritten(index: number): Promise<void> {
    this.#marked = true;
    const mark = this.#queue.then(() =>
      this.#store.run(this.#key, "markWritten", {
        owner: this.#owner,
        index,
        leaseMs: this.#leaseMs,
        now: this.#now(),
      })
    );
    this.#queue = mark.catch(() => {});
    let held;
    try {
      ({ held } = await mark);
    } catch (error) {
      // Without the mark the message must not go: a retry after a crash would send it again.
      console.error(`edgemail: the idempotency store failed: ${(error as Error).message}`);
      throw new Error("the idempotency store could not record the send; retry the request");
    }
    if (!held) {
      // The lease ran out (renewals failed): another request may be sending this message.
      throw new Error("this request's Idempotency-Key claim expired; retry the request");
    }
  }

  async complete(results: HttpResult[]): Promise<void> {
    await this.#end(() =>
      this.#store.run(this.#key, "complete", { owner: this.#owner, results, now: this.#now() })
    );
  }

  async release(): Promise<void> {
    await this.#end(() =>
      this.#store.run(this.#key, "release", { owner: this.#owner, now: this.#now() })
    );
  }

  async abandon(): Promise<void> {
    if (!this.#marked) return await this.release();
    // No renewals: the lease runs out and the marked messages become unknown_outcome.
    this.#done = true;
    clearInterval(this.#renewal);
    await this.#queue;
  }

  async #end(step: () => Promise<unknown>): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#renewal);
    await this.#enqueue(step);
  }

  #enqueue(step: () => Promise<unknown>): Promise<unknown> {
    const next = this.#queue.then(step).catch((error) => {
      // The send goes on; a lost mark or outcome only weakens a later replay. Logged.
      console.error(`edgemail: the idempotency store failed: ${(error as Error).message}`);
    });
    this.#queue = next;
    return next;
  }
}

/** What a public caller is not told goes to the log, redacted. */
function logPublicDetail(c: Context, redact: Redact, result: HttpResult): void {
  const id = (c.get("requestId" as never) as string | undefined) ?? "-";
  const error = result.error!;
  const rejected = result.rejected.map((r) => `${r.address}: ${r.code} ${r.message}`).join("; ");
  console.info(redact(
    `edgemail: request ${id}: public caller told ${error.type}` +
      `${error.phase === undefined ? "" : ` (${error.phase})`}; detail: ${error.message}` +
      `${result.response === undefined ? "" : `; reply: ${result.response}`}` +
      `${rejected === "" ? "" : `; refused: ${rejected}`}`,
  ));
}

/** Answers stored results in the form the request asks for. */
function replay(c: Context, redact: Redact, results: HttpResult[], batch: boolean): Response {
  const headers = { [REPLAYED_HEADER]: "true" };
  if (wantsEventStream(c)) {
    let id = 0;
    const frame = (event: string, data: unknown) => sseFrame(event, data, { id: ++id, redact });
    let text = batch
      ? results.map((result, index) => frame("completed", { index, ...result })).join("")
      : frame("completed", results[0]);
    if (batch) text += frame("done", countResults(results));
    return c.body(text, 200, {
      ...headers,
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      "X-Accel-Buffering": "no",
    });
  }
  if (batch) return jsonBody(c, redact, { results }, 200, headers);
  const status = statusOfResult(results[0]);
  return jsonBody(c, redact, results[0], status, { ...headersForStatus(status), ...headers });
}

function countResults(results: readonly HttpResult[]) {
  const counts = { sent: 0, failed: 0, cancelled: 0 };
  for (const result of results) counts[result.status]++;
  return counts;
}

function wantsEventStream(c: Context): boolean {
  return (c.req.header("Accept") ?? "").toLowerCase().includes("text/event-stream");
}
