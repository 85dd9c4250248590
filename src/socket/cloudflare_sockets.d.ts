/**
 * The part of the `cloudflare:sockets` module (workerd's TCP socket API) that
 * edgemail uses, typed by hand so `deno check` can type the Workers adapter
 * without `@cloudflare/workers-types`. `src/socket/cloudflare.ts` points its
 * import at this file with a `@ts-types` comment; at run time workerd provides
 * the real module.
 *
 * @module
 */

/** Where to connect. */
export interface SocketAddress {
  /** Host name or IP literal. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** How to connect. */
export interface SocketOptions {
  /** `"on"`: TLS from the start; `"starttls"`: plain, may upgrade once; `"off"`: plain only. */
  secureTransport?: "off" | "on" | "starttls";
  /** Whether the writable side stays open after the peer closes its side. */
  allowHalfOpen?: boolean;
}

/** Options for {@linkcode Socket.startTls}. */
export interface TlsOptions {
  /** The name the server certificate must match (default: the connect host). */
  expectedServerHostname?: string;
}

/** Addresses of an open socket. */
export interface SocketInfo {
  /** The peer's address, when known. */
  remoteAddress?: string;
  /** Our address, when known. */
  localAddress?: string;
}

/** A TCP connection in workerd. */
export interface Socket {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer (Uint8Array chunks only). */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves once the connection is established; rejects when it cannot be. */
  readonly opened: Promise<SocketInfo>;
  /** Settles when the connection closes; may reject (also with `undefined`). */
  readonly closed: Promise<void>;
  /** Closes both directions. */
  close(): Promise<void>;
  /** Upgrades a `"starttls"` socket; the old streams are detached. */
  startTls(options?: TlsOptions): Socket;
}

/** Opens a TCP connection. */
export declare function connect(address: SocketAddress | string, options?: SocketOptions): Socket;
