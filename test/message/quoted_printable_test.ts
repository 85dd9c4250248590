import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeQuotedPrintable,
  hexEscape,
  isSevenBitText,
  toCrlf,
} from "../../src/message/quoted_printable.ts";

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

describe("hexEscape and toCrlf", () => {
  it("escapes one octet as =XX, or %XX when asked", () => {
    assert.equal(hexEscape(0x3d), "=3D");
    assert.equal(hexEscape(0x0a), "=0A");
    assert.equal(hexEscape(0xe2, "%"), "%E2");
  });

  it("turns every kind of line end into CRLF", () => {
    assert.equal(toCrlf("a\rb\nc\r\nd\n\r"), "a\r\nb\r\nc\r\nd\r\n\r\n");
  });
});
