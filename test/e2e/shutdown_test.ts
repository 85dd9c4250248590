/**
 * Graceful shutdown of the real Deno server: `deno serve functions/deno.ts`
 * (and `deno task dev`'s src/dev/main.ts) as a subprocess with a Deno KV file
 * (`KV_PATH` in a temporary folder), sending to the scripted fault server,
 * which holds or stalls chosen messages. A signal while sends are in flight:
 * new connections are refused at once, each request in flight gets its real
 * outcome (also stored for its `Idempotency-Key`, so a retry after a restart
 * replays it), and the process exits 0. Past `SHUTDOWN_TIMEOUT_MS`, a message
 * whose data was written is `unknown_outcome` (stored: a retry does not send
 * it again), one stalled before its data or in its TLS handshake fails
 * without it (the key is released: a retry sends), and a send whose SSE
 * client went away is cut at the bound too; such a forced drain exits 1. A
 * second signal exits at once (130).
 *
 * Prints the time from each signal to the process's exit.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type FaultServer, smtpScript, startFaultServer } from "../support/fault_server.ts";
import { guard } from "../support/guard.ts";
import { readSse } from "../support/sse.ts";
import { type ServeProcess, startServe } from "../support/serve_process.ts";

const API_KEY = "shutdown-key-3f9a1c7e";
/** Only a guard against hanging; never reached when the code works. */
const HANG_GUARD_MS = 60_000;
/** Generous for the cases that must drain: the sends are released right after the signal. */
const DRAIN_BOUND_MS = 20_000;
/** Short for the cases that must pass the bound. */
const SHORT_BOUND_MS = 500;
const CASE_HEADER = "X-Shutdown-Case";
const DEV_ENTRY = new URL("../../src/dev/main.ts", import.meta.url).pathname;
/** {@linkcode start}'s options for `deno task dev`'s entry instead of `deno serve`. */
const DEV_SERVER = {
  env: { PORT: "{port}" },
  args: ["run", "--allow-all", "--unstable-no-legacy-abort", DEV_ENTRY],
};

/**
 * The scripted SMTP server: for a message whose data carries `X-Shutdown-Case:
 * <id>`, it counts the data, reports its arrival, and holds its reply until
 * released (`hold`) or says nothing until the client closes (`stall`). A
 * recipient `stall-<id>@…` is not answered (once) until the client closes; a
 * recipient `refuse-<id>@…` is refused (550), which also counts as reaching it.
 */
class ScriptedPeer {
  server!: FaultServer;
  /** How many times the data of each case arrived in full. */
  readonly deliveries = new Map<string, number>();
  /** How many times RCPT was asked for each stalled recipient's case. */
  readonly rcptAsked = new Map<string, number>();
  readonly #arrived = new Map<string, PromiseWithResolvers<void>>();
  readonly #released = new Map<string, PromiseWithResolvers<void>>();
  readonly #stallData = new Set<string>();
  readonly #stallRcpt = new Set<string>();

  async start(): Promise<void> {
    this.server = await startFaultServer(smtpScript({
      RCPT: async (conn, line) => {
        const refused = /^RCPT TO:<refuse-([^@>]+)@/i.exec(line)?.[1];
        if (refused !== undefined) {
          this.#signal(refused);
          await conn.send("550 5.1.1 No such user\r\n");
          return;
        }
        const id = /^RCPT TO:<stall-([^@>]+)@/i.exec(line)?.[1];
        if (id !== undefined) {
          this.rcptAsked.set(id, (this.rcptAsked.get(id) ?? 0) + 1);
          this.#signal(id);
          if (this.#stallRcpt.delete(id)) return await conn.waitClosed();
        }
        await conn.send("250 2.1.5 Ok\r\n");
      },
      message: async (conn, content) => {
        const id = new RegExp(`^${CASE_HEADER}: (\\S+)\\r$`, "im").exec(content)?.[1];
        if (id !== undefined) {
          this.deliveries.set(id, (this.deliveries.get(id) ?? 0) + 1);
          this.#signal(id);
          if (this.#stallData.delete(id)) return await conn.waitClosed();
          await this.#released.get(id)?.promise;
        }
        await conn.send(`250 2.0.0 Ok: queued as ${id ?? "other"}\r\n`);
      },
    }));
  }

  /** Case `id`'s reply to the end of its data waits for {@linkcode release}. */
  hold(id: string): void {
    this.#released.set(id, Promise.withResolvers());
  }

  release(id: string): void {
    this.#released.get(id)?.resolve();
  }

  /** Case `id`'s end of data is never answered (the first time). */
  stallData(id: string): void {
    this.#stallData.add(id);
  }

  /** Case `id`'s recipient `stall-<id>@example.com` is not answered (the first time). */
  stallRcpt(id: string): void {
    this.#stallRcpt.add(id);
  }

  /** Resolves when case `id` reached the server's held or stalled step. */
  reached(id: string): Promise<void> {
    return guard(this.#waiter(id).promise, `case ${id} reaching the SMTP server`, {
      ms: HANG_GUARD_MS,
    });
  }

  #waiter(id: string): PromiseWithResolvers<void> {
    let waiter = this.#arrived.get(id);
    if (waiter === undefined) this.#arrived.set(id, waiter = Promise.withResolvers());
    return waiter;
  }

  #signal(id: string): void {
    this.#waiter(id).resolve();
  }

  async close(): Promise<void> {
    for (const waiter of this.#released.values()) waiter.resolve();
    await this.server?.close();
  }
}

let caseCounter = 0;
/** A fresh case id (also the Idempotency-Key's tail). */
function newCase(name: string): string {
  return `${name}-${Date.now()}-${caseCounter++}`;
}

/** The message of case `id`, to `to`. */
function messageOf(id: string, to = "bob@example.com") {
  return {
    from: "app@example.com",
    to,
    subject: `shutdown ${id}`,
    text: `case ${id}`,
    headers: { [CASE_HEADER]: id },
    token: id,
  };
}

/** A recipient whose RCPT the peer leaves unanswered (see {@linkcode ScriptedPeer.stallRcpt}). */
function stalledTo(id: string): string {
  return `stall-${id}@example.com`;
}

/** A recipient the peer refuses with 550. */
function refusedTo(id: string): string {
  return `refuse-${id}@example.com`;
}

interface SendOptions {
  key?: string;
  sse?: boolean;
  /** Aborts the request (the client going away); by default only the hang guard does. */
  signal?: AbortSignal;
}

/** POST /send (or `path`); the response's body is left to the caller. */
function post(
  url: string,
  body: unknown,
  options: SendOptions = {},
  path = "/send",
): Promise<Response> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${API_KEY}`,
    "Content-Type": "application/json",
  };
  if (options.key !== undefined) headers["Idempotency-Key"] = options.key;
  if (options.sse) headers.Accept = "text/event-stream";
  return fetch(`${url}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: options.signal ?? AbortSignal.timeout(HANG_GUARD_MS),
  });
}

/** What a caller ends up with: the HTTP status, its Result, and whether it was a replay. */
interface Outcome {
  http: number;
  result: Record<string, unknown> & { status: string; error?: { type: string; message?: string } };
  /** The Result exactly as received (the JSON body, or the `completed` event's data). */
  raw: string;
  replayed: boolean;
  /** For SSE: the event names in order. */
  events?: string[];
}

/**
 * Sends and reads the whole answer (the JSON body, or the SSE stream to its
 * end). The body is read as it arrives, so a drain that waits for the
 * response to be read is never blocked by the test.
 */
async function send(url: string, body: unknown, options: SendOptions = {}): Promise<Outcome> {
  const response = await post(url, body, options);
  const replayed = response.headers.get("Idempotent-Replayed") === "true";
  if (!options.sse) {
    const raw = await response.text();
    return { http: response.status, result: JSON.parse(raw), raw, replayed };
  }
  assert.equal(response.status, 200);
  const { events } = await readSse(response, { hangGuardMs: HANG_GUARD_MS });
  const completed = events.filter((event) => event.event === "completed");
  assert.equal(completed.length, 1, `one completed event, got ${JSON.stringify(events)}`);
  const raw = completed[0].data;
  return {
    http: response.status,
    result: JSON.parse(raw),
    raw,
    replayed,
    events: events.map((event) => event.event ?? "message"),
  };
}

/** What a caller of POST /send/batch ends up with. */
interface BatchOutcome {
  http: number;
  /** The Results in input order (for SSE, the `completed` events' data by `index`). */
  results: Outcome["result"][];
  /** The JSON body, or the `completed` events' data in order of index and the `done` data. */
  raw: string;
  replayed: boolean;
  /** For SSE: the event names in order, and the `done` counts. */
  events?: string[];
  done?: { sent: number; failed: number; cancelled: number };
}

/**
 * POST /send/batch of `messages`, read to its end like {@linkcode send}. For
 * SSE it checks what every batch stream must hold: one `completed` event per
 * index, then `done` last.
 */
async function sendBatch(
  url: string,
  messages: unknown[],
  options: SendOptions = {},
): Promise<BatchOutcome> {
  const response = await post(url, { messages }, options, "/send/batch");
  const replayed = response.headers.get("Idempotent-Replayed") === "true";
  if (!options.sse) {
    const raw = await response.text();
    return { http: response.status, results: JSON.parse(raw).results, raw, replayed };
  }
  assert.equal(response.status, 200);
  const { events } = await readSse(response, { hangGuardMs: HANG_GUARD_MS });
  const names = events.map((event) => event.event ?? "message");
  const results: Outcome["result"][] = [];
  for (const event of events.filter((event) => event.event === "completed")) {
    const result = JSON.parse(event.data);
    assert.equal(results[result.index], undefined, `two completed events for ${result.index}`);
    results[result.index] = result;
  }
  assert.equal(results.length, messages.length, `completed events: ${JSON.stringify(events)}`);
  assert.ok(results.every((result) => result !== undefined), JSON.stringify(events));
  assert.equal(names.at(-1), "done", `the stream ends with done: ${JSON.stringify(events)}`);
  assert.equal(names.filter((name) => name === "done").length, 1);
  const done = JSON.parse(events.at(-1)!.data);
  return {
    http: response.status,
    results,
    raw: JSON.stringify({ results, done }),
    replayed,
    events: names,
    done,
  };
}

/**
 * Sends the batch again with the same key (to a new process): it must be
 * replayed as `outcome`, the same Results and counts (for JSON, the same body).
 */
async function replayBatch(
  url: string,
  messages: unknown[],
  options: SendOptions,
  outcome: BatchOutcome,
): Promise<BatchOutcome> {
  const replay = await sendBatch(url, messages, options);
  assert.equal(replay.replayed, true, replay.raw);
  assert.equal(replay.http, 200);
  assert.deepEqual(replay.results, outcome.results);
  assert.deepEqual(replay.done, outcome.done);
  if (!options.sse) assert.equal(replay.raw, outcome.raw);
  return replay;
}

/** A send cut before its data was written fails for its real cause: not unknown_outcome, no bug. */
function assertCutBeforeData(result: Outcome["result"], raw: string): void {
  assert.notEqual(result.error?.type, "unknown_outcome", raw);
  assert.notEqual(result.error?.type, "internal", raw);
}

/**
 * Resolves once a new TCP connection to `url` is refused; fails if it never
 * is. The server closes its listener right after handling the signal, in its
 * next turn of the event loop, which a test that saw the log line may beat:
 * until then a connection may still be accepted (it is closed unused) or be
 * reset as the listener closes.
 */
async function untilRefused(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const refused = (async () => {
    while (true) {
      try {
        (await Deno.connect({ hostname, port: Number(port) })).close();
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionRefused) return;
        // Queued on the listener as it closed: reset, never served. The next one tells.
        if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
      }
    }
  })();
  await guard(refused, "refusing new connections", { ms: HANG_GUARD_MS });
}

/** Milliseconds from now until `server` has exited, with its status. */
async function timeExit(server: ServeProcess): Promise<{ ms: number; code: number }> {
  const start = performance.now();
  const status = await guard(server.exited, "the server's exit", { ms: HANG_GUARD_MS });
  return { ms: Math.round(performance.now() - start), code: status.code };
}

const SHUTTING_DOWN = /edgemail: shutting down; \d+ request\(s\) in flight/;

/** Resolves once `server` has logged that it is shutting down. */
function untilShuttingDown(server: ServeProcess): Promise<void> {
  return guard(server.untilOutput(SHUTTING_DOWN), "the shutdown log line", { ms: HANG_GUARD_MS });
}

/**
 * A drain that had to cut work at the bound ends with exit status 1, so a
 * process manager records the shutdown as failed, and the log says why.
 */
function assertForcedExit(server: ServeProcess, code: number): void {
  assert.equal(code, 1, server.output());
  assert.match(server.output(), /edgemail: shutdown forced at the bound; exit status 1/);
}

describe("graceful shutdown of the Deno entries", () => {
  const peer = new ScriptedPeer();
  let kvDir: string;
  const servers: ServeProcess[] = [];

  before(async () => {
    await peer.start();
    kvDir = await Deno.makeTempDir({ prefix: "edgemail-shutdown-" });
  });

  after(async () => {
    // A failed case may leave a server running: end it, then the peer.
    await Promise.all(servers.map((server) => {
      server.signal("SIGKILL");
      return server.exited;
    }));
    await peer.close();
    if (kvDir) await Deno.remove(kvDir, { recursive: true });
  });

  /** Starts `deno serve` (or `args`) on the peer, with KV file `kvFile` and the bound `boundMs`. */
  async function start(
    kvFile: string,
    boundMs: number,
    options: { env?: Record<string, string>; args?: string[] } = {},
  ): Promise<ServeProcess> {
    const server = await startServe({
      SMTP_URL: `smtp://127.0.0.1:${peer.server.port}?tls=none`,
      API_KEYS: API_KEY,
      MAIL_FROM: "app@example.com",
      KV_PATH: `${kvDir}/${kvFile}`,
      SHUTDOWN_TIMEOUT_MS: String(boundMs),
      LOG_FORMAT: "plain",
      ...options.env,
    }, { args: options.args });
    servers.push(server);
    return server;
  }

  /**
   * A keyed send held at the peer, then `signal`: once new connections are
   * refused the send is released, and it must be answered `sent` (200).
   * Resolves with the time from the signal to the exit, and the exit status.
   */
  async function drainHeldSend(
    server: ServeProcess,
    signal: Deno.Signal,
    caseName: string,
  ): Promise<{ ms: number; code: number }> {
    const id = newCase(caseName);
    peer.hold(id);
    const answer = send(server.url, messageOf(id), { key: id });
    await peer.reached(id);
    server.signal(signal);
    const exit = timeExit(server);
    await untilShuttingDown(server);
    await untilRefused(server.url);
    peer.release(id);
    const outcome = await answer;
    assert.equal(outcome.http, 200, outcome.raw);
    assert.equal(outcome.result.status, "sent");
    return await exit;
  }

  it("SIGTERM with a sync and an SSE send in flight: refuses new connections, both are sent, exit 0", async () => {
    const server = await start("sigterm.sqlite3", DRAIN_BOUND_MS);
    const sync = newCase("sync");
    const sse = newCase("sse");
    peer.hold(sync);
    peer.hold(sse);
    const answers = Promise.all([
      send(server.url, messageOf(sync)),
      send(server.url, messageOf(sse), { sse: true }),
    ]);
    await Promise.all([peer.reached(sync), peer.reached(sse)]);

    server.signal("SIGTERM");
    const exit = timeExit(server);
    await untilShuttingDown(server);
    assert.match(server.output(), /shutting down; 2 request\(s\) in flight/);
    await untilRefused(server.url);
    peer.release(sync);
    peer.release(sse);

    const [syncOutcome, sseOutcome] = await answers;
    assert.equal(syncOutcome.http, 200, syncOutcome.raw);
    assert.equal(syncOutcome.result.status, "sent");
    assert.equal(sseOutcome.result.status, "sent", sseOutcome.raw);
    assert.equal(sseOutcome.events?.at(-1), "completed");
    const { ms, code } = await exit;
    console.log(`SIGTERM, 2 sends in flight (released at once): exit ${code} after ${ms} ms`);
    assert.equal(code, 0, server.output());
    assert.ok(ms < DRAIN_BOUND_MS, `exit after ${ms} ms, beyond the bound`);
    assert.match(server.output(), /every request in flight has finished/);
    assert.doesNotMatch(server.output(), /still in flight after|shutdown forced/);
    assert.equal(peer.deliveries.get(sync), 1);
    assert.equal(peer.deliveries.get(sse), 1);
  });

  it("SIGTERM with Idempotency-Keys: the outcomes are stored, a new process replays them, nothing is sent twice", async () => {
    const server = await start("idempotent.sqlite3", DRAIN_BOUND_MS);
    const sync = newCase("idem-sync");
    const sse = newCase("idem-sse");
    peer.hold(sync);
    peer.hold(sse);
    const answers = Promise.all([
      send(server.url, messageOf(sync), { key: sync }),
      send(server.url, messageOf(sse), { key: sse, sse: true }),
    ]);
    await Promise.all([peer.reached(sync), peer.reached(sse)]);
    server.signal("SIGTERM");
    const exit = timeExit(server);
    await untilShuttingDown(server);
    peer.release(sync);
    peer.release(sse);
    const [first, firstSse] = await answers;
    assert.equal(first.result.status, "sent", first.raw);
    assert.equal(firstSse.result.status, "sent", firstSse.raw);
    const { ms, code } = await exit;
    console.log(`SIGTERM, 2 keyed sends in flight: exit ${code} after ${ms} ms`);
    assert.equal(code, 0, server.output());

    const next = await start("idempotent.sqlite3", DRAIN_BOUND_MS);
    const replay = await send(next.url, messageOf(sync), { key: sync });
    assert.equal(replay.replayed, true, replay.raw);
    assert.equal(replay.http, 200);
    assert.equal(replay.raw, first.raw);
    const replaySse = await send(next.url, messageOf(sse), { key: sse, sse: true });
    assert.equal(replaySse.replayed, true);
    assert.deepEqual(replaySse.events, ["completed"]);
    assert.deepEqual(JSON.parse(replaySse.raw), JSON.parse(firstSse.raw));
    assert.equal(peer.deliveries.get(sync), 1, "the sync message was sent again");
    assert.equal(peer.deliveries.get(sse), 1, "the SSE message was sent again");
    await next.stop();
  });

  it("past the bound: data written is unknown_outcome and stays so; a send stalled before its data fails and its key is released", async () => {
    const server = await start("forced.sqlite3", SHORT_BOUND_MS);
    const afterDot = newCase("after-dot");
    const atRcpt = newCase("at-rcpt");
    const atRcptSse = newCase("at-rcpt-sse");
    peer.stallData(afterDot);
    peer.stallRcpt(atRcpt);
    peer.stallRcpt(atRcptSse);
    const answers = Promise.all([
      send(server.url, messageOf(afterDot), { key: afterDot }),
      send(server.url, messageOf(atRcpt, stalledTo(atRcpt)), { key: atRcpt }),
      send(server.url, messageOf(atRcptSse, stalledTo(atRcptSse)), { key: atRcptSse, sse: true }),
    ]);
    await Promise.all([peer.reached(afterDot), peer.reached(atRcpt), peer.reached(atRcptSse)]);
    server.signal("SIGTERM");
    const exit = timeExit(server);
    const [unknown, beforeData, beforeDataSse] = await answers;

    assert.equal(unknown.http, 502, unknown.raw);
    assert.equal(unknown.result.error?.type, "unknown_outcome");
    for (const failed of [beforeData, beforeDataSse]) {
      assert.equal(failed.result.status, "failed", failed.raw);
      assertCutBeforeData(failed.result, failed.raw);
    }
    const { ms, code } = await exit;
    console.log(
      `SIGTERM past a ${SHORT_BOUND_MS} ms bound, 3 stalled sends: exit ${code} after ${ms} ms`,
    );
    assertForcedExit(server, code);
    assert.match(server.output(), /3 request\(s\) still in flight after 500 ms/);

    const next = await start("forced.sqlite3", DRAIN_BOUND_MS);
    const replay = await send(next.url, messageOf(afterDot), { key: afterDot });
    assert.equal(replay.replayed, true, replay.raw);
    assert.equal(replay.http, 502);
    assert.equal(replay.raw, unknown.raw);
    assert.equal(peer.deliveries.get(afterDot), 1, "the unknown message was sent again");
    for (const id of [atRcpt, atRcptSse]) {
      const retry = await send(next.url, messageOf(id, stalledTo(id)), { key: id });
      assert.equal(retry.replayed, false, retry.raw);
      assert.equal(retry.http, 200, retry.raw);
      assert.equal(retry.result.status, "sent");
      assert.equal(peer.rcptAsked.get(id), 2);
      assert.equal(peer.deliveries.get(id), 1);
    }
    await next.stop();
  });

  for (const sse of [false, true]) {
    const form = sse ? "SSE" : "sync JSON";
    const aForm = sse ? "an SSE" : "a sync JSON";
    const tag = sse ? "sse" : "sync";

    it(`SIGTERM with ${aForm} batch of 3 in flight (Idempotency-Key): each message gets its real outcome, exit 0; a new process replays the batch`, async () => {
      const kvFile = `batch-${tag}.sqlite3`;
      const server = await start(kvFile, DRAIN_BOUND_MS);
      const [first, second, refused] = [0, 1, 2].map((i) => newCase(`batch-${tag}-${i}`));
      peer.hold(first);
      peer.hold(second);
      const messages = [
        messageOf(first),
        messageOf(second),
        messageOf(refused, refusedTo(refused)),
      ];
      const key = newCase(`batch-${tag}-key`);
      const answer = sendBatch(server.url, messages, { key, sse });
      await Promise.all([first, second, refused].map((id) => peer.reached(id)));

      server.signal("SIGTERM");
      const exit = timeExit(server);
      await untilShuttingDown(server);
      assert.match(server.output(), /shutting down; 1 request\(s\) in flight/);
      await untilRefused(server.url);
      peer.release(first);
      peer.release(second);

      const outcome = await answer;
      assert.equal(outcome.http, 200, outcome.raw);
      assert.deepEqual(outcome.results.map((result) => result.token), [first, second, refused]);
      assert.deepEqual(outcome.results.map((result) => result.status), ["sent", "sent", "failed"]);
      assert.equal(outcome.results[2].error?.type, "rejected", outcome.raw);
      if (sse) assert.deepEqual(outcome.done, { sent: 2, failed: 1, cancelled: 0 });
      const { ms, code } = await exit;
      console.log(`SIGTERM, ${aForm} batch of 3 in flight: exit ${code} after ${ms} ms`);
      assert.equal(code, 0, server.output());
      assert.match(server.output(), /every request in flight has finished/);
      assert.doesNotMatch(server.output(), /still in flight after/);
      assert.equal(peer.deliveries.get(first), 1);
      assert.equal(peer.deliveries.get(second), 1);

      const next = await start(kvFile, DRAIN_BOUND_MS);
      const replay = await replayBatch(next.url, messages, { key, sse }, outcome);
      if (sse) assert.deepEqual(replay.events, ["completed", "completed", "completed", "done"]);
      assert.equal(peer.deliveries.get(first), 1, "the first message was sent again");
      assert.equal(peer.deliveries.get(second), 1, "the second message was sent again");
      await next.stop();
    });

    it(`past the bound, ${aForm} batch of 3: the message whose data was written is unknown_outcome, those stalled before their data fail without it; a new process replays the batch`, async () => {
      const kvFile = `batch-forced-${tag}.sqlite3`;
      const server = await start(kvFile, SHORT_BOUND_MS);
      const [afterDot, atRcpt, atRcptToo] = [0, 1, 2].map((i) => newCase(`cut-${tag}-${i}`));
      peer.stallData(afterDot);
      peer.stallRcpt(atRcpt);
      peer.stallRcpt(atRcptToo);
      const messages = [
        messageOf(afterDot),
        messageOf(atRcpt, stalledTo(atRcpt)),
        messageOf(atRcptToo, stalledTo(atRcptToo)),
      ];
      const key = newCase(`cut-${tag}-key`);
      const answer = sendBatch(server.url, messages, { key, sse });
      await Promise.all([afterDot, atRcpt, atRcptToo].map((id) => peer.reached(id)));
      server.signal("SIGTERM");
      const exit = timeExit(server);

      const outcome = await answer;
      assert.equal(outcome.http, 200, outcome.raw);
      assert.deepEqual(outcome.results.map((result) => result.token), [
        afterDot,
        atRcpt,
        atRcptToo,
      ]);
      assert.deepEqual(outcome.results.map((result) => result.status), [
        "failed",
        "failed",
        "failed",
      ]);
      assert.equal(outcome.results[0].error?.type, "unknown_outcome", outcome.raw);
      for (const failed of outcome.results.slice(1)) assertCutBeforeData(failed, outcome.raw);
      if (sse) assert.deepEqual(outcome.done, { sent: 0, failed: 3, cancelled: 0 });
      const { ms, code } = await exit;
      console.log(
        `SIGTERM past a ${SHORT_BOUND_MS} ms bound, a stalled ${form} batch of 3: exit ${code} after ${ms} ms`,
      );
      assertForcedExit(server, code);
      assert.match(server.output(), /1 request\(s\) still in flight after 500 ms/);

      // Stored with the unknown_outcome: the whole batch is replayed, nothing is sent or asked again.
      const next = await start(kvFile, DRAIN_BOUND_MS);
      await replayBatch(next.url, messages, { key, sse }, outcome);
      assert.equal(peer.deliveries.get(afterDot), 1, "the unknown message was sent again");
      assert.equal(peer.rcptAsked.get(atRcpt), 1);
      assert.equal(peer.rcptAsked.get(atRcptToo), 1);
      await next.stop();
    });
  }

  it("past the bound, a batch larger than the pool: the messages still queued for a connection fail too, without unknown_outcome", async () => {
    // The pool opens at most 5 connections (SMTP_POOL_MAX's default): 5 stall at RCPT, 2 wait.
    const server = await start("batch-queued.sqlite3", SHORT_BOUND_MS);
    const ids = [0, 1, 2, 3, 4, 5, 6].map((i) => newCase(`queued-${i}`));
    const [stalled, queued] = [ids.slice(0, 5), ids.slice(5)];
    for (const id of stalled) peer.stallRcpt(id);
    const key = newCase("queued-key");
    const answer = sendBatch(server.url, ids.map((id) => messageOf(id, stalledTo(id))), { key });
    await Promise.all(stalled.map((id) => peer.reached(id)));
    server.signal("SIGTERM");
    const exit = timeExit(server);
    const outcome = await answer;
    assert.equal(outcome.http, 200, outcome.raw);
    assert.deepEqual(outcome.results.map((result) => result.token), ids);
    for (const result of outcome.results) {
      assert.equal(result.status, "failed", outcome.raw);
      assertCutBeforeData(result, outcome.raw);
    }
    for (const result of outcome.results.slice(5)) {
      // Refused by the shutdown, and said so: not a host or port to check.
      assert.match(String(result.error?.message), /^edgemail is shutting down/, outcome.raw);
    }
    const { ms, code } = await exit;
    console.log(
      `SIGTERM past a ${SHORT_BOUND_MS} ms bound, a batch of 7 (2 queued): exit ${code} after ${ms} ms`,
    );
    assertForcedExit(server, code);
    assert.ok(ms < HANG_GUARD_MS / 2, `exit after ${ms} ms`);
    assert.deepEqual(queued.map((id) => peer.rcptAsked.get(id)), [undefined, undefined]);

    // Nothing may have been delivered: the key is released and a retry sends them all.
    const next = await start("batch-queued.sqlite3", DRAIN_BOUND_MS);
    const retry = await sendBatch(next.url, ids.map((id) => messageOf(id, stalledTo(id))), { key });
    assert.equal(retry.replayed, false, retry.raw);
    assert.deepEqual(retry.results.map((result) => result.status), ids.map(() => "sent"));
    assert.deepEqual(ids.map((id) => peer.rcptAsked.get(id)), [2, 2, 2, 2, 2, 1, 1]);
    await next.stop();
  });

  it("past the bound: a send still connecting (a TLS handshake never answered) fails at once, not at its SMTP timeout", async () => {
    // Accepts TCP connections and never says a word: the implicit TLS handshake hangs.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: Deno.Conn[] = [];
    const connected = Promise.withResolvers<void>();
    const accepting = (async () => {
      for await (const conn of silent) {
        accepted.push(conn);
        connected.resolve();
      }
    })();
    try {
      const server = await start("connecting.sqlite3", SHORT_BOUND_MS, {
        env: {
          SMTP_URL: `smtps://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
          // Far beyond the bound: a send that waits for it has not been cut at the bound.
          SMTP_TIMEOUT_MS: String(HANG_GUARD_MS / 2),
        },
      });
      const id = newCase("connecting");
      const answer = send(server.url, messageOf(id), { key: id });
      await guard(connected.promise, "the SMTP connection", { ms: HANG_GUARD_MS });
      server.signal("SIGTERM");
      const exit = timeExit(server);
      const outcome = await answer;
      assert.equal(outcome.result.status, "failed", outcome.raw);
      assert.equal(outcome.result.error?.type, "connection", outcome.raw);
      const { ms, code } = await exit;
      console.log(
        `SIGTERM past a ${SHORT_BOUND_MS} ms bound, 1 send in its TLS handshake: exit ${code} after ${ms} ms`,
      );
      assertForcedExit(server, code);
    } finally {
      silent.close();
      await accepting.catch(() => {});
      for (const conn of accepted) conn.close();
    }
  });

  it("past the bound: an SSE send whose client went away after its data is cut too, and its unknown_outcome stored", async () => {
    // The send outlives its request: the shutdown must wait for it within the bound, then cut it.
    const smtpTimeoutMs = HANG_GUARD_MS / 2;
    const server = await start("gone.sqlite3", SHORT_BOUND_MS, {
      env: { SMTP_TIMEOUT_MS: String(smtpTimeoutMs) },
    });
    const id = newCase("gone");
    peer.stallData(id);
    const leave = new AbortController();
    const response = await post(server.url, messageOf(id), {
      key: id,
      sse: true,
      signal: leave.signal,
    });
    const reading = readSse(response).catch(() => "gone");
    await peer.reached(id);
    leave.abort();
    assert.equal(await reading, "gone");
    server.signal("SIGTERM");
    const { ms, code } = await timeExit(server);
    console.log(
      `SIGTERM past a ${SHORT_BOUND_MS} ms bound, 1 send whose SSE client left: exit ${code} after ${ms} ms`,
    );
    assertForcedExit(server, code);
    assert.ok(ms < smtpTimeoutMs, `exit after ${ms} ms: the send was not cut at the bound`);

    const next = await start("gone.sqlite3", DRAIN_BOUND_MS);
    const replay = await send(next.url, messageOf(id), { key: id });
    assert.equal(replay.replayed, true, replay.raw);
    assert.equal(replay.http, 502);
    assert.equal(replay.result.error?.type, "unknown_outcome");
    assert.equal(peer.deliveries.get(id), 1, "the message was sent again");
    await next.stop();
  });

  it("deno task dev (Deno.serve in src/dev/main.ts): SIGTERM lets the send in flight answer, exit 0", async () => {
    const server = await start("dev.sqlite3", DRAIN_BOUND_MS, DEV_SERVER);
    const { ms, code } = await drainHeldSend(server, "SIGTERM", "dev");
    console.log(`deno task dev, SIGTERM, 1 send in flight: exit ${code} after ${ms} ms`);
    assert.equal(code, 0, server.output());
  });

  it("deno task dev past the bound: the send whose data was written is unknown_outcome, exit 1", async () => {
    const server = await start("dev-forced.sqlite3", SHORT_BOUND_MS, DEV_SERVER);
    const id = newCase("dev-forced");
    peer.stallData(id);
    const answer = send(server.url, messageOf(id), { key: id });
    await peer.reached(id);
    server.signal("SIGTERM");
    const exit = timeExit(server);
    const outcome = await answer;
    assert.equal(outcome.http, 502, outcome.raw);
    assert.equal(outcome.result.error?.type, "unknown_outcome");
    const { ms, code } = await exit;
    console.log(
      `deno task dev, SIGTERM past a ${SHORT_BOUND_MS} ms bound, 1 stalled send: exit ${code} after ${ms} ms`,
    );
    assertForcedExit(server, code);
  });

  it("a second signal ends the process at once (exit 130) without waiting for the send in flight", async () => {
    const server = await start("second.sqlite3", DRAIN_BOUND_MS);
    const id = newCase("second");
    peer.hold(id);
    const answer = send(server.url, messageOf(id)).then(() => "answered", () => "cut");
    await peer.reached(id);
    server.signal("SIGINT");
    await untilShuttingDown(server);
    server.signal("SIGINT");
    const { ms, code } = await timeExit(server);
    console.log(`second SIGINT with 1 send in flight: exit ${code} after ${ms} ms`);
    assert.equal(code, 130, server.output());
    assert.equal(await answer, "cut");
    assert.match(server.output(), /second signal; exiting without waiting/);
    peer.release(id);
  });

  it("SIGINT behaves like SIGTERM: refuses new connections, the send in flight is sent, exit 0", async () => {
    const server = await start("sigint.sqlite3", DRAIN_BOUND_MS);
    const { ms, code } = await drainHeldSend(server, "SIGINT", "sigint");
    console.log(`SIGINT, 1 send in flight: exit ${code} after ${ms} ms`);
    assert.equal(code, 0, server.output());
    assert.match(server.output(), /every request in flight has finished/);
  });
});
