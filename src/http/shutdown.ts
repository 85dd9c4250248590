/**
 * Graceful shutdown for the long-lived Deno entries (`deno serve
 * functions/deno.ts`, `deno task dev`). On SIGTERM or SIGINT the server stops
 * accepting (`deno serve` does that by itself; `Deno.serve` through
 * `server.shutdown()` — its abort `signal` would cut the requests in flight),
 * requests in flight run on for up to `SHUTDOWN_TIMEOUT_MS` (default 30 s) and
 * each ends with its outcome, as do the sends that outlived their request (an
 * SSE client that went away after the data); then the SMTP connections are
 * closed with QUIT and the process exits. Work still running at that bound
 * has its SMTP connections closed under it (connections still being opened
 * are abandoned): a message whose data was written is reported `unknown_outcome`
 * (it may have been delivered), one whose data was not is an error that
 * delivered nothing. Their responses are still written before the process ends,
 * which then exits 1 instead of 0 ({@linkcode drainExitCode}).
 *
 * @example
 * ```ts
 * const shutdown = new GracefulShutdown({ timeoutMs: shutdownTimeoutMs(Deno.env.toObject()) });
 * const client = new SmtpClient({ ...config.smtp, connect: shutdown.wrapConnect(denoConnect) });
 * const app = createApp(config, { client });
 * onTerminationSignal(() => shutdown.drain({ settle: () => client.close() }));
 * export default { fetch: shutdown.wrapFetch(app.fetch) };
 * ```
 *
 * @module
 */

import { SmtpError } from "../smtp/errors.ts";
import type { Connect, ConnectOptions, SmtpSocket, StartTlsOptions } from "../socket/socket.ts";

/** How long requests in flight may run on after SIGTERM/SIGINT by default (`SHUTDOWN_TIMEOUT_MS`). */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/** The largest bound a timer can express. */
const MAX_SHUTDOWN_TIMEOUT_MS = 2_147_483_647;

/**
 * After the bound, how long the requests whose connections were closed get
 * to write their responses before the shutdown goes on without them.
 */
const FORCED_GRACE_MS = 5000;

/** A bad `SHUTDOWN_TIMEOUT_MS`; the message names the variable and the accepted values. */
export class ShutdownConfigError extends RangeError {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "ShutdownConfigError";
  }
}

/**
 * Reads `SHUTDOWN_TIMEOUT_MS` from `env`: milliseconds, 0 to 2147483647;
 * {@linkcode DEFAULT_SHUTDOWN_TIMEOUT_MS} when unset or empty.
 *
 * @throws {ShutdownConfigError} naming the variable when the value is not such a number.
 */
export function shutdownTimeoutMs(env: Record<string, string | undefined>): number {
  const value = env.SHUTDOWN_TIMEOUT_MS;
  if (value === undefined || value.trim() === "") return DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const trimmed = value.trim();
  if (!/^\d{1,10}$/.test(trimmed) || Number(trimmed) > MAX_SHUTDOWN_TIMEOUT_MS) {
    throw new ShutdownConfigError(
      `SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds from 0 to ${MAX_SHUTDOWN_TIMEOUT_MS} ` +
        `(default ${DEFAULT_SHUTDOWN_TIMEOUT_MS}).`,
    );
  }
  return Number(trimmed);
}

/** Options of {@linkcode GracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** How long requests in flight may run on once the shutdown starts. Default 30 s. */
  timeoutMs?: number;
  /** Where progress lines go. Default `console.info`. */
  log?: (line: string) => void;
}

/** Options of {@linkcode GracefulShutdown.drain}. */
export interface DrainOptions {
  /**
   * Run once no request is in flight, within the same bound: the work that
   * must end before the process does. `client.close()` of the SMTP client
   * waits for the sends that outlived their request (an SSE client that went
   * away after the data) and says QUIT. Past the bound, the SMTP connections
   * are closed under it.
   */
  settle?: () => Promise<void>;
}

/** How a shutdown ended: every request finished in time, or some were cut at the bound. */
export type DrainResult = "drained" | "forced";

/**
 * The process's exit status after a drain: 0 when everything finished within
 * the bound; 1 when work was cut at it (a request or send closed under it,
 * possibly an `unknown_outcome`), so that a process manager records the
 * shutdown as failed and someone looks at why it was too slow. A second
 * signal exits 130 (see {@linkcode onTerminationSignal}).
 */
export function drainExitCode(result: DrainResult): 0 | 1 {
  return result === "drained" ? 0 : 1;
}

/** A fetch handler as `deno serve` and `Deno.serve` call it. */
type FetchHandler<A extends unknown[]> = (
  request: Request,
  ...rest: A
) => Response | Promise<Response>;

/**
 * Counts the requests in flight (until their response body has been read to
 * its end), tracks the SMTP sockets, and runs the bounded drain.
 */
export class GracefulShutdown {
  readonly #timeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #sockets = new Set<SmtpSocket>();
  #inFlight = 0;
  #idle: (() => void)[] = [];
  #draining: Promise<DrainResult> | undefined;
  /** Aborted at the bound: no new SMTP connection may open, those being opened are abandoned. */
  readonly #cut = new AbortController();

  /** Creates the tracker; nothing happens until {@linkcode GracefulShutdown.drain}. */
  constructor(options: GracefulShutdownOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_SHUTDOWN_TIMEOUT_MS) {
      throw new RangeError(
        `options.timeoutMs must be a whole number of milliseconds from 0 to ${MAX_SHUTDOWN_TIMEOUT_MS}`,
      );
    }
    this.#timeoutMs = timeoutMs;
    this.#log = options.log ?? ((line) => console.info(line));
  }

  /** Requests whose response has not been read to its end yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether the shutdown has started. */
  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /**
   * Wraps a fetch handler so that each request counts as in flight until its
   * response body (an SSE stream included) has been read to its end or cancelled.
   */
  wrapFetch<A extends unknown[]>(
    handler: FetchHandler<A>,
  ): (request: Request, ...rest: A) => Promise<Response> {
    return async (request, ...rest) => {
      this.#inFlight++;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        this.#inFlight--;
        if (this.#inFlight === 0) { for (const wake of this.#idle.splice(0)) wake(); }
      };
      let response: Response;
      try {
        response = await handler(request, ...rest);
      } catch (error) {
        end();
        throw error;
      }
      if (response.body === null) {
        end();
        return response;
      }
      return new Response(watchEnd(response.body, end), response);
    };
  }

  /**
   * Wraps a socket factory so that the SMTP connections can be closed at the
   * bound; a connection still being opened then (a slow TCP connect, a TLS
   * handshake that hangs) is abandoned at once rather than at its SMTP
   * deadline, and no new one opens.
   */
  wrapConnect(connect: Connect): Connect {
    return async (options: ConnectOptions) => {
      const cut = this.#cut.signal;
      if (cut.aborted) throw shuttingDown();
      const signal = options.signal === undefined ? cut : AbortSignal.any([options.signal, cut]);
      const pending = connect({ ...options, signal });
      let socket: SmtpSocket;
      try {
        socket = await untilAborted(pending, cut);
      } catch (error) {
        if (!cut.aborted) throw error;
        // The adapter closes what it half opened on `signal`; a socket that still arrives is closed.
        pending.then((late) => late.close(), () => {});
        throw shuttingDown();
      }
      return this.#track(socket);
    };
  }

  /**
   * Starts the shutdown (once; later calls return the same promise): waits
   * until no request is in flight and `options.settle` has resolved, or until
   * the bound, where it closes every SMTP connection so that the requests end
   * with their outcome, and waits for their responses a little longer.
   */
  drain(options: DrainOptions = {}): Promise<DrainResult> {
    this.#draining ??= this.#drain(options.settle);
    return this.#draining;
  }

  async #drain(settle: (() => Promise<void>) | undefined): Promise<DrainResult> {
    const deadline = Date.now() + this.#timeoutMs;
    const requests = this.#inFlight;
    this.#log(
      `edgemail: shutting down; ${requests} request(s) in flight, waiting up to ` +
        `${this.#timeoutMs} ms (SHUTDOWN_TIMEOUT_MS)`,
    );
    let settling: Promise<void> | undefined;
    if (await this.#idleWithin(this.#timeoutMs)) {
      if (requests > 0) this.#log("edgemail: every request in flight has finished");
      settling = settleQuietly(settle, this.#log);
      if (await resolvesWithin(settling, deadline - Date.now())) return "drained";
      this.#log(
        `edgemail: SMTP work still running after ${this.#timeoutMs} ms (a send whose HTTP ` +
          "client went away, or QUIT); closing the SMTP connections (a message whose data was " +
          "written is stored as unknown_outcome)",
      );
    } else {
      this.#log(
        `edgemail: ${this.#inFlight} request(s) still in flight after ${this.#timeoutMs} ms; ` +
          "closing their SMTP connections (a message whose data was written is reported as " +
          "unknown_outcome)",
      );
    }
    this.#cut.abort();
    await Promise.all([...this.#sockets].map((socket) => socket.close()));
    if (!(await this.#idleWithin(FORCED_GRACE_MS))) {
      this.#log(`edgemail: ${this.#inFlight} response(s) still unfinished; exiting without them`);
    }
    settling ??= settleQuietly(settle, this.#log);
    if (!(await resolvesWithin(settling, FORCED_GRACE_MS))) {
      this.#log("edgemail: the SMTP connections are still closing; exiting without them");
    }
    this.#log(
      `edgemail: shutdown forced at the bound; exit status ${drainExitCode("forced")}`,
    );
    return "forced";
  }

  /** Resolves `true` once nothing is in flight, `false` after `ms` if something still is. */
  #idleWithin(ms: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((wake) => wake !== onIdle);
        resolve(false);
      }, ms);
      const onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(onIdle);
    });
  }

  /** A socket that leaves the tracked set when closed, and is replaced by its TLS successor. */
  #track(socket: SmtpSocket): SmtpSocket {
    this.#sockets.add(socket);
    const sockets = this.#sockets;
    const track = (next: SmtpSocket) => this.#track(next);
    return {
      get secure() {
        return socket.secure;
      },
      read: () => socket.read(),
      write: (bytes: Uint8Array) => socket.write(bytes),
      async startTls(options: StartTlsOptions) {
        const upgraded = await socket.startTls(options);
        sockets.delete(socket);
        return track(upgraded);
      },
      close() {
        sockets.delete(socket);
        return socket.close();
      },
    };
  }
}

/** Runs `settle` (if any); its failure is logged, never thrown. */
function settleQuietly(
  settle: (() => Promise<void>) | undefined,
  log: (line: string) => void,
): Promise<void> {
  if (settle === undefined) return Promise.resolve();
  return settle().catch((error) => {
    log(`edgemail: closing the SMTP client failed: ${(error as Error)?.message ?? error}`);
  });
}

/** Resolves `true` once `promise` has resolved, `false` if `ms` pass first; rejects with it. */
export function resolvesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout>;
  const late = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms));
  return Promise.race([promise.then(() => true), late]).finally(() => clearTimeout(timer));
}

/**
 * The error of a connection refused or abandoned at the bound: a `connection`
 * failure (nothing was sent, so the key is released), an SmtpError so that it
 * reaches the caller as it is, not as a host or port to check.
 */
function shuttingDown(): SmtpError {
  return new SmtpError(
    "connection",
    "edgemail is shutting down: no new SMTP connection is opened and nothing was sent; " +
      "retry the request once the service is back.",
    { phase: "connect" },
  );
}

/** Settles like `promise`, or rejects once `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return Promise.race([promise, aborted]).finally(() =>
    signal.removeEventListener("abort", onAbort)
  );
}

/** `body` as a new stream that calls `onEnd` once it has been read to its end, failed or been cancelled. */
function watchEnd(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          onEnd();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        controller.error(error);
        onEnd();
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        onEnd();
      }
    },
  });
}

/**
 * Calls `listener` on the first SIGTERM or SIGINT; a second signal ends the
 * process at once (exit status 130). Returns a function that removes the
 * listeners.
 */
export function onTerminationSignal(listener: () => void): () => void {
  let received = false;
  const onSignal = () => {
    if (received) {
      console.error("edgemail: second signal; exiting without waiting for requests in flight");
      Deno.exit(130);
    }
    received = true;
    listener();
  };
  // Windows has no SIGTERM.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return () => {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  };
}
