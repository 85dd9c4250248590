/**
 * Batches end to end through `deno serve functions/deno.ts` and npm:smtp-server
 * (STARTTLS, test CA): 50 messages as SSE — 50 `completed` events with the
 * right indexes and a correct `done` — and a synchronous batch whose results
 * come back in input order, each with its own outcome.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readEvents } from "../support/sse.ts";

const API_KEY = "batch-e2e-key-9a8b7c6d";

function postBatch(url: string, messages: unknown[], accept: string) {
  return fetch(`${url}/send/batch`, jsonPost({ messages }, { apiKey: API_KEY, accept }));
}

describe("POST /send/batch through deno serve", () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;

  before(async () => {
    smtp = await startSmtpServer({
      rejectRecipients: {
        "nobody@example.com": { code: 550, message: "5.1.1 No such user" },
        "later@example.com": { code: 451, message: "4.3.0 Try again later" },
      },
    });
    fn = await startFunction({
      SMTP_URL: `smtp://localhost:${smtp.port}`,
      SMTP_CA_CERT: smtp.caCert,
      API_KEYS: API_KEY,
      MAIL_FROM: "Batch <batch@example.com>",
    });
  });

  after(async () => {
    await fn?.stop();
    await smtp?.close();
  });

  it("streams 50 completed events with their indexes and a correct done", async () => {
    const before = smtp.messages.length;
    const messages = Array.from({ length: 50 }, (_, i) => ({
      to: `user${i}@example.com`,
      subject: `Batch message ${i}`,
      text: `This is message ${i}.`,
      token: `b-${i}`,
    }));
    const response = await postBatch(fn.url, messages, "text/event-stream");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/event-stream/);
    const events = await readEvents(response);

    const completed = events.filter((e) => e.event === "completed").map((e) => JSON.parse(e.data));
    assert.equal(completed.length, 50);
    assert.deepEqual(
      completed.map((result) => result.index).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
    for (const result of completed) {
      assert.equal(result.status, "sent");
      assert.equal(result.token, `b-${result.index}`);
      assert.deepEqual(result.accepted, [`user${result.index}@example.com`]);
    }
    const statuses = events.filter((e) => e.event === "status").map((e) => JSON.parse(e.data));
    assert.ok(statuses.length > 0, "no status events");
    for (const status of statuses) assert.equal(status.token, `b-${status.index}`);
    // Every message reported its progress.
    assert.equal(new Set(statuses.map((status) => status.index)).size, 50);
    assert.equal(events.at(-1)!.event, "done");
    assert.deepEqual(JSON.parse(events.at(-1)!.data), { sent: 50, failed: 0, cancelled: 0 });
    const ids = events.map((event) => Number(event.id));
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), "ids do not increase");

    const received = (await smtp.waitForMessages(before + 50)).slice(before);
    assert.equal(received.length, 50);
    const byRecipient = new Map(received.map((message) => [message.to[0], message]));
    for (const result of completed) {
      const message = byRecipient.get(`user${result.index}@example.com`)!;
      assert.ok(message.text.includes(`Message-ID: ${result.messageId}`));
      assert.ok(message.text.includes(`This is message ${result.index}.`));
    }
    const sessions = new Set(received.map((message) => message.sessionId));
    assert.ok(sessions.size < 50, "no connection was reused");
  });

  it("answers a synchronous batch in input order, each with its own outcome", async () => {
    const recipients = [
      "first@example.com",
      "nobody@example.com",
      "third@example.com",
      "later@example.com",
      "fifth@example.com",
    ];
    const messages = recipients.map((to, i) => ({ to, text: `sync ${i}`, token: i }));
    const response = await postBatch(fn.url, messages, "application/json");
    assert.equal(response.status, 200);
    const { results } = await response.json();
    assert.deepEqual(results.map((result: { token: number }) => result.token), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      results.map((result: { status: string }) => result.status),
      ["sent", "failed", "sent", "failed", "sent"],
    );
    assert.equal(results[1].error.type, "rejected");
    assert.equal(results[3].error.type, "transient");
    for (const i of [0, 2, 4]) assert.deepEqual(results[i].accepted, [recipients[i]]);
  });
});
