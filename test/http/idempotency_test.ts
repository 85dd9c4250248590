/**
 * Idempotency-Key and the public-caller view through the app (createApp with
 * the in-memory store), sending to a real smtp-server: which outcomes are kept
 * and which release the key, replays of refusals, the 501 of a platform
 * without a store, CORS for browsers, and what public callers see of SMTP
 * failures (bodies, SSE status events, the SMTP health check).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { Hono as HonoApp } from "hono";
import {
  captureIdempotencyKey,
  guardSends,
  idempotencyKeyProblem,
  isStorable,
  sendSessionOf,
} from "../../src/http/idempotency.ts";
import { memoryStore } from "../../src/store/memory.ts";
import { type Config, loadConfig } from "../../src/http/config.ts";
import type { HttpResult } from "../../src/http/problems.ts";
import { SmtpClient } from "../../src/smtp/client.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { delivered, withServer } from "../support/fault_client.ts";
import type { Store } from "../../src/store/store.ts";
import { readEvents } from "../support/sse.ts";

const API_KEY = "idem-unit-key-0123";
const ORIGIN = "https://site.example";
// Server text that must never reach a public caller.
const SERVER_TEXT = "mx7.relay.internal:2525 says no";

let server: TestSmtpServer;
const clients: SmtpClient[] = [];

before(async () => {
  server = await startSmtpServer({
    rejectRecipients: {
      "gone@example.com": { code: 550, message: `5.1.1 ${SERVER_TEXT}` },
      "busy@example.com": { code: 451, message: `4.3.0 ${SERVER_TEXT}` },
    },
  });
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server.close();
});

function configFor(env: Record<string, string> = {}, store = true): Config {
  return loadConfig({
    SMTP_URL: `smtp://127.0.0.1:${server.port}?tls=none`,
    API_KEYS: API_KEY,
    MAIL_FROM: "app@example.com",
    CORS_ORIGINS: ORIGIN,
    ALLOWED_TO: "@example.com",
    ...env,
  }, { store });
}

function appFor(config: Config = configFor()): Hono {
  const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  clients.push(client);
  return createApp(config, { client });
}

function post(
  app: Hono,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(app.request(path, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${API_KEY}`,
      "Content-Type": "application/json",
      ...headers,
    },
    body: JSON.stringify(body),
  }));
}

const to = (address: string, token?: string | number) => ({
  to: address,
  text: "hi",
  ...(token === undefined ? {} : { token }),
});

describe("which outcomes an Idempotency-Key keeps", () => {
  it("a permanent refusal is kept: the retry replays the 422 and sends nothing", async () => {
    const app = appFor();
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const first = await post(app, "/send", to("gone@example.com"), key);
    const text = await first.text();
    assert.equal(first.status, 422);
    const again = await post(app, "/send", to("gone@example.com"), key);
    assert.equal(again.status, 422);
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.equal(await again.text(), text);
  });

  it("a temporary refusal releases the key: the retry really retries", async () => {
    const app = appFor();
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const first = await post(app, "/send", to("busy@example.com"), key);
    assert.equal(first.status, 503);
    await first.body?.cancel();
    const again = await post(app, "/send", to("busy@example.com"), key);
    assert.equal(again.status, 503);
    assert.equal(again.headers.get("Idempotent-Replayed"), null);
    await again.body?.cancel();
  });

  it("requests refused before SMTP release it too (a 403 is retried after fixing nothing)", async () => {
    const app = appFor();
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const before = server.messages.length;
    const refused = await post(app, "/send", to("x@elsewhere.example"), key);
    assert.equal(refused.status, 403);
    await refused.body?.cancel();
    // Not replayed and not a mismatch: the key was never claimed.
    const sent = await post(app, "/send", to("ok@example.com"), key);
    assert.equal(sent.status, 200);
    await sent.body?.cancel();
    assert.equal(server.messages.length, before + 1);
  });

  it("a batch is kept once any message was sent, or when every one was rejected", () => {
    const result = (status: HttpResult["status"], type?: string) =>
      ({
        status,
        token: null,
        accepted: [],
        rejected: [],
        ...(type === undefined ? {} : { error: { type, message: "" } }),
      }) as HttpResult;
    assert.ok(isStorable([result("sent"), result("failed", "transient")]));
    assert.ok(isStorable([result("failed", "unknown_outcome"), result("failed", "timeout")]));
    assert.ok(isStorable([result("failed", "rejected"), result("failed", "rejected")]));
    assert.ok(!isStorable([result("failed", "rejected"), result("failed", "transient")]));
    assert.ok(!isStorable([result("cancelled", "cancelled")]));
    assert.ok(!isStorable([]));
  });

  it("keys: 1 to 255 visible ASCII characters", () => {
    assert.equal(idempotencyKeyProblem("a"), undefined);
    assert.equal(idempotencyKeyProblem("~".repeat(255)), undefined);
    for (const bad of ["", "x".repeat(256), "a b", "a\u00e9", "a\x7f", "\t"]) {
      assert.match(idempotencyKeyProblem(bad) ?? "", /Idempotency-Key/, JSON.stringify(bad));
    }
  });
});

describe("a request that fails unexpectedly abandons its claim", () => {
  /** A send route that claims, maybe marks message 0, then fails; the clock is the test's. */
  function failingApp(markFirst: boolean) {
    let now = 1_000_000;
    const config = configFor();
    const options = {
      config,
      store: memoryStore(),
      redact: (text: string) => text,
      now: () => now,
    };
    const app = new HonoApp();
    app.post("/send", captureIdempotencyKey(options), async (c) => {
      await c.req.text();
      const refused = await guardSends(c, [{ token: "t" } as never], { ...options, batch: false });
      if (refused !== undefined) return refused;
      const session = sendSessionOf(c)!;
      if (markFirst) await session.beforeDataEnd(0)?.();
      await session.abandon();
      return c.text("failed unexpectedly", 500);
    });
    const request = () =>
      app.request("/send", {
        method: "POST",
        headers: { "Idempotency-Key": "k", Authorization: `Bearer ${API_KEY}` },
        body: "{}",
      });
    return { request, advance: (ms: number) => (now += ms), store: options.store };
  }

  it("released at once when no message reached its data", async () => {
    const { request, store } = failingApp(false);
    assert.equal((await request()).status, 500);
    assert.equal((await request()).status, 500, "the retry was not let through");
    await store.close();
  });

  it("left to expire into unknown_outcome when a message was marked", async () => {
    const { request, advance, store } = failingApp(true);
    assert.equal((await request()).status, 500);
    assert.equal((await request()).status, 409, "not renewed, but its lease still runs");
    advance(2 * 30_000);
    const replay = await request();
    assert.equal(replay.status, 502);
    assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
    assert.equal((await replay.json()).error.type, "unknown_outcome");
    await store.close();
  });
});

/**
 * A memory store as slow as a remote one for the "data written" mark (each
 * mark commits `latencyMs` after it is asked for), or failing it; `marks`
 * lists the message indexes whose mark is stored.
 */
function markingStore(options: { latencyMs?: number; fail?: boolean }) {
  const inner = memoryStore();
  const marks: number[] = [];
  const store: Store = {
    async run(key, name, input) {
      if (name !== "markWritten") return await inner.run(key, name, input);
      await new Promise((resolve) => setTimeout(resolve, options.latencyMs ?? 0));
      if (options.fail) throw new Error("the store is unreachable");
      const output = await inner.run(key, name, input);
      marks.push((input as { index: number }).index);
      return output;
    },
    close: () => inner.close(),
  };
  return { store, marks };
}

describe("the data-written mark of a keyed request", () => {
  const faultConfig = (port: number) =>
    configFor({ SMTP_URL: `smtp://127.0.0.1:${port}?tls=none` });

  it("is stored before the SMTP server receives the final dot (single and batch)", async () => {
    const { store, marks } = markingStore({ latencyMs: 25 });
    // Which message each dot ended (by its recipient), and the marks stored by then.
    const atDot: { index: number; marks: number[] }[] = [];
    await withServer({
      message: async (conn, content) => {
        const index = /^To: b@/m.test(content) ? 1 : 0;
        atDot.push({ index, marks: [...marks] });
        await conn.send("250 2.0.0 Ok: queued\r\n");
      },
    }, async (server) => {
      const config = faultConfig(server.port);
      const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
      clients.push(client);
      const app = createApp(config, { client, store });
      const key = { "Idempotency-Key": crypto.randomUUID() };
      const sent = await post(app, "/send", to("ok@example.com"), key);
      assert.equal(sent.status, 200);
      await sent.body?.cancel();
      assert.deepEqual(atDot, [{ index: 0, marks: [0] }]);
      marks.length = 0;
      atDot.length = 0;
      const batch = await post(app, "/send/batch", {
        messages: [to("a@example.com"), to("b@example.com")],
      }, { "Idempotency-Key": crypto.randomUUID() });
      assert.equal(batch.status, 200);
      const { results } = await batch.json();
      assert.deepEqual(results.map((r: HttpResult) => r.status), ["sent", "sent"]);
      // Each message's dot came after its own mark.
      assert.deepEqual(atDot.map((dot) => dot.index).sort(), [0, 1]);
      for (const dot of atDot) assert.ok(dot.marks.includes(dot.index), JSON.stringify(dot));
    });
  });

  it("a mark the store cannot take stops the message: 500 internal, nothing delivered, key released", async () => {
    const failing = markingStore({ fail: true });
    await withServer({}, async (server) => {
      const config = faultConfig(server.port);
      const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
      clients.push(client);
      const app = createApp(config, { client, store: failing.store });
      const key = { "Idempotency-Key": crypto.randomUUID() };
      const first = await post(app, "/send", to("ok@example.com"), key);
      assert.equal(first.status, 500);
      const body = await first.json();
      assert.equal(body.error.type, "internal");
      assert.match(body.error.message, /Nothing was delivered/);
      const again = await post(app, "/send", to("ok@example.com"), key);
      assert.equal(again.status, 500, "released: the retry ran again (not a replay, not a 409)");
      assert.equal(again.headers.get("Idempotent-Replayed"), null);
      await again.body?.cancel();
      await client.close();
      assert.equal(await delivered(server), false);
    });
  });

  it("a request without a key sends without waiting for the store", async () => {
    const { store, marks } = markingStore({ fail: true });
    await withServer({}, async (server) => {
      const config = faultConfig(server.port);
      const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
      clients.push(client);
      const app = createApp(config, { client, store });
      const sent = await post(app, "/send", to("ok@example.com"));
      assert.equal(sent.status, 200);
      await sent.body?.cancel();
      assert.deepEqual(marks, []);
    });
  });
});

describe("the OpenAPI document", () => {
  it("documents the Idempotency-Key header and the 409, 422, 429 and 501 answers", async () => {
    const doc = await (await appFor().request("/openapi.json")).json();
    for (const path of ["/send", "/send/batch"]) {
      const operation = doc.paths[path].post;
      const names = operation.parameters.map((p: { name: string }) => p.name);
      assert.ok(names.includes("Idempotency-Key"), names.join());
      for (const status of ["409", "422", "429", "501"]) {
        assert.ok(operation.responses[status], `${path} ${status}`);
      }
      assert.match(operation.responses["429"].description, /rate_limited/);
    }
  });
});

describe("a platform without a store", () => {
  it("answers an Idempotency-Key with 501 idempotency_unavailable and sends nothing", async () => {
    const app = appFor(configFor({ CORS_ORIGINS: "", ALLOWED_TO: "" }, false));
    const before = server.messages.length;
    const response = await post(app, "/send", to("ok@example.com"), {
      "Idempotency-Key": "k-1",
    });
    const body = await response.json();
    assert.equal(response.status, 501);
    assert.equal(body.error.type, "idempotency_unavailable");
    assert.equal(server.messages.length, before);
    // Without the header it sends as usual.
    assert.equal((await post(app, "/send", to("ok@example.com"))).status, 200);
  });
});

describe("browsers", () => {
  it("the preflight allows Idempotency-Key; answers expose the idempotency and rate-limit fields", async () => {
    const app = appFor();
    const preflight = await app.request("/send", {
      method: "OPTIONS",
      headers: {
        Origin: ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key",
      },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("Access-Control-Allow-Headers") ?? "", /Idempotency-Key/i);
    const response = await post(app, "/send", to("ok@example.com"), { Origin: ORIGIN });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const exposed = (response.headers.get("Access-Control-Expose-Headers") ?? "").toLowerCase();
    for (const name of ["retry-after", "idempotent-replayed", "ratelimit", "ratelimit-policy"]) {
      assert.ok(exposed.split(/\s*,\s*/).includes(name), `${name} not exposed: ${exposed}`);
    }
    // A browser is a public caller: rate-limited by default, even with an API key.
    assert.equal(response.headers.get("RateLimit-Policy"), '"messages";q=60;w=3600');
  });
});

describe("what public callers see of SMTP failures", () => {
  it("bodies: type, phase and codes with a generic message; server callers get the detail", async () => {
    const app = appFor();
    const publicAnswer = await (await post(app, "/send", to("gone@example.com", 3), {
      Origin: ORIGIN,
    })).text();
    assert.ok(!publicAnswer.includes("internal"), publicAnswer);
    assert.ok(!publicAnswer.includes(String(server.port)), publicAnswer);
    const body = JSON.parse(publicAnswer);
    assert.deepEqual(
      { ...body.error, message: undefined },
      { type: "rejected", phase: "rcpt", code: 550, enhancedCode: "5.1.1", message: undefined },
    );
    assert.equal(body.token, 3);
    const serverAnswer = await (await post(app, "/send", to("gone@example.com"))).text();
    assert.ok(serverAnswer.includes(SERVER_TEXT), serverAnswer);
  });

  it("SSE status events keep the reply codes, not the text", async () => {
    const app = appFor();
    const events = await readEvents(
      await post(app, "/send", to("gone@example.com"), {
        Origin: ORIGIN,
        Accept: "text/event-stream",
      }),
    );
    const raw = events.map((event) => event.data).join("\n");
    assert.ok(!raw.includes("internal"), raw);
    const rcpt = events.map((event) => JSON.parse(event.data)).find((data) =>
      data.phase === "rcpt" && data.state === "done"
    );
    assert.deepEqual(rcpt.reply, { code: 550, enhancedCode: "5.1.1", message: "" });
  });

  it("auth and TLS failures name neither the SMTP user, host, port nor TLS peer", async () => {
    const secured = await startSmtpServer({ users: { "mailer-user": "right-pass" } });
    try {
      const cases = [
        // Wrong password: the auth failure would name the user.
        configFor({
          SMTP_URL: `smtp://mailer-user:wrong-pass@localhost:${secured.port}`,
          SMTP_CA_CERT: secured.caCert,
        }),
        // The server's certificate is from a CA we do not trust: the TLS failure names the peer.
        configFor({ SMTP_URL: `smtp://mailer-user:right-pass@localhost:${secured.port}` }),
      ];
      for (const [i, config] of cases.entries()) {
        const app = appFor(config);
        const answer = await post(app, "/send", to("ok@example.com"), { Origin: ORIGIN });
        const text = await answer.text();
        assert.equal(answer.status, 502, text);
        assert.equal(JSON.parse(text).error.type, i === 0 ? "auth" : "tls");
        const serverDetail = i === 0 ? "credentials invalid" : "localhost";
        for (const detail of ["mailer-user", "localhost", String(secured.port), serverDetail]) {
          assert.ok(!text.includes(detail), `the public answer names ${detail}: ${text}`);
        }
        const detailed = await (await post(app, "/send", to("ok@example.com"))).text();
        assert.ok(detailed.includes(serverDetail), `server callers get the detail: ${detailed}`);
      }
    } finally {
      await secured.close();
    }
  });

  it("the SMTP health check does not name the server to a public caller", async () => {
    const config = configFor({ SMTP_URL: "smtp://127.0.0.1:1?tls=none" });
    const app = appFor(config);
    const response = await app.request("/health?smtp=1", {
      headers: { Authorization: `Bearer ${API_KEY}`, Origin: ORIGIN },
    });
    const text = await response.text();
    assert.equal(response.status, 502);
    assert.equal(JSON.parse(text).error.type, "connection");
    assert.ok(!text.includes("127.0.0.1"), text);
    const detail = await (await app.request("/health?smtp=1", {
      headers: { Authorization: `Bearer ${API_KEY}` },
    })).text();
    assert.ok(detail.includes("127.0.0.1"), detail);
  });
});
