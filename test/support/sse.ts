/**
 * Reads a Server-Sent Events response the way a browser's EventSource would,
 * with a real parser (npm:eventsource-parser), so tests see the events a user
 * sees, not our own framing.
 *
 * @example
 * ```ts
 * const events = await readEvents(await fetch(url, { headers: { Accept: "text/event-stream" } }));
 * const last = events.at(-1)!; // { event: "completed", id: "7", data: "{…}" }
 * ```
 *
 * @module
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";
import { guard } from "./guard.ts";

/** Options for {@linkcode readSse}. */
export interface ReadSseOptions {
  /**
   * Called with each event as it is parsed. Returning `"stop"` cancels the
   * stream after the chunk being parsed (the client going away).
   */
  onEvent?: (event: EventSourceMessage) => void | "stop";
  /** Called with each comment (the text after `:`); may return `"stop"` likewise. */
  onComment?: (comment: string) => void | "stop";
  /** Fails a read that takes longer than this many milliseconds (a hang guard); none when left out. */
  hangGuardMs?: number;
}

/** What {@linkcode readSse} read. */
export interface SseStream {
  /** The events, in order. */
  events: EventSourceMessage[];
  /** The text of the stream as received (up to where it was stopped). */
  raw: string;
}

/** Reads an SSE response to its end (or until a callback says `"stop"`). */
export async function readSse(
  response: Response,
  options: ReadSseOptions = {},
): Promise<SseStream> {
  const events: EventSourceMessage[] = [];
  let raw = "";
  let stop = false;
  const parser = createParser({
    onEvent: (event) => {
      events.push(event);
      if (options.onEvent?.(event) === "stop") stop = true;
    },
    onComment: (comment) => {
      if (options.onComment?.(comment) === "stop") stop = true;
    },
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  while (!stop) {
    const read = reader.read();
    const { done, value } = options.hangGuardMs === undefined
      ? await read
      : await guard(read, "the SSE stream", { ms: options.hangGuardMs });
    if (done) break;
    raw += value;
    parser.feed(value);
  }
  if (stop) await reader.cancel();
  return { events, raw };
}

/** Reads a whole SSE response into its events, in order. */
export async function readEvents(response: Response): Promise<EventSourceMessage[]> {
  return (await readSse(response)).events;
}
