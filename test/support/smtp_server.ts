/**
 * A real SMTP server in the test process: npm:smtp-server (the server half of
 * nodemailer) behind a small test-friendly wrapper. Use it for what Postfix
 * here cannot do — AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2), implicit TLS,
 * servers without PIPELINING/DSN/SMTPUTF8/8BITMIME, refusals chosen per test —
 * and to inspect the envelope, the ESMTP parameters and the message bytes.
 *
 * How smtp-server reports things (checked against smtp-server 3.21):
 * - MAIL/RCPT parameters arrive in {@linkcode ReceivedMessage.fromArgs} and
 *   {@linkcode ReceivedMessage.rcptArgs} with upper-case keys; a keyword
 *   without a value is `true`. Values are **xtext-decoded** (`ENVID=a+2Bb`
 *   arrives as `a+b`; `ORCPT=rfc822;x+40y` as `rfc822;x@y`).
 * - DSN is off in smtp-server by default; this wrapper turns it on (unless
 *   `hideDsn`), so `DSN` is advertised and RET/ENVID/NOTIFY/ORCPT are
 *   validated and collected in {@linkcode ReceivedMessage.dsn}.
 * - ENHANCEDSTATUSCODES is off by default (as in smtp-server). When turned on,
 *   smtp-server picks the enhanced code from the reply code (550 → 5.1.1,
 *   553 → 5.1.3 …): a rejection cannot choose its own.
 * - `raw` is the message content as received after un-dot-stuffing, without
 *   the terminating `.` line.
 *
 * @example
 * ```ts
 * const server = await startSmtpServer({ users: { ann: "secret" }, authMethods: ["PLAIN"] });
 * try {
 *   // … send to server.host:server.port with caCerts [server.caCert] …
 *   const [message] = await server.waitForMessages(1);
 *   assert.equal(message.user, "ann");
 * } finally {
 *   await server.close();
 * }
 * ```
 *
 * @module
 */

import type * as net from "node:net";
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from "smtp-server";
import { generateTestCertificates } from "../../src/dev/test_ca.ts";
import { settleWithin } from "../../src/socket/socket.ts";

const DEFAULT_WAIT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2000;
const POLL_MS = 20;

/** A refusal the server answers with, e.g. `{ code: 550, message: "5.1.1 No such user" }`. */
export interface SmtpRejection {
  /** The reply code (4xx temporary, 5xx permanent). */
  code: number;
  /** The reply text after the code (include an enhanced code yourself if you want one). */
  message: string;
}

/** Options for {@linkcode startSmtpServer}. */
export interface TestSmtpServerOptions {
  /** Implicit TLS (SMTPS, port-465 style). Default `false`. */
  secure?: boolean;
  /** Offer STARTTLS on plain connections. Default `true`. */
  starttls?: boolean;
  /** Refuse MAIL FROM with `530 5.7.0` until the connection is TLS. Default `false`. */
  requireTls?: boolean;
  /** SASL mechanisms to offer, e.g. `["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]`. Default PLAIN, LOGIN. */
  authMethods?: string[];
  /**
   * Username → password (PLAIN, LOGIN, CRAM-MD5) or access token (XOAUTH2).
   * Without `users`, any credentials are accepted.
   */
  users?: Record<string, string>;
  /** Allow mail without AUTH. Default `true` unless `users` is given. */
  authOptional?: boolean;
  /** Allow AUTH before TLS. Default `false` (smtp-server then answers 538). */
  allowInsecureAuth?: boolean;
  /** Senders (case-insensitive) refused at MAIL FROM, with the reply to send. */
  rejectSender?: Record<string, SmtpRejection>;
  /** Recipients (case-insensitive) refused at RCPT TO, with the reply to send. */
  rejectRecipients?: Record<string, SmtpRejection>;
  /** Advertise `SIZE n` and refuse bigger messages (declared or actual) with 552. */
  size?: number;
  /** Do not advertise PIPELINING. */
  hidePipelining?: boolean;
  /** Do not advertise (nor accept) DSN. */
  hideDsn?: boolean;
  /** Do not advertise SMTPUTF8. */
  hideSmtputf8?: boolean;
  /** Do not advertise 8BITMIME. */
  hide8bitmime?: boolean;
  /** Advertise ENHANCEDSTATUSCODES and add enhanced codes to replies. Default `false`. */
  enhancedStatusCodes?: boolean;
  /** Answer EHLO with `500` so that clients fall back to HELO. */
  disableEhlo?: boolean;
  /**
   * Called with each complete message before it is accepted. Return a
   * rejection to refuse it at the end of data (it is then not recorded).
   */
  onData?: (
    message: ReceivedMessage,
  ) => SmtpRejection | undefined | void | Promise<SmtpRejection | undefined | void>;
}

/** DSN parameters of one transaction. */
export interface ReceivedDsn {
  /** `RET` from MAIL FROM (`FULL` or `HDRS`), upper case, or `null`. */
  ret: string | null;
  /** `ENVID` from MAIL FROM, xtext-decoded, or `null`. */
  envid: string | null;
  /** Per accepted recipient: `NOTIFY` values (upper case) and `ORCPT` (decoded). */
  recipients: { address: string; notify?: string[]; orcpt?: string }[];
}

/** One message the server accepted. */
export interface ReceivedMessage {
  /** MAIL FROM address; `""` for the null sender. */
  from: string;
  /** MAIL FROM parameters (upper-case keys; `true` for a bare keyword). */
  fromArgs: Record<string, string | boolean>;
  /** Accepted RCPT TO addresses, in order. */
  to: string[];
  /** Parameters of each accepted RCPT TO, same order as `to`. */
  rcptArgs: Record<string, string | boolean>[];
  /** The message bytes (un-dot-stuffed, without the final `.` line). */
  raw: Uint8Array;
  /** `raw` decoded as UTF-8. */
  text: string;
  /** The authenticated username, if the client authenticated. */
  user?: string;
  /** Whether the message came over TLS. */
  secure: boolean;
  /** DSN parameters (absent when the server hides DSN). */
  dsn?: ReceivedDsn;
  /** Whether MAIL FROM carried `SMTPUTF8`. */
  smtpUtf8: boolean;
  /** `BODY=` of MAIL FROM, lower case (`7bit` when absent, `8bitmime`). */
  bodyType: string;
  /** smtp-server's id of the connection: equal ids mean a reused connection. */
  sessionId: string;
}

/** One AUTH attempt (credentials are never recorded). */
export interface AuthAttempt {
  /** `PLAIN`, `LOGIN`, `CRAM-MD5` or `XOAUTH2`. */
  method: string;
  /** The username the client gave. */
  username: string;
  /** Whether the credentials were accepted. */
  ok: boolean;
}

/** A running test SMTP server. */
export interface TestSmtpServer {
  /** Always `127.0.0.1`. */
  host: "127.0.0.1";
  /** The listening port. */
  port: number;
  /** PEM of the CA that signed the server certificate (for `localhost`, `127.0.0.1`, `::1`). */
  caCert: string;
  /** Accepted messages, in order. */
  messages: ReceivedMessage[];
  /** Every AUTH attempt, in order. */
  authAttempts: AuthAttempt[];
  /**
   * Every command line received, on all connections, in order (as smtp-server
   * logs them: AUTH arguments and continuation lines replaced by `/* secured *\/`;
   * message content is not included).
   */
  commands: string[];
  /** Every reply sent, on all connections, in order (multi-line replies joined with CRLF). */
  replies: string[];
  /** How many connections were accepted so far. */
  readonly connections: number;
  /** Resolves with `messages` once it holds at least `count`; rejects after `timeoutMs` (10 s). */
  waitForMessages(count: number, options?: { timeoutMs?: number }): Promise<ReceivedMessage[]>;
  /** Stops listening and drops open connections. Safe to call repeatedly; settles within 2 s. */
  close(): Promise<void>;
}

/** Starts an smtp-server on a free port of 127.0.0.1. */
export async function startSmtpServer(
  options: TestSmtpServerOptions = {},
): Promise<TestSmtpServer> {
  const { caCert, cert, key } = await generateTestCertificates();
  const messages: ReceivedMessage[] = [];
  const authAttempts: AuthAttempt[] = [];
  const commands: string[] = [];
  const replies: string[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;

  const server = new SMTPServer({
    ...serverOptions(options, { cert, key }),
    logger: captureLogger(commands, replies),
    onAuth: (auth, session, callback) =>
      callback(null, ...authenticate(auth, session, options, authAttempts)),
    onMailFrom: (address, session, callback) => {
      if (options.requireTls && !session.secure) {
        return callback(
          refusal({ code: 530, message: "5.7.0 Must issue a STARTTLS command first" }),
        );
      }
      callback(refusal(lookup(options.rejectSender, address.address)));
    },
    onRcptTo: (address, _session, callback) => {
      callback(refusal(lookup(options.rejectRecipients, address.address)));
    },
    onData: (stream, session, callback) => {
      receive(stream, session, options).then(
        (result) => {
          if (result.message) messages.push(result.message);
          callback(refusal(result.rejection));
        },
        (error) => callback(error),
      );
    },
  });
  server.server.on("connection", (socket: net.Socket) => {
    accepted++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("error", () => {
    // Client-side faults (resets, bad TLS) are the client's business in these tests.
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as net.AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    host: "127.0.0.1",
    port,
    caCert,
    messages,
    authAttempts,
    commands,
    replies,
    get connections() {
      return accepted;
    },
    async waitForMessages(count, waitOptions = {}) {
      const deadline = Date.now() + (waitOptions.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
      while (messages.length < count) {
        if (Date.now() >= deadline) {
          throw new Error(
            `smtp-server received ${messages.length} message(s), expected ${count}; ` +
              `last commands: ${commands.slice(-10).join(" | ") || "none"}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      return messages;
    },
    close() {
      closed ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // server.close() waits for clients: drop them instead.
        for (const socket of sockets) socket.destroy();
        await settleWithin(stopped, CLOSE_TIMEOUT_MS);
      })();
      return closed;
    },
  };
}

function serverOptions(
  options: TestSmtpServerOptions,
  tls: { cert: string; key: string },
): SMTPServerOptions {
  const disabled: string[] = [];
  if (options.starttls === false) disabled.push("STARTTLS");
  if (options.disableEhlo) disabled.push("EHLO");
  return {
    ...tls,
    name: "smtp-server.test",
    secure: options.secure ?? false,
    disabledCommands: disabled,
    authMethods: options.authMethods ?? ["PLAIN", "LOGIN"],
    authOptional: options.authOptional ?? options.users === undefined,
    allowInsecureAuth: options.allowInsecureAuth ?? false,
    size: options.size,
    rejectOversized: options.size !== undefined,
    hidePIPELINING: options.hidePipelining ?? false,
    hideDSN: options.hideDsn ?? false,
    hideSMTPUTF8: options.hideSmtputf8 ?? false,
    hide8BITMIME: options.hide8bitmime ?? false,
    hideENHANCEDSTATUSCODES: !(options.enhancedStatusCodes ?? false),
    // No DNS here: a reverse lookup of 127.0.0.1 would only delay the greeting.
    disableReverseLookup: true,
    closeTimeout: 100,
  } as SMTPServerOptions;
}

/** A bunyan-style logger that keeps the command and reply lines. */
function captureLogger(commands: string[], replies: string[]) {
  const ignore = () => {};
  return {
    trace: ignore,
    info: ignore,
    warn: ignore,
    error: ignore,
    fatal: ignore,
    debug: (entry: { tnx?: string }, _prefix: string, line: unknown) => {
      if (entry?.tnx === "command") commands.push(String(line));
      else if (entry?.tnx === "send") replies.push(String(line));
    },
  };
}

function authenticate(
  auth: SMTPServerAuthentication,
  _session: SMTPServerSession,
  options: TestSmtpServerOptions,
  attempts: AuthAttempt[],
): [SMTPServerAuthenticationResponse] {
  const username = auth.username ?? "";
  const expected = options.users?.[username];
  let ok: boolean;
  if (!options.users) ok = true;
  else if (expected === undefined) ok = false;
  else if (auth.method === "CRAM-MD5") ok = auth.validatePassword(expected);
  else if (auth.method === "XOAUTH2") ok = auth.accessToken === expected;
  else ok = auth.password === expected;
  attempts.push({ method: auth.method, username, ok });
  if (ok) return [{ user: username }];
  if (auth.method === "XOAUTH2") {
    // The RFC's error challenge; smtp-server answers the client's empty line with 535.
    return [{ data: { status: "401", schemes: "bearer", scope: "https://mail.test/" } }];
  }
  return [{ responseCode: 535, message: "5.7.8 Authentication credentials invalid" }];
}

function lookup(
  table: Record<string, SmtpRejection> | undefined,
  address: string,
): SmtpRejection | undefined {
  if (!table) return undefined;
  const wanted = address.toLowerCase();
  for (const [key, rejection] of Object.entries(table)) {
    if (key.toLowerCase() === wanted) return rejection;
  }
  return undefined;
}

/** smtp-server signals a refusal with an Error carrying `responseCode`. */
function refusal(rejection: SmtpRejection | undefined): Error | null {
  if (!rejection) return null;
  return Object.assign(new Error(rejection.message), { responseCode: rejection.code });
}

async function receive(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  options: TestSmtpServerOptions,
): Promise<{ message?: ReceivedMessage; rejection?: SmtpRejection }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk as Uint8Array);
  if (stream.sizeExceeded) {
    return { rejection: { code: 552, message: "5.3.4 Message too big" } };
  }
  const message = toMessage(concat(chunks), session);
  const rejection = (await options.onData?.(message)) ?? undefined;
  return rejection ? { rejection } : { message };
}

function toMessage(raw: Uint8Array, session: SMTPServerSession): ReceivedMessage {
  const envelope = session.envelope;
  const mailFrom = envelope.mailFrom as SMTPServerAddress;
  const message: ReceivedMessage = {
    from: mailFrom.address,
    fromArgs: { ...(mailFrom.args || {}) },
    to: envelope.rcptTo.map((rcpt) => rcpt.address),
    rcptArgs: envelope.rcptTo.map((rcpt) => ({ ...(rcpt.args || {}) })),
    raw,
    text: new TextDecoder().decode(raw),
    secure: session.secure,
    smtpUtf8: envelope.smtpUtf8 ?? false,
    bodyType: envelope.bodyType ?? "7bit",
    sessionId: session.id,
  };
  if (session.user !== undefined) message.user = String(session.user);
  if (envelope.dsn) {
    message.dsn = {
      ret: envelope.dsn.ret,
      envid: envelope.dsn.envid,
      recipients: envelope.rcptTo.map((rcpt) => ({ address: rcpt.address, ...rcpt.dsn })),
    };
  }
  return message;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
