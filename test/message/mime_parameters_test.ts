import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeWords } from "postal-mime";
import { rfc2047ParameterTokens, rfc2231Tokens } from "../../src/message/mime_parameters.ts";

describe("rfc2231Tokens", () => {
  it("quotes short ASCII and splits long or non-ASCII values into continuations", () => {
    assert.deepEqual(rfc2231Tokens("filename", 'a "b".txt'), ['filename="a \\"b\\".txt"']);
    assert.deepEqual(rfc2231Tokens("filename", "€.txt"), ["filename*=UTF-8''%E2%82%AC.txt"]);
    const tokens = rfc2231Tokens("filename", "ü".repeat(40));
    assert.ok(tokens.length > 1);
    assert.match(tokens[0], /^filename\*0\*=UTF-8''(%C3%BC)+$/);
    assert.match(tokens[1], /^filename\*1\*=(%C3%BC)+$/);
    for (const token of tokens) assert.ok(token.length <= 76, `token of ${token.length}`);
  });
});

describe("rfc2047ParameterTokens", () => {
  it("quotes short ASCII, else wraps encoded-words in one quoted-string", () => {
    assert.deepEqual(rfc2047ParameterTokens("name", "a.txt"), ['name="a.txt"']);
    const tokens = rfc2047ParameterTokens("name", "Résumé ".repeat(12) + ".pdf");
    assert.ok(tokens.length > 1);
    assert.match(tokens[0], /^name="=\?UTF-8\?/);
    assert.ok(tokens[tokens.length - 1].endsWith('?="'));
    const value = tokens.join(" ").slice('name="'.length, -1);
    assert.equal(decodeWords(value), "Résumé ".repeat(12) + ".pdf");
  });
});
