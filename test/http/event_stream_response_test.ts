/**
 * `eventStreamResponse` (http/sse.ts) on its own, through a real Hono app:
 * the headers Hono's `streamSSE` set, the text in write order, a write that
 * waits for the reader, the client's cancel reported once to the sink, and an
 * exception of the writer logged, never written.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { eventStreamResponse, type SseSink } from "../../src/http/sse.ts";

function appWith(run: (sink: SseSink) => Promise<void>): Hono {
  return new Hono().get("/", (c) => eventStreamResponse(c, run));
}

describe("eventStreamResponse", () => {
  it("streams the writes in order with the SSE headers, then ends", async () => {
    const response = await appWith(async (sink) => {
      await sink.write("event: a\ndata: 1\n\n");
      await sink.write(": keepalive\n\n");
      await sink.write("event: b\ndata: 2\n\n");
    }).request("/");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Type"), "text/event-stream");
    assert.equal(response.headers.get("Cache-Control"), "no-cache");
    assert.equal(
      await response.text(),
      "event: a\ndata: 1\n\n: keepalive\n\nevent: b\ndata: 2\n\n",
    );
  });

  it("a write resolves only once the reader took it", async () => {
    const written: number[] = [];
    const response = await appWith(async (sink) => {
      for (const n of [1, 2, 3]) {
        await sink.write(`data: ${n}\n\n`);
        written.push(n);
      }
    }).request("/");
    const reader = response.body!.getReader();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(written.length <= 1, `written before any read: ${written}`);
    let text = "";
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      text += new TextDecoder().decode(read.value);
    }
    assert.equal(text, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert.deepEqual(written, [1, 2, 3]);
  });

  it("the client's cancel aborts the sink once; later writes do not throw", async () => {
    let calls = 0;
    let sinkOf!: SseSink;
    const finished = Promise.withResolvers<void>();
    const gone = Promise.withResolvers<void>();
    const response = await appWith(async (sink) => {
      sinkOf = sink;
      sink.onAbort(() => {
        calls++;
        gone.resolve();
      });
      await sink.write("data: first\n\n");
      await gone.promise;
      await sink.write("data: after\n\n");
      finished.resolve();
    }).request("/");
    const reader = response.body!.getReader();
    await reader.read();
    assert.equal(sinkOf.aborted, false);
    await reader.cancel();
    await finished.promise;
    assert.equal(sinkOf.aborted, true);
    assert.equal(calls, 1);
  });

  it("an exception of the writer is logged and ends the stream without its message", async () => {
    const logged: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void logged.push(...args);
    try {
      const response = await appWith(async (sink) => {
        await sink.write("data: 1\n\n");
        throw new Error("secret detail");
      }).request("/");
      assert.equal(await response.text(), "data: 1\n\n");
    } finally {
      console.error = original;
    }
    assert.equal((logged[0] as Error).message, "secret detail");
  });
});
