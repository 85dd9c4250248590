/**
 * The latency the Deno KV store adds to one request (local SQLite file):
 * an `Idempotency-Key` request costs a claim, a rate-limit count, the
 * "data written" mark and the stored outcome (4 atomic commits); a rate-limited request without a key
 * costs the count alone. Run: `deno run --allow-all bench/kv_latency.ts`
 * (`KV_BENCH_REQUESTS`, default 2000). Prints p50 / p99 in milliseconds.
 *
 * @module
 */

import { openDenoKvStore } from "../src/store/deno_kv.ts";

const requests = Number(Deno.env.get("KV_BENCH_REQUESTS") ?? 2000);
const dir = await Deno.makeTempDir();
const store = await openDenoKvStore({ path: `${dir}/kv.sqlite3` });
const results = [{ status: "sent", token: null, accepted: ["a@example.com"], rejected: [] }];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function measure(name: string, step: (i: number) => Promise<void>) {
  for (let i = 0; i < 50; i++) await step(-1 - i); // warm-up
  const times: number[] = [];
  for (let i = 0; i < requests; i++) {
    const start = performance.now();
    await step(i);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  console.log(
    `${name}: p50 ${percentile(times, 0.5).toFixed(3)} ms, p99 ${
      percentile(times, 0.99).toFixed(3)
    } ms (${requests} requests)`,
  );
}

try {
  await measure("rate limit only (1 commit)", async (i) => {
    await store.run(`rate:address:10.0.${i & 255}.1`, "consume", {
      count: 1,
      limit: 1_000_000,
      windowMs: 3_600_000,
      now: Date.now(),
    });
  });
  await measure("Idempotency-Key + rate limit (claim, count, mark, complete)", async (i) => {
    const key = `idem:send:scope:${i}`;
    const owner = crypto.randomUUID();
    const now = Date.now();
    await store.run(key, "claim", {
      owner,
      bodyHash: "0".repeat(64),
      tokens: [null],
      leaseMs: 60_000,
      ttlMs: 86_400_000,
      now,
    });
    await store.run("rate:key:bench", "consume", {
      count: 1,
      limit: 1_000_000_000,
      windowMs: 3_600_000,
      now,
    });
    await store.run(key, "markWritten", { owner, index: 0, leaseMs: 60_000, now });
    await store.run(key, "complete", { owner, results, now });
  });
} finally {
  await store.close();
  await Deno.remove(dir, { recursive: true });
}
