/**
 * The server-sent event stream of a send: events with increasing ids, written
 * in order even when produced synchronously (`onStatus`), `: keepalive`
 * comments while waiting, and every string in the data passed through the redactor.
 *
 * @module
 */

import type { SSEStreamingApi } from "hono/streaming";
import { type Redact, stringifyRedacted } from "./redact.ts";

/** Options of {@linkcode EventStream}. */
export interface EventStreamOptions {
  /** Interval of `: keepalive` comments, in milliseconds. */
  keepaliveMs: number;
  /** Applied to every string in the data of a frame. */
  redact: Redact;
}

/** Options of {@linkcode sseFrame}. */
export interface SseFrameOptions {
  /** The event id. */
  id: number;
  /** Applied to every string in the data. */
  redact: Redact;
}

/**
 * One SSE frame: `event`, then `data` as one line of JSON (JSON.stringify never
 * produces a line break), then the id. Each string of the data is redacted,
 * not the frame: a secret that spells an event name or a piece of the JSON
 * must not change either.
 *
 * @example
 * ```ts
 * sseFrame("completed", { status: "sent" }, { id: 1, redact: (text) => text });
 * // 'event: completed\ndata: {"status":"sent"}\nid: 1\n\n'
 * ```
 */
export function sseFrame(event: string, data: unknown, options: SseFrameOptions): string {
  return `event: ${event}\ndata: ${stringifyRedacted(data, options.redact)}\nid: ${options.id}\n\n`;
}

/**
 * Writes SSE frames to a Hono stream. `emit` may be called from synchronous
 * callbacks: frames are queued and written one after the other.
 */
export class EventStream {
  #stream: SSEStreamingApi;
  #redact: Redact;
  #nextId = 1;
  #queue: Promise<void> = Promise.resolve();
  #keepalive: ReturnType<typeof setInterval>;

  /** Starts the keepalive comments at once. */
  constructor(stream: SSEStreamingApi, options: EventStreamOptions) {
    this.#stream = stream;
    this.#redact = options.redact;
    this.#keepalive = setInterval(() => this.#enqueue(": keepalive\n\n"), options.keepaliveMs);
  }

  /** Whether the client went away. */
  get aborted(): boolean {
    return this.#stream.aborted;
  }

  /** Queues an event whose data is `data` as JSON; resolves once it is written. */
  emit(event: string, data: unknown): Promise<void> {
    return this.#enqueue(sseFrame(event, data, { id: this.#nextId++, redact: this.#redact }));
  }

  /** Stops the keepalive comments and waits for queued frames. */
  async finish(): Promise<void> {
    clearInterval(this.#keepalive);
    await this.#queue;
  }

  #enqueue(frame: string): Promise<void> {
    // StreamingApi.write() swallows write errors (client gone): nothing to catch.
    this.#queue = this.#queue.then(() => this.#stream.write(frame)).then(() => {});
    return this.#queue;
  }
}
