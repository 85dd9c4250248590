import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReplyReader, summarizeReply } from "../../src/smtp/reply.ts";
import { SmtpError } from "../../src/smtp/errors.ts";
import { MemorySocket } from "../support/memory_socket.ts";

const options = { phase: "ehlo" as const, timeoutMs: 1000 };

function reader(...chunks: string[]): ReplyReader {
  return new ReplyReader(new MemorySocket(chunks));
}

async function protocolError(r: ReplyReader): Promise<SmtpError> {
  try {
    await r.read(options);
  } catch (error) {
    assert.ok(error instanceof SmtpError);
    return error;
  }
  assert.fail("expected an error");
}

describe("ReplyReader", () => {
  it("parses a multi-line reply with an enhanced code", async () => {
    const reply = await reader(
      "250-mx.test greets you\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
    ).read(options);
    assert.equal(reply.code, 250);
    assert.deepEqual(reply.lines, ["mx.test greets you", "PIPELINING", "SIZE 1000"]);
    assert.equal(reply.raw, "250-mx.test greets you\n250-PIPELINING\n250 SIZE 1000");

    const rejected = await reader("550 5.1.1 <x@y.z>: Recipient address rejected\r\n").read(
      options,
    );
    assert.equal(rejected.enhancedCode, "5.1.1");
    assert.equal(rejected.message, "<x@y.z>: Recipient address rejected");
    assert.deepEqual(summarizeReply(rejected), {
      code: 550,
      enhancedCode: "5.1.1",
      message: "<x@y.z>: Recipient address rejected",
    });
  });

  it("reads the same reply whatever byte it is split at", async () => {
    const wire = "250-mx.test\r\n250-8BITMIME\r\n250 2.0.0 done\r\n";
    for (let a = 0; a < wire.length; a++) {
      for (let b = a; b < wire.length; b += 5) {
        const pieces = [wire.slice(0, a), wire.slice(a, b), wire.slice(b)].filter((p) => p);
        const reply = await reader(...pieces).read(options);
        assert.deepEqual(reply.lines, ["mx.test", "8BITMIME", "2.0.0 done"], `split ${a}/${b}`);
      }
    }
  });

  it("keeps bytes of the next reply for the next read (pipelining)", async () => {
    const r = reader("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go", " ahead\r\n");
    assert.equal((await r.read(options)).code, 250);
    assert.ok(r.bufferedBytes > 0);
    assert.equal((await r.read(options)).enhancedCode, "2.1.5");
    assert.equal((await r.read(options)).code, 354);
    assert.equal(r.bufferedBytes, 0);
  });

  it("accepts an empty last line, with or without the space", async () => {
    const spaced = await reader("250-mx.test\r\n250-PIPELINING\r\n250 \r\n").read(options);
    assert.deepEqual(spaced.lines, ["mx.test", "PIPELINING", ""]);
    const bare = await reader("250\r\n").read(options);
    assert.equal(bare.code, 250);
  });

  it("gives a one-line reply the fields a multi-line one has", async () => {
    const r = reader("250 2.0.0 Ok: queued\r\n354 End data\r\n221 \r\n");
    assert.deepEqual(await r.read(options), {
      code: 250,
      enhancedCode: "2.0.0",
      lines: ["2.0.0 Ok: queued"],
      message: "Ok: queued",
      raw: "250 2.0.0 Ok: queued",
    });
    assert.deepEqual(await r.read(options), {
      code: 354,
      enhancedCode: undefined,
      lines: ["End data"],
      message: "End data",
      raw: "354 End data",
    });
    assert.deepEqual(await r.read(options), {
      code: 221,
      enhancedCode: undefined,
      lines: [""],
      message: "",
      raw: "221",
    });
  });

  it("takeBuffered: a whole one-line reply already read, else nothing consumed", async () => {
    const r = reader("250 2.1.0 Ok\r\n250-a\r\n250 b\r\n354 go", " ahead\r\n");
    assert.equal(r.takeBuffered(options), undefined, "nothing read yet");
    assert.equal((await r.read(options)).enhancedCode, "2.1.0");
    const buffered = r.bufferedBytes;
    assert.equal(r.takeBuffered(options), undefined, "a multi-line reply is left to read()");
    assert.equal(r.bufferedBytes, buffered);
    assert.deepEqual((await r.read(options)).lines, ["a", "b"]);
    assert.equal(r.takeBuffered(options), undefined, "an unfinished line is left to read()");
    assert.equal((await r.read(options)).message, "go ahead");
    const two = reader("250 one\r\n251 two\r\n");
    assert.equal((await two.read(options)).message, "one");
    assert.deepEqual(two.takeBuffered(options), {
      code: 251,
      enhancedCode: undefined,
      lines: ["two"],
      message: "two",
      raw: "251 two",
    });
    assert.equal(two.bufferedBytes, 0);
  });

  it("takeBuffered throws what read() would for a malformed buffered line", async () => {
    for (const [wire, pattern] of [["abc\r\n", /3-digit code/], ["250 a\n", /bare LF/]] as const) {
      const r = reader("250 ok\r\n" + wire);
      await r.read(options);
      assert.throws(() => r.takeBuffered(options), (error: unknown) => {
        assert.ok(error instanceof SmtpError);
        assert.equal(error.type, "protocol");
        assert.match(error.message, pattern);
        return true;
      });
    }
  });

  it("ignores an enhanced code whose class disagrees with the reply code", async () => {
    const reply = await reader("250 5.0.0 odd\r\n").read(options);
    assert.equal(reply.enhancedCode, undefined);
    assert.equal(reply.message, "5.0.0 odd");
  });

  it("rejects malformed replies as protocol errors", async () => {
    const cases: [string[], RegExp][] = [
      [["250-a\r\n251 b\r\n"], /codes differ/],
      [["25 short\r\n"], /3-digit code/],
      [["abc hello\r\n"], /3-digit code/],
      [["650 bad class\r\n"], /3-digit code/],
      [["260 bad second digit\r\n"], /3-digit code/],
      [["2a0 not a digit\r\n"], /3-digit code/],
      [["250xhello\r\n"], /3-digit code/],
      [["250 bare LF\n"], /bare LF/],
      [["250 a\rb\r\n"], /bare CR/],
      [["250 " + "x".repeat(5000) + "\r\n"], /longer than 4096/],
      [["250 " + "x".repeat(5000)], /longer than 4096/],
    ];
    for (const [chunks, pattern] of cases) {
      const error = await protocolError(reader(...chunks));
      assert.equal(error.type, "protocol", String(chunks));
      assert.equal(error.phase, "ehlo");
      assert.match(error.message, pattern);
    }
  });

  it("bounds the number of lines in one reply", async () => {
    const r = new ReplyReader(new MemorySocket(["250-x\r\n".repeat(20) + "250 y\r\n"]), {
      maxLines: 10,
    });
    const error = await protocolError(r);
    assert.match(error.message, /longer than 10 lines/);
  });

  it("reports a connection error when the server closes mid-reply", async () => {
    const error = await protocolError(reader("250-mx.test\r\n250-PIPE"));
    assert.equal(error.type, "connection");
  });

  it("times out a silent server", async () => {
    const silent = {
      secure: false,
      read: () => new Promise<Uint8Array | null>(() => {}),
      write: () => Promise.resolve(),
      startTls: () => Promise.reject(new Error("no")),
      close: () => Promise.resolve(),
    };
    const r = new ReplyReader(silent);
    await assert.rejects(r.read({ ...options, timeoutMs: 30 }), { type: "timeout" });
  });

  it("drops buffered plaintext bytes when the socket is replaced after STARTTLS", async () => {
    const r = reader("220 go ahead\r\n250 injected\r\n");
    await r.read(options);
    assert.ok(r.bufferedBytes > 0);
    r.replaceSocket(new MemorySocket(["250 real\r\n"], { secure: true }));
    assert.equal(r.bufferedBytes, 0);
    assert.deepEqual((await r.read(options)).lines, ["real"]);
  });
});
