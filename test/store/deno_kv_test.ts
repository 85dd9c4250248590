/**
 * `openDenoKvStore`: where the Deno KV store lives (KV_PATH, its folder made on
 * demand), a clear StoreError when it cannot be opened, and the platform's KV
 * on Deno Deploy, where KV_PATH is ignored.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openDenoKvStore } from "../../src/store/deno_kv.ts";
import { StoreError } from "../../src/store/store.ts";

const LEASE_MS = 60_000;
const TTL_MS = 3_600_000;

function claimInput(owner: string) {
  return { owner, bodyHash: "h", tokens: [1], leaseMs: LEASE_MS, ttlMs: TTL_MS, now: Date.now() };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

describe("openDenoKvStore", () => {
  it("opens the file at KV_PATH, making its folder, and keeps records across openings", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/nested/folder/kv.sqlite3`;
    try {
      const first = await openDenoKvStore({ path });
      assert.equal((await first.run("key-1", "claim", claimInput("a"))).kind, "claimed");
      await first.close();
      assert.ok(await exists(path), "no KV file at KV_PATH");
      const second = await openDenoKvStore({ path });
      // The claim survived: another owner finds it held, not free.
      assert.notEqual((await second.run("key-1", "claim", claimInput("b"))).kind, "claimed");
      await second.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("fails with a StoreError naming KV_PATH when the file cannot be opened", async () => {
    const dir = await Deno.makeTempDir();
    try {
      // A file where the folder should be: the store cannot be created below it.
      await Deno.writeTextFile(`${dir}/not-a-folder`, "");
      await assert.rejects(
        openDenoKvStore({ path: `${dir}/not-a-folder/kv.sqlite3` }),
        (error: unknown) =>
          error instanceof StoreError && /KV_PATH/.test(error.message) &&
          /writable/.test(error.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("uses the platform's KV when deployed, ignoring KV_PATH", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/ignored/kv.sqlite3`;
    try {
      const store = await openDenoKvStore({ path, deployed: true });
      const key = `deployed-${crypto.randomUUID()}`;
      assert.equal((await store.run(key, "claim", claimInput("a"))).kind, "claimed");
      await store.run(key, "release", { owner: "a", now: Date.now() });
      await store.close();
      assert.equal(await exists(`${dir}/ignored`), false, "KV_PATH was used on Deno Deploy");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
