/**
 * The store on Cloudflare Workers: a Durable Object, the platform's strongly
 * consistent storage (Workers KV is eventually consistent, so two requests
 * with one key could both win there). Each store key gets its own object
 * (`idFromName(key)`), so keys never wait for each other. Inside, a step is
 * one storage read, the pure step, one storage write: the object's input gate
 * delivers no other request while its storage operation is pending, so the
 * step is atomic. An alarm deletes the record once it may be forgotten.
 *
 * `functions/cloudflare.ts` exports {@linkcode EdgemailStore}; `wrangler.toml`
 * binds it as `EDGEMAIL_STORE` with a `new_sqlite_classes` migration.
 *
 * @module
 */

import { applyStep, forgetAfter, type Store, StoreError } from "./store.ts";
import type { StepName, StoredRecord } from "./steps.ts";

/** The binding name of the Durable Object namespace in `wrangler.toml`. */
export const STORE_BINDING = "EDGEMAIL_STORE";

/** The parts of a Durable Object's storage API the store uses. */
export interface DurableObjectStorageLike {
  /** Reads several keys at once. */
  get(keys: string[]): Promise<Map<string, unknown>>;
  /** Writes several entries atomically. */
  put(entries: Record<string, unknown>): Promise<void>;
  /** Deletes several keys atomically. */
  delete(keys: string[]): Promise<number>;
  /** Deletes everything. */
  deleteAll(): Promise<void>;
  /** Schedules `alarm()`. */
  setAlarm(scheduledTime: number): Promise<void>;
}

/** The parts of `DurableObjectState` the store uses. */
export interface DurableObjectStateLike {
  /** The object's transactional storage. */
  storage: DurableObjectStorageLike;
}

/** The parts of a Durable Object stub the adapter uses. */
export interface DurableObjectStubLike {
  /** Sends a request to the object. */
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/** The parts of `DurableObjectNamespace` the adapter uses. */
export interface DurableObjectNamespaceLike {
  /** The id of the object named `name`. */
  idFromName(name: string): unknown;
  /** A stub for the object with `id`. */
  get(id: never): DurableObjectStubLike;
}

const RECORD = "record";
/** SQLite-backed objects keep values up to 2 MB: bigger records go in parts. */
const PART_BYTES = 1_000_000;
/** Greatest number of parts of one record: 100 MB, far beyond any batch. */
const MAX_PARTS = 100;

/** A step as sent to the object. */
interface StepRequest {
  key: string;
  name: StepName;
  input: unknown;
}

/** How a record is kept: its JSON inline, or the number of its parts. */
type Encoded = { json: string } | { parts: number };

/**
 * The Durable Object class: runs store steps on its own storage. Export it
 * from the Worker entry and bind it in `wrangler.toml`.
 */
export class EdgemailStore {
  #storage: DurableObjectStorageLike;

  /** Called by the runtime. */
  constructor(state: DurableObjectStateLike, _env?: unknown) {
    this.#storage = state.storage;
  }

  /** Runs one step (`POST` with `{ key, name, input }`) and answers its output as JSON. */
  async fetch(request: Request): Promise<Response> {
    let step: StepRequest;
    try {
      step = await request.json() as StepRequest;
    } catch {
      return Response.json({ error: "The body must be a JSON step." }, { status: 400 });
    }
    try {
      return Response.json({ output: await this.#run(step) });
    } catch (error) {
      return Response.json({ error: (error as Error).message }, { status: 500 });
    }
  }

  /** Forgets the record once its deadline passed (reschedules itself otherwise). */
  async alarm(): Promise<void> {
    const current = await this.#read();
    if (current === undefined) return await this.#storage.deleteAll();
    const until = forgetAfter(current);
    if (until <= Date.now()) await this.#storage.deleteAll();
    else await this.#storage.setAlarm(until);
  }

  async #run(step: StepRequest): Promise<unknown> {
    // Only storage operations are awaited from the read to the write: the input gate keeps
    // every other request out in between.
    const current = await this.#read();
    const { next, output } = applyStep(step.name, current, step.input as never);
    if (next === null) await this.#storage.deleteAll();
    else if (next !== undefined) {
      await this.#write(next);
      await this.#storage.setAlarm(forgetAfter(next));
    }
    return output;
  }

  async #read(): Promise<StoredRecord | undefined> {
    const entries = await this.#storage.get([RECORD]);
    const encoded = entries.get(RECORD) as Encoded | undefined;
    if (encoded === undefined) return undefined;
    if ("json" in encoded) return JSON.parse(encoded.json) as StoredRecord;
    const keys = Array.from({ length: encoded.parts }, (_, part) => `part:${part}`);
    const parts = await this.#storage.get(keys);
    const text = keys.map((key) => {
      const part = parts.get(key);
      if (typeof part !== "string") throw new StoreError("A stored record lost one of its parts.");
      return part;
    }).join("");
    return JSON.parse(text) as StoredRecord;
  }

  async #write(record: StoredRecord): Promise<void> {
    const json = JSON.stringify(record);
    // Characters, not bytes: three bytes per UTF-16 unit at most keeps each part within 2 MB.
    const partChars = Math.floor(PART_BYTES / 3);
    if (json.length <= partChars) return await this.#storage.put({ [RECORD]: { json } });
    const count = Math.ceil(json.length / partChars);
    if (count > MAX_PARTS) throw new StoreError("The record is too large to store.");
    const entries: Record<string, unknown> = { [RECORD]: { parts: count } };
    for (let part = 0; part < count; part++) {
      entries[`part:${part}`] = json.slice(part * partChars, (part + 1) * partChars);
    }
    await this.#storage.put(entries);
  }
}

/**
 * The store backed by the `EdgemailStore` Durable Object namespace: one
 * object per key.
 *
 * @example
 * ```ts
 * const store = durableObjectStore(env.EDGEMAIL_STORE);
 * ```
 */
export function durableObjectStore(namespace: DurableObjectNamespaceLike): Store {
  return {
    async run(key, name, input) {
      const stub = namespace.get(namespace.idFromName(key) as never);
      const response = await stub.fetch("https://edgemail-store/step", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key, name, input } satisfies StepRequest),
      });
      const body = await response.json() as { output?: unknown; error?: string };
      if (!response.ok || !("output" in body)) {
        throw new StoreError(
          `The Durable Object store failed (${response.status}): ${body.error ?? "no detail"}`,
        );
      }
      return body.output as never;
    },
    close() {},
  };
}

/** Whether `value` looks like a Durable Object namespace binding. */
export function isDurableObjectNamespace(value: unknown): value is DurableObjectNamespaceLike {
  return typeof value === "object" && value !== null &&
    typeof (value as DurableObjectNamespaceLike).idFromName === "function" &&
    typeof (value as DurableObjectNamespaceLike).get === "function";
}
