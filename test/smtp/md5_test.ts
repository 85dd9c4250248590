import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fc from "fast-check";
import { hmacMd5, md5, toHex } from "../../src/smtp/md5.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const hex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));

describe("md5", () => {
  // RFC 1321 appendix A.5.
  const vectors: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"],
  ];
  for (const [input, digest] of vectors) {
    it(`RFC 1321: md5(${JSON.stringify(input.slice(0, 20))}…)`, () => {
      assert.equal(toHex(md5(utf8(input))), digest);
    });
  }

  it("matches node:crypto on random input of every length around the block edges", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        assert.equal(toHex(md5(data)), createHash("md5").update(data).digest("hex"));
      }),
      { numRuns: 300 },
    );
    for (let length = 50; length <= 140; length++) {
      const data = new Uint8Array(length).map((_, i) => (i * 31 + length) & 0xff);
      assert.equal(toHex(md5(data)), createHash("md5").update(data).digest("hex"), `${length}`);
    }
  });

  it("hashes a view into a larger buffer by its own bytes only", () => {
    const backing = utf8("xxabcxx");
    assert.equal(toHex(md5(backing.subarray(2, 5))), "900150983cd24fb0d6963f7d28e17f72");
  });
});

describe("hmacMd5", () => {
  // RFC 2202 section 2: test cases 1 to 7 for HMAC-MD5.
  const cases: [string, Uint8Array, Uint8Array, string][] = [
    ["1", new Uint8Array(16).fill(0x0b), utf8("Hi There"), "9294727a3638bb1c13f48ef8158bfc9d"],
    ["2", utf8("Jefe"), utf8("what do ya want for nothing?"), "750c783e6ab0b503eaa86e310a5db738"],
    [
      "3",
      new Uint8Array(16).fill(0xaa),
      new Uint8Array(50).fill(0xdd),
      "56be34521d144c88dbb8c733f0e8b3f6",
    ],
    [
      "4",
      hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
      new Uint8Array(50).fill(0xcd),
      "697eaf0aca3a3aea3a75164746ffaa79",
    ],
    [
      "5",
      new Uint8Array(16).fill(0x0c),
      utf8("Test With Truncation"),
      "56461ef2342edc00f9bab995690efd4c",
    ],
    [
      "6",
      new Uint8Array(80).fill(0xaa),
      utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
      "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
    ],
    [
      "7",
      new Uint8Array(80).fill(0xaa),
      utf8("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"),
      "6f630fad67cda0ee1fb1f562db3aa53e",
    ],
  ];
  for (const [name, key, data, digest] of cases) {
    it(`RFC 2202 test case ${name}`, () => {
      assert.equal(toHex(hmacMd5(key, data)), digest);
    });
  }

  it("matches node:crypto for random keys and data", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 150 }),
        fc.uint8Array({ maxLength: 200 }),
        (key, data) => {
          assert.equal(
            toHex(hmacMd5(key, data)),
            createHmac("md5", key).update(data).digest("hex"),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("toHex", () => {
  it("writes two lower-case digits per byte", () => {
    assert.equal(toHex(new Uint8Array([0, 9, 10, 255])), "00090aff");
    assert.equal(toHex(new Uint8Array()), "");
  });
});
