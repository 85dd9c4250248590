/**
 * The small socket interface every runtime adapter implements. The SMTP core
 * uses nothing else from the platform, so it runs unchanged on Deno and on
 * Cloudflare Workers.
 *
 * @module
 */

/** Where to connect and how. */
export interface ConnectOptions {
  /** Host name or IP literal; also the name the TLS certificate must match. */
  hostname: string;
  /** TCP port, 1..65535. */
  port: number;
  /** `true` for implicit TLS (SMTPS, port 465); `false` for plain TCP (STARTTLS may follow). */
  tls: boolean;
  /** Extra trusted CA certificates (PEM), on runtimes that support them. */
  caCerts?: string[];
  /**
   * Aborted when the caller gives up (deadline passed, or cancelled): the
   * adapter closes whatever it has half opened, a hanging TLS handshake included.
   */
  signal?: AbortSignal;
}

/** Options for upgrading a plain connection with STARTTLS. */
export interface StartTlsOptions {
  /** The name the server certificate must match. */
  hostname: string;
  /** Extra trusted CA certificates (PEM), on runtimes that support them. */
  caCerts?: string[];
}

/**
 * A connected byte stream. Reads are pull-based (one `read()` at a time, never a
 * pipe), because both Deno and workerd refuse a TLS upgrade while a read is pending.
 */
export interface SmtpSocket {
  /** Whether the bytes on this socket are protected by TLS. */
  readonly secure: boolean;
  /** The next chunk of bytes, or `null` once the peer has closed the connection. */
  read(): Promise<Uint8Array | null>;
  /** Writes every byte of `bytes`, looping over partial writes. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Upgrades this plain connection to TLS. This socket must not be used
   * afterwards, except that closing it ends a handshake still in progress; the
   * returned one carries the encrypted stream. Rejects when the handshake
   * fails (bad certificate included).
   */
  startTls(options: StartTlsOptions): Promise<SmtpSocket>;
  /** Closes the connection. Never rejects and always settles within a short bound. */
  close(): Promise<void>;
}

/**
 * The `name` of the error an adapter rejects with when a TLS handshake fails
 * (bad certificate included), so the client reports a `tls` error whatever
 * the platform's own wording.
 */
export const TLS_HANDSHAKE_ERROR = "TlsHandshakeError";

/** An error named {@linkcode TLS_HANDSHAKE_ERROR} wrapping the platform's `cause`. */
export function tlsHandshakeError(message: string, cause: unknown): Error {
  const error = new Error(message, { cause });
  error.name = TLS_HANDSHAKE_ERROR;
  return error;
}

/** A socket factory: `denoConnect`, `cloudflareConnect`, or your own. */
export type Connect = (options: ConnectOptions) => Promise<SmtpSocket>;

/** How long `close()` may wait for the platform before giving up on it. */
export const CLOSE_TIMEOUT_MS = 1000;

/**
 * Settles when `promise` settles or after `ms`, whichever comes first, and
 * never rejects. Adapters use it to bound `close()`, which may never settle on
 * some platforms (workerd after STARTTLS).
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.then(() => {}, () => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
