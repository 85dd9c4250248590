/**
 * Fuzzing the request schema through the real app (createApp on a real
 * smtp-server): any JSON body up to the body limit, as JSON or SSE, is answered
 * with a 4xx naming what is wrong or with a send that ends in one outcome,
 * never a 500; and the pathological bodies of issue 11 (one string of 150 000
 * addresses, a 12 MB header, deeply nested or huge arrays) get a 400 or 413.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/http/config.ts";
import { SmtpClient } from "../../src/smtp/client.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { fuzzParameters } from "./fuzz.ts";

const API_KEY = "fuzz-key-8d1f3a6c2b";
const ERROR_STATUSES = new Set([400, 403, 413, 422]);

let server: TestSmtpServer;
let client: SmtpClient;
/** The app with a 1 MB body limit (fast fuzzing) and with the default 25 MiB one. */
let small: Hono;
let large: Hono;

before(async () => {
  server = await startSmtpServer({});
  const env = {
    SMTP_URL: `smtp://127.0.0.1:${server.port}`,
    SMTP_CA_CERT: server.caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "App <app@example.com>",
  };
  const config = loadConfig({ ...env, MAX_MESSAGE_BYTES: "1048576" });
  client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  small = createApp(config, { client });
  large = createApp(loadConfig(env), { client });
});

after(async () => {
  await client.close();
  await server.close();
});

function post(body: string, sse: boolean): RequestInit {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${API_KEY}`,
    "Content-Type": "application/json",
  };
  if (sse) headers.Accept = "text/event-stream";
  return { method: "POST", headers, body };
}

/**
 * Checks the answer to one request: a refusal with a JSON error body, or a
 * send (JSON result or an SSE stream ending in one `completed` event).
 */
async function assertAnswered(response: Response, context: string): Promise<"sent" | "refused"> {
  const type = response.headers.get("Content-Type") ?? "";
  const text = await response.text();
  assert.notEqual(response.status, 500, `500 for ${context}: ${text.slice(0, 300)}`);
  if (type.startsWith("text/event-stream")) {
    assert.equal(response.status, 200);
    const events: EventSourceMessage[] = [];
    createParser({ onEvent: (event) => events.push(event) }).feed(text);
    const completed = events.filter((event) => event.event === "completed");
    assert.equal(completed.length, 1, `one completed event: ${text.slice(-300)}`);
    assert.equal(events.at(-1), completed[0]);
    const result = JSON.parse(completed[0].data);
    assert.ok(["sent", "failed"].includes(result.status), text.slice(-300));
    return result.status === "sent" ? "sent" : "refused";
  }
  assert.match(type, /^application\/json/, `${response.status} ${text.slice(0, 200)}`);
  const body = JSON.parse(text);
  if (response.status === 200) {
    assert.equal(body.status, "sent");
    return "sent";
  }
  assert.ok(ERROR_STATUSES.has(response.status), `${response.status}: ${text.slice(0, 300)}`);
  assert.equal(typeof body.error?.type, "string");
  assert.equal(typeof body.error?.message, "string");
  if (response.status === 400) {
    assert.equal(body.error.type, "validation");
    assert.ok(Array.isArray(body.error.issues) && body.error.issues.length > 0);
  }
  return "refused";
}

/** Values that look like what a field could hold, wrong types and hostile strings included. */
const fieldValue = fc.oneof(
  fc.constantFrom(
    "bob@example.org",
    "Bob <bob@example.org>",
    "a@b",
    "a,b@c.d",
    "\r\nBcc: x@y.z",
    "",
    "x".repeat(2000),
    "\u00e9@example.org",
    "=?utf-8?q?x?=",
    "\ud800",
  ),
  fc.string({ maxLength: 40 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const fieldName = fc.constantFrom(
  "from",
  "to",
  "cc",
  "bcc",
  "replyTo",
  "subject",
  "text",
  "html",
  "attachments",
  "headers",
  "dsn",
  "allowPartial",
  "token",
  "__proto__",
  "constructor",
  "unknown",
);

/** A message-shaped object: a valid start, with fields replaced or added at random. */
const nearMessage = fc.tuple(
  fc.dictionary(fieldName, fieldValue, { maxKeys: 5 }),
  fc.boolean(),
).map(([fields, keepValid]) => ({
  ...(keepValid ? { to: "bob@example.org", subject: "Hi", text: "Hello" } : {}),
  ...fields,
}));

const body = fc.oneof(
  { weight: 3, arbitrary: nearMessage.map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
);

describe("fuzz: request schema through the app", () => {
  it("any JSON body gets a 4xx with a JSON error or one outcome, never a 500", async () => {
    const seen = { sent: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (text, sse) => {
        const response = await small.request("/send", post(text, sse));
        seen[await assertAnswered(response, text.slice(0, 120))]++;
      }),
      fuzzParameters(400, 0x4e9001),
    );
    // Both sides were exercised: the fuzzing reached real sends, not only refusals.
    assert.ok(seen.sent >= 20 && seen.refused >= 20, JSON.stringify(seen));
  });

  it("batches of arbitrary entries likewise", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(nearMessage, { maxLength: 4 }), async (messages) => {
        const response = await small.request(
          "/send/batch",
          post(JSON.stringify({ messages }), false),
        );
        const text = await response.text();
        assert.notEqual(response.status, 500, text.slice(0, 300));
        assert.ok([200, 400, 403, 413].includes(response.status), `${response.status} ${text}`);
      }),
      fuzzParameters(150, 0x4e9002),
    );
  });

  const many = Array.from({ length: 150_000 }, (_, i) => `user${i}@example.org`);
  const pathological: [string, () => string, number[]][] = [
    ["one string of 150 000 addresses", () => JSON.stringify({ to: many.join(","), text: "x" }), [
      413,
    ]],
    ["an array of 150 000 addresses", () => JSON.stringify({ to: many, text: "x" }), [413]],
    [
      "a 12 MB custom header",
      () => JSON.stringify({ to: "b@example.org", headers: { "X-Big": "a ".repeat(6e6) } }),
      [400],
    ],
    [
      "a 1 MB subject",
      () => JSON.stringify({ to: "b@example.org", subject: "s".repeat(1e6), text: "x" }),
      [400],
    ],
    ["10 000 custom headers", () =>
      JSON.stringify({
        to: "b@example.org",
        headers: Object.fromEntries(Array.from({ length: 1e4 }, (_, i) => [`X-H${i}`, "v"])),
      }), [400]],
    [
      "an address nested 100 000 arrays deep",
      () => `{"to":${"[".repeat(1e5)}"b@example.org"${"]".repeat(1e5)}}`,
      [400],
    ],
    [
      "a display name of 1 MB",
      () => JSON.stringify({ to: { name: "n".repeat(1e6), address: "b@example.org" } }),
      [400],
    ],
  ];
  for (const [name, make, statuses] of pathological) {
    it(`${name}: ${statuses.join(" or ")}, not a 500`, async () => {
      const response = await large.request("/send", post(make(), false));
      const text = await response.text();
      assert.ok(statuses.includes(response.status), `${response.status}: ${text.slice(0, 300)}`);
      assert.ok(!text.includes("user149999@"), "the input is echoed");
    });
  }
});
