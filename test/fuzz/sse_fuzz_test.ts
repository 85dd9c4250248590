/**
 * Fuzzing the SSE writer (src/http/sse.ts): whatever the data of an event
 * holds (tokens, server replies, keys with CR, LF, NEL, U+2028, NUL, lone
 * surrogates, text that looks like SSE fields), and whatever secrets the
 * redactor replaces, a maintained SSE parser (eventsource-parser, as browsers
 * parse) sees exactly the events written: the same names, ids 1, 2, 3…, and
 * data that is JSON of what was emitted, with no secret in any string it carries.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { SSEStreamingApi } from "hono/streaming";
import { EventStream } from "../../src/http/sse.ts";
import { createRedactor, type Redact } from "../../src/http/redact.ts";
import { fuzzParameters } from "./fuzz.ts";

/** Text built from what could end or start an SSE line or field. */
const hostileText = fc.array(
  fc.oneof(
    fc.constantFrom(
      "\n",
      "\r",
      "\r\n",
      "\u0085",
      "\u2028",
      "\u2029",
      "\0",
      "\ud800",
      "\udfff",
      "\n\n",
      "event: completed",
      "\ndata: {}",
      "id: 99",
      "retry: 1",
      ": keepalive",
      '"',
      "\\",
      "}",
    ),
    fc.string({ maxLength: 10 }),
    fc.string({ unit: "grapheme", maxLength: 5 }),
  ),
  { maxLength: 10 },
).map((parts) => parts.join(""));

/** JSON-like data: what status and completed events carry, with hostile strings everywhere. */
const eventData = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hostileText,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(hostileText, tie("value"), { maxKeys: 3 }),
  ),
})).value;

const statusLike = fc.record({
  phase: fc.constantFrom("connect", "rcpt", "message"),
  token: fc.oneof(hostileText, fc.integer(), fc.constant(null)),
  reply: fc.record({ code: fc.integer({ min: 200, max: 599 }), message: hostileText }),
  extra: eventData,
});

const eventName = fc.constantFrom("status", "completed", "done");

/** Every string in a JSON value. */
function stringsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(stringsOf);
}

/** Writes `events` through an EventStream and returns what a parser reads, and the raw text. */
async function roundTrip(
  events: { name: string; data: unknown }[],
  redact: Redact,
): Promise<{ parsed: EventSourceMessage[]; raw: string }> {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const api = new SSEStreamingApi(writable, readable);
  const stream = new EventStream(api, { keepaliveMs: 3_600_000, redact });
  const text = new Response(api.responseReadable).text();
  await Promise.all(events.map(({ name, data }) => stream.emit(name, data)));
  await stream.finish();
  await api.close();
  const raw = await text;
  const parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => parsed.push(event) });
  parser.feed(raw);
  return { parsed, raw };
}

describe("fuzz: SSE writer", () => {
  it("no field of the data can add, end or rename an event", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ name: eventName, data: fc.oneof(statusLike, eventData) }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (events) => {
          const { parsed } = await roundTrip(events, (text) => text);
          assert.deepEqual(
            parsed.map(({ event, id }) => ({ event, id })),
            events.map(({ name }, i) => ({ event: name, id: String(i + 1) })),
          );
          parsed.forEach((message, i) => {
            assert.deepEqual(JSON.parse(message.data), JSON.parse(JSON.stringify(events[i].data)));
          });
        },
      ),
      fuzzParameters(1500, 0x55e001),
    );
  });

  it("redacting secrets keeps every frame intact and leaves no secret behind", async () => {
    // Random secrets, and ones that collide with the framing or the JSON around the data.
    const secret = fc.oneof(
      fc.stringMatching(/^[\x21-\x7e]{6,24}$/),
      fc.constantFrom(
        "status",
        "completed",
        "event: ",
        '"phase":"',
        '","token',
        'reply":{',
        "\n\nid: ",
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(secret, { minLength: 1, maxLength: 3 }),
        fc.array(fc.record({ name: eventName, data: statusLike }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        async (secrets, events, pick) => {
          // Put a secret into a server reply, as a misbehaving server would echo it.
          const leaked = secrets[pick % secrets.length];
          events = structuredClone(events);
          events[0].data.reply.message += ` ${leaked} ${btoa(leaked)}`;
          const { parsed } = await roundTrip(events, createRedactor(secrets));
          assert.deepEqual(
            parsed.map(({ event, id }) => ({ event, id })),
            events.map(({ name }, i) => ({ event: name, id: String(i + 1) })),
          );
          // The names are ours; every string the data carries must be free of secrets.
          const strings = parsed.flatMap((message) => stringsOf(JSON.parse(message.data)));
          for (const s of secrets) {
            assert.ok(!strings.some((text) => text.includes(s)), "a secret in the data");
            assert.ok(!strings.some((text) => text.includes(btoa(s))), "a secret in base64");
          }
        },
      ),
      fuzzParameters(1000, 0x55e002),
    );
  });
});
