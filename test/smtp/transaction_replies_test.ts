import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isSyncError, verdict } from "../../src/smtp/transaction_replies.ts";
import { capabilities, flightOf, reply, transaction } from "../support/transaction_fixtures.ts";

const two = { from: "ann@example.com", to: ["bob@example.org", "cy@example.org"] };

describe("verdict", () => {
  it("is pending until every RCPT and DATA is answered, then go after a 354", () => {
    const { flight } = flightOf(transaction({ envelope: two }));
    assert.equal(verdict(flight).state, "pending");
    flight.mailReply = reply(250);
    flight.rcptReplies.push(reply(250));
    assert.equal(verdict(flight).state, "pending");
    flight.rcptReplies.push(reply(250));
    assert.equal(verdict(flight).state, "pending");
    flight.dataReply = reply(354, "go ahead");
    assert.equal(verdict(flight).state, "go");
    flight.endReply = reply(250, "2.0.0 queued as A1");
    assert.deepEqual(verdict(flight), {
      state: "accepted",
      outcome: {
        accepted: ["bob@example.org", "cy@example.org"],
        rejected: [],
        response: "250 2.0.0 queued as A1",
      },
    });
  });

  it("decides on a refused sender at once, whatever comes after it", () => {
    const { flight } = flightOf();
    flight.mailReply = reply(550, "5.7.1 sender refused");
    flight.rcptReplies.push(reply(503, "5.5.1 need MAIL"));
    const decided = verdict(flight);
    assert.equal(decided.state, "refused");
    if (decided.state !== "refused") return;
    assert.equal(decided.error.type, "rejected");
    assert.equal(decided.error.phase, "mail");
    assert.equal(decided.error.code, 550);
  });

  it("refuses the whole message when one recipient is refused, unless allowPartial", () => {
    const refusedOne = (allowPartial: boolean) => {
      const { flight } = flightOf(transaction({ envelope: two, allowPartial }));
      flight.mailReply = reply(250);
      flight.rcptReplies.push(reply(250), reply(550, "5.1.1 no such user"));
      flight.dataReply = reply(354);
      flight.endReply = reply(250, "2.0.0 queued");
      return verdict(flight);
    };
    const strict = refusedOne(false);
    assert.equal(strict.state, "refused");
    if (strict.state === "refused") {
      assert.equal(strict.error.type, "rejected");
      assert.equal(strict.error.phase, "rcpt");
      assert.match(strict.error.message, /refused 1 of 2 recipients; nothing was sent/);
      assert.deepEqual(strict.error.rejected.map((r) => r.address), ["cy@example.org"]);
    }
    const partial = refusedOne(true);
    assert.equal(partial.state, "accepted");
    if (partial.state === "accepted") {
      assert.deepEqual(partial.outcome.accepted, ["bob@example.org"]);
      assert.deepEqual(partial.outcome.rejected, [{
        address: "cy@example.org",
        code: 550,
        enhancedCode: "5.1.1",
        message: "no such user",
      }]);
    }
  });

  it("calls every-recipient refusals transient when all are temporary (4xx, or 552)", () => {
    for (const [codes, type] of [[[451, 552], "transient"], [[451, 550], "rejected"]] as const) {
      const { flight } = flightOf(transaction({ envelope: two }));
      flight.mailReply = reply(250);
      flight.rcptReplies.push(...codes.map((code) => reply(code, "no")));
      const decided = verdict(flight);
      assert.equal(decided.state, "refused");
      if (decided.state === "refused") {
        assert.equal(decided.error.type, type);
        assert.match(decided.error.message, /refused every recipient \(2\)/);
      }
    }
  });

  it("refuses on DATA other than 354, a refused BDAT chunk, or a refused end of data", () => {
    const { flight: data } = flightOf();
    data.mailReply = reply(250);
    data.rcptReplies.push(reply(250));
    data.dataReply = reply(554, "5.3.0 no");
    assert.deepEqual(
      [verdict(data).state, (verdict(data) as { error: { phase: string } }).error.phase],
      ["refused", "data"],
    );
    const { flight: chunked } = flightOf(transaction(), {
      caps: capabilities("PIPELINING", "CHUNKING"),
    });
    chunked.mailReply = reply(250);
    chunked.rcptReplies.push(reply(250));
    assert.equal(verdict(chunked).state, "pending", "BDAT has no go: it waits for the end");
    chunked.chunkReplies.push(reply(250), reply(452, "4.3.1 full"));
    chunked.endReply = reply(250);
    const decided = verdict(chunked);
    assert.equal(decided.state, "refused");
    if (decided.state === "refused") {
      assert.equal(decided.error.type, "transient");
      assert.equal(decided.error.phase, "message");
    }
    data.dataReply = reply(354);
    data.endReply = reply(554, "5.7.1 spam");
    const end = verdict(data);
    assert.equal(end.state, "refused");
    if (end.state === "refused") assert.equal(end.error.code, 554);
  });

  it("reports whether DSN was offered when the message asked for it", () => {
    const { flight } = flightOf(transaction({ dsn: { notify: ["never"] } }), {
      caps: capabilities("PIPELINING", "DSN"),
    });
    flight.mailReply = reply(250);
    flight.rcptReplies.push(reply(250));
    flight.dataReply = reply(354);
    flight.endReply = reply(250);
    const decided = verdict(flight);
    assert.equal(decided.state, "accepted");
    if (decided.state === "accepted") {
      assert.deepEqual(decided.outcome.dsn, { requested: true, supported: true });
    }
  });
});

describe("isSyncError", () => {
  it("recognises a refusal of our pipelining, and nothing else", () => {
    assert.equal(isSyncError(reply(554, "5.5.0 Error: improper command pipelining")), true);
    assert.equal(isSyncError(reply(503, "5.5.0 Synchronization error")), true);
    assert.equal(isSyncError(reply(554, "5.7.1 Relay access denied")), false);
    assert.equal(isSyncError(reply(451, "pipelining busy")), false);
  });
});
