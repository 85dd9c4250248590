/**
 * The store on Deno KV: a local SQLite file (`KV_PATH`, default
 * `./.edgemail/kv.sqlite3`), or on Deno Deploy the platform's KV. Each step
 * reads the record, computes the next one and commits it with a versionstamp
 * check (`kv.atomic().check(entry)`), retrying when another request changed
 * the key in between: of two concurrent claims of one key, exactly one
 * commits. `expireIn` is set only to clean up; answers never depend on it.
 *
 * Needs Deno KV (`"unstable": ["kv"]` in deno.json, or `--unstable-kv`);
 * where the platform has none (Supabase Edge Functions), use
 * {@linkcode hasDenoKv} to find out before promising anything.
 *
 * @module
 */

import { applyStep, forgetAfter, type Store, StoreError } from "./store.ts";
import type { StoredRecord } from "./steps.ts";

/** Where the KV file lives when `KV_PATH` is unset. */
export const DEFAULT_KV_PATH = "./.edgemail/kv.sqlite3";

/** Options of {@linkcode openDenoKvStore}. */
export interface DenoKvStoreOptions {
  /**
   * The SQLite file; ignored (the platform's KV is used) when `deployed`.
   * Default {@linkcode DEFAULT_KV_PATH}; its folder is created.
   */
  path?: string;
  /** Running on Deno Deploy (`DENO_DEPLOYMENT_ID` set): open the platform's KV. */
  deployed?: boolean;
}

const PREFIX = "edgemail";
/** Deno KV keeps values up to 64 KiB: bigger records (a large batch's results) go in parts. */
const PART_BYTES = 60_000;
/** Parts written per commit, well within one atomic operation's size limit. */
const PARTS_PER_COMMIT = 8;
/** Extra time before Deno KV may delete an entry past its deadline. */
const CLEANUP_MARGIN_MS = 60_000;
const MAX_ATTEMPTS = 50;

/** A record as kept in Deno KV: its JSON inline, or the id and number of its parts. */
type Encoded = { json: string } | { parts: string; count: number };

/** Whether this Deno has Deno KV (Supabase Edge Functions do not). */
export function hasDenoKv(): boolean {
  return typeof (globalThis as { Deno?: { openKv?: unknown } }).Deno?.openKv === "function";
}

/**
 * Opens the store on Deno KV.
 *
 * @example
 * ```ts
 * const store = await openDenoKvStore({ path: "./.edgemail/kv.sqlite3" });
 * ```
 * @throws {StoreError} when Deno KV is missing or the file cannot be opened (the message says why).
 */
export async function openDenoKvStore(options: DenoKvStoreOptions = {}): Promise<Store> {
  if (!hasDenoKv()) {
    throw new StoreError(
      'Deno KV is not available: run with --unstable-kv (or `"unstable": ["kv"]` in ' +
        "deno.json), or on a platform that has it.",
    );
  }
  if (options.deployed) return denoKvStore(await Deno.openKv());
  const path = options.path ?? DEFAULT_KV_PATH;
  try {
    const folder = path.replace(/[\\/][^\\/]*$/, "");
    if (folder !== path && folder !== "" && !path.startsWith(":")) {
      await Deno.mkdir(folder, { recursive: true });
    }
    return denoKvStore(await Deno.openKv(path));
  } catch (error) {
    throw new StoreError(
      `Cannot open the Deno KV store at KV_PATH (${path}): ${(error as Error).message}. ` +
        "Check that the folder is writable (deno needs --allow-read and --allow-write for it).",
      { cause: error },
    );
  }
}

/** The store on an open Deno KV handle; `close()` closes the handle. */
export function denoKvStore(kv: Deno.Kv): Store {
  return {
    async run(key, name, input) {
      const kvKey = [PREFIX, key];
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const entry = await kv.get<Encoded>(kvKey);
        const current = entry.value === null ? undefined : await decode(kv, kvKey, entry.value);
        const { next, output } = applyStep(name, current, input);
        // A read-only answer is consistent as of the strong read above.
        if (next === undefined) return output;
        const operation = kv.atomic().check(entry);
        if (next === null) {
          operation.delete(kvKey);
        } else {
          const expireIn = Math.max(1, forgetAfter(next) - Date.now()) + CLEANUP_MARGIN_MS;
          operation.set(kvKey, await encode(kv, kvKey, next, expireIn), { expireIn });
        }
        if ((await operation.commit()).ok) return output;
      }
      throw new StoreError(`Too much contention on one key in Deno KV (${name}); try again.`);
    },
    close() {
      kv.close();
    },
  };
}

async function encode(
  kv: Deno.Kv,
  kvKey: Deno.KvKey,
  record: StoredRecord,
  expireIn: number,
): Promise<Encoded> {
  const json = JSON.stringify(record);
  const bytes = new TextEncoder().encode(json);
  if (bytes.length <= PART_BYTES) return { json };
  // Parts get a fresh id, so they are never overwritten: only the commit of the main
  // entry (checked) makes them the record's. Unused ones expire.
  const id = crypto.randomUUID();
  const count = Math.ceil(bytes.length / PART_BYTES);
  for (let first = 0; first < count; first += PARTS_PER_COMMIT) {
    const operation = kv.atomic();
    for (let part = first; part < Math.min(count, first + PARTS_PER_COMMIT); part++) {
      const chunk = bytes.subarray(part * PART_BYTES, (part + 1) * PART_BYTES);
      operation.set([...kvKey, id, part], chunk, { expireIn });
    }
    if (!(await operation.commit()).ok) {
      throw new StoreError("Deno KV refused to store a record's parts.");
    }
  }
  return { parts: id, count };
}

async function decode(kv: Deno.Kv, kvKey: Deno.KvKey, value: Encoded): Promise<StoredRecord> {
  if ("json" in value) return JSON.parse(value.json) as StoredRecord;
  const chunks: Uint8Array[] = [];
  for (let first = 0; first < value.count; first += 10) {
    const keys = [];
    for (let part = first; part < Math.min(value.count, first + 10); part++) {
      keys.push([...kvKey, value.parts, part]);
    }
    for (const entry of await kv.getMany<Uint8Array[]>(keys)) {
      if (entry.value === null) throw new StoreError("A stored record lost one of its parts.");
      chunks.push(entry.value);
    }
  }
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return JSON.parse(new TextDecoder().decode(bytes)) as StoredRecord;
}
