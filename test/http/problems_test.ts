/**
 * How outcomes become HTTP responses: the status table of contract section 3
 * (every error type → its status; Retry-After only on 503), the status of a
 * Result, the bodies of requests refused before any SMTP, which token may be
 * echoed, and the `error` part of a Result built from an SmtpError.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  headersForStatus,
  type HttpErrorType,
  problem,
  resultErrorOf,
  STATUS_BY_ERROR_TYPE,
  statusOfResult,
  tokenOf,
} from "../../src/http/problems.ts";
import { SmtpError } from "../../src/smtp/errors.ts";

/** Contract section 3, status table: error type → HTTP status. */
const CONTRACT_STATUS: [HttpErrorType, number][] = [
  ["validation", 400],
  ["unauthorized", 401],
  ["forbidden", 403],
  ["not_found", 404],
  ["method_not_allowed", 405],
  ["conflict", 409],
  ["too_large", 413],
  ["unsupported_media_type", 415],
  ["rejected", 422],
  ["idempotency_mismatch", 422],
  ["rate_limited", 429],
  ["internal", 500],
  ["idempotency_unavailable", 501],
  ["connection", 502],
  ["tls", 502],
  ["auth", 502],
  ["protocol", 502],
  ["unknown_outcome", 502],
  ["transient", 503],
  ["timeout", 504],
];

/** A failed Result with an error of `type`, as the client produces it. */
function failed(type: HttpErrorType) {
  return {
    status: "failed" as const,
    token: null,
    messageId: "<a1b2@example.com>",
    accepted: [],
    rejected: [],
    error: { type, message: "…", phase: "rcpt" as const },
  };
}

describe("STATUS_BY_ERROR_TYPE and statusOfResult", () => {
  for (const [type, status] of CONTRACT_STATUS) {
    it(`answers ${status} for ${type}`, () => {
      assert.equal(STATUS_BY_ERROR_TYPE[type], status);
      assert.equal(statusOfResult(failed(type)), status);
    });
  }

  it("has a status for every error type of the contract and no others", () => {
    const types = [...CONTRACT_STATUS.map(([type]) => type), "cancelled"].sort();
    assert.deepEqual(Object.keys(STATUS_BY_ERROR_TYPE).sort(), types);
  });

  it("answers 200 for a sent Result, even with refused recipients (allowPartial)", () => {
    assert.equal(
      statusOfResult({
        status: "sent",
        token: "t",
        messageId: "<a1b2@example.com>",
        accepted: ["bob@example.org"],
        rejected: [{ address: "cy@example.org", code: 550, message: "No such user" }],
        response: "250 2.0.0 Ok: queued as 4F2A1",
      }),
      200,
    );
  });

  it("answers a cancelled Result with 499, the status only access logs see", () => {
    const cancelled = {
      status: "cancelled" as const,
      token: null,
      accepted: [],
      rejected: [],
      error: { type: "cancelled" as const, message: "Cancelled.", phase: "data" as const },
    };
    assert.equal(statusOfResult(cancelled), 499);
    assert.equal(STATUS_BY_ERROR_TYPE.cancelled, 499);
  });

  it("answers a failed Result without a messageId (nothing was composed) by its type", () => {
    const { messageId: _, ...result } = failed("too_large");
    assert.equal(statusOfResult(result), 413);
  });
});

describe("headersForStatus", () => {
  it("sets Retry-After in delay-seconds on 503", () => {
    const headers = headersForStatus(503);
    assert.deepEqual(Object.keys(headers), ["Retry-After"]);
    assert.match(headers["Retry-After"], /^[1-9][0-9]*$/);
  });

  it("sets no header on any other status of the table", () => {
    for (const status of [200, 400, 401, 403, 413, 415, 422, 499, 502, 504]) {
      assert.deepEqual(headersForStatus(status), {}, String(status));
    }
  });

  it("sets Retry-After on the status of a transient Result only", () => {
    const withRetry = CONTRACT_STATUS
      .filter(([type]) => "Retry-After" in headersForStatus(statusOfResult(failed(type))))
      .map(([type]) => type);
    assert.deepEqual(withRetry, ["transient"]);
  });
});

describe("problem", () => {
  it("builds a failed Result without a message", () => {
    assert.deepEqual(problem("forbidden", "from is not an allowed sender."), {
      status: "failed",
      token: null,
      accepted: [],
      rejected: [],
      error: { type: "forbidden", message: "from is not an allowed sender." },
    });
  });

  it("carries the issues and the token when given", () => {
    const issues = [{ path: "to[1]", message: "the address has no @" }];
    assert.deepEqual(problem("validation", "Invalid.", { issues, token: 42 }), {
      status: "failed",
      token: 42,
      accepted: [],
      rejected: [],
      error: { type: "validation", message: "Invalid.", issues },
    });
  });

  it("takes the routing types that are not SMTP error types", () => {
    assert.equal(problem("not_found", "No route.").error.type, "not_found");
    assert.equal(problem("method_not_allowed", "Use POST.").error.type, "method_not_allowed");
  });
});

describe("tokenOf", () => {
  it("returns string and finite number tokens unchanged", () => {
    assert.equal(tokenOf({ token: "order-42" }), "order-42");
    assert.equal(tokenOf({ token: "" }), "");
    assert.equal(tokenOf({ token: 0 }), 0);
    assert.equal(tokenOf({ token: -1.5 }), -1.5);
  });

  it("returns null for any other token, so nothing else is echoed", () => {
    for (
      const token of [
        null,
        undefined,
        true,
        NaN,
        Infinity,
        { secret: "x" },
        ["a"],
      ]
    ) {
      assert.equal(tokenOf({ token }), null, String(token));
    }
  });

  it("returns null for bodies without a token and for bodies that are not objects", () => {
    for (const body of [{}, null, undefined, "token", 7, ["token"]]) {
      assert.equal(tokenOf(body), null, JSON.stringify(body));
    }
  });

  it("reads the token of a parsed JSON request body", () => {
    assert.equal(tokenOf(JSON.parse('{"to":"bob@example.org","token":"abc"}')), "abc");
  });
});

describe("resultErrorOf", () => {
  it("keeps type, message, phase and the codes", () => {
    const error = new SmtpError("rejected", "Recipient refused: 550 5.1.1 No such user", {
      phase: "rcpt",
      code: 550,
      enhancedCode: "5.1.1",
      response: "550 5.1.1 No such user",
      rejected: [{ address: "cy@example.org", code: 550, message: "No such user" }],
      token: "t-1",
      cause: new Error("inner"),
    });
    assert.deepEqual(resultErrorOf(error), {
      type: "rejected",
      message: "Recipient refused: 550 5.1.1 No such user",
      phase: "rcpt",
      code: 550,
      enhancedCode: "5.1.1",
    });
  });

  it("leaves out the codes an error does not have", () => {
    const error = new SmtpError("timeout", "No reply to DATA within 30000 ms.", { phase: "data" });
    assert.deepEqual(resultErrorOf(error), {
      type: "timeout",
      message: "No reply to DATA within 30000 ms.",
      phase: "data",
    });
  });
});
