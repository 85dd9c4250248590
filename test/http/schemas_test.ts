/**
 * The response and batch schemas (the OpenAPI document is generated from
 * them): Results and status events produced by real sends to npm:smtp-server
 * — sent, refused, partial, cancelled, unreachable — pass them as JSON, the
 * bodies of refused requests pass too, and malformed ones are rejected. The
 * batch request schema reports its problems with paths.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { problem } from "../../src/http/problems.ts";
import { validationProblem } from "../../src/http/policy.ts";
import {
  BatchDoneSchema,
  BatchRequestSchema,
  BatchResultSchema,
  HealthSchema,
  ResultSchema,
  RouteErrorSchema,
  SendRequestSchema,
  StatusEventSchema,
} from "../../src/http/schemas.ts";
import { toValidationIssues } from "../../src/message/validation_issues.ts";
import { sendSettled, SmtpClient } from "../../src/smtp/client.ts";
import type { SendResult, StatusEvent } from "../../src/smtp/result.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";

/** What goes over the wire: the JSON text, parsed again. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function assertValid(schema: v.GenericSchema, value: unknown): void {
  const parsed = v.safeParse(schema, value);
  assert.ok(
    parsed.success,
    `expected valid: ${JSON.stringify(toValidationIssues(parsed.issues ?? []))}`,
  );
}

function assertInvalid(schema: v.GenericSchema, value: unknown, why: string): void {
  assert.equal(v.safeParse(schema, value).success, false, why);
}

/** A port on 127.0.0.1 that nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

describe("ResultSchema and StatusEventSchema with real sends", () => {
  let server: TestSmtpServer;
  let client: SmtpClient;
  const results: Record<string, SendResult> = {};
  const events: StatusEvent[] = [];

  before(async () => {
    server = await startSmtpServer({
      enhancedStatusCodes: true,
      rejectRecipients: { "nobody@example.org": { code: 550, message: "5.1.1 No such user" } },
    });
    client = new SmtpClient({
      host: "localhost",
      port: server.port,
      caCerts: [server.caCert],
      timeoutMs: 5000,
    });
    const base = { from: "Ann <ann@example.com>", subject: "Schemas", text: "Hi" };
    results.sent = await sendSettled(
      client,
      { ...base, to: "bob@example.org", dsn: { notify: ["failure"] } },
      { token: "order-1", onStatus: (event) => events.push(event) },
    );
    results.rejected = await sendSettled(client, {
      ...base,
      to: ["bob@example.org", "nobody@example.org"],
      token: 7,
    });
    results.partial = await sendSettled(client, {
      ...base,
      to: ["bob@example.org", "nobody@example.org"],
      allowPartial: true,
    });
    results.cancelled = await sendSettled(client, { ...base, to: "bob@example.org" }, {
      signal: AbortSignal.abort(),
    });
    const unreachable = new SmtpClient({ host: "127.0.0.1", port: closedPort(), timeoutMs: 5000 });
    results.unreachable = await sendSettled(unreachable, { ...base, to: "bob@example.org" });
    await unreachable.close();
  });

  after(async () => {
    await client.close();
    await server.close();
  });

  it("got the outcomes the test is about", () => {
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(results).map(([name, r]) => [name, `${r.status} ${r.error?.type ?? ""}`]),
      ),
      {
        sent: "sent ",
        rejected: "failed rejected",
        partial: "sent ",
        cancelled: "cancelled cancelled",
        unreachable: "failed connection",
      },
    );
    assert.equal(results.partial.rejected.length, 1);
  });

  it("accepts every real Result, as JSON", () => {
    for (const [name, result] of Object.entries(results)) {
      const parsed = v.safeParse(ResultSchema, asJson(result));
      assert.ok(parsed.success, `${name}: ${JSON.stringify(parsed.issues?.[0]?.message)}`);
    }
  });

  it("describes every field of a real Result (parsing strips none)", () => {
    for (const [name, result] of Object.entries(results)) {
      const json = asJson(result);
      assert.deepEqual(v.parse(ResultSchema, json), json, name);
    }
  });

  it("accepts a batch answer of real Results", () => {
    assertValid(BatchResultSchema, asJson({ results: Object.values(results) }));
  });

  it("accepts every real status event with the token the HTTP layer adds", () => {
    assert.ok(events.some((event) => event.phase === "rcpt" && event.state === "done"));
    for (const event of events) {
      assertValid(StatusEventSchema, asJson({ ...event, token: "order-1" }));
      assertValid(StatusEventSchema, asJson({ index: 2, ...event, token: null }));
    }
  });

  it("rejects a status event without its token, or with an unknown state or phase", () => {
    const event = asJson({ ...events.find((e) => e.reply)!, token: "t" }) as Record<
      string,
      unknown
    >;
    const { token: _, ...withoutToken } = event;
    assertInvalid(StatusEventSchema, withoutToken, "no token");
    assertInvalid(StatusEventSchema, { ...event, state: "finished" }, "state");
    assertInvalid(StatusEventSchema, { ...event, phase: "quit" }, "phase");
    assertInvalid(StatusEventSchema, { ...event, reply: { code: "250", message: "Ok" } }, "code");
    assertInvalid(StatusEventSchema, { ...event, recipient: 5 }, "recipient");
  });

  it("rejects malformed Results", () => {
    const good = asJson(results.rejected) as Record<string, unknown>;
    const error = good.error as Record<string, unknown>;
    const { accepted: _, ...withoutAccepted } = good;
    const { token: __, ...withoutToken } = good;
    const { message: ___, ...errorWithoutMessage } = error;
    const malformed: [string, unknown][] = [
      ["status queued", { ...good, status: "queued" }],
      ["no accepted", withoutAccepted],
      ["no token", withoutToken],
      ["token object", { ...good, token: { id: 1 } }],
      ["accepted numbers", { ...good, accepted: [1] }],
      ["rejection without code", { ...good, rejected: [{ address: "a@b.c", message: "x" }] }],
      [
        "rejection code as text",
        { ...good, rejected: [{ address: "a@b.c", code: "550", message: "x" }] },
      ],
      ["unknown error type", { ...good, error: { ...error, type: "boom" } }],
      ["unknown phase", { ...good, error: { ...error, phase: "quit" } }],
      ["error without message", { ...good, error: errorWithoutMessage }],
      ["dsn flags as text", { ...good, dsn: { requested: "yes", supported: true } }],
      ["messageId number", { ...good, messageId: 5 }],
      ["not an object", [good]],
    ];
    for (const [why, value] of malformed) assertInvalid(ResultSchema, value, why);
  });
});

describe("ResultSchema with the bodies of refused requests", () => {
  it("accepts problem bodies, which have no messageId", () => {
    assertValid(ResultSchema, asJson(problem("forbidden", "to[0] is not allowed.")));
    assertValid(ResultSchema, asJson(problem("too_large", "Too big.", { token: "t" })));
  });

  it("accepts a validation body with its issues", () => {
    const body = validationProblem([{ path: "to[1]", message: "the address has no @" }], 3);
    assertValid(ResultSchema, asJson(body));
  });

  it("rejects issues without a path", () => {
    const body = asJson(validationProblem([{ path: "to", message: "is required" }], null)) as {
      error: { issues: unknown[] };
    };
    body.error.issues = [{ message: "is required" }];
    assertInvalid(ResultSchema, body, "issue without path");
  });
});

describe("the other answer schemas", () => {
  it("HealthSchema takes ok, and error with a Result error", () => {
    assertValid(HealthSchema, { status: "ok" });
    assertValid(HealthSchema, {
      status: "error",
      error: { type: "connection", message: "Could not connect.", phase: "connect" },
    });
    assertInvalid(HealthSchema, { status: "up" }, "status up");
    assertInvalid(HealthSchema, { status: "error", error: { type: "down" } }, "error type");
  });

  it("BatchDoneSchema takes the three counts", () => {
    assertValid(BatchDoneSchema, { sent: 2, failed: 1, cancelled: 0 });
    assertInvalid(BatchDoneSchema, { sent: 2, failed: 1 }, "no cancelled");
  });

  it("RouteErrorSchema takes not_found and method_not_allowed only", () => {
    assertValid(RouteErrorSchema, { error: { type: "not_found", message: "No such route." } });
    assertValid(RouteErrorSchema, { error: { type: "method_not_allowed", message: "Use POST." } });
    assertInvalid(RouteErrorSchema, { error: { type: "forbidden", message: "x" } }, "type");
  });
});

describe("BatchRequestSchema and SendRequestSchema", () => {
  const one = { from: "ann@example.com", to: "Bob <bob@EXAMPLE.org>", text: "Hi" };

  function issuesOf(value: unknown) {
    const parsed = v.safeParse(BatchRequestSchema, value);
    assert.equal(parsed.success, false);
    return toValidationIssues(parsed.issues!);
  }

  it("accepts messages and normalises them like MessageSchema", () => {
    const parsed = v.parse(BatchRequestSchema, { messages: [one, { ...one, cc: "c@x.example" }] });
    assert.equal(parsed.messages.length, 2);
    assert.deepEqual(parsed.messages[0].to, [
      { name: "Bob", address: "bob@example.org", smtputf8: false },
    ]);
    assert.deepEqual(parsed.messages[1].cc.map((m) => m.address), ["c@x.example"]);
  });

  it("refuses an empty batch", () => {
    assert.deepEqual(issuesOf({ messages: [] }), [
      { path: "messages", message: "must hold at least one message" },
    ]);
  });

  it("refuses a body that is not an object, a missing list and unknown fields", () => {
    for (const body of [null, "messages", 3]) {
      assert.deepEqual(issuesOf(body), [
        { path: "", message: 'must be an object { "messages": [ … ] }' },
      ]);
    }
    assert.ok(issuesOf([one]).length > 0, "a bare array of messages is refused");
    assert.deepEqual(issuesOf({}), [{ path: "messages", message: "is required" }]);
    assert.deepEqual(issuesOf({ messages: [one], dryRun: true }), [
      { path: "dryRun", message: "is not a known field" },
    ]);
  });

  it("names the message and the field of a bad message", () => {
    const issues = issuesOf({ messages: [one, { ...one, to: "not an address" }] });
    assert.deepEqual(issues.map((issue) => issue.path), ["messages[1].to"]);
  });

  it("SendRequestSchema is the message schema", () => {
    assert.deepEqual(v.parse(SendRequestSchema, one).to[0].address, "bob@example.org");
    assert.equal(v.safeParse(SendRequestSchema, { ...one, to: [] }).success, false);
  });
});
