/**
 * `SmtpClient`: validates and composes messages, runs each send on a pooled
 * connection, and reports every completion once, as a resolved or rejected
 * promise and as a `completed` event (the .NET `SendAsync` model).
 *
 * @module
 */

import type { Connect } from "../socket/socket.ts";
import { composeMessage } from "../message/compose.ts";
import { type Message, type MessageInput, parseMessage } from "../message/schema.ts";
import { assertCommandSafe } from "./commands.ts";
import { abortErrorFrom } from "./deadline.ts";
import { isAbortError, SmtpError, type SmtpPhase } from "./errors.ts";
import type { SendResult, StatusEvent } from "./result.ts";
import {
  type SessionOptions,
  type SmtpAuth,
  SmtpSession,
  type StepOptions,
  type TlsMode,
  type Transaction,
} from "./session.ts";

export type { SmtpAuth, TlsMode };

/** Connection pool settings. */
export interface PoolOptions {
  /** Most connections open at once. Default 5. */
  maxConnections?: number;
  /** Messages sent on one connection before it is replaced. Default 100. */
  maxMessagesPerConnection?: number;
  /** How long an idle connection stays open. Default 5000 ms. */
  idleTimeoutMs?: number;
}

/** Options of {@linkcode SmtpClient}. */
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

/** Options of one send. */
export interface SendOptions {
  /** Cancels the send until the end of the message data has been written. */
  signal?: AbortSignal;
  /** Returned unchanged with the completion (default: the message's `token`). */
  token?: unknown;
  /** Receives a progress event for each protocol step. */
  onStatus?: (event: StatusEvent) => void;
}

/** The detail of the `completed` event. */
export interface CompletedDetail {
  /** The result, whatever the outcome. */
  result: SendResult;
  /** The error, when the send did not succeed. */
  error?: unknown;
  /** Whether the send was cancelled. */
  cancelled: boolean;
  /** The caller's token. */
  token: unknown;
}

/** Timers fire at once beyond this many milliseconds (a signed 32-bit delay). */
export const MAX_TIMER_MS = 2_147_483_647;

const TLS_MODES: readonly TlsMode[] = ["starttls", "implicit", "opportunistic", "none"];
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?)$/;

/**
 * Sends mail over SMTP. Several sends may run at once: they share a pool of
 * connections and never interleave on one connection.
 *
 * @example
 * ```ts
 * await using client = new SmtpClient({ host: "smtp.example.com", auth: { username, password } });
 * const result = await client.send({ from: "a@example.com", to: "b@example.org", text: "Hi" });
 * ```
 */
export class SmtpClient extends EventTarget {
  #session: SessionOptions;
  #pool: Required<PoolOptions>;
  #idle: { session: SmtpSession; timer: ReturnType<typeof setTimeout> }[] = [];
  #open = 0;
  #waiters: (() => void)[] = [];
  #active = new Set<Promise<unknown>>();
  #retiring = new Set<Promise<void>>();
  #closed = false;

  /** Validates `options`; throws a TypeError or RangeError naming the field. No I/O happens here. */
  constructor(options: SmtpClientOptions) {
    super();
    this.#session = resolveSessionOptions(options);
    this.#pool = resolvePoolOptions(options.pool);
  }

  /**
   * Sends `message`. Resolves with the result when the message was accepted;
   * rejects with an {@linkcode SmtpError} (its `result` holds the full result)
   * or an `AbortError`. The message is validated and snapshotted now.
   */
  send(message: MessageInput, options: SendOptions = {}): Promise<SendResult> {
    if (this.#closed) {
      return Promise.reject(
        new DOMException(
          "This SmtpClient is closed; create a new one to send.",
          "InvalidStateError",
        ),
      );
    }
    let parsed: Message;
    try {
      parsed = parseMessage(message);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.#send(parsed, options);
    this.#active.add(run);
    run.catch(() => {}).finally(() => this.#active.delete(run));
    return run;
  }

  /**
   * Opens a connection, goes through greeting, EHLO, TLS and AUTH, and says
   * QUIT: a health check of the configuration. Throws an {@linkcode SmtpError}.
   */
  async verify(options: { signal?: AbortSignal } = {}): Promise<void> {
    const session = await SmtpSession.open(this.#session, { signal: options.signal });
    await session.quit();
  }

  /** Waits for sends in flight, then closes every connection. New sends are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#active]);
    for (const { session, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      this.#retire(session);
    }
    // Resolves only once every connection, those of finished sends included, is closed.
    await Promise.allSettled([...this.#retiring]);
  }

  /** Same as {@linkcode SmtpClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #send(message: Message, options: SendOptions): Promise<SendResult> {
    const token = options.token ?? message.token ?? null;
    const composed = composeMessage(message);
    const transaction: Transaction = {
      envelope: composed.envelope,
      size: composed.size,
      smtputf8: composed.smtputf8,
      eightBit: composed.eightBit,
      chunks: () => composed.chunks(),
      dsn: message.dsn,
      allowPartial: message.allowPartial ?? false,
    };
    const base = { token, messageId: composed.messageId };
    // What the last server this send reached said about DSN, for failed results too.
    const reached = { dsnSupported: false };
    let phase: SmtpPhase = "connect";
    const step: StepOptions = {
      signal: options.signal,
      onStatus: (event) => {
        phase = event.phase;
        options.onStatus?.(event);
      },
    };
    try {
      const outcome = await this.#runTransaction(transaction, step, reached);
      const result: SendResult = { status: "sent", ...base, ...outcome };
      this.#complete({ result, cancelled: false, token });
      return result;
    } catch (error) {
      if (isAbortError(error)) {
        const result: SendResult = {
          status: "cancelled",
          ...base,
          accepted: [],
          rejected: [],
          error: {
            type: "cancelled",
            message:
              "The send was cancelled before the message was complete; nothing was delivered.",
            phase,
          },
        };
        if (message.dsn) result.dsn = { requested: true, supported: reached.dsnSupported };
        // One AbortError per send, so the result can be found from it (signals may be shared).
        const abort = new DOMException("The send was cancelled.", "AbortError");
        cancelledResults.set(abort, result);
        this.#complete({ result, error: abort, cancelled: true, token });
        throw abort;
      }
      const smtpError = error instanceof SmtpError ? error : new SmtpError(
        "protocol",
        `The send failed unexpectedly: ${(error as Error)?.message ?? "unknown error"}`,
        { phase, cause: error },
      );
      smtpError.token = token;
      smtpError.result = failedResult(smtpError, base);
      if (message.dsn) smtpError.result.dsn = { requested: true, supported: reached.dsnSupported };
      this.#complete({ result: smtpError.result, error: smtpError, cancelled: false, token });
      throw smtpError;
    }
  }

  async #runTransaction(
    transaction: Transaction,
    step: StepOptions,
    reached: { dsnSupported: boolean },
  ) {
    const { session, reused } = await this.#acquire(step);
    reached.dsnSupported = session.capabilities.has("DSN");
    try {
      const outcome = await session.send(transaction, step);
      this.#release(session);
      return outcome;
    } catch (error) {
      this.#release(session);
      // A pooled connection the server dropped while idle fails at once on
      // MAIL; nothing was sent, so one retry on a fresh connection is safe.
      if (reused && isStaleConnection(error)) {
        const fresh = await this.#acquire(step, { fresh: true });
        reached.dsnSupported = fresh.session.capabilities.has("DSN");
        try {
          return await fresh.session.send(transaction, step);
        } finally {
          this.#release(fresh.session);
        }
      }
      throw error;
    }
  }

  async #acquire(
    step: StepOptions,
    options: { fresh?: boolean } = {},
  ): Promise<{ session: SmtpSession; reused: boolean }> {
    while (true) {
      if (step.signal?.aborted) {
        // A wake-up this waiter got but can no longer use goes to the next one.
        this.#wakeOne();
        throw abortErrorFrom(step.signal);
      }
      if (!options.fresh) {
        const idle = this.#idle.pop();
        if (idle) {
          clearTimeout(idle.timer);
          idle.session.unpark();
          if (idle.session.reusable) return { session: idle.session, reused: true };
          this.#retire(idle.session);
          continue;
        }
      }
      if (this.#open < this.#pool.maxConnections) {
        this.#open++;
        try {
          return { session: await SmtpSession.open(this.#session, step), reused: false };
        } catch (error) {
          this.#open--;
          this.#wakeOne();
          throw error;
        }
      }
      if (options.fresh && this.#idle.length > 0) {
        // Make room for the fresh connection by retiring an idle one.
        const idle = this.#idle.shift()!;
        clearTimeout(idle.timer);
        this.#retire(idle.session);
        continue;
      }
      await this.#waitForSlot(step.signal);
    }
  }

  #waitForSlot(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        reject(abortErrorFrom(signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(wake);
    });
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }

  #release(session: SmtpSession): void {
    // While closing, a connection still serves the sends already queued for one.
    const keep = session.reusable &&
      session.transactions < this.#pool.maxMessagesPerConnection &&
      (!this.#closed || this.#waiters.length > 0);
    if (!keep) {
      this.#retire(session);
      return;
    }
    const timer = setTimeout(() => {
      this.#idle = this.#idle.filter((entry) => entry.session !== session);
      this.#retire(session);
    }, this.#pool.idleTimeoutMs);
    session.park();
    this.#idle.push({ session, timer });
    this.#wakeOne();
  }

  /**
   * Says QUIT and closes; the pool slot frees only once the connection is
   * gone, so `maxConnections` holds even while a server is slow to answer QUIT.
   */
  #retire(session: SmtpSession): void {
    const done = session.quit().finally(() => {
      this.#retiring.delete(done);
      this.#open--;
      this.#wakeOne();
    });
    this.#retiring.add(done);
  }

  #complete(detail: CompletedDetail): void {
    this.dispatchEvent(new CustomEvent<CompletedDetail>("completed", { detail }));
  }
}

/**
 * Sends `message` and resolves with the {@linkcode SendResult} whatever the
 * outcome (sent, failed or cancelled). Only an invalid message rejects, with
 * the validation error.
 */
export async function sendSettled(
  client: SmtpClient,
  message: MessageInput,
  options: SendOptions = {},
): Promise<SendResult> {
  try {
    return await client.send(message, options);
  } catch (error) {
    const result = resultOf(error);
    if (result) return result;
    throw error;
  }
}

const cancelledResults = new WeakMap<object, SendResult>();

/**
 * The full {@linkcode SendResult} behind an error `send` rejected with (an
 * `SmtpError` or the `AbortError` of a cancelled send); `undefined` for other errors.
 */
export function resultOf(error: unknown): SendResult | undefined {
  if (error instanceof SmtpError) return error.result;
  if (typeof error === "object" && error !== null) return cancelledResults.get(error);
  return undefined;
}

function failedResult(error: SmtpError, base: { token: unknown; messageId: string }): SendResult {
  const result: SendResult = {
    status: "failed",
    ...base,
    accepted: [],
    rejected: error.rejected,
    error: { type: error.type, message: error.message, phase: error.phase },
  };
  if (error.code !== undefined) result.error!.code = error.code;
  if (error.enhancedCode !== undefined) result.error!.enhancedCode = error.enhancedCode;
  if (error.response !== undefined) result.response = error.response;
  return result;
}

function isStaleConnection(error: unknown): boolean {
  return error instanceof SmtpError && error.phase === "mail" &&
    (error.type === "connection" || (error.type === "transient" && error.code === 421));
}

function resolveSessionOptions(options: SmtpClientOptions): SessionOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("SmtpClient needs an options object with at least `host`.");
  }
  const { host } = options;
  if (typeof host !== "string" || host === "" || !HOST.test(host)) {
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
    if (typeof value === "string" && /[\r\n\0]/.test(value)) {
      throw new TypeError(`auth.${field} must not contain CR, LF or NUL characters.`);
    }
  }
  const mechanisms = ["plain", "login", "cram-md5", "xoauth2"];
  if (auth.mechanism !== undefined && !mechanisms.includes(auth.mechanism.toLowerCase())) {
    throw new TypeError(`auth.mechanism must be one of ${mechanisms.join(", ")}.`);
  }
}

function resolvePoolOptions(pool: PoolOptions = {}): Required<PoolOptions> {
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

/** The default socket factory: the Deno adapter, loaded only when first used. */
const defaultConnect: Connect = async (options) => {
  denoConnectPromise ??= import("../socket/deno.ts").then((m) => m.denoConnect);
  if (!("Deno" in globalThis)) {
    throw new TypeError(
      "No socket factory: pass `connect` (e.g. cloudflareConnect on Cloudflare Workers).",
    );
  }
  return (await denoConnectPromise)(options);
};
