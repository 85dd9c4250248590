/**
 * Rate limits on the store: fixed windows aligned to the epoch, messages
 * counted (a batch counts each), refusals count nothing, and the header fields
 * of draft-ietf-httpapi-ratelimit-headers-11.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { consumeRate, rateLimitedMessage, rateLimitHeaders } from "../../src/http/rate_limit.ts";
import { memoryStore } from "../../src/store/memory.ts";

const HOUR = { limit: 60, windowMs: 3_600_000 };

describe("consumeRate", () => {
  it("counts messages per subject in a window aligned to the epoch", async () => {
    const store = memoryStore();
    // 1800 s into an hour window (epoch hours start at multiples of 3 600 000 ms).
    const now = 500 * 3_600_000 + 1_800_000;
    const first = await consumeRate(store, "address:192.0.2.1", { limit: HOUR, count: 59, now });
    assert.deepEqual(first, {
      allowed: true,
      remaining: 1,
      retryAfterS: 1800,
      headers: {
        "RateLimit-Policy": '"messages";q=60;w=3600',
        "RateLimit": '"messages";r=1;t=1800',
      },
    });
    // A batch of 2 does not fit: refused whole, counting nothing.
    const batch = await consumeRate(store, "address:192.0.2.1", { limit: HOUR, count: 2, now });
    assert.equal(batch.allowed, false);
    assert.equal(batch.headers["Retry-After"], "1800");
    assert.equal(batch.headers["RateLimit"], '"messages";r=1;t=1800');
    assert.equal(
      (await consumeRate(store, "address:192.0.2.1", { limit: HOUR, count: 1, now })).remaining,
      0,
    );
    // Another subject has its own count; the next window starts fresh.
    assert.ok(
      (await consumeRate(store, "address:192.0.2.2", { limit: HOUR, count: 60, now })).allowed,
    );
    const next = await consumeRate(store, "address:192.0.2.1", {
      limit: HOUR,
      count: 60,
      now: 501 * 3_600_000,
    });
    assert.equal(next.allowed, true);
    assert.equal(next.headers["RateLimit"], '"messages";r=0;t=3600');
    await store.close();
  });

  it("never says Retry-After: 0 in the last partial second", async () => {
    const store = memoryStore();
    const limit = { limit: 1, windowMs: 60_000 };
    await consumeRate(store, "s", { limit, count: 1, now: 59_999 });
    const refused = await consumeRate(store, "s", { limit, count: 1, now: 59_999 });
    assert.equal(refused.headers["Retry-After"], "1");
    await store.close();
  });
});

describe("rate limit texts", () => {
  it("headers follow the draft's structured-field syntax", () => {
    assert.deepEqual(rateLimitHeaders({ limit: 20, windowMs: 60_000 }, 7, 12), {
      "RateLimit-Policy": '"messages";q=20;w=60',
      "RateLimit": '"messages";r=7;t=12',
    });
  });

  it("the 429 message says the limit, and when a batch can never fit", () => {
    assert.match(rateLimitedMessage(HOUR, 1, 30), /at most 60 messages per 1 h .*30 s/);
    assert.match(rateLimitedMessage(HOUR, 61, 30), /61 messages, more than the 60 allowed/);
  });
});
