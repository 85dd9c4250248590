import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMessage } from "../../src/message/schema.ts";
import { MessageValidationError } from "../../src/message/validation_issues.ts";

const base = { from: "ann@example.com", to: "bob@example.com", text: "Hello" };

/** Parses `input` expecting failure; returns the error. */
function refuse(input: unknown, options?: { defaultFrom?: string }): MessageValidationError {
  try {
    parseMessage(input, options);
  } catch (error) {
    assert.ok(error instanceof MessageValidationError, `unexpected error ${error}`);
    assert.ok(error instanceof TypeError);
    return error;
  }
  assert.fail("the message was accepted");
}

describe("parseMessage: accepted input", () => {
  it("accepts the three address forms and normalises them to mailboxes", () => {
    const message = parseMessage({
      from: "Ann <ann@Example.COM>",
      to: ["bob@example.com", { name: "Cy", address: "cy@bücher.example" }],
      cc: "Dan <dan@example.net>, eve@example.org",
      bcc: { address: "fay@example.com" },
      replyTo: "replies@example.com",
      text: "Hello",
    });
    assert.deepEqual(message.from, { name: "Ann", address: "ann@example.com", smtputf8: false });
    assert.deepEqual(message.to, [
      { address: "bob@example.com", smtputf8: false },
      { name: "Cy", address: "cy@xn--bcher-kva.example", smtputf8: false },
    ]);
    assert.deepEqual(message.cc.map((m) => m.address), ["dan@example.net", "eve@example.org"]);
    assert.equal(message.cc[0].name, "Dan");
    assert.deepEqual(message.bcc, [{ address: "fay@example.com", smtputf8: false }]);
    assert.deepEqual(message.replyTo, [{ address: "replies@example.com", smtputf8: false }]);
  });

  it("flattens comma lists inside arrays", () => {
    const message = parseMessage({
      ...base,
      to: ["a@example.com, b@example.com", "c@example.com"],
    });
    assert.deepEqual(message.to.map((m) => m.address), [
      "a@example.com",
      "b@example.com",
      "c@example.com",
    ]);
  });

  it("fills defaults: empty lists, no attachments, no headers, allowPartial false", () => {
    const message = parseMessage(base);
    assert.deepEqual(message.cc, []);
    assert.deepEqual(message.bcc, []);
    assert.deepEqual(message.replyTo, []);
    assert.deepEqual(message.attachments, []);
    assert.deepEqual(message.headers, {});
    assert.equal(message.allowPartial, false);
    assert.equal(message.token, undefined);
  });

  it("accepts bcc alone as the only recipient", () => {
    assert.equal(
      parseMessage({ from: "a@example.com", bcc: "b@example.com", text: "t" }).bcc.length,
      1,
    );
  });

  it("keeps subject, bodies, dsn, token and allowPartial", () => {
    const message = parseMessage({
      ...base,
      subject: "Grüße",
      text: "t",
      html: "<p>h</p>",
      dsn: { notify: ["failure", "delay"], return: "headers", envelopeId: "abc 123" },
      allowPartial: true,
      token: 42,
    });
    assert.equal(message.subject, "Grüße");
    assert.equal(message.text, "t");
    assert.equal(message.html, "<p>h</p>");
    assert.deepEqual(message.dsn, {
      notify: ["failure", "delay"],
      return: "headers",
      envelopeId: "abc 123",
    });
    assert.equal(message.allowPartial, true);
    assert.equal(message.token, 42);
    assert.equal(parseMessage({ ...base, token: "t-1" }).token, "t-1");
    assert.deepEqual(parseMessage({ ...base, dsn: { notify: ["never"] } }).dsn, {
      notify: ["never"],
    });
  });

  it("derives the attachment content type from the file name unless given", () => {
    const message = parseMessage({
      ...base,
      attachments: [
        { filename: "report.PDF", content: "QQ==" },
        { filename: "photo.jpg", content: "QQ==" },
        { filename: "data.unknownext", content: "QQ==" },
        { filename: "noext", content: "" },
        { filename: "x.bin", content: "QQ==", contentType: "Image/PNG", contentId: "logo.1@x" },
      ],
    });
    assert.deepEqual(message.attachments.map((a) => a.contentType), [
      "application/pdf",
      "image/jpeg",
      "application/octet-stream",
      "application/octet-stream",
      "image/png",
    ]);
    assert.equal(message.attachments[4].contentId, "logo.1@x");
    assert.ok(!("contentId" in message.attachments[0]));
  });

  it("accepts base64 with line breaks, URL-safe alphabet and missing padding", () => {
    const message = parseMessage({
      ...base,
      attachments: [
        { filename: "a", content: "QUJD\r\nREVG\r\n" },
        { filename: "b", content: "-_-_" },
        { filename: "c", content: "QQ" },
      ],
    });
    assert.equal(message.attachments.length, 3);
  });

  it("uses defaultFrom when from is missing, and from when given", () => {
    const options = { defaultFrom: "App <app@example.com>" };
    assert.deepEqual(parseMessage({ to: "b@example.com", text: "t" }, options).from, {
      name: "App",
      address: "app@example.com",
      smtputf8: false,
    });
    assert.equal(parseMessage(base, options).from?.address, "ann@example.com");
  });

  it("throws a TypeError for an invalid defaultFrom without echoing it", () => {
    assert.throws(
      () => parseMessage(base, { defaultFrom: "not an address" }),
      (error: unknown) =>
        error instanceof TypeError && /defaultFrom/.test(error.message) &&
        !error.message.includes("not an address"),
    );
  });

  it("snapshots: later changes to the input do not affect the result", () => {
    const input = {
      from: { name: "Ann", address: "ann@example.com" },
      to: ["bob@example.com"],
      headers: { "X-A": "1" } as Record<string, string>,
      attachments: [{ filename: "a.txt", content: "QQ==" }],
      dsn: { notify: ["failure" as const] },
    };
    const message = parseMessage(input);
    input.from.address = "evil@example.com";
    input.to.push("evil@example.com");
    input.headers["X-B"] = "2";
    input.attachments[0].filename = "evil.exe";
    input.dsn.notify.push("success" as never);
    assert.equal(message.from?.address, "ann@example.com");
    assert.equal(message.to.length, 1);
    assert.deepEqual(message.headers, { "X-A": "1" });
    assert.equal(message.attachments[0].filename, "a.txt");
    assert.deepEqual(message.dsn?.notify, ["failure"]);
  });

  it("is idempotent: a parsed message is valid input and parses to itself", () => {
    const message = parseMessage({
      ...base,
      cc: "Cy <cy@bücher.example>",
      attachments: [{ filename: "a.txt", content: "QQ==", contentId: "x" }],
      headers: { "X-A": "1" },
      dsn: { return: "full" },
      token: "t",
    });
    assert.deepEqual(parseMessage(message), message);
  });
});

describe("parseMessage: bad input", () => {
  const SECRET = "S3cr3tValue";
  // Each case: label, input, expected path, expected reason. SECRET marks the value that must not be echoed.
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "CRLF in a display name",
      { ...base, from: { name: `Ann\r\nBcc: ${SECRET}@x.y`, address: "ann@example.com" } },
      "from.name",
      /line breaks/,
    ],
    [
      "CRLF in a name inside a string address",
      { ...base, to: [`Bob\r\n${SECRET} <bob@example.com>`] },
      "to[0]",
      /line break/,
    ],
    ["CRLF in the subject", { ...base, subject: `Hi\r\nBcc: ${SECRET}` }, "subject", /line breaks/],
    ["NUL in the subject", { ...base, subject: `Hi\0${SECRET}` }, "subject", /NUL/],
    [
      "CRLF in a header value",
      { ...base, headers: { "X-Campaign": `1\r\nBcc: ${SECRET}` } },
      'headers["X-Campaign"]',
      /line breaks/,
    ],
    [
      "CRLF in a filename",
      { ...base, attachments: [{ filename: `a${SECRET}\r\n.txt`, content: "QQ==" }] },
      "attachments[0].filename",
      /line breaks/,
    ],
    [
      "a structural custom header (Bcc)",
      { ...base, headers: { Bcc: `${SECRET}@example.com` } },
      "headers.Bcc",
      /structural header/,
    ],
    [
      "a structural custom header (Content-Type)",
      { ...base, headers: { "content-type": `text/${SECRET}` } },
      'headers["content-type"]',
      /structural header/,
    ],
    [
      "a trace header (Received)",
      { ...base, headers: { Received: `from ${SECRET}` } },
      "headers.Received",
      /structural header/,
    ],
    [
      "an invalid header name",
      { ...base, headers: { "X Bad": SECRET } },
      'headers["X Bad"]',
      /not a valid header name/,
    ],
    [
      "a quoted local part",
      { ...base, to: ["ok@example.com", `"${SECRET} x"@example.com`] },
      "to[1]",
      /quoted local parts/,
    ],
    [
      "a comment",
      { ...base, cc: [`${SECRET}@example.com (Comment)`] },
      "cc[0]",
      /comments/,
    ],
    ["@ twice", { ...base, bcc: `${SECRET}@@example.com` }, "bcc", /more than one @/],
    [
      "a leading -",
      { ...base, replyTo: [{ address: `-${SECRET}@example.com` }] },
      "replyTo[0].address",
      /must not start with '-'/,
    ],
    [
      "a name in the address field of the object form",
      { ...base, from: { address: `Ann <${SECRET}@example.com>` } },
      "from.address",
      /bare address/,
    ],
    [
      "a list where one address is expected",
      { ...base, from: `a@example.com, ${SECRET}@example.com` },
      "from",
      /single address/,
    ],
    [
      "invalid base64",
      { ...base, attachments: [{ filename: "a.txt", content: `QUJD${SECRET}!` }] },
      "attachments[0].content",
      /not valid base64/,
    ],
    [
      "base64 with wrong padding",
      { ...base, attachments: [{ filename: "a.txt", content: "QUJD=" }] },
      "attachments[0].content",
      /padding/,
    ],
    [
      "a contentId with spaces",
      { ...base, attachments: [{ filename: "a.png", content: "QQ==", contentId: `my ${SECRET}` }] },
      "attachments[0].contentId",
      /without spaces/,
    ],
    [
      "a contentId with angle brackets",
      { ...base, attachments: [{ filename: "a.png", content: "QQ==", contentId: `<${SECRET}>` }] },
      "attachments[0].contentId",
      /without spaces or < >/,
    ],
    [
      "a multipart content type",
      {
        ...base,
        attachments: [{ filename: "a", content: "QQ==", contentType: `multipart/${SECRET}` }],
      },
      "attachments[0].contentType",
      /multipart/,
    ],
    [
      "a missing filename",
      { ...base, attachments: [{ content: "QQ==" }] },
      "attachments[0].filename",
      /required/,
    ],
    ["an unknown field", { ...base, attachment: SECRET }, "attachment", /not a known field/],
    ["a lone surrogate in the text", { ...base, text: `${SECRET}\uD800` }, "text", /well-formed/],
    ["no recipient", { from: "ann@example.com", to: [] }, "to", /at least one recipient/],
    ["no sender", { to: `${SECRET}@example.com` }, "from", /required/],
    ["a number as address", { ...base, to: [12345] }, "to[0]", /must be an address/],
    ["a wrong token type", { ...base, token: { secret: SECRET } }, "token", /string or a number/],
    [
      "never combined with other notify values",
      { ...base, dsn: { notify: ["never", "success"] } },
      "dsn.notify",
      /only value/,
    ],
    [
      "an envelope id that is not printable ASCII",
      { ...base, dsn: { envelopeId: `${SECRET}\u00e9` } },
      "dsn.envelopeId",
      /printable ASCII/,
    ],
    [
      "a non-boolean allowPartial",
      { ...base, allowPartial: "yes" },
      "allowPartial",
      /true or false/,
    ],
  ];

  for (const [label, input, path, reason] of cases) {
    it(`refuses ${label}, naming ${path}, without echoing the value`, () => {
      const error = refuse(input);
      const issue = error.issues.find((i) => i.path === path);
      assert.ok(issue, `no issue at ${path}: ${JSON.stringify(error.issues)}`);
      assert.match(issue.message, reason);
      assert.ok(error.message.includes(path));
      assert.ok(!error.message.includes(SECRET), "the error message echoes the value");
      assert.ok(!JSON.stringify(error.issues).includes(SECRET), "an issue echoes the value");
    });
  }

  it("reports every problem at once", () => {
    const error = refuse({
      ...base,
      subject: "a\nb",
      to: ["x@@y.z", "ok@example.com", "-a@b.c"],
      attachments: [{ filename: "a", content: "!!" }],
    });
    assert.deepEqual(error.issues.map((i) => i.path).sort(), [
      "attachments[0].content",
      "subject",
      "to[0]",
      "to[2]",
    ]);
  });

  it("refuses input that is not an object, at the root path", () => {
    assert.deepEqual(refuse("hello").issues, [{ path: "", message: "must be a JSON object" }]);
    assert.equal(refuse(null).issues[0].path, "");
  });
});
