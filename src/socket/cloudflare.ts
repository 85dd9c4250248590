/**
 * The Cloudflare Workers socket adapter: `connect()` from `cloudflare:sockets`
 * behind the {@linkcode SmtpSocket} interface.
 *
 * Only the Workers entry (`functions/cloudflare.ts`) may import this file:
 * Deno cannot load `cloudflare:` modules. `deno check` types the import with
 * the hand-written `cloudflare_sockets.d.ts` beside it.
 *
 * `caCerts` is ignored: Workers verify certificates against the platform's
 * trust store only (locally, miniflare also trusts `NODE_EXTRA_CA_CERTS`).
 *
 * @module
 */

// @ts-types="./cloudflare_sockets.d.ts"
import { connect, type Socket } from "cloudflare:sockets";
import {
  CLOSE_TIMEOUT_MS,
  type Connect,
  type ConnectOptions,
  settleWithin,
  type SmtpSocket,
  type StartTlsOptions,
  tlsHandshakeError,
} from "./socket.ts";

/**
 * Opens a TCP (or implicit TLS) connection with `connect()` from
 * `cloudflare:sockets`. Plain connections are opened in `"starttls"` mode so
 * that {@linkcode SmtpSocket.startTls} can upgrade them.
 */
export const cloudflareConnect: Connect = async (options: ConnectOptions): Promise<SmtpSocket> => {
  const { hostname, port } = options;
  const socket = connect(
    { hostname, port },
    { secureTransport: options.tls ? "on" : "starttls", allowHalfOpen: false },
  );
  // Giving up (deadline or cancellation) closes the half-open socket.
  const onAbort = () => void settleWithin(closeSocket(socket), CLOSE_TIMEOUT_MS);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await socket.opened;
  } catch (error) {
    void settleWithin(closeSocket(socket), CLOSE_TIMEOUT_MS);
    // workerd reports a refused connection and a failed implicit TLS handshake alike.
    if (options.tls && await reachable(hostname, port)) throw handshakeFailure(hostname, error);
    throw new Error(
      `Could not connect to ${hostname}:${port} (${describe(error)}). ` +
        "Check the host and port, and that outbound TCP to it is allowed (Workers block port 25).",
      { cause: error },
    );
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  // workerd may report `opened` before the TLS handshake ends: the first read checks it.
  return new CloudflareSocket(socket, options.tls, options.tls ? hostname : undefined);
};

/** How long the plain TCP probe after a failed implicit TLS connect may take. */
const PROBE_TIMEOUT_MS = 5000;

/** Whether a plain TCP connection to the address opens (the port is up, so TLS failed). */
async function reachable(hostname: string, port: number): Promise<boolean> {
  let socket: Socket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    socket = connect({ hostname, port }, { secureTransport: "off", allowHalfOpen: false });
    socket.closed.catch(() => {});
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
    });
    return await Promise.race([socket.opened.then(() => true, () => false), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    if (socket !== undefined) void settleWithin(closeSocket(socket), CLOSE_TIMEOUT_MS);
  }
}

class CloudflareSocket implements SmtpSocket {
  readonly secure: boolean;
  #socket: Socket;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** The host whose TLS handshake has not been confirmed by a successful read yet. */
  #handshakeHost: string | undefined;
  #done = false;

  constructor(socket: Socket, secure: boolean, handshakeHost: string | undefined) {
    this.#socket = socket;
    this.secure = secure;
    this.#handshakeHost = handshakeHost;
    // `closed` may reject (even with `undefined`) when the peer resets; nobody awaits it.
    socket.closed.catch(() => {});
    this.#reader = socket.readable.getReader();
    this.#writer = socket.writable.getWriter();
  }

  async read(): Promise<Uint8Array | null> {
    try {
      const { done, value } = await this.#reader.read();
      if (done) {
        if (this.#handshakeHost !== undefined) {
          throw new Error("the server closed the connection during the handshake");
        }
        return null;
      }
      this.#handshakeHost = undefined;
      return value;
    } catch (error) {
      throw this.#handshakeFailure(error) ?? error;
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    try {
      // workerd's writable takes the whole chunk; there are no partial writes to loop over.
      await this.#writer.write(bytes);
    } catch (error) {
      throw this.#handshakeFailure(error) ?? error;
    }
  }

  startTls(options: StartTlsOptions): Promise<SmtpSocket> {
    // startTls() detaches the streams; with their locks still held, the new socket never opens.
    this.#reader.releaseLock();
    this.#writer.releaseLock();
    this.#done = true;
    try {
      const upgraded = this.#socket.startTls({ expectedServerHostname: options.hostname });
      return Promise.resolve(new CloudflareSocket(upgraded, true, options.hostname));
    } catch (error) {
      void settleWithin(closeSocket(this.#socket), CLOSE_TIMEOUT_MS);
      return Promise.reject(handshakeFailure(options.hostname, error));
    }
  }

  close(): Promise<void> {
    if (this.#done) return Promise.resolve();
    this.#done = true;
    // After STARTTLS, workerd's close() may never settle: bound it.
    return settleWithin(closeSocket(this.#socket), CLOSE_TIMEOUT_MS);
  }

  /** The error to raise when I/O fails before the handshake was confirmed, else undefined. */
  #handshakeFailure(error: unknown): Error | undefined {
    if (this.#handshakeHost === undefined) return undefined;
    const host = this.#handshakeHost;
    this.#handshakeHost = undefined;
    return handshakeFailure(host, error);
  }
}

function handshakeFailure(host: string, cause: unknown): Error {
  // workerd hides the reason from the Worker ("internal error; reference=…"); its log has it.
  return tlsHandshakeError(
    `TLS handshake with ${host} failed (${describe(cause)}); ` +
      "Workers check the certificate against the platform trust store only",
    cause,
  );
}

function closeSocket(socket: Socket): Promise<void> {
  try {
    return socket.close();
  } catch (error) {
    return Promise.reject(error);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return error === undefined ? "no reason given" : String(error);
}
