/**
 * The bounds on the work one message may cause (issue 11) and the rules of
 * issue 9 on unknown fields and empty messages: every cap is refused with
 * an issue naming the field, huge inputs are refused without recursion,
 * and a message is validated once.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { countAddressList, parseAddressList, parseMailbox } from "../../src/message/address.ts";
import { composeMessage } from "../../src/message/compose.ts";
import { MAX_LIST_ADDRESSES } from "../../src/message/address_schema.ts";
import { MAX_HEADER_VALUE, MAX_HEADERS } from "../../src/message/headers_schema.ts";
import {
  countRecipients,
  isValidatedMessage,
  MAX_SUBJECT,
  parseMessage,
  safeParseMessage,
} from "../../src/message/schema.ts";
import {
  MessageValidationError,
  type ValidationIssue,
} from "../../src/message/validation_issues.ts";

const base = { from: "ann@example.com", to: "bob@example.com", text: "Hello" };

/** The issues of a refused message. */
function issuesOf(input: unknown): ValidationIssue[] {
  const result = safeParseMessage(input);
  assert.ok(!result.success, "the message was accepted");
  return result.issues;
}

/** The one issue at `path`. */
function issueAt(input: unknown, path: string): ValidationIssue {
  const issues = issuesOf(input);
  const found = issues.filter((issue) => issue.path === path);
  assert.equal(found.length, 1, `issues: ${JSON.stringify(issues)}`);
  return found[0];
}

/** `count` addresses as one comma list (about 20 characters each). */
function addressList(count: number): string {
  return Array.from({ length: count }, (_, i) => `user${i}@example.com`).join(", ");
}

describe("subject", () => {
  it(`accepts ${MAX_SUBJECT} characters and refuses one more, naming subject`, () => {
    assert.equal(parseMessage({ ...base, subject: "s".repeat(MAX_SUBJECT) }).subject?.length, 998);
    assert.match(
      issueAt({ ...base, subject: "s".repeat(MAX_SUBJECT + 1) }, "subject").message,
      /at most 998 characters/,
    );
  });

  it("counts characters, not UTF-16 units: 998 emoji are accepted", () => {
    assert.ok(parseMessage({ ...base, subject: "😀".repeat(MAX_SUBJECT) }).subject);
    issueAt({ ...base, subject: "😀".repeat(MAX_SUBJECT + 1) }, "subject");
  });

  it("refuses a 20 MB subject by its length alone", () => {
    const issue = issueAt({ ...base, subject: "word ".repeat(4_000_000) }, "subject");
    assert.equal(issue.message, "must be at most 998 characters");
  });
});

describe("display names", () => {
  const name = (length: number) => "N".repeat(length);

  it("accepts 256 characters in every address form", () => {
    const message = parseMessage({
      ...base,
      from: `${name(256)} <ann@example.com>`,
      to: [{ name: name(256), address: "bob@example.com" }],
      cc: `"${name(256)}" <cy@example.com>`,
    });
    assert.equal(message.from?.name?.length, 256);
    assert.equal(message.to[0].name?.length, 256);
    assert.equal(message.cc[0].name?.length, 256);
  });

  it("refuses 257 characters, naming the field", () => {
    assert.match(
      issueAt({ ...base, from: `${name(257)} <ann@example.com>` }, "from").message,
      /display name is longer than 256 characters/,
    );
    issueAt({ ...base, to: [{ name: name(257), address: "bob@example.com" }] }, "to[0].name");
    issueAt({ ...base, replyTo: `"${name(257)}" <r@example.com>` }, "replyTo");
  });

  it("refuses a 1 MB quoted name without unquoting it", () => {
    const huge = `"${"\\a".repeat(500_000)}" <ann@example.com>`;
    assert.match(issueAt({ ...base, from: huge }, "from").message, /longer than 256/);
  });
});

describe("custom headers", () => {
  it(`accepts a value of ${MAX_HEADER_VALUE} characters and refuses one more`, () => {
    const value = "word ".repeat(MAX_HEADER_VALUE / 5) + "x".repeat(MAX_HEADER_VALUE % 5);
    assert.equal(value.length, MAX_HEADER_VALUE);
    assert.ok(parseMessage({ ...base, headers: { "X-Long": value } }).headers["X-Long"]);
    assert.match(
      issueAt({ ...base, headers: { "X-Long": value + "y" } }, 'headers["X-Long"]').message,
      /at most 4096 characters/,
    );
  });

  it("refuses a 12 MB value before composing anything", () => {
    const issue = issueAt(
      { ...base, headers: { "X-Big": "a ".repeat(6_000_000) } },
      'headers["X-Big"]',
    );
    assert.equal(issue.message, "must be at most 4096 characters");
  });

  it(`accepts ${MAX_HEADERS} header fields and refuses ${MAX_HEADERS + 1}`, () => {
    const fields = (count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`X-Field-${i}`, `${i}`]));
    assert.equal(Object.keys(parseMessage({ ...base, headers: fields(64) }).headers).length, 64);
    assert.match(
      issueAt({ ...base, headers: fields(65) }, "headers").message,
      /at most 64 header fields/,
    );
  });
});

describe("huge address lists", () => {
  // 150 000 addresses in one string: 2.9 MB, the attack of issue 11.
  const huge = addressList(150_000);

  it("refuses a 150 000-address string with an issue on to, without a RangeError", () => {
    assert.ok(huge.length > 2_900_000);
    const issue = issueAt({ ...base, to: huge }, "to");
    assert.equal(issue.message, `must not name more than ${MAX_LIST_ADDRESSES} addresses`);
  });

  it("refuses the same as an array of strings, and in cc and bcc", () => {
    const array = Array.from({ length: 150_000 }, (_, i) => `u${i}@example.com`);
    issueAt({ ...base, to: array }, "to");
    issueAt({ ...base, cc: huge }, "cc");
    issueAt({ ...base, bcc: [huge] }, "bcc");
  });

  it(`accepts exactly ${MAX_LIST_ADDRESSES} addresses in one field`, () => {
    assert.equal(parseMessage({ ...base, to: addressList(MAX_LIST_ADDRESSES) }).to.length, 1000);
  });

  it("counts addresses without parsing them, and stops counting past the maximum", () => {
    assert.equal(countAddressList(huge), 150_000);
    assert.equal(countAddressList(huge, 50), 51);
    assert.equal(countAddressList('"Doe, Jane" <j@example.com>, , b@example.com,'), 2);
    assert.equal(
      countRecipients({ to: huge, cc: ["a@example.com", { address: "b@x.org" }] }),
      150_002,
    );
    assert.equal(countRecipients({ to: huge, cc: huge }, 50), 51);
    assert.equal(countRecipients("not an object"), 0);
  });

  it("parses long lists iteratively, with a count limit checked first", () => {
    assert.equal(parseAddressList(addressList(20_000)).length, 20_000);
    assert.throws(() => parseAddressList(huge, { max: 10 }), RangeError);
  });
});

describe("address parser on long input", () => {
  it("refuses 100 KB addresses and names with a reason, never parsing them char by char", () => {
    assert.throws(() => parseMailbox("a".repeat(100_000) + "@example.com"), /longer than 254/);
    assert.throws(() => parseMailbox("a@" + "b".repeat(100_000) + ".com"), /longer than/);
    assert.throws(() => parseMailbox("N".repeat(100_000) + " <a@example.com>"), /longer than 256/);
    assert.throws(() => parseAddressList(",".repeat(100_000)), /empty/);
    assert.throws(
      () => parseAddressList(`"${"x,".repeat(50_000)}" <a@example.com>, b`),
      /entry 1 of the list: the display name is longer/,
    );
  });
});

describe("unknown fields", () => {
  it("reports every unknown field with its path, not only the first", () => {
    const issues = issuesOf({
      ...base,
      form: "typo@example.com",
      attachment: [],
      Subject: "x",
      attachments: [{ filename: "a.txt", content: "", type: "text/plain" }],
      dsn: { notify: ["never"], ret: "full" },
    });
    const unknown = issues.filter((issue) => issue.message === "is not a known field");
    assert.deepEqual(unknown.map((issue) => issue.path).sort(), [
      "Subject",
      "attachment",
      "attachments[0].type",
      "dsn.ret",
      "form",
    ]);
  });

  it("reports unknown fields of address objects too", () => {
    const issues = issuesOf({ ...base, to: [{ address: "b@example.com", nmae: "B", mail: "x" }] });
    assert.deepEqual(issues.map((issue) => issue.path).sort(), ["to[0].mail", "to[0].nmae"]);
  });
});

describe("empty messages", () => {
  it("refuses a message with no subject, text, html or attachment, naming the fields", () => {
    for (
      const input of [
        { from: "ann@example.com", to: "bob@example.com" },
        { from: "ann@example.com", to: "bob@example.com", subject: "", text: "", attachments: [] },
      ]
    ) {
      const issues = issuesOf(input);
      assert.equal(issues.length, 1);
      assert.equal(issues[0].path, "");
      for (const field of ["subject", "text", "html", "attachments"]) {
        assert.ok(issues[0].message.includes(field), issues[0].message);
      }
    }
  });

  it("accepts any one of them alone", () => {
    const address = { from: "ann@example.com", to: "bob@example.com" };
    for (
      const content of [
        { subject: "s" },
        { text: "t" },
        { html: "<p>h</p>" },
        { attachments: [{ filename: "a.txt", content: "" }] },
      ]
    ) {
      assert.ok(parseMessage({ ...address, ...content }));
    }
  });

  it("says nothing about emptiness while the content fields themselves are invalid", () => {
    const issues = issuesOf({ ...base, text: undefined, subject: 42 });
    assert.deepEqual(issues.map((issue) => issue.path), ["subject"]);
  });
});

describe("validated once", () => {
  it("marks and freezes what parseMessage returns; a copy is not validated", () => {
    const message = parseMessage({
      ...base,
      cc: "Cy <cy@example.org>",
      attachments: [{ filename: "a.txt", content: "aGk=" }],
      headers: { "X-A": "1" },
      dsn: { notify: ["failure"] },
    });
    assert.ok(isValidatedMessage(message));
    for (
      const part of [message, message.to, message.cc[0], message.attachments[0], message.headers]
    ) {
      assert.ok(Object.isFrozen(part));
    }
    assert.ok(Object.isFrozen(message.dsn!.notify));
    assert.throws(() => (message.to as unknown[]).push({ address: "eve@example.net" }), TypeError);
    assert.ok(!isValidatedMessage({ ...message }));
    assert.ok(!isValidatedMessage(JSON.parse(JSON.stringify(message))));
    assert.ok(!isValidatedMessage(null));
  });

  it("gives the same message from safeParseMessage, and composes it", () => {
    const result = safeParseMessage(base, { defaultFrom: "App <app@example.com>" });
    assert.ok(result.success);
    assert.ok(isValidatedMessage(result.message));
    assert.equal(composeMessage(result.message).envelope.to[0], "bob@example.com");
  });

  it("marks and freezes a message given the default sender as its from", () => {
    const { from: _from, ...withoutFrom } = base;
    const message = parseMessage(withoutFrom, { defaultFrom: "App <app@example.com>" });
    assert.ok(isValidatedMessage(message));
    assert.equal(message.from?.address, "app@example.com");
    assert.ok(Object.isFrozen(message) && Object.isFrozen(message.from));
  });

  it("keeps parseMessage's error for invalid input", () => {
    assert.throws(() => parseMessage({ ...base, to: "nope" }), MessageValidationError);
  });
});
