/**
 * Idempotency-Key and rate limits on Cloudflare Workers' runtime:
 * `functions/cloudflare.ts` bundled as wrangler would and run in real workerd
 * (miniflare) with the `EdgemailStore` Durable Object bound as in
 * `wrangler.toml`, sending to npm:smtp-server on loopback. A replay, two
 * concurrent requests with one key, and rate limits per API key and per
 * `CF-Connecting-IP`; without the binding, a key answers 501.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { guard } from "../support/guard.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import {
  bundleWorker,
  serveScript,
  type TestWorker,
  workerdSkipReason,
  wranglerDurableObjects,
} from "../support/workerd.ts";

const API_KEY = "workerd-idem-key-1";
const OTHER_KEY = "workerd-idem-key-2";

const skip = await workerdSkipReason();
if (skip) console.warn(`skipping the Workers idempotency tests: ${skip}`);

describe("functions/cloudflare.ts in workerd: Idempotency-Key and rate limits", { skip }, () => {
  let script: string;
  let smtp: TestSmtpServer;
  const workers: TestWorker[] = [];
  let holdData: Promise<void> | undefined;
  let dataReached: (() => void) | undefined;

  before(async () => {
    script = await bundleWorker("functions/cloudflare.ts");
    smtp = await startSmtpServer({
      onData: async () => {
        dataReached?.();
        await holdData;
      },
    });
  });

  after(async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    await smtp?.close();
  });

  async function start(
    bindings: Record<string, string>,
    options: { store?: boolean } = {},
  ): Promise<TestWorker> {
    const worker = await serveScript(script, {
      bindings: {
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}?tls=none`,
        MAIL_FROM: "app@example.com",
        API_KEYS: `${API_KEY},${OTHER_KEY}`,
        ...bindings,
      },
      durableObjects: options.store === false ? {} : await wranglerDurableObjects(),
    });
    workers.push(worker);
    return worker;
  }

  function send(
    worker: TestWorker,
    body: unknown,
    headers: Record<string, string> = {},
    apiKey: string | undefined = API_KEY,
  ): Promise<Response> {
    return worker.fetch("/send", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        ...(apiKey === undefined ? {} : { Authorization: `Bearer ${apiKey}` }),
        ...headers,
      },
      body: JSON.stringify(body),
    });
  }

  const message = (token: string) => ({ to: "bob@example.com", text: `hi ${token}`, token });

  it("wrangler.toml binds the Durable Object the entry exports", async () => {
    assert.deepEqual(await wranglerDurableObjects(), { EDGEMAIL_STORE: "EdgemailStore" });
  });

  it("replays: one delivery, the identical body, Idempotent-Replayed: true", async () => {
    const worker = await start({});
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const before = smtp.messages.length;
    const first = await send(worker, message("r1"), key);
    const text = await first.text();
    assert.equal(first.status, 200, text);
    const again = await send(worker, message("r1"), key);
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.equal(await again.text(), text);
    const other = await send(worker, message("r2"), key);
    assert.equal(other.status, 422);
    assert.equal((await other.json()).error.type, "idempotency_mismatch");
    assert.equal(smtp.messages.length, before + 1);
  });

  it("two concurrent requests with one key: one 200, one 409, one delivery", async () => {
    const worker = await start({});
    const key = { "Idempotency-Key": crypto.randomUUID() };
    const before = smtp.messages.length;
    const release = Promise.withResolvers<void>();
    const reached = Promise.withResolvers<void>();
    holdData = release.promise;
    dataReached = reached.resolve;
    try {
      const first = send(worker, message("c1"), key);
      await guard(reached.promise, "the first request's data");
      const second = await send(worker, message("c1"), key);
      assert.equal(second.status, 409);
      assert.equal((await second.json()).error.type, "conflict");
      assert.match(second.headers.get("Retry-After") ?? "", /^[1-9]\d*$/);
      release.resolve();
      const winner = await first;
      assert.equal(winner.status, 200);
      await winner.body?.cancel();
    } finally {
      holdData = undefined;
      dataReached = undefined;
      release.resolve();
    }
    assert.equal(smtp.messages.length, before + 1);
  });

  it("rate limits per API key: 429 with Retry-After and RateLimit fields, nothing sent", async () => {
    const worker = await start({ RATE_LIMIT: "2/1h" });
    for (const token of ["l1", "l2"]) {
      const ok = await send(worker, message(token));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("RateLimit-Policy"), '"messages";q=2;w=3600');
      await ok.body?.cancel();
    }
    const before = smtp.messages.length;
    const refused = await send(worker, message("l3"));
    assert.equal(refused.status, 429);
    assert.equal((await refused.json()).error.type, "rate_limited");
    const retryAfter = refused.headers.get("Retry-After");
    assert.match(retryAfter ?? "", /^[1-9]\d*$/);
    assert.equal(refused.headers.get("RateLimit"), `"messages";r=0;t=${retryAfter}`);
    assert.equal(smtp.messages.length, before);
    const other = await send(worker, message("l4"), {}, OTHER_KEY);
    assert.equal(other.status, 200);
    await other.body?.cancel();
  });

  it("public callers are counted per CF-Connecting-IP", async () => {
    const worker = await start({ API_KEYS: "", ALLOWED_TO: "@example.com", RATE_LIMIT: "1/1h" });
    const from = (address: string) =>
      send(worker, message(address), { "CF-Connecting-IP": address }, undefined).then(
        async (response) => {
          await response.body?.cancel();
          return response.status;
        },
      );
    assert.equal(await from("198.51.100.1"), 200);
    assert.equal(await from("198.51.100.1"), 429);
    assert.equal(await from("198.51.100.2"), 200);
  });

  it("without the Durable Object binding, an Idempotency-Key answers 501", async () => {
    const worker = await start({}, { store: false });
    const response = await send(worker, message("n1"), { "Idempotency-Key": "k" });
    assert.equal(response.status, 501);
    assert.equal((await response.json()).error.type, "idempotency_unavailable");
  });
});
