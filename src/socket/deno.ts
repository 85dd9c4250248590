/**
 * The Deno socket adapter: `Deno.connect` and `Deno.startTls` behind the
 * {@linkcode SmtpSocket} interface. Implicit TLS is a TLS start on a fresh TCP
 * connection rather than `Deno.connectTls`, so that TCP no-delay can be set
 * (`Deno.TlsConn` has no `setNoDelay`).
 *
 * @module
 */

import {
  CLOSE_TIMEOUT_MS,
  type Connect,
  type ConnectOptions,
  settleWithin,
  type SmtpSocket,
  type StartTlsOptions,
  tlsHandshakeError,
} from "./socket.ts";

const READ_BUFFER_BYTES = 16 * 1024;

/** Opens a TCP (or implicit TLS) connection with Deno's socket API. */
export const denoConnect: Connect = async (options: ConnectOptions): Promise<SmtpSocket> => {
  const tcp = await Deno.connect({ hostname: options.hostname, port: options.port });
  if (options.signal?.aborted) {
    closeQuietly(tcp);
    throw new DOMException("The connection attempt was abandoned.", "AbortError");
  }
  // Small command writes must not wait for the ACK of the previous ones (Nagle).
  // Set on the TCP socket, it also holds under TLS (Deno.TlsConn has no setNoDelay).
  tcp.setNoDelay(true);
  if (!options.tls) return new DenoSocket(tcp, false);
  // Implicit TLS as a TLS start on a fresh TCP connection, for the no-delay above.
  const tls = await startTlsOn(tcp, options);
  await handshake(tls, options.hostname, options.signal);
  return new DenoSocket(tls, true);
};

/** Wraps `tcp` in TLS; the handshake has not run yet. */
async function startTlsOn(tcp: Deno.TcpConn, options: StartTlsOptions): Promise<Deno.TlsConn> {
  try {
    return await Deno.startTls(tcp, { hostname: options.hostname, caCerts: options.caCerts });
  } catch (error) {
    closeQuietly(tcp);
    throw handshakeFailure(options.hostname, error);
  }
}

/**
 * Runs the TLS handshake now, so certificate errors surface here. Closing the
 * connection (on `signal`, or by the caller) ends a handshake that hangs.
 */
async function handshake(tls: Deno.TlsConn, host: string, signal?: AbortSignal): Promise<void> {
  const onAbort = () => closeQuietly(tls);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await tls.handshake();
  } catch (error) {
    closeQuietly(tls);
    throw handshakeFailure(host, error);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

class DenoSocket implements SmtpSocket {
  #conn: Deno.Conn | Deno.TlsConn;
  #buffer = new Uint8Array(READ_BUFFER_BYTES);
  #closed = false;
  readonly secure: boolean;

  constructor(conn: Deno.Conn | Deno.TlsConn, secure: boolean) {
    this.#conn = conn;
    this.secure = secure;
  }

  async read(): Promise<Uint8Array | null> {
    const n = await this.#conn.read(this.#buffer);
    if (n === null) return null;
    return this.#buffer.slice(0, n);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#conn.write(bytes.subarray(offset));
    }
  }

  async startTls(options: StartTlsOptions): Promise<SmtpSocket> {
    const tls = await startTlsOn(this.#conn as Deno.TcpConn, options);
    // Deno.startTls consumed the plain connection: from here, close() closes
    // the TLS one, which also ends a handshake that hangs.
    this.#conn = tls;
    await handshake(tls, options.hostname);
    this.#closed = true; // retired: the new socket owns the connection
    return new DenoSocket(tls, true);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return settleWithin(Promise.resolve().then(() => this.#conn.close()), CLOSE_TIMEOUT_MS);
  }
}

function handshakeFailure(host: string, cause: unknown): Error {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return tlsHandshakeError(`TLS handshake with ${host} failed (${reason})`, cause);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
