/**
 * A store in one isolate's memory. For tests and for embedding `createApp`
 * in a single long-lived process: it is lost on restart and not shared
 * between isolates, so the Deno and Workers entries never use it.
 *
 * @module
 */

import { applyStep, type Store, StoreError } from "./store.ts";
import type { StoredRecord } from "./steps.ts";

/**
 * Creates an in-memory store. Steps run synchronously on a `Map`, so each is
 * atomic.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * await store.run("k", "consume", { count: 1, limit: 10, windowMs: 60_000, now: Date.now() });
 * ```
 */
export function memoryStore(): Store {
  const records = new Map<string, string>();
  let closed = false;
  return {
    run(key, name, input) {
      if (closed) return Promise.reject(new StoreError("The store is closed."));
      try {
        const text = records.get(key);
        // Kept as JSON, as the other adapters keep it: no step can alias a stored object.
        const current = text === undefined ? undefined : JSON.parse(text) as StoredRecord;
        const { next, output } = applyStep(name, current, input);
        if (next === null) records.delete(key);
        else if (next !== undefined) records.set(key, JSON.stringify(next));
        return Promise.resolve(output);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    close() {
      closed = true;
      records.clear();
    },
  };
}
