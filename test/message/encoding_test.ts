import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { decodeWords } from "postal-mime";
import {
  encodeQuotedPrintable,
  encodeWords,
  foldHeader,
  headerTextProblem,
  isSevenBitText,
  measureBase64,
  rfc2231Tokens,
  wrapBase64,
  wrappedBase64Size,
} from "../../src/message/encoding.ts";

/** A small reference quoted-printable decoder (RFC 2045 6.7), for checking the encoder. */
function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  const lines = text.split("\r\n");
  lines.forEach((line, index) => {
    let soft = false;
    for (let i = 0; i < line.length; i++) {
      if (line[i] === "=") {
        if (i === line.length - 1) {
          soft = true;
          break;
        }
        bytes.push(parseInt(line.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(line.charCodeAt(i));
      }
    }
    if (!soft && index < lines.length - 1) bytes.push(13, 10);
  });
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function concat(chunks: Iterable<Uint8Array>): string {
  return Buffer.concat([...chunks]).toString("latin1");
}

describe("encodeQuotedPrintable", () => {
  it("escapes '=', non-ASCII and whitespace at line ends", () => {
    assert.equal(encodeQuotedPrintable("a=b"), "a=3Db");
    assert.equal(encodeQuotedPrintable("é"), "=C3=A9");
    assert.equal(encodeQuotedPrintable("a \nb\t"), "a=20\r\nb=09");
  });

  it("turns every kind of line end into CRLF", () => {
    assert.equal(encodeQuotedPrintable("a\rb\nc\r\nd"), "a\r\nb\r\nc\r\nd");
  });

  it("keeps lines within 76 characters without splitting escapes, and round-trips", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 400, size: "max" }), (text) => {
        const encoded = encodeQuotedPrintable(text);
        for (const line of encoded.split("\r\n")) {
          assert.ok(line.length <= 76);
          // Apart from a final soft break, every "=" starts a complete escape.
          assert.match(line.replace(/=$/, ""), /^(?:[^=]|=[0-9A-F]{2})*$/);
          assert.ok(/^[\x21-\x7e \t]*$/.test(line));
          assert.ok(!/[ \t]$/.test(line), "whitespace at a line end");
        }
        assert.equal(decodeQuotedPrintable(encoded), text.replace(/\r\n|\r|\n/g, "\r\n"));
      }),
      { numRuns: 100 },
    );
  });
});

describe("isSevenBitText", () => {
  it("accepts short printable ASCII lines only", () => {
    assert.equal(isSevenBitText("Hello\nworld\n"), true);
    assert.equal(isSevenBitText("Grüße\n"), false);
    assert.equal(isSevenBitText(`${"x".repeat(79)}\n`), false);
    assert.equal(isSevenBitText("trailing space \n"), false);
    assert.equal(isSevenBitText("nul\0"), false);
  });
});

describe("measureBase64 and wrapBase64", () => {
  it("re-wraps any valid base64 form into canonical 76-column lines", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000, size: "max" }),
        fc.constantFrom("plain", "wrapped", "url", "unpadded"),
        fc.integer({ min: 80, max: 300 }),
        (bytes, form, chunkSize) => {
          const canonical = Buffer.from(bytes).toString("base64");
          let input = canonical;
          if (form === "wrapped") input = canonical.replace(/.{1,60}/g, "$&\r\n ");
          if (form === "url") input = canonical.replace(/\+/g, "-").replace(/\//g, "_");
          if (form === "unpadded") input = canonical.replace(/=+$/, "");
          const chars = measureBase64(input);
          assert.equal(chars, canonical.length);
          const chunks = [...wrapBase64(input, chunkSize)];
          for (const chunk of chunks) assert.ok(chunk.length <= chunkSize);
          const output = concat(chunks);
          assert.equal(output.length, wrappedBase64Size(chars));
          assert.equal(output, canonical.replace(/.{76}(?=.)/g, "$&\r\n"));
          assert.deepEqual(new Uint8Array(Buffer.from(output, "base64")), bytes);
        },
      ),
      { numRuns: 100 },
    );
  });

  const invalid: [string, string, RegExp][] = [
    ["a foreign character", "QUJD!secret", /unexpected character at offset 4/],
    ["a non-ASCII character", "QUJDé", /unexpected character/],
    ["data after padding", "QQ==QUJD", /data after '=' padding/],
    ["an impossible length", "QUJDR", /length is not possible/],
    ["too much padding", "QQ===", /padding/],
    ["padding on a full group", "QUJD=", /padding/],
  ];
  for (const [label, input, reason] of invalid) {
    it(`refuses ${label} without echoing it`, () => {
      assert.throws(() => measureBase64(input), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, reason);
        assert.ok(!error.message.includes("secret") && !error.message.includes("QUJD"));
        return true;
      });
    });
  }

  it("splits lines and line breaks across output buffers of any size", () => {
    const bytes = Uint8Array.from({ length: 500 }, (_, i) => (i * 37) & 255);
    const canonical = Buffer.from(bytes).toString("base64");
    const expected = canonical.replace(/.{76}(?=.)/g, "$&\r\n");
    for (const input of [canonical, canonical.replace(/=+$/, "").replace(/.{1,50}/g, "$& \n")]) {
      for (const chunkSize of [1, 2, 3, 5, 76, 77, 78, 79, 155, 156, 157]) {
        assert.equal(concat(wrapBase64(input, chunkSize)), expected, `chunk size ${chunkSize}`);
      }
    }
  });

  it("accepts the empty string", () => {
    assert.equal(measureBase64(""), 0);
    assert.equal(concat(wrapBase64("")), "");
  });
});

describe("encodeWords", () => {
  it("produces words of at most 75 characters that decode back exactly", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 300, size: "max" }),
        fc.integer({ min: 10, max: 75 }),
        (text, firstLength) => {
          const words = encodeWords(text, { firstLength });
          for (const word of words) {
            assert.ok(word.length <= 75, `word of ${word.length}`);
            assert.match(word, /^=\?UTF-8\?[QB]\?[A-Za-z0-9!*+\-/=_]*\?=$/);
          }
          assert.ok(words[0].length <= Math.max(firstLength, 24));
          assert.equal(decodeWords(words.join(" ")), text);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("never splits a UTF-8 sequence across words", () => {
    const words = encodeWords("😀".repeat(40));
    assert.ok(words.length > 1);
    for (const word of words) {
      const decoded = decodeWords(word);
      assert.ok(decoded.isWellFormed() && !decoded.includes("\uFFFD"));
      assert.ok(/^(?:😀)+$/.test(decoded));
    }
  });

  it("chooses Q for mostly ASCII and B for mostly non-ASCII text", () => {
    assert.match(encodeWords("Café au lait")[0], /^=\?UTF-8\?Q\?/);
    assert.match(encodeWords("日本語のテキスト")[0], /^=\?UTF-8\?B\?/);
  });
});

describe("rfc2231Tokens", () => {
  it("quotes short ASCII and splits long or non-ASCII values into continuations", () => {
    assert.deepEqual(rfc2231Tokens("filename", 'a "b".txt'), ['filename="a \\"b\\".txt"']);
    assert.deepEqual(rfc2231Tokens("filename", "€.txt"), ["filename*=UTF-8''%E2%82%AC.txt"]);
    const tokens = rfc2231Tokens("filename", "ü".repeat(40));
    assert.ok(tokens.length > 1);
    assert.match(tokens[0], /^filename\*0\*=UTF-8''(%C3%BC)+$/);
    assert.match(tokens[1], /^filename\*1\*=(%C3%BC)+$/);
    for (const token of tokens) assert.ok(token.length <= 76, `token of ${token.length}`);
  });
});

describe("foldHeader", () => {
  it("folds at 78 columns in place of spaces, so unfolding restores the value", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 30, size: "max" })
            .map((t) => t.replace(/\s/g, "x")),
          { maxLength: 30, size: "max" },
        ),
        (tokens) => {
          const header = foldHeader("Subject", tokens);
          assert.ok(header.endsWith("\r\n"));
          for (const line of header.slice(0, -2).split("\r\n")) assert.ok(line.length <= 78);
          assert.equal(
            header.slice(0, -2).replace(/\r\n /g, " "),
            `Subject:${tokens.map((t) => ` ${t}`).join("")}`,
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("foldHeader with extra spaces", () => {
  it("keeps runs of spaces (empty tokens) and never folds before them", () => {
    const header = foldHeader("X-A", ["a", "", "", "b".repeat(80), "", "c"]);
    for (const line of header.split("\r\n").slice(1, -1)) assert.match(line, /^ \S/);
    assert.equal(header.slice(0, -2).replace(/\r\n /g, " "), `X-A: a   ${"b".repeat(80)}  c`);
  });
});

describe("headerTextProblem", () => {
  it("refuses CR, LF, NUL, other controls and lone surrogates, accepts tab and Unicode", () => {
    assert.match(headerTextProblem("a\rb")!, /line breaks/);
    assert.match(headerTextProblem("a\nb")!, /line breaks/);
    assert.match(headerTextProblem("a\0b")!, /NUL/);
    assert.match(headerTextProblem("a\x1bb")!, /control/);
    assert.match(headerTextProblem("a\uD800")!, /well-formed/);
    assert.equal(headerTextProblem("Grüße\t😀"), undefined);
  });
});
