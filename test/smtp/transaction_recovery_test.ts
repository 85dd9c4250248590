import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SmtpError } from "../../src/smtp/errors.ts";
import {
  closingError,
  settlementAfterFailure,
  settlementOfRefusal,
  unknownOutcome,
} from "../../src/smtp/transaction_recovery.ts";
import { flightOf, reply } from "../support/transaction_fixtures.ts";

const lost = new SmtpError("connection", "The connection was reset.", { phase: "mail" });

describe("settlementAfterFailure", () => {
  it("retries a send behind an earlier one that nothing reached, in its own phase", () => {
    const { flight } = flightOf(undefined, { ordinal: 1 });
    flight.mailReply = reply(250);
    const settlement = settlementAfterFailure(flight, lost);
    assert.equal(settlement.ok, false);
    if (settlement.ok) return;
    assert.equal(settlement.retry, true);
    assert.equal((settlement.error as SmtpError).type, "connection");
    assert.equal((settlement.error as SmtpError).phase, "rcpt");
  });

  it("does not retry the first send of a connection (the server may be the fault)", () => {
    const { flight } = flightOf(undefined, { ordinal: 0 });
    const settlement = settlementAfterFailure(flight, lost);
    assert.equal(!settlement.ok && settlement.retry, false);
  });

  it("reports unknown_outcome, never retried, once the data end was written", () => {
    const { flight } = flightOf(undefined, { ordinal: 3 });
    flight.mailReply = reply(250);
    flight.rcptReplies.push(reply(250));
    flight.dataReply = reply(354);
    flight.endQueued = true;
    flight.dataWritten();
    const settlement = settlementAfterFailure(flight, lost);
    assert.equal(settlement.ok, false);
    if (settlement.ok) return;
    assert.equal(settlement.retry, false);
    const error = settlement.error as SmtpError;
    assert.equal(error.type, "unknown_outcome");
    assert.equal(error.phase, "message");
    assert.equal(error.cause, lost);
  });

  it("keeps a refusal or an acceptance already read", () => {
    const { flight } = flightOf(undefined, { ordinal: 2 });
    flight.mailReply = reply(550, "5.7.1 no");
    const refused = settlementAfterFailure(flight, lost);
    assert.equal(!refused.ok && (refused.error as SmtpError).type, "rejected");
    assert.equal(!refused.ok && refused.retry, false);
    const { flight: done } = flightOf();
    done.mailReply = reply(250);
    done.rcptReplies.push(reply(250));
    done.dataReply = reply(354);
    done.endReply = reply(250, "2.0.0 queued");
    assert.equal(settlementAfterFailure(done, lost).ok, true);
  });
});

describe("settlementOfRefusal", () => {
  const error = new SmtpError("rejected", "refused", { phase: "mail" });

  it("retries in lock-step when a pipelining server refuses our pipelining", () => {
    const { flight } = flightOf();
    const sync = reply(554, "5.5.0 improper command pipelining");
    assert.deepEqual(settlementOfRefusal(flight, error, { reply: sync, pipelining: true }), {
      ok: false,
      error,
      retry: true,
      lockStep: true,
    });
    assert.equal(
      settlementOfRefusal(flight, error, { reply: sync, pipelining: false }).retry,
      false,
    );
  });

  it("retries a send behind an earlier one when the server closes with 421", () => {
    const closing = reply(421, "4.3.2 shutting down");
    const { flight: behind } = flightOf(undefined, { ordinal: 1 });
    assert.equal(
      settlementOfRefusal(behind, error, { reply: closing, pipelining: true }).retry,
      true,
    );
    const { flight: first } = flightOf(undefined, { ordinal: 0 });
    assert.equal(
      settlementOfRefusal(first, error, { reply: closing, pipelining: true }).retry,
      false,
    );
    behind.endQueued = true;
    assert.equal(
      settlementOfRefusal(behind, error, { reply: closing, pipelining: true }).retry,
      false,
      "never after the data end",
    );
  });
});

describe("closingError and unknownOutcome", () => {
  it("says the server is closing, with its code", () => {
    const error = closingError(reply(421, "4.3.2 bye"), "rcpt");
    assert.equal(error.type, "transient");
    assert.equal(error.code, 421);
    assert.equal(error.enhancedCode, "4.3.2");
    assert.equal(error.phase, "rcpt");
    assert.match(error.message, /closing the connection: 421 bye/);
  });

  it("names a garbled reply apart from a lost connection", () => {
    const garbled = new SmtpError("protocol", "bad reply", { phase: "message" });
    assert.match(unknownOutcome(garbled).message, /an invalid reply came back/);
    assert.match(unknownOutcome(lost).message, /the connection was lost.*not retried/);
  });
});
