/**
 * SmtpError and isAbortError: the fields a caller of `send` reads off a
 * failure (contract section 4: type, phase, code, enhancedCode, response,
 * rejected, token, cause) and how an abort is told apart from an SMTP error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isAbortError, SmtpError } from "../../src/smtp/errors.ts";

const RCPT_REFUSAL = {
  address: "cy@example.org",
  code: 550,
  enhancedCode: "5.1.1",
  message: "No such user here",
};

describe("SmtpError", () => {
  it("carries every field it was given", () => {
    const cause = new Error("socket closed");
    const error = new SmtpError("rejected", "The server refused 1 of 2 recipients.", {
      phase: "rcpt",
      code: 550,
      enhancedCode: "5.1.1",
      response: "550 5.1.1 No such user here",
      rejected: [RCPT_REFUSAL],
      token: "order-42",
      cause,
    });
    assert.equal(error.type, "rejected");
    assert.equal(error.phase, "rcpt");
    assert.equal(error.code, 550);
    assert.equal(error.enhancedCode, "5.1.1");
    assert.equal(error.response, "550 5.1.1 No such user here");
    assert.deepEqual(error.rejected, [RCPT_REFUSAL]);
    assert.equal(error.token, "order-42");
    assert.equal(error.cause, cause);
    assert.equal(error.message, "The server refused 1 of 2 recipients.");
  });

  it("is an Error named SmtpError, with a stack", () => {
    const error = new SmtpError("timeout", "No greeting within 30000 ms.", { phase: "greeting" });
    assert.ok(error instanceof Error);
    assert.ok(error instanceof SmtpError);
    assert.equal(error.name, "SmtpError");
    assert.match(String(error), /^SmtpError: No greeting within 30000 ms\.$/);
    assert.match(error.stack ?? "", /SmtpError: No greeting/);
  });

  it("defaults rejected to [] and token to null; reply fields stay undefined", () => {
    const error = new SmtpError("connection", "Could not connect to smtp.example.com:587.", {
      phase: "connect",
    });
    assert.deepEqual(error.rejected, []);
    assert.equal(error.token, null);
    assert.equal(error.code, undefined);
    assert.equal(error.enhancedCode, undefined);
    assert.equal(error.response, undefined);
    assert.equal(error.result, undefined);
  });

  it("has no cause property when none was given", () => {
    const error = new SmtpError("protocol", "The greeting was not a 220 reply.", {
      phase: "greeting",
    });
    assert.equal("cause" in error, false);
  });

  it("keeps falsy tokens unchanged (0 and the empty string are tokens too)", () => {
    assert.equal(new SmtpError("auth", "a", { phase: "auth", token: 0 }).token, 0);
    assert.equal(new SmtpError("auth", "a", { phase: "auth", token: "" }).token, "");
  });

  it("gives each error its own rejected list", () => {
    const first = new SmtpError("transient", "a", { phase: "mail" });
    const second = new SmtpError("transient", "b", { phase: "mail" });
    first.rejected.push(RCPT_REFUSAL);
    assert.deepEqual(second.rejected, []);
  });

  it("serialises to JSON with its fields, but not its cause", () => {
    const error = new SmtpError("auth", "Authentication failed (535 5.7.8).", {
      phase: "auth",
      code: 535,
      enhancedCode: "5.7.8",
      cause: new Error("535 5.7.8 details the logger should not get by accident"),
    });
    // Own enumerable fields are what JSON.stringify and structured loggers show.
    assert.deepEqual(JSON.parse(JSON.stringify(error)), {
      name: "SmtpError",
      type: "auth",
      phase: "auth",
      code: 535,
      enhancedCode: "5.7.8",
      rejected: [],
      token: null,
    });
  });
});

describe("isAbortError", () => {
  it("is true for the reason of an aborted AbortController", () => {
    const controller = new AbortController();
    controller.abort();
    assert.equal(isAbortError(controller.signal.reason), true);
  });

  it("is true for AbortSignal.abort() and a hand-made AbortError DOMException", () => {
    assert.equal(isAbortError(AbortSignal.abort().reason), true);
    assert.equal(isAbortError(new DOMException("The send was cancelled.", "AbortError")), true);
  });

  it("is false for a timeout, a custom abort reason and other DOMExceptions", () => {
    assert.equal(isAbortError(new DOMException("Timed out.", "TimeoutError")), false);
    assert.equal(isAbortError(AbortSignal.abort(new Error("stop")).reason), false);
    assert.equal(isAbortError(new DOMException("closed", "InvalidStateError")), false);
  });

  it("is false for a plain Error named AbortError and for a cancelled SmtpError", () => {
    const lookalike = Object.assign(new Error("aborted"), { name: "AbortError" });
    assert.equal(isAbortError(lookalike), false);
    assert.equal(isAbortError(new SmtpError("cancelled", "Cancelled.", { phase: "data" })), false);
  });

  it("is false for non-errors", () => {
    for (const value of [undefined, null, "AbortError", { name: "AbortError" }, 20]) {
      assert.equal(isAbortError(value), false);
    }
  });
});
