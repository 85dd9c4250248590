/**
 * The recipient cap of the HTTP function counted before validation
 * (issue 11): a body naming more than MAX_RECIPIENTS addresses is a 413
 * `too_large` found with one scan, however the addresses are written.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../src/http/config.ts";
import { recipientCountRefusal } from "../../src/http/policy.ts";

const config = loadConfig({
  SMTP_HOST: "smtp.example.com",
  API_KEYS: "recipient-count-key-123",
  MAX_RECIPIENTS: "3",
});

/** `count` addresses as one comma list. */
function list(count: number): string {
  return Array.from({ length: count }, (_, i) => `user${i}@example.com`).join(",");
}

describe("recipientCountRefusal", () => {
  it("admits MAX_RECIPIENTS over to, cc and bcc, in any form", () => {
    const body = { to: "a@example.com, B <b@example.com>", bcc: [{ address: "c@example.com" }] };
    assert.equal(recipientCountRefusal(body, config), undefined);
    assert.equal(
      recipientCountRefusal({ to: "a@example.com,,", replyTo: list(9) }, config),
      undefined,
    );
  });

  it("refuses one more with 413 too_large, echoing the token", () => {
    const refusal = recipientCountRefusal({
      to: list(2),
      cc: ["x@example.com", "y@example.com"],
      token: 7,
    }, config);
    assert.equal(refusal?.status, 413);
    assert.equal(refusal?.body.error.type, "too_large");
    assert.match(refusal!.body.error.message, /more than 3 recipients.*MAX_RECIPIENTS/);
    assert.equal(refusal?.body.token, 7);
  });

  it("refuses a 150 000-address to string (2.9 MB) with 413", () => {
    const huge = list(150_000);
    assert.ok(huge.length > 2_900_000);
    assert.equal(recipientCountRefusal({ to: huge }, config)?.status, 413);
  });

  it("names the batch message that has too many", () => {
    const body = { messages: [{ to: "a@example.com" }, { to: list(1), bcc: list(5) }] };
    const refusal = recipientCountRefusal(body, config, { batch: true });
    assert.equal(refusal?.status, 413);
    assert.match(refusal!.body.error.message, /^messages\[1\] has more than 3/);
    assert.equal(recipientCountRefusal({ messages: "nope" }, config, { batch: true }), undefined);
  });

  it("leaves other shapes to validation", () => {
    for (const body of [null, "text", 42, [], { to: 5 }]) {
      assert.equal(recipientCountRefusal(body, config), undefined);
    }
  });
});
