/**
 * An in-memory {@linkcode SmtpSocket} for unit tests of code above the socket
 * (reply reader, session): it serves the server's bytes from a script and
 * records what the client writes. No network, no timers.
 *
 * @example
 * ```ts
 * const socket = new MemorySocket(["220 hi\r\n", "250-a.test\r\n250 ", "PIPELINING\r\n"]);
 * // … run the code under test on `socket` …
 * assert.equal(socket.written, "EHLO localhost\r\n");
 * ```
 *
 * @module
 */

import type { SmtpSocket, StartTlsOptions } from "../../src/socket/socket.ts";

/**
 * One scripted `read()` result: bytes (a string is UTF-8 encoded), or an
 * `Error` the read rejects with (a reset connection, say).
 */
export type MemoryChunk = Uint8Array | string | Error;

/** Options for {@linkcode MemorySocket}. */
export interface MemorySocketOptions {
  /** Whether this socket reports `secure`. Default `false`. */
  secure?: boolean;
  /** What the socket returned by `startTls()` serves. Default: nothing (EOF at once). */
  tlsChunks?: MemoryChunk[];
  /** Make `startTls()` reject with this error (a failed handshake). */
  startTlsError?: Error;
}

/**
 * Serves `chunks` one per `read()`, then `null` (the peer closed). Every
 * `write()` is recorded; `startTls()` returns a new secure `MemorySocket`
 * serving `options.tlsChunks`, after which this one refuses to be used.
 */
export class MemorySocket implements SmtpSocket {
  /** Whether this socket reports being TLS. */
  readonly secure: boolean;
  /** Every `write()`, as a copy of the bytes, in order. */
  readonly writes: Uint8Array[] = [];
  /** The options of every `startTls()` call, in order. */
  readonly startTlsCalls: StartTlsOptions[] = [];
  /** How many times `close()` was called. */
  closeCalls = 0;
  /** The socket `startTls()` returned, once it was called successfully. */
  upgraded: MemorySocket | undefined;
  #chunks: MemoryChunk[];
  #options: MemorySocketOptions;

  constructor(chunks: MemoryChunk[], options: MemorySocketOptions = {}) {
    this.#chunks = [...chunks];
    this.#options = options;
    this.secure = options.secure ?? false;
  }

  /** Everything written, decoded as UTF-8 and joined. */
  get written(): string {
    const decoder = new TextDecoder();
    return this.writes.map((bytes) => decoder.decode(bytes, { stream: true })).join("") +
      decoder.decode();
  }

  /** Whether `close()` was called at least once. */
  get closed(): boolean {
    return this.closeCalls > 0;
  }

  /** How many scripted chunks have not been read yet. */
  get unread(): number {
    return this.#chunks.length;
  }

  read(): Promise<Uint8Array | null> {
    const unusable = this.#unusable("read");
    if (unusable) return Promise.reject(unusable);
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return Promise.resolve(null);
    if (chunk instanceof Error) return Promise.reject(chunk);
    return Promise.resolve(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  }

  write(bytes: Uint8Array): Promise<void> {
    const unusable = this.#unusable("write");
    if (unusable) return Promise.reject(unusable);
    this.writes.push(bytes.slice());
    return Promise.resolve();
  }

  startTls(options: StartTlsOptions): Promise<SmtpSocket> {
    const unusable = this.#unusable("startTls");
    if (unusable) return Promise.reject(unusable);
    this.startTlsCalls.push(options);
    if (this.#options.startTlsError) return Promise.reject(this.#options.startTlsError);
    this.upgraded = new MemorySocket(this.#options.tlsChunks ?? [], { secure: true });
    return Promise.resolve(this.upgraded);
  }

  close(): Promise<void> {
    this.closeCalls++;
    return Promise.resolve();
  }

  /** Like a real adapter: an upgraded or closed socket is unusable. */
  #unusable(operation: string): Error | undefined {
    if (this.upgraded) {
      return new Error(`MemorySocket: ${operation}() after startTls(); use the returned socket.`);
    }
    if (this.closed) return new Error(`MemorySocket: ${operation}() after close().`);
    return undefined;
  }
}
