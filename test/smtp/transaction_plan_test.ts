import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SmtpError } from "../../src/smtp/errors.ts";
import { planTransaction } from "../../src/smtp/transaction_plan.ts";
import { capabilities, transaction } from "../support/transaction_fixtures.ts";

describe("planTransaction", () => {
  it("adds SIZE, BODY and the DSN parameters only where the server offers them", () => {
    const tx = transaction({
      eightBit: true,
      dsn: { notify: ["failure"], return: "headers", envelopeId: "e1" },
    });
    assert.deepEqual(planTransaction(tx, capabilities(), true), {
      commands: ["MAIL FROM:<ann@example.com>", "RCPT TO:<bob@example.org>"],
      chunked: false,
      dsnSupported: false,
    });
    assert.deepEqual(planTransaction(tx, capabilities("SIZE 1000", "8BITMIME", "DSN"), true), {
      commands: [
        `MAIL FROM:<ann@example.com> SIZE=${tx.size} BODY=8BITMIME RET=HDRS ENVID=e1`,
        "RCPT TO:<bob@example.org> NOTIFY=FAILURE ORCPT=rfc822;bob@example.org",
      ],
      chunked: false,
      dsnSupported: true,
    });
  });

  it("sends BDAT only when pipelining with CHUNKING, for one recipient or allowPartial", () => {
    const chunking = capabilities("PIPELINING", "CHUNKING");
    const two = { from: "ann@example.com", to: ["bob@example.org", "cy@example.org"] };
    assert.equal(planTransaction(transaction(), chunking, true).chunked, true);
    assert.equal(planTransaction(transaction(), chunking, false).chunked, false);
    assert.equal(planTransaction(transaction(), capabilities("PIPELINING"), true).chunked, false);
    assert.equal(planTransaction(transaction({ envelope: two }), chunking, true).chunked, false);
    assert.equal(
      planTransaction(transaction({ envelope: two, allowPartial: true }), chunking, true).chunked,
      true,
    );
  });

  it("asks for SMTPUTF8 for a non-ASCII mailbox, and refuses when the server lacks it", () => {
    const tx = transaction({ envelope: { from: "ann@example.com", to: ["zoë@example.org"] } });
    assert.equal(
      planTransaction(tx, capabilities("SMTPUTF8", "8BITMIME"), false).commands[0],
      "MAIL FROM:<ann@example.com> BODY=8BITMIME SMTPUTF8",
    );
    assert.throws(
      () => planTransaction(tx, capabilities("8BITMIME"), false),
      (error) =>
        error instanceof SmtpError && error.type === "rejected" && error.phase === "mail" &&
        /SMTPUTF8/.test(error.message),
    );
  });

  it("refuses a message over the server's SIZE limit with 552 5.3.4, naming both sizes", () => {
    assert.throws(
      () => planTransaction(transaction({ size: 2000 }), capabilities("SIZE 1000"), true),
      (error) =>
        error instanceof SmtpError && error.type === "rejected" && error.code === 552 &&
        error.enhancedCode === "5.3.4" && /2000 octets.*at most 1000/.test(error.message),
    );
    assert.doesNotThrow(() =>
      planTransaction(transaction({ size: 1000 }), capabilities("SIZE 1000"), true)
    );
  });
});
