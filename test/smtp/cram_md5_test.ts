/**
 * CRAM-MD5 through the audited @noble/hashes HMAC-MD5: the response matches
 * node:crypto's HMAC-MD5 for any password (longer than a block, non-ASCII) and
 * any challenge, so the library swap changed nothing on the wire.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import fc from "fast-check";
import { createSaslClient } from "../../src/smtp/sasl.ts";

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString("utf8");

describe("CRAM-MD5 digest", () => {
  it("matches node:crypto HMAC-MD5 for random passwords and challenges", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 100 }),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        async (password, challenge) => {
          const client = createSaslClient("CRAM-MD5", { username: "ann", password });
          const answer = unb64(await client.respond(b64(challenge)));
          const expected = createHmac("md5", new TextEncoder().encode(password))
            .update(challenge).digest("hex");
          assert.equal(answer, `ann ${expected}`);
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  it("hashes a password longer than the 64-byte block first (RFC 2104)", async () => {
    const password = "p".repeat(65);
    const client = createSaslClient("CRAM-MD5", { username: "u", password });
    const challenge = new TextEncoder().encode("<1896.697170952@postoffice.example.net>");
    const expected = createHmac("md5", password).update(challenge).digest("hex");
    assert.equal(unb64(await client.respond(b64(challenge))), `u ${expected}`);
  });
});
