import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { concatBytes } from "../../src/smtp/bytes.ts";

describe("concatBytes", () => {
  it("joins parts in order", () => {
    const joined = concatBytes(new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3]));
    assert.deepEqual([...joined], [1, 2, 3]);
  });

  it("returns a lone non-empty part without copying, and empty for nothing", () => {
    const part = new Uint8Array([9]);
    assert.equal(concatBytes(new Uint8Array(0), part), part);
    assert.equal(concatBytes().length, 0);
  });
});
