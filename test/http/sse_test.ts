/**
 * `POST /send` with `Accept: text/event-stream`, read with a real SSE parser
 * (npm:eventsource-parser): the events and their order, keepalive comments,
 * errors answered as JSON before any stream, a client that goes away, and
 * that no frame carries a secret or a raw exception message.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { type Config, loadConfig } from "../../src/http/config.ts";
import { type CompletedDetail, SmtpClient } from "../../src/smtp/client.ts";
import type { SendResult } from "../../src/smtp/result.ts";
import {
  type FaultServer,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "../support/fault_server.ts";
import { guard } from "../support/guard.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readSse } from "../support/sse.ts";

const API_KEY = "sse-key-5a6b7c8d9e0f";
const SMTP_PASS = "smtp-pass-1a2b3c4d5e";
const SECRETS = [API_KEY, SMTP_PASS, btoa(`\0ann\0${SMTP_PASS}`), btoa(SMTP_PASS)];
/** Guards against a hang only; never reached when the code works. */
const HANG_GUARD_MS = 10_000;

let server: TestSmtpServer;
const clients: SmtpClient[] = [];
const faults: FaultServer[] = [];

before(async () => {
  server = await startSmtpServer({
    users: { ann: SMTP_PASS },
    rejectRecipients: { "nobody@example.com": { code: 550, message: "5.1.1 No such user" } },
  });
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(faults.map((fault) => fault.close().catch(() => {})));
  await server.close();
});

function env(url: string, caCert: string): Record<string, string> {
  return { SMTP_URL: url, SMTP_CA_CERT: caCert, API_KEYS: API_KEY, MAIL_FROM: "app@example.com" };
}

function serverConfig(): Config {
  return loadConfig(env(`smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`, server.caCert));
}

function appFor(config: Config, client?: SmtpClient): { app: Hono; client: SmtpClient } {
  client ??= new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  clients.push(client);
  return { app: createApp(config, { client }), client };
}

async function faultApp(script: SmtpScriptOptions, keepaliveMs?: number) {
  const fault = await startFaultServer(smtpScript(script));
  faults.push(fault);
  const config = loadConfig(env(`smtp://127.0.0.1:${fault.port}`, fault.caCert));
  return { ...appFor(keepaliveMs === undefined ? config : { ...config, keepaliveMs }), fault };
}

function sse(body: unknown, init: RequestInit = {}): RequestInit {
  return { ...jsonPost(body, { apiKey: API_KEY, accept: "text/event-stream" }), ...init };
}

interface Item {
  /** `comment` for `: …` lines, else the event name. */
  kind: string;
  id?: string;
  // Parsed JSON, checked field by field by the tests.
  // deno-lint-ignore no-explicit-any
  data?: any;
  comment?: string;
}

/**
 * Reads an SSE response to its end with eventsource-parser, events and
 * comments in order. `onItem` may return `"stop"` to cancel the stream (the
 * client going away).
 */
async function readStream(
  response: Response,
  onItem: (item: Item) => void | "stop" = () => {},
): Promise<{ items: Item[]; raw: string }> {
  const items: Item[] = [];
  const push = (item: Item) => {
    items.push(item);
    return onItem(item);
  };
  const { raw } = await readSse(response, {
    onEvent: (event) =>
      push({ kind: event.event ?? "message", id: event.id, data: JSON.parse(event.data) }),
    onComment: (comment) => push({ kind: "comment", comment }),
    hangGuardMs: HANG_GUARD_MS,
  });
  for (const secret of SECRETS) assert.ok(!raw.includes(secret), "a secret is in the stream");
  return { items, raw };
}

function nextCompletion(client: SmtpClient): Promise<CompletedDetail> {
  return new Promise((resolve) =>
    client.addEventListener("completed", (event) => resolve((event as CustomEvent).detail), {
      once: true,
    })
  );
}

const message = {
  to: ["bob@example.com", "cy@example.com"],
  subject: "Hi",
  text: "Body",
  token: "order-42",
};

describe("SSE: a successful send", () => {
  it("answers 200 event-stream at once, status events per step, then completed", async () => {
    const { app } = appFor(serverConfig());
    const before = server.messages.length;
    const response = await app.request("/send", sse(message));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("X-Accel-Buffering"), "no");
    assert.equal(response.headers.get("Cache-Control"), "no-cache");
    const { items } = await readStream(response);
    const events = items.filter((item) => item.kind !== "comment");

    const ids = events.map((event) => Number(event.id));
    assert.ok(
      ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1])),
      ids.join(),
    );

    const last = events.at(-1)!;
    assert.equal(last.kind, "completed");
    const result = last.data as SendResult;
    assert.equal(result.status, "sent");
    assert.equal(result.token, "order-42");
    assert.deepEqual(result.accepted, ["bob@example.com", "cy@example.com"]);
    assert.equal(server.messages.length, before + 1);
    assert.ok(server.messages.at(-1)!.text.includes(`Message-ID: ${result.messageId}`));

    const statuses = events.slice(0, -1);
    assert.ok(
      statuses.every((event) => event.kind === "status" && event.data.token === "order-42"),
    );
    const done = (phase: string) =>
      statuses.filter((event) => event.data.phase === phase && event.data.state === "done");
    for (
      const phase of ["connect", "greeting", "ehlo", "starttls", "auth", "mail", "data", "message"]
    ) {
      assert.ok(done(phase).length >= 1, `no done event for ${phase}`);
    }
    const rcpts = done("rcpt");
    assert.deepEqual(rcpts.map((event) => event.data.recipient), [
      "bob@example.com",
      "cy@example.com",
    ]);
    for (const rcpt of rcpts) assert.equal(rcpt.data.reply.code, 250);
    for (const auth of statuses.filter((event) => event.data.phase === "auth")) {
      assert.ok(!auth.data.reply?.message, "the AUTH exchange is in an event");
    }
    assert.equal(done("message")[0].data.reply.code, 250);
  });

  it("a failed send still streams 200, ending with the failed Result", async () => {
    const { app } = appFor(serverConfig());
    const response = await app.request("/send", sse({ ...message, to: "nobody@example.com" }));
    assert.equal(response.status, 200);
    const { items } = await readStream(response);
    const completed = items.filter((item) => item.kind === "completed");
    assert.equal(completed.length, 1);
    assert.equal(items.at(-1)!.kind, "completed");
    assert.equal(completed[0].data.status, "failed");
    assert.equal(completed[0].data.error.type, "rejected");
    assert.equal(completed[0].data.token, "order-42");
  });
});

describe("SSE: errors before the stream answer JSON", () => {
  it("validation 400, unauthorized 401, forbidden 403, unsupported 415", async () => {
    const { app } = appFor({
      ...serverConfig(),
      allowedTo: { addresses: [], domains: ["example.com"] },
    });
    const cases: [RequestInit, number][] = [
      [sse({ to: 5 }), 400],
      [
        sse(message, {
          headers: { Accept: "text/event-stream", "Content-Type": "application/json" },
        }),
        401,
      ],
      [sse({ ...message, to: "x@example.org" }), 403],
      [
        sse(message, {
          headers: { Accept: "text/event-stream", Authorization: `Bearer ${API_KEY}` },
        }),
        415,
      ],
    ];
    for (const [init, status] of cases) {
      const response = await app.request("/send", init);
      assert.equal(response.status, status);
      assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
      await response.json();
    }
  });
});

describe("SSE: keepalive", () => {
  it("writes : keepalive comments while the server is slow", async () => {
    const sawKeepalive = Promise.withResolvers<void>();
    const { app } = await faultApp({
      RCPT: async (conn) => {
        // The reply waits until the client has seen a keepalive comment.
        await sawKeepalive.promise;
        await conn.send("250 2.1.5 Ok\r\n");
      },
    }, 20);
    const response = await app.request("/send", sse({ ...message, to: "bob@example.com" }));
    const { items } = await readStream(response, (item) => {
      if (item.kind === "comment" && item.comment?.trim() === "keepalive") sawKeepalive.resolve();
    });
    const keepalive = items.findIndex((item) => item.kind === "comment");
    const completed = items.findIndex((item) => item.kind === "completed");
    assert.ok(keepalive !== -1 && keepalive < completed, "no keepalive before completed");
    assert.equal(items[completed].data.status, "sent");
    assert.equal(items.at(-1)!.kind, "completed");
  });
});

describe("SSE: the client goes away", () => {
  it("before the end of the data: the transaction is abandoned, nothing delivered", async () => {
    const release = Promise.withResolvers<void>();
    let delivered = 0;
    const { app, client } = await faultApp({
      RCPT: async (conn) => {
        await release.promise;
        await conn.send("250 2.1.5 Ok\r\n");
      },
      message: async (conn) => {
        delivered++;
        await conn.send("250 2.0.0 Ok\r\n");
      },
    });
    const completion = nextCompletion(client);
    const response = await app.request("/send", sse(message));
    const { items } = await readStream(
      response,
      (item) => item.kind === "status" && item.data.phase === "rcpt" ? "stop" : undefined,
    );
    assert.ok(items.every((item) => item.kind !== "completed"));
    const detail = await guard(completion, "the cancelled send", { ms: HANG_GUARD_MS });
    release.resolve();
    assert.equal(detail.cancelled, true);
    assert.equal(detail.result.status, "cancelled");
    assert.equal(delivered, 0);
  });
});

describe("SSE: an unexpected error", () => {
  it("ends with a sanitised completed event; the raw message only in the (redacted) log", async () => {
    class BrokenClient extends SmtpClient {
      override send(): Promise<SendResult> {
        return Promise.reject(new Error(`kaboom while using ${SMTP_PASS}`));
      }
    }
    const config = serverConfig();
    const { app } = appFor(config, new BrokenClient(config.smtp));
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
    let result: { items: Item[]; raw: string };
    try {
      result = await readStream(await app.request("/send", sse(message)));
    } finally {
      console.error = original;
    }
    const completed = result.items.filter((item) => item.kind === "completed");
    assert.equal(completed.length, 1);
    assert.equal(completed[0].data.status, "failed");
    // Nothing was written: a bug before the data is internal, never unknown_outcome.
    assert.equal(completed[0].data.error.type, "internal");
    assert.equal(completed[0].data.token, "order-42");
    assert.ok(!result.raw.includes("kaboom"), "the raw exception message reached the client");
    assert.ok(!result.raw.includes("event: error"));
    const log = lines.join("\n");
    assert.match(log, /kaboom/);
    assert.ok(!log.includes(SMTP_PASS), "the secret is in the log");
  });
});
