import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { AttachmentSchema, base64ScanOf } from "../../src/message/attachment_schema.ts";
import { scanBase64 } from "../../src/message/base64.ts";
import { toValidationIssues } from "../../src/message/validation_issues.ts";

/** The issues of a refused attachment. */
function problems(input: unknown): Record<string, string> {
  const result = v.safeParse(AttachmentSchema, input);
  assert.ok(!result.success, "the attachment was accepted");
  return Object.fromEntries(toValidationIssues(result.issues).map((i) => [i.path, i.message]));
}

describe("AttachmentSchema", () => {
  it("guesses the media type from the file name, and lowercases a given one", () => {
    assert.deepEqual(v.parse(AttachmentSchema, { filename: "a.PDF", content: "QQ==" }), {
      filename: "a.PDF",
      content: "QQ==",
      contentType: "application/pdf",
    });
    const given = v.parse(AttachmentSchema, {
      filename: "a.bin",
      content: "QQ",
      contentType: "Text/Plain",
      contentId: "logo.1@x",
    });
    assert.equal(given.contentType, "text/plain");
    assert.equal(given.contentId, "logo.1@x");
  });

  it("refuses bad content, media type, Content-ID and an empty file name, by field", () => {
    const found = problems({
      filename: " ",
      content: "QQ=A",
      contentType: "text",
      contentId: "<a b>",
      size: 1,
    });
    assert.deepEqual(Object.keys(found).sort(), [
      "content",
      "contentId",
      "contentType",
      "filename",
      "size",
    ]);
    assert.match(found.content, /^is not valid base64/);
    assert.match(found.contentId, /^must be a token/);
    assert.equal(
      problems({ filename: "a", content: "", contentId: "x".repeat(201) }).contentId,
      "must be at most 200 characters",
    );
  });
});

describe("base64ScanOf", () => {
  it("gives the scan made during validation, or a new one for any other attachment", () => {
    const content = "QUJD\r\nREVG";
    const attachment = v.parse(AttachmentSchema, { filename: "a.txt", content });
    assert.deepEqual(base64ScanOf(attachment), scanBase64(content));
    const copy = { ...attachment };
    assert.deepEqual(base64ScanOf(copy), scanBase64(content));
    assert.throws(() => base64ScanOf({ ...attachment, content: "Q" }), TypeError);
  });
});
