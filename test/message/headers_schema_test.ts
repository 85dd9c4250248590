import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  HeadersSchema,
  MAX_HEADER_VALUE,
  MAX_HEADERS,
  RESERVED_HEADER_PREFIXES,
  RESERVED_HEADERS,
} from "../../src/message/headers_schema.ts";
import { toValidationIssues, type ValidationIssue } from "../../src/message/validation_issues.ts";

/** The issues of refused headers. */
function issuesOf(headers: unknown): ValidationIssue[] {
  const result = v.safeParse(HeadersSchema, headers);
  assert.ok(!result.success, "the headers were accepted");
  return toValidationIssues(result.issues);
}

describe("HeadersSchema", () => {
  it("accepts custom fields as they are", () => {
    const headers = { "X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@example.com>" };
    assert.deepEqual(v.parse(HeadersSchema, headers), headers);
  });

  it("refuses every reserved name and prefix, whatever its case", () => {
    for (const name of [...RESERVED_HEADERS, ...RESERVED_HEADER_PREFIXES.map((p) => `${p}x`)]) {
      assert.match(issuesOf({ [name.toUpperCase()]: "v" })[0].message, /structural header/, name);
    }
  });

  it("refuses a bad name, a line break and a value too long, never echoing them", () => {
    const issues = issuesOf({
      "Bad Name": "v",
      "X-Break": "a\r\nBcc: secret@example.com",
      "X-Long": "x".repeat(MAX_HEADER_VALUE + 1),
      "X-Number": 1,
    });
    assert.deepEqual(issues.map((issue) => issue.path), [
      '["Bad Name"]',
      '["X-Break"]',
      '["X-Long"]',
      '["X-Number"]',
    ]);
    assert.ok(!JSON.stringify(issues).includes("secret"));
    assert.equal(issues[3].message, "must be a string");
  });

  it("refuses an unfoldable ASCII word and more than the most fields", () => {
    assert.match(issuesOf({ "X-A": "x".repeat(901) })[0].message, /cannot be folded/);
    const many = Object.fromEntries(
      Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`X-H${i}`, "v"]),
    );
    assert.equal(issuesOf(many)[0].message, `must have at most ${MAX_HEADERS} header fields`);
  });
});
