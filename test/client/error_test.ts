/**
 * The client's status table agrees with the function's, and EdgemailError
 * carries what the contract promises.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { STATUS_BY_ERROR_TYPE } from "../../src/http/problems.ts";
import { SMTP_ERROR_TYPES } from "../../src/smtp/types.ts";
import {
  EdgemailError,
  type EdgemailErrorType,
  STATUS_BY_TYPE,
  typeForStatus,
} from "../../src/client/error.ts";

/**
 * What a `completed` event's Result can carry: the SMTP outcomes, `internal` among them.
 * The server's own list, so that a type added there and missing in the client fails here.
 */
const SSE_RESULT_TYPES: readonly EdgemailErrorType[] = SMTP_ERROR_TYPES;

describe("client status table", () => {
  it("gives every type an SSE Result can carry the status the function answers it with", () => {
    const server: Record<string, number> = STATUS_BY_ERROR_TYPE;
    for (const type of SSE_RESULT_TYPES) {
      assert.equal(STATUS_BY_TYPE[type], server[type] ?? (type === "internal" ? 500 : undefined));
    }
    for (const [type, status] of Object.entries(server)) {
      const client = STATUS_BY_TYPE[type as EdgemailErrorType];
      if (client !== undefined) assert.equal(client, status, type);
    }
  });

  it("names the type of an answer without an edgemail body by its status", () => {
    assert.equal(typeForStatus(404), "not_found");
    assert.equal(typeForStatus(413), "too_large");
    assert.equal(typeForStatus(429), "rate_limited");
    assert.equal(typeForStatus(502), "connection");
    assert.equal(typeForStatus(504), "timeout");
    assert.equal(typeForStatus(200), "protocol");
    assert.equal(typeForStatus(418), "protocol");
  });
});

describe("EdgemailError", () => {
  it("is an Error with type, status, result, issues, retryAfter and cause", () => {
    const cause = new TypeError("Failed to fetch");
    const issues = [{ path: "to[0]", message: "is not an address" }];
    const error = new EdgemailError("bad", {
      type: "validation",
      status: 400,
      issues,
      retryAfter: 5,
      cause,
    });
    assert.ok(error instanceof Error);
    assert.equal(error.name, "EdgemailError");
    assert.equal(error.message, "bad");
    assert.equal(error.type, "validation");
    assert.equal(error.status, 400);
    assert.deepEqual(error.issues, issues);
    assert.equal(error.retryAfter, 5);
    assert.equal(error.cause, cause);
    assert.equal(error.result, undefined);
  });
});
