/**
 * The embedded development mail server of `deno task dev`: npm:smtp-server on
 * loopback, with STARTTLS on a throw-away test CA (so the development path
 * exercises TLS and AUTH like production), any credentials accepted, and every
 * message stored in the outbox folder (see `outbox.ts`). Never used in
 * production.
 *
 * @module
 */

import { SMTPServer } from "smtp-server";
import type { SMTPServerDataStream } from "smtp-server";
import { type SavedOutboxMessage, saveOutboxMessage } from "./outbox.ts";
import { generateTestCertificates, type TestCertificates } from "./test_ca.ts";

/** The default port of the development mail server. */
export const DEV_SMTP_PORT = 2525;

/** The largest message the development server accepts (50 MiB). */
export const DEV_MAX_MESSAGE_BYTES = 50 * 1024 * 1024;

/** Options for {@linkcode startDevMailServer}. */
export interface DevMailServerOptions {
  /** TCP port; `0` picks a free one. Default {@linkcode DEV_SMTP_PORT}. */
  port?: number;
  /** Address to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** The outbox folder the messages are stored in (created when missing). */
  outboxDir: string;
  /** TLS material; generated fresh when omitted. */
  certificates?: TestCertificates;
  /** Largest message accepted, in bytes. Default {@linkcode DEV_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Called with each message stored, e.g. to log it. */
  onMessage?: (message: SavedOutboxMessage) => void;
  /**
   * Wait this long before accepting each recipient (`DEV_SMTP_DELAY_MS`): a
   * slow server, to try cancelling a send before its data is written. Default 0.
   */
  recipientDelayMs?: number;
}

/** A running development mail server. */
export interface DevMailServer {
  /** The port it listens on (the real one when `0` was asked for). */
  port: number;
  /** The address it listens on. */
  hostname: string;
  /** The CA certificate (PEM) clients must trust for STARTTLS. */
  caCert: string;
  /** Stops listening and closes open sessions. */
  close(): Promise<void>;
}

/**
 * Starts the development mail server. It offers STARTTLS with a certificate for
 * `localhost`, `127.0.0.1` and `::1` issued by `caCert`, accepts AUTH (PLAIN,
 * LOGIN, CRAM-MD5, XOAUTH2) with any credentials after STARTTLS, also accepts
 * mail without AUTH, and stores every message byte for byte in `outboxDir`.
 * Rejects when it cannot listen (port in use, say).
 */
export async function startDevMailServer(options: DevMailServerOptions): Promise<DevMailServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? DEV_SMTP_PORT;
  const certificates = options.certificates ?? await generateTestCertificates();
  const maxMessageBytes = options.maxMessageBytes ?? DEV_MAX_MESSAGE_BYTES;
  await Deno.mkdir(options.outboxDir, { recursive: true });

  const server = new SMTPServer({
    name: "localhost",
    banner: "edgemail development mail server",
    key: certificates.key,
    cert: certificates.cert,
    size: maxMessageBytes,
    authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
    authOptional: true,
    // No DNS look-ups for connecting clients: loopback only, and no network needed.
    disableReverseLookup: true,
    logger: false,
    // Pooled client connections would otherwise hold shutdown for 30 s.
    closeTimeout: 1000,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username ?? "dev" });
    },
    onRcptTo(_address, _session, callback) {
      const delay = options.recipientDelayMs ?? 0;
      if (delay > 0) setTimeout(() => callback(), delay);
      else callback();
    },
    onData(stream, _session, callback) {
      store(stream, options.outboxDir, maxMessageBytes).then((saved) => {
        options.onMessage?.(saved);
        callback(null);
      }, (error) => callback(replyFor(error)));
    },
  });

  await listen(server, port, hostname);
  // Client sessions that break off (ECONNRESET and the like) are reported here;
  // without a listener the EventEmitter would throw and end the dev server.
  server.on("error", (error) => {
    console.error(`edgemail dev mail server: ${error.message}`);
  });
  const address = server.server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : port,
    hostname,
    caCert: certificates.caCert,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function listen(server: SMTPServer, port: number, hostname: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error & { code?: string }) => {
      const reason = error.code === "EADDRINUSE" ? "the port is in use" : error.message;
      reject(
        new Error(
          `The development mail server cannot listen on ${hostname}:${port} (${reason}): ` +
            "set DEV_SMTP_PORT to a free port, or set SMTP_URL to use a real SMTP server.",
          { cause: error },
        ),
      );
    };
    server.once("error", onError);
    server.listen(port, hostname, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Saves one message; rejects with {@linkcode MessageTooLarge} when it went over the limit. */
function store(
  stream: SMTPServerDataStream,
  outboxDir: string,
  maxMessageBytes: number,
): Promise<SavedOutboxMessage> {
  return saveOutboxMessage(outboxDir, ReadableStream.from(withinLimit(stream, maxMessageBytes)));
}

class MessageTooLarge extends Error {}

/**
 * The message's bytes; fails at the end (the stream is always read to its end,
 * as smtp-server requires) when it went over the size limit, so that no
 * oversized message is ever stored.
 */
async function* withinLimit(
  stream: SMTPServerDataStream,
  limit: number,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    if (!stream.sizeExceeded) yield chunk;
  }
  if (stream.sizeExceeded) {
    throw new MessageTooLarge(
      `Message exceeds the fixed maximum message size (${limit} bytes)`,
    );
  }
}

/** The SMTP reply for a message that could not be stored. */
function replyFor(error: unknown): Error {
  if (error instanceof MessageTooLarge) {
    return Object.assign(new Error(error.message), { responseCode: 552 });
  }
  const reason = error instanceof Error ? error.message : String(error);
  console.error(`edgemail dev mail server: could not store a message: ${reason}`);
  return Object.assign(new Error("Could not store the message in the outbox"), {
    responseCode: 451,
  });
}
