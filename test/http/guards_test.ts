/**
 * The API-key guard on its own: each way a request can fail answers 401 in
 * JSON with the RFC 6750 challenge for it, every key of `API_KEYS` is
 * accepted (the scheme name in any case, any spaces before the token), and
 * nothing else is — a prefix, an extension, another key's digest length.
 * The CORS headers are exactly those of Hono's `cors()` with the same options.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { loadConfig } from "../../src/http/config.ts";
import { cors } from "hono/cors";
import { authGuard, corsHeaders, EXPOSED_HEADERS, originAllowed } from "../../src/http/guards.ts";
import { createRedactor } from "../../src/http/redact.ts";

const KEYS = ["first-key", "second.key_2~+/="];

function guarded(apiKeys = KEYS.join(",")): Hono {
  const config = loadConfig({
    SMTP_URL: "smtp://127.0.0.1:2525",
    API_KEYS: apiKeys,
    MAIL_FROM: "app@example.com",
  });
  return new Hono()
    .use(authGuard(config, createRedactor([])))
    .get("/", (c) => c.text("in"));
}

async function call(app: Hono, authorization?: string) {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.Authorization = authorization;
  const response = await app.request("/", { headers });
  const text = await response.text();
  return { status: response.status, challenge: response.headers.get("WWW-Authenticate"), text };
}

describe("authGuard", () => {
  it("lets every configured key in, whatever the scheme's case and the spaces before it", async () => {
    const app = guarded();
    for (
      const header of [`Bearer ${KEYS[0]}`, `bearer ${KEYS[1]}`, `BEARER    ${KEYS[0]}`]
    ) {
      assert.deepEqual(await call(app, header), { status: 200, challenge: null, text: "in" });
    }
  });

  it('answers 401 with realm="" when no key is sent', async () => {
    for (const header of [undefined, ""]) {
      const answer = await call(guarded(), header);
      assert.equal(answer.status, 401);
      assert.equal(answer.challenge, 'Bearer realm=""');
      const body = JSON.parse(answer.text);
      assert.equal(body.error.type, "unauthorized");
      assert.match(body.error.message, /Authorization: Bearer <key>/);
    }
  });

  it('answers 401 with error="invalid_request" for a header that is not Bearer <token>', async () => {
    for (const header of ["Basic YTpi", "Bearer", "Bearer ", "Bearer a b", "Bearerfirst-key"]) {
      const answer = await call(guarded(), header);
      assert.equal(answer.status, 401, header);
      assert.equal(answer.challenge, 'Bearer error="invalid_request"', header);
      assert.equal(JSON.parse(answer.text).error.type, "unauthorized");
    }
  });

  it('answers 401 with error="invalid_token" for any other key, never echoing it', async () => {
    for (const token of ["first-ke", "first-keyx", "FIRST-KEY", "second.key_2~+/", "x"]) {
      const answer = await call(guarded(), `Bearer ${token}`);
      assert.equal(answer.status, 401, token);
      assert.equal(answer.challenge, 'Bearer error="invalid_token"', token);
      assert.equal(JSON.parse(answer.text).error.message, "The API key is not valid.");
      assert.ok(!answer.text.includes(token), token);
    }
  });
});

describe("corsHeaders", () => {
  const config = loadConfig({
    SMTP_URL: "smtp://127.0.0.1:2525",
    API_KEYS: "k",
    MAIL_FROM: "app@example.com",
    ALLOWED_TO: "@example.com",
    CORS_ORIGINS: "https://app.example.com",
  });
  const ours = new Hono().use(corsHeaders(config))
    .get("/", (c) => c.json({ ok: true }, 200, { Vary: "Accept" }))
    .post("/", () => new Response("raw", { status: 201 }));
  const allowed = originAllowed(config);
  const hono = new Hono().use(cors({
    origin: (origin, c) => (allowed(origin, new URL(c.req.url).origin) ? origin : null),
    allowMethods: ["GET", "POST"],
    allowHeaders: ["Authorization", "Content-Type", "Accept", "Idempotency-Key"],
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  }))
    .get("/", (c) => c.json({ ok: true }, 200, { Vary: "Accept" }))
    .post("/", () => new Response("raw", { status: 201 }));

  async function answer(app: Hono, path: string, init: RequestInit) {
    const response = await app.request(`http://edgemail.test${path}`, init);
    const body = await response.text();
    return { status: response.status, headers: [...response.headers.entries()].sort(), body };
  }

  it("answers every request as Hono's cors() with the same options does", async () => {
    const preflight = { "Access-Control-Request-Method": "POST" };
    const cases: [string, RequestInit][] = [
      ["/", { method: "OPTIONS", headers: { Origin: "https://app.example.com", ...preflight } }],
      ["/", { method: "OPTIONS", headers: { Origin: "https://other.example", ...preflight } }],
      ["/", { method: "OPTIONS" }],
      ["/", { headers: { Origin: "https://app.example.com" } }],
      ["/", { headers: { Origin: "http://edgemail.test" } }],
      ["/", { headers: { Origin: "https://other.example" } }],
      ["/", {}],
      ["/", { method: "POST", headers: { Origin: "https://app.example.com" } }],
      ["/missing", { headers: { Origin: "https://app.example.com" } }],
    ];
    for (const [path, init] of cases) {
      assert.deepEqual(
        await answer(ours, path, init),
        await answer(hono, path, init),
        `${path} ${JSON.stringify(init)}`,
      );
    }
    const exposed = await answer(ours, "/", {});
    assert.ok(exposed.headers.some(([name]) => name === "access-control-expose-headers"));
  });
});
