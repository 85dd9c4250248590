/**
 * The output side of a transaction stream: commands and data are queued and
 * go out as one write per command group (RFC 2920), and the writer knows
 * which queued bytes end a message's data, so it can say, after each write,
 * whose data end was handed to the network — also after a write that failed.
 *
 * @module
 */

import { SmtpError } from "./errors.ts";
import type { Flight } from "./transaction_flight.ts";
import type { Wire } from "./wire.ts";

const encoder = new TextEncoder();

/** The first output buffer: a small message's end and the next envelope fit. */
const FIRST_BUFFER_BYTES = 4096;
/** A buffer grown past this is not kept for the next group. */
const KEPT_BUFFER_BYTES = 256 * 1024;

/**
 * Buffers one command group and writes it to a {@linkcode Wire}.
 *
 * Commands are encoded, and queued bytes copied, straight into an output
 * buffer that is written as it is: no array per command and no
 * concatenation per write. Two buffers take turns, and one is filled again
 * only after the write that took it completed (a write that fails drops
 * it), so bytes still being written are never changed.
 */
export class CommandWriter {
  #wire: Wire;
  #buffer: Uint8Array | undefined;
  /** The buffer of the last write that completed, to fill next. */
  #spare: Uint8Array | undefined;
  #outBytes = 0;
  #outEnds: Flight[] = [];
  /** The flight whose data end is the last thing queued, if it is. */
  #tailEnd: Flight | undefined;

  /** A writer to `wire`. */
  constructor(wire: Wire) {
    this.#wire = wire;
  }

  /** Bytes queued and not written yet. */
  get queuedBytes(): number {
    return this.#outBytes;
  }

  /** Adds `bytes` to the group (copied: the caller may reuse them at once). */
  queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const buffer = this.#room(bytes.length);
    buffer.set(bytes, this.#outBytes);
    this.#outBytes += bytes.length;
    this.#tailEnd = undefined;
  }

  /** Adds the command `line` (without CRLF) to the group. */
  command(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const buffer = this.#room(line.length * 3 + 2);
    let at = this.#outBytes;
    let i = 0;
    for (; i < line.length; i++) {
      const code = line.charCodeAt(i);
      if (code >= 0x80) break;
      buffer[at++] = code;
    }
    if (i < line.length) at += encoder.encodeInto(line.slice(i), buffer.subarray(at)).written;
    buffer[at++] = 0x0d;
    buffer[at++] = 0x0a;
    this.#outBytes = at;
    this.#tailEnd = undefined;
  }

  /** The bytes queued last end `flight`'s data: it is committed now. */
  endQueued(flight: Flight): void {
    flight.endQueued = true;
    this.#outEnds.push(flight);
    this.#tailEnd = flight;
  }

  /**
   * Writes what is queued as one write, then marks the data ends in it as
   * written. After a failed write, every end in it counts as written (it may
   * have reached the server), except the very last bytes of a write that
   * failed on the connection or stalled past its deadline (a zero window): a
   * write that never completed never handed its last byte over, and the
   * connection is closed at once.
   */
  async flush(): Promise<void> {
    if (this.#outBytes === 0) return;
    const buffer = this.#buffer!;
    const bytes = buffer.subarray(0, this.#outBytes);
    const ends = this.#outEnds;
    const tailEnd = this.#tailEnd;
    this.#buffer = this.#spare;
    this.#spare = undefined;
    this.#outBytes = 0;
    this.#outEnds = [];
    this.#tailEnd = undefined;
    let lost: Flight | undefined;
    try {
      await this.#wire.write(bytes);
      if (buffer.length <= KEPT_BUFFER_BYTES) this.#spare = buffer;
    } catch (error) {
      if (error instanceof SmtpError && (error.type === "connection" || error.type === "timeout")) {
        lost = tailEnd;
      }
      throw error;
    } finally {
      for (const flight of ends) if (flight !== lost) flight.dataWritten();
    }
  }

  /** Writes content bytes at once, after what is queued (they are not part of a group). */
  async write(bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.flush();
    await this.#wire.write(bytes, signal);
  }

  /** The output buffer, with room for `bytes` more after what is queued. */
  #room(bytes: number): Uint8Array {
    const needed = this.#outBytes + bytes;
    let buffer = this.#buffer;
    if (buffer === undefined || buffer.length < needed) {
      let size = buffer?.length ?? FIRST_BUFFER_BYTES;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      if (buffer !== undefined) grown.set(buffer.subarray(0, this.#outBytes));
      this.#buffer = buffer = grown;
    }
    return buffer;
  }
}
