/**
 * A scripted SMTP server that never answers RCPT: a send to it waits until
 * its client gives up (an abort, Ctrl-C, a caller that went away), which is
 * the state the cancellation tests need. It counts what it delivers, so a
 * test can check that a cancelled send delivered nothing.
 *
 * @example
 * ```ts
 * const server = await startHeldRcptServer();
 * const rcpt = server.nextRcpt();
 * // … start a send configured by server.env, await rcpt.reached, cancel it …
 * await rcpt.closed; // the sender has dropped the SMTP connection
 * assert.equal(server.delivered, 0);
 * await server.close();
 * ```
 *
 * {@linkcode startFunctionWithHeldRcpt} puts the function (`deno serve
 * functions/deno.ts`) in front of it, for cancellations that go through HTTP.
 *
 * @module
 */

import { smtpScript, startFaultServer } from "./fault_server.ts";
import { type FunctionServer, startFunction } from "./function_server.ts";

/** One RCPT command the server holds without a reply. */
export interface HeldRcpt {
  /** Resolves once the RCPT command has arrived. */
  reached: Promise<void>;
  /** Resolves once its connection has closed: the sender gave up the transaction. */
  closed: Promise<void>;
}

/** A running {@linkcode startHeldRcptServer}. */
export interface HeldRcptServer {
  /**
   * What a sender needs to reach it (`SMTP_URL`, `SMTP_CA_CERT`, `MAIL_FROM`),
   * with an `SMTP_TIMEOUT_MS` so long that only a cancellation, never a
   * deadline, can end the wait.
   */
  env: Record<string, string>;
  /** Every line received, on every connection (the message content must not be among them). */
  transcript: string[];
  /** How many messages it accepted. */
  readonly delivered: number;
  /** The next RCPT command to arrive; call it before starting the send. */
  nextRcpt(): HeldRcpt;
  /** Stops the server; rejects with an error its script threw. */
  close(): Promise<void>;
}

function heldRcpt() {
  const reached = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  return { reached, closed, view: { reached: reached.promise, closed: closed.promise } };
}

/** Starts the server on a free port of 127.0.0.1 (STARTTLS with the test CA, as usual). */
export async function startHeldRcptServer(): Promise<HeldRcptServer> {
  let next = heldRcpt();
  let delivered = 0;
  const fault = await startFaultServer(smtpScript({
    RCPT: async (conn) => {
      const rcpt = next;
      rcpt.reached.resolve();
      // No reply: the RCPT answer only comes after the client has gone.
      await conn.waitClosed();
      rcpt.closed.resolve();
    },
    message: async (conn) => {
      delivered++;
      await conn.send("250 2.0.0 Ok\r\n");
    },
  }));
  return {
    env: {
      SMTP_URL: `smtp://localhost:${fault.port}`,
      SMTP_CA_CERT: fault.caCert,
      SMTP_TIMEOUT_MS: "600000",
      MAIL_FROM: "app@example.com",
    },
    transcript: fault.transcript,
    get delivered() {
      return delivered;
    },
    nextRcpt() {
      next = heldRcpt();
      return next.view;
    },
    close: () => fault.close(),
  };
}

/** The function in front of a {@linkcode HeldRcptServer}. */
export interface HeldRcptFunction {
  /** `deno serve functions/deno.ts`, sending to `held`. */
  fn: FunctionServer;
  /** The server that holds every RCPT. */
  held: HeldRcptServer;
  /** Stops the function, then the server (an error its script threw is dropped). */
  stop(): Promise<void>;
}

/**
 * Starts a {@linkcode startHeldRcptServer} and the function sending to it,
 * configured by its `env` plus `env` (e.g. `API_KEYS`).
 */
export async function startFunctionWithHeldRcpt(
  env: Record<string, string>,
): Promise<HeldRcptFunction> {
  const held = await startHeldRcptServer();
  const closeHeld = () => held.close().catch(() => {});
  let fn: FunctionServer;
  try {
    fn = await startFunction({ ...held.env, ...env });
  } catch (error) {
    await closeHeld();
    throw error;
  }
  return {
    fn,
    held,
    stop: async () => {
      await fn.stop();
      await closeHeld();
    },
  };
}
