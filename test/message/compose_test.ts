/**
 * Composition tests: every message is parsed back by two real parsers
 * (postal-mime and mailparser) and must come back as it went in. Text bodies
 * come back with line ends normalised to "\n" (CRLF, lone CR and lone LF are
 * all line ends in a MIME text body).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import PostalMime, { decodeWords } from "postal-mime";
import { simpleParser } from "mailparser";
import fc from "fast-check";
import { normalizeAddress } from "../../src/message/address.ts";
import { mediaTypeForFilename } from "../../src/message/media_types.ts";
import { CHUNK_SIZE, type ComposedMessage, composeMessage } from "../../src/message/compose.ts";
import { type MessageInput, parseMessage } from "../../src/message/schema.ts";

// ---------------------------------------------------------------------------
// Helpers

/** Copies of all chunks of a composed message (each chunk is valid only until the next). */
function copies(composed: ComposedMessage): Uint8Array[] {
  return Array.from(composed.chunks(), (chunk) => chunk.slice());
}

/** All chunks of a composed message, concatenated. */
function collect(composed: ComposedMessage): Uint8Array {
  const chunks = copies(composed);
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Octets as a binary string (one char per octet), for searching raw output. */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("latin1");
}

/** Asserts the invariants every composed message must satisfy; returns its octets. */
function checkWire(composed: ComposedMessage): Uint8Array {
  for (const chunk of composed.chunks()) assert.ok(chunk.length <= CHUNK_SIZE, "chunk too large");
  const bytes = collect(composed);
  assert.equal(bytes.length, composed.size, "size is not the exact length");
  assert.deepEqual(collect(composed), bytes, "chunks() is not re-iterable");
  const raw = latin1(bytes);
  assert.ok(raw.endsWith("\r\n"), "the message does not end with CRLF");
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(raw), "a line end is not CRLF");
  for (const line of raw.split("\r\n")) assert.ok(line.length <= 998, "a line is over 998 octets");
  const headerBlock = raw.slice(0, raw.indexOf("\r\n\r\n"));
  assert.match(
    headerBlock,
    /^Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000$/m,
  );
  assert.ok(headerBlock.includes(`\r\nMessage-ID: ${composed.messageId}\r\n`));
  assert.ok(headerBlock.includes("\r\nMIME-Version: 1.0\r\n"));
  assert.ok(!/^bcc:/im.test(raw), "a Bcc header appeared");
  // Each boundary occurs in its declaration and on its delimiter lines, nowhere else.
  const lines = raw.split("\r\n");
  for (const [, boundary] of raw.matchAll(/boundary="([^"]+)"/g)) {
    const uses = raw.split(boundary).length - 1;
    const delimiters = lines.filter((l) => l === `--${boundary}` || l === `--${boundary}--`);
    assert.equal(uses, delimiters.length + 1, "a boundary occurs outside its delimiters");
    assert.equal(delimiters.at(-1), `--${boundary}--`);
  }
  return bytes;
}

/** Content types of all parts in order of appearance (header lines only, unfolded). */
function partTypes(raw: string): string[] {
  return [...raw.replace(/\r\n[ \t]/g, " ").matchAll(/^Content-Type: ([a-z0-9.+/-]+)/gim)].map((
    match,
  ) => match[1]);
}

function compose(input: MessageInput, date = new Date(Date.UTC(2024, 10, 21, 23, 22, 0))) {
  return composeMessage(parseMessage(input), { date });
}

/** What a round trip must give back. */
interface Expected {
  subject?: string;
  from: { name: string; address: string };
  to?: { name: string; address: string }[];
  cc?: { name: string; address: string }[];
  replyTo?: { name: string; address: string }[];
  text?: string;
  html?: string;
  attachments?: {
    filename: string;
    contentType: string;
    bytes: Uint8Array;
    contentId?: string;
  }[];
  headers?: Record<string, string>;
}

type ParsedAddress = { name?: string; address?: string };

/** Addresses as parsed, in RCPT form (mailparser decodes IDN domains to Unicode). */
function addresses(list: ParsedAddress[] | undefined) {
  return (list ?? []).map((a) => ({ name: a.name ?? "", address: normalizeAddress(a.address!) }));
}

function bytesOf(content: ArrayBuffer | Uint8Array | string): Uint8Array {
  if (typeof content === "string") return new TextEncoder().encode(content);
  return new Uint8Array(content instanceof ArrayBuffer ? content : content.slice().buffer);
}

/** Parses with postal-mime and checks the result against `expected`. */
async function checkPostalMime(bytes: Uint8Array, expected: Expected) {
  const email = await PostalMime.parse(bytes);
  assert.equal(email.subject ?? "", expected.subject ?? "");
  assert.deepEqual(addresses(email.from ? [email.from] : []), [expected.from]);
  assert.deepEqual(addresses(email.to as ParsedAddress[]), expected.to ?? []);
  assert.deepEqual(addresses(email.cc as ParsedAddress[]), expected.cc ?? []);
  assert.deepEqual(addresses(email.replyTo as ParsedAddress[]), expected.replyTo ?? []);
  assert.equal(email.bcc, undefined);
  if (expected.text !== undefined) assert.equal(email.text ?? "", expected.text);
  if (expected.html !== undefined) assert.equal(email.html ?? "", expected.html);
  const attachments = expected.attachments ?? [];
  assert.equal(email.attachments.length, attachments.length);
  email.attachments.forEach((attachment, index) => {
    const want = attachments[index];
    assert.equal(attachment.filename, want.filename);
    assert.equal(attachment.mimeType, want.contentType);
    assert.deepEqual(bytesOf(attachment.content), want.bytes);
    assert.equal(attachment.contentId, want.contentId && `<${want.contentId}>`);
    if (want.contentId !== undefined && expected.html?.includes(`cid:${want.contentId}`)) {
      assert.equal(attachment.related, true);
    }
  });
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    const header = email.headers.find((h) => h.key === name.toLowerCase());
    assert.equal(decodeWords(header?.value ?? ""), value);
  }
  return email;
}

/** The parts of a mailparser attachment the tests read (mailparser ships no types). */
interface MailparserAttachment {
  filename?: string;
  contentType: string;
  content: Uint8Array;
  cid?: string;
}

/** Parses with mailparser and checks the result against `expected`. */
async function checkMailparser(bytes: Uint8Array, expected: Expected) {
  const mail = await simpleParser(Buffer.from(bytes), { keepCidLinks: true });
  const list = (field: { value: ParsedAddress[] } | { value: ParsedAddress[] }[] | undefined) =>
    field === undefined ? [] : (Array.isArray(field) ? field : [field]).flatMap((a) => a.value);
  assert.equal(mail.subject ?? "", expected.subject ?? "");
  assert.deepEqual(addresses(list(mail.from)), [expected.from]);
  assert.deepEqual(addresses(list(mail.to)), expected.to ?? []);
  assert.deepEqual(addresses(list(mail.cc)), expected.cc ?? []);
  assert.deepEqual(addresses(list(mail.replyTo)), expected.replyTo ?? []);
  assert.equal(mail.bcc, undefined);
  if (expected.text !== undefined) assert.equal(mail.text ?? "", expected.text);
  if (expected.html !== undefined) assert.equal(mail.html || "", expected.html);
  const attachments = expected.attachments ?? [];
  assert.equal(mail.attachments.length, attachments.length);
  mail.attachments.forEach((attachment: MailparserAttachment, index: number) => {
    const want = attachments[index];
    assert.equal(attachment.filename, want.filename);
    // mailparser replaces a declared application/octet-stream with a guess from the
    // file name's extension; postal-mime reports the declared type (checked above).
    if (want.contentType !== "application/octet-stream") {
      assert.equal(attachment.contentType, want.contentType);
    }
    assert.deepEqual(new Uint8Array(attachment.content), want.bytes);
    assert.equal(attachment.cid, want.contentId);
  });
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    // mailparser leaves unknown headers encoded.
    assert.equal(decodeWords(String(mail.headers.get(name.toLowerCase()))), value);
  }
  return mail;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

// ---------------------------------------------------------------------------
// The table

const PNG = randomBytes(1500);
const PDF = randomBytes(70_000); // more than one chunk
const SMALL = new TextEncoder().encode("hello, world\n");

interface Case {
  label: string;
  input: MessageInput;
  expected: Expected;
  /** Content types of the parts, outermost first. */
  types: string[];
  smtputf8?: boolean;
}

const ann = { name: "Ann", address: "ann@example.com" };
const bob = { name: "", address: "bob@example.com" };

const cases: Case[] = [
  {
    label: "text only, short ASCII lines (7bit)",
    input: { from: "Ann <ann@example.com>", to: "bob@example.com", subject: "Hi", text: "Hello\n" },
    expected: { subject: "Hi", from: ann, to: [bob], text: "Hello\n" },
    types: ["text/plain"],
  },
  {
    label: "text only, quoted-printable (non-ASCII, long line, CR/LF mix, dots, no final newline)",
    input: {
      from: "Ann <ann@example.com>",
      to: "bob@example.com",
      text: `Grüße\r\n.\r.dot\nline=with=equals \n${"x".repeat(300)} end  `,
    },
    expected: {
      from: ann,
      to: [bob],
      text: `Grüße\n.\n.dot\nline=with=equals \n${"x".repeat(300)} end  `,
    },
    types: ["text/plain"],
  },
  {
    label: "html only",
    input: { from: "ann@example.com", to: "bob@example.com", html: "<p>Hello <b>world</b></p>" },
    expected: {
      from: { name: "", address: "ann@example.com" },
      to: [bob],
      html: "<p>Hello <b>world</b></p>",
    },
    types: ["text/html"],
  },
  {
    label: "text and html (multipart/alternative)",
    input: {
      from: "Ann <ann@example.com>",
      to: ["bob@example.com", { name: 'Cy, the "Boss"', address: "cy@example.org" }],
      cc: "Dan <dan@example.net>",
      replyTo: "Replies <replies@example.com>",
      subject: "Both",
      text: "plain\n",
      html: "<p>html</p>\n",
    },
    expected: {
      subject: "Both",
      from: ann,
      to: [bob, { name: 'Cy, the "Boss"', address: "cy@example.org" }],
      cc: [{ name: "Dan", address: "dan@example.net" }],
      replyTo: [{ name: "Replies", address: "replies@example.com" }],
      text: "plain\n",
      html: "<p>html</p>\n",
    },
    types: ["multipart/alternative", "text/plain", "text/html"],
  },
  {
    label: "text with attachments (multipart/mixed)",
    input: {
      from: "Ann <ann@example.com>",
      to: "bob@example.com",
      text: "see attached",
      attachments: [
        { filename: "report.pdf", content: base64(PDF) },
        { filename: "notes.txt", content: base64(SMALL), contentType: "text/plain" },
      ],
    },
    expected: {
      from: ann,
      to: [bob],
      text: "see attached",
      attachments: [
        { filename: "report.pdf", contentType: "application/pdf", bytes: PDF },
        { filename: "notes.txt", contentType: "text/plain", bytes: SMALL },
      ],
    },
    types: ["multipart/mixed", "text/plain", "application/pdf", "text/plain"],
  },
  {
    label: "html with an inline image (multipart/related, cid: link)",
    input: {
      from: "Ann <ann@example.com>",
      to: "bob@example.com",
      html: '<p><img src="cid:logo.1@example"></p>',
      attachments: [{ filename: "logo.png", content: base64(PNG), contentId: "logo.1@example" }],
    },
    expected: {
      from: ann,
      to: [bob],
      html: '<p><img src="cid:logo.1@example"></p>',
      attachments: [
        { filename: "logo.png", contentType: "image/png", bytes: PNG, contentId: "logo.1@example" },
      ],
    },
    types: ["multipart/related", "text/html", "image/png"],
  },
  {
    label: "everything: mixed(alternative(text, related(html, inline)), attachment)",
    input: {
      from: { name: "Jörg Müller", address: "joerg@bücher.example" },
      to: "Ωμέγα <omega@example.gr>",
      subject: "Grüße aus Köln — a long subject that certainly needs folding somewhere, 😀 yes",
      text: "Plain ünïcode\n",
      html: '<p>Ünïcode <img src="cid:logo"></p>',
      attachments: [
        { filename: "logo.png", content: base64(PNG), contentId: "logo" },
        {
          filename: "Übersicht für das Jahr 2024 mit einem sehr langen Namen – Kopie (final).pdf",
          content: base64(PDF),
        },
      ],
      headers: { "X-Campaign": "42", "X-Note": "Grüße" },
    },
    expected: {
      subject: "Grüße aus Köln — a long subject that certainly needs folding somewhere, 😀 yes",
      from: { name: "Jörg Müller", address: "joerg@xn--bcher-kva.example" },
      to: [{ name: "Ωμέγα", address: "omega@example.gr" }],
      text: "Plain ünïcode\n",
      html: '<p>Ünïcode <img src="cid:logo"></p>',
      attachments: [
        { filename: "logo.png", contentType: "image/png", bytes: PNG, contentId: "logo" },
        {
          filename: "Übersicht für das Jahr 2024 mit einem sehr langen Namen – Kopie (final).pdf",
          contentType: "application/pdf",
          bytes: PDF,
        },
      ],
      headers: { "X-Campaign": "42", "X-Note": "Grüße" },
    },
    types: [
      "multipart/mixed",
      "multipart/alternative",
      "text/plain",
      "multipart/related",
      "text/html",
      "image/png",
      "application/pdf",
    ],
  },
  {
    label: "attachments only",
    input: {
      from: "ann@example.com",
      to: "bob@example.com",
      attachments: [{ filename: "a.bin", content: base64(SMALL) }],
    },
    expected: {
      from: { name: "", address: "ann@example.com" },
      to: [bob],
      attachments: [{ filename: "a.bin", contentType: "application/octet-stream", bytes: SMALL }],
    },
    types: ["multipart/mixed", "application/octet-stream"],
  },
  {
    label: "a contentId without html is a plain attachment",
    input: {
      from: "ann@example.com",
      to: "bob@example.com",
      text: "x",
      attachments: [{ filename: "logo.png", content: base64(PNG), contentId: "logo" }],
    },
    expected: {
      from: { name: "", address: "ann@example.com" },
      to: [bob],
      text: "x",
      attachments: [
        { filename: "logo.png", contentType: "image/png", bytes: PNG, contentId: "logo" },
      ],
    },
    types: ["multipart/mixed", "text/plain", "image/png"],
  },
  {
    label: "a subject only: an empty text/plain body",
    input: { from: "ann@example.com", to: "bob@example.com", subject: "Only this" },
    expected: {
      subject: "Only this",
      from: { name: "", address: "ann@example.com" },
      to: [bob],
      text: "",
    },
    types: ["text/plain"],
  },
  {
    label: "non-ASCII file names, empty attachment, URL-safe unpadded base64 input",
    input: {
      from: "ann@example.com",
      to: "bob@example.com",
      text: "x",
      attachments: [
        { filename: "€ 日本語.txt", content: "" },
        {
          filename: 'a "quoted" \\ name.bin',
          content: base64(PNG).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
        },
      ],
    },
    expected: {
      from: { name: "", address: "ann@example.com" },
      to: [bob],
      text: "x",
      attachments: [
        { filename: "€ 日本語.txt", contentType: "text/plain", bytes: new Uint8Array(0) },
        { filename: 'a "quoted" \\ name.bin', contentType: "application/octet-stream", bytes: PNG },
      ],
    },
    types: ["multipart/mixed", "text/plain", "text/plain", "application/octet-stream"],
  },
  {
    label: "a non-ASCII local part: raw UTF-8 headers (RFC 6532)",
    input: {
      from: "Ünïcode <用户@例子.测试>",
      to: "Ωμέγα <δοκιμή@παράδειγμα.δοκιμή>",
      subject: "x",
      text: "hi\n",
    },
    expected: {
      subject: "x",
      from: { name: "Ünïcode", address: "用户@xn--fsqu00a.xn--0zwm56d" },
      to: [{ name: "Ωμέγα", address: "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp" }],
      text: "hi\n",
    },
    types: ["text/plain"],
    smtputf8: true,
  },
  {
    label: "custom headers with runs of spaces and tabs still fold within 998 octets",
    input: {
      from: "a@example.com",
      to: "b@example.org",
      text: "x\n",
      headers: {
        "X-Spaces": "a" + " ".repeat(2000) + "b",
        "X-Tabs": ("w".repeat(80) + "\t").repeat(30),
        "X-Lead": " leading space",
        "X-List": "<https://example.com/u?id=1>, <mailto:u@example.com>",
      },
    },
    expected: {
      from: { name: "", address: "a@example.com" },
      to: [{ name: "", address: "b@example.org" }],
      text: "x\n",
      headers: {
        "X-Spaces": "a" + " ".repeat(2000) + "b",
        "X-Tabs": ("w".repeat(80) + "\t").repeat(30),
        "X-Lead": " leading space",
        "X-List": "<https://example.com/u?id=1>, <mailto:u@example.com>",
      },
    },
    types: ["text/plain"],
  },
];

describe("composeMessage: round trip through postal-mime and mailparser", () => {
  for (const testCase of cases) {
    it(testCase.label, async () => {
      const composed = compose(testCase.input);
      const bytes = checkWire(composed);
      const raw = latin1(bytes);
      assert.deepEqual(partTypes(raw), testCase.types);
      assert.equal(composed.smtputf8, testCase.smtputf8 ?? false);
      assert.equal(composed.eightBit, testCase.smtputf8 ?? false);
      if (!testCase.smtputf8) assert.ok(/^\p{ASCII}*$/u.test(raw), "8-bit octets in the output");
      await checkPostalMime(bytes, testCase.expected);
      const mail = await checkMailparser(bytes, testCase.expected);
      assert.equal(mail.messageId, composed.messageId);
      assert.equal(mail.date?.toISOString(), "2024-11-21T23:22:00.000Z");
    });
  }

  it("sends short ASCII as 7bit and everything else quoted-printable or base64", () => {
    const seven = latin1(
      collect(compose({ from: "a@example.com", to: "b@example.com", text: "Hi\n" })),
    );
    assert.match(seven, /Content-Transfer-Encoding: 7bit/);
    const raw = latin1(collect(compose(cases[6].input)));
    assert.doesNotMatch(raw, /^Content-Transfer-Encoding: 7bit/im);
    assert.match(raw, /text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable/);
    assert.match(raw, /Content-Transfer-Encoding: base64/);
  });

  it("writes base64 in 76-column lines and folds headers at 78 columns", () => {
    const raw = latin1(collect(compose(cases[6].input)));
    const [head] = raw.split("\r\n\r\n");
    for (const line of head.split("\r\n")) {
      assert.ok(line.length <= 78, `header line ${line.length}`);
    }
    const lines = raw.split("\r\n").filter((line) => /^[A-Za-z0-9+/]{70,}={0,2}$/.test(line));
    assert.ok(lines.length > 900);
    for (const line of lines) assert.ok(line.length <= 76);
  });
});

describe("composeMessage: envelope and Bcc", () => {
  it("puts Bcc only in the envelope, never in the message", async () => {
    const composed = compose({
      from: "ann@example.com",
      to: "bob@example.com",
      cc: "cy@example.org",
      bcc: ["Hidden Person <hidden.person@secret.example>", "other.hidden@secret.example"],
      subject: "s",
      text: "t",
      html: "<p>h</p>",
    });
    assert.deepEqual(composed.envelope, {
      from: "ann@example.com",
      to: [
        "bob@example.com",
        "cy@example.org",
        "hidden.person@secret.example",
        "other.hidden@secret.example",
      ],
    });
    const raw = latin1(checkWire(composed));
    for (const needle of ["hidden", "Hidden", "secret.example"]) {
      assert.ok(!raw.includes(needle), `the message contains ${needle}`);
    }
    // No Bcc header line (a bare "bcc" may occur in random hex boundaries and ids).
    assert.doesNotMatch(raw, /^bcc:/im);
    const email = await PostalMime.parse(raw);
    assert.equal(email.bcc, undefined);
  });

  it("writes To: undisclosed-recipients:; when there are only Bcc recipients", async () => {
    const composed = compose({ from: "ann@example.com", bcc: "hidden@secret.example", text: "t" });
    const raw = latin1(checkWire(composed));
    assert.match(raw, /^To: undisclosed-recipients:;\r$/m);
    assert.ok(!raw.includes("secret.example"));
    assert.deepEqual(composed.envelope.to, ["hidden@secret.example"]);
    const mail = await simpleParser(Buffer.from(raw, "latin1"));
    assert.equal(mail.bcc, undefined);
  });

  it("deduplicates recipients case-insensitively, keeping the first spelling", () => {
    const composed = compose({
      from: "ann@example.com",
      to: ["Bob@Example.com", "cy@example.org"],
      cc: "bob@EXAMPLE.COM",
      bcc: ["BOB@example.com", "Cy@Example.Org", "dan@example.net"],
      text: "t",
    });
    assert.deepEqual(composed.envelope.to, [
      "Bob@example.com",
      "cy@example.org",
      "dan@example.net",
    ]);
  });

  it("normalises envelope addresses: A-label domains, local part kept", () => {
    const composed = compose({ from: "Ann@Bücher.Example", to: "Bob@FAß.de", text: "t" });
    assert.deepEqual(composed.envelope, {
      from: "Ann@xn--bcher-kva.example",
      to: ["Bob@xn--fa-hia.de"],
    });
  });

  it("flags smtputf8 for a non-ASCII local part that is only in Bcc, without 8-bit headers", () => {
    const composed = compose({
      from: "ann@example.com",
      to: "b@example.com",
      bcc: "用户@example.com",
      text: "t",
    });
    assert.equal(composed.smtputf8, true);
    assert.equal(composed.eightBit, false);
    assert.ok(!latin1(collect(composed)).includes("example.com\r\nBcc"));
  });
});

describe("composeMessage: Message-ID, Date and options", () => {
  it("makes a unique Message-ID on the sender's domain", () => {
    const a = compose({ from: "ann@Bücher.example", to: "b@example.com", text: "t" });
    const b = compose({ from: "ann@Bücher.example", to: "b@example.com", text: "t" });
    assert.match(a.messageId, /^<[0-9a-f-]{36}@xn--bcher-kva\.example>$/);
    assert.notEqual(a.messageId, b.messageId);
  });

  it("uses messageIdDomain when given", () => {
    const composed = composeMessage(
      parseMessage({ from: "a@example.com", to: "b@example.com", text: "t" }),
      {
        messageIdDomain: "Mail.Example.NET",
      },
    );
    assert.match(composed.messageId, /@mail\.example\.net>$/);
  });

  it("refuses an invalid date and a message without sender", () => {
    const message = parseMessage({ from: "a@example.com", to: "b@example.com", text: "t" });
    assert.throws(() => composeMessage(message, { date: new Date(NaN) }), RangeError);
    assert.throws(() => composeMessage({ ...message, from: undefined }), /no sender/);
    assert.throws(() => composeMessage({ ...message, to: [] }), /no recipient/);
  });

  it("yields chunks of exactly 64 KiB except the last", () => {
    const composed = compose(cases[4].input);
    const sizes = [...composed.chunks()].map((chunk) => chunk.length);
    assert.ok(sizes.length > 1);
    assert.ok(sizes.slice(0, -1).every((size) => size === CHUNK_SIZE));
    assert.ok(sizes.at(-1)! <= CHUNK_SIZE);
  });
});

// ---------------------------------------------------------------------------
// Properties

/** Drops the control characters header text may not contain (all but tab). */
function withoutControls(text: string): string {
  return text.replace(/\p{Cc}/gu, (char) => char === "\t" ? char : "");
}

/** Header text: any graphemes plus the characters that need care; no C0 controls but tab. */
const headerText = fc.string({
  unit: fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        " ",
        "  ",
        "\t",
        '"',
        "\\",
        ",",
        "<",
        ">",
        "=?",
        "?=",
        "_",
        "(",
        ";",
        ":",
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 3 }) },
  ),
  maxLength: 80,
  size: "max",
}).map(withoutControls);

/** Body text: graphemes, line ends of every kind, dots, long lines. */
const bodyText = fc.string({
  unit: fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom("\r\n", "\n", "\r", ".", "\n.\n", " ", "\t", "=", "=\n", "From "),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom("x".repeat(120), "é".repeat(90), ` ${"a".repeat(1200)} `),
    },
  ),
  maxLength: 60,
  size: "max",
});

/** A file name: non-blank graphemes, at most 255 characters. */
const fileName = fc.string({
  unit: fc.oneof(
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
    fc.constantFrom(".", " ", '"', "\\", "%", "'", "*", ";", "="),
  ),
  minLength: 1,
  maxLength: 60,
  size: "max",
}).map(withoutControls).filter((t) => t.trim() !== "");

/** Line ends normalised as a MIME parser reports them. */
function lf(text: string): string {
  return text.replace(/\r\n|\r/g, "\n");
}

describe("composeMessage: properties", () => {
  it("recovers random subjects, names, bodies and attachments exactly", async () => {
    await fc.assert(
      fc.asyncProperty(
        headerText,
        headerText,
        bodyText,
        bodyText,
        fc.array(
          fc.record({ name: fileName, bytes: fc.uint8Array({ maxLength: 5000, size: "max" }) }),
          {
            maxLength: 2,
          },
        ),
        async (subject, name, text, html, files) => {
          const input: MessageInput = {
            from: { name, address: "ann@example.com" },
            to: [{ name, address: "bob@example.com" }],
            subject,
            text,
            html,
            attachments: files.map((f) => ({ filename: f.name, content: base64(f.bytes) })),
          };
          if (!subject && !text && !html && files.length === 0) {
            assert.throws(() => compose(input), /is empty/);
            return;
          }
          const composed = compose(input);
          const bytes = checkWire(composed);
          const trimmed = name.trim();
          const expected: Expected = {
            subject,
            from: { name: trimmed, address: "ann@example.com" },
            to: [{ name: trimmed, address: "bob@example.com" }],
            text: lf(text),
            html: lf(html),
            attachments: files.map((f) => ({
              filename: f.name,
              contentType: mediaTypeForFilename(f.name),
              bytes: f.bytes,
            })),
          };
          await checkPostalMime(bytes, expected);
          await checkMailparser(bytes, expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("keeps every line within 998 octets and every line end CRLF for any body", () => {
    fc.assert(
      fc.property(bodyText, bodyText, headerText, (text, html, subject) => {
        // "s": a message with no subject and no body is refused before composing.
        checkWire(
          compose({
            from: "a@example.com",
            to: "b@example.com",
            subject: subject || "s",
            text,
            html,
          }),
        );
        checkWire(compose({ from: "a@example.com", to: "b@example.com", subject: "s", text }));
      }),
      { numRuns: 100 },
    );
  });
});
