import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  headerTextProblem,
  isPrintableAscii,
  isSpacedWords,
  quotedString,
} from "../../src/message/header_text.ts";

describe("headerTextProblem", () => {
  it("refuses CR, LF, NUL, other controls and lone surrogates, accepts tab and Unicode", () => {
    assert.match(headerTextProblem("a\rb")!, /line breaks/);
    assert.match(headerTextProblem("a\nb")!, /line breaks/);
    assert.match(headerTextProblem("a\0b")!, /NUL/);
    assert.match(headerTextProblem("a\x1bb")!, /control/);
    assert.match(headerTextProblem("a\uD800")!, /well-formed/);
    assert.equal(headerTextProblem("Grüße\t😀"), undefined);
  });
});

describe("isSpacedWords, isPrintableAscii and quotedString", () => {
  it("accepts words with single spaces between them only", () => {
    assert.equal(isSpacedWords("Hello big world"), true);
    for (const text of ["", " lead", "trail ", "two  spaces", "tab\there", "Grüße"]) {
      assert.equal(isSpacedWords(text), false, JSON.stringify(text));
    }
    assert.equal(isSpacedWords("a.b c", /[^a-z ]/), false);
  });

  it("tells printable ASCII from the rest", () => {
    assert.equal(isPrintableAscii("Ann O'Neil (Sales) ~"), true);
    assert.equal(isPrintableAscii("tab\t"), false);
    assert.equal(isPrintableAscii("é"), false);
  });

  it("quotes text with backslash and double quote escaped", () => {
    assert.equal(quotedString('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
  });
});
