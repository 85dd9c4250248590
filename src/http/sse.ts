/**
 * The server-sent event stream of a send: events with increasing ids, written
 * in order even when produced synchronously (`onStatus`), `: keepalive`
 * comments while waiting, and every string in the data passed through the redactor.
 *
 * @module
 */

import type { Context } from "hono";
import { type Redact, stringifyRedacted } from "./redact.ts";

/**
 * Where an event stream writes: text in, the client's disconnect reported.
 * Hono's `SSEStreamingApi` is one too.
 */
export interface SseSink {
  /** Writes `text`; resolves once the reader took it, and never rejects (client gone). */
  write(text: string): Promise<unknown>;
  /** Whether the client went away. */
  readonly aborted: boolean;
  /** Calls `listener` once, when the client goes away. */
  onAbort(listener: () => void): void;
}

/**
 * A `text/event-stream` response fed by `run`, as Hono's `streamSSE` makes it
 * (the same headers; a write resolves once the client's reader took it; the
 * client's disconnect aborts the sink) without its unused helpers. An error
 * `run` throws is logged, never written to the client; the stream ends when
 * `run` does.
 */
export function eventStreamResponse(c: Context, run: (sink: SseSink) => Promise<void>): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const encoder = new TextEncoder();
  const listeners: (() => void)[] = [];
  let aborted = false;
  let closed = false;
  const sink: SseSink = {
    get aborted() {
      return aborted;
    },
    onAbort: (listener) => void listeners.push(listener),
    write: async (text) => {
      try {
        await writer.write(encoder.encode(text));
      } catch {
        // The client went away: the abort listeners say so.
      }
    },
  };
  const abort = () => {
    if (aborted || closed) return;
    aborted = true;
    reader.cancel().catch(() => {});
    for (const listener of listeners) listener();
  };
  c.header("Transfer-Encoding", "chunked");
  c.header("Content-Type", "text/event-stream");
  c.header("Cache-Control", "no-cache");
  c.header("Connection", "keep-alive");
  run(sink).catch((error) => console.error(error)).finally(() => {
    closed = true;
    writer.close().catch(() => {});
  });
  return c.newResponse(
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: abort,
    }),
  );
}

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
 * Writes SSE frames to a stream ({@linkcode eventStreamResponse}'s, or Hono's
 * `SSEStreamingApi`). `emit` may be called from synchronous
 * callbacks: frames are queued and written one after the other.
 */
export class EventStream {
  #stream: SseSink;
  #redact: Redact;
  #nextId = 1;
  #queue: Promise<void> = Promise.resolve();
  #keepalive: ReturnType<typeof setInterval>;

  /** Starts the keepalive comments at once. */
  constructor(stream: SseSink, options: EventStreamOptions) {
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
    // The sink's write() swallows write errors (client gone): nothing to catch.
    this.#queue = this.#queue.then(() => this.#stream.write(frame)).then(() => {});
    return this.#queue;
  }
}
