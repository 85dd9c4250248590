/**
 * Property (npm:fast-check) of every store adapter — in memory, Deno KV on a
 * real SQLite file, the Durable Object in real workerd — : any interleaving of
 * requests that claim one key, mark their data written (and then send), renew,
 * complete, release or die, while the clock runs past leases, gives at most
 * one send; and once something was sent, a later retry is never allowed to
 * send again. Requests in one round run concurrently, so the adapters' atomic
 * commits are what keeps two of them from both winning.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { openDenoKvStore } from "../../src/store/deno_kv.ts";
import { memoryStore } from "../../src/store/memory.ts";
import { type Store, StoreError } from "../../src/store/store.ts";
import {
  bundleWorker,
  serveScript,
  type TestWorker,
  workerdSkipReason,
} from "../support/workerd.ts";

const LEASE = 1000;
const TTL = 1_000_000_000;
const ACTORS = 4;

type Op = "claim" | "write" | "renew" | "complete" | "release" | "die";
interface Round {
  /** Milliseconds the clock moves before the round. */
  tick: number;
  /** What each request does in this round (at most one step each). */
  steps: { actor: number; op: Op }[];
}

const roundArbitrary: fc.Arbitrary<Round> = fc.record({
  tick: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 * LEASE })),
  steps: fc.uniqueArray(
    fc.record({
      actor: fc.integer({ min: 0, max: ACTORS - 1 }),
      op: fc.constantFrom<Op>("claim", "write", "renew", "complete", "release", "die"),
    }),
    { minLength: 1, maxLength: ACTORS, selector: (step) => step.actor },
  ),
});

type ActorState = "idle" | "claimed" | "written" | "done";

/**
 * Plays `rounds` against `store` on a fresh key and returns how many requests
 * sent, plus what a late retry was told.
 */
async function play(store: Store, key: string, rounds: Round[]) {
  const actors: ActorState[] = Array(ACTORS).fill("idle");
  // The Durable Object's clean-up alarm runs on the platform clock: start the
  // played clock there, or every record would be past its forget-after time at once.
  let now = Date.now();
  let sends = 0;
  const claim = (owner: string) =>
    store.run(key, "claim", {
      owner,
      bodyHash: "body",
      tokens: [null],
      leaseMs: LEASE,
      ttlMs: TTL,
      now,
    });
  for (const round of rounds) {
    now += round.tick;
    await Promise.all(round.steps.map(async ({ actor, op }) => {
      const owner = `actor-${actor}`;
      const state = actors[actor];
      if (op === "die") {
        actors[actor] = "done";
      } else if (op === "claim" && state === "idle") {
        const output = await claim(owner);
        actors[actor] = output.kind === "claimed" ? "claimed" : "done";
      } else if (op === "write" && state === "claimed") {
        const { held } = await store.run(key, "markWritten", {
          owner,
          index: 0,
          leaseMs: LEASE,
          now,
        });
        // The send happens only once the mark is stored and the claim was still this one's.
        if (held) sends++;
        actors[actor] = held ? "written" : "done";
      } else if (op === "renew" && (state === "claimed" || state === "written")) {
        const { held } = await store.run(key, "renew", { owner, leaseMs: LEASE, now });
        if (!held) actors[actor] = "done";
      } else if (op === "complete" && state === "written") {
        await store.run(key, "complete", { owner, results: [{ status: "sent" }], now });
        actors[actor] = "done";
      } else if (op === "release" && state === "claimed") {
        // Only before the data: a request releases its key when nothing was delivered.
        await store.run(key, "release", { owner, now });
        actors[actor] = "done";
      }
    }));
  }
  now += 3 * LEASE;
  const late = await claim("late-retry");
  return { sends, late };
}

let keyCounter = 0;

async function checkAtMostOnce(store: Store, numRuns: number) {
  await fc.assert(
    fc.asyncProperty(fc.array(roundArbitrary, { minLength: 1, maxLength: 12 }), async (rounds) => {
      const { sends, late } = await play(store, `property-${keyCounter++}`, rounds);
      assert.ok(sends <= 1, `${sends} requests sent with one key`);
      if (sends === 1) assert.notEqual(late.kind, "claimed", "a retry after a send may send again");
    }),
    { numRuns },
  );
}

describe("store adapters: one key, any interleaving, at most one send", () => {
  it("in memory", async () => {
    const store = memoryStore();
    try {
      await checkAtMostOnce(store, 500);
    } finally {
      await store.close();
    }
  });

  it("Deno KV on a SQLite file", async () => {
    const dir = await Deno.makeTempDir();
    const store = await openDenoKvStore({ path: `${dir}/kv.sqlite3` });
    try {
      await checkAtMostOnce(store, 150);
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

const skip = await workerdSkipReason();
if (skip) console.warn(`skipping the Durable Object store property: ${skip}`);

describe("store adapters: the Durable Object in workerd", { skip }, () => {
  let worker: TestWorker;

  before(async () => {
    const script = await bundleWorker(new URL("./fixtures/store_worker.ts", import.meta.url));
    worker = await serveScript(script, { durableObjects: { EDGEMAIL_STORE: "EdgemailStore" } });
  });

  after(async () => {
    await worker?.close();
  });

  /** The Durable Object store, reached through the fixture Worker over HTTP. */
  function workerStore(): Store {
    return {
      async run(key, name, input) {
        const response = await worker.fetch("/", {
          method: "POST",
          body: JSON.stringify({ key, name, input }),
        });
        const body = await response.json();
        if (!response.ok) throw new StoreError(body.error);
        return body;
      },
      close() {},
    };
  }

  it("any interleaving on one key gives at most one send", async () => {
    await checkAtMostOnce(workerStore(), 60);
  });

  it("keeps records larger than one storage value", async () => {
    const store = workerStore();
    const now = Date.now();
    const owner = "big";
    const big = "x".repeat(1_500_000);
    const input = { owner, bodyHash: "h", tokens: [1], leaseMs: LEASE, ttlMs: TTL, now };
    assert.equal((await store.run("big-record", "claim", input)).kind, "claimed");
    await store.run("big-record", "complete", { owner, results: [{ big }], now });
    const replay = await store.run("big-record", "claim", { ...input, owner: "again" });
    assert.equal(replay.kind, "replay");
    assert.deepEqual(replay.kind === "replay" && replay.results, [{ big }]);
  });
});

describe("Deno KV store: records larger than one KV value", () => {
  it("are split into parts and read back whole", async () => {
    const dir = await Deno.makeTempDir();
    const store = await openDenoKvStore({ path: `${dir}/nested/kv.sqlite3` });
    try {
      const now = Date.now();
      const results = Array.from({ length: 100 }, (_, i) => ({ i, text: "é".repeat(3000) }));
      const input = { owner: "a", bodyHash: "h", tokens: [], leaseMs: LEASE, ttlMs: TTL, now };
      await store.run("big", "claim", input);
      await store.run("big", "complete", { owner: "a", results, now });
      const replay = await store.run("big", "claim", { ...input, owner: "b" });
      assert.deepEqual(replay, { kind: "replay", results });
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
