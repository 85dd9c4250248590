import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import {
  bytesToBase64,
  measureBase64,
  plainBase64Scan,
  scanBase64,
  wrapBase64,
  wrappedBase64Size,
} from "../../src/message/base64.ts";

/**
 * base64.ts loaded once more as on a platform without the native decoder
 * (`Uint8Array.prototype.setFromBase64`, absent in Node 20): its patterns decide.
 */
async function importWithoutNativeDecoder(): Promise<
  Pick<typeof import("../../src/message/base64.ts"), "plainBase64Scan" | "scanBase64">
> {
  const prototype = Uint8Array.prototype as unknown as { setFromBase64?: unknown };
  const native = prototype.setFromBase64;
  delete prototype.setFromBase64;
  try {
    return await import("../../src/message/base64.ts?without-native-decoder");
  } finally {
    prototype.setFromBase64 = native;
  }
}
const withoutNative = await importWithoutNativeDecoder();

function concat(chunks: Iterable<Uint8Array>): string {
  return Buffer.concat([...chunks]).toString("latin1");
}

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

/** What plainBase64Scan must say, written the slow, obvious way. */
function plainReference(text: string) {
  const match = /^([A-Za-z0-9+/]*)(={0,2})$/.exec(text);
  if (match === null) return undefined;
  const [data, padding] = [match[1].length, match[2].length];
  if (data % 4 === 1 || (padding > 0 && (data % 4) + padding !== 4)) return undefined;
  return { chars: data + (data % 4 === 0 ? 0 : 4 - (data % 4)), data, plain: true };
}

describe("plainBase64Scan (the fast path of scanBase64, native or by pattern)", () => {
  it("says plain exactly when the text is standard base64 without whitespace", () => {
    const piece = fc.constantFrom(
      "QUJD",
      "QQ",
      "Q",
      "QU",
      "=",
      "==",
      " ",
      "\n",
      "\t",
      "-",
      "_",
      "!",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join("");
        assert.deepEqual(plainBase64Scan(text), plainReference(text), JSON.stringify(text));
        assert.deepEqual(
          withoutNative.plainBase64Scan(text),
          plainReference(text),
          `without the native decoder: ${JSON.stringify(text)}`,
        );
        // scanBase64 says the same (the scan, or the same error) either way.
        const outcome = (scan: (text: string) => unknown) => {
          try {
            return scan(text);
          } catch (error) {
            return (error as Error).message;
          }
        };
        assert.deepEqual(outcome(scanBase64), outcome(withoutNative.scanBase64));
      }),
      { numRuns: 2000 },
    );
  });

  it("sees whitespace and padding where its 64 Ki-character slices meet", () => {
    const data = "QUJD".repeat(20_000); // 80 000 characters: two slices
    const cases = [
      data,
      `${data.slice(0, 65534)}==${data.slice(65536)}`, // a padded group ends the first slice
      `${data.slice(0, 65535)} ${data.slice(65536)}`,
      `${data.slice(0, 65532)}    ${data.slice(65536)}`, // four spaces keep the groups whole
      `${data}QQ==`,
      `${data} `,
      `${data}Q`,
    ];
    for (const text of cases) {
      assert.deepEqual(plainBase64Scan(text), plainReference(text), `length ${text.length}`);
      assert.deepEqual(withoutNative.plainBase64Scan(text), plainReference(text));
      if (plainReference(text) === undefined) {
        // The patterns decide: refused, or accepted as not plain.
        assert.ok(
          (() => {
            try {
              return !scanBase64(text).plain;
            } catch {
              return true;
            }
          })(),
        );
      }
    }
  });
});

describe("bytesToBase64", () => {
  it("gives the standard padded base64 of any bytes, large ones too", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100, size: "max" }), (bytes) => {
        assert.equal(bytesToBase64(bytes), Buffer.from(bytes).toString("base64"));
      }),
      { numRuns: 100 },
    );
    const large = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) & 255);
    assert.equal(bytesToBase64(large), Buffer.from(large).toString("base64"));
  });
});
