/**
 * The HTTP surface that is decided before any SMTP: routing, auth, CORS,
 * content types, body limits, validation, policy, health, OpenAPI. Sends that
 * pass every check go to a real smtp-server, so "allowed" means delivered.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { type Config, loadConfig } from "../../src/http/config.ts";
import { logFormatOf } from "../../src/http/logging.ts";
import { SmtpClient } from "../../src/smtp/client.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";

const API_KEY = "test-key-4f9c2e1d8b7a";
const SMTP_PASS = "smtp-pass-7e3d9a1c5b";
const SECRETS = [API_KEY, SMTP_PASS];

let server: TestSmtpServer;
const clients: SmtpClient[] = [];

before(async () => {
  server = await startSmtpServer({ users: { ann: SMTP_PASS } });
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server.close();
});

/** The configuration for `env` on top of the test server and an API key. */
function configFor(env: Record<string, string> = {}): Config {
  return loadConfig({
    SMTP_URL: `smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`,
    SMTP_CA_CERT: server.caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "App <app@example.com>",
    ...env,
  });
}

/** An app on `config`, with a client the suite closes. */
function appFor(config: Config): Hono {
  const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  clients.push(client);
  return createApp(config, { client });
}

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: {
      Authorization: `Bearer ${API_KEY}`,
      "Content-Type": "application/json",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/** Reads a JSON answer, checks status and content type, and that no secret is in it. */
// Parsed JSON, checked field by field by the tests.
// deno-lint-ignore no-explicit-any
async function json(response: Response, status: number): Promise<Record<string, any>> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), "a secret is in the body");
  return JSON.parse(text);
}

const message = { to: "bob@example.com", subject: "Hi", text: "Hello" };

const EXPOSED = [
  "Retry-After",
  "X-Request-Id",
  "Idempotent-Replayed",
  "RateLimit",
  "RateLimit-Policy",
];

/** What `fn` writes with `console[method]`, not shown. */
async function capture(method: "warn" | "info", fn: () => Promise<void>): Promise<string[]> {
  const original = console[method];
  const lines: string[] = [];
  console[method] = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  try {
    await fn();
  } finally {
    console[method] = original;
  }
  return lines;
}

describe("authentication", () => {
  it("refuses a request without Authorization with 401 unauthorized", async () => {
    const app = appFor(configFor());
    const body = await json(
      await app.request("/send", post(message, { Authorization: "" })),
      401,
    );
    assert.equal(body.error.type, "unauthorized");
    assert.equal(body.status, "failed");
  });

  it("refuses a wrong key and a malformed header with 401", async () => {
    const app = appFor(configFor());
    for (
      const value of [`Bearer ${API_KEY}x`, "Bearer wrong", `Basic ${btoa("a:b")}`, "Bearer a b"]
    ) {
      const response = await app.request("/send", post(message, { Authorization: value }));
      const body = await json(response, 401);
      assert.equal(body.error.type, "unauthorized");
      assert.ok(response.headers.get("WWW-Authenticate")?.startsWith("Bearer"));
    }
  });

  it("accepts the right key (the message is then delivered)", async () => {
    const app = appFor(configFor());
    const before = server.messages.length;
    const body = await json(await app.request("/send", post(message)), 200);
    assert.equal(body.status, "sent");
    assert.equal(server.messages.length, before + 1);
  });

  it("a public endpoint (no API_KEYS, ALLOWED_TO set) needs no key", async () => {
    const config = loadConfig({
      SMTP_URL: `smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`,
      SMTP_CA_CERT: server.caCert,
      ALLOWED_TO: "@example.com",
      MAIL_FROM: "app@example.com",
    });
    const app = appFor(config);
    const body = await json(
      await app.request("/send", post(message, { Authorization: "" })),
      200,
    );
    assert.equal(body.status, "sent");
  });
});

describe("CORS", () => {
  // A page's key is public: with CORS_ORIGINS, ALLOWED_TO is required.
  const config = () =>
    configFor({ CORS_ORIGINS: "https://app.example.com", ALLOWED_TO: "@example.com" });
  const preflight = (origin: string) => ({
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "authorization, content-type",
    },
  });

  it("answers the preflight of an allowed origin", async () => {
    const response = await appFor(config()).request("/send", preflight("https://app.example.com"));
    assert.equal(response.status, 204);
    assert.equal(response.headers.get("Access-Control-Allow-Origin"), "https://app.example.com");
    assert.match(response.headers.get("Access-Control-Allow-Methods") ?? "", /POST/);
    assert.match(response.headers.get("Access-Control-Allow-Headers") ?? "", /Authorization/i);
  });

  it("refuses the preflight and the request of another origin with 403 forbidden", async () => {
    const app = appFor(config());
    const response = await app.request("/send", preflight("https://evil.example"));
    const body = await json(response, 403);
    assert.equal(body.error.type, "forbidden");
    assert.equal(response.headers.get("Access-Control-Allow-Origin"), null);
    const direct = await app.request(
      "/send",
      post(message, { Origin: "https://evil.example" }),
    );
    assert.equal((await json(direct, 403)).error.type, "forbidden");
  });

  it("sets the CORS headers on the answer to an allowed origin", async () => {
    const response = await appFor(config()).request(
      "/send",
      post(message, { Origin: "https://app.example.com" }),
    );
    await json(response, 200);
    assert.equal(response.headers.get("Access-Control-Allow-Origin"), "https://app.example.com");
    assert.match(response.headers.get("Access-Control-Expose-Headers") ?? "", /X-Request-Id/);
  });

  it("the preflight allows Idempotency-Key; error answers expose the headers clients read", async () => {
    const app = appFor(config());
    const response = await app.request("/send", {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "idempotency-key, content-type",
      },
    });
    assert.equal(response.status, 204);
    assert.match(response.headers.get("Access-Control-Allow-Headers") ?? "", /Idempotency-Key/i);
    const refused = await app.request(
      "/send",
      post({ ...message, to: "x@example.org" }, { Origin: "https://app.example.com" }),
    );
    await json(refused, 403);
    const exposed = (refused.headers.get("Access-Control-Expose-Headers") ?? "").split(/,\s*/);
    for (const name of EXPOSED) assert.ok(exposed.includes(name), `${name} is not exposed`);
  });

  it("logs a refused origin once, naming CORS_ORIGINS", async () => {
    const app = appFor(config());
    const lines = await capture("warn", async () => {
      for (let i = 0; i < 3; i++) {
        await (await app.request("/health", { headers: { Origin: "https://other.example" } }))
          .body?.cancel();
      }
    });
    const refusals = lines.filter((line) => line.includes("https://other.example"));
    assert.equal(refusals.length, 1, lines.join("\n"));
    assert.match(refusals[0], /CORS_ORIGINS/);
  });

  it("development mode allows http://localhost:* and http://127.0.0.1:* without CORS_ORIGINS", async () => {
    const app = appFor(loadConfig({
      SMTP_URL: `smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`,
      SMTP_CA_CERT: server.caCert,
      MAIL_FROM: "App <app@example.com>",
    }, { development: true }));
    for (const origin of ["http://localhost:5173", "http://127.0.0.1:3000", "http://localhost"]) {
      const response = await app.request("/send", {
        method: "POST",
        headers: { Origin: origin, "Content-Type": "application/json" },
        body: JSON.stringify(message),
      });
      await json(response, 200);
      assert.equal(response.headers.get("Access-Control-Allow-Origin"), origin);
    }
    for (
      const origin of ["https://localhost:5173", "http://localhost.evil.example", "http://10.0.0.1"]
    ) {
      const response = await app.request("/health", { headers: { Origin: origin } });
      assert.equal((await json(response, 403)).error.type, "forbidden", origin);
    }
  });

  it("without CORS_ORIGINS every browser origin is refused, server-side callers are not", async () => {
    const app = appFor(configFor());
    const refused = await app.request(
      "/send",
      post(message, { Origin: "https://app.example.com" }),
    );
    assert.equal((await json(refused, 403)).error.type, "forbidden");
    await json(await app.request("/health"), 200);
  });
});

describe("content type and JSON", () => {
  it("answers 415 in JSON for a body that is not application/json", async () => {
    const app = appFor(configFor());
    for (const type of ["text/plain", "application/x-www-form-urlencoded", ""]) {
      const init = post(message, { "Content-Type": type });
      if (type === "") delete (init.headers as Record<string, string>)["Content-Type"];
      const body = await json(await app.request("/send", init), 415);
      assert.equal(body.error.type, "unsupported_media_type");
      assert.match(body.error.message, /application\/json/);
    }
  });

  it("accepts application/json with a charset", async () => {
    const app = appFor(configFor());
    const init = post(message, { "Content-Type": "application/json; charset=utf-8" });
    assert.equal((await json(await app.request("/send", init), 200)).status, "sent");
  });

  it("answers malformed JSON with 400 validation, not Hono's text", async () => {
    const app = appFor(configFor());
    for (const text of ['{"to": "bob@example.com",', "", "{'to': 1}"]) {
      const body = await json(await app.request("/send", post(text)), 400);
      assert.equal(body.error.type, "validation");
      assert.deepEqual(body.error.issues, [{ path: "", message: "is not valid JSON" }]);
    }
  });

  it("answers schema failures with the issue paths, never the input", async () => {
    const app = appFor(configFor());
    const bad = {
      to: ["bob@example.com", "no-at-sign-XYZZY"],
      subject: 42,
      attachments: [{ filename: "a.txt", content: "!!not base64 QWERTY!!" }],
      token: "t-1",
    };
    const response = await app.request("/send", post(bad));
    const text = await response.clone().text();
    const body = await json(response, 400);
    assert.equal(body.error.type, "validation");
    const paths = body.error.issues.map((issue: { path: string }) => issue.path);
    assert.ok(paths.includes("to[1]"), paths.join());
    assert.ok(paths.includes("subject"), paths.join());
    assert.ok(paths.includes("attachments[0].content"), paths.join());
    assert.ok(!text.includes("XYZZY") && !text.includes("QWERTY"), "the input is echoed");
    assert.equal(body.token, "t-1");
  });

  it("requires from when no MAIL_FROM is configured", async () => {
    const config = configFor();
    const app = appFor({ ...config, mailFrom: undefined });
    const body = await json(await app.request("/send", post(message)), 400);
    assert.deepEqual(body.error.issues.map((issue: { path: string }) => issue.path), ["from"]);
  });
});

describe("body limits", () => {
  const config = () => configFor({ MAX_MESSAGE_BYTES: "1000" });

  it("refuses a Content-Length over the limit without reading the body", async () => {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new TextEncoder().encode(" ".repeat(500)));
      },
    }, { highWaterMark: 0 });
    const response = await appFor(config()).request("/send", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${API_KEY}`,
        "Content-Type": "application/json",
        "Content-Length": "5000",
      },
      body,
    });
    const answer = await json(response, 413);
    assert.equal(answer.error.type, "too_large");
    assert.match(answer.error.message, /MAX_MESSAGE_BYTES/);
    assert.equal(pulls, 0, "the body was read");
  });

  it("refuses a chunked body that grows over the limit", async () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 3000) return controller.close();
        sent += 300;
        controller.enqueue(new TextEncoder().encode(" ".repeat(300)));
      },
    }, { highWaterMark: 0 });
    const response = await appFor(config()).request("/send", {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body,
    });
    assert.equal((await json(response, 413)).error.type, "too_large");
    assert.ok(sent < 3000, "the whole body was read");
  });

  it("accepts a body under the limit", async () => {
    const body = await json(await appFor(config()).request("/send", post(message)), 200);
    assert.equal(body.status, "sent");
  });

  it("refuses more recipients than MAX_RECIPIENTS with 413", async () => {
    const app = appFor(configFor({ MAX_RECIPIENTS: "2" }));
    const body = await json(
      await app.request(
        "/send",
        post({ to: "a@example.com, b@example.com", cc: "c@example.com", text: "Hi" }),
      ),
      413,
    );
    assert.equal(body.error.type, "too_large");
    assert.match(body.error.message, /MAX_RECIPIENTS/);
  });
});

describe("allowlists on the normalised address", () => {
  it("allows an IDN domain written in Unicode or upper case, and sends the A-label form", async () => {
    const app = appFor(configFor({ ALLOWED_TO: "@bücher.example, Ann@Example.org" }));
    const cases = [
      ["kim@BÜCHER.Example", "kim@xn--bcher-kva.example"],
      ["kim@xn--bcher-kva.example", "kim@xn--bcher-kva.example"],
      ["Ann@EXAMPLE.ORG", "Ann@example.org"],
    ];
    for (const [to, wire] of cases) {
      const before = server.commands.length;
      const body = await json(await app.request("/send", post({ ...message, to })), 200);
      assert.equal(body.status, "sent");
      assert.deepEqual(body.accepted, [wire]);
      const rcpt = server.commands.slice(before).filter((line) => line.startsWith("RCPT TO:"));
      assert.deepEqual(rcpt, [`RCPT TO:<${wire}>`]);
    }
  });

  it("refuses a recipient outside ALLOWED_TO with 403, naming the field", async () => {
    const app = appFor(configFor({ ALLOWED_TO: "@example.com" }));
    const before = server.messages.length;
    const cases: [Record<string, unknown>, string][] = [
      [{ to: "x@example.org" }, "to[0]"],
      [{ to: "a@example.com", cc: ["b@example.com", "c@example.net"] }, "cc[1]"],
      [{ to: "a@example.com", bcc: "hidden@sub.example.com" }, "bcc[0]"],
    ];
    for (const [recipients, path] of cases) {
      const response = await app.request("/send", post({ ...recipients, text: "x" }));
      const body = await json(response, 403);
      assert.equal(body.error.type, "forbidden");
      assert.ok(body.error.message.startsWith(`${path} `), body.error.message);
      assert.match(body.error.message, /ALLOWED_TO/);
    }
    assert.equal(server.messages.length, before, "something was delivered");
  });

  it("allows from = MAIL_FROM or ALLOWED_FROM and refuses other senders", async () => {
    const app = appFor(configFor({ ALLOWED_FROM: "@news.example.com" }));
    const ok = ["app@EXAMPLE.com", "Team <team@News.Example.COM>", { address: "app@example.com" }];
    for (const from of ok) {
      assert.equal(
        (await json(await app.request("/send", post({ ...message, from })), 200)).status,
        "sent",
      );
    }
    const refused = await app.request(
      "/send",
      post({ ...message, from: "ceo@example.com" }),
    );
    const body = await json(refused, 403);
    assert.equal(body.error.type, "forbidden");
    assert.match(body.error.message, /^from .*ALLOWED_FROM/);
  });

  it("development mode allows any sender when ALLOWED_FROM is unset", async () => {
    const config = loadConfig({
      SMTP_URL: `smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`,
      SMTP_CA_CERT: server.caCert,
    }, { development: true });
    const app = appFor(config);
    const body = await json(
      await app.request("/send", post({ ...message, from: "anyone@anywhere.example" })),
      200,
    );
    assert.equal(body.status, "sent");
    assert.equal(server.messages.at(-1)!.from, "anyone@anywhere.example");
  });
});

describe("batch validation and policy", () => {
  it("refuses more messages than MAX_BATCH with 413", async () => {
    const app = appFor(configFor({ MAX_BATCH: "2" }));
    const body = await json(
      await app.request(
        "/send/batch",
        post({ messages: [message, message, message] }),
      ),
      413,
    );
    assert.equal(body.error.type, "too_large");
    assert.match(body.error.message, /MAX_BATCH/);
  });

  it("refuses an empty batch, a missing messages field and a bad message with 400", async () => {
    const app = appFor(configFor());
    const empty = await json(
      await app.request("/send/batch", post({ messages: [] })),
      400,
    );
    assert.equal(empty.error.issues[0].path, "messages");
    const none = await json(await app.request("/send/batch", post(message)), 400);
    assert.ok(none.error.issues.some((issue: { path: string }) => issue.path === "messages"));
    const bad = await json(
      await app.request("/send/batch", post({ messages: [message, { to: 7, text: "x" }] })),
      400,
    );
    assert.deepEqual(bad.error.issues.map((issue: { path: string }) => issue.path), [
      "messages[1].to",
    ]);
  });

  it("refuses the whole batch when one message breaks the policy, naming it", async () => {
    const app = appFor(configFor({ ALLOWED_TO: "@example.com" }));
    const before = server.messages.length;
    const body = await json(
      await app.request(
        "/send/batch",
        post({ messages: [message, { ...message, to: "x@example.net" }] }),
      ),
      403,
    );
    assert.match(body.error.message, /^messages\[1\]\.to\[0\] /);
    assert.equal(server.messages.length, before);
  });
});

describe("request log", () => {
  it("writes one plain line per request: method, path, status, error type, duration, id", async () => {
    const app = appFor(configFor());
    let id = "";
    const lines = await capture("info", async () => {
      const response = await app.request(
        "/send?x=QUERY-XYZZY",
        post({ to: 5, token: "BODY-QWERTY" }),
      );
      id = response.headers.get("X-Request-Id") ?? "";
      await response.body?.cancel();
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], new RegExp(`^edgemail: POST /send 400 validation \\d+ms ${id}$`));
    for (const secret of [...SECRETS, "XYZZY", "QWERTY"]) assert.ok(!lines[0].includes(secret));
  });

  it("writes JSON lines with LOG_FORMAT=json", async () => {
    const client = new SmtpClient({ ...configFor().smtp, pool: { idleTimeoutMs: 200 } });
    clients.push(client);
    const app = createApp(configFor(), { client, logFormat: logFormatOf({ LOG_FORMAT: "json" }) });
    const lines = await capture("info", async () => {
      await (await app.request("/send", post(message))).body?.cancel();
      await (await app.request("/send", { ...post(message), headers: {} })).body?.cancel();
    });
    const [sent, unauthorized] = lines.map((line) => JSON.parse(line));
    assert.equal(sent.method, "POST");
    assert.equal(sent.path, "/send");
    assert.equal(sent.status, 200);
    assert.equal(sent.error, null);
    assert.equal(typeof sent.durationMs, "number");
    assert.match(sent.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.error, "unauthorized");
    assert.throws(() => logFormatOf({ LOG_FORMAT: "xml" }), /LOG_FORMAT/);
  });
});

describe("routes", () => {
  it("GET /health answers ok without a key", async () => {
    const response = await appFor(configFor()).request("/health");
    assert.deepEqual(await json(response, 200), { status: "ok" });
  });

  it("GET /health?smtp=1 checks the SMTP session (key required)", async () => {
    const app = appFor(configFor());
    await json(await app.request("/health?smtp=1"), 401);
    const headers = { Authorization: `Bearer ${API_KEY}` };
    const before = server.authAttempts.length;
    assert.deepEqual(await json(await app.request("/health?smtp=1", { headers }), 200), {
      status: "ok",
    });
    assert.deepEqual(server.authAttempts.slice(before), [{
      method: "PLAIN",
      username: "ann",
      ok: true,
    }]);
  });

  it("GET /health?smtp=1 answers 502 with the error when SMTP fails", async () => {
    const config = configFor();
    const app = appFor({
      ...config,
      smtp: { ...config.smtp, auth: { username: "ann", password: "wrong-password-1" } },
    });
    const body = await json(
      await app.request("/health?smtp=1", { headers: { Authorization: `Bearer ${API_KEY}` } }),
      502,
    );
    assert.equal(body.status, "error");
    assert.equal(body.error.type, "auth");
    assert.equal(body.error.phase, "auth");
  });

  it("unknown routes answer 404 and wrong methods 405, in JSON", async () => {
    const app = appFor(configFor());
    const missing = await json(
      await app.request("/nope", { headers: { Authorization: `Bearer ${API_KEY}` } }),
      404,
    );
    assert.equal(missing.error.type, "not_found");
    // The playground is served by deno task dev's embedded mode only, never by the function.
    assert.equal((await json(await app.request("/"), 404)).error.type, "not_found");
    const wrong = await app.request("/send", { method: "GET" });
    assert.equal((await json(wrong, 405)).error.type, "method_not_allowed");
    assert.equal(wrong.headers.get("Allow"), "POST");
    const put = await app.request("/health", { method: "DELETE" });
    assert.equal((await json(put, 405)).error.type, "method_not_allowed");
    assert.match(put.headers.get("Allow") ?? "", /GET/);
  });

  it("sets a request id and the secure headers", async () => {
    const response = await appFor(configFor()).request("/health");
    await response.body?.cancel();
    assert.match(response.headers.get("X-Request-Id") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(response.headers.get("X-Content-Type-Options"), "nosniff");
  });

  it("GET /openapi.json answers the OpenAPI document (checked in openapi_test.ts)", async () => {
    const doc = await json(await appFor(configFor()).request("/openapi.json"), 200);
    assert.equal(doc.openapi, "3.1.0");
  });
});
