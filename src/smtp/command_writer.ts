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

/** Buffers one command group and writes it to a {@linkcode Wire}. */
export class CommandWriter {
  #wire: Wire;
  #out: Uint8Array[] = [];
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

  /** Adds `bytes` to the group. */
  queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    this.#tailEnd = undefined;
  }

  /** Adds the command `line` (without CRLF) to the group. */
  command(line: string): void {
    this.queue(encoder.encode(line + "\r\n"));
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
    if (this.#out.length === 0) return;
    const parts = this.#out;
    const ends = this.#outEnds;
    const tailEnd = this.#tailEnd;
    this.#out = [];
    this.#outBytes = 0;
    this.#outEnds = [];
    this.#tailEnd = undefined;
    const bytes = parts.length === 1 ? parts[0] : concat(parts);
    let lost: Flight | undefined;
    try {
      await this.#wire.write(bytes);
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
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
