/**
 * Load: LOAD_REQUESTS concurrent requests (default 100; `deno task test:load`
 * runs 500) against the real Deno server (`deno serve functions/deno.ts` as a
 * subprocess) and the load SMTP server, which delays every reply at random,
 * refuses 10 % of recipients (4xx and 5xx) and drops 2 % of connections after
 * the final dot. Half the requests ask for SSE, a tenth carry an
 * `Idempotency-Key` and are sent again once answered.
 *
 * Checked: every request gets exactly one outcome; what the function reported
 * matches what the server recorded (every `sent` was accepted once, every
 * dropped message is `unknown_outcome`, nothing refused or unknown was
 * accepted); no message is delivered twice; `/health` answers throughout; the
 * server's peak RSS stays bounded. Printed: throughput, p50/p99 latency, RSS.
 * Loopback only; bounded in count and time.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { type LoadSmtpServer, startLoadSmtpServer } from "./load_smtp_server.ts";
import { type ServeProcess, startServe } from "../support/serve_process.ts";

const REQUESTS = Number(Deno.env.get("LOAD_REQUESTS") ?? "100");
const SEED = Number(Deno.env.get("LOAD_SEED") ?? "11");
/** Peak RSS of the function process allowed, in MiB (generous: Deno itself takes ~100). */
const RSS_BOUND_MIB = Number(Deno.env.get("LOAD_RSS_MIB") ?? "400");
/** No request may take longer than this: a hang guard, not a speed target. */
const REQUEST_GUARD_MS = 60_000;
const HEALTH_INTERVAL_MS = 100;
const API_KEY = "load-key-5c2a9e7d1f";

/** The outcome of one request as the caller sees it. */
interface Outcome {
  index: number;
  id: string;
  http: number;
  /** `sent`, or the error type (`rejected`, `transient`, `unknown_outcome`, …). */
  kind: string;
  latencyMs: number;
  replayed: boolean;
}

/** Peak resident set size of process `pid` in MiB (VmHWM), or NaN where /proc is missing. */
function peakRssMib(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
    return kib / 1024;
  } catch {
    return NaN;
  }
}

/** The p-th percentile (0..100) of `values`. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The message of request `index`: 1 or 2 recipients, and its id in a header. */
function messageOf(index: number) {
  const id = `m${SEED}-${index}`;
  const to = index % 3 === 0
    ? [`r${index}a@example.org`, `r${index}b@example.net`]
    : [`r${index}@example.org`];
  return {
    id,
    to,
    body: JSON.stringify({
      to,
      subject: `load ${index}`,
      text: `Message ${index}\n.\nwith a dot line.\n`,
      headers: { "X-Load-Id": id },
      token: index,
    }),
  };
}

/** Sends one request and reads its one outcome (JSON, or the `completed` event of SSE). */
async function send(
  url: string,
  index: number,
  options: { sse: boolean; idempotencyKey?: string },
): Promise<Outcome> {
  const { id, body } = messageOf(index);
  const headers: Record<string, string> = {
    Authorization: `Bearer ${API_KEY}`,
    "Content-Type": "application/json",
  };
  if (options.sse) headers.Accept = "text/event-stream";
  if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
  const started = performance.now();
  const response = await fetch(`${url}/send`, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(REQUEST_GUARD_MS),
  });
  const text = await response.text();
  const latencyMs = performance.now() - started;
  const replayed = response.headers.get("Idempotent-Replayed") === "true";
  const base = { index, id, http: response.status, latencyMs, replayed };
  if ((response.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
    const events: EventSourceMessage[] = [];
    createParser({ onEvent: (event) => events.push(event) }).feed(text);
    const completed = events.filter((event) => event.event === "completed");
    assert.equal(completed.length, 1, `request ${index}: one completed event in ${text}`);
    assert.equal(events.at(-1)?.event, "completed", `request ${index}: completed comes last`);
    const result = JSON.parse(completed[0].data);
    assert.equal(result.token, index, `request ${index}: its own token`);
    return { ...base, kind: result.status === "sent" ? "sent" : result.error?.type };
  }
  const result = JSON.parse(text);
  if (response.status === 200) {
    assert.equal(result.status, "sent");
    return { ...base, kind: "sent" };
  }
  assert.equal(typeof result.error?.type, "string", `request ${index}: ${text}`);
  return { ...base, kind: result.error.type };
}

let smtp: LoadSmtpServer;
let fn: ServeProcess;
let kvDir: string;

before(async () => {
  smtp = startLoadSmtpServer({ seed: SEED });
  kvDir = await Deno.makeTempDir({ prefix: "edgemail-load-" });
  fn = await startServe({
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}?tls=none`,
    API_KEYS: API_KEY,
    MAIL_FROM: "Load <load@example.com>",
    KV_PATH: `${kvDir}/kv.sqlite`,
    SMTP_TIMEOUT_MS: "20000",
  });
});

after(async () => {
  await fn?.stop();
  await smtp?.close();
  if (kvDir) await Deno.remove(kvDir, { recursive: true });
});

describe(`load: ${REQUESTS} concurrent requests with faults`, () => {
  it("every request ends in one outcome that matches what the SMTP server recorded", async () => {
    // /health is polled throughout the run.
    const health: { ok: boolean; ms: number }[] = [];
    let running = true;
    const polling = (async () => {
      while (running) {
        const started = performance.now();
        try {
          const response = await fetch(`${fn.url}/health`, { signal: AbortSignal.timeout(10_000) });
          await response.body?.cancel();
          health.push({ ok: response.status === 200, ms: performance.now() - started });
        } catch {
          health.push({ ok: false, ms: performance.now() - started });
        }
        await new Promise((resolve) => setTimeout(resolve, HEALTH_INTERVAL_MS));
      }
    })();

    const started = performance.now();
    const retried = new Map<number, Outcome>();
    const outcomes = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, index) => {
        const sse = index % 2 === 1;
        if (index % 10 !== 0) return await send(fn.url, index, { sse });
        const key = `load-${SEED}-${index}`;
        const first = await send(fn.url, index, { sse, idempotencyKey: key });
        retried.set(index, await send(fn.url, index, { sse, idempotencyKey: key }));
        return first;
      }),
    );
    const elapsedMs = performance.now() - started;
    running = false;
    await polling;
    const rss = peakRssMib(fn.pid);

    // What the function reported, against what the server did.
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome.kind] = (counts[outcome.kind] ?? 0) + 1;
    const { accepted, dropped } = smtp.record;
    const retriedIds = new Set([...retried.keys()].map((index) => messageOf(index).id));
    const replays = [...retried.values()].filter((outcome) => outcome.replayed).length;
    const unavailable = [...retried.values()].filter((o) => o.kind === "idempotency_unavailable");
    // The server side of Idempotency-Key may not exist yet: then a retry really resends.
    const idempotency = replays > 0
      ? "honoured"
      : unavailable.length > 0
      ? "unavailable"
      : "ignored";

    for (const outcome of outcomes) {
      const { id, kind, index } = outcome;
      const { to } = messageOf(index);
      const fates = to.map((address) => smtp.fateOfRecipient(address));
      const context = `request ${index} (${id}, ${kind}, HTTP ${outcome.http})`;
      assert.ok(
        ["sent", "rejected", "transient", "unknown_outcome"].includes(kind),
        `${context}: an outcome the faults do not explain`,
      );
      if (fates.some((fate) => fate !== "accept")) {
        // allowPartial is false: a refused recipient means nothing is sent.
        assert.ok(kind === "rejected" || kind === "transient", context);
        assert.equal(kind, fates.includes("permanent") ? "rejected" : "transient", context);
        assert.ok(!accepted.has(id) && !dropped.has(id), `${context}: data sent anyway`);
      } else if (kind === "sent") {
        assert.ok(accepted.has(id), `${context}: reported sent, never accepted`);
      } else {
        assert.equal(kind, "unknown_outcome", context);
        assert.ok(!accepted.has(id), `${context}: reported unknown, but it was accepted`);
      }
      if (dropped.has(id)) assert.equal(kind, "unknown_outcome", `${context}: dropped after dot`);
    }
    // Nothing the function did not report as sent reached the server's queue.
    const sentIds = new Set(outcomes.filter((o) => o.kind === "sent").map((o) => o.id));
    for (const id of accepted.keys()) assert.ok(sentIds.has(id), `${id} accepted, not reported`);
    // No message delivered twice (retries included once Idempotency-Key is honoured).
    const duplicates = [...accepted].filter(([, times]) => times > 1).map(([id]) => id);
    const unexplained = idempotency === "honoured"
      ? duplicates
      : duplicates.filter((id) => !retriedIds.has(id));
    assert.deepEqual(unexplained, [], "messages delivered twice");
    if (idempotency === "honoured") {
      for (const [index, again] of retried) {
        const first = outcomes[index];
        if (["sent", "rejected", "unknown_outcome"].includes(first.kind)) {
          assert.ok(again.replayed, `retry of ${index} (${first.kind}) not replayed`);
          assert.equal(again.kind, first.kind, `retry of ${index}: another outcome`);
        }
      }
    }
    assert.deepEqual(smtp.record.errors, [], "the SMTP server saw protocol errors");
    assert.ok(health.length > 0 && health.every((poll) => poll.ok), "/health failed during load");
    if (!Number.isNaN(rss)) assert.ok(rss < RSS_BOUND_MIB, `peak RSS ${rss.toFixed(0)} MiB`);

    const latencies = outcomes.map((outcome) => outcome.latencyMs);
    const summary = {
      requests: REQUESTS,
      seconds: Number((elapsedMs / 1000).toFixed(2)),
      throughputPerS: Number((REQUESTS / (elapsedMs / 1000)).toFixed(1)),
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      outcomes: counts,
      server: {
        accepted: accepted.size,
        dropped: dropped.size,
        refusedRecipients: smtp.record.refused,
        connections: smtp.record.connections,
      },
      idempotency: { retried: retried.size, replayed: replays, mode: idempotency },
      duplicatesFromUnhonouredRetries: duplicates.length - unexplained.length,
      health: {
        polls: health.length,
        maxMs: Math.round(Math.max(...health.map((poll) => poll.ms))),
      },
      peakRssMiB: Number(rss.toFixed(1)),
    };
    console.log(`load summary ${JSON.stringify(summary)}`);
    if (idempotency !== "honoured") {
      console.log(
        `load note: Idempotency-Key was ${idempotency} by the server; retried sends were ` +
          "resent, so duplicates of retried ids were not counted as failures.",
      );
    }
  });
});
