import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withDeadline } from "../../src/smtp/deadline.ts";
import { SmtpError } from "../../src/smtp/errors.ts";

const never = () => new Promise<never>(() => {});

describe("withDeadline", () => {
  it("resolves with the value when the promise settles in time", async () => {
    const value = await withDeadline(Promise.resolve(42), {
      timeoutMs: 1000,
      phase: "mail",
      what: "a value",
    });
    assert.equal(value, 42);
  });

  it("rejects with a timeout SmtpError carrying the phase", async () => {
    await assert.rejects(
      withDeadline(never(), { timeoutMs: 20, phase: "rcpt", what: "the reply to RCPT TO" }),
      (error: unknown) => {
        assert.ok(error instanceof SmtpError);
        assert.equal(error.type, "timeout");
        assert.equal(error.phase, "rcpt");
        assert.match(error.message, /20 ms.*RCPT TO/);
        return true;
      },
    );
  });

  it("rejects with an AbortError when the signal aborts, before or during the wait", async () => {
    const controller = new AbortController();
    const waiting = withDeadline(never(), {
      timeoutMs: 5000,
      phase: "data",
      what: "x",
      signal: controller.signal,
    });
    controller.abort();
    await assert.rejects(waiting, { name: "AbortError" });
    await assert.rejects(
      withDeadline(Promise.resolve(1), {
        timeoutMs: 5000,
        phase: "data",
        what: "x",
        signal: AbortSignal.abort(),
      }),
      { name: "AbortError" },
    );
  });

  it("passes the original rejection through", async () => {
    await assert.rejects(
      withDeadline(Promise.reject(new Error("boom")), { timeoutMs: 100, phase: "mail", what: "x" }),
      { message: "boom" },
    );
  });
});
