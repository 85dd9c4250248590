import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  bodyText,
  checkedString,
  exactObject,
  headerText,
  lengthProblem,
} from "../../src/message/field_schemas.ts";
import { toValidationIssues, type ValidationIssue } from "../../src/message/validation_issues.ts";

/** The issues `schema` reports for `input`. */
function issues(schema: v.GenericSchema, input: unknown): ValidationIssue[] {
  const result = v.safeParse(schema, input);
  return result.success ? [] : toValidationIssues(result.issues);
}

describe("exactObject", () => {
  const schema = exactObject({ name: v.string("must be a string") }, "an object { name }");

  it("reports every unknown key at its path, and a missing one as required", () => {
    assert.deepEqual(issues(schema, { name: "a", x: 1, y: 2 }), [
      { path: "x", message: "is not a known field" },
      { path: "y", message: "is not a known field" },
    ]);
    assert.deepEqual(issues(schema, {}), [{ path: "name", message: "is required" }]);
  });

  it("says what it must be when the input is not an object", () => {
    assert.deepEqual(issues(schema, "name"), [{ path: "", message: "must be an object { name }" }]);
  });
});

describe("checkedString", () => {
  const schema = checkedString(
    "must be a word",
    (text) => text.includes(" ") ? "has a space" : undefined,
  );

  it("passes what the check accepts and reports its reason otherwise", () => {
    assert.equal(v.parse(schema, "word"), "word");
    assert.deepEqual(issues(schema, "two words"), [{ path: "", message: "has a space" }]);
    assert.deepEqual(issues(schema, 7), [{ path: "", message: "must be a word" }]);
  });
});

describe("headerText and bodyText", () => {
  it("bounds header text in code points and refuses line breaks", () => {
    assert.equal(lengthProblem("😀😀", 2), undefined);
    assert.equal(lengthProblem("😀😀😀", 2), "must be at most 2 characters");
    assert.deepEqual(issues(headerText("a string", 2), "abc"), [{
      path: "",
      message: "must be at most 2 characters",
    }]);
    assert.deepEqual(issues(headerText("a string", 10), "a\nb"), [{
      path: "",
      message: "must not contain line breaks (CR or LF)",
    }]);
  });

  it("accepts any well-formed body text, and refuses a lone surrogate", () => {
    assert.equal(v.parse(bodyText("a string"), "line 1\r\nline 2\0"), "line 1\r\nline 2\0");
    assert.deepEqual(issues(bodyText("a string"), "\ud800"), [{
      path: "",
      message: "is not well-formed Unicode (it contains a lone surrogate)",
    }]);
  });
});
