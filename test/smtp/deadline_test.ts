import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DeadlineTimer, withDeadline } from "../../src/smtp/deadline.ts";
import { SmtpError } from "../../src/smtp/errors.ts";

const never = () => new Promise<never>(() => {});

/** Aborting the signal while `guard` waits on a step that never settles rejects with AbortError. */
async function assertAbortsDuringWait(guard: typeof withDeadline): Promise<void> {
  const controller = new AbortController();
  const waiting = guard(never(), {
    timeoutMs: 5000,
    phase: "data",
    what: "x",
    signal: controller.signal,
  });
  controller.abort();
  await assert.rejects(waiting, { name: "AbortError" });
}

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
    await assertAbortsDuringWait(withDeadline);
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

describe("DeadlineTimer", () => {
  it("resolves steps that settle in time and fails each late one at its own deadline", async () => {
    const timer = new DeadlineTimer();
    const started = Date.now();
    const slow = timer.guard(never(), { timeoutMs: 600, phase: "data", what: "the slow one" });
    // An earlier deadline after a later one moves the shared timer.
    const fast = timer.guard(never(), { timeoutMs: 30, phase: "mail", what: "the fast one" });
    assert.equal(
      await timer.guard(Promise.resolve("in time"), { timeoutMs: 10, phase: "rcpt", what: "x" }),
      "in time",
    );
    await assert.rejects(fast, (error: unknown) => {
      assert.ok(error instanceof SmtpError);
      assert.equal(error.type, "timeout");
      assert.equal(error.phase, "mail");
      assert.match(error.message, /30 ms.*the fast one/);
      return true;
    });
    assert.ok(Date.now() - started < 600, "the fast step failed before the slow one's deadline");
    await assert.rejects(slow, /600 ms.*the slow one/);
    assert.ok(Date.now() - started >= 599);
    timer.stop();
  });

  it("names the whole deadline (reportedMs) and passes a step's own rejection on", async () => {
    const timer = new DeadlineTimer();
    await assert.rejects(
      timer.guard(never(), { timeoutMs: 5, reportedMs: 800, phase: "mail", what: "a reply" }),
      /800 ms/,
    );
    await assert.rejects(
      timer.guard(Promise.reject(new Error("reset")), { timeoutMs: 50, phase: "mail", what: "x" }),
      /reset/,
    );
    timer.stop();
  });

  it("cancels a step with a signal like withDeadline", async () => {
    const timer = new DeadlineTimer();
    await assertAbortsDuringWait((promise, options) => timer.guard(promise, options));
    timer.stop();
  });
});
