/**
 * Fuzzing what goes on the wire after DATA: the composer (src/message/compose.ts)
 * and the DATA encoder (src/smtp/data_encoder.ts). For any message the schema
 * accepts, the composed octets have CRLF line ends only, no line over 998
 * octets, no NUL, 7-bit unless an address needs SMTPUTF8, and the size they
 * announce; a maintained MIME parser (postal-mime) reads back the same
 * subject, bodies and attachments. For any bytes split anywhere, the DATA
 * encoder's output equals an independent model: CRLF canonical, dot-stuffed,
 * ending in exactly one CRLF.CRLF, with no end of data before it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import PostalMime from "postal-mime";
import { composeMessage } from "../../src/message/compose.ts";
import { parseMessage } from "../../src/message/schema.ts";
import { MessageValidationError } from "../../src/message/validation_issues.ts";
import { DataEncoder, encodeData } from "../../src/smtp/data_encoder.ts";
import { fuzzParameters } from "./fuzz.ts";

/** Bytes as a string of code units 0-255, for searching with string methods. */
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const concat = (chunks: Iterable<Uint8Array>) => Buffer.concat([...chunks]);

/** The DATA model: CR, LF and CRLF become CRLF; a leading dot is doubled; one terminator. */
function modelData(input: string, options: { dotStuff: boolean; terminate: boolean }): string {
  let out = input.replace(/\r\n|\r|\n/g, "\r\n");
  if (options.dotStuff) out = out.replace(/(^|\r\n)\./g, "$1..");
  if (!options.terminate) return out;
  if (out.length === 0) return ".\r\n";
  return out.endsWith("\r\n") ? `${out}.\r\n` : `${out}\r\n.\r\n`;
}

/** Checks that `wire` is DATA as RFC 5321 4.5.2 wants it, ending once. */
function assertCanonicalData(wire: string) {
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(wire), "a lone CR or LF on the wire");
  assert.ok(wire === ".\r\n" || wire.endsWith("\r\n.\r\n"), "no end-of-data marker at the end");
  const end = wire === ".\r\n" ? 0 : wire.indexOf("\r\n.\r\n");
  assert.ok(end === 0 || end === wire.length - 5, "the data ends early");
  assert.ok(!wire.startsWith(".\r\n") || wire === ".\r\n", "the data ends at once");
}

/** `bytes` cut at `cuts`. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.slice(start, point));
    start = point;
  }
  return chunks;
}

const dataByte = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x2e) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const dataBytes = fc.oneof(
  fc.array(dataByte, { maxLength: 300 }).map((codes) => Uint8Array.from(codes)),
  fc.array(fc.constantFrom(".", "\r", "\n", "\r\n", ".\r\n", "\r\n.\r\n", "..", "a"), {
    maxLength: 60,
  }).map((parts) => new TextEncoder().encode(parts.join(""))),
);

describe("fuzz: DATA encoder", () => {
  it("any bytes split anywhere encode as the model says, canonical and ending once", () => {
    fc.assert(
      fc.property(
        dataBytes,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1, max: 64 }),
        (bytes, cuts, chunkSize) => {
          const out = [...encodeData(split(bytes, cuts), { chunkSize })];
          const wire = latin1(concat(out));
          assert.equal(wire, modelData(latin1(bytes), { dotStuff: true, terminate: true }));
          assertCanonicalData(wire);
          for (const chunk of out.slice(0, -1)) assert.ok(chunk.length <= chunkSize);
          assert.ok(out[out.length - 1].length <= chunkSize + 5);
        },
      ),
      fuzzParameters(3000, 0xda7a01),
    );
  });

  it("without the terminator (BDAT) only the line ends change", () => {
    fc.assert(
      fc.property(dataBytes, fc.array(fc.nat(), { maxLength: 20 }), (bytes, cuts) => {
        const encoder = new DataEncoder({ dotStuff: false, terminate: false, chunkSize: 16 });
        const out: Uint8Array[] = [];
        for (const chunk of split(bytes, cuts)) out.push(...encoder.write(chunk));
        out.push(...encoder.end());
        assert.equal(
          latin1(concat(out)),
          modelData(latin1(bytes), { dotStuff: false, terminate: false }),
        );
      }),
      fuzzParameters(1000, 0xda7a02),
    );
  });
});

/** Text with the characters that matter to line handling and encodings. */
const bodyText = fc.array(
  fc.oneof(
    fc.constantFrom(
      "\r",
      "\n",
      "\r\n",
      ".",
      "\n.\n",
      "\r\n.\r\n",
      " ",
      "\t",
      "=",
      "=?",
      "\u00e9",
      "\u2028",
      "\u{1F600}",
      "\0",
      "\x7f",
      "From ",
      "--",
    ),
    fc.string({ maxLength: 20 }),
    fc.integer({ min: 990, max: 1100 }).map((n) => "x".repeat(n)),
    fc.integer({ min: 300, max: 700 }).map((n) => "\u00e9".repeat(n)),
  ),
  { maxLength: 12 },
).map((parts) => parts.join(""));

const headerValue = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.integer({ min: 900, max: 1100 }).map((n) => "y".repeat(n)),
  fc.array(fc.constantFrom("a", " ", "  ", "\t", "\u00fc", "word"), { maxLength: 300 })
    .map((parts) => parts.join("")),
);

const displayName = fc.oneof(
  fc.constantFrom("Ann", 'A "quoted" name', "M\u00fcller, Jo", "x:y", "a@b", "(c)", "=?x?="),
  fc.string({ unit: "grapheme", maxLength: 30 }),
);

const messageInput = fc.record({
  from: fc.record({ name: displayName, address: fc.constant("ann@example.com") }),
  to: fc.constant(["bob@example.org", "Cy <cy@example.net>"]),
  bcc: fc.constant("hidden@example.org"),
  subject: headerValue,
  text: bodyText,
  html: fc.option(bodyText, { nil: undefined }),
  headers: fc.option(
    fc.dictionary(fc.constantFrom("X-Tag", "X-Long", "List-Id", "X-Unicode"), headerValue, {
      maxKeys: 3,
    }),
    { nil: undefined },
  ),
  attachments: fc.option(
    fc.array(
      fc.record({
        filename: fc.oneof(fc.constantFrom("a.txt", "r\u00e9sum\u00e9.pdf"), fc.string()),
        content: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("base64")),
      }),
      { maxLength: 2 },
    ),
    { nil: undefined },
  ),
}, { requiredKeys: ["from", "to", "bcc", "subject", "text"] });

/** Drops undefined keys, so the schema sees only what a JSON body would carry. */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value));

describe("fuzz: composer", () => {
  it("every accepted message is canonical on the wire and reads back the same", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(messageInput, async (raw) => {
        const input = asJson(raw);
        let message;
        try {
          message = parseMessage(input);
        } catch (error) {
          assert.ok(error instanceof MessageValidationError, `not a validation error: ${error}`);
          return;
        }
        accepted++;
        const composed = composeMessage(message);
        const bytes = concat(composed.chunks());
        assert.equal(bytes.length, composed.size, "size is not the octets written");
        const text = latin1(bytes);
        assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(text), "a lone CR or LF");
        assert.ok(!text.includes("\0"), "a NUL");
        assert.ok(!composed.eightBit, "8-bit octets for ASCII addresses");
        assert.ok(![...text].some((c) => c.charCodeAt(0) > 0x7e), "a non-ASCII octet");
        for (const line of text.split("\r\n")) assert.ok(line.length <= 998, "a line > 998");
        const headerEnd = text.indexOf("\r\n\r\n");
        assert.ok(!/^bcc:/im.test(text.slice(0, headerEnd)), "a Bcc header");
        assert.ok(!text.includes("hidden@example.org"), "the Bcc address in the message");
        assert.deepEqual(composed.envelope.to, [
          "bob@example.org",
          "cy@example.net",
          "hidden@example.org",
        ]);
        assertCanonicalData(latin1(concat(encodeData(composed.chunks()))));

        const parsed = await PostalMime.parse(bytes);
        assert.equal(parsed.subject ?? "", message.subject ?? "");
        assert.equal(parsed.from?.address, "ann@example.com");
        if (message.from?.name !== undefined) assert.equal(parsed.from?.name, message.from.name);
        const canonical = (body: string) => body.replace(/\r\n|\r/g, "\n").replace(/\n$/, "");
        assert.equal(canonical(parsed.text ?? ""), canonical(message.text ?? ""));
        if (message.html !== undefined) {
          assert.equal(canonical(parsed.html ?? ""), canonical(message.html));
        }
        assert.equal(parsed.attachments.length, message.attachments.length);
        parsed.attachments.forEach((attachment, i) => {
          const expected = Buffer.from(input.attachments[i].content, "base64");
          assert.deepEqual(Buffer.from(attachment.content as ArrayBuffer), expected);
        });
      }),
      fuzzParameters(1000, 0xc0de01),
    );
    assert.ok(accepted > 250, `only ${accepted} generated messages were valid`);
  });
});
