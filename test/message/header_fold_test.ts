import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { foldHeader, joinGroups } from "../../src/message/header_fold.ts";

describe("foldHeader", () => {
  it("folds at 78 columns in place of spaces, so unfolding restores the value", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 30, size: "max" })
            .map((t) => t.replace(/\s/g, "x")),
          { maxLength: 30, size: "max" },
        ),
        (tokens) => {
          const header = foldHeader("Subject", tokens);
          assert.ok(header.endsWith("\r\n"));
          for (const line of header.slice(0, -2).split("\r\n")) assert.ok(line.length <= 78);
          assert.equal(
            header.slice(0, -2).replace(/\r\n /g, " "),
            `Subject:${tokens.map((t) => ` ${t}`).join("")}`,
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("foldHeader with extra spaces", () => {
  it("keeps runs of spaces (empty tokens) and never folds before them", () => {
    const header = foldHeader("X-A", ["a", "", "", "b".repeat(80), "", "c"]);
    for (const line of header.split("\r\n").slice(1, -1)) assert.match(line, /^ \S/);
    assert.equal(header.slice(0, -2).replace(/\r\n /g, " "), `X-A: a   ${"b".repeat(80)}  c`);
  });
});

describe("joinGroups", () => {
  it("puts the separator after the last token of every group but the last", () => {
    assert.deepEqual(joinGroups([["Ann", "<a@x.org>"], ["b@x.org"], ["c@x.org"]], ","), [
      "Ann",
      "<a@x.org>,",
      "b@x.org,",
      "c@x.org",
    ]);
    assert.deepEqual(joinGroups([], ";"), []);
  });
});
