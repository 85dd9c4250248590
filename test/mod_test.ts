/**
 * The public surface of the library (`src/mod.ts`, contract section 4): every
 * promised name is exported and usable, and the README's "Library" example
 * works as documented against npm:smtp-server (implicit TLS, AUTH, DSN,
 * events, token, `await using`), as do its failure paths (SmtpError with the
 * full result, sendSettled, resultOf, argument errors before any I/O).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import * as v from "valibot";
import * as edgemail from "../src/mod.ts";
import {
  type CompletedDetail,
  MessageValidationError,
  resultOf,
  type SendResult,
  sendSettled,
  SmtpClient,
  SmtpError,
  type StatusEvent,
} from "../src/mod.ts";
import { startSmtpServer, type TestSmtpServer } from "./support/smtp_server.ts";

const PASSWORD = "readme-example-password";

describe("src/mod.ts exports", () => {
  it("exports the client, its helpers and the error class", () => {
    assert.equal(typeof edgemail.SmtpClient, "function");
    assert.ok(edgemail.SmtpClient.prototype instanceof EventTarget);
    assert.equal(typeof edgemail.sendSettled, "function");
    assert.equal(typeof edgemail.resultOf, "function");
    assert.equal(typeof edgemail.SmtpError, "function");
    assert.ok(edgemail.SmtpError.prototype instanceof Error);
  });

  it("exports denoConnect as the socket factory", () => {
    assert.equal(typeof edgemail.denoConnect, "function");
  });

  it("exports the message schema and its helpers", () => {
    assert.equal(typeof edgemail.parseMessage, "function");
    assert.equal(typeof edgemail.normalizeAddress, "function");
    assert.equal(typeof edgemail.parseMailbox, "function");
    assert.equal(typeof edgemail.toValidationIssues, "function");
    assert.ok(edgemail.MessageValidationError.prototype instanceof TypeError);
    const parsed = v.safeParse(edgemail.MessageSchema, {
      from: "ann@example.com",
      to: "bob@example.org",
      text: "Hi",
    });
    assert.equal(parsed.success, true);
  });

  it("normalises addresses to the RCPT TO form (A-labels, lower-case domain)", () => {
    assert.equal(edgemail.normalizeAddress("Ann@Bücher.Example"), "Ann@xn--bcher-kva.example");
    assert.deepEqual(edgemail.parseMailbox("Ann <ann@EXAMPLE.com>"), {
      name: "Ann",
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("parses a message with a default sender, and reports problems by path", () => {
    const message = edgemail.parseMessage(
      { to: "bob@example.org, Cy <cy@example.net>", text: "Hi" },
      { defaultFrom: "App <app@example.com>" },
    );
    assert.equal(message.from?.address, "app@example.com");
    assert.deepEqual(message.to.map((m) => m.address), ["bob@example.org", "cy@example.net"]);
    assert.throws(
      () =>
        edgemail.parseMessage({
          from: "ann@example.com",
          to: ["bob@example.org", "nope"],
          text: "Hi",
        }),
      (error: unknown) => {
        assert.ok(error instanceof MessageValidationError);
        assert.deepEqual(error.issues.map((issue) => issue.path), ["to[1]"]);
        return true;
      },
    );
  });
});

describe("README library example against smtp-server", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({
      secure: true,
      users: { "ann@example.com": PASSWORD },
      enhancedStatusCodes: true,
      rejectRecipients: { "nobody@example.net": { code: 550, message: "No such user" } },
    });
  });
  after(() => server.close());

  /** The README's options, pointed at the test server (port 465 there means implicit TLS). */
  function readmeClient(): SmtpClient {
    return new SmtpClient({
      host: "localhost",
      port: server.port,
      tls: "implicit",
      caCerts: [server.caCert],
      auth: { username: "ann@example.com", password: PASSWORD },
      timeoutMs: 5000,
    });
  }

  const readmeMessage = {
    from: "Ann <ann@example.com>",
    to: ["bob@example.org", "Cy <cy@example.net>"],
    subject: "Hello",
    text: "Plain text",
    html: "<p>HTML</p>",
    dsn: { notify: ["failure", "delay"] as ("failure" | "delay")[] },
  };

  it("sends, reports progress and completion, and closes with `await using`", async () => {
    const completions: CompletedDetail[] = [];
    const statuses: StatusEvent[] = [];
    let result: SendResult;
    let disposed: SmtpClient;
    {
      await using client = readmeClient();
      disposed = client;
      client.addEventListener("completed", (e) => {
        completions.push((e as CustomEvent<CompletedDetail>).detail);
      });
      const controller = new AbortController();
      result = await client.send(readmeMessage, {
        signal: controller.signal,
        token: "order-42",
        onStatus: (event) => statuses.push(event),
      });
    }

    assert.equal(result.status, "sent");
    assert.equal(result.token, "order-42");
    assert.match(result.messageId, /^<[^<>@\s]+@[^<>@\s]+>$/);
    assert.deepEqual(result.accepted, ["bob@example.org", "cy@example.net"]);
    assert.deepEqual(result.rejected, []);
    assert.match(result.response ?? "", /^250 /);
    assert.deepEqual(result.dsn, { requested: true, supported: true });
    assert.equal(result.error, undefined);

    assert.equal(completions.length, 1);
    assert.equal(completions[0].token, "order-42");
    assert.equal(completions[0].cancelled, false);
    assert.equal(completions[0].error, undefined);
    assert.deepEqual(completions[0].result, result);

    // The contract's list (section 3), not SMTP_PHASES: a phase the contract does not name fails.
    const phases = [
      "connect",
      "greeting",
      "ehlo",
      "starttls",
      "auth",
      "mail",
      "rcpt",
      "data",
      "message",
    ];
    for (const event of statuses) assert.ok(phases.includes(event.phase), event.phase);
    assert.ok(!statuses.some((event) => event.phase === "starttls"), "implicit TLS: no STARTTLS");
    const authDone = statuses.find((event) => event.phase === "auth" && event.state === "done");
    assert.equal(authDone?.reply?.code, 235);
    const rcptDone = statuses.filter((event) => event.phase === "rcpt" && event.state === "done");
    assert.deepEqual(
      rcptDone.map((event) => [event.recipient, event.reply?.code]),
      [["bob@example.org", 250], ["cy@example.net", 250]],
    );

    const [received] = await server.waitForMessages(1);
    assert.equal(received.from, "ann@example.com");
    assert.deepEqual(received.to, ["bob@example.org", "cy@example.net"]);
    assert.equal(received.user, "ann@example.com");
    assert.equal(received.secure, true);
    assert.deepEqual(
      received.dsn?.recipients.map((recipient) => recipient.notify),
      [["FAILURE", "DELAY"], ["FAILURE", "DELAY"]],
    );
    const email = await PostalMime.parse(received.raw);
    assert.equal(email.subject, "Hello");
    assert.deepEqual(email.from, { name: "Ann", address: "ann@example.com" });
    assert.deepEqual(
      email.to?.map(({ name, address }) => ({ name, address })),
      [{ name: "", address: "bob@example.org" }, { name: "Cy", address: "cy@example.net" }],
    );
    assert.equal(email.text?.trimEnd(), "Plain text");
    assert.equal(email.html?.trimEnd(), "<p>HTML</p>");
    assert.equal(email.messageId, result.messageId);

    // `await using` closed the client: it refuses new sends and sends nothing.
    const before = server.connections;
    await assert.rejects(disposed.send(readmeMessage));
    assert.equal(server.connections, before);
    assert.equal(server.messages.length, 1);
  });

  it("rejects with an SmtpError carrying the refusals, the token and the full result", async () => {
    await using client = readmeClient();
    const message = { ...readmeMessage, to: ["bob@example.org", "nobody@example.net"] };
    const delivered = server.messages.length;
    const error = await client.send(message, { token: "order-43" }).catch((e) => e);
    assert.ok(error instanceof SmtpError);
    assert.equal(error.type, "rejected");
    assert.equal(error.phase, "rcpt");
    assert.equal(error.code, 550);
    assert.equal(error.enhancedCode, "5.1.1");
    assert.equal(error.token, "order-43");
    assert.deepEqual(error.rejected.map((r) => [r.address, r.code, r.enhancedCode]), [
      ["nobody@example.net", 550, "5.1.1"],
    ]);
    const result = resultOf(error);
    assert.equal(result?.status, "failed");
    assert.equal(result?.token, "order-43");
    assert.deepEqual(result?.accepted, []);
    assert.deepEqual(result?.rejected, error.rejected);
    assert.equal(result?.error?.type, "rejected");
    // The server offers DSN, so the failed result says so too.
    assert.deepEqual(result?.dsn, { requested: true, supported: true });

    const settled = await sendSettled(client, message, { token: "order-44" });
    assert.equal(settled.status, "failed");
    assert.equal(settled.token, "order-44");
    assert.deepEqual(settled.rejected.map((r) => r.address), ["nobody@example.net"]);
    assert.deepEqual(settled.dsn, { requested: true, supported: true });
    // All or nothing (allowPartial false): not even bob@example.org got the message.
    assert.equal(server.messages.length, delivered);
  });

  it("rejects with an AbortError when cancelled, and resultOf gives the cancelled result", async () => {
    await using client = readmeClient();
    const error = await client.send(readmeMessage, {
      signal: AbortSignal.abort(),
      token: "order-45",
    }).catch((e) => e);
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "AbortError");
    assert.equal(resultOf(error)?.status, "cancelled");
    assert.equal(resultOf(error)?.token, "order-45");
  });

  it("refuses bad arguments before any I/O, naming the field", async () => {
    const before = server.connections;
    assert.throws(() => new SmtpClient({ host: "" }), (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /host/);
      return true;
    });
    assert.throws(() => new SmtpClient({ host: "localhost", port: 65536 }), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /port/);
      return true;
    });
    await using client = readmeClient();
    const { from: _, ...withoutFrom } = readmeMessage;
    const error = await client.send(withoutFrom).catch((e) => e);
    assert.ok(error instanceof TypeError);
    assert.ok(error instanceof MessageValidationError);
    assert.deepEqual(error.issues.map((issue: { path: string }) => issue.path), ["from"]);
    await assert.rejects(client.send({ ...readmeMessage, to: [] }), TypeError);
    assert.equal(server.connections, before);
  });
});
