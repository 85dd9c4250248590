/**
 * `POST /send/batch` against a real smtp-server: input order, per-message
 * outcomes under a 200, and the SSE form (`index` on every event, `done`).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/http/config.ts";
import {
  isValidatedMessage,
  type MessageInput,
  type ValidatedMessage,
} from "../../src/message/schema.ts";
import { type SendOptions, SmtpClient } from "../../src/smtp/client.ts";
import type { SendResult } from "../../src/smtp/types.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readEvents } from "../support/sse.ts";

const API_KEY = "batch-key-6f5e4d3c2b1a";

let server: TestSmtpServer;
let client: SmtpClient;

before(async () => {
  server = await startSmtpServer({
    rejectRecipients: {
      "nobody@example.com": { code: 550, message: "5.1.1 No such user" },
      "later@example.com": { code: 450, message: "4.2.1 Mailbox busy" },
    },
  });
});

after(async () => {
  await client?.close();
  await server.close();
});

function configOf() {
  return loadConfig({
    SMTP_URL: `smtp://127.0.0.1:${server.port}`,
    SMTP_CA_CERT: server.caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "app@example.com",
  });
}

function app() {
  const config = configOf();
  client ??= new SmtpClient({ ...config.smtp, pool: { maxConnections: 3, idleTimeoutMs: 200 } });
  return createApp(config, { client });
}

/**
 * An SmtpClient that notes, for each message it is handed, whether it is a
 * ValidatedMessage, and how many messages it had been handed when each send ended.
 */
class WatchedClient extends SmtpClient {
  validated: boolean[] = [];
  handedWhenDone: number[] = [];

  override send(
    message: MessageInput | ValidatedMessage,
    options?: SendOptions,
  ): Promise<SendResult> {
    this.validated.push(isValidatedMessage(message));
    const sent = super.send(message, options);
    sent.finally(() => this.handedWhenDone.push(this.validated.length)).catch(() => {});
    return sent;
  }
}

function request(messages: unknown[], accept = "application/json"): RequestInit {
  return jsonPost({ messages }, { apiKey: API_KEY, accept });
}

const recipients = ["a@example.com", "nobody@example.com", "b@example.com", "later@example.com"];
const messages = recipients.map((to, i) => ({ to, text: `message ${i}`, token: `t${i}` }));

describe("POST /send/batch", () => {
  it("answers 200 with one Result per message, in input order", async () => {
    const before = server.messages.length;
    const response = await app().request("/send/batch", request(messages));
    assert.equal(response.status, 200);
    const { results } = await response.json();
    assert.deepEqual(results.map((r: { token: string }) => r.token), ["t0", "t1", "t2", "t3"]);
    assert.deepEqual(results.map((r: { status: string }) => r.status), [
      "sent",
      "failed",
      "sent",
      "failed",
    ]);
    assert.equal(results[1].error.type, "rejected");
    assert.equal(results[3].error.type, "transient");
    const delivered = server.messages.slice(before).map((m) => m.to[0]).sort();
    assert.deepEqual(delivered, ["a@example.com", "b@example.com"]);
  });

  it("streams status and completed events with index, then done", async () => {
    const response = await app().request("/send/batch", request(messages, "text/event-stream"));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("X-Accel-Buffering"), "no");
    const events = await readEvents(response);

    const completed = events.filter((event) => event.event === "completed").map((e) =>
      JSON.parse(e.data)
    );
    assert.deepEqual(completed.map((r) => r.index).sort(), [0, 1, 2, 3]);
    for (const result of completed) assert.equal(result.token, `t${result.index}`);
    const statuses = events.filter((event) => event.event === "status").map((e) =>
      JSON.parse(e.data)
    );
    assert.ok(statuses.length > 0);
    for (const status of statuses) assert.equal(status.token, `t${status.index}`);
    const rcpt = statuses.filter((status) => status.phase === "rcpt" && status.state === "done");
    assert.ok(rcpt.length > 0, "no rcpt status events");
    for (const status of rcpt) assert.equal(status.recipient, recipients[status.index]);

    assert.equal(events.at(-1)!.event, "done");
    assert.deepEqual(JSON.parse(events.at(-1)!.data), { sent: 2, failed: 2, cancelled: 0 });
    // Ids count up from 1 without gaps: no event was lost on the way.
    assert.deepEqual(events.map((event) => Number(event.id)), events.map((_, i) => i + 1));
    assert.equal(rcpt.length, 4);
  });

  it("opens at most SMTP_POOL_MAX connections for a batch", async () => {
    const config = loadConfig({
      SMTP_URL: `smtp://127.0.0.1:${server.port}`,
      SMTP_CA_CERT: server.caCert,
      API_KEYS: API_KEY,
      MAIL_FROM: "app@example.com",
      SMTP_POOL_MAX: "2",
    });
    // The client the app builds from its configuration when it is given none.
    const own = new SmtpClient(config.smtp);
    try {
      const opened = server.connections;
      const batch = Array.from({ length: 8 }, (_, i) => ({ to: "a@example.com", text: `p${i}` }));
      const response = await createApp(config, { client: own }).request(
        "/send/batch",
        request(batch),
      );
      const { results } = await response.json();
      assert.deepEqual(results.map((r: { status: string }) => r.status), batch.map(() => "sent"));
      const used = server.connections - opened;
      assert.ok(used >= 1 && used <= 2, `${used} connections for SMTP_POOL_MAX=2`);
    } finally {
      await own.close();
    }
  });

  it("hands every message to the client at once, validated once: the pool bounds concurrency", async () => {
    const config = configOf();
    const watched = new WatchedClient({
      ...config.smtp,
      pool: { maxConnections: 2, idleTimeoutMs: 200 },
    });
    try {
      const batch = Array.from({ length: 12 }, (_, i) => ({ to: "a@example.com", text: `m${i}` }));
      const response = await createApp(config, { client: watched }).request(
        "/send/batch",
        request(batch),
      );
      const { results } = await response.json();
      assert.deepEqual(results.map((r: { status: string }) => r.status), batch.map(() => "sent"));
      assert.deepEqual(watched.validated, batch.map(() => true), "parsed again by the client");
      // No send waited for another before it was queued: all 12 were in before the first ended.
      assert.deepEqual(watched.handedWhenDone, batch.map(() => batch.length));
    } finally {
      await watched.close();
    }
  });
});
