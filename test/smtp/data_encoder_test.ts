import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  canonicalizeLineEnds,
  DataEncoder,
  DEFAULT_CHUNK_SIZE,
  encodeData,
  encodeDataAsync,
} from "../../src/smtp/data_encoder.ts";

/** Latin-1 string → bytes, one byte per char, so tests can spell bytes as text. */
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Bytes → Latin-1 string. */
function text(data: Uint8Array): string {
  let out = "";
  for (const byte of data) out += String.fromCharCode(byte);
  return out;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function wire(parts: string[], chunkSize?: number): string {
  return text(concat([...encodeData(parts.map(bytes), { chunkSize })]));
}

/** The reference canonicaliser: every CRLF, lone CR and lone LF becomes CRLF. */
function canonical(input: string): string {
  return input.replace(/\r\n|\r|\n/g, "\r\n");
}

/**
 * Reads DATA bytes as a receiving server does (RFC 5321 4.5.2), failing on
 * anything a strict server would not accept; returns the message content.
 */
function receive(data: string): string {
  assert.ok(data.endsWith("\r\n"), "the data ends with CRLF");
  const lines = data.slice(0, -2).split("\r\n");
  for (const line of lines) {
    assert.ok(!line.includes("\r") && !line.includes("\n"), "no lone CR or LF on the wire");
  }
  const end = lines.indexOf(".");
  assert.equal(end, lines.length - 1, "the only '.' line is the last one");
  const content = lines.slice(0, end).map((line) => (line.startsWith(".") ? line.slice(1) : line));
  return content.length === 0 ? "" : content.join("\r\n") + "\r\n";
}

/** The content a receiver should see for `input`: canonical, ending with a line end. */
function expectedContent(input: string): string {
  const body = canonical(input);
  return body === "" || body.endsWith("\r\n") ? body : body + "\r\n";
}

describe("encodeData", () => {
  const cases: [string, string[], string][] = [
    ["lone CR", ["a\rb"], "a\r\nb\r\n.\r\n"],
    ["lone LF", ["a\nb\n"], "a\r\nb\r\n.\r\n"],
    ["CRLF kept", ["a\r\nb\r\n"], "a\r\nb\r\n.\r\n"],
    ["CRLF split across chunks", ["a\r", "\nb"], "a\r\nb\r\n.\r\n"],
    ["CR then CRLF", ["a\r\r\nb"], "a\r\n\r\nb\r\n.\r\n"],
    ["LF then CR", ["a\n\rb"], "a\r\n\r\nb\r\n.\r\n"],
    ["'.' at a line start", ["a\n.b\n"], "a\r\n..b\r\n.\r\n"],
    ["'..' at a line start", ["a\r\n..b\r\n"], "a\r\n...b\r\n.\r\n"],
    ["'.' at the start of the first chunk", [".x"], "..x\r\n.\r\n"],
    ["'.' at the start of a later chunk after a line end", ["a\n", ".b"], "a\r\n..b\r\n.\r\n"],
    ["'.' at the start of a later chunk mid-line", ["a", ".b"], "a.b\r\n.\r\n"],
    ["'.' after a lone CR", ["a\r.b"], "a\r\n..b\r\n.\r\n"],
    ["a line of only '.'", ["a\n.\nb"], "a\r\n..\r\nb\r\n.\r\n"],
    ["a last line of only '.'", ["a\r\n."], "a\r\n..\r\n.\r\n"],
    ["'.' inside a line", ["a.b\n"], "a.b\r\n.\r\n"],
    ["no trailing line end", ["abc"], "abc\r\n.\r\n"],
    ["trailing CRLF", ["abc\r\n"], "abc\r\n.\r\n"],
    ["trailing LF", ["abc\n"], "abc\r\n.\r\n"],
    ["empty input", [], ".\r\n"],
    ["empty chunks", ["", ""], ".\r\n"],
    ["only a line end", ["\n"], "\r\n.\r\n"],
    ["CR at a chunk end, LF at the next chunk start", ["a\r", "\n", ".b"], "a\r\n..b\r\n.\r\n"],
    ["CR at a chunk end, '.' at the next chunk start", ["a\r", ".b"], "a\r\n..b\r\n.\r\n"],
    ["CR at a chunk end, empty chunk, then LF", ["a\r", "", "\nb"], "a\r\nb\r\n.\r\n"],
    ["CR chunks", ["a", "\r", "\r", "\n"], "a\r\n\r\n.\r\n"],
    ["CR at the very end", ["a\r"], "a\r\n.\r\n"],
    ["CRLF.CRLF inside the content", ["a\r\n.\r\nb"], "a\r\n..\r\nb\r\n.\r\n"],
    ["8-bit bytes pass through", ["\xe9\xff\x00\n"], "\xe9\xff\x00\r\n.\r\n"],
  ];
  for (const [name, parts, expected] of cases) {
    it(name, () => {
      assert.equal(wire(parts), expected);
      // The same bytes whatever the output chunk size.
      assert.equal(wire(parts, 1), expected);
      assert.equal(wire(parts, 2), expected);
    });
  }

  it("finds a CR or LF next to any other byte value, at any alignment", () => {
    for (let other = 0; other < 256; other++) {
      const filler = String.fromCharCode(other);
      for (const end of ["\r", "\n"]) {
        for (let at = 0; at < 9; at++) {
          const input = filler.repeat(at) + end + filler.repeat(8 - at);
          const backing = new Uint8Array(input.length + 3);
          for (let offset = 0; offset < 4; offset++) {
            backing.set(bytes(input), offset);
            const chunk = backing.subarray(offset, offset + input.length);
            const data = text(concat([...encodeData([chunk])]));
            assert.equal(receive(data), expectedContent(input), `byte ${other}, at ${at}`);
          }
        }
      }
      const plain = filler.repeat(9);
      assert.equal(receive(wire([plain])), expectedContent(plain), `byte ${other}`);
    }
  });

  it("keeps output chunks within chunkSize and the end marker with the last content", () => {
    const input = "line one\nline two\n.dot\r\nlast";
    for (const chunkSize of [1, 2, 3, 4, 7, 16]) {
      const chunks = [...encodeData([bytes(input)], { chunkSize })];
      const last = chunks.at(-1)!;
      for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length <= chunkSize);
      assert.ok(last.length <= chunkSize + 5);
      // "\r\n.\r\n" (5 bytes) plus at least the last content byte.
      assert.ok(text(last).endsWith("t\r\n.\r\n"), `chunkSize ${chunkSize}: ${text(last)}`);
    }
  });

  it("puts the end marker in the same chunk when the content exactly fills a chunk", () => {
    const chunks = [...encodeData([bytes("abcd\r\n")], { chunkSize: 6 })];
    assert.deepEqual(chunks.map(text), ["abcd\r\n.\r\n"]);
  });

  it("splits a large single chunk into 64 KiB chunks without reusing buffers", () => {
    const line = "x".repeat(70) + "\n";
    const input = bytes(line.repeat(20_000)); // 1.4 MB
    const chunks = [...encodeData([input])];
    assert.ok(chunks.length > 20);
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.length, DEFAULT_CHUNK_SIZE);
    const buffers = new Set(chunks.map((c) => c.buffer));
    assert.equal(buffers.size, chunks.length, "every chunk has its own buffer");
    const out = text(concat(chunks));
    assert.equal(out, (("x".repeat(70) + "\r\n").repeat(20_000)) + ".\r\n");
  });

  it("coalesces many small input chunks into few output chunks", () => {
    const parts = Array.from({ length: 1000 }, (_, i) => bytes(`line ${i}\r\n`));
    const chunks = [...encodeData(parts)];
    assert.equal(chunks.length, 1);
    assert.ok(text(chunks[0]).startsWith("line 0\r\nline 1\r\n"));
  });

  it("does not change when the caller later modifies its input", () => {
    const input = bytes("hello\n");
    const chunks = [...encodeData([input])];
    input.fill(0x41);
    assert.equal(text(concat(chunks)), "hello\r\n.\r\n");
  });

  it("rejects a bad chunkSize and stuffing turned off with a terminator", () => {
    assert.throws(() => [...encodeData([], { chunkSize: 0 })], {
      name: "RangeError",
      message: /chunkSize/,
    });
    assert.throws(() => [...encodeData([], { chunkSize: 1.5 })], { name: "RangeError" });
    assert.throws(() => [...encodeData([], { dotStuff: false })], {
      name: "RangeError",
      message: /dotStuff/,
    });
  });

  it("rejects a chunk that is not a Uint8Array", () => {
    assert.throws(() => [...encodeData(["text" as unknown as Uint8Array])], {
      name: "TypeError",
      message: /Uint8Array/,
    });
  });
});

describe("encodeDataAsync", () => {
  it("encodes a ReadableStream the same as the sync variant", async () => {
    const parts = ["a\r", "\n.b\n", ".", "\rc"];
    const stream = ReadableStream.from(parts.map(bytes));
    const chunks: Uint8Array[] = [];
    for await (const chunk of encodeDataAsync(stream, { chunkSize: 3 })) chunks.push(chunk);
    assert.equal(text(concat(chunks)), wire(parts));
    assert.equal(text(concat(chunks)), "a\r\n..b\r\n..\r\nc\r\n.\r\n");
  });

  it("accepts a sync iterable", async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of encodeDataAsync([bytes("x")])) chunks.push(chunk);
    assert.equal(text(concat(chunks)), "x\r\n.\r\n");
  });
});

describe("canonicalizeLineEnds", () => {
  it("only canonicalises line ends: no stuffing, no end marker", () => {
    const out = [...canonicalizeLineEnds(["a\r", "\n.b\n", ".\rc"].map(bytes), { chunkSize: 2 })];
    assert.equal(text(concat(out)), "a\r\n.b\r\n.\r\nc");
  });

  it("yields nothing for empty input", () => {
    assert.deepEqual([...canonicalizeLineEnds([])], []);
  });
});

describe("DataEncoder", () => {
  it("refuses writes after end() and a second end()", () => {
    const encoder = new DataEncoder();
    assert.equal(text(concat([...encoder.write(bytes("a")), ...encoder.end()])), "a\r\n.\r\n");
    assert.throws(() => [...encoder.write(bytes("b"))], { name: "TypeError" });
    assert.throws(() => [...encoder.end()], { name: "TypeError" });
  });

  it("encode() starts over: each message as a new encoder would, wherever the last one stopped", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom("x", ".", "\r", "\n"), maxLength: 9000 }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.integer({ min: 0, max: 3 }),
        (messages, stopAfter) => {
          const encoder = new DataEncoder({ reuseBuffers: true });
          for (const message of messages) {
            const parts = [bytes(message.slice(0, 5000)), bytes(message.slice(5000))];
            // A message abandoned part-way (a dropped send) leaves no state behind.
            const abandoned = encoder.encode([bytes(".\r")])[Symbol.iterator]();
            for (let i = 0; i < stopAfter; i++) abandoned.next();
            const copies = [...encoder.encode(parts)].map((chunk) => chunk.slice());
            assert.equal(text(concat(copies)), text(concat([...encodeData(parts)])));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps its small first buffer from one small message to the next", () => {
    const encoder = new DataEncoder({ reuseBuffers: true });
    const [first] = [...encoder.encode([bytes("one\r\n")])];
    const firstBuffer = first.buffer;
    assert.equal(text(first), "one\r\n.\r\n");
    const [second] = [...encoder.encode([bytes("two")])];
    assert.equal(second.buffer, firstBuffer);
    assert.equal(text(second), "two\r\n.\r\n");
    // Without reuseBuffers every chunk stays the caller's: no buffer is shared.
    const fresh = new DataEncoder();
    const [a] = [...fresh.encode([bytes("a")])];
    const [b] = [...fresh.encode([bytes("b")])];
    assert.notEqual(a.buffer, b.buffer);
    assert.equal(text(a), "a\r\n.\r\n");
  });
});

describe("encodeData properties", () => {
  // Bodies rich in the bytes that matter: CR, LF, dots, plus letters, 8-bit bytes and long lines.
  const piece = fc.oneof(
    fc.constantFrom("\r", "\n", "\r\n", ".", "..", "\r\n.\r\n", "\n.\n", "a", "b", " ", "\xe9"),
    fc.string({ unit: fc.constantFrom("x", "y", ".", "\r", "\n"), maxLength: 12 }),
    fc.uint8Array({ maxLength: 24 }).map(text), // any byte, 8-bit ones included
    fc.constantFrom("z".repeat(1000), "w".repeat(5000)),
  );
  const body = fc.array(piece, { maxLength: 40 }).map((pieces) => pieces.join(""));
  /** A body and a random split of it into chunks (empty chunks included). */
  const split = body.chain((input) =>
    fc.tuple(
      fc.constant(input),
      fc.array(fc.nat({ max: input.length }), { maxLength: 12 }).map((
        cuts,
      ) => [0, ...cuts.sort((a, b) => a - b), input.length]),
      fc.integer({ min: 1, max: 4096 }),
    )
  );

  it("produces what a receiver reads back as the canonical input, whatever the split", () => {
    fc.assert(
      fc.property(split, ([input, cuts, chunkSize]) => {
        // Views into one buffer, so the chunks start at every byte alignment.
        const whole = bytes(input);
        const parts = cuts.slice(1).map((end, i) => whole.subarray(cuts[i], end));
        const chunks = [...encodeData(parts, { chunkSize })];
        const data = text(concat(chunks));

        // Only CRLF line ends.
        assert.equal(data.replace(/\r\n/g, "").match(/[\r\n]/), null);
        // Exactly one end marker, at the very end.
        if (data === ".\r\n") {
          assert.equal(expectedContent(input), "");
        } else {
          assert.ok(data.endsWith("\r\n.\r\n"));
          assert.equal(data.indexOf("\r\n.\r\n"), data.length - 5);
          assert.ok(!data.startsWith(".\r\n"));
        }
        // A wire line starts with "." only when its input line did (it was stuffed).
        const content = expectedContent(input);
        const dotLines = (lines: string[]) => lines.filter((l) => l.startsWith(".")).length;
        assert.equal(
          dotLines(data.split("\r\n").slice(0, -2)),
          dotLines(content.split("\r\n").slice(0, -1)),
        );
        // Un-stuffed by a receiver, it is the input with canonical line ends.
        assert.equal(receive(data), content);
        // Identical bytes whatever the input split and output chunk size.
        assert.equal(data, wire([input]));
        // Chunk sizes and the end marker riding with the last content bytes.
        for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length <= chunkSize);
        const last = chunks.at(-1)!;
        assert.ok(last.length <= chunkSize + 5);
        const markerLength = content === "" || canonical(input).endsWith("\r\n") ? 3 : 5;
        if (content !== "") assert.ok(last.length > markerLength);
      }),
      { numRuns: 300 },
    );
  });

  it("canonicalizeLineEnds matches the reference canonicaliser, whatever the split", () => {
    fc.assert(
      fc.property(split, ([input, cuts, chunkSize]) => {
        const parts = cuts.slice(1).map((end, i) => bytes(input.slice(cuts[i], end)));
        const out = text(concat([...canonicalizeLineEnds(parts, { chunkSize })]));
        assert.equal(out, canonical(input));
      }),
      { numRuns: 300 },
    );
  });
});

describe("encodeData with reuseBuffers", () => {
  /** Pulls the chunks the way the session does: one ahead, each copied before the next-but-one. */
  function pullLookingAhead(
    chunks: Iterable<Uint8Array>,
  ): { copies: Uint8Array[]; buffers: Set<ArrayBufferLike> } {
    const copies: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const iterator = chunks[Symbol.iterator]();
    let current = iterator.next();
    while (!current.done) {
      const next = iterator.next();
      buffers.add(current.value.buffer);
      copies.push(current.value.slice()); // "written" before the one after next is asked for
      current = next;
    }
    return { copies, buffers };
  }

  it("gives the same bytes as fresh buffers while yielding from at most three buffers", () => {
    // Lone LFs and dot lines double the size: the worst case for a window.
    const input = bytes("x".repeat(70) + "\n.\n\n".repeat(40_000));
    const fresh = text(concat([...encodeData([input])]));
    const { copies, buffers } = pullLookingAhead(encodeData([input], { reuseBuffers: true }));
    assert.ok(copies.length > 4, "the test needs several chunks");
    assert.equal(text(concat(copies)), fresh);
    // Three full-size buffers take turns (the first one grew from 4 KiB before its first chunk).
    assert.ok(buffers.size <= 3, `${buffers.size} buffers`);
    for (const chunk of copies.slice(0, -1)) assert.ok(chunk.length <= DEFAULT_CHUNK_SIZE);
  });

  it("matches fresh buffers for any input and chunk size (line-end canonicalisation too)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("x", ".", "\r", "\n"), maxLength: 3000 }),
        fc.integer({ min: 1, max: 300 }),
        (input, chunkSize) => {
          const parts = [bytes(input.slice(0, 700)), bytes(input.slice(700))];
          const reused = pullLookingAhead(encodeData(parts, { chunkSize, reuseBuffers: true }));
          assert.equal(
            text(concat(reused.copies)),
            text(concat([...encodeData(parts, { chunkSize })])),
          );
          const options = { chunkSize, reuseBuffers: true };
          const lines = pullLookingAhead(canonicalizeLineEnds(parts, options)).copies;
          assert.equal(text(concat(lines)), canonical(input));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("encodeData buffer sizes", () => {
  it("encodes a small message in one small buffer, allocating no 64 KiB buffer", () => {
    for (const reuseBuffers of [false, true]) {
      const chunks = [...encodeData([bytes("Subject: hi\r\n\r\nHello\r\n")], { reuseBuffers })];
      assert.equal(chunks.length, 1);
      assert.ok(chunks[0].buffer.byteLength < 8192, `${chunks[0].buffer.byteLength} bytes`);
    }
  });
});
