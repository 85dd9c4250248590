/**
 * Fuzzing the reply reader (src/smtp/reply.ts): whatever bytes the server
 * sends, split at any points, every read ends in a reply or a typed
 * `SmtpError` (`protocol` for bad framing, `connection` when the bytes run out),
 * never another exception and never a hang; and what it accepts is exactly what
 * an independent model of RFC 5321 section 4.2 framing accepts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { SmtpError } from "../../src/smtp/errors.ts";
import { ReplyReader } from "../../src/smtp/reply.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { fuzzParameters } from "./fuzz.ts";

const MAX_LINE = 40;
const MAX_LINES = 6;
const READ = { phase: "ehlo" as const, timeoutMs: 5000 };
const CR = 0x0d;
const LF = 0x0a;
const decoder = new TextDecoder();

interface Parsed {
  code: number;
  lines: string[];
}

/** What the reader should produce: the replies, then why it stopped. */
interface Outcome {
  replies: Parsed[];
  end: "protocol" | "connection";
}

/**
 * An independent model of the framing: lines end in CRLF only, are at most
 * MAX_LINE octets, start with a code whose digits are 2-5, 0-5, 0-9, then end
 * or go on with " " (last line) or "-" (more follow); all lines of a reply have
 * one code; a reply has at most MAX_LINES lines. When the server has closed,
 * a last final line without CRLF still ends its reply.
 */
function model(bytes: Uint8Array, options: { closed: boolean } = { closed: true }): Outcome {
  const replies: Parsed[] = [];
  let current: { code: string; text: string }[] = [];
  let pos = 0;
  while (true) {
    const lf = bytes.indexOf(LF, pos);
    if (lf === -1) {
      if (bytes.length - pos > MAX_LINE + 1) return { replies, end: "protocol" };
      // A last line the server ended with its FIN instead of CRLF (a hasty
      // "421 closing") still counts as the end of its reply.
      const rest = bytes.subarray(pos);
      const last = finalLine(decoder.decode(rest));
      if (
        options.closed && rest.length > 0 && !rest.includes(CR) && last !== undefined &&
        (current.length === 0 || current[0].code === last.code)
      ) {
        current.push(last);
        replies.push({ code: Number(last.code), lines: current.map((l) => l.text) });
      }
      return { replies, end: "connection" };
    }
    if (lf === pos || bytes[lf - 1] !== CR) return { replies, end: "protocol" };
    const line = bytes.subarray(pos, lf - 1);
    if (line.length > MAX_LINE || line.includes(CR)) return { replies, end: "protocol" };
    pos = lf + 1;
    const text = decoder.decode(line);
    const digits = text.slice(0, 3);
    const separator = text.length > 3 ? text[3] : " ";
    const valid = digits.length === 3 && "2345".includes(digits[0]) &&
      "012345".includes(digits[1]) && "0123456789".includes(digits[2]) &&
      (separator === " " || separator === "-");
    if (!valid) return { replies, end: "protocol" };
    if (current.length > 0 && current[0].code !== digits) return { replies, end: "protocol" };
    current.push({ code: digits, text: text.slice(4) });
    if (separator === " ") {
      replies.push({ code: Number(digits), lines: current.map((l) => l.text) });
      current = [];
    } else if (current.length >= MAX_LINES) {
      return { replies, end: "protocol" };
    }
  }
}

/** A line that ends a reply (`ddd` or `ddd text`), as code and text; else `undefined`. */
function finalLine(text: string): { code: string; text: string } | undefined {
  const digits = text.slice(0, 3);
  const valid = digits.length === 3 && "2345".includes(digits[0]) &&
    "012345".includes(digits[1]) && "0123456789".includes(digits[2]) &&
    (text.length === 3 || text[3] === " ");
  return valid ? { code: digits, text: text.slice(4) } : undefined;
}

/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) chunks.push(bytes.slice(start, point));
    start = point;
  }
  return chunks;
}

/** Reads replies until the reader fails; any failure other than an SmtpError fails the test. */
async function readAll(chunks: Uint8Array[]): Promise<Outcome> {
  const reader = new ReplyReader(new MemorySocket(chunks), {
    maxLineLength: MAX_LINE,
    maxLines: MAX_LINES,
  });
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const replies: Parsed[] = [];
  // A reply takes at least 5 bytes: more reads than that would mean a loop that makes no progress.
  for (let reads = 0; reads <= total + 1; reads++) {
    try {
      const reply = await reader.read(READ);
      replies.push({ code: reply.code, lines: reply.lines });
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      assert.ok(
        error.type === "protocol" || error.type === "connection",
        `unexpected ${error.type}: ${error.message}`,
      );
      assert.equal(error.phase, "ehlo");
      return { replies, end: error.type };
    }
  }
  assert.fail("the reader kept answering past the end of its input");
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/** Fragments that make framing decisions likely: codes, separators, line ends, long runs. */
const fragment = fc.constantFrom(
  "250",
  "250-",
  "250 ",
  "220 ",
  "421 4.7.0 bye",
  "550-",
  "5",
  "25",
  "199 ",
  "260 ",
  "\r\n",
  "\r",
  "\n",
  "\r\r\n",
  "-",
  " ",
  "ok",
  "2.1.5 ",
  "\u00e9",
  "\xff",
  "\u2028",
  "\0",
  "x".repeat(MAX_LINE - 4),
  "y".repeat(MAX_LINE + 2),
);

const tokenBytes = fc.array(fragment, { maxLength: 40 }).map((parts) => utf8(parts.join("")));
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  tokenBytes,
  // Bytes drawn from the framing alphabet only.
  fc.array(fc.constantFrom(0x0d, 0x0a, 0x20, 0x2d, 0x32, 0x35, 0x30, 0x34, 0x61), {
    maxLength: 120,
  }).map((codes) => Uint8Array.from(codes)),
);
const cuts = fc.array(fc.nat(), { maxLength: 30 });

/** Well-formed replies: a code and 1..MAX_LINES lines of printable text. */
const wellFormed = fc.array(
  fc.record({
    code: fc.integer({ min: 200, max: 559 }).filter((code) => code % 100 < 60),
    lines: fc.array(fc.stringMatching(/^[\x20-\x7e]{0,30}$/), {
      minLength: 1,
      maxLength: MAX_LINES,
    }),
  }),
  { minLength: 1, maxLength: 8 },
);

describe("fuzz: reply reader", () => {
  it("any bytes split anywhere: replies then a protocol or connection error, as the model says", async () => {
    await fc.assert(
      fc.asyncProperty(anyBytes, cuts, async (bytes, points) => {
        assert.deepEqual(await readAll(split(bytes, points)), model(bytes));
      }),
      fuzzParameters(3000, 0x5eed01),
    );
  });

  it("well-formed replies split anywhere read back exactly, then the end of input", async () => {
    await fc.assert(
      fc.asyncProperty(wellFormed, cuts, async (replies, points) => {
        const wire = replies.map(({ code, lines }) =>
          lines.map((text, i) => `${code}${i === lines.length - 1 ? " " : "-"}${text}\r\n`)
            .join("")
        ).join("");
        const outcome = await readAll(split(utf8(wire), points));
        const expected = replies.map(({ code, lines }) => ({ code, lines }));
        assert.deepEqual(outcome, { replies: expected, end: "connection" });
      }),
      fuzzParameters(1000, 0x5eed02),
    );
  });

  it("a server that stops mid-reply hits the deadline: a timeout error, not a hang", async () => {
    await fc.assert(
      fc.asyncProperty(tokenBytes, async (bytes) => {
        const socket = new MemorySocket([bytes]);
        // After the scripted bytes the server goes silent instead of closing.
        const read = socket.read.bind(socket);
        let served = false;
        socket.read = () => served ? new Promise(() => {}) : (served = true, read());
        const reader = new ReplyReader(socket, { maxLineLength: MAX_LINE, maxLines: MAX_LINES });
        const expected = model(bytes, { closed: false });
        for (let i = 0; i < expected.replies.length; i++) await reader.read(READ);
        const error = await reader.read({ ...READ, timeoutMs: 5 }).then(
          () => assert.fail("a reply out of nothing"),
          (error) => error,
        );
        assert.ok(error instanceof SmtpError, String(error));
        assert.equal(error.type, expected.end === "protocol" ? "protocol" : "timeout");
      }),
      fuzzParameters(100, 0x5eed03),
    );
  });
});
