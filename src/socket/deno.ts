/**
 * The Deno socket adapter: `Deno.connect`, `Deno.connectTls` and
 * `Deno.startTls` behind the {@linkcode SmtpSocket} interface.
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
} from "./socket.ts";

const READ_BUFFER_BYTES = 16 * 1024;

/** Opens a TCP (or implicit TLS) connection with Deno's socket API. */
export const denoConnect: Connect = async (options: ConnectOptions): Promise<SmtpSocket> => {
  if (options.tls) {
    const conn = await Deno.connectTls({
      hostname: options.hostname,
      port: options.port,
      caCerts: options.caCerts,
    });
    try {
      // Surface certificate errors now, as a connect failure, not on the first read.
      await conn.handshake();
    } catch (error) {
      closeQuietly(conn);
      throw error;
    }
    return new DenoSocket(conn, true);
  }
  const conn = await Deno.connect({ hostname: options.hostname, port: options.port });
  return new DenoSocket(conn, false);
};

class DenoSocket implements SmtpSocket {
  #conn: Deno.Conn | Deno.TlsConn;
  #buffer = new Uint8Array(READ_BUFFER_BYTES);
  #closed = false;
  readonly secure: boolean;

  constructor(conn: Deno.Conn | Deno.TlsConn, secure: boolean) {
    this.#conn = conn;
    this.secure = secure;
    try {
      // Small command writes must not wait for the ACK of the previous ones (Nagle).
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // TLS connections on some versions do not expose setNoDelay; the TCP default is fine.
    }
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
    const tlsConn = await Deno.startTls(this.#conn as Deno.TcpConn, {
      hostname: options.hostname,
      caCerts: options.caCerts,
    });
    this.#closed = true; // startTls consumed the plain connection
    try {
      await tlsConn.handshake();
    } catch (error) {
      closeQuietly(tlsConn);
      throw error;
    }
    return new DenoSocket(tlsConn, true);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return settleWithin(Promise.resolve().then(() => this.#conn.close()), CLOSE_TIMEOUT_MS);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
