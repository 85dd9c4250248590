import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { flightOf, reply, transaction } from "../support/transaction_fixtures.ts";

describe("Flight", () => {
  it("names the phase a failure belongs to as the replies come in", () => {
    const { flight } = flightOf(transaction());
    assert.equal(flight.phase, "mail");
    flight.mailReply = reply(250);
    assert.equal(flight.phase, "rcpt");
    flight.rcptReplies.push(reply(250));
    assert.equal(flight.phase, "data");
    flight.dataReply = reply(354);
    assert.equal(flight.phase, "message");
  });

  it("settles at once with an AbortError when cancelled before its data end is queued", () => {
    const controller = new AbortController();
    const { flight, settlements } = flightOf(transaction(), {
      step: { signal: controller.signal },
    });
    let cancelled = 0;
    flight.watchCancellation(() => cancelled++);
    controller.abort();
    assert.equal(cancelled, 1);
    assert.equal(settlements.length, 1);
    const [settlement] = settlements;
    assert.equal(settlement.ok, false);
    if (!settlement.ok) {
      assert.equal((settlement.error as Error).name, "AbortError");
      assert.equal(settlement.retry, false);
    }
    flight.finish({ ok: true, outcome: { accepted: [], rejected: [], response: "250" } });
    assert.equal(settlements.length, 1, "settled exactly once");
  });

  it("ignores cancellation once the end of its data is queued", () => {
    const controller = new AbortController();
    const { flight, settlements } = flightOf(transaction(), {
      step: { signal: controller.signal },
    });
    flight.watchCancellation(() => assert.fail("no cancellation after the data end"));
    flight.endQueued = true;
    controller.abort();
    assert.equal(flight.cancelled, false);
    assert.deepEqual(settlements, []);
  });

  it("tells onDataWritten once the data end is written; a throwing listener is ignored", () => {
    let calls = 0;
    const { flight } = flightOf(transaction(), {
      step: {
        onDataWritten: () => {
          calls++;
          throw new Error("listener bug");
        },
      },
    });
    flight.dataWritten();
    assert.equal(flight.endWritten, true);
    assert.equal(calls, 1);
  });
});
