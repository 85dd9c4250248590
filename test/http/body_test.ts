/**
 * http/body.ts: the request body read once, the size limit enforced while
 * streaming (with and without Content-Length), strict UTF-8, JSON errors that
 * never quote the body, and long strings shared with the text yet parsed
 * exactly as JSON.parse would.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { observeBody, parseJsonSharingStrings, readJsonBody } from "../../src/http/body.ts";

const encoder = new TextEncoder();

/** A body stream of `chunks`, counting how many the reader pulled. */
function countingStream(chunks: Uint8Array[]) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === chunks.length) return controller.close();
      controller.enqueue(chunks[state.pulled++]);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

/** A POST request with `body` (a stream has no Content-Length unless given). */
function post(body: BodyInit, headers: Record<string, string> = {}): Request {
  return new Request("http://localhost/send", { method: "POST", body, headers });
}

/** `count` chunks of `size` bytes of JSON string content: `"xxxx…"` split up. */
function jsonChunks(count: number, size: number): Uint8Array[] {
  const chunks = Array.from({ length: count }, () => encoder.encode("x".repeat(size)));
  chunks[0][0] = 0x22; // "
  chunks[count - 1][size - 1] = 0x22;
  return chunks;
}

/** A byte stream (as Deno.serve and Workers give request bodies) of `chunks`. */
function byteStream(chunks: Uint8Array[]) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (state.pulled === chunks.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const chunk = chunks[state.pulled++];
      const request = controller.byobRequest;
      if (request?.view && request.view.byteLength >= chunk.length) {
        new Uint8Array(request.view.buffer, request.view.byteOffset).set(chunk);
        request.respond(chunk.length);
      } else {
        controller.enqueue(chunk.slice());
      }
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

describe("readJsonBody", () => {
  it("parses a JSON body, with and without Content-Length", async () => {
    const text = JSON.stringify({ to: "bob@example.com", subject: "Grüße" });
    assert.deepEqual(await readJsonBody(post(text), { maxBytes: 1000 }), {
      ok: true,
      value: JSON.parse(text),
    });
    const { stream } = countingStream([
      encoder.encode(text.slice(0, 5)),
      encoder.encode(text.slice(5)),
    ]);
    assert.deepEqual(await readJsonBody(post(stream), { maxBytes: 1000 }), {
      ok: true,
      value: JSON.parse(text),
    });
  });

  it("accepts a body of exactly maxBytes and refuses one byte more", async () => {
    const body = JSON.stringify("x".repeat(98)); // 100 bytes
    assert.equal((await readJsonBody(post(body), { maxBytes: 100 })).ok, true);
    const refused = await readJsonBody(post(body), { maxBytes: 99 });
    assert.deepEqual(refused, {
      ok: false,
      status: 413,
      type: "too_large",
      message: "The request body is larger than 99 bytes (MAX_MESSAGE_BYTES).",
    });
  });

  it("refuses a declared Content-Length over the limit without reading the body", async () => {
    const { stream, state } = countingStream(jsonChunks(4, 1000));
    const result = await readJsonBody(post(stream, { "Content-Length": "4000" }), {
      maxBytes: 3999,
    });
    assert.equal(result.ok === false && result.status, 413);
    assert.equal(state.pulled, 0);
    assert.ok(state.cancelled);
  });

  it("stops reading a body without Content-Length as soon as it passes the limit", async () => {
    const { stream, state } = countingStream(jsonChunks(100, 1000));
    const result = await readJsonBody(post(stream), { maxBytes: 2500 });
    assert.equal(result.ok === false && result.type, "too_large");
    assert.equal(state.pulled, 3);
    assert.ok(state.cancelled);
  });

  it("counts the bytes that arrive, whatever Content-Length claims", async () => {
    const { stream, state } = countingStream(jsonChunks(10, 1000));
    const result = await readJsonBody(post(stream, { "Content-Length": "10" }), {
      maxBytes: 5000,
    });
    assert.equal(result.ok === false && result.status, 413);
    assert.ok(state.pulled <= 6);
  });

  it("never detaches memory it does not own: a caller's array, or chunks that share a buffer", async () => {
    const bytes = encoder.encode(JSON.stringify({ subject: "intact" }));
    assert.deepEqual(await readJsonBody(post(bytes), { maxBytes: 1000 }), {
      ok: true,
      value: { subject: "intact" },
    });
    assert.equal(bytes.byteLength, 20, "the caller's array was detached");
    const shared = encoder.encode('{"a":1}    ');
    const { stream } = countingStream([shared.subarray(0, 4), shared.subarray(4)]);
    assert.equal((await readJsonBody(post(stream), { maxBytes: 1000 })).ok, true);
    assert.equal(shared.byteLength, 11);
  });

  it("reads a byte stream chunk by chunk, growing its buffer, with the same limit", async () => {
    const text = JSON.stringify({ subject: "é".repeat(100_000) });
    const bytes = encoder.encode(text);
    const pieces = Array.from(
      { length: Math.ceil(bytes.length / 7000) },
      (_, i) => bytes.subarray(i * 7000, (i + 1) * 7000),
    );
    const { stream, state } = byteStream(pieces);
    assert.deepEqual(await readJsonBody(post(stream), { maxBytes: 1_000_000 }), {
      ok: true,
      value: JSON.parse(text),
    });
    assert.equal(state.pulled, pieces.length);
    assert.equal(bytes.byteLength, encoder.encode(text).byteLength, "the producer's bytes intact");
    const over = byteStream(pieces);
    const refused = await readJsonBody(post(over.stream), { maxBytes: 50_000 });
    assert.equal(refused.ok === false && refused.status, 413);
    assert.ok(over.state.cancelled);
    assert.ok(over.state.pulled <= 9);
  });

  it("refuses invalid JSON and an empty body with 400, never quoting the body", async () => {
    for (const body of ['{"to": "secret-value@example.com",', "", "undefined", "{'a': 1}"]) {
      const result = await readJsonBody(post(body), { maxBytes: 1000 });
      assert.deepEqual(result, {
        ok: false,
        status: 400,
        type: "validation",
        message: "The request body is not valid JSON.",
      });
    }
  });

  it("refuses invalid UTF-8, also when it ends the body mid-sequence", async () => {
    const cases = [
      new Uint8Array([0x22, 0xff, 0x22]), // a byte that never occurs in UTF-8
      new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]), // an encoded surrogate
      new Uint8Array([0x22, 0x61, 0xc3]), // cut after the first byte of "é"
    ];
    for (const bytes of cases) {
      const result = await readJsonBody(post(bytes), { maxBytes: 1000 });
      assert.deepEqual(result, {
        ok: false,
        status: 400,
        type: "validation",
        message: "The request body is not valid UTF-8.",
      });
    }
  });

  it("decodes a character split across chunks", async () => {
    const bytes = encoder.encode(JSON.stringify({ subject: "é€😀" }));
    const chunks = Array.from(bytes, (byte) => new Uint8Array([byte]));
    const { stream } = countingStream(chunks);
    assert.deepEqual(await readJsonBody(post(stream), { maxBytes: 1000 }), {
      ok: true,
      value: { subject: "é€😀" },
    });
  });

  it("reads a 14 MB body with a base64 string intact", async () => {
    const content = btoa("\x00\xff".repeat(5_000_000));
    const text = JSON.stringify({ attachments: [{ filename: "a.bin", content }] });
    const result = await readJsonBody(post(text), { maxBytes: 26_214_400 });
    assert.ok(result.ok);
    const value = result.value as { attachments: { content: string }[] };
    assert.equal(value.attachments[0].content, content);
  });
});

describe("observeBody", () => {
  /** Reads `body` through an observer; what it saw, and the bytes that came out. */
  async function observed(body: ReadableStream<Uint8Array>) {
    const seen: string[] = [];
    let ended = 0;
    const out = observeBody(body, {
      chunk: async (bytes) => {
        await Promise.resolve();
        seen.push(new TextDecoder().decode(bytes));
      },
      end: () => void ended++,
    });
    let byteStream = true;
    try {
      out.getReader({ mode: "byob" }).releaseLock();
    } catch {
      byteStream = false;
    }
    const text = await new Response(out).text();
    return { seen, ended, text, byteStream };
  }

  it("shows a byte stream's chunks in order before passing them on, and stays a byte stream", async () => {
    const pieces = ['{"a":', '"bc"', "}"].map((text) => encoder.encode(text));
    const result = await observed(byteStream(pieces).stream);
    assert.deepEqual(result, {
      seen: ['{"a":', '"bc"', "}"],
      ended: 1,
      text: '{"a":"bc"}',
      byteStream: true,
    });
    const json = await readJsonBody(
      post(observeBody(byteStream(pieces).stream, { chunk() {}, end() {} }), {}),
      { maxBytes: 100 },
    );
    assert.deepEqual(json, { ok: true, value: { a: "bc" } });
  });

  it("shows another stream's chunks the same way, never detaching memory it does not own", async () => {
    const shared = encoder.encode('{"a":1}');
    const { stream } = countingStream([shared.subarray(0, 3), shared.subarray(3)]);
    const result = await observed(stream);
    assert.deepEqual(result, {
      seen: ['{"a', '":1}'],
      ended: 1,
      text: '{"a":1}',
      byteStream: false,
    });
    assert.equal(shared.byteLength, 7);
  });
});

describe("parseJsonSharingStrings", () => {
  const long = (char: string) => char.repeat(70_000);

  it("gives what JSON.parse gives for long strings, keys, escapes and nesting", () => {
    const texts = [
      JSON.stringify({ a: long("x"), b: [long("y"), 1, null], c: { d: long("z") } }),
      JSON.stringify({ [long("k")]: long("v") }), // a long key stays a key
      JSON.stringify({ a: long("x") + '"quoted"\\' + long("y"), b: long("\n") }),
      JSON.stringify([long("a"), "\u0000", long("é")]),
      `{"a"  :  "${long("x")}"  , "b":"${long("y")}"}`,
      JSON.stringify(long("x")),
    ];
    for (const text of texts) assert.deepEqual(parseJsonSharingStrings(text), JSON.parse(text));
  });

  it("refuses exactly what JSON.parse refuses", () => {
    const bad = [
      `{"a": "${long("x")}`, // unterminated
      `{"a": "${long("x")}\u0001"}`, // a raw control character inside the string
      `{"a": x"${long("x")}"}`,
      `{"a": "${long("x")}" "b"}`,
      `["${long("x")}",]`,
      `{"${long("x")}"}`,
    ];
    for (const text of bad) {
      assert.throws(() => JSON.parse(text), SyntaxError);
      assert.throws(() => parseJsonSharingStrings(text), SyntaxError);
    }
  });

  it("matches JSON.parse on random JSON and on random corruptions of it", () => {
    const piece = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(long("x"), long("é") + '"', "\\" + long("y"), long("q") + "\u0000"),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small" },
        piece,
        fc.integer(),
        fc.constant(null),
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(piece, tie("node"), { maxKeys: 3 }),
      ),
    })).node;
    fc.assert(
      fc.property(
        value,
        fc.nat(),
        fc.constantFrom("", '"', "\\", ",", "}", "\u0001"),
        (v, at, insert) => {
          const text = JSON.stringify(v);
          assert.deepEqual(parseJsonSharingStrings(text), JSON.parse(text));
          const cut = at % (text.length + 1);
          const corrupted = text.slice(0, cut) + insert + text.slice(cut);
          let expected: unknown;
          try {
            expected = JSON.parse(corrupted);
          } catch {
            assert.throws(() => parseJsonSharingStrings(corrupted), SyntaxError);
            return;
          }
          assert.deepEqual(parseJsonSharingStrings(corrupted), expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});
