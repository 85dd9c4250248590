/**
 * The store's steps on their own (pure functions): claims, replays, leases
 * and their expiry, and fixed-window counting.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyStep, forgetAfter, type StoredRecord } from "../../src/store/store.ts";
import {
  type ClaimInput,
  EXPIRED_AFTER_DATA_MESSAGE,
  EXPIRED_BEFORE_DATA_MESSAGE,
} from "../../src/store/steps.ts";

const LEASE = 1000;
const TTL = 60_000;

function claimInput(owner: string, now: number, bodyHash = "h1", tokens: unknown[] = [7]) {
  return { owner, bodyHash, tokens, leaseMs: LEASE, ttlMs: TTL, now } satisfies ClaimInput;
}

/** Runs steps one after the other on one record, as an adapter would. */
class Key {
  record: StoredRecord | undefined;
  run(...args: Parameters<typeof applyStep>) {
    const { next, output } = applyStep(args[0], this.record, args[2] as never);
    if (next === null) this.record = undefined;
    else if (next !== undefined) this.record = next;
    return output as Record<string, unknown>;
  }
}

describe("claim", () => {
  it("claims a free key, answers in_flight to the same body and mismatch to another", () => {
    const key = new Key();
    assert.deepEqual(key.run("claim", undefined, claimInput("a", 0)), { kind: "claimed" });
    assert.deepEqual(key.run("claim", undefined, claimInput("b", 400)), {
      kind: "in_flight",
      retryAfterMs: 600,
    });
    assert.deepEqual(key.run("claim", undefined, claimInput("b", 400, "h2")), {
      kind: "mismatch",
    });
  });

  it("replays a completed outcome until its TTL ends, then the key is free", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0));
    assert.deepEqual(key.run("complete", undefined, { owner: "a", results: [{ s: 1 }], now: 10 }), {
      held: true,
    });
    assert.deepEqual(key.run("claim", undefined, claimInput("b", 10 + TTL - 1)), {
      kind: "replay",
      results: [{ s: 1 }],
    });
    assert.deepEqual(key.run("claim", undefined, claimInput("b", 10 + TTL, "h2")), {
      kind: "claimed",
    });
  });

  it("a release frees the key at once", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0));
    assert.deepEqual(key.run("release", undefined, { owner: "a", now: 5 }), { held: true });
    assert.equal(key.record, undefined);
    assert.deepEqual(key.run("claim", undefined, claimInput("b", 6)).kind, "claimed");
  });
});

describe("leases", () => {
  it("a claim not renewed expires and is taken over when no data was written", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0));
    assert.equal(key.run("claim", undefined, claimInput("b", LEASE)).kind, "claimed");
    // The first owner lost it: its steps say so and change nothing.
    assert.deepEqual(
      key.run("markWritten", undefined, { owner: "a", index: 0, leaseMs: LEASE, now: LEASE + 1 }),
      { held: false },
    );
    assert.deepEqual(key.run("complete", undefined, { owner: "a", results: [], now: LEASE + 1 }), {
      held: false,
    });
    assert.equal((key.record as { owner: string }).owner, "b");
  });

  it("renewing keeps the claim past its first lease", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0));
    assert.deepEqual(key.run("renew", undefined, { owner: "a", leaseMs: LEASE, now: 900 }), {
      held: true,
    });
    assert.equal(key.run("claim", undefined, claimInput("b", 1500)).kind, "in_flight");
  });

  it("an expired claim marked 'data written' becomes a stored unknown_outcome, never a new claim", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0, "h1", ["t0", "t1"]));
    key.run("markWritten", undefined, { owner: "a", index: 1, leaseMs: LEASE, now: 10 });
    const output = key.run("claim", undefined, claimInput("b", 10 + LEASE, "h1", ["t0", "t1"]));
    assert.equal(output.kind, "replay");
    assert.deepEqual(output.results, [
      {
        status: "failed",
        token: "t0",
        accepted: [],
        rejected: [],
        error: { type: "internal", message: EXPIRED_BEFORE_DATA_MESSAGE },
      },
      {
        status: "failed",
        token: "t1",
        accepted: [],
        rejected: [],
        error: { type: "unknown_outcome", phase: "message", message: EXPIRED_AFTER_DATA_MESSAGE },
      },
    ]);
    // Stored: later requests get the same answer, other bodies a mismatch.
    assert.equal(key.record?.kind, "completed");
    assert.equal(key.run("claim", undefined, claimInput("c", 20 + LEASE, "h2")).kind, "mismatch");
  });

  it("keeps a record at least a TTL past its lease (cleanup never loses an unknown_outcome)", () => {
    const key = new Key();
    key.run("claim", undefined, claimInput("a", 0));
    assert.equal(forgetAfter(key.record!), LEASE + TTL);
  });
});

describe("consume", () => {
  const input = (count: number, now: number) => ({ count, limit: 3, windowMs: 1000, now });

  it("counts messages in windows aligned to the epoch and refuses, counting nothing, past the limit", () => {
    const key = new Key();
    assert.deepEqual(key.run("consume", undefined, input(2, 10_250)), {
      allowed: true,
      remaining: 1,
      resetMs: 750,
    });
    assert.deepEqual(key.run("consume", undefined, input(2, 10_500)), {
      allowed: false,
      remaining: 1,
      resetMs: 500,
    });
    assert.deepEqual(key.run("consume", undefined, input(1, 10_999)), {
      allowed: true,
      remaining: 0,
      resetMs: 1,
    });
    // The next window starts at 11 000 exactly, with a fresh count.
    assert.deepEqual(key.run("consume", undefined, input(3, 11_000)), {
      allowed: true,
      remaining: 0,
      resetMs: 1000,
    });
  });

  it("refuses a batch larger than the whole limit", () => {
    const key = new Key();
    assert.equal(key.run("consume", undefined, input(4, 0)).allowed, false);
    assert.equal(key.record, undefined);
  });
});
