import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeWords } from "postal-mime";
import {
  displayNameTokens,
  encodeWords,
  isPlainHeaderText,
  unstructuredTokens,
} from "../../src/message/encoded_words.ts";

describe("encodeWords", () => {
  it("produces words of at most 75 characters that decode back exactly", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 300, size: "max" }),
        fc.integer({ min: 10, max: 75 }),
        (text, firstLength) => {
          const words = encodeWords(text, { firstLength });
          for (const word of words) {
            assert.ok(word.length <= 75, `word of ${word.length}`);
            assert.match(word, /^=\?UTF-8\?[QB]\?[A-Za-z0-9!*+\-/=_]*\?=$/);
          }
          assert.ok(words[0].length <= Math.max(firstLength, 24));
          assert.equal(decodeWords(words.join(" ")), text);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("never splits a UTF-8 sequence across words", () => {
    const words = encodeWords("😀".repeat(40));
    assert.ok(words.length > 1);
    for (const word of words) {
      const decoded = decodeWords(word);
      assert.ok(decoded.isWellFormed() && !decoded.includes("\uFFFD"));
      assert.ok(/^(?:😀)+$/.test(decoded));
    }
  });

  it("chooses Q for mostly ASCII and B for mostly non-ASCII text", () => {
    assert.match(encodeWords("Café au lait")[0], /^=\?UTF-8\?Q\?/);
    assert.match(encodeWords("日本語のテキスト")[0], /^=\?UTF-8\?B\?/);
  });
});

describe("unstructuredTokens and displayNameTokens", () => {
  it("keeps plain subjects as words and encodes anything else", () => {
    assert.equal(isPlainHeaderText("Your order has shipped"), true);
    assert.deepEqual(unstructuredTokens("Subject", "Your order"), ["Your", "order"]);
    for (const text of ["Grüße", "two  spaces", "looks =?like?= a word", "x".repeat(77)]) {
      assert.equal(isPlainHeaderText(text), false, text);
      assert.equal(decodeWords(unstructuredTokens("Subject", text).join(" ")), text);
    }
  });

  it("writes names as atoms, a quoted-string, or encoded-words", () => {
    assert.deepEqual(displayNameTokens("Ann Lee"), ["Ann", "Lee"]);
    assert.deepEqual(displayNameTokens('Lee, Ann "AL"'), ['"Lee, Ann \\"AL\\""']);
    const words = displayNameTokens("Zoë");
    assert.match(words[0], /^=\?UTF-8\?/);
    assert.equal(decodeWords(words.join(" ")), "Zoë");
  });
});
