/**
 * The Deno entry end to end: `deno serve functions/deno.ts` as a subprocess,
 * configured only through its environment, sending to npm:smtp-server over
 * STARTTLS with AUTH and the generated test CA (SMTP_CA_CERT). Synchronous and
 * SSE sends (parsed with npm:eventsource-parser), the SMTP health check, and a
 * client that goes away mid-send (against the scripted fault server, which
 * holds its RCPT reply): nothing is delivered.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { guard } from "../support/guard.ts";
import { type HeldRcptFunction, startFunctionWithHeldRcpt } from "../support/held_rcpt.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readSse } from "../support/sse.ts";

const API_KEY = "e2e-key-1f2e3d4c5b6a";
const SMTP_PASS = "e2e-pass-a1b2c3d4e5";
// Only a guard against hanging; a subprocess gets longer than the default.
const HANG_GUARD_MS = 15_000;

function post(url: string, body: unknown, accept = "application/json", signal?: AbortSignal) {
  return fetch(url, jsonPost(body, { apiKey: API_KEY, accept, signal }));
}

const message = {
  from: "Ann Example <ann@example.com>",
  to: ["bob@example.com"],
  cc: "Cy <cy@example.org>",
  subject: "Grüße from edgemail",
  text: "Hello over STARTTLS.",
  html: "<p>Hello over <b>STARTTLS</b>.</p>",
};

describe("deno serve functions/deno.ts → smtp-server (STARTTLS, AUTH)", () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;

  before(async () => {
    smtp = await startSmtpServer({ users: { mailer: SMTP_PASS }, requireTls: true });
    fn = await startFunction({
      SMTP_URL: `smtp://mailer:${encodeURIComponent(SMTP_PASS)}@localhost:${smtp.port}`,
      SMTP_CA_CERT: smtp.caCert,
      API_KEYS: API_KEY,
      ALLOWED_FROM: "@example.com",
    });
  });

  after(async () => {
    await fn?.stop();
    await smtp?.close();
  });

  it("sends synchronously and the server receives the message", async () => {
    const before = smtp.messages.length;
    const response = await post(`${fn.url}/send`, { ...message, token: 1 });
    const result = await response.json();
    assert.equal(response.status, 200, JSON.stringify(result));
    assert.equal(result.status, "sent");
    assert.equal(result.token, 1);
    assert.deepEqual(result.accepted, ["bob@example.com", "cy@example.org"]);
    const [received] = await smtp.waitForMessages(before + 1).then((all) => all.slice(before));
    assert.equal(received.from, "ann@example.com");
    assert.deepEqual(received.to, ["bob@example.com", "cy@example.org"]);
    assert.equal(received.user, "mailer");
    assert.ok(received.secure);
    assert.ok(received.text.includes(`Message-ID: ${result.messageId}`));
    assert.match(received.text, /^Subject: =\?UTF-8\?/m);
    assert.ok(received.text.includes("Hello over STARTTLS."));
  });

  it("streams the send as SSE, ending with the Result", async () => {
    const before = smtp.messages.length;
    const response = await post(
      `${fn.url}/send`,
      { ...message, token: "sse-1" },
      "text/event-stream",
    );
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("X-Accel-Buffering"), "no");
    const { events, raw } = await readSse(response);
    assert.ok(!raw.includes(SMTP_PASS) && !raw.includes(API_KEY));
    const completed = events.filter((event) => event.event === "completed");
    assert.equal(completed.length, 1);
    assert.equal(events.at(-1)!.event, "completed");
    const result = JSON.parse(completed[0].data);
    assert.equal(result.status, "sent");
    assert.equal(result.token, "sse-1");
    const steps = events.filter((event) => event.event === "status").map((event) =>
      JSON.parse(event.data)
    );
    assert.ok(steps.every((step) => step.token === "sse-1"));
    const rcpts = steps.filter((step) => step.phase === "rcpt" && step.state === "done");
    assert.deepEqual(rcpts.map((step) => step.recipient), ["bob@example.com", "cy@example.org"]);
    const received = (await smtp.waitForMessages(before + 1))[before];
    assert.ok(received.text.includes(`Message-ID: ${result.messageId}`));
  });

  it("GET /health?smtp=1 goes through greeting, STARTTLS and AUTH", async () => {
    const before = smtp.authAttempts.length;
    const response = await fetch(`${fn.url}/health?smtp=1`, {
      headers: { Authorization: `Bearer ${API_KEY}` },
    });
    assert.deepEqual(await response.json(), { status: "ok" });
    // The health check's own AUTH, not one left over from the sends above.
    assert.deepEqual(
      smtp.authAttempts.slice(before).map(({ username, ok }) => ({ username, ok })),
      [{ username: "mailer", ok: true }],
    );
  });

  it("refuses a sender outside ALLOWED_FROM and a missing key, in JSON", async () => {
    const forbidden = await post(`${fn.url}/send`, { ...message, from: "eve@evil.example" });
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).error.type, "forbidden");
    const anonymous = await fetch(`${fn.url}/send`, { method: "POST", body: "{}" });
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).error.type, "unauthorized");
    assert.ok(!fn.output().includes(SMTP_PASS), "the password is in the server output");
  });
});

describe("deno serve functions/deno.ts: the client goes away mid-send", () => {
  let setup: HeldRcptFunction;

  before(async () => {
    setup = await startFunctionWithHeldRcpt({ API_KEYS: API_KEY });
  });

  after(() => setup?.stop());

  it("abandons the SMTP transaction: nothing is delivered", async () => {
    const { fn, held } = setup;
    const rcpt = held.nextRcpt();
    const abort = new AbortController();
    const answer = post(
      `${fn.url}/send`,
      { to: "bob@example.com", text: "never" },
      "text/event-stream",
      abort.signal,
    )
      .then(async (response) => {
        for await (const _ of response.body!) {
          // Read until the abort.
        }
      })
      .catch((error) => error);
    await guard(rcpt.reached, "the RCPT command", { ms: HANG_GUARD_MS });
    abort.abort();
    assert.equal((await answer).name, "AbortError");
    await guard(rcpt.closed, "the abandoned SMTP connection", { ms: HANG_GUARD_MS });
    assert.equal(held.delivered, 0);
    assert.ok(!held.transcript.includes("never"), "the message content was sent");
  });
});
