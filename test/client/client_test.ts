/**
 * The browser client from Deno against the real function (`deno serve
 * functions/deno.ts`) with npm:smtp-server behind it: synchronous and SSE
 * sends, a refused recipient, validation errors, batches, the headers it
 * sends (seen by a recording proxy in front of the function), answers that
 * are not from edgemail, a cut-off stream, and aborts (against the scripted
 * fault server, which holds its RCPT reply until the client has gone).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EdgemailError,
  type EmailStatusEvent,
  sendBatch,
  sendEmail,
} from "../../src/client/mod.ts";
import { CLIENT_BUNDLE_URL } from "../../src/client/bundle_path.ts";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { guard } from "../support/guard.ts";
import { type HeldRcptFunction, startFunctionWithHeldRcpt } from "../support/held_rcpt.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { freePort } from "../support/subprocess.ts";
import { type RecordingProxy, startRecordingProxy } from "./recording_proxy.ts";

const API_KEY = "client-key-5e6f7a8b9c";
// Only a guard against hanging; a subprocess gets longer than the default.
const HANG_GUARD_MS = 15_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const message = {
  from: "Ann <ann@example.com>",
  to: "bob@example.com",
  subject: "From the client",
  text: "Hello through the browser client.",
};

/** What `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

/** What `promise` rejected with, which must be an EdgemailError. */
async function edgemailError(promise: Promise<unknown>): Promise<EdgemailError> {
  const error = await rejection(promise);
  assert.ok(error instanceof EdgemailError, `not an EdgemailError: ${error}`);
  return error;
}

describe("browser client from Deno → deno serve functions/deno.ts → smtp-server", () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;
  let proxy: RecordingProxy;
  const options = { apiKey: API_KEY };

  before(async () => {
    smtp = await startSmtpServer({
      rejectRecipients: {
        "nobody@example.com": { code: 550, message: "5.1.1 No such user here" },
        "busy@example.com": { code: 450, message: "4.2.1 Mailbox busy, try later" },
      },
    });
    fn = await startFunction({
      SMTP_URL: `smtp://localhost:${smtp.port}`,
      SMTP_CA_CERT: smtp.caCert,
      API_KEYS: API_KEY,
      ALLOWED_FROM: "@example.com",
    });
    proxy = startRecordingProxy(fn.url);
  });

  after(async () => {
    await proxy?.close();
    await fn?.stop();
    await smtp?.close();
  });

  it("sends synchronously and resolves with the Result", async () => {
    const before = smtp.messages.length;
    const result = await sendEmail(fn.url, { ...message, token: "sync-1" }, options);
    assert.equal(result.status, "sent");
    assert.equal(result.token, "sync-1");
    assert.deepEqual(result.accepted, ["bob@example.com"]);
    assert.deepEqual(result.rejected, []);
    const received = (await smtp.waitForMessages(before + 1))[before];
    assert.ok(received.text.includes(`Message-ID: ${result.messageId}`));
    assert.ok(received.text.includes("Hello through the browser client."));
  });

  it("streams with onStatus: every status event as it arrives, then the Result", async () => {
    const events: EmailStatusEvent[] = [];
    const result = await sendEmail(fn.url + "/", { ...message, token: 7 }, {
      ...options,
      onStatus: (event) => events.push(event),
    });
    assert.equal(result.status, "sent");
    assert.equal(result.token, 7);
    assert.ok(events.every((event) => event.token === 7));
    // A warm pooled connection skips connect, greeting and EHLO: the transaction is always there.
    const steps = events.map((event) => `${event.phase} ${event.state}`);
    for (const step of ["mail started", "mail done", "data done", "message started"]) {
      assert.ok(steps.includes(step), `${step} missing from ${steps.join(", ")}`);
    }
    const rcpt = events.find((event) => event.phase === "rcpt" && event.state === "done");
    assert.equal(rcpt?.recipient, "bob@example.com");
    assert.equal(rcpt?.reply?.code, 250);
    assert.equal(events.at(-1)?.phase, "message");
    assert.equal(events.at(-1)?.reply?.code, 250);
  });

  it("rejects a refused recipient with type rejected, status 422 and the Result", async () => {
    const before = smtp.messages.length;
    const refused = { ...message, to: ["bob@example.com", "nobody@example.com"], token: "r" };
    const sync = await edgemailError(sendEmail(fn.url, refused, options));
    const events: EmailStatusEvent[] = [];
    const streamed = await edgemailError(
      sendEmail(fn.url, refused, { ...options, onStatus: (event) => events.push(event) }),
    );
    for (const error of [sync, streamed]) {
      assert.equal(error.type, "rejected");
      assert.equal(error.status, 422);
      assert.equal(error.result?.status, "failed");
      assert.equal(error.result?.token, "r");
      assert.deepEqual(error.result?.rejected.map(({ address, code }) => ({ address, code })), [
        { address: "nobody@example.com", code: 550 },
      ]);
      assert.equal(error.result?.error?.phase, "rcpt");
    }
    const rcpts = events.filter((event) => event.phase === "rcpt" && event.state === "done");
    assert.deepEqual(rcpts.map((event) => event.reply?.code), [250, 550]);
    assert.equal(smtp.messages.length, before, "nothing is delivered without allowPartial");
  });

  it("reports a temporary refusal as transient: 503 with Retry-After, and 503 over SSE", async () => {
    const busy = { ...message, to: "busy@example.com" };
    const sync = await edgemailError(sendEmail(fn.url, busy, options));
    assert.equal(sync.type, "transient");
    assert.equal(sync.status, 503);
    assert.equal(sync.retryAfter, 60);
    const streamed = await edgemailError(sendEmail(fn.url, busy, { ...options, onStatus() {} }));
    assert.equal(streamed.type, "transient");
    assert.equal(streamed.status, 503);
  });

  it("rejects an invalid message with type validation, status 400 and the issues", async () => {
    const invalid = { ...message, to: "not an address", attachments: [{ filename: "a.txt" }] };
    for (const onStatus of [undefined, () => {}]) {
      const error = await edgemailError(
        // deno-lint-ignore no-explicit-any
        sendEmail(fn.url, invalid as any, { ...options, onStatus }),
      );
      assert.equal(error.type, "validation");
      assert.equal(error.status, 400);
      const paths = error.issues?.map((issue) => issue.path) ?? [];
      assert.ok(paths.some((path) => path.startsWith("to")), paths.join(", "));
      assert.ok(paths.includes("attachments[0].content"), paths.join(", "));
      assert.ok(!JSON.stringify(error.issues).includes("not an address"), "input is echoed");
    }
  });

  it("rejects a wrong API key with type unauthorized and status 401", async () => {
    const error = await edgemailError(sendEmail(fn.url, message, { apiKey: "wrong-key" }));
    assert.equal(error.type, "unauthorized");
    assert.equal(error.status, 401);
  });

  it("sends a batch: one Result per message in order, whatever each status", async () => {
    const messages = [
      { ...message, token: "b0" },
      { ...message, to: "nobody@example.com", token: "b1" },
      { ...message, to: "cy@example.com", token: "b2" },
    ];
    const { results } = await sendBatch(fn.url, messages, options);
    assert.deepEqual(results.map((result) => [result.token, result.status]), [
      ["b0", "sent"],
      ["b1", "failed"],
      ["b2", "sent"],
    ]);
    assert.equal(results[1].error?.type, "rejected");
  });

  it("streams a batch: status events carry the index, Results come in input order", async () => {
    const events: EmailStatusEvent[] = [];
    const messages = [
      { ...message, token: "s0" },
      { ...message, to: "nobody@example.com", token: "s1" },
    ];
    const { results } = await sendBatch(fn.url, messages, {
      ...options,
      onStatus: (event) => events.push(event),
    });
    assert.deepEqual(results.map((result) => [result.token, result.status]), [
      ["s0", "sent"],
      ["s1", "failed"],
    ]);
    for (const index of [0, 1]) {
      const own = events.filter((event) => event.index === index);
      assert.ok(own.length > 0, `no events for message ${index}`);
      assert.ok(own.every((event) => event.token === `s${index}`));
    }
    assert.ok(events.every((event) => event.index === 0 || event.index === 1));
  });

  it("sends the Authorization, Accept and Idempotency-Key headers", async () => {
    const from = proxy.requests.length;
    await sendEmail(proxy.url, message, { ...options, idempotencyKey: "order-4711" });
    await sendEmail(proxy.url, message, { ...options, idempotencyKey: true, onStatus() {} });
    await sendBatch(proxy.url, [message], { ...options, idempotencyKey: true });
    await sendEmail(proxy.url, message, options);
    const [given, fresh, batch, none] = proxy.requests.slice(from);
    assert.deepEqual([given.path, fresh.path, batch.path], ["/send", "/send", "/send/batch"]);
    assert.equal(given.headers.get("Idempotency-Key"), "order-4711");
    assert.match(fresh.headers.get("Idempotency-Key") ?? "", UUID);
    assert.match(batch.headers.get("Idempotency-Key") ?? "", UUID);
    assert.notEqual(fresh.headers.get("Idempotency-Key"), batch.headers.get("Idempotency-Key"));
    assert.equal(none.headers.get("Idempotency-Key"), null);
    assert.equal(given.headers.get("Authorization"), `Bearer ${API_KEY}`);
    assert.equal(given.headers.get("Content-Type"), "application/json");
    assert.equal(fresh.headers.get("Accept"), "text/event-stream");
    assert.doesNotMatch(given.headers.get("Accept") ?? "", /event-stream/);
  });

  it("turns a proxy's HTML 502 page into a clear EdgemailError", async () => {
    for (const onStatus of [undefined, () => {}]) {
      const error = await edgemailError(
        sendEmail(`${proxy.url}/down`, message, { ...options, onStatus }),
      );
      assert.equal(error.status, 502);
      assert.equal(error.type, "connection");
      assert.match(error.message, /answered 502 text\/html, not as edgemail does/);
      assert.equal(error.result, undefined);
    }
  });

  it("rejects with type connection and status 0 when nothing answers", async () => {
    const url = `http://127.0.0.1:${freePort()}`;
    const error = await edgemailError(sendEmail(url, message, options));
    assert.equal(error.type, "connection");
    assert.equal(error.status, 0);
    assert.ok(error.message.includes(url), error.message);
    assert.ok(error.cause instanceof TypeError);
  });

  it("rejects a stream that ends before completed as unknown_outcome (502), never hangs", async () => {
    const events: EmailStatusEvent[] = [];
    const error = await edgemailError(guard(
      sendEmail(`${proxy.url}/cut`, message, { ...options, onStatus: (e) => events.push(e) }),
      "the cut-off stream",
      { ms: HANG_GUARD_MS },
    ));
    assert.equal(events.length, 1);
    assert.equal(error.type, "unknown_outcome");
    assert.equal(error.status, 502);
    assert.match(error.message, /may have been sent/);
  });

  it("rejects with what onStatus throws, and stops the request", async () => {
    const mistake = new RangeError("a bug in the page");
    const error = await rejection(
      sendEmail(fn.url, message, {
        ...options,
        onStatus: () => {
          throw mistake;
        },
      }),
    );
    assert.equal(error, mistake);
  });

  it("rejects at once with an AbortError when the signal has already aborted", async () => {
    const from = proxy.requests.length;
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(sendEmail(proxy.url, message, { signal: controller.signal }));
    assert.ok(error instanceof DOMException && error.name === "AbortError", String(error));
    assert.equal(proxy.requests.length, from, "a request was sent");
  });

  it("runs as the prebuilt bundle in Node", async () => {
    const dir = await Deno.makeTempDir();
    try {
      // Node reads a .js file outside any package as CommonJS: the module goes in as .mjs.
      await Deno.copyFile(CLIENT_BUNDLE_URL, `${dir}/client.mjs`);
      const script = `import { sendEmail } from ${JSON.stringify(`${dir}/client.mjs`)};
        const events = [];
        const result = await sendEmail(process.argv[1], JSON.parse(process.argv[2]), {
          apiKey: process.argv[3], onStatus: (event) => events.push(event.phase),
        });
        console.log(JSON.stringify({ status: result.status, events }));`;
      const { code, stdout, stderr } = await new Deno.Command("node", {
        args: ["--input-type=module", "-e", script, fn.url, JSON.stringify(message), API_KEY],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const out = JSON.parse(new TextDecoder().decode(stdout));
      assert.equal(out.status, "sent");
      assert.ok(out.events.includes("rcpt"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

describe("browser client: aborting a send in progress", () => {
  let setup: HeldRcptFunction;

  before(async () => {
    setup = await startFunctionWithHeldRcpt({ API_KEYS: API_KEY });
  });

  after(() => setup?.stop());

  for (const mode of ["sse", "json"] as const) {
    it(`rejects with an AbortError and nothing is delivered (${mode})`, async () => {
      const { fn, held } = setup;
      const rcpt = held.nextRcpt();
      const controller = new AbortController();
      const events: EmailStatusEvent[] = [];
      const sending = rejection(sendEmail(fn.url, { to: "bob@example.com", text: "never" }, {
        apiKey: API_KEY,
        signal: controller.signal,
        onStatus: mode === "sse" ? (event) => events.push(event) : undefined,
      }));
      await guard(rcpt.reached, "the RCPT command", { ms: HANG_GUARD_MS });
      controller.abort();
      const error = await guard(sending, "the aborted send", { ms: HANG_GUARD_MS });
      assert.ok(error instanceof DOMException && error.name === "AbortError", String(error));
      const seen = events.length;
      // The function abandons the SMTP transaction: the server sees the connection close.
      await guard(rcpt.closed, "the abandoned SMTP connection", { ms: HANG_GUARD_MS });
      assert.equal(held.delivered, 0);
      assert.ok(!held.transcript.includes("never"), "the message content was sent");
      assert.equal(events.length, seen, "onStatus was called after the abort");
    });
  }
});
