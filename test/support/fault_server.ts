/**
 * A scripted SMTP server on raw TCP, for the faults no real server produces on
 * demand: replies split across reads, connections dropped mid-reply or after
 * the data, garbage, oversized or slow replies, a STARTTLS that goes wrong.
 *
 * Each accepted connection runs the test's handler with a
 * {@linkcode FaultConnection}: the handler writes exactly the bytes it wants
 * and reads what the client sent. {@linkcode smtpScript} builds a handler for
 * the happy path so that a test only overrides the step it breaks.
 *
 * Built on `node:net` / `node:tls` because Deno has no server-side STARTTLS.
 *
 * Also here: {@linkcode connectRaw}, a byte-exact client for talking to any
 * server by hand (the self-tests use it against this server and Postfix).
 *
 * @example
 * ```ts
 * const server = await startFaultServer(smtpScript({
 *   // The connection drops after the whole message: the outcome is unknown.
 *   message: (conn) => conn.destroy(),
 * }));
 * try {
 *   // … send to server.host:server.port, expect an `unknown_outcome` error …
 * } finally {
 *   await server.close(); // rethrows an error thrown by the script
 * }
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import * as net from "node:net";
import * as tls from "node:tls";
import { generateTestCertificates, type TestCertificateOptions } from "../../src/dev/test_ca.ts";
import { settleWithin } from "../../src/socket/socket.ts";

const CRLF = Buffer.from("\r\n");
const END_OF_DATA = Buffer.from("\r\n.\r\n");
const EMPTY_DATA = Buffer.from(".\r\n");
const DEFAULT_PIECE_PAUSE_MS = 20;
const SOCKET_CLOSE_TIMEOUT_MS = 1000;
const HANDLER_SETTLE_TIMEOUT_MS = 2000;

/** The server side of one connection, as a fault script sees it. */
export interface FaultConnection {
  /** Whether the connection is TLS (implicit, or after {@linkcode startTls}). */
  readonly secure: boolean;
  /** Everything received on this connection so far (plaintext, UTF-8 decoded). */
  readonly received: string;
  /** The same as bytes. */
  readonly receivedBytes: Uint8Array;
  /**
   * What arrived, one entry per read of the socket (UTF-8 decoded): bytes the
   * client wrote at once arrive in one read, so this shows how it grouped them.
   */
  readonly reads: readonly string[];
  /** Bytes received that no `readLine`/`readData`/`readBytes` has consumed yet. */
  readonly buffered: number;
  /** Whether the peer or the script has closed the connection. */
  readonly closed: boolean;
  /**
   * Writes `text` as one write with no-delay. Resolves `true` once written,
   * `false` if the connection is already closed (never rejects).
   */
  send(text: string): Promise<boolean>;
  /**
   * Writes `text` in pieces split at the given offsets (`[3]` sends `"250"`
   * then the rest), pausing `pauseMs` (default 20) between writes — or awaiting
   * `between`, which makes the split deterministic — so the client sees
   * separate reads. Resolves `false` if the connection closed on the way.
   */
  sendInPieces(text: string, offsets: number[], options?: SendInPiecesOptions): Promise<boolean>;
  /**
   * The next CRLF-terminated line, without the CRLF; `null` once the peer has
   * closed (a partial last line stays only in {@linkcode received}). A bare LF
   * does not end a line: it is part of the returned text.
   */
  readLine(): Promise<string | null>;
  /**
   * Message content after a `354`: everything up to and including the
   * terminating `CRLF.CRLF` (or just `.CRLF` for an empty message), raw —
   * still dot-stuffed. `null` if the peer closed before the end.
   */
  readData(): Promise<string | null>;
  /**
   * Reads exactly `count` bytes (e.g. a `BDAT` chunk), decoded as UTF-8;
   * `null` if the peer closed first.
   */
  readBytes(count: number): Promise<string | null>;
  /**
   * Upgrades to TLS as the server, with the test certificate (after the
   * script has sent its `220` to STARTTLS). Bytes the client sent before the
   * upgrade and the script has not read are discarded (they stay in
   * {@linkcode received}). Call it right after sending the `220` (no pause in
   * between: a ClientHello that arrived first would be discarded as plaintext).
   * Rejects when the handshake fails (e.g. the client refused the certificate).
   */
  startTls(): Promise<void>;
  /**
   * Resolves when the connection has closed (either side). A script that must
   * stay silent — to test a client's deadline — awaits this.
   */
  waitClosed(): Promise<void>;
  /** Ends the connection gracefully (FIN) and waits, briefly, for it to close. */
  close(): Promise<void>;
  /** Drops the connection at once, discarding unsent data. */
  destroy(): void;
  /**
   * Stops reading from the socket (a zero-window receiver): once the kernel
   * buffers are full, the client's writes stall. Nothing more arrives in
   * {@linkcode received} until {@linkcode resumeReading}.
   */
  pauseReading(): void;
  /** Reads again after {@linkcode pauseReading}: what the client had sent arrives. */
  resumeReading(): void;
}

/** Options of {@linkcode FaultConnection.sendInPieces}. */
export interface SendInPiecesOptions {
  /** Pause between writes, in milliseconds (default 20); ignored when `between` is given. */
  pauseMs?: number;
  /**
   * Awaited between writes instead of a pause: a test resolves it once the
   * client has read the piece before (seen through its socket), so each piece
   * is a separate read for the client whatever the load.
   */
  between?: (piece: number) => Promise<void>;
}

/** A handler run once per accepted connection. */
export type FaultHandler = (conn: FaultConnection) => Promise<void> | void;

/** Options for {@linkcode startFaultServer}. */
export interface FaultServerOptions {
  /** Implicit TLS (SMTPS): every connection is TLS before the handler runs. */
  implicitTls?: boolean;
  /**
   * Names in the server certificate (default `localhost`, `127.0.0.1`, `::1`):
   * give others to test a client that must refuse a certificate for the wrong host.
   */
  certificate?: TestCertificateOptions;
}

/** A running fault server. */
export interface FaultServer {
  /** Always `127.0.0.1`. */
  host: "127.0.0.1";
  /** The listening port. */
  port: number;
  /** PEM of the CA that signed the server certificate (for `localhost`, `127.0.0.1`, `::1` by default). */
  caCert: string;
  /** How many connections were accepted so far. */
  readonly connections: number;
  /** Every line received, on every connection, in arrival order (without CRLF). */
  transcript: string[];
  /** Errors thrown by handlers so far (also rethrown by {@linkcode close}). */
  errors: unknown[];
  /**
   * Stops listening, drops open connections and waits for the handlers.
   * Rejects with the first error a handler threw before `close()` was called
   * (errors thrown afterwards, while connections are torn down, are ignored).
   */
  close(): Promise<void>;
}

/** Starts a fault server on a free port of 127.0.0.1. */
export async function startFaultServer(
  handler: FaultHandler,
  options: FaultServerOptions = {},
): Promise<FaultServer> {
  const { caCert, cert, key } = await generateTestCertificates(options.certificate);
  const secureContext = tls.createSecureContext({ cert, key });
  const transcript: string[] = [];
  const errors: unknown[] = [];
  const open = new Set<Connection>();
  const running = new Set<Promise<void>>();
  let accepted = 0;
  let closing = false;

  const server = net.createServer((socket) => {
    accepted++;
    const conn = new Connection(socket, secureContext, transcript);
    open.add(conn);
    const run = (async () => {
      try {
        if (options.implicitTls) await conn.startTls();
        await handler(conn);
      } catch (error) {
        if (!closing) errors.push(error);
      } finally {
        conn.destroy();
        open.delete(conn);
      }
    })();
    running.add(run);
    run.finally(() => running.delete(run));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    host: "127.0.0.1",
    port,
    caCert,
    get connections() {
      return accepted;
    },
    transcript,
    errors,
    async close() {
      if (!closing) {
        closing = true;
        const firstError = errors.length > 0 ? errors[0] : undefined;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const conn of open) conn.destroy();
        // A script stuck on something other than its connection must not hang the test.
        await settleWithin(Promise.allSettled([...running]), HANDLER_SETTLE_TIMEOUT_MS);
        await stopped;
        if (firstError !== undefined) throw firstError;
      }
    },
  };
}

class Connection implements FaultConnection {
  #socket: net.Socket;
  #secureContext: tls.SecureContext;
  #transcript: string[];
  /** Unconsumed bytes: a view into `#store`, which grows by doubling (no copy per read). */
  #pending: Buffer = Buffer.alloc(0);
  #store: Buffer = this.#pending;
  #lineTail: Buffer = Buffer.alloc(0);
  #chunks: Buffer[] = [];
  #wake: (() => void) | undefined;
  #onClosed: (() => void)[] = [];
  #ended = false;
  #closed = false;
  #secure = false;

  constructor(socket: net.Socket, secureContext: tls.SecureContext, transcript: string[]) {
    this.#socket = socket;
    this.#secureContext = secureContext;
    this.#transcript = transcript;
    this.#attach(socket);
  }

  get secure(): boolean {
    return this.#secure;
  }

  get received(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }

  get receivedBytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.#chunks));
  }

  get reads(): readonly string[] {
    return this.#chunks.map((chunk) => chunk.toString("utf8"));
  }

  get buffered(): number {
    return this.#pending.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(text: string): Promise<boolean> {
    if (this.#closed || this.#socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#socket.write(text, (error) => resolve(!error));
    });
  }

  async sendInPieces(
    text: string,
    offsets: number[],
    options: SendInPiecesOptions = {},
  ): Promise<boolean> {
    const cuts = [...new Set(offsets)].filter((n) => n > 0 && n < text.length).sort((a, b) =>
      a - b
    );
    const bounds = [0, ...cuts, text.length];
    for (let i = 0; i < bounds.length - 1; i++) {
      if (i > 0) {
        if (options.between) await options.between(i);
        else await delay(options.pauseMs ?? DEFAULT_PIECE_PAUSE_MS);
      }
      if (!await this.send(text.slice(bounds[i], bounds[i + 1]))) return false;
    }
    return true;
  }

  readLine(): Promise<string | null> {
    return this.#take((buffer, from) => {
      const end = buffer.indexOf(CRLF, Math.max(0, from - 1));
      return end < 0 ? -1 : end + CRLF.length;
    }, CRLF.length);
  }

  readData(): Promise<string | null> {
    return this.#take((buffer, from) => {
      if (buffer.subarray(0, EMPTY_DATA.length).equals(EMPTY_DATA)) return EMPTY_DATA.length;
      const end = buffer.indexOf(END_OF_DATA, Math.max(0, from - (END_OF_DATA.length - 1)));
      return end < 0 ? -1 : end + END_OF_DATA.length;
    }, 0);
  }

  readBytes(count: number): Promise<string | null> {
    return this.#take((buffer) => (buffer.length >= count ? count : -1), 0);
  }

  startTls(): Promise<void> {
    const raw = this.#socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("end");
    raw.removeAllListeners("close");
    // Plaintext sent before the upgrade must never count as sent over TLS.
    this.#pending = this.#store = Buffer.alloc(0);
    this.#lineTail = Buffer.alloc(0);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#secureContext });
    this.#socket = secure;
    this.#attach(secure);
    return new Promise<void>((resolve, reject) => {
      const fail = (error?: Error) => {
        secure.destroy();
        reject(error ?? new Error("The connection closed during the TLS handshake."));
      };
      secure.once("secure", () => {
        secure.off("error", fail);
        secure.off("close", onClose);
        this.#secure = true;
        resolve();
      });
      const onClose = () => fail();
      secure.once("error", fail);
      secure.once("close", onClose);
    });
  }

  waitClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#onClosed.push(resolve));
  }

  close(): Promise<void> {
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#socket.destroy();
        resolve();
      }, SOCKET_CLOSE_TIMEOUT_MS);
      this.#socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.#socket.end();
    });
  }

  destroy(): void {
    this.#socket.destroy();
    this.#finish();
  }

  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#socket.resume();
  }

  #attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("end", () => this.#finish());
    socket.on("close", () => this.#finish());
    // Errors (ECONNRESET…) end the connection; reads then return null.
    socket.on("error", () => this.#finish());
  }

  #receive(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#append(chunk);
    this.#lineTail = Buffer.concat([this.#lineTail, chunk]);
    for (let end = this.#lineTail.indexOf(CRLF); end >= 0; end = this.#lineTail.indexOf(CRLF)) {
      this.#transcript.push(this.#lineTail.subarray(0, end).toString("utf8"));
      this.#lineTail = this.#lineTail.subarray(end + CRLF.length);
    }
    this.#notify();
  }

  /** Appends `chunk` to the pending bytes, in place when the store has room. */
  #append(chunk: Buffer): void {
    const start = this.#pending.byteOffset - this.#store.byteOffset;
    const length = this.#pending.length + chunk.length;
    if (start + length > this.#store.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * length, 64 * 1024));
      this.#pending.copy(grown, 0);
      this.#store = grown;
      this.#pending = grown.subarray(0, this.#pending.length);
    }
    const offset = this.#pending.byteOffset - this.#store.byteOffset;
    chunk.copy(this.#store, offset + this.#pending.length);
    this.#pending = this.#store.subarray(offset, offset + length);
  }

  #finish(): void {
    this.#ended = true;
    this.#closed = true;
    this.#notify();
    for (const resolve of this.#onClosed.splice(0)) resolve();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Waits until `measure` finds a complete item in the pending bytes (it
   * returns the item's length including its terminator), consumes it and
   * returns it without the last `strip` bytes.
   */
  async #take(
    measure: (buffer: Buffer, from: number) => number,
    strip: number,
  ): Promise<string | null> {
    // Bytes already searched need no second look (a 20 MB message arrives in many reads).
    let searched = 0;
    for (;;) {
      const length = measure(this.#pending, searched);
      searched = this.#pending.length;
      if (length >= 0) {
        const item = this.#pending.subarray(0, length - strip).toString("utf8");
        this.#pending = this.#pending.subarray(length);
        return item;
      }
      if (this.#ended || this.#socket.destroyed) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

/** A reply (a string, CRLF added when missing) or a function that does the step itself. */
export type ScriptStep = string | ((conn: FaultConnection, line: string) => Promise<void> | void);

/** Options for {@linkcode smtpScript}: every step is optional and has a happy default. */
export interface SmtpScriptOptions {
  /** The greeting. Default `220 fault.test ESMTP ready`. */
  greeting?: ScriptStep;
  /**
   * EHLO keywords (after the `250-fault.test` line). Default
   * `["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE 10485760",
   * "STARTTLS"]`. A string or function `EHLO` step replaces the whole reply.
   */
  capabilities?: string[];
  /** EHLO keywords once TLS is on. Default: `capabilities` without `STARTTLS`. */
  capabilitiesAfterTls?: string[];
  /** EHLO step; default: the capability list as a multi-line 250 reply. */
  EHLO?: ScriptStep;
  /** HELO step; default `250 fault.test`. */
  HELO?: ScriptStep;
  /** STARTTLS step; default `220 2.0.0 Ready to start TLS`, then the upgrade. */
  STARTTLS?: ScriptStep;
  /** AUTH step; default: PLAIN/LOGIN/XOAUTH2/CRAM-MD5 exchanges that all succeed (235). */
  AUTH?: ScriptStep;
  /** MAIL step; default `250 2.1.0 Ok`. */
  MAIL?: ScriptStep;
  /** RCPT step (called per recipient); default `250 2.1.5 Ok`. */
  RCPT?: ScriptStep;
  /**
   * DATA step; default `354 End data with <CR><LF>.<CR><LF>`. A string reply
   * starting with 354 still reads the content and runs the `message` step.
   */
  DATA?: ScriptStep;
  /**
   * The reply to the end of the data (or to `BDAT … LAST`). The function form
   * gets the raw content as `line`. Default `250 2.0.0 Ok: queued as FAULT<n>`.
   */
  message?: ScriptStep;
  /** BDAT step; default: reads the chunk, `250 2.0.0 <n> octets received`, `message` after LAST. */
  BDAT?: ScriptStep;
  /** RSET step; default `250 2.0.0 Ok`. */
  RSET?: ScriptStep;
  /** NOOP step; default `250 2.0.0 Ok`. */
  NOOP?: ScriptStep;
  /** QUIT step; default `221 2.0.0 Bye`, then the server closes. */
  QUIT?: ScriptStep;
  /** Any other command; default `500 5.5.1 Command not recognized`. */
  unknown?: ScriptStep;
}

const DEFAULT_CAPABILITIES = [
  "PIPELINING",
  "8BITMIME",
  "SMTPUTF8",
  "ENHANCEDSTATUSCODES",
  "SIZE 10485760",
  "STARTTLS",
];

/**
 * A handler that plays a well-behaved SMTP server, except for the steps given
 * in `options`. A step given as a string is sent as the reply; a step given as
 * a function runs instead of the default and must reply itself (or not). The
 * session ends after QUIT, when the client goes away, or when a step closes
 * the connection.
 */
export function smtpScript(options: SmtpScriptOptions = {}): FaultHandler {
  let queued = 0;
  const capabilities = options.capabilities ?? DEFAULT_CAPABILITIES;
  const afterTls = options.capabilitiesAfterTls ??
    capabilities.filter((keyword) => keyword.toUpperCase() !== "STARTTLS");

  const defaults: Record<string, (conn: FaultConnection, line: string) => Promise<void>> = {
    EHLO: async (conn) => {
      await conn.send(multiline(250, ["fault.test", ...(conn.secure ? afterTls : capabilities)]));
    },
    HELO: async (conn) => void await conn.send("250 fault.test\r\n"),
    STARTTLS: async (conn) => {
      await conn.send("220 2.0.0 Ready to start TLS\r\n");
      await conn.startTls();
    },
    AUTH: (conn, line) => defaultAuth(conn, line),
    MAIL: async (conn) => void await conn.send("250 2.1.0 Ok\r\n"),
    RCPT: async (conn) => void await conn.send("250 2.1.5 Ok\r\n"),
    DATA: async (conn) => void await conn.send("354 End data with <CR><LF>.<CR><LF>\r\n"),
    message: async (conn) => void await conn.send(`250 2.0.0 Ok: queued as FAULT${++queued}\r\n`),
    BDAT: async (conn, line) => {
      const [, size, last] = line.split(/\s+/);
      const chunk = await conn.readBytes(Number(size));
      if (chunk === null) return;
      if (last?.toUpperCase() === "LAST") await runStep("message", conn, chunk);
      else await conn.send(`250 2.0.0 ${size} octets received\r\n`);
    },
    RSET: async (conn) => void await conn.send("250 2.0.0 Ok\r\n"),
    NOOP: async (conn) => void await conn.send("250 2.0.0 Ok\r\n"),
    QUIT: async (conn) => {
      await conn.send("221 2.0.0 Bye\r\n");
      await conn.close();
    },
    unknown: async (conn) => void await conn.send("500 5.5.1 Command not recognized\r\n"),
    greeting: async (conn) => void await conn.send("220 fault.test ESMTP ready\r\n"),
  };

  async function runStep(name: string, conn: FaultConnection, line: string): Promise<void> {
    const step = (options as Record<string, ScriptStep | undefined>)[name];
    if (step === undefined) return await defaults[name](conn, line);
    if (typeof step === "function") return await step(conn, line);
    await conn.send(step.endsWith("\r\n") ? step : `${step}\r\n`);
  }

  return async (conn) => {
    await runStep("greeting", conn, "");
    while (!conn.closed) {
      const line = await conn.readLine();
      if (line === null) return;
      const verb = line.split(" ")[0].toUpperCase();
      const name = verb in defaults && verb !== "message" && verb !== "greeting" &&
          verb !== "unknown"
        ? verb
        : "unknown";
      await runStep(name, conn, line);
      if (name === "DATA" && wantsContent(options.DATA)) {
        const content = await conn.readData();
        if (content === null) return;
        await runStep("message", conn, content);
      }
    }
  };
}

/** The default DATA step and string replies starting with 354 are followed by content. */
function wantsContent(step: ScriptStep | undefined): boolean {
  return step === undefined || (typeof step === "string" && step.startsWith("354"));
}

/** Accepts any credentials, walking through each mechanism's challenges. */
async function defaultAuth(conn: FaultConnection, line: string): Promise<void> {
  const [, mechanism = "", initial] = line.split(/\s+/);
  const ask = async (challenge: string): Promise<boolean> => {
    await conn.send(`334 ${challenge}\r\n`);
    const answer = await conn.readLine();
    return answer !== null && answer !== "*";
  };
  let ok = true;
  switch (mechanism.toUpperCase()) {
    case "PLAIN":
    case "XOAUTH2":
      if (initial === undefined) ok = await ask("");
      break;
    case "LOGIN":
      if (initial === undefined) ok = await ask(btoa("Username:"));
      if (ok) ok = await ask(btoa("Password:"));
      break;
    case "CRAM-MD5":
      ok = await ask(btoa("<1.1@fault.test>"));
      break;
    default:
      await conn.send("504 5.5.4 Unrecognized authentication type\r\n");
      return;
  }
  await conn.send(
    ok ? "235 2.7.0 Authentication successful\r\n" : "501 5.7.0 Authentication cancelled\r\n",
  );
}

/** Formats a multi-line reply: `250-a`, `250-b`, `250 c`. */
export function multiline(code: number, lines: string[]): string {
  return lines.map((text, i) => `${code}${i === lines.length - 1 ? " " : "-"}${text}\r\n`).join(
    "",
  );
}

/** A byte-exact SMTP client for talking to a server by hand in tests. */
export interface RawClient {
  /** Whether the connection is TLS. */
  readonly secure: boolean;
  /** Writes `text` exactly as given (add the CRLF yourself), in one write. */
  send(text: string): Promise<void>;
  /**
   * Reads one complete reply (all lines up to the one with a space after the
   * code) and returns its lines joined with CRLF, without the final CRLF;
   * `null` if the server closed first.
   */
  readReply(): Promise<string | null>;
  /** Upgrades to TLS (send STARTTLS and read the 220 first), trusting `caCert`. */
  startTls(caCert: string, hostname?: string): Promise<void>;
  /** Everything received so far. */
  readonly received: string;
  /** Closes the connection (never throws). */
  close(): void;
}

/** Options for {@linkcode connectRaw}. */
export interface ConnectRawOptions {
  /** Host; default `127.0.0.1`. */
  hostname?: string;
  /** Connect with implicit TLS trusting this CA (PEM). */
  implicitTlsCaCert?: string;
}

/** Connects a {@linkcode RawClient} to `port` on loopback. */
export async function connectRaw(
  port: number,
  options: ConnectRawOptions = {},
): Promise<RawClient> {
  const hostname = options.hostname ?? "127.0.0.1";
  const conn: Deno.Conn = options.implicitTlsCaCert === undefined
    ? await Deno.connect({ hostname, port })
    : await Deno.connectTls({ hostname, port, caCerts: [options.implicitTlsCaCert] });
  return new DenoRawClient(conn, options.implicitTlsCaCert !== undefined);
}

class DenoRawClient implements RawClient {
  #conn: Deno.Conn;
  #pending = "";
  #received = "";
  #secure: boolean;
  #decoder = new TextDecoder();

  constructor(conn: Deno.Conn, secure: boolean) {
    this.#conn = conn;
    this.#secure = secure;
  }

  get secure(): boolean {
    return this.#secure;
  }

  get received(): string {
    return this.#received;
  }

  async send(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.#conn.write(bytes.subarray(offset));
    }
  }

  async readReply(): Promise<string | null> {
    for (;;) {
      const lines = this.#pending.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}(?: |$)/.test(lines[i])) {
          this.#pending = lines.slice(i + 1).join("\r\n");
          return lines.slice(0, i + 1).join("\r\n");
        }
      }
      const buffer = new Uint8Array(16 * 1024);
      let n: number | null;
      try {
        n = await this.#conn.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) return null;
      const text = this.#decoder.decode(buffer.subarray(0, n), { stream: true });
      this.#pending += text;
      this.#received += text;
    }
  }

  async startTls(caCert: string, hostname = "localhost"): Promise<void> {
    const tlsConn = await Deno.startTls(this.#conn as Deno.TcpConn, {
      hostname,
      caCerts: [caCert],
    });
    this.#conn = tlsConn;
    await tlsConn.handshake();
    this.#pending = "";
    this.#secure = true;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
