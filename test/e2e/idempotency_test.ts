/**
 * Idempotency-Key and rate limits end to end on Deno: `deno serve
 * functions/deno.ts` as a subprocess with a real Deno KV file (`KV_PATH` in a
 * temporary folder), sending to npm:smtp-server or the scripted fault server.
 * Replays, mismatches, concurrent requests with one key, scoping per API key,
 * a replay after the server process restarted, SSE replays, bad keys, the
 * lease of a request killed mid-send, and rate limits per API key, per client
 * address and per forwarded address (a batch over the limit sends nothing).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { type FaultServer, smtpScript, startFaultServer } from "../support/fault_server.ts";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { guard } from "../support/guard.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readEvents } from "../support/sse.ts";

const KEY_A = "e2e-idem-key-a-1234";
const KEY_B = "e2e-idem-key-b-5678";
const HANG_GUARD_MS = 30_000;

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  apiKey: string | undefined = KEY_A,
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(apiKey === undefined ? {} : { Authorization: `Bearer ${apiKey}` }),
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

let keyCounter = 0;
/** A fresh key per test, as clients generate them. */
function newKey(): string {
  return `test-${Date.now()}-${keyCounter++}-${crypto.randomUUID()}`;
}

const message = (token: unknown) => ({
  from: "app@example.com",
  to: "bob@example.com",
  subject: "Idempotent",
  text: `token ${token}`,
  token,
});

describe("Idempotency-Key on deno serve with Deno KV", () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;
  let kvDir: string;
  let env: Record<string, string>;
  /** While set, the server holds its reply to the end of data until it resolves. */
  let holdData: Promise<void> | undefined;
  let dataReached: (() => void) | undefined;

  before(async () => {
    smtp = await startSmtpServer({
      onData: async () => {
        dataReached?.();
        await holdData;
      },
    });
    kvDir = await Deno.makeTempDir();
    env = {
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}?tls=none`,
      API_KEYS: `${KEY_A},${KEY_B}`,
      MAIL_FROM: "app@example.com",
      KV_PATH: `${kvDir}/kv.sqlite3`,
    };
    fn = await startFunction(env);
  });

  after(async () => {
    await fn?.stop();
    await smtp?.close();
    if (kvDir) await Deno.remove(kvDir, { recursive: true });
  });

  it("a replay sends nothing and answers the identical body with Idempotent-Replayed", async () => {
    const key = newKey();
    const before = smtp.messages.length;
    const first = await post(`${fn.url}/send`, message(1), { "Idempotency-Key": key });
    const firstText = await first.text();
    assert.equal(first.status, 200, firstText);
    assert.equal(first.headers.get("Idempotent-Replayed"), null);
    const again = await post(`${fn.url}/send`, message(1), { "Idempotency-Key": key });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.equal(await again.text(), firstText);
    assert.equal(smtp.messages.length, before + 1);
  });

  it("the same key with another body is 422 idempotency_mismatch, and sends nothing", async () => {
    const key = newKey();
    assert.equal(
      (await post(`${fn.url}/send`, message(2), { "Idempotency-Key": key })).status,
      200,
    );
    const before = smtp.messages.length;
    // Byte-identical means bytes: the same JSON with other spacing is another body.
    const spaced = JSON.stringify(message(2), null, 2);
    for (const body of [message(3), spaced]) {
      const response = await post(`${fn.url}/send`, body, { "Idempotency-Key": key });
      const result = await response.json();
      assert.equal(response.status, 422);
      assert.equal(result.error.type, "idempotency_mismatch");
    }
    assert.equal(smtp.messages.length, before);
  });

  it("two concurrent requests with one key: one 200, one 409 with Retry-After, one delivery", async () => {
    const key = newKey();
    const before = smtp.messages.length;
    const release = Promise.withResolvers<void>();
    const reached = Promise.withResolvers<void>();
    holdData = release.promise;
    dataReached = reached.resolve;
    try {
      const first = post(`${fn.url}/send`, message(4), { "Idempotency-Key": key });
      await guard(reached.promise, "the first request's data", { ms: HANG_GUARD_MS });
      const second = await post(`${fn.url}/send`, message(4), { "Idempotency-Key": key });
      const conflict = await second.json();
      assert.equal(second.status, 409);
      assert.equal(conflict.error.type, "conflict");
      assert.match(second.headers.get("Retry-After") ?? "", /^[1-9]\d*$/);
      release.resolve();
      const winner = await first;
      assert.equal(winner.status, 200, await winner.clone().text());
      assert.equal((await winner.json()).status, "sent");
    } finally {
      holdData = undefined;
      dataReached = undefined;
      release.resolve();
    }
    assert.equal(smtp.messages.length, before + 1);
    // Now that it is done, the key replays.
    const replay = await post(`${fn.url}/send`, message(4), { "Idempotency-Key": key });
    assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
    await replay.body?.cancel();
  });

  it("keys are scoped to the API key: another key's request with the same key sends", async () => {
    const key = newKey();
    const before = smtp.messages.length;
    await (await post(`${fn.url}/send`, message(5), { "Idempotency-Key": key }, KEY_A)).text();
    const other = await post(`${fn.url}/send`, message(5), { "Idempotency-Key": key }, KEY_B);
    assert.equal(other.status, 200);
    assert.equal(other.headers.get("Idempotent-Replayed"), null);
    await other.body?.cancel();
    assert.equal(smtp.messages.length, before + 2);
  });

  it("keys are scoped to the route: /send/batch does not replay /send", async () => {
    const key = newKey();
    await (await post(`${fn.url}/send`, message(6), { "Idempotency-Key": key })).text();
    const batch = await post(`${fn.url}/send/batch`, { messages: [message(6)] }, {
      "Idempotency-Key": key,
    });
    assert.equal(batch.status, 200);
    assert.equal(batch.headers.get("Idempotent-Replayed"), null);
    await batch.body?.cancel();
  });

  it("replays as SSE: one completed event (a batch: one per message, then done)", async () => {
    const key = newKey();
    const first = await (await post(`${fn.url}/send`, message(7), { "Idempotency-Key": key }))
      .json();
    const before = smtp.messages.length;
    const response = await post(`${fn.url}/send`, message(7), {
      "Idempotency-Key": key,
      Accept: "text/event-stream",
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("Idempotent-Replayed"), "true");
    const events = await readEvents(response);
    assert.deepEqual(events.map((event) => event.event), ["completed"]);
    assert.deepEqual(JSON.parse(events[0].data), first);

    const batchKey = newKey();
    const batch = { messages: [message("b0"), message("b1")] };
    const sent = await (await post(`${fn.url}/send/batch`, batch, { "Idempotency-Key": batchKey }))
      .json();
    const replayed = await readEvents(
      await post(`${fn.url}/send/batch`, batch, {
        "Idempotency-Key": batchKey,
        Accept: "text/event-stream",
      }),
    );
    assert.deepEqual(replayed.map((event) => event.event), ["completed", "completed", "done"]);
    assert.deepEqual(JSON.parse(replayed[1].data), { index: 1, ...sent.results[1] });
    assert.deepEqual(JSON.parse(replayed[2].data), { sent: 2, failed: 0, cancelled: 0 });
    assert.equal(smtp.messages.length, before + 2);
  });

  it("refuses bad keys with 400 naming the header: too long, spaces, control characters", async () => {
    const before = smtp.messages.length;
    // A tab is a control character HTTP lets through to the application.
    for (const key of ["x".repeat(256), "two words", "tab\tinside"]) {
      const response = await post(`${fn.url}/send`, message(8), { "Idempotency-Key": key });
      const body = await response.json();
      assert.equal(response.status, 400, key);
      assert.equal(body.error.type, "validation");
      assert.match(body.error.message, /Idempotency-Key/);
    }
    // Other control characters: fetch refuses to send them, so the request is written by
    // hand; Deno's HTTP server refuses it with 400 before the function sees it.
    const raw = await rawPost(fn.url, "/send", JSON.stringify(message(8)), {
      Authorization: `Bearer ${KEY_A}`,
      "Idempotency-Key": "abc\x01def",
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.equal(
      (await post(`${fn.url}/send`, message(8), { "Idempotency-Key": "x".repeat(255) })).status,
      200,
    );
    assert.equal(smtp.messages.length, before + 1);
  });

  it("replays after the server process restarted (the outcome is in the KV file)", async () => {
    const key = newKey();
    const first = await (await post(`${fn.url}/send`, message(9), { "Idempotency-Key": key }))
      .text();
    await fn.stop();
    fn = await startFunction(env);
    const before = smtp.messages.length;
    const again = await post(`${fn.url}/send`, message(9), { "Idempotency-Key": key });
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.equal(await again.text(), first);
    assert.equal(smtp.messages.length, before);
  });
});

describe("Idempotency-Key: the lease of a request whose process was killed", () => {
  // Short deadlines keep the lease (2 × SMTP_TIMEOUT_MS) short; the kill comes long before.
  const TIMEOUT_MS = 2000;
  let fault: FaultServer;
  let kvDir: string;
  let env: Record<string, string>;
  const functions: FunctionServer[] = [];
  let holdRcpt = false;
  let holdMessage = false;
  let rcptHeld = Promise.withResolvers<void>();
  let messageHeld = Promise.withResolvers<void>();
  let messages = 0;

  before(async () => {
    fault = await startFaultServer(smtpScript({
      RCPT: async (conn) => {
        if (holdRcpt) {
          holdRcpt = false;
          rcptHeld.resolve();
          return await conn.waitClosed();
        }
        await conn.send("250 2.1.5 Ok\r\n");
      },
      message: async (conn) => {
        messages++;
        if (holdMessage) {
          holdMessage = false;
          messageHeld.resolve();
          return await conn.waitClosed();
        }
        await conn.send("250 2.0.0 Ok: queued\r\n");
      },
    }));
    kvDir = await Deno.makeTempDir();
    env = {
      SMTP_URL: `smtp://localhost:${fault.port}`,
      SMTP_CA_CERT: fault.caCert,
      SMTP_TIMEOUT_MS: String(TIMEOUT_MS),
      API_KEYS: KEY_A,
      MAIL_FROM: "app@example.com",
      KV_PATH: `${kvDir}/kv.sqlite3`,
    };
  });

  after(async () => {
    await Promise.all(functions.map((fn) => fn.stop()));
    await fault?.close().catch(() => {});
    if (kvDir) await Deno.remove(kvDir, { recursive: true });
  });

  async function start(): Promise<FunctionServer> {
    const fn = await startFunction(env);
    functions.push(fn);
    return fn;
  }

  /** Retries `key` until the dead claim's lease is over; every earlier answer is a 409. */
  async function retryUntilFree(fn: FunctionServer, body: unknown, key: string) {
    const deadline = Date.now() + 4 * TIMEOUT_MS + HANG_GUARD_MS;
    while (true) {
      const response = await post(`${fn.url}/send`, body, { "Idempotency-Key": key });
      if (response.status !== 409) return response;
      assert.equal((await response.json()).error.type, "conflict");
      assert.ok(Date.now() < deadline, "the dead request's claim never expired");
      const wait = Number(response.headers.get("Retry-After")) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 500)));
    }
  }

  it("killed before its data was written: the claim expires and a retry sends, once", async () => {
    const fn = await start();
    const key = newKey();
    holdRcpt = true;
    rcptHeld = Promise.withResolvers<void>();
    const before = messages;
    const doomed = post(`${fn.url}/send`, message("k1"), { "Idempotency-Key": key }).catch((e) =>
      e
    );
    await guard(rcptHeld.promise, "the held RCPT", { ms: HANG_GUARD_MS });
    await fn.stop("SIGKILL");
    await doomed;
    const next = await start();
    const response = await retryUntilFree(next, message("k1"), key);
    const result = await response.json();
    assert.equal(response.status, 200, JSON.stringify(result));
    assert.equal(result.status, "sent");
    assert.equal(messages, before + 1);
  });

  it("killed after its data was written: the claim becomes unknown_outcome, never a resend", async () => {
    const fn = await start();
    const key = newKey();
    holdMessage = true;
    messageHeld = Promise.withResolvers<void>();
    const before = messages;
    const doomed = post(`${fn.url}/send`, message("k2"), { "Idempotency-Key": key }).catch((e) =>
      e
    );
    await guard(messageHeld.promise, "the held end of data", { ms: HANG_GUARD_MS });
    // The mark is one store write started before the data: kill once it is in the file.
    await guard(markStored(env.KV_PATH), "the claim's data-written mark", { ms: HANG_GUARD_MS });
    await fn.stop("SIGKILL");
    await doomed;
    const next = await start();
    const response = await retryUntilFree(next, message("k2"), key);
    const result = await response.json();
    assert.equal(response.status, 502, JSON.stringify(result));
    assert.equal(response.headers.get("Idempotent-Replayed"), "true");
    assert.equal(result.error.type, "unknown_outcome");
    assert.equal(result.token, "k2");
    assert.equal(messages, before + 1, "the message was sent again");
  });
});

describe("rate limits on deno serve with Deno KV", () => {
  let smtp: TestSmtpServer;
  let kvDir: string;
  const functions: FunctionServer[] = [];

  before(async () => {
    smtp = await startSmtpServer();
    kvDir = await Deno.makeTempDir();
  });

  after(async () => {
    await Promise.all(functions.map((fn) => fn.stop()));
    await smtp?.close();
    if (kvDir) await Deno.remove(kvDir, { recursive: true });
  });

  async function start(extra: Record<string, string>): Promise<FunctionServer> {
    const fn = await startFunction({
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}?tls=none`,
      MAIL_FROM: "app@example.com",
      KV_PATH: `${kvDir}/kv-${functions.length}.sqlite3`,
      ...extra,
    });
    functions.push(fn);
    return fn;
  }

  it("per API key: over the limit is 429 with Retry-After and RateLimit fields; nothing sent", async () => {
    const fn = await start({ API_KEYS: `${KEY_A},${KEY_B}`, RATE_LIMIT: "2/1h" });
    for (let i = 0; i < 2; i++) {
      const ok = await post(`${fn.url}/send`, message(`a${i}`));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("RateLimit-Policy"), '"messages";q=2;w=3600');
      assert.match(ok.headers.get("RateLimit") ?? "", new RegExp(`^"messages";r=${1 - i};t=\\d+$`));
      await ok.body?.cancel();
    }
    const before = smtp.messages.length;
    const refused = await post(`${fn.url}/send`, message("a2"));
    const body = await refused.json();
    assert.equal(refused.status, 429);
    assert.equal(body.error.type, "rate_limited");
    assert.equal(body.token, "a2");
    const retryAfter = Number(refused.headers.get("Retry-After"));
    assert.ok(retryAfter >= 1 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
    assert.equal(refused.headers.get("RateLimit-Policy"), '"messages";q=2;w=3600');
    assert.equal(refused.headers.get("RateLimit"), `"messages";r=0;t=${retryAfter}`);
    assert.equal(smtp.messages.length, before);
    // Another API key has its own count.
    const other = await post(`${fn.url}/send`, message("b0"), {}, KEY_B);
    assert.equal(other.status, 200);
    await other.body?.cancel();
  });

  it("a batch counts each message, a batch over the limit sends nothing, a replay counts nothing", async () => {
    const fn = await start({ API_KEYS: KEY_A, RATE_LIMIT: "3/1d" });
    const before = smtp.messages.length;
    const batch = (n: number) => ({ messages: Array.from({ length: n }, (_, i) => message(i)) });
    const status = async (response: Response) => {
      await response.body?.cancel();
      return response.status;
    };
    const tooMany = await post(`${fn.url}/send/batch`, batch(4));
    assert.equal(tooMany.status, 429);
    assert.equal((await tooMany.json()).error.type, "rate_limited");
    const key = { "Idempotency-Key": newKey() };
    assert.equal(await status(await post(`${fn.url}/send/batch`, batch(2), key)), 200);
    assert.equal(await status(await post(`${fn.url}/send/batch`, batch(2))), 429);
    assert.equal(smtp.messages.length, before + 2);
    // The replay is answered and counts nothing: one message still fits, then none.
    const replay = await post(`${fn.url}/send/batch`, batch(2), key);
    assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
    assert.equal(await status(replay), 200);
    assert.equal(await status(await post(`${fn.url}/send`, message("last"))), 200);
    assert.equal(await status(await post(`${fn.url}/send`, message("over"))), 429);
    assert.equal(smtp.messages.length, before + 3);
  });

  it("public callers are counted per client address", async () => {
    const fn = await start({ ALLOWED_TO: "@example.com", RATE_LIMIT: "1/1h" });
    const first = await postFrom("127.0.0.1", fn.url, message("p1"));
    assert.equal(first.status, 200, first.body);
    assert.equal((await postFrom("127.0.0.1", fn.url, message("p2"))).status, 429);
    assert.equal((await postFrom("127.0.0.2", fn.url, message("p3"))).status, 200);
  });

  it("behind a trusted proxy, per forwarded address (its last hop); otherwise the header is ignored", async () => {
    const trusted = await start({
      ALLOWED_TO: "@example.com",
      RATE_LIMIT: "1/1h",
      TRUST_PROXY: "1",
    });
    const via = (hops: string) => ({ "X-Forwarded-For": hops });
    const send = (fn: FunctionServer, hops: string) =>
      post(`${fn.url}/send`, message(hops), via(hops), undefined).then(async (response) => {
        await response.body?.cancel();
        return response.status;
      });
    assert.equal(await send(trusted, "198.51.100.1, 203.0.113.1"), 200);
    // The same last hop is the same client, whatever it claims before it.
    assert.equal(await send(trusted, "198.51.100.99, 203.0.113.1"), 429);
    assert.equal(await send(trusted, "203.0.113.2"), 200);

    const direct = await start({ ALLOWED_TO: "@example.com", RATE_LIMIT: "1/1h" });
    assert.equal(await send(direct, "203.0.113.1"), 200);
    assert.equal(await send(direct, "203.0.113.2"), 429);
  });
});

/** Resolves once the KV file holds a claim marked "data written" (read by a second process). */
async function markStored(path: string): Promise<void> {
  const kv = await Deno.openKv(path);
  try {
    while (true) {
      for await (const entry of kv.list<{ json?: string }>({ prefix: ["edgemail"] })) {
        const record = entry.value.json === undefined ? undefined : JSON.parse(entry.value.json);
        if (record?.kind === "in_flight" && record.written.length > 0) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    kv.close();
  }
}

/** A JSON POST to `/send` from the local address `localAddress` (a loopback alias). */
function postFrom(
  localAddress: string,
  base: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  const url = new URL("/send", base);
  const json = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      method: "POST",
      localAddress,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) },
    }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on("error", reject);
    request.end(json);
  });
}

/** Writes an HTTP/1.1 POST by hand (for header bytes fetch refuses) and returns the raw answer. */
async function rawPost(
  base: string,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<string> {
  const url = new URL(base);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const bytes = new TextEncoder().encode(body);
  const head = Object.entries({
    Host: url.host,
    "Content-Type": "application/json",
    "Content-Length": String(bytes.length),
    Connection: "close",
    ...headers,
  }).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  await conn.write(new TextEncoder().encode(`POST ${path} HTTP/1.1\r\n${head}\r\n`));
  await conn.write(bytes);
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of conn.readable) text += decoder.decode(chunk, { stream: true });
  return text;
}
